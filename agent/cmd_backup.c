/* cmd_backup.c: `cairn backup PATH...`: a new snapshot of files and
 * directories, incremental from a parent snapshot.
 *
 * Sequence: resolve the targets (a file-system source), open the repository
 * with a shared lock and its index, pick the parent (--parent, else the
 * newest snapshot of this host with the same paths), run the archiver,
 * flush the repository (packs, then index files), confirm the lock, and
 * only then save the snapshot.  A crash or an interrupt therefore leaves at
 * worst packs or index entries that no snapshot names, never a snapshot
 * naming missing data.
 *
 * The lock is deferred (include/cairn/lock.h): restic's 200 ms wait before
 * the second look for other locks runs alongside the index load and the
 * walk, and the second look happens just before the snapshot is saved.  A
 * conflicting exclusive lock found there fails the backup with no snapshot
 * saved; the packs and index files written meanwhile name nothing.
 *
 * The archiver reads and stores files in --threads worker threads (default:
 * one per online core); the snapshot is the same whatever the number.
 *
 * Exit codes: 0; 3 when some entries could not be read (they are left out,
 * the snapshot is written); 1 on a fatal error; 130 on SIGINT/SIGTERM (the
 * blobs stored so far are flushed so the next run can reuse them, no
 * snapshot is written, the lock is removed).
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "archiver.h"
#include "cli.h"
#include "source.h"

const char cmd_backup_usage[] =
	"Usage: cairn -r REPO backup [options] PATH...\n\n"
	"Create a new snapshot of the files and directories at PATH.  Files that are\n"
	"unchanged since the parent snapshot (same size, mtime, ctime and inode) are\n"
	"not read again.  As in restic, an absolute PATH keeps its whole path in the\n"
	"snapshot (/var/lib/x stays /var/lib/x); a relative one keeps its cleaned\n"
	"components without leading \"..\"; \".\" puts its entries at the root.\n\n"
	"Options:\n"
	"      --tag TAG             add a tag (repeatable; \"a,b\" adds both)\n"
	"  -H, --host HOST           hostname recorded in the snapshot (default: this host)\n"
	"      --parent SNAPSHOT     use this snapshot as the parent (default: the latest\n"
	"                            snapshot of this host with the same paths)\n"
	"  -e, --exclude PATTERN     leave out entries matching PATTERN (repeatable): a\n"
	"                            pattern without '/' matches names, one with '/' paths\n"
	"  -x, --one-file-system     do not enter directories on other file systems\n"
	"  -f, --force               read every file, even unchanged ones\n"
	"      --ignore-inode        ignore inode number (and ctime) changes when\n"
	"                            checking for unchanged files\n"
	"      --ignore-ctime        ignore ctime changes when checking for unchanged files\n"
	"      --threads N           read, chunk and store with N threads (default: one\n"
	"                            per online core)\n"
	"      --with-atime          store real access times (default: atime = mtime)\n\n"
	"Exit status: 0 success, 3 some files could not be read (the snapshot was\n"
	"saved without them), 1 fatal error, 130 interrupted (no snapshot saved).\n";

typedef struct backup_ctx {
	const cli_globals *g;
	double start;
} backup_ctx;

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(int is_error, const char *path, const char *message, void *payload)
{
	backup_ctx *ctx = payload;
	cli_progress_done(ctx->g);
	if (is_error)
		cli_error("cannot read '%s': %s", path, message);
	else if (!ctx->g->quiet)
		cli_error("warning: '%s': %s", path, message);
}

static int is_interrupted(void *payload)
{
	return cli_interrupted();
}

static void format_duration(char *buf, size_t size, double seconds)
{
	unsigned long s = (unsigned long)seconds;
	if (s >= 3600)
		snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

/* The archiver calls this one call at a time, from any of its threads. */
static void show_progress(const archiver_stats *st, const char *path, void *payload)
{
	backup_ctx *ctx = payload;
	char bytes[32], rate[32], dur[32];
	size_t len = strlen(path);
	double secs;

	if (!ctx->g->progress)
		return;
	secs = now_seconds() - ctx->start;
	format_duration(dur, sizeof(dur), secs);
	cli_format_bytes(bytes, sizeof(bytes), st->total_bytes_processed);
	cli_format_bytes(rate, sizeof(rate),
		secs > 0 ? (uint64_t)((double)st->total_bytes_processed / secs) : 0);
	cli_progress(ctx->g, "[%s] %llu files, %s, %s/s  %s%s", dur,
		(unsigned long long)st->total_files_processed, bytes, rate,
		len > 100 ? "..." : "", len > 100 ? path + len - 97 : path);
}

/* --threads: 1 .. 256. */
static int parse_threads(unsigned *out, const char *s)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !end || *end || end == s || *s == '-' || v < 1 || v > 256)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Split "a,b" into tags and add them. */
static int add_tags(cairn_snapshot *s, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int r = 0;
	if (!copy)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (char *t = strtok_r(copy, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save))
		if (!cairn_snapshot_has_tag(s, t))
			r = cairn_strlist_add(&s->tags, &s->n_tags, t);
	free(copy);
	return r;
}

/* 1 if the snapshot's paths are exactly the set `paths`. */
static int same_paths(const cairn_snapshot *s, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!cairn_snapshot_has_path(s, paths[i]))
			return 0;
	for (size_t i = 0; i < s->n_paths; i++) {
		int found = 0;
		for (size_t j = 0; j < n && !found; j++)
			found = strcmp(s->paths[i], paths[j]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* The newest snapshot of `host` with the same paths, not newer than `now`.
 * 1 and *out filled when found, 0 when none, negative on error. */
static int find_parent(cairn_snapshot *out, cairn_repo *repo, const char *host,
	const char *const *paths, size_t n_paths, cairn_time now)
{
	cairn_snapshot *list = NULL;
	size_t n = 0, best = (size_t)-1;
	int r;

	if ((r = cairn_repo_list_snapshots(&list, &n, repo)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const cairn_snapshot *s = &list[i];
		if (!s->hostname || strcmp(s->hostname, host) != 0 || !same_paths(s, paths, n_paths) ||
			cairn_time_compare(s->time, now) > 0)
			continue;
		if (best == (size_t)-1 || cairn_time_compare(s->time, list[best].time) >= 0)
			best = i;
	}
	r = 0;
	if (best != (size_t)-1) {
		*out = list[best];
		memset(&list[best], 0, sizeof(list[best])); /* moved */
		r = 1;
	}
	cairn_snapshot_list_free(list, n);
	return r;
}

static void print_summary(const cli_globals *g, const archiver_stats *st,
	const cairn_repo_stats *rs, const cairn_snapshot *snap, double seconds)
{
	char hex[CAIRN_ID_HEX_SIZE], a[32], b[32], dur[32];

	cairn_id_to_hex(hex, &snap->id);
	if (g->json) {
		json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:s}",
			"message_type", "summary",
			"files_new", (json_int_t)st->files_new,
			"files_changed", (json_int_t)st->files_changed,
			"files_unmodified", (json_int_t)st->files_unmodified,
			"dirs_new", (json_int_t)st->dirs_new,
			"dirs_changed", (json_int_t)st->dirs_changed,
			"dirs_unmodified", (json_int_t)st->dirs_unmodified,
			"data_blobs", (json_int_t)st->data_blobs,
			"tree_blobs", (json_int_t)st->tree_blobs,
			"data_added", (json_int_t)st->data_added,
			"data_added_packed", (json_int_t)rs->data_added_stored,
			"total_files_processed", (json_int_t)st->total_files_processed,
			"total_bytes_processed", (json_int_t)st->total_bytes_processed,
			"total_duration", seconds,
			"snapshot_id", hex);
		if (o)
			cli_json_print(o);
		json_decref(o);
		return;
	}
	if (g->quiet)
		return;
	printf("\nFiles:       %5llu new, %5llu changed, %5llu unmodified\n",
		(unsigned long long)st->files_new, (unsigned long long)st->files_changed,
		(unsigned long long)st->files_unmodified);
	printf("Dirs:        %5llu new, %5llu changed, %5llu unmodified\n",
		(unsigned long long)st->dirs_new, (unsigned long long)st->dirs_changed,
		(unsigned long long)st->dirs_unmodified);
	printf("Added to the repository: %s (%s stored)\n\n",
		cli_format_bytes(a, sizeof(a), st->data_added),
		cli_format_bytes(b, sizeof(b), rs->data_added_stored));
	format_duration(dur, sizeof(dur), seconds);
	printf("processed %llu files, %s in %s\n", (unsigned long long)st->total_files_processed,
		cli_format_bytes(a, sizeof(a), st->total_bytes_processed), dur);
	printf("snapshot %.8s saved\n", hex);
}

int cmd_backup(const cli_globals *g, int argc, char **argv)
{
	enum { OPT_TAG = 1000, OPT_PARENT, OPT_WITH_ATIME, OPT_IGNORE_INODE, OPT_IGNORE_CTIME,
		OPT_THREADS };
	static const struct option options[] = {
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "host", required_argument, NULL, 'H' },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "exclude", required_argument, NULL, 'e' },
		{ "one-file-system", no_argument, NULL, 'x' },
		{ "force", no_argument, NULL, 'f' },
		{ "with-atime", no_argument, NULL, OPT_WITH_ATIME },
		{ "ignore-inode", no_argument, NULL, OPT_IGNORE_INODE },
		{ "ignore-ctime", no_argument, NULL, OPT_IGNORE_CTIME },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ NULL, 0, NULL, 0 },
	};
	backup_ctx ctx = { g, now_seconds() };
	cairn_snapshot snap = CAIRN_SNAPSHOT_INIT, parent = CAIRN_SNAPSHOT_INIT;
	cli_repo cr = CLI_REPO_INIT;
	source_fs_options fso = { 0 };
	archiver_options ao = ARCHIVER_OPTIONS_INIT;
	archiver_stats st;
	cairn_repo_stats rs;
	const char **excludes = NULL;
	size_t n_excludes = 0;
	const char *host = NULL, *parent_spec = NULL;
	const char *const *paths;
	size_t n_paths;
	char hostbuf[256];
	source *src = NULL;
	int c, force = 0, one_fs = 0, with_atime = 0, have_parent = 0, rc = CLI_EXIT_FATAL, r;
	unsigned threads = 0, change_ignore = 0;

	memset(&st, 0, sizeof(st));
	memset(&rs, 0, sizeof(rs));
	snap.time = cairn_time_now();
	snap.time_offset_sec = cairn_time_local_offset(snap.time);
	while ((c = getopt_long(argc, argv, "H:e:xf", options, NULL)) != -1) {
		switch (c) {
		case OPT_TAG:
			if (add_tags(&snap, optarg) < 0) {
				cli_fail("cannot add tag '%s'", optarg);
				goto out;
			}
			break;
		case 'H':
			host = optarg;
			break;
		case OPT_PARENT:
			parent_spec = optarg;
			break;
		case 'e':
			if (cli_filter_add(&excludes, &n_excludes, optarg) < 0 ||
				cairn_strlist_add(&snap.excludes, &snap.n_excludes, optarg) < 0) {
				cli_fail("cannot add exclude '%s'", optarg);
				goto out;
			}
			break;
		case 'x':
			one_fs = 1;
			break;
		case 'f':
			force = 1;
			break;
		case OPT_WITH_ATIME:
			with_atime = 1;
			break;
		case OPT_IGNORE_INODE:
			/* as restic 0.14: an inode that changes (FUSE, restored
			 * copies) comes with a new ctime, so that is ignored too */
			change_ignore |= ARCHIVER_IGNORE_INODE | ARCHIVER_IGNORE_CTIME;
			break;
		case OPT_IGNORE_CTIME:
			change_ignore |= ARCHIVER_IGNORE_CTIME;
			break;
		case OPT_THREADS:
			if (parse_threads(&threads, optarg) < 0) {
				cli_error("invalid --threads '%s': want a number from 1 to 256", optarg);
				goto out;
			}
			break;
		default:
			fputs(cmd_backup_usage, stderr);
			goto out;
		}
	}
	if (optind >= argc) {
		cli_error("backup needs at least one PATH (see 'cairn help backup')");
		goto out;
	}
	if (!host) {
		if (gethostname(hostbuf, sizeof(hostbuf)) < 0) {
			cli_error("cannot get the hostname: use --host");
			goto out;
		}
		hostbuf[sizeof(hostbuf) - 1] = '\0';
		host = hostbuf;
	}

	/* the targets first: fail before touching the repository */
	fso.targets = (const char *const *)(argv + optind);
	fso.n_targets = (size_t)(argc - optind);
	fso.excludes = excludes;
	fso.n_excludes = n_excludes;
	fso.one_file_system = one_fs;
	fso.with_atime = with_atime;
	fso.report = report;
	fso.report_payload = &ctx;
	if (source_fs_new(&src, &fso) < 0) {
		cli_fail("nothing to back up");
		goto out;
	}
	paths = source_fs_paths(src, &n_paths);

	if ((rc = cli_repo_open(&cr, g, CLI_LOCK_SHARED_DEFERRED, 1)) != 0)
		goto out;
	rc = CLI_EXIT_FATAL;

	if (parent_spec) {
		if (cli_find_snapshot(&parent, cr.repo, parent_spec, NULL) != 0)
			goto out;
		have_parent = 1;
	} else if (!force) {
		if ((r = find_parent(&parent, cr.repo, host, paths, n_paths, snap.time)) < 0) {
			cli_fail("cannot look for a parent snapshot");
			goto out;
		}
		have_parent = r;
	}
	if (!g->json && !g->quiet) {
		char hex[CAIRN_ID_HEX_SIZE];
		if (have_parent) {
			cairn_id_to_hex(hex, &parent.id);
			printf("using parent snapshot %.8s\n", hex);
		} else {
			printf("no parent snapshot found, will read all files\n");
		}
		fflush(stdout);
	}

	ao.parent_tree = have_parent ? &parent.tree : NULL;
	ao.force = force;
	ao.change_ignore = change_ignore;
	ao.threads = threads;
	ao.interrupted = is_interrupted;
	ao.progress = show_progress;
	ao.report = report;
	ao.payload = &ctx;
	r = archiver_run(&snap.tree, &st, cr.repo, src, &ao);
	cli_progress_done(g);
	if (r == CAIRN_ECANCELED) {
		/* keep what is stored complete and indexed for the next run */
		if (cairn_repo_flush(cr.repo) < 0)
			cli_fail("cannot store the data read so far");
		cli_error("interrupted, no snapshot saved");
		rc = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (r < 0) {
		cli_fail("backup failed");
		goto out;
	}
	if (cairn_repo_flush(cr.repo) < 0) {
		cli_fail("cannot store the backup's data");
		goto out;
	}
	if (cli_interrupted()) {
		cli_error("interrupted, no snapshot saved");
		rc = CLI_EXIT_INTERRUPTED;
		goto out;
	}

	for (size_t i = 0; i < n_paths; i++)
		if (cairn_strlist_add(&snap.paths, &snap.n_paths, paths[i]) < 0) {
			cli_fail("cannot record the paths");
			goto out;
		}
	if (!(snap.hostname = strdup(host))) {
		cli_error("out of memory");
		goto out;
	}
	{
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res &&
			!(snap.username = strdup(pw.pw_name))) {
			cli_error("out of memory");
			goto out;
		}
	}
	snap.uid = (uint32_t)getuid();
	snap.gid = (uint32_t)getgid();
	if (have_parent) {
		snap.has_parent = 1;
		snap.parent = parent.id;
	}
	/* the lock's second look, 200 ms after it was written: long past
	 * unless the backup was quick; a conflict stops us before the one
	 * irreversible step */
	if (cli_repo_confirm(&cr) != 0)
		goto out;
	if (cairn_repo_save_snapshot(cr.repo, &snap) < 0) {
		cli_fail("cannot save the snapshot");
		goto out;
	}
	cairn_repo_get_stats(cr.repo, &rs);
	print_summary(g, &st, &rs, &snap, now_seconds() - ctx.start);
	rc = st.errors ? CLI_EXIT_PARTIAL : CLI_EXIT_OK;
	if (st.errors && !g->json)
		cli_error("%llu %s could not be read; the snapshot was saved without %s",
			(unsigned long long)st.errors, st.errors == 1 ? "entry" : "entries",
			st.errors == 1 ? "it" : "them");
out:
	cli_repo_close(&cr);
	source_free(src);
	cairn_snapshot_release(&snap);
	cairn_snapshot_release(&parent);
	free(excludes);
	return rc;
}
