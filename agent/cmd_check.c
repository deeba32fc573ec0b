/* cmd_check.c: `cairn check [--read-data]`, the CLI face of checker.c.
 *
 * Takes an exclusive lock as restic's check does (nothing else may change
 * the repository while it is compared with its index), runs the checker and
 * prints what it reports the way restic does: the phase names and hints on
 * stdout, each error on stderr as "error: ...", then either "no errors were
 * found" (exit 0) or "Fatal: repository contains errors" (exit 1).  An
 * interrupted check exits 130; the lock is released on every path.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "cli.h"

const char cmd_check_usage[] =
	"Usage: cairn check [--read-data | --read-data-subset n/t|x%]\n"
	"\n"
	"Check the repository for errors: every index and snapshot file must match\n"
	"its name and decrypt, every pack named by the index must exist with the\n"
	"size the index implies, and every tree of every snapshot must load and\n"
	"verify, with all the blobs it references in the index.\n"
	"\n"
	"Options:\n"
	"      --read-data   also read every pack in full: its SHA-256 must match its\n"
	"                    name, its header the index, and every blob must decrypt,\n"
	"                    decompress and hash to its id\n"
	"      --read-data-subset n/t\n"
	"                    the same for group n of t (t <= 256; packs grouped by the\n"
	"                    first byte of their id), so t runs read every pack once\n"
	"      --read-data-subset x%\n"
	"                    the same for a random x percent of the packs\n"
	"  -h, --help        show this help\n";

static void print_event(checker_event ev, const char *message, uint64_t done, uint64_t total,
	void *payload)
{
	const cli_globals *g = payload;

	switch (ev) {
	case CHECKER_STEP:
		cli_progress_done(g);
		if (!g->quiet) {
			printf("%s\n", message);
			fflush(stdout);
		}
		break;
	case CHECKER_PROGRESS:
		cli_progress(g, "%llu / %llu %s", (unsigned long long)done,
			(unsigned long long)total, message);
		break;
	case CHECKER_ERROR:
		cli_progress_done(g);
		fflush(stdout);
		fprintf(stderr, "error: %s\n", message);
		break;
	case CHECKER_HINT:
		cli_progress_done(g);
		if (!g->quiet) {
			printf("%s\n", message);
			fflush(stdout);
		}
		break;
	}
}

/* "n/t" or "x%" into opts; 0 or -1 (message printed). */
static int parse_subset(checker_options *opts, const char *arg)
{
	char *end;

	if (strchr(arg, '%')) {
		double pct = strtod(arg, &end);
		if (end == arg || strcmp(end, "%") != 0 || !(pct > 0) || pct > 100)
			goto bad;
		opts->subset_fraction = pct / 100.0;
	} else {
		unsigned long n = strtoul(arg, &end, 10), t;
		if (end == arg || *end != '/')
			goto bad;
		t = strtoul(end + 1, &end, 10);
		if (*end || n < 1 || t < 1 || n > t || t > 256)
			goto bad;
		opts->subset_n = (unsigned)n;
		opts->subset_t = (unsigned)t;
	}
	opts->read_data = 1;
	return 0;
bad:
	cli_error("invalid --read-data-subset '%s': want n/t (1 <= n <= t <= 256) or x%% (0 < x <= 100)",
		arg);
	return -1;
}

int cmd_check(const cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "read-data", no_argument, NULL, 'd' },
		{ "read-data-subset", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	checker_options opts = CHECKER_OPTIONS_INIT;
	checker_result res;
	cli_repo r = CLI_REPO_INIT;
	char bytes[32];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			opts.read_data = 1;
			break;
		case 's':
			if (parse_subset(&opts, optarg) < 0)
				return CLI_EXIT_FATAL;
			break;
		case 'h':
			fputs(cmd_check_usage, stdout);
			return CLI_EXIT_OK;
		default:
			fputs(cmd_check_usage, stderr);
			return CLI_EXIT_FATAL;
		}
	}
	if (optind < argc) {
		cli_error("check takes no arguments (got '%s')", argv[optind]);
		return CLI_EXIT_FATAL;
	}

	if ((rc = cli_repo_open(&r, g, CLI_LOCK_EXCLUSIVE, 0)) != 0)
		goto out;

	opts.report = print_event;
	opts.payload = (void *)g;
	opts.interrupted = cli_interrupted;
	rc = checker_run(&res, r.repo, &opts);
	cli_progress_done(g);
	fflush(stdout);
	if (rc == CAIRN_ECANCELED) {
		cli_error("check interrupted");
		rc = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (rc < 0) {
		rc = cli_fail("check failed");
		goto out;
	}
	if (g->verbose) {
		fprintf(stderr, "checked %zu index files, %zu packs, %zu snapshots, %zu trees, "
			"%llu data blob references", res.index_files, res.packs, res.snapshots, res.trees,
			(unsigned long long)res.data_blobs);
		if (opts.read_data)
			fprintf(stderr, "; read %zu packs (%s)", res.packs_read,
				cli_format_bytes(bytes, sizeof(bytes), res.bytes_read));
		fputc('\n', stderr);
	}
	if (res.errors) {
		fprintf(stderr, "Fatal: repository contains errors\n");
		rc = CLI_EXIT_FATAL;
		goto out;
	}
	if (!g->quiet)
		printf("no errors were found\n");
	rc = CLI_EXIT_OK;
out:
	cli_repo_close(&r);
	return rc;
}
