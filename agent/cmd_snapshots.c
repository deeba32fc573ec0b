/* cmd_snapshots.c: `cairn snapshots [--json] [--tag T] [--host H] [--path P] [ID...]`.
 *
 * Lists the snapshots oldest first, as restic 0.14 does: a table with the
 * short id, the local time ("2006-01-02 15:04:05"), the host, the tags
 * joined by commas and the paths one per line, framed by dashed lines and
 * followed by "N snapshots"; when any row spans several lines, rows are
 * separated by an empty line.  With --json: one JSON array of the snapshot
 * documents with restic's keys and omissions (parent, hostname, username,
 * uid, gid, excludes, tags and original only when set) plus "id" and
 * "short_id".  Nothing matching prints nothing (and "[]" with --json).
 * Like restic, both show a snapshot's paths sorted (byte order); tags keep
 * their stored order.
 *
 * Filters (cli_snapshot_matches) and the optional ids (full, unique prefix
 * or "latest") narrow the list; a damaged snapshot file fails the command
 * with a message naming it.  A shared lock is held while reading.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"

const char cmd_snapshots_usage[] =
	"Usage: cairn snapshots [--json] [--tag T]... [--host H]... [--path P]... [ID...]\n"
	"\n"
	"List the snapshots in the repository, oldest first.  IDs (a full id, a\n"
	"unique prefix or \"latest\") restrict the list to those snapshots.\n"
	"\n"
	"Options:\n"
	"      --tag T       only snapshots with tag T (\"a,b\": with both; repeat for either)\n"
	"  -H, --host H      only snapshots of host H (repeatable)\n"
	"      --path P      only snapshots that contain path P (repeatable: all of them)\n"
	"      --json        print a JSON array instead of a table\n"
	"  -h, --help        show this help\n";

/* ---- JSON ---- */

static json_t *strlist_json(char **list, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(list[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* One snapshot as restic 0.14 prints it (key order of its Go struct).
 * Returns a new reference or NULL on allocation failure. */
static json_t *snapshot_json(const cairn_snapshot *s)
{
	char text[CAIRN_TIME_TEXT_SIZE], hex[CAIRN_ID_HEX_SIZE];
	json_t *o = json_object();
	int bad = !o;

	if (bad)
		return NULL;
	cairn_time_format(text, s->time, s->time_offset_sec);
	bad |= json_object_set_new(o, "time", json_string(text)) < 0;
	if (s->has_parent) {
		cairn_id_to_hex(hex, &s->parent);
		bad |= json_object_set_new(o, "parent", json_string(hex)) < 0;
	}
	cairn_id_to_hex(hex, &s->tree);
	bad |= json_object_set_new(o, "tree", json_string(hex)) < 0;
	bad |= json_object_set_new(o, "paths", strlist_json(s->paths, s->n_paths)) < 0;
	if (s->hostname && *s->hostname)
		bad |= json_object_set_new(o, "hostname", json_string(s->hostname)) < 0;
	if (s->username && *s->username)
		bad |= json_object_set_new(o, "username", json_string(s->username)) < 0;
	if (s->uid)
		bad |= json_object_set_new(o, "uid", json_integer(s->uid)) < 0;
	if (s->gid)
		bad |= json_object_set_new(o, "gid", json_integer(s->gid)) < 0;
	if (s->n_excludes)
		bad |= json_object_set_new(o, "excludes", strlist_json(s->excludes, s->n_excludes)) < 0;
	if (s->n_tags)
		bad |= json_object_set_new(o, "tags", strlist_json(s->tags, s->n_tags)) < 0;
	if (s->has_original) {
		cairn_id_to_hex(hex, &s->original);
		bad |= json_object_set_new(o, "original", json_string(hex)) < 0;
	}
	cairn_id_to_hex(hex, &s->id);
	bad |= json_object_set_new(o, "id", json_string(hex)) < 0;
	hex[8] = '\0';
	bad |= json_object_set_new(o, "short_id", json_string(hex)) < 0;
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int print_json(const cairn_snapshot *list, size_t n, const unsigned char *keep)
{
	json_t *a = json_array();

	if (!a)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *o;
		if (!keep[i])
			continue;
		if (!(o = snapshot_json(&list[i])) || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		}
	}
	cli_json_print(a);
	json_decref(a);
	return 0;
}

/* ---- table ---- */

enum { COL_ID, COL_TIME, COL_HOST, COL_TAGS, COL_PATHS, N_COLS };

typedef struct row {
	char id[9];
	char time[32];
	const char *host;   /* borrowed from the snapshot */
	char *tags;         /* owned: tags joined by "," */
	char **paths;       /* borrowed */
	size_t n_paths;
} row;

static const char *const headers[N_COLS] = { "ID", "Time", "Host", "Tags", "Paths" };
static const size_t min_width[N_COLS] = { 2, 4, 10, 10, 5 };

static size_t row_height(const row *r)
{
	return r->n_paths > 1 ? r->n_paths : 1;
}

static const char *cell(const row *r, int col, size_t line)
{
	if (col == COL_PATHS)
		return line < r->n_paths ? r->paths[line] : "";
	if (line > 0)
		return "";
	switch (col) {
	case COL_ID: return r->id;
	case COL_TIME: return r->time;
	case COL_HOST: return r->host;
	default: return r->tags;
	}
}

/* Print one line of cells padded to the widths; no trailing blanks. */
static void print_line(const char *const cells[N_COLS], const size_t width[N_COLS])
{
	char line[8192];
	size_t len = 0;

	for (int k = 0; k < N_COLS; k++) {
		int n = snprintf(line + len, sizeof(line) - len, "%s%-*s", k ? "  " : "",
			k == N_COLS - 1 ? 0 : (int)width[k], cells[k]);
		if (n < 0)
			break;
		len += (size_t)n;
		if (len >= sizeof(line)) {
			len = sizeof(line) - 1;
			break;
		}
	}
	while (len > 0 && line[len - 1] == ' ')
		len--;
	printf("%.*s\n", (int)len, line);
}

static int print_table(const cairn_snapshot *list, size_t n, const unsigned char *keep)
{
	row *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t width[N_COLS], n_rows = 0, total = 0;
	int multi = 0, r = 0;

	if (!rows)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (int k = 0; k < N_COLS; k++)
		width[k] = min_width[k] > strlen(headers[k]) ? min_width[k] : strlen(headers[k]);

	for (size_t i = 0; i < n; i++) {
		const cairn_snapshot *s = &list[i];
		row *rw;
		struct tm tm;
		time_t t = (time_t)s->time.sec;
		char hex[CAIRN_ID_HEX_SIZE];
		size_t tags_len = 1;

		if (!keep[i])
			continue;
		rw = &rows[n_rows++];
		cairn_id_to_hex(hex, &s->id);
		memcpy(rw->id, hex, 8);
		rw->id[8] = '\0';
		if (!localtime_r(&t, &tm) || !strftime(rw->time, sizeof(rw->time), "%Y-%m-%d %H:%M:%S", &tm))
			snprintf(rw->time, sizeof(rw->time), "%lld", (long long)s->time.sec);
		rw->host = s->hostname ? s->hostname : "";
		for (size_t k = 0; k < s->n_tags; k++)
			tags_len += strlen(s->tags[k]) + 1;
		if (!(rw->tags = malloc(tags_len))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		rw->tags[0] = '\0';
		for (size_t k = 0; k < s->n_tags; k++) {
			if (k)
				strcat(rw->tags, ",");
			strcat(rw->tags, s->tags[k]);
		}
		rw->paths = s->paths;
		rw->n_paths = s->n_paths;
		if (row_height(rw) > 1)
			multi = 1;
		for (int k = 0; k < N_COLS; k++)
			for (size_t line = 0; line < row_height(rw); line++) {
				size_t w = strlen(cell(rw, k, line));
				if (w > width[k])
					width[k] = w;
			}
	}
	if (n_rows == 0)
		goto out; /* restic prints nothing at all */

	for (int k = 0; k < N_COLS; k++)
		total += width[k] + (k ? 2 : 0);
	print_line(headers, width);
	for (size_t k = 0; k < total; k++)
		putchar('-');
	putchar('\n');
	for (size_t i = 0; i < n_rows; i++) {
		if (i > 0 && multi)
			putchar('\n');
		for (size_t line = 0; line < row_height(&rows[i]); line++) {
			const char *cells[N_COLS];
			for (int k = 0; k < N_COLS; k++)
				cells[k] = cell(&rows[i], k, line);
			print_line(cells, width);
		}
	}
	for (size_t k = 0; k < total; k++)
		putchar('-');
	putchar('\n');
	printf("%zu snapshots\n", n_rows);
out:
	for (size_t i = 0; i < n_rows; i++)
		free(rows[i].tags);
	free(rows);
	return r;
}

/* ---- command ---- */

static int string_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Mark in keep[] the snapshots named by argv[first..argc) (ids, prefixes or
 * "latest" among those passing the filter); unmark the others. */
static int select_ids(unsigned char *keep, const cairn_snapshot *list, size_t n, cairn_repo *repo,
	char **argv, int first, int argc)
{
	unsigned char *named = calloc(n ? n : 1, 1);

	if (!named)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (int a = first; a < argc; a++) {
		size_t pick = (size_t)-1;

		if (strcmp(argv[a], "latest") == 0) {
			for (size_t i = 0; i < n; i++) /* sorted oldest first: the last passing one */
				if (keep[i])
					pick = i;
		} else {
			cairn_id id;
			int r = cairn_repo_find_snapshot(&id, repo, argv[a]);
			if (r < 0) {
				free(named);
				return r;
			}
			for (size_t i = 0; i < n; i++)
				if (cairn_id_equal(&list[i].id, &id))
					pick = i;
		}
		if (pick == (size_t)-1) {
			free(named);
			return cairn_error_set(CAIRN_ENOTFOUND, "no snapshot matches '%s'", argv[a]);
		}
		named[pick] = 1;
	}
	for (size_t i = 0; i < n; i++)
		keep[i] = keep[i] && named[i];
	free(named);
	return 0;
}

int cmd_snapshots(const cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "host", required_argument, NULL, 'H' },
		{ "path", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	cli_snapshot_filter filter = { 0 };
	cli_repo r = CLI_REPO_INIT;
	cairn_snapshot *list = NULL;
	unsigned char *keep = NULL;
	size_t n = 0;
	int c, rc, json = g->json;

	while ((c = getopt_long(argc, argv, "hH:", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			rc = cli_filter_add(&filter.tags, &filter.n_tags, optarg);
			break;
		case 'H':
			rc = cli_filter_add(&filter.hosts, &filter.n_hosts, optarg);
			break;
		case 'P':
			rc = cli_filter_add(&filter.paths, &filter.n_paths, optarg);
			break;
		case 'j':
			json = 1;
			rc = 0;
			break;
		case 'h':
			fputs(cmd_snapshots_usage, stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			fputs(cmd_snapshots_usage, stderr);
			rc = CLI_EXIT_FATAL;
			goto out;
		}
		if (rc < 0) {
			rc = cli_fail("cannot parse options");
			goto out;
		}
	}

	if ((rc = cli_repo_open(&r, g, CLI_LOCK_SHARED_DEFERRED, 0)) != 0)
		goto out;
	if (cairn_repo_list_snapshots(&list, &n, r.repo) < 0) {
		rc = cli_fail("cannot list snapshots");
		goto out;
	}
	if (!(keep = calloc(n ? n : 1, 1))) {
		cli_error("out of memory");
		rc = CLI_EXIT_FATAL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		keep[i] = (unsigned char)cli_snapshot_matches(&list[i], &filter);
		if (list[i].n_paths > 1)
			qsort(list[i].paths, list[i].n_paths, sizeof(*list[i].paths), string_compare);
	}
	if (optind < argc && select_ids(keep, list, n, r.repo, argv, optind, argc) < 0) {
		rc = cli_fail("cannot select snapshots");
		goto out;
	}
	if ((json ? print_json(list, n, keep) : print_table(list, n, keep)) < 0) {
		rc = cli_fail("cannot print snapshots");
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	fflush(stdout);
	free(keep);
	cairn_snapshot_list_free(list, n);
	cli_filter_release(&filter);
	rc = cli_repo_finish(&r, rc);
	return rc;
}
