/* cmd_restore.c: `cairn restore SNAPSHOT[:SUBPATH] --target DIR`: pick the
 * snapshot (an id, a unique prefix, or "latest" under the --host/--tag/
 * --path filters), find the tree to restore (the root, or SUBPATH's
 * directory), run the restorer and print restic's messages and a summary.
 *
 * Exit codes: 0 everything restored (and verified), 1 any entry failed or a
 * fatal error, 130 interrupted.  The repository is opened with a shared
 * lock, released on every path out.
 *
 * --threads sets the restorer's worker threads (default: the online cores);
 * $CAIRN_RESTORE_PLAN_LIMIT (bytes) overrides the size of one batch's plan,
 * so tests can make a small snapshot run in many batches.  The --json
 * summary adds to restic's fields how the packs were read: packs_read,
 * pack_loads, bytes_loaded, bytes_written, batches.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "restorer.h"
#include "tree_walk.h"

const char cmd_restore_usage[] =
	"Usage: cairn -r REPO restore SNAPSHOT[:SUBPATH] --target DIR [options]\n\n"
	"Restore a snapshot (\"latest\" is the newest one matching --host/--tag/--path)\n"
	"into DIR.  With :SUBPATH (e.g. latest:/home/me/src) only that directory's\n"
	"contents are restored, and include/exclude paths are relative to it.\n"
	"Existing files in DIR are replaced, existing directories reused; a symbolic\n"
	"link inside DIR is never followed.\n\n"
	"Options:\n"
	"  -t, --target DIR      directory to restore to (created if missing)\n"
	"  -i, --include P       restore only entries matching pattern P (repeatable);\n"
	"                        \"/src/sub\" is anchored at the root, \"*.c\" matches at\n"
	"                        any depth, the parent directories come along\n"
	"  -e, --exclude P       do not restore entries matching P (repeatable)\n"
	"      --verify          re-read every restored file and check its content\n"
	"      --threads N       write file content with N threads (default: the\n"
	"                        number of cores); each needed pack is read once\n"
	"  -H, --host H          with \"latest\": only snapshots of host H (repeatable)\n"
	"      --tag T[,T]       with \"latest\": only snapshots with these tags (repeatable)\n"
	"      --path P          with \"latest\": only snapshots of path P (repeatable)\n";

/* A whole decimal number in [min, max]. */
static int parse_count(int *out, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "1:02" / "1:02:03", restic's elapsed-time form. */
static void format_duration(char *buf, size_t size, double seconds)
{
	unsigned long s = (unsigned long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

static void print_summary(const cli_globals *g, const restorer_stats *st, double elapsed,
	int verify)
{
	char bytes[32], took[32];

	if (g->json) {
		json_t *o = json_pack("{s:s, s:f, s:I, s:I, s:I, s:I}",
			"message_type", "summary", "seconds_elapsed", elapsed,
			"total_files", (json_int_t)st->total_files,
			"files_restored", (json_int_t)st->files_restored,
			"total_bytes", (json_int_t)st->total_bytes,
			"bytes_restored", (json_int_t)st->bytes_restored);
		if (o) {
			json_object_set_new(o, "packs_read", json_integer((json_int_t)st->packs_read));
			json_object_set_new(o, "pack_loads", json_integer((json_int_t)st->pack_loads));
			json_object_set_new(o, "bytes_loaded", json_integer((json_int_t)st->bytes_loaded));
			json_object_set_new(o, "bytes_written", json_integer((json_int_t)st->bytes_written));
			json_object_set_new(o, "batches", json_integer((json_int_t)st->batches));
			if (verify)
				json_object_set_new(o, "files_verified", json_integer((json_int_t)st->files_verified));
			cli_json_print(o);
			json_decref(o);
		}
		return;
	}
	if (g->quiet)
		return;
	format_duration(took, sizeof(took), elapsed);
	printf("Summary: Restored %llu of %llu files (%s) and %llu other entries in %s\n",
		(unsigned long long)st->files_restored, (unsigned long long)st->total_files,
		cli_format_bytes(bytes, sizeof(bytes), st->bytes_restored),
		(unsigned long long)st->other_restored, took);
	if (verify)
		printf("verified %llu files, %llu mismatches\n", (unsigned long long)st->files_verified,
			(unsigned long long)st->verify_errors);
}

int cmd_restore(const cli_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
		{ "target", required_argument, NULL, 't' },
		{ "include", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'e' },
		{ "verify", no_argument, NULL, 'V' },
		{ "threads", required_argument, NULL, 'j' },
		CLI_FILTER_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	cli_snapshot_filter filter = { 0 };
	restorer_options opts = { 0 };
	const char **includes = NULL, **excludes = NULL;
	size_t n_includes = 0, n_excludes = 0;
	cli_repo cr = CLI_REPO_INIT;
	cairn_snapshot snap = CAIRN_SNAPSHOT_INIT;
	cairn_node sub = CAIRN_NODE_INIT;
	cairn_buf desc = CAIRN_BUF_INIT;
	restorer_stats st;
	cairn_id tree;
	char *spec = NULL, *subpath = NULL;
	double start;
	int c, r = 0, rc = CLI_EXIT_FATAL;

	while ((c = getopt_long(argc, argv, "t:i:e:H:h", options, NULL)) != -1) {
		switch (c) {
		case 't': opts.target = optarg; break;
		case 'i': r = cli_filter_add(&includes, &n_includes, optarg); break;
		case 'e': r = cli_filter_add(&excludes, &n_excludes, optarg); break;
		case 'V': opts.verify = 1; break;
		case 'j':
			if (parse_count(&opts.threads, optarg, 1, 256) < 0) {
				cli_error("--threads wants a number from 1 to 256, not '%s'", optarg);
				goto out;
			}
			break;
		case 'H': case 'T': case 'P': r = cli_filter_option(&filter, c, optarg); break;
		case 'h':
			fputs(cmd_restore_usage, stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			fputs(cmd_restore_usage, stderr);
			goto out;
		}
		if ((c == 'i' || c == 'e' || c == 'H' || c == 'T' || c == 'P') && r < 0) {
			cli_fail("cannot parse options");
			goto out;
		}
	}
	if (argc - optind != 1) {
		cli_error("restore needs exactly one snapshot (an id or \"latest\"), see 'cairn help restore'");
		goto out;
	}
	if (!opts.target || !*opts.target) {
		cli_error("please give a directory to restore to (--target)");
		goto out;
	}
	if (!opts.threads) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		opts.threads = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
	}
	if (getenv("CAIRN_RESTORE_PLAN_LIMIT")) {
		int limit;
		if (parse_count(&limit, getenv("CAIRN_RESTORE_PLAN_LIMIT"), 1, 1 << 30) < 0) {
			cli_error("CAIRN_RESTORE_PLAN_LIMIT wants a number of bytes");
			goto out;
		}
		opts.plan_limit = (size_t)limit;
	}
	opts.includes = includes;
	opts.n_includes = n_includes;
	opts.excludes = excludes;
	opts.n_excludes = n_excludes;

	if (!(spec = strdup(argv[optind]))) {
		cli_error("out of memory");
		goto out;
	}
	if ((subpath = strchr(spec, ':')))
		*subpath++ = '\0';

	if (cli_repo_open(&cr, g, CLI_LOCK_SHARED_DEFERRED, 1) != 0)
		goto out;
	if (cli_find_snapshot(&snap, cr.repo, spec, &filter) != 0)
		goto out;
	tree = snap.tree;
	if (subpath && *subpath) {
		if (tw_resolve(&sub, cr.repo, &snap.tree, subpath) < 0) {
			cli_fail("cannot restore '%s'", subpath);
			goto out;
		}
		if (sub.type != CAIRN_NODE_DIR || !sub.has_subtree) {
			cli_error("cannot restore '%s': not a directory (restore its directory with --include)",
				subpath);
			goto out;
		}
		tree = sub.subtree;
	}

	if (tw_snapshot_describe(&desc, &snap) < 0) {
		cli_fail("cannot describe the snapshot");
		goto out;
	}
	if (!g->json && !g->quiet)
		printf("restoring %s%s%s to %s\n", (const char *)desc.data, subpath && *subpath ? ":" : "",
			subpath && *subpath ? subpath : "", opts.target);
	fflush(stdout);

	start = now_seconds();
	r = restorer_run(&st, cr.repo, &tree, &opts, g);
	if (r == CAIRN_ECANCELED || cli_interrupted()) {
		cli_error("interrupted");
		rc = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (r < 0) {
		cli_fail("restore to '%s' failed", opts.target);
		goto out;
	}
	print_summary(g, &st, now_seconds() - start, opts.verify);
	if (st.errors || st.verify_errors) {
		if (st.errors)
			cli_error("there %s %llu error%s", st.errors == 1 ? "was" : "were",
				(unsigned long long)st.errors, st.errors == 1 ? "" : "s");
		if (st.verify_errors)
			cli_error("%llu file%s did not verify", (unsigned long long)st.verify_errors,
				st.verify_errors == 1 ? "" : "s");
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	fflush(stdout);
	cairn_buf_release(&desc);
	cairn_node_release(&sub);
	cairn_snapshot_release(&snap);
	rc = cli_repo_finish(&cr, rc);
	free(spec);
	free(includes);
	free(excludes);
	cli_filter_release(&filter);
	return rc;
}
