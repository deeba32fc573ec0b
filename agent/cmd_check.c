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
#include <string.h>

#include "checker.h"
#include "cli.h"

const char cmd_check_usage[] =
	"Usage: cairn check [--read-data]\n"
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

int cmd_check(const cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "read-data", no_argument, NULL, 'd' },
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
