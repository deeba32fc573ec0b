/* cli.c: the helpers every command shares (see cli.h): password input,
 * opening the repository with a lock and its index (cached under the cache
 * folder unless --no-cache), snapshot filters and selection, messages,
 * progress lines, JSON output and the interrupt flag.
 *
 * The password is held only in a cairn_buf that is wiped after use; it is
 * never printed, and the repository location is shown in its secret-free
 * form (cairn_backend_location).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

/* ---- messages ---- */

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("cairn: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	const char *detail = cairn_error_message();
	fputs("cairn: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (detail && *detail)
		fprintf(stderr, ": %s", detail);
	fputc('\n', stderr);
	return CLI_EXIT_FATAL;
}

void cli_info(const cli_globals *g, const char *fmt, ...)
{
	va_list ap;
	if (g->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void log_to_stderr(cairn_log_level level, const char *component, const char *message,
	void *payload)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	fprintf(stderr, "cairn: %s: %s: %s\n", names[level], component, message);
}

void cli_setup_logging(const cli_globals *g)
{
	cairn_log_level level = g->verbose >= 2 ? CAIRN_LOG_DEBUG
		: g->verbose ? CAIRN_LOG_INFO : g->quiet ? CAIRN_LOG_ERROR : CAIRN_LOG_WARN;
	cairn_log_set(level, log_to_stderr, NULL);
}

void cli_json_print(json_t *value)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text) {
		fputs(text, stdout);
		fputc('\n', stdout);
		free(text);
	}
}

const char *cli_format_bytes(char *buf, size_t size, uint64_t bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.3f %s", v, units[u]);
	return buf;
}

/* ---- progress ---- */

static double monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double last_progress;
static int progress_shown;

void cli_progress(const cli_globals *g, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	double now;

	if (!g->progress)
		return;
	now = monotonic_seconds();
	if (now - last_progress < 0.25)
		return;
	last_progress = now;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	progress_shown = 1;
}

void cli_progress_done(const cli_globals *g)
{
	if (g->progress && progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = 0;
}

/* ---- signals ---- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

void cli_install_signal_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cli_interrupted(void)
{
	return interrupted != 0;
}

/* ---- password ---- */

static int read_password_file(cairn_buf *out, const char *path)
{
	char chunk[4096];
	ssize_t n;
	int r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot read password file '%s'", path);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot read password file '%s'", path);
			break;
		}
		if ((r = cairn_buf_append(out, chunk, (size_t)n)) < 0)
			break;
	}
	close(fd);
	memset(chunk, 0, sizeof(chunk));
	if (r < 0)
		return r;
	/* like restic: the first line is the password */
	for (size_t i = 0; i < out->len; i++)
		if (out->data[i] == '\n' || out->data[i] == '\r') {
			out->len = i;
			break;
		}
	return 0;
}

static int prompt_password(cairn_buf *out, const char *prompt)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	int r = 0;
	char c;

	if (fd < 0)
		return cairn_error_set(CAIRN_EINVAL, "no password given: set CAIRN_PASSWORD, "
			"CAIRN_PASSWORD_FILE or --password-file");
	if (write(fd, prompt, strlen(prompt)) < 0) { /* best effort */ }
	tcgetattr(fd, &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fd, TCSAFLUSH, &quiet);
	cairn_buf_clear(out);
	for (;;) {
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		if ((r = cairn_buf_append(out, &c, 1)) < 0)
			break;
	}
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) { /* best effort */ }
	close(fd);
	c = 0;
	return r;
}

int cli_read_password(cairn_buf *out, const cli_globals *g, int confirm)
{
	const char *v;
	int r = 0;

	cairn_buf_clear(out);
	if ((v = getenv("CAIRN_PASSWORD")) && *v)
		return cairn_buf_puts(out, v);
	if ((v = getenv("CAIRN_PASSWORD_FILE")) && *v)
		return read_password_file(out, v);
	if (g->password_file)
		return read_password_file(out, g->password_file);
	if ((v = getenv("RESTIC_PASSWORD")) && *v)
		return cairn_buf_puts(out, v);
	if ((v = getenv("RESTIC_PASSWORD_FILE")) && *v)
		return read_password_file(out, v);

	CAIRN_TRY(prompt_password(out, confirm ? "enter password for new repository: "
		: "enter password for repository: "));
	if (confirm) {
		cairn_buf again = CAIRN_BUF_INIT;
		if ((r = prompt_password(&again, "enter password again: ")) == 0 &&
			(again.len != out->len || memcmp(again.data, out->data, out->len) != 0))
			r = cairn_error_set(CAIRN_EINVAL, "passwords do not match");
		cairn_buf_wipe(&again);
	}
	if (r == 0 && out->len == 0)
		r = cairn_error_set(CAIRN_EINVAL, "an empty password is not allowed");
	return r;
}

/* ---- repository ---- */

/* mkdir -p, quietly; 0 when `dir` exists (or was made) and is writable. */
static int make_dir(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -1;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] == '/' || path[i] == '\0') {
			char saved = path[i];
			path[i] = '\0';
			if (mkdir(path, 0700) != 0 && errno != EEXIST)
				return -1;
			path[i] = saved;
		}
	}
	return access(dir, W_OK | X_OK);
}

/* The cache folder into out: --cache-dir, else $XDG_CACHE_HOME/cairn, else
 * $HOME/.cache/cairn, the first that is (or can be made) writable.  0 with
 * out set, -1 with --no-cache or when none is usable (a warning says so,
 * unless --no-cache). */
static int pick_cache_dir(char *out, size_t size, const cli_globals *g)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char cand[3][4096];
	int n = 0;

	if (g->no_cache)
		return -1;
	if (g->cache_dir && *g->cache_dir) {
		snprintf(cand[n++], sizeof(cand[0]), "%s", g->cache_dir);
	} else {
		if (xdg && xdg[0] == '/')
			snprintf(cand[n++], sizeof(cand[0]), "%s/cairn", xdg);
		if (home && *home)
			snprintf(cand[n++], sizeof(cand[0]), "%s/.cache/cairn", home);
	}
	for (int i = 0; i < n; i++) {
		if (make_dir(cand[i]) == 0 && strlen(cand[i]) < size) {
			snprintf(out, size, "%s", cand[i]);
			return 0;
		}
	}
	if (n)
		cli_error("warning: cache folder '%s' is not writable; keeping the index in memory",
			cand[n - 1]);
	else
		cli_error("warning: no cache folder ($XDG_CACHE_HOME and $HOME unset); keeping the "
			"index in memory");
	return -1;
}

int cli_repo_open(cli_repo *out, const cli_globals *g, enum cli_lock_mode lock, int load_index)
{
	cairn_buf password = CAIRN_BUF_INIT;
	char cache_dir[4096];
	int r;

	if (!g->repo || !*g->repo) {
		cli_error("no repository given: use -r or set CAIRN_REPOSITORY");
		return CLI_EXIT_FATAL;
	}
	if ((r = cairn_backend_open_ex(&out->backend, g->repo, 1, &g->backend)) < 0)
		return cli_fail("cannot open repository");
	if ((r = cli_read_password(&password, g, 0)) < 0) {
		cli_fail("cannot read the password");
		goto out;
	}
	r = cairn_repo_open(&out->repo, out->backend, (const char *)password.data, password.len);
	if (r < 0) {
		cli_fail("cannot open repository at '%s'", cairn_backend_location(out->backend));
		goto out;
	}
	cairn_repo_set_compression(out->repo, g->compression);
	if (load_index && pick_cache_dir(cache_dir, sizeof(cache_dir), g) == 0
		&& (r = cairn_repo_set_cache_dir(out->repo, cache_dir)) < 0) {
		cli_fail("cannot set the cache folder");
		goto out;
	}
	if (g->pack_size)
		cairn_repo_set_pack_size(out->repo, g->pack_size);
	if (lock != CLI_LOCK_NONE && !g->no_lock) {
		r = lock == CLI_LOCK_SHARED_DEFERRED ? cairn_lock_acquire_deferred(&out->lock, out->repo)
			: cairn_lock_acquire(&out->lock, out->repo, lock == CLI_LOCK_EXCLUSIVE);
		if (r < 0) {
			cli_fail("cannot lock repository");
			goto out;
		}
	}
	if (load_index && (r = cairn_repo_load_index(out->repo)) < 0) {
		cli_fail("cannot load the index");
		goto out;
	}
	r = 0;
out:
	cairn_buf_wipe(&password);
	return r < 0 ? CLI_EXIT_FATAL : 0;
}

void cli_repo_close(cli_repo *r)
{
	if (r->lock) {
		if (cairn_lock_release(r->lock) < 0)
			cli_fail("cannot remove the lock");
		r->lock = NULL;
	}
	cairn_repo_free(r->repo);
	r->repo = NULL;
	cairn_backend_free(r->backend);
	r->backend = NULL;
}

int cli_repo_confirm(cli_repo *r)
{
	if (r->lock && cairn_lock_confirm(r->lock) < 0)
		return cli_fail("cannot lock repository");
	return 0;
}

int cli_repo_finish(cli_repo *r, int rc)
{
	if ((rc == CLI_EXIT_OK || rc == CLI_EXIT_PARTIAL) && cli_repo_confirm(r) != 0)
		rc = CLI_EXIT_FATAL;
	cli_repo_close(r);
	return rc;
}

/* ---- snapshot selection ---- */

int cli_filter_add(const char ***list, size_t *n, const char *value)
{
	const char **grown = realloc(*list, (*n + 1) * sizeof(**list));
	if (!grown)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	grown[(*n)++] = value;
	*list = grown;
	return 0;
}

int cli_filter_option(cli_snapshot_filter *f, int opt, const char *value)
{
	int r;
	switch (opt) {
	case 'H': r = cli_filter_add(&f->hosts, &f->n_hosts, value); break;
	case 'T': r = cli_filter_add(&f->tags, &f->n_tags, value); break;
	case 'P': r = cli_filter_add(&f->paths, &f->n_paths, value); break;
	default: return 0;
	}
	return r < 0 ? r : 1;
}

void cli_filter_release(cli_snapshot_filter *f)
{
	free(f->hosts);
	free(f->tags);
	free(f->paths);
	memset(f, 0, sizeof(*f));
}

/* A tag filter entry "a,b" matches a snapshot that has both a and b. */
static int has_all_tags(const cairn_snapshot *s, const char *spec)
{
	char *copy = strdup(spec), *save = NULL;
	int ok = 1;
	if (!copy)
		return 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (!cairn_snapshot_has_tag(s, t)) {
			ok = 0;
			break;
		}
	free(copy);
	return ok;
}

int cli_snapshot_matches(const cairn_snapshot *s, const cli_snapshot_filter *f)
{
	if (!f)
		return 1;
	if (f->n_hosts) {
		int ok = 0;
		for (size_t i = 0; i < f->n_hosts && !ok; i++)
			ok = s->hostname && strcmp(s->hostname, f->hosts[i]) == 0;
		if (!ok)
			return 0;
	}
	if (f->n_tags) {
		int ok = 0;
		for (size_t i = 0; i < f->n_tags && !ok; i++)
			ok = has_all_tags(s, f->tags[i]);
		if (!ok)
			return 0;
	}
	for (size_t i = 0; i < f->n_paths; i++)
		if (!cairn_snapshot_has_path(s, f->paths[i]))
			return 0;
	return 1;
}

int cli_find_snapshot(cairn_snapshot *out, cairn_repo *repo, const char *spec,
	const cli_snapshot_filter *f)
{
	cairn_id id;
	int r;

	if (strcmp(spec, "latest") == 0) {
		cairn_snapshot *list = NULL;
		size_t n = 0, best = (size_t)-1;
		if ((r = cairn_repo_list_snapshots(&list, &n, repo)) < 0)
			return cli_fail("cannot list snapshots");
		for (size_t i = 0; i < n; i++)
			if (cli_snapshot_matches(&list[i], f) &&
				(best == (size_t)-1 || cairn_time_compare(list[i].time, list[best].time) >= 0))
				best = i;
		if (best == (size_t)-1) {
			cairn_snapshot_list_free(list, n);
			cli_error("no snapshot found%s", (f && (f->n_hosts || f->n_tags || f->n_paths))
				? " matching the filters" : "");
			return CLI_EXIT_FATAL;
		}
		id = list[best].id;
		cairn_snapshot_list_free(list, n);
	} else if ((r = cairn_repo_find_snapshot(&id, repo, spec)) < 0) {
		return cli_fail("cannot find snapshot '%s'", spec);
	}
	if ((r = cairn_repo_load_snapshot(out, repo, &id)) < 0)
		return cli_fail("cannot load snapshot '%s'", spec);
	return 0;
}
