/* cmd_ls.c: `cairn ls SNAPSHOT [DIR...]`: list the entries of a snapshot as
 * restic 0.14 does.  Without DIR: every entry, depth first in name order.
 * With DIR: the DIR itself and its direct children, or everything below it
 * with --recursive.
 *
 * Text output prints names as the raw bytes they are; --json prints one
 * snapshot object and then one object per node, each valid JSON on its own
 * line (bytes that are not UTF-8 become U+FFFD, as in Go's encoder).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "tree_walk.h"

const char cmd_ls_usage[] =
	"Usage: cairn -r REPO ls [options] SNAPSHOT [DIR...]\n\n"
	"List the files and directories in a snapshot (\"latest\" is the newest one\n"
	"matching --host/--tag/--path).  With DIR, only that directory and its\n"
	"entries are listed (everything below it with --recursive).\n\n"
	"Options:\n"
	"  -l, --long            also show mode, uid, gid, size and modification time\n"
	"      --recursive       with DIR: list everything below it\n"
	"  -H, --host H          with \"latest\": only snapshots of host H (repeatable)\n"
	"      --tag T[,T]       with \"latest\": only snapshots with these tags (repeatable)\n"
	"      --path P          with \"latest\": only snapshots of path P (repeatable)\n"
	"      --json            one JSON object per line (global option)\n";

typedef struct ls_state {
	const cli_globals *g;
	int long_format, recursive;
	char **dirs;          /* normalised absolute paths */
	size_t n_dirs;
	cairn_buf scratch;
	int failed;
} ls_state;

/* 1 if `p` is `base` or lies below it ("/" is the base of everything). */
static int has_path_prefix(const char *base, const char *p)
{
	size_t n = strlen(base);
	if (strcmp(base, "/") == 0)
		return 1;
	return strncmp(base, p, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static json_t *json_bytes(ls_state *s, const char *raw)
{
	if (tw_utf8_sanitize(&s->scratch, raw) < 0)
		return NULL;
	return json_string((const char *)s->scratch.data);
}

static json_t *json_time(cairn_time t)
{
	char text[CAIRN_TIME_TEXT_SIZE];
	cairn_time_format(text, t, cairn_time_local_offset(t));
	return json_string(text);
}

static int print_node(ls_state *s, const char *path, const cairn_node *n)
{
	if (s->g->json) {
		json_t *o = json_object();
		char perm[32];
		int bad = !o;
		bad = bad || json_object_set_new(o, "name", json_bytes(s, n->name)) < 0;
		bad = bad || json_object_set_new(o, "type", json_string(cairn_node_type_name(n->type))) < 0;
		bad = bad || json_object_set_new(o, "path", json_bytes(s, path)) < 0;
		bad = bad || json_object_set_new(o, "uid", json_integer(n->uid)) < 0;
		bad = bad || json_object_set_new(o, "gid", json_integer(n->gid)) < 0;
		if (n->type == CAIRN_NODE_FILE)
			bad = bad || json_object_set_new(o, "size", json_integer((json_int_t)n->size)) < 0;
		if (n->mode)
			bad = bad || json_object_set_new(o, "mode", json_integer(n->mode)) < 0;
		tw_mode_string(perm, n->mode);
		bad = bad || json_object_set_new(o, "permissions", json_string(perm)) < 0;
		bad = bad || json_object_set_new(o, "mtime", json_time(n->mtime)) < 0;
		bad = bad || json_object_set_new(o, "atime", json_time(n->atime)) < 0;
		bad = bad || json_object_set_new(o, "ctime", json_time(n->ctime)) < 0;
		bad = bad || json_object_set_new(o, "struct_type", json_string("node")) < 0;
		if (!bad)
			cli_json_print(o);
		json_decref(o);
		return bad ? cairn_error_set(CAIRN_ENOMEM, "out of memory") : 0;
	}
	if (s->long_format) {
		char mode[32], when[TW_TIME_TEXT_SIZE];
		tw_mode_string(mode, n->mode);
		tw_time_short(when, n->mtime);
		printf("%s %5u %5u %6llu %s %s", mode, n->uid, n->gid, (unsigned long long)n->size,
			when, path);
		if (n->type == CAIRN_NODE_SYMLINK)
			printf(" -> %s", n->linktarget ? n->linktarget : "");
		putchar('\n');
	} else {
		printf("%s\n", path);
	}
	return 0;
}

static int ls_enter(const char *path, const cairn_node *n, void *payload)
{
	ls_state *s = payload;
	int within = s->n_dirs == 0, approaching = 0, r;

	if (cli_interrupted())
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	for (size_t i = 0; i < s->n_dirs && !within; i++)
		within = has_path_prefix(s->dirs[i], path);
	if (within) {
		if ((r = print_node(s, path, n)) < 0)
			return r;
		if (s->n_dirs == 0 || s->recursive)
			return TW_DESCEND;
	}
	/* Go down towards a listed dir that lies deeper. */
	for (size_t i = 0; i < s->n_dirs && !approaching; i++)
		approaching = has_path_prefix(path, s->dirs[i]);
	return approaching ? TW_DESCEND : TW_SKIP;
}

static int ls_tree_error(const char *path, const cairn_node *n, int code, void *payload)
{
	ls_state *s = payload;
	fflush(stdout);
	cli_error("cannot list '%s': %s", path, cairn_error_message());
	s->failed = 1;
	return code == CAIRN_ENOMEM ? code : 0;
}

static int print_header(ls_state *s, const cairn_snapshot *snap)
{
	char hex[CAIRN_ID_HEX_SIZE];

	cairn_id_to_hex(hex, &snap->id);
	if (s->g->json) {
		char text[CAIRN_TIME_TEXT_SIZE], tree[CAIRN_ID_HEX_SIZE];
		json_t *o = json_object(), *paths = json_array(), *tags = NULL, *excl = NULL;
		int bad = !o || !paths;

		cairn_time_format(text, snap->time, snap->time_offset_sec);
		cairn_id_to_hex(tree, &snap->tree);
		bad = bad || json_object_set_new(o, "time", json_string(text)) < 0;
		if (snap->has_parent) {
			char p[CAIRN_ID_HEX_SIZE];
			cairn_id_to_hex(p, &snap->parent);
			bad = bad || json_object_set_new(o, "parent", json_string(p)) < 0;
		}
		bad = bad || json_object_set_new(o, "tree", json_string(tree)) < 0;
		for (size_t i = 0; !bad && i < snap->n_paths; i++)
			bad = json_array_append_new(paths, json_bytes(s, snap->paths[i])) < 0;
		bad = bad || json_object_set(o, "paths", paths) < 0;
		if (snap->hostname)
			bad = bad || json_object_set_new(o, "hostname", json_bytes(s, snap->hostname)) < 0;
		if (snap->username)
			bad = bad || json_object_set_new(o, "username", json_bytes(s, snap->username)) < 0;
		if (snap->uid)
			bad = bad || json_object_set_new(o, "uid", json_integer(snap->uid)) < 0;
		if (snap->gid)
			bad = bad || json_object_set_new(o, "gid", json_integer(snap->gid)) < 0;
		if (snap->n_excludes) {
			bad = bad || !(excl = json_array()) || json_object_set_new(o, "excludes", excl) < 0;
			for (size_t i = 0; !bad && i < snap->n_excludes; i++)
				bad = json_array_append_new(excl, json_bytes(s, snap->excludes[i])) < 0;
		}
		if (snap->n_tags) {
			bad = bad || !(tags = json_array()) || json_object_set_new(o, "tags", tags) < 0;
			for (size_t i = 0; !bad && i < snap->n_tags; i++)
				bad = json_array_append_new(tags, json_bytes(s, snap->tags[i])) < 0;
		}
		if (snap->has_original) {
			char p[CAIRN_ID_HEX_SIZE];
			cairn_id_to_hex(p, &snap->original);
			bad = bad || json_object_set_new(o, "original", json_string(p)) < 0;
		}
		bad = bad || json_object_set_new(o, "id", json_string(hex)) < 0;
		hex[8] = '\0';
		bad = bad || json_object_set_new(o, "short_id", json_string(hex)) < 0;
		bad = bad || json_object_set_new(o, "struct_type", json_string("snapshot")) < 0;
		if (!bad)
			cli_json_print(o);
		json_decref(paths);
		json_decref(o);
		return bad ? cairn_error_set(CAIRN_ENOMEM, "out of memory") : 0;
	}
	if (!s->g->quiet) {
		char when[TW_TIME_TEXT_SIZE];
		tw_time_string(when, snap->time);
		printf("snapshot %.8s of [", hex);
		for (size_t i = 0; i < snap->n_paths; i++)
			printf("%s%s", i ? " " : "", snap->paths[i]);
		printf("] filtered by [");
		for (size_t i = 0; i < s->n_dirs; i++)
			printf("%s%s", i ? " " : "", s->dirs[i]);
		printf("] at %s):\n", when);
	}
	return 0;
}

int cmd_ls(const cli_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "recursive", no_argument, NULL, 'R' },
		CLI_FILTER_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	cli_snapshot_filter filter = { 0 };
	cli_repo cr = CLI_REPO_INIT;
	cairn_snapshot snap = CAIRN_SNAPSHOT_INIT;
	ls_state s;
	tw_visitor v = { ls_enter, NULL, ls_tree_error, NULL };
	int c, r = 0, rc = CLI_EXIT_FATAL;

	memset(&s, 0, sizeof(s));
	s.g = g;
	v.payload = &s;
	while ((c = getopt_long(argc, argv, "lH:h", options, NULL)) != -1) {
		switch (c) {
		case 'l': s.long_format = 1; break;
		case 'R': s.recursive = 1; break;
		case 'H': case 'T': case 'P': r = cli_filter_option(&filter, c, optarg); break;
		case 'h':
			fputs(cmd_ls_usage, stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			fputs(cmd_ls_usage, stderr);
			goto out;
		}
		if (r < 0) {
			cli_fail("cannot parse options");
			goto out;
		}
	}
	if (argc - optind < 1) {
		cli_error("ls needs a snapshot (an id or \"latest\"), see 'cairn help ls'");
		goto out;
	}
	for (int i = optind + 1; i < argc; i++) {
		cairn_buf norm = CAIRN_BUF_INIT;
		if (tw_path_normalize(&norm, argv[i]) < 0 ||
			cairn_strlist_add(&s.dirs, &s.n_dirs, (const char *)norm.data) < 0) {
			cairn_buf_release(&norm);
			cli_fail("invalid path '%s'", argv[i]);
			goto out;
		}
		cairn_buf_release(&norm);
	}

	if (cli_repo_open(&cr, g, CLI_LOCK_SHARED_DEFERRED, 1) != 0)
		goto out;
	if (cli_find_snapshot(&snap, cr.repo, argv[optind], &filter) != 0)
		goto out;
	if (print_header(&s, &snap) < 0) {
		cli_fail("cannot print the snapshot");
		goto out;
	}
	r = tw_walk(cr.repo, &snap.tree, "/", &v);
	fflush(stdout);
	if (r == CAIRN_ECANCELED || cli_interrupted()) {
		cli_error("interrupted");
		rc = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (r < 0) {
		cli_fail("cannot list snapshot %.8s", argv[optind]);
		goto out;
	}
	rc = s.failed ? CLI_EXIT_FATAL : CLI_EXIT_OK;
out:
	fflush(stdout);
	cairn_snapshot_release(&snap);
	rc = cli_repo_finish(&cr, rc);
	cairn_strlist_free(s.dirs, s.n_dirs);
	cairn_buf_release(&s.scratch);
	cli_filter_release(&filter);
	return rc;
}
