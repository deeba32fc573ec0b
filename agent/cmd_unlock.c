/* cmd_unlock.c: `cairn unlock [--remove-all]`: delete stale lock files
 * (older than 30 minutes, or left by a process of this host that is gone),
 * or every lock file with --remove-all, and say how many went.
 *
 * It takes no lock itself (it is how a repository is freed from a crashed
 * writer) and does not load the index.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

const char cmd_unlock_usage[] =
	"Usage: cairn unlock [--remove-all]\n"
	"\n"
	"Remove stale locks: those older than 30 minutes and those left by a\n"
	"process on this host that no longer runs (after a crash or kill -9).\n"
	"\n"
	"Options:\n"
	"      --remove-all   remove every lock, also those of running processes\n"
	"  -h, --help         show this help\n";

int cmd_unlock(const cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "remove-all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	cli_repo r = CLI_REPO_INIT;
	size_t removed = 0;
	int c, remove_all = 0, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			remove_all = 1;
			break;
		case 'h':
			fputs(cmd_unlock_usage, stdout);
			return CLI_EXIT_OK;
		default:
			fputs(cmd_unlock_usage, stderr);
			return CLI_EXIT_FATAL;
		}
	}
	if (optind < argc) {
		cli_error("unlock takes no arguments (got '%s')", argv[optind]);
		return CLI_EXIT_FATAL;
	}
	if ((rc = cli_repo_open(&r, g, CLI_LOCK_NONE, 0)) != 0)
		goto out;
	if (cairn_lock_remove(&removed, r.repo, remove_all) < 0) {
		rc = cli_fail("cannot remove locks (%zu removed)", removed);
		goto out;
	}
	if (!g->quiet)
		printf("successfully removed %zu locks\n", removed);
	rc = CLI_EXIT_OK;
out:
	cli_repo_close(&r);
	return rc;
}
