/* main.c: the `cairn` program's entry point: global options, the command
 * table, help.
 *
 * Global options may appear before or after the command name (restic users
 * write both `restic -r R backup` and `restic backup -r R`); they are taken
 * out of argv here, and what remains is handed to the command with the
 * command name as argv[0].  Everything after a literal "--" is left alone.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct command {
	const char *name;
	int (*run)(const cli_globals *g, int argc, char **argv);
	const char *usage;
	const char *summary;
} command;

static const command commands[] = {
	{ "init", cmd_init, cmd_init_usage, "create a new repository" },
	{ "backup", cmd_backup, cmd_backup_usage, "create a new snapshot of files and directories" },
	{ "snapshots", cmd_snapshots, cmd_snapshots_usage, "list snapshots" },
	{ "ls", cmd_ls, cmd_ls_usage, "list the files in a snapshot" },
	{ "dump", cmd_dump, cmd_dump_usage, "print a file from a snapshot to stdout" },
	{ "restore", cmd_restore, cmd_restore_usage, "restore a snapshot (or part of it)" },
	{ "check", cmd_check, cmd_check_usage, "check the repository for errors" },
	{ "unlock", cmd_unlock, cmd_unlock_usage, "remove stale locks" },
	{ "cat", cmd_cat, cmd_cat_usage, "print internal objects (config, snapshot, index, ...)" },
	{ "version", cmd_version, cmd_version_usage, "print the version" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char global_usage[] =
	"Global options (before or after the command):\n"
	"  -r, --repo REPO          repository: a folder, local:PATH,\n"
	"                           s3:https://HOST[:PORT]/BUCKET[/PREFIX], s3:BUCKET[/PREFIX] (AWS),\n"
	"                           rest:http(s)://[USER:PASS@]HOST:PORT/[PATH]\n"
	"                           (default: $CAIRN_REPOSITORY, then $RESTIC_REPOSITORY)\n"
	"  -p, --password-file F    read the password from F (also $CAIRN_PASSWORD_FILE;\n"
	"                           $CAIRN_PASSWORD, $RESTIC_PASSWORD, $RESTIC_PASSWORD_FILE)\n"
	"      --compression MODE   auto|off|fastest|better|max (default auto)\n"
	"      --pack-size MiB      target pack size (default 16)\n"
	"      --cache-dir DIR      local cache folder (default $XDG_CACHE_HOME/cairn,\n"
	"                           else ~/.cache/cairn)\n"
	"      --no-cache           keep the blob index in memory, not in the cache\n"
	"      --no-lock            do not lock the repository (read-only commands)\n"
	"      --retry-timeout D    retry failed storage requests for at most D (e.g. 90s, 10m;\n"
	"                           default 10m; 0 = no retries; s3: and rest: only)\n"
	"  -o, --option KEY=VALUE   backend option, repeatable: s3.connections=N (default 5),\n"
	"                           s3.region=R, s3.bucket-lookup=auto|dns|path,\n"
	"                           s3.multipart-threshold=SIZE, s3.part-size=SIZE,\n"
	"                           s3.stall-timeout=SECONDS\n"
	"      --cacert FILE        trust the CA certificates in FILE (PEM) for TLS\n"
	"      --insecure-tls       do not verify TLS certificates (only for tests)\n"
	"      --s3-credentials-file F  AWS credentials file (else $AWS_ACCESS_KEY_ID and\n"
	"                           $AWS_SECRET_ACCESS_KEY, $AWS_SHARED_CREDENTIALS_FILE,\n"
	"                           ~/.aws/credentials; profile $AWS_PROFILE)\n"
	"      --json               machine-readable output\n"
	"  -q, --quiet              only errors\n"
	"  -v, --verbose            more output (repeatable)\n"
	"  -h, --help               help for cairn or a command\n";

static const command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void print_main_help(FILE *f)
{
	fprintf(f, "cairn: deduplicating, encrypted backups in the restic repository format\n\n"
		"Usage: cairn [global options] COMMAND [options] [arguments]\n\nCommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-10s %s\n\n%s\nRun 'cairn help COMMAND' for a command's options.\n",
		"help", "help for a command", global_usage);
}

static int print_command_help(const command *c)
{
	fputs(c->usage, stdout);
	fputs("\n", stdout);
	fputs(global_usage, stdout);
	return CLI_EXIT_OK;
}

/* Take the value of option `opt` at argv[*i] ("--opt=V", "-rV" or "--opt V"). */
static const char *option_value(int argc, char **argv, int *i, const char *eq_or_attached)
{
	if (eq_or_attached && *eq_or_attached)
		return eq_or_attached;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

/* "90", "90s", "1.5m", "2h" into seconds; -1 if malformed or negative. */
static int parse_duration(double *out, const char *v)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || !(d >= 0))
		return -1;
	if (*end == 'm')
		d *= 60, end++;
	else if (*end == 'h')
		d *= 3600, end++;
	else if (*end == 's')
		end++;
	if (*end)
		return -1;
	*out = d;
	return 0;
}

/* Returns 1 if argv[*i] was a global option (consumed), 0 if not, -1 on a
 * missing or bad value (message printed). */
static int parse_global(cli_globals *g, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v;
	const char *eq = strchr(a, '=');
	size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
	const char *attached = eq ? eq + 1 : NULL;

#define IS(long_name) (strlen(long_name) == name_len && strncmp(a, long_name, name_len) == 0)
	if (a[0] == '-' && a[1] == 'r' && a[2] != '\0' && !eq)
		attached = a + 2, name_len = 2; /* -rREPO */
	if ((a[0] == '-' && a[1] == 'r' && name_len == 2) || IS("--repo")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		g->repo = v;
		return 1;
	}
	if (IS("-p") || IS("--password-file")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		g->password_file = v;
		return 1;
	}
	if (IS("-o") || IS("--option")) {
		size_t max = sizeof(g->backend_option_list) / sizeof(g->backend_option_list[0]);
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		if (!strchr(v, '=') || v[0] == '=') {
			cli_error("invalid option '%s': want key=value (e.g. s3.connections=8)", v);
			return -1;
		}
		if (g->backend.n_extended >= max) {
			cli_error("too many -o options (at most %zu)", max);
			return -1;
		}
		g->backend_option_list[g->backend.n_extended++] = v;
		g->backend.extended = g->backend_option_list;
		return 1;
	}
	if (IS("--cacert")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		g->backend.cacert = v;
		return 1;
	}
	if (IS("--s3-credentials-file")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		g->backend.s3_credentials_file = v;
		return 1;
	}
	if (IS("--cache-dir")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		g->cache_dir = v;
		return 1;
	}
	if (IS("--compression")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		if (cairn_compression_parse(&g->compression, v) < 0) {
			cli_error("invalid --compression '%s': want auto, off, fastest, better or max", v);
			return -1;
		}
		return 1;
	}
	if (IS("--pack-size")) {
		char *end;
		unsigned long mib;
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		mib = strtoul(v, &end, 10);
		if (*end || mib < 4 || mib > 128) {
			cli_error("invalid --pack-size '%s': want 4 to 128 (MiB)", v);
			return -1;
		}
		g->pack_size = (size_t)mib << 20;
		return 1;
	}
	if (IS("--retry-timeout")) {
		if (!(v = option_value(argc, argv, i, attached)))
			goto missing;
		if (parse_duration(&g->retry_timeout, v) < 0) {
			cli_error("invalid --retry-timeout '%s': want seconds or a duration like 90s, 10m, 1h", v);
			return -1;
		}
		return 1;
	}
	if (eq)
		return 0;
	if (IS("--json")) { g->json = 1; return 1; }
	if (IS("-q") || IS("--quiet")) { g->quiet = 1; return 1; }
	if (IS("-v") || IS("--verbose")) { g->verbose++; return 1; }
	if (IS("-vv")) { g->verbose += 2; return 1; }
	if (IS("--no-lock")) { g->no_lock = 1; return 1; }
	if (IS("--insecure-tls")) { g->backend.insecure_tls = 1; return 1; }
	if (IS("--no-cache")) { g->no_cache = 1; return 1; }
#undef IS
	return 0;
missing:
	cli_error("option '%.*s' needs a value", (int)name_len, a);
	return -1;
}

int main(int argc, char **argv)
{
	cli_globals g;
	char **rest;
	int n_rest = 0, help = 0, after_dashdash = 0;
	const command *cmd;

	/* A fixed mmap threshold: glibc would otherwise raise it to 32 MiB once
	 * the key derivation frees its scrypt buffer, and later chunk-sized
	 * buffers would stay in the heap after they are freed. */
	mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	memset(&g, 0, sizeof(g));
	g.compression = CAIRN_COMPRESSION_AUTO;
	g.retry_timeout = CAIRN_RETRY_DEFAULT_TIMEOUT;
	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest)
		return CLI_EXIT_FATAL;

	for (int i = 1; i < argc; i++) {
		if (!after_dashdash) {
			int r;
			if (strcmp(argv[i], "--") == 0) {
				after_dashdash = 1;
				rest[n_rest++] = argv[i];
				continue;
			}
			if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
				help = 1;
				continue;
			}
			r = parse_global(&g, argc, argv, &i);
			if (r < 0)
				return CLI_EXIT_FATAL;
			if (r > 0)
				continue;
		}
		rest[n_rest++] = argv[i];
	}
	if (!g.repo)
		g.repo = getenv("CAIRN_REPOSITORY");
	if (!g.repo || !*g.repo)
		g.repo = getenv("RESTIC_REPOSITORY");
	g.progress = !g.quiet && !g.json && isatty(STDERR_FILENO);

	if (n_rest == 0) {
		print_main_help(help ? stdout : stderr);
		free(rest);
		return help ? CLI_EXIT_OK : CLI_EXIT_FATAL;
	}
	if (strcmp(rest[0], "help") == 0) {
		int r = CLI_EXIT_OK;
		if (n_rest < 2) {
			print_main_help(stdout);
		} else if ((cmd = find_command(rest[1]))) {
			print_command_help(cmd);
		} else {
			cli_error("unknown command '%s'", rest[1]);
			r = CLI_EXIT_FATAL;
		}
		free(rest);
		return r;
	}
	cmd = find_command(rest[0]);
	if (!cmd) {
		cli_error("unknown command '%s' (see 'cairn help')", rest[0]);
		free(rest);
		return CLI_EXIT_FATAL;
	}
	if (help) {
		print_command_help(cmd);
		free(rest);
		return CLI_EXIT_OK;
	}

	cli_setup_logging(&g);
	cli_install_signal_handlers();
	cairn_backend_set_retry(g.retry_timeout, cli_interrupted);
	optind = 1; /* each command runs getopt_long over its own argv */
	int r = cmd->run(&g, n_rest, rest);
	free(rest);
	return r;
}
