/* snapshot.c: snapshot documents in restic's JSON (include/cairn/snapshot.h,
 * restic-format.md §8).
 *
 * Writing reproduces restic 0.14's bytes: compact JSON with the keys in the
 * order of its Snapshot struct (time, parent, tree, paths, hostname,
 * username, uid, gid, excludes, tags, original), the optional ones left out
 * when empty or zero, strings escaped like Go's encoding/json, and no
 * trailing newline (restic stores json.Marshal's output as is; checked
 * against files written by restic 0.14.0).  The time is written with the
 * zone offset kept in the struct, so a decoded snapshot re-encodes to the
 * same bytes.  `paths` is always written; with no paths it is `[]`.
 *
 * Reading uses jansson: the document is small and all its numbers fit.
 * Unknown keys (program_version, summary, ...) are ignored, null counts as
 * absent, `time` and `tree` are required.
 *
 * Invariant: every snapshot cairn_snapshot_encode() writes is accepted by
 * cairn_snapshot_decode() and decodes to the same values.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cairn/snapshot.h>

#include "util/gojson.h"

void cairn_strlist_free(char **list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		free(list[i]);
	free(list);
}

/* Appends a copy of s; the list owns it.  Lists are short (paths, tags), so
 * they grow one element at a time. */
int cairn_strlist_add(char ***list, size_t *n, const char *s)
{
	char **p, *copy;

	if (!s)
		return cairn_error_set(CAIRN_EINVAL, "no string to add to the list");
	if (*n >= SIZE_MAX / sizeof(char *) - 1)
		return cairn_error_set(CAIRN_ENOMEM, "list too long");
	if (!(copy = strdup(s)))
		return cairn_error_set(CAIRN_ENOMEM, "cannot copy a string of %zu bytes", strlen(s));
	if (!(p = realloc(*list, (*n + 1) * sizeof(char *)))) {
		free(copy);
		return cairn_error_set(CAIRN_ENOMEM, "cannot grow a list to %zu entries", *n + 1);
	}
	p[*n] = copy;
	*list = p;
	(*n)++;
	return 0;
}

void cairn_snapshot_release(cairn_snapshot *s)
{
	if (!s)
		return;
	cairn_strlist_free(s->paths, s->n_paths);
	cairn_strlist_free(s->excludes, s->n_excludes);
	cairn_strlist_free(s->tags, s->n_tags);
	free(s->hostname);
	free(s->username);
	memset(s, 0, sizeof(*s));
}

/* ---- writing -------------------------------------------------------------- */


static int put_id(cairn_buf *b, const char *key, const cairn_id *id)
{
	char hex[CAIRN_ID_HEX_SIZE];

	cairn_id_to_hex(hex, id);
	return cairn_buf_printf(b, ",\"%s\":\"%s\"", key, hex);
}

/* `,"key":["a","b"]`; with always == 0 nothing for an empty list. */
static int put_list(cairn_buf *b, const char *key, char *const *list, size_t n, int always)
{
	int r;

	if (n == 0 && !always)
		return 0;
	if ((r = cairn_buf_printf(b, ",\"%s\":[", key)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((i && (r = cairn_buf_puts(b, ",")) < 0) ||
		    (r = cairn_json__put_string(b, list[i], strlen(list[i]))) < 0)
			return r;
	return cairn_buf_puts(b, "]");
}

static int put_opt_string(cairn_buf *b, const char *key, const char *value)
{
	int r;

	if (!value || !*value)
		return 0;
	if ((r = cairn_buf_printf(b, ",\"%s\":", key)) < 0)
		return r;
	return cairn_json__put_string(b, value, strlen(value));
}

static int check_list(const char *what, char *const *list, size_t n)
{
	if (n > 0 && !list)
		return cairn_error_set(CAIRN_EINVAL, "snapshot has %zu %s but no list", n, what);
	for (size_t i = 0; i < n; i++)
		if (!list[i])
			return cairn_error_set(CAIRN_EINVAL, "snapshot entry %zu of %s is NULL", i, what);
	return 0;
}

int cairn_snapshot_encode(cairn_buf *out, const cairn_snapshot *s)
{
	char when[CAIRN_TIME_TEXT_SIZE];
	int r;

	cairn_buf_clear(out);
	if ((r = check_list("paths", s->paths, s->n_paths)) < 0 ||
	    (r = check_list("excludes", s->excludes, s->n_excludes)) < 0 ||
	    (r = check_list("tags", s->tags, s->n_tags)) < 0)
		goto out;
	cairn_time_format(when, s->time, s->time_offset_sec);
	if ((r = cairn_buf_printf(out, "{\"time\":\"%s\"", when)) < 0 ||
	    (s->has_parent && (r = put_id(out, "parent", &s->parent)) < 0) ||
	    (r = put_id(out, "tree", &s->tree)) < 0 ||
	    (r = put_list(out, "paths", s->paths, s->n_paths, 1)) < 0 ||
	    (r = put_opt_string(out, "hostname", s->hostname)) < 0 ||
	    (r = put_opt_string(out, "username", s->username)) < 0 ||
	    (s->uid && (r = cairn_buf_printf(out, ",\"uid\":%" PRIu32, s->uid)) < 0) ||
	    (s->gid && (r = cairn_buf_printf(out, ",\"gid\":%" PRIu32, s->gid)) < 0) ||
	    (r = put_list(out, "excludes", s->excludes, s->n_excludes, 0)) < 0 ||
	    (r = put_list(out, "tags", s->tags, s->n_tags, 0)) < 0 ||
	    (s->has_original && (r = put_id(out, "original", &s->original)) < 0) ||
	    (r = cairn_buf_puts(out, "}")) < 0)
		goto out;
out:
	if (r < 0)
		cairn_buf_clear(out);
	return r;
}

/* ---- reading -------------------------------------------------------------- */

/* The member `key`, or NULL when it is absent or null. */
static json_t *member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_null(v) ? NULL : v;
}

static int get_id(cairn_id *out, int *present, json_t *obj, const char *key)
{
	json_t *v = member(obj, key);

	if (present)
		*present = v != NULL;
	if (!v)
		return present ? 0 : cairn_error_set(CAIRN_ECORRUPT, "snapshot json: missing '%s'", key);
	if (!json_is_string(v) ||
	    cairn_id_from_hex_n(out, json_string_value(v), json_string_length(v)) < 0)
		return cairn_error_set(CAIRN_ECORRUPT, "snapshot json: '%s' is not an id", key);
	return 0;
}

static int get_string(char **out, json_t *obj, const char *key)
{
	json_t *v = member(obj, key);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return cairn_error_set(CAIRN_ECORRUPT, "snapshot json: '%s' is not a string", key);
	if (!(*out = strdup(json_string_value(v))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return 0;
}

static int get_list(char ***list, size_t *n, json_t *obj, const char *key)
{
	json_t *v = member(obj, key), *e;
	size_t i;
	int r;

	if (!v)
		return 0;
	if (!json_is_array(v))
		return cairn_error_set(CAIRN_ECORRUPT, "snapshot json: '%s' is not a list", key);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return cairn_error_set(CAIRN_ECORRUPT, "snapshot json: '%s' has a non-string entry",
				key);
		if ((r = cairn_strlist_add(list, n, json_string_value(e))) < 0)
			return r;
	}
	return 0;
}

static int get_u32(uint32_t *out, json_t *obj, const char *key)
{
	json_t *v = member(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > UINT32_MAX)
		return cairn_error_set(CAIRN_ECORRUPT, "snapshot json: '%s' is not a 32-bit unsigned integer",
			key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

int cairn_snapshot_decode(cairn_snapshot *out, const char *json, size_t len)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	json_error_t jerr;
	json_t *root = NULL, *v;
	int r = 0;

	/* No JSON_ALLOW_NUL: a NUL inside a string is refused by the parser. */
	if (!(root = json_loadb(json, len, 0, &jerr))) {
		r = cairn_error_set(CAIRN_ECORRUPT, "snapshot json: %s at line %d column %d", jerr.text,
			jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		r = cairn_error_set(CAIRN_ECORRUPT, "snapshot json: not an object");
		goto out;
	}
	if (!(v = member(root, "time"))) {
		r = cairn_error_set(CAIRN_ECORRUPT, "snapshot json: missing 'time'");
		goto out;
	}
	if (!json_is_string(v)) {
		r = cairn_error_set(CAIRN_ECORRUPT, "snapshot json: 'time' is not a string");
		goto out;
	}
	if (cairn_time_parse_offset(&s.time, &s.time_offset_sec, json_string_value(v)) < 0) {
		r = cairn_error_wrap(CAIRN_ECORRUPT, "snapshot json: 'time'");
		goto out;
	}
	if ((r = get_id(&s.tree, NULL, root, "tree")) < 0 ||
	    (r = get_id(&s.parent, &s.has_parent, root, "parent")) < 0 ||
	    (r = get_id(&s.original, &s.has_original, root, "original")) < 0 ||
	    (r = get_list(&s.paths, &s.n_paths, root, "paths")) < 0 ||
	    (r = get_string(&s.hostname, root, "hostname")) < 0 ||
	    (r = get_string(&s.username, root, "username")) < 0 ||
	    (r = get_u32(&s.uid, root, "uid")) < 0 || (r = get_u32(&s.gid, root, "gid")) < 0 ||
	    (r = get_list(&s.excludes, &s.n_excludes, root, "excludes")) < 0 ||
	    (r = get_list(&s.tags, &s.n_tags, root, "tags")) < 0)
		goto out;
	*out = s;
	memset(&s, 0, sizeof(s));
out:
	cairn_snapshot_release(&s);
	json_decref(root);
	return r;
}

/* ---- queries -------------------------------------------------------------- */

static int in_list(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (list[i] && strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

int cairn_snapshot_has_tag(const cairn_snapshot *s, const char *tag)
{
	return in_list(s->tags, s->n_tags, tag);
}

int cairn_snapshot_has_path(const cairn_snapshot *s, const char *path)
{
	return in_list(s->paths, s->n_paths, path);
}
