/* tree_walk.c: loading, resolving and walking a snapshot's trees, shared by
 * restore, ls and dump (see tree_walk.h).
 *
 * Invariants: a path is only ever built from a name that passed
 * cairn_node_name_check (non-empty, not "." or "..", no '/' and no NUL), so
 * every path handed to a visitor has exactly one component per tree level.
 * The walk holds one decoded tree per directory level and nothing else; the
 * path buffer is shared by the whole walk and truncated back after each
 * entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tree_walk.h"

int tw_load_tree(cairn_tree *out, cairn_repo *repo, const cairn_id *id)
{
	cairn_buf blob = CAIRN_BUF_INIT;
	char hex[CAIRN_ID_HEX_SIZE];
	int r;

	if ((r = cairn_repo_load_blob(&blob, repo, CAIRN_BLOB_TREE, id)) < 0)
		goto out;
	if ((r = cairn_tree_decode(out, (const char *)blob.data, blob.len)) < 0) {
		cairn_id_to_hex(hex, id);
		r = cairn_error_wrap(r, "tree %s", hex);
	}
out:
	cairn_buf_release(&blob);
	return r;
}

int tw_path_join(cairn_buf *out, const char *dir, const char *name)
{
	int r;
	cairn_buf_clear(out);
	if ((r = cairn_buf_puts(out, dir)) < 0)
		return r;
	if (out->len == 0 || out->data[out->len - 1] != '/')
		if ((r = cairn_buf_append(out, "/", 1)) < 0)
			return r;
	if ((r = cairn_buf_puts(out, name)) < 0)
		return r;
	return cairn_buf_cstr(out) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

int tw_path_normalize(cairn_buf *out, const char *path)
{
	const char *p = path;
	int r;

	cairn_buf_clear(out);
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return cairn_error_set(CAIRN_EINVAL, "path '%s' must not contain '..'", path);
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if ((r = cairn_buf_append(out, "/", 1)) < 0 || (r = cairn_buf_append(out, p, len)) < 0)
				return r;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	if (out->len == 0 && (r = cairn_buf_append(out, "/", 1)) < 0)
		return r;
	return cairn_buf_cstr(out) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

/* Linear search: correct even for a tree that is not sorted by name (old or
 * foreign writers); trees are small next to the cost of loading them. */
static const cairn_node *find_child(const cairn_tree *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->nodes[i].name) == len && memcmp(t->nodes[i].name, name, len) == 0)
			return &t->nodes[i];
	return NULL;
}

int tw_resolve(cairn_node *out, cairn_repo *repo, const cairn_id *root, const char *path)
{
	cairn_buf norm = CAIRN_BUF_INIT;
	cairn_tree tree = CAIRN_TREE_INIT;
	cairn_id current = *root;
	const char *p, *full;
	int r;

	if ((r = tw_path_normalize(&norm, path)) < 0)
		goto out;
	full = (const char *)norm.data;
	if (strcmp(full, "/") == 0) {
		memset(out, 0, sizeof(*out));
		if (!(out->name = strdup("/"))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		out->type = CAIRN_NODE_DIR;
		out->mode = CAIRN_GOMODE_DIR | 0755;
		out->has_subtree = 1;
		out->subtree = *root;
		r = 0;
		goto out;
	}
	p = full + 1;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const cairn_node *n;

		cairn_tree_release(&tree);
		if ((r = tw_load_tree(&tree, repo, &current)) < 0)
			goto out;
		n = find_child(&tree, p, len);
		if (!n) {
			r = cairn_error_set(CAIRN_ENOTFOUND, "path '%.*s' not found in snapshot",
				(int)(p + len - full), full);
			goto out;
		}
		if (!end) {
			r = cairn_node_copy(out, n);
			goto out;
		}
		if (n->type != CAIRN_NODE_DIR || !n->has_subtree) {
			r = cairn_error_set(CAIRN_EINVAL, "'%.*s' is not a directory",
				(int)(p + len - full), full);
			goto out;
		}
		current = n->subtree;
		p = end + 1;
	}
out:
	cairn_tree_release(&tree);
	cairn_buf_release(&norm);
	return r;
}

static int walk_tree(cairn_repo *repo, const cairn_tree *t, cairn_buf *path, const tw_visitor *v)
{
	size_t base = path->len;
	int r = 0;

	for (size_t i = 0; i < t->n; i++) {
		const cairn_node *n = &t->nodes[i];
		cairn_tree sub = CAIRN_TREE_INIT;
		size_t node_len;
		const char *p;

		if ((r = cairn_node_name_check(n->name)) < 0)
			return cairn_error_wrap(r, "in '%.*s'", base ? (int)base : 1,
				base ? (const char *)path->data : "/");
		path->len = base;
		if ((r = cairn_buf_append(path, "/", 1)) < 0 || (r = cairn_buf_puts(path, n->name)) < 0)
			return r;
		node_len = path->len;
		if (!(p = cairn_buf_cstr(path)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		if ((r = v->enter(p, n, v->payload)) < 0)
			return r;
		if (r != TW_DESCEND || n->type != CAIRN_NODE_DIR)
			continue;
		if (!n->has_subtree) {
			r = cairn_error_set(CAIRN_ECORRUPT, "directory '%s' has no subtree", p);
			if (!v->tree_error || (r = v->tree_error(p, n, r, v->payload)) < 0)
				return r;
		} else if ((r = tw_load_tree(&sub, repo, &n->subtree)) < 0) {
			if (!v->tree_error || (r = v->tree_error(p, n, r, v->payload)) < 0)
				return r;
		} else {
			r = walk_tree(repo, &sub, path, v);
			cairn_tree_release(&sub);
			if (r < 0)
				return r;
		}
		path->len = node_len;
		if (!(p = cairn_buf_cstr(path)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		if (v->leave && (r = v->leave(p, n, v->payload)) < 0)
			return r;
	}
	path->len = base;
	return 0;
}

int tw_walk(cairn_repo *repo, const cairn_id *tree, const char *prefix, const tw_visitor *v)
{
	cairn_buf path = CAIRN_BUF_INIT;
	cairn_tree t = CAIRN_TREE_INIT;
	int r;

	/* The root's children are "/name": the prefix "/" contributes nothing. */
	if (prefix && strcmp(prefix, "/") != 0 && (r = cairn_buf_puts(&path, prefix)) < 0)
		goto out;
	if ((r = tw_load_tree(&t, repo, tree)) < 0)
		goto out;
	r = walk_tree(repo, &t, &path, v);
out:
	cairn_tree_release(&t);
	cairn_buf_release(&path);
	return r;
}

void tw_time_string(char out[TW_TIME_TEXT_SIZE], cairn_time t)
{
	time_t sec = (time_t)t.sec;
	struct tm tm;
	char date[32], zone[24], frac[12] = "";
	int32_t ns = t.nsec;

	if (!localtime_r(&sec, &tm)) {
		snprintf(out, TW_TIME_TEXT_SIZE, "@%lld", (long long)t.sec);
		return;
	}
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z %Z", &tm);
	if (ns > 0) {
		int digits = 9;
		while (ns % 10 == 0) {
			ns /= 10;
			digits--;
		}
		snprintf(frac, sizeof(frac), ".%0*d", digits, (int)ns);
	}
	snprintf(out, TW_TIME_TEXT_SIZE, "%s%s %s", date, frac, zone);
}

void tw_time_short(char out[TW_TIME_TEXT_SIZE], cairn_time t)
{
	time_t sec = (time_t)t.sec;
	struct tm tm;
	if (!localtime_r(&sec, &tm))
		snprintf(out, TW_TIME_TEXT_SIZE, "@%lld", (long long)t.sec);
	else
		strftime(out, TW_TIME_TEXT_SIZE, "%Y-%m-%d %H:%M:%S", &tm);
}

int tw_snapshot_describe(cairn_buf *out, const cairn_snapshot *s)
{
	char hex[CAIRN_ID_HEX_SIZE], when[TW_TIME_TEXT_SIZE];
	int r;

	cairn_id_to_hex(hex, &s->id);
	tw_time_string(when, s->time);
	cairn_buf_clear(out);
	if ((r = cairn_buf_printf(out, "<Snapshot %.8s of [", hex)) < 0)
		return r;
	for (size_t i = 0; i < s->n_paths; i++)
		if ((r = cairn_buf_printf(out, "%s%s", i ? " " : "", s->paths[i])) < 0)
			return r;
	if ((r = cairn_buf_printf(out, "] at %s by %s@%s>", when, s->username ? s->username : "",
		s->hostname ? s->hostname : "")) < 0)
		return r;
	return cairn_buf_cstr(out) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the byte there does
 * not start one: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_valid_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

int tw_utf8_sanitize(cairn_buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int r;

	cairn_buf_clear(out);
	while (*p) {
		/* The string is NUL-terminated, so a truncated sequence fails on
		 * the NUL before reading past it. */
		size_t n = utf8_valid_len(p);
		if (n == 0) {
			if ((r = cairn_buf_append(out, "\xef\xbf\xbd", 3)) < 0)
				return r;
			p++;
		} else {
			if ((r = cairn_buf_append(out, p, n)) < 0)
				return r;
			p += n;
		}
	}
	return cairn_buf_cstr(out) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

void tw_mode_string(char out[32], uint32_t m)
{
	static const char flags[] = "dalTLDpSugct?";
	static const char rwx[] = "rwxrwxrwx";
	int w = 0;

	for (int i = 0; flags[i]; i++)
		if (m & (1u << (31 - i)))
			out[w++] = flags[i];
	if (w == 0)
		out[w++] = '-';
	for (int i = 0; i < 9; i++)
		out[w++] = (m & (1u << (8 - i))) ? rwx[i] : '-';
	out[w] = '\0';
}
