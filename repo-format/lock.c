/* lock.c: repository locks compatible with restic's (include/cairn/lock.h).
 *
 * A lock is an unpacked file locks/<id> (sealed, v2: 0x02+zstd) holding
 *   {"time":..,"exclusive":..,"hostname":..,"username":..,"pid":..,"uid":..,"gid":..}
 * with uid and gid left out when 0, as restic writes it.  An exclusive lock
 * conflicts with every other lock; a shared lock only with an exclusive one.
 * A lock is stale when its time is more than 30 minutes old, or when it was
 * made on this host by a process that no longer exists (kill(pid, 0) fails
 * with ESRCH); stale locks never conflict here, but only cairn_lock_remove()
 * deletes them, because restic 0.14 refuses to run next to any lock.
 *
 * Acquiring follows restic: look for conflicts, write our file, wait 200 ms
 * so that a racing writer's file becomes visible, look again and back out
 * (delete ours) on a conflict.  A deferred (shared) lock does the second
 * look later, in cairn_lock_confirm(): it waits only for what is left of the
 * 200 ms since our file was written, so the command's own work (loading the
 * index, walking the source) fills the wait.  The files, and what each
 * party sees in the other's, are the same as restic's either way: only the
 * moment of our second look moves, and include/cairn/lock.h says how late
 * it may come.  While held, a thread rewrites the lock every
 * 5 minutes so others do not think it stale: it writes the new file first and
 * only then deletes the old one, so the repository is never without our lock.
 * The refresh thread sleeps on a condition variable, so release wakes it at
 * once; release joins it before deleting the current file, so the file it
 * deletes is the last one written.
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cairn/lock.h>
#include <cairn/log.h>
#include <cairn/timestamp.h>

#define STALE_AFTER_SEC (30 * 60)
#define RECHECK_DELAY_MS 200

/* Internal, for tests: how long the last cairn_lock_confirm() slept
 * (nanoseconds; 0 when the 200 ms had already passed). */
static long long last_wait_ns;
long long cairn_lock__last_wait_ns(void);
long long cairn_lock__last_wait_ns(void)
{
	return last_wait_ns;
}

/* Internal: tests shorten the refresh period (milliseconds). */
static unsigned refresh_interval_ms = 5u * 60u * 1000u;
void cairn_lock__set_refresh_interval_ms(unsigned ms);
void cairn_lock__set_refresh_interval_ms(unsigned ms)
{
	refresh_interval_ms = ms ? ms : 5u * 60u * 1000u;
}

struct cairn_lock {
	cairn_repo *repo;       /* borrowed */
	int exclusive;
	pthread_mutex_t mu;     /* guards id and stop */
	pthread_cond_t wake;
	cairn_id id;            /* our current lock file */
	int stop;
	int thread_started;
	pthread_t thread;
	struct timespec written; /* CLOCK_MONOTONIC when our first file was stored */
	int confirmed;           /* the second look found no conflict */
};

typedef struct lock_info {
	cairn_time time;
	char time_text[CAIRN_TIME_TEXT_SIZE];
	int exclusive;
	char hostname[256];
	char username[256];
	long long pid;
} lock_info;

static void host_name(char *out, size_t size)
{
	if (gethostname(out, size) != 0)
		out[0] = '\0';
	out[size - 1] = '\0';
}

static void user_name(char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	out[0] = '\0';
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
		snprintf(out, size, "%s", res->pw_name);
}

/* Our lock document, now.  out replaced. */
static int lock_encode(cairn_buf *out, int exclusive)
{
	char host[256], user[256], when[CAIRN_TIME_TEXT_SIZE];
	cairn_time now = cairn_time_now();
	json_t *doc = NULL;
	char *text = NULL;
	int r = 0;

	host_name(host, sizeof(host));
	user_name(user, sizeof(user));
	cairn_time_format(when, now, cairn_time_local_offset(now));
	doc = json_pack("{s:s, s:b, s:s, s:s, s:I}", "time", when, "exclusive", exclusive,
		"hostname", host, "username", user, "pid", (json_int_t)getpid());
	if (!doc) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot build the lock document");
		goto out;
	}
	if ((getuid() != 0 && json_object_set_new(doc, "uid", json_integer(getuid())) != 0) ||
	    (getgid() != 0 && json_object_set_new(doc, "gid", json_integer(getgid())) != 0)) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot build the lock document");
		goto out;
	}
	if (!(text = json_dumps(doc, JSON_COMPACT))) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot encode the lock document");
		goto out;
	}
	cairn_buf_clear(out);
	r = cairn_buf_puts(out, text);
out:
	free(text);
	json_decref(doc);
	return r;
}

static int lock_decode(lock_info *out, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *doc = json_loadb(json, len, 0, &jerr);
	json_t *v;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!doc || !json_is_object(doc)) {
		r = cairn_error_set(CAIRN_ECORRUPT, "lock is not a JSON object: %s",
			doc ? "wrong type" : jerr.text);
		goto out;
	}
	v = json_object_get(doc, "time");
	if (!json_is_string(v) || cairn_time_parse(&out->time, json_string_value(v)) < 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "lock has no valid time");
		goto out;
	}
	snprintf(out->time_text, sizeof(out->time_text), "%s", json_string_value(v));
	out->exclusive = json_is_true(json_object_get(doc, "exclusive"));
	if (json_is_string(v = json_object_get(doc, "hostname")))
		snprintf(out->hostname, sizeof(out->hostname), "%s", json_string_value(v));
	if (json_is_string(v = json_object_get(doc, "username")))
		snprintf(out->username, sizeof(out->username), "%s", json_string_value(v));
	if (json_is_integer(v = json_object_get(doc, "pid")))
		out->pid = (long long)json_integer_value(v);
out:
	json_decref(doc);
	return r;
}

static int lock_is_stale(const lock_info *l)
{
	char host[256];
	cairn_time now = cairn_time_now();

	if (now.sec - l->time.sec > STALE_AFTER_SEC)
		return 1;
	host_name(host, sizeof(host));
	if (strcmp(host, l->hostname) == 0 && l->pid > 0 &&
	    kill((pid_t)l->pid, 0) == -1 && errno == ESRCH)
		return 1;
	return 0;
}

typedef struct id_vec {
	cairn_id *ids;
	size_t n, cap;
	int error;
} id_vec;

static int collect(const char *name, uint64_t size, void *payload)
{
	id_vec *v = payload;
	(void)size;
	if (v->n == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 16;
		cairn_id *p = realloc(v->ids, ncap * sizeof(*p));
		if (!p) {
			v->error = cairn_error_set(CAIRN_ENOMEM, "out of memory listing locks");
			return 1;
		}
		v->ids = p;
		v->cap = ncap;
	}
	if (cairn_id_from_hex(&v->ids[v->n], name) == 0)
		v->n++;
	return 0;
}

/* The ids in locks/; *out (free()) belongs to the caller. */
static int list_locks(cairn_id **out, size_t *n_out, cairn_repo *repo)
{
	id_vec v = { NULL, 0, 0, 0 };
	int r = cairn_backend_list(cairn_repo_backend(repo), CAIRN_FILE_LOCK, collect, &v);

	if (v.error)
		r = v.error;
	if (r < 0) {
		free(v.ids);
		return cairn_error_wrap(r, "cannot list locks");
	}
	*out = v.ids;
	*n_out = v.n;
	return 0;
}

/* Load and parse one lock.  CAIRN_ENOTFOUND when it vanished meanwhile. */
static int load_lock(lock_info *out, cairn_repo *repo, const cairn_id *id)
{
	cairn_buf json = CAIRN_BUF_INIT;
	char name[CAIRN_ID_HEX_SIZE];
	int r;

	if ((r = cairn_repo_load_unpacked(&json, repo, CAIRN_FILE_LOCK, id)) < 0)
		goto out;
	if ((r = lock_decode(out, (const char *)json.data, json.len)) < 0) {
		cairn_id_to_hex(name, id);
		r = cairn_error_wrap(r, "lock file '%s'", name);
	}
out:
	cairn_buf_release(&json);
	return r;
}

/* Look for a live lock that conflicts with one of kind `exclusive`, other
 * than `ours` (may be NULL).  0: none; CAIRN_ELOCKED naming the holder. */
static int check_conflicts(cairn_repo *repo, int exclusive, const cairn_id *ours)
{
	cairn_id *ids = NULL;
	size_t n = 0;
	int r;

	if ((r = list_locks(&ids, &n, repo)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		lock_info info;

		if (ours && cairn_id_equal(&ids[i], ours))
			continue;
		r = load_lock(&info, repo, &ids[i]);
		if (r == CAIRN_ENOTFOUND) {
			r = 0; /* released while we looked */
			continue;
		}
		if (r < 0)
			goto out;
		if (lock_is_stale(&info) || !(exclusive || info.exclusive))
			continue;
		r = cairn_error_set(CAIRN_ELOCKED,
			"repository is already locked %sby PID %lld on host '%s' by %s since %s",
			info.exclusive ? "exclusively " : "", info.pid, info.hostname,
			info.username[0] ? info.username : "(unknown user)", info.time_text);
		goto out;
	}
	r = 0;
out:
	free(ids);
	return r;
}

static int write_lock(cairn_id *id_out, cairn_repo *repo, int exclusive)
{
	cairn_buf json = CAIRN_BUF_INIT;
	int r;

	if ((r = lock_encode(&json, exclusive)) == 0 &&
	    (r = cairn_repo_save_unpacked(id_out, repo, CAIRN_FILE_LOCK, json.data, json.len)) < 0)
		r = cairn_error_wrap(r, "cannot write a lock");
	cairn_buf_release(&json);
	return r;
}

static int remove_lock_file(cairn_repo *repo, const cairn_id *id)
{
	char name[CAIRN_ID_HEX_SIZE];
	cairn_handle h;
	int r;

	cairn_id_to_hex(name, id);
	cairn_handle_set(&h, CAIRN_FILE_LOCK, name);
	r = cairn_backend_remove(cairn_repo_backend(repo), &h);
	if (r < 0 && r != CAIRN_ENOTFOUND)
		return cairn_error_wrap(r, "cannot remove lock file '%s'", name);
	return r;
}

/* One refresh: new file first, then delete the old one. */
static void refresh_once(cairn_lock *lock)
{
	cairn_id fresh, old;
	int r;

	if ((r = write_lock(&fresh, lock->repo, lock->exclusive)) < 0) {
		cairn_log(CAIRN_LOG_WARN, "lock", "cannot refresh the lock: %s", cairn_error_message());
		return;
	}
	pthread_mutex_lock(&lock->mu);
	old = lock->id;
	lock->id = fresh;
	pthread_mutex_unlock(&lock->mu);
	if ((r = remove_lock_file(lock->repo, &old)) < 0 && r != CAIRN_ENOTFOUND)
		cairn_log(CAIRN_LOG_WARN, "lock", "%s", cairn_error_message());
}

static void *refresh_main(void *arg)
{
	cairn_lock *lock = arg;

	pthread_mutex_lock(&lock->mu);
	while (!lock->stop) {
		struct timespec deadline;
		int rc = 0;

		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += refresh_interval_ms / 1000;
		deadline.tv_nsec += (long)(refresh_interval_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (!lock->stop && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&lock->wake, &lock->mu, &deadline);
		if (lock->stop)
			break;
		pthread_mutex_unlock(&lock->mu);
		refresh_once(lock);
		pthread_mutex_lock(&lock->mu);
	}
	pthread_mutex_unlock(&lock->mu);
	return NULL;
}

static void lock_free(cairn_lock *lock)
{
	pthread_cond_destroy(&lock->wake);
	pthread_mutex_destroy(&lock->mu);
	free(lock);
}

/* The second look: sleep until RECHECK_DELAY_MS after our file was
 * written (not at all when that moment has passed), then list again. */
static int recheck(cairn_lock *lock)
{
	struct timespec deadline = lock->written, now;
	cairn_id ours;
	long long wait_ns;
	int r;

	deadline.tv_nsec += RECHECK_DELAY_MS * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	wait_ns = (long long)(deadline.tv_sec - now.tv_sec) * 1000000000LL +
		(deadline.tv_nsec - now.tv_nsec);
	last_wait_ns = wait_ns > 0 ? wait_ns : 0;
	if (wait_ns > 0)
		while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL)) == EINTR)
			;
	pthread_mutex_lock(&lock->mu);
	ours = lock->id;
	pthread_mutex_unlock(&lock->mu);
	if ((r = check_conflicts(lock->repo, lock->exclusive, &ours)) < 0)
		return r;
	lock->confirmed = 1;
	return 0;
}

static int start_refresh(cairn_lock *lock)
{
	if (pthread_create(&lock->thread, NULL, refresh_main, lock) != 0)
		return cairn_error_set(CAIRN_ENOMEM, "cannot start the lock refresh thread");
	lock->thread_started = 1;
	return 0;
}

/* Look, write ours, and (unless `deferred`) wait and look again. */
static int acquire(cairn_lock **out, cairn_repo *repo, int exclusive, int deferred)
{
	cairn_lock *lock = NULL;
	pthread_condattr_t attr;
	int r, written = 0;

	if (!(lock = calloc(1, sizeof(*lock))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	lock->repo = repo;
	lock->exclusive = exclusive ? 1 : 0;
	pthread_mutex_init(&lock->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&lock->wake, &attr);
	pthread_condattr_destroy(&attr);

	if ((r = check_conflicts(repo, lock->exclusive, NULL)) < 0)
		goto out;
	if ((r = write_lock(&lock->id, repo, lock->exclusive)) < 0)
		goto out;
	written = 1;
	clock_gettime(CLOCK_MONOTONIC, &lock->written);
	if (!deferred && (r = recheck(lock)) < 0)
		goto out;
	if ((r = start_refresh(lock)) < 0)
		goto out;
	*out = lock;
	lock = NULL;
out:
	if (lock) {
		if (written) {
			/* back out, keeping the error that made us do so */
			char saved[512];
			snprintf(saved, sizeof(saved), "%s", cairn_error_message());
			remove_lock_file(repo, &lock->id);
			cairn_error_set(r, "%s", saved);
		}
		lock_free(lock);
	}
	return r;
}

int cairn_lock_acquire(cairn_lock **out, cairn_repo *repo, int exclusive)
{
	return acquire(out, repo, exclusive, 0);
}

int cairn_lock_acquire_deferred(cairn_lock **out, cairn_repo *repo)
{
	return acquire(out, repo, 0, 1);
}

int cairn_lock_confirm(cairn_lock *lock)
{
	if (!lock || lock->confirmed)
		return 0;
	return recheck(lock);
}

int cairn_lock_release(cairn_lock *lock)
{
	int r;

	if (!lock)
		return 0;
	if (lock->thread_started) {
		pthread_mutex_lock(&lock->mu);
		lock->stop = 1;
		pthread_cond_signal(&lock->wake);
		pthread_mutex_unlock(&lock->mu);
		pthread_join(lock->thread, NULL);
	}
	r = remove_lock_file(lock->repo, &lock->id);
	if (r == CAIRN_ENOTFOUND)
		r = 0; /* someone ran "unlock --remove-all": nothing left to do */
	lock_free(lock);
	return r;
}

int cairn_lock_remove(size_t *removed_out, cairn_repo *repo, int remove_all)
{
	cairn_id *ids = NULL;
	size_t n = 0, removed = 0;
	int r;

	if ((r = list_locks(&ids, &n, repo)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!remove_all) {
			lock_info info;
			r = load_lock(&info, repo, &ids[i]);
			if (r == CAIRN_ENOTFOUND)
				continue;
			if (r < 0) {
				/* unreadable: we cannot tell it is stale; only remove_all removes it */
				cairn_log(CAIRN_LOG_WARN, "lock", "%s", cairn_error_message());
				continue;
			}
			if (!lock_is_stale(&info))
				continue;
		}
		r = remove_lock_file(repo, &ids[i]);
		if (r == CAIRN_ENOTFOUND)
			continue;
		if (r < 0)
			goto out;
		removed++;
	}
	r = 0;
out:
	if (removed_out)
		*removed_out = removed;
	free(ids);
	return r;
}
