/* cli.h: what every `cairn` command shares: global options, opening the
 * repository (password, lock, index), snapshot selection, messages,
 * progress output and interruption by signals.
 *
 * Exit codes follow restic: 0 success, 1 fatal error, 3 backup finished
 * but some source files could not be read.
 */
#ifndef CAIRN_AGENT_CLI_H
#define CAIRN_AGENT_CLI_H

#include <stdio.h>
#include <cairn/cairn.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FATAL = 1, CLI_EXIT_PARTIAL = 3, CLI_EXIT_INTERRUPTED = 130 };

/* Options that every command accepts, before or after the command name. */
typedef struct cli_globals {
	const char *repo;          /* -r/--repo, else $CAIRN_REPOSITORY, else $RESTIC_REPOSITORY */
	const char *password_file; /* --password-file */
	const char *cache_dir;     /* --cache-dir */
	int no_cache;              /* --no-cache: keep the index in memory */
	cairn_compression compression; /* --compression (writers) */
	size_t pack_size;          /* --pack-size in MiB, converted to bytes; 0 = default */
	int json;                  /* --json: machine-readable output on stdout */
	int quiet;                 /* -q */
	int verbose;               /* -v (repeatable) */
	int no_lock;               /* --no-lock */
	int progress;              /* progress line on stderr: a terminal and not quiet/json */
	double retry_timeout;      /* --retry-timeout in seconds: how long one storage operation is retried */
	cairn_backend_options backend; /* -o, --cacert, --insecure-tls, --s3-credentials-file */
	const char *backend_option_list[32]; /* the -o values (backend.extended points here) */
} cli_globals;

/* An open repository with what the command asked for. */
typedef struct cli_repo {
	cairn_backend *backend;
	cairn_repo *repo;
	cairn_lock *lock;
} cli_repo;

#define CLI_REPO_INIT { NULL, NULL, NULL }

/* SHARED_DEFERRED: a shared lock whose second look waits for
 * cli_repo_confirm() (or cli_repo_finish()), so that the 200 ms of restic's
 * lock protocol overlap the command's work; include/cairn/lock.h has the
 * rule for when to confirm. */
enum cli_lock_mode { CLI_LOCK_NONE = 0, CLI_LOCK_SHARED = 1, CLI_LOCK_EXCLUSIVE = 2,
	CLI_LOCK_SHARED_DEFERRED = 3 };

/* Read the password: $CAIRN_PASSWORD, $CAIRN_PASSWORD_FILE, --password-file,
 * $RESTIC_PASSWORD, $RESTIC_PASSWORD_FILE, else prompt on the terminal
 * (twice when `confirm`).  A file's trailing newline is dropped.  out is
 * replaced; wipe it with cairn_buf_wipe.  Prints nothing; errors via the
 * cairn error record. */
int cli_read_password(cairn_buf *out, const cli_globals *g, int confirm);

/* Open backend + repository (+ lock, + index).  On failure prints
 * "cairn: <message>" and returns CLI_EXIT_FATAL (the caller just returns it);
 * on success 0.  Close with cli_repo_close even after failure. */
int cli_repo_open(cli_repo *out, const cli_globals *g, enum cli_lock_mode lock, int load_index);
/* Release the lock, free repo and backend.  Safe on a partly opened cli_repo. */
void cli_repo_close(cli_repo *r);
/* Confirm a deferred lock (cairn_lock_confirm): call before the first
 * irreversible change to the repository.  0 (also without a lock or for a
 * lock confirmed already); else prints "cairn: cannot lock repository: ..."
 * and returns CLI_EXIT_FATAL. */
int cli_repo_confirm(cli_repo *r);
/* End a command that opened r: when rc reports success (CLI_EXIT_OK or
 * CLI_EXIT_PARTIAL) confirm the lock first, and fail (CLI_EXIT_FATAL) if
 * that fails; then cli_repo_close.  Returns the command's exit code. */
int cli_repo_finish(cli_repo *r, int rc);

/* Snapshot filters shared by snapshots, restore, ls, dump, backup's parent. */
typedef struct cli_snapshot_filter {
	const char **hosts; size_t n_hosts;
	const char **tags;  size_t n_tags;  /* a snapshot matches if it has every tag of one entry; "a,b" = both */
	const char **paths; size_t n_paths; /* the snapshot must contain every path */
} cli_snapshot_filter;

/* 1 if the snapshot passes the filter (an empty filter passes everything). */
int cli_snapshot_matches(const cairn_snapshot *s, const cli_snapshot_filter *f);
/* Add a value to the filter lists (borrowed strings, e.g. argv). */
int cli_filter_add(const char ***list, size_t *n, const char *value);
void cli_filter_release(cli_snapshot_filter *f);

/* The getopt_long entries of the filter options (--host 'H', --tag 'T',
 * --path 'P') for a command's option table. */
#define CLI_FILTER_OPTIONS \
	{ "host", required_argument, NULL, 'H' }, \
	{ "tag", required_argument, NULL, 'T' }, \
	{ "path", required_argument, NULL, 'P' }
/* Take a parsed filter option into f: 1 if `opt` was 'H', 'T' or 'P' (the
 * value is borrowed from argv), 0 if it is another option, negative on
 * out of memory. */
int cli_filter_option(cli_snapshot_filter *f, int opt, const char *value);

/* Resolve "latest" (newest matching the filter) or an id / unique prefix.
 * *out must be CAIRN_SNAPSHOT_INIT; caller releases.  Prints the error and
 * returns CLI_EXIT_FATAL on failure, 0 on success. */
int cli_find_snapshot(cairn_snapshot *out, cairn_repo *repo, const char *spec,
	const cli_snapshot_filter *f);

/* Messages on stderr, prefixed "cairn: ". cli_fail appends ": <cairn error
 * message>" and returns CLI_EXIT_FATAL. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Informational output on stderr unless -q. */
void cli_info(const cli_globals *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a JSON value (jansson) compactly on one line to stdout. Takes no ownership. */
struct json_t;
void cli_json_print(struct json_t *value);

/* Progress line on stderr (rewritten in place with \r), shown only when
 * g->progress; cli_progress_done() ends the line.  Throttled to ~4/s. */
void cli_progress(const cli_globals *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_progress_done(const cli_globals *g);

/* Send the library's log records to stderr ("cairn: warning: ..."), at a
 * level set by -v/-q. */
void cli_setup_logging(const cli_globals *g);

/* SIGINT/SIGTERM set a flag instead of killing the process, so commands can
 * stop cleanly and remove their lock.  cli_interrupted() reads it. */
void cli_install_signal_handlers(void);
int cli_interrupted(void);

/* "1.5 MiB" style sizes into buf. */
const char *cli_format_bytes(char *buf, size_t size, uint64_t bytes);

/* Command entry points: argv[0] is the command name; getopt_long over
 * argc/argv; --help/-h prints the command's usage to stdout and returns 0. */
int cmd_init(const cli_globals *g, int argc, char **argv);
int cmd_backup(const cli_globals *g, int argc, char **argv);
int cmd_snapshots(const cli_globals *g, int argc, char **argv);
int cmd_ls(const cli_globals *g, int argc, char **argv);
int cmd_dump(const cli_globals *g, int argc, char **argv);
int cmd_restore(const cli_globals *g, int argc, char **argv);
int cmd_check(const cli_globals *g, int argc, char **argv);
int cmd_unlock(const cli_globals *g, int argc, char **argv);
int cmd_cat(const cli_globals *g, int argc, char **argv);
int cmd_version(const cli_globals *g, int argc, char **argv);

/* Usage text of each command (for `cairn help CMD` and CMD --help). */
extern const char cmd_init_usage[], cmd_backup_usage[], cmd_snapshots_usage[], cmd_ls_usage[],
	cmd_dump_usage[], cmd_restore_usage[], cmd_check_usage[], cmd_unlock_usage[],
	cmd_cat_usage[], cmd_version_usage[];

#endif
