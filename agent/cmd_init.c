/* cmd_init.c: `cairn init`: create a repository (config, one key, layout). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"

const char cmd_init_usage[] =
	"Usage: cairn -r REPO init [--repository-version 1|2]\n\n"
	"Create a new repository: a random chunker polynomial, a random master key\n"
	"wrapped by the password (scrypt), and the folder layout.\n\n"
	"Options:\n"
	"      --repository-version V   repository format version, 1 or 2 (default 2)\n";

int cmd_init(const cli_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
		{ "repository-version", required_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	cairn_repo_init_options opts = CAIRN_REPO_INIT_OPTIONS_INIT;
	cairn_buf password = CAIRN_BUF_INIT;
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	char hex[CAIRN_ID_HEX_SIZE];
	int c, rc = CLI_EXIT_FATAL;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'V':
			if (strcmp(optarg, "2") == 0 || strcmp(optarg, "latest") == 0)
				opts.repo_version = 2;
			else if (strcmp(optarg, "1") == 0 || strcmp(optarg, "stable") == 0)
				opts.repo_version = 1;
			else {
				cli_error("invalid --repository-version '%s': want 1 or 2", optarg);
				return CLI_EXIT_FATAL;
			}
			break;
		default:
			fputs(cmd_init_usage, stderr);
			return CLI_EXIT_FATAL;
		}
	}
	if (optind != argc) {
		cli_error("init takes no arguments");
		return CLI_EXIT_FATAL;
	}
	if (!g->repo || !*g->repo) {
		cli_error("no repository given: use -r or set CAIRN_REPOSITORY");
		return CLI_EXIT_FATAL;
	}
	if (cairn_backend_open_ex(&be, g->repo, 0, &g->backend) < 0) {
		rc = cli_fail("cannot open '%s'", g->repo);
		goto out;
	}
	if (cli_read_password(&password, g, 1) < 0) {
		rc = cli_fail("cannot read the password");
		goto out;
	}
	if (cairn_repo_init(&repo, be, (const char *)password.data, password.len, &opts) < 0) {
		rc = cli_fail("cannot create repository at '%s'", cairn_backend_location(be));
		goto out;
	}
	cairn_id_to_hex(hex, &cairn_repo_config(repo)->id);
	if (g->json) {
		printf("{\"message_type\":\"initialized\",\"id\":\"%s\",\"repository\":", hex);
		json_t *loc = json_string(cairn_backend_location(be));
		char *t = json_dumps(loc, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
		printf("%s}\n", t ? t : "null");
		free(t);
		json_decref(loc);
	} else if (!g->quiet) {
		printf("created restic repository %.10s at %s\n\n"
			"Please note that knowledge of your password is required to access\n"
			"the repository. Losing your password means that your data is\n"
			"irrecoverably lost.\n", hex, cairn_backend_location(be));
	}
	rc = CLI_EXIT_OK;
out:
	cairn_buf_wipe(&password);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	return rc;
}
