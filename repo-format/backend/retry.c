/* retry.c: a wrapper backend that retries transient failures of the backend
 * it wraps, with exponential backoff and jitter, bounded in total time.
 *
 * Design: the wrapper is itself a backend (restic's backend/retry): every
 * operation calls the inner backend; a CAIRN_ETRANSIENT result (connection
 * refused or reset, timeout, HTTP 5xx, 429, S3 SlowDown: the inner backend
 * decides what is transient) is tried again after a pause, every other
 * result -- success, a missing object, access denied, a bad signature,
 * corrupt data -- is passed through at once.  Pauses start at
 * policy.initial seconds and double up to policy.max_delay, each drawn at
 * random from [d/2, d] ("equal jitter") so that parallel uploaders that
 * failed together do not come back together.  One operation gives up when
 * the next pause would end after policy.timeout seconds from its first
 * attempt: it then sleeps only what is left and makes one last attempt, so
 * the bound is the timeout plus one request.  Giving up returns the last
 * error, its message extended with the number of attempts.
 *
 * Why each operation may be repeated:
 *   - save, save_fd: objects are content-addressed (same name, same bytes) and the
 *     config, keys and locks are written once under a fresh name, so
 *     writing the same bytes again is harmless; a failed save leaves no
 *     object (backend contract), a repeated one replaces it.
 *   - load: the inner backend replaces the output buffer on every call, so
 *     a retried load never appends to a half-read attempt.
 *   - stat, create: read-only, or idempotent (REST ?create=true, S3 has no
 *     layout to make).
 *   - remove: a DELETE whose answer was lost may have succeeded, so a
 *     CAIRN_ENOTFOUND after a transient failure counts as success.
 *   - list: names already handed to the caller in an earlier attempt are
 *     skipped in the next one (a set of binary ids, kept only for the call),
 *     so the callback sees each object once; a non-zero return of the
 *     callback ends the listing and is never retried.
 *
 * Each retry is logged at info level with the operation, the object's path
 * in the layout and the inner error message (backends keep secrets out of
 * their messages).  Cancellation: policy.canceled, if set, is polled every
 * 100 ms during a pause; when it answers non-zero no further attempt is
 * made and the operation fails with CAIRN_ECANCELED, the last error's
 * message kept.
 *
 * Threads: the wrapper's state is the policy and the inner backend, both
 * fixed at open; everything per call lives on the caller's stack, so it is
 * as thread-safe as the inner backend.  The process-wide defaults used by
 * cairn_backend_open() are set once by the program before any backend is
 * opened (like the log sink).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <cairn/id.h>
#include <cairn/log.h>
#include <cairn/sys/backend.h>

#define POLL_SECONDS 0.1

typedef struct retry_backend {
	cairn_backend base;    /* first member: cairn_backend* <-> retry_backend* */
	cairn_backend *inner;  /* owned */
	cairn_retry_policy policy;
} retry_backend;

static const cairn_backend_ops retry_ops;

static cairn_retry_policy default_policy = {
	.timeout = CAIRN_RETRY_DEFAULT_TIMEOUT,
	.initial = 0.5,
	.max_delay = 30.0,
	.canceled = NULL,
};

void cairn_backend_set_retry(double timeout_seconds, int (*canceled)(void))
{
	default_policy.timeout = timeout_seconds > 0 ? timeout_seconds : 0;
	default_policy.canceled = canceled;
}

void cairn_retry_default_policy(cairn_retry_policy *out)
{
	*out = default_policy;
}

static retry_backend *retry_downcast(cairn_backend *be)
{
	return be && be->ops == &retry_ops ? (retry_backend *)be : NULL;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A uniform random number in [0, 1).  getrandom cannot fail for 8 bytes
 * once the pool is ready; the clock stands in if it does. */
static double random_unit(void)
{
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL;
	}
	return (double)(v >> 11) / 9007199254740992.0; /* 2^53 */
}

/* Sleep `seconds`, in slices, stopping early when the policy's cancel hook
 * fires.  Returns 1 if canceled, 0 otherwise. */
static int pause_for(const cairn_retry_policy *p, double seconds)
{
	double end = now_seconds() + seconds;

	for (;;) {
		double left = end - now_seconds();
		struct timespec ts;

		if (p->canceled && p->canceled())
			return 1;
		if (left <= 0)
			return 0;
		if (left > POLL_SECONDS)
			left = POLL_SECONDS;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL); /* EINTR: the loop re-checks the hook and the clock */
	}
}

/* State of one operation's retries. */
typedef struct attempt_state {
	const cairn_retry_policy *policy;
	const char *op;     /* "save", "load", ... */
	const char *object; /* "data/ab/ab12..", "list of packs" */
	double start;
	double delay;       /* next pause before jitter */
	int attempts;
} attempt_state;

static void attempt_begin(attempt_state *s, const cairn_retry_policy *p, const char *op,
	const char *object)
{
	s->policy = p;
	s->op = op;
	s->object = object;
	s->start = now_seconds();
	s->delay = p->initial > 0 ? p->initial : 0.5;
	s->attempts = 1;
}

/* After a failed attempt with result *r: 1 to try again (after pausing), 0
 * to return *r.  When giving up the message is completed, and *r becomes
 * CAIRN_ECANCELED if the cancel hook fired. */
static int attempt_again(attempt_state *s, int *r)
{
	const cairn_retry_policy *p = s->policy;
	char message[1024];
	double elapsed, left, pause;

	if (*r != CAIRN_ETRANSIENT)
		return 0;
	elapsed = now_seconds() - s->start;
	left = p->timeout - elapsed;
	snprintf(message, sizeof(message), "%s", cairn_error_message());
	if (p->canceled && p->canceled()) {
		*r = cairn_error_set(CAIRN_ECANCELED, "%s (interrupted after %d attempts)", message,
			s->attempts);
		return 0;
	}
	if (left <= 0) {
		if (s->attempts > 1)
			cairn_error_set(*r, "%s (gave up after %d attempts in %.1f s)", message,
				s->attempts, elapsed);
		return 0;
	}
	/* equal jitter: somewhere in [d/2, d], never past the deadline */
	pause = s->delay / 2 + random_unit() * s->delay / 2;
	if (pause > left)
		pause = left;
	s->delay *= 2;
	if (s->delay > p->max_delay)
		s->delay = p->max_delay;
	cairn_log(CAIRN_LOG_INFO, "retry", "%s %s failed (%s), attempt %d in %.1f s", s->op,
		s->object, message, s->attempts + 1, pause);
	if (pause_for(p, pause)) {
		*r = cairn_error_set(CAIRN_ECANCELED, "%s (interrupted after %d attempts)", message,
			s->attempts);
		return 0;
	}
	s->attempts++;
	return 1;
}

static int retry__create(cairn_backend *be)
{
	retry_backend *rb = retry_downcast(be);
	attempt_state s;
	int r;

	attempt_begin(&s, &rb->policy, "create", "the repository");
	do
		r = rb->inner->ops->create(rb->inner);
	while (r < 0 && attempt_again(&s, &r));
	return r;
}

static int retry__save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	retry_backend *rb = retry_downcast(be);
	char path[128];
	attempt_state s;
	int r;

	cairn_layout_path(path, sizeof(path), h);
	attempt_begin(&s, &rb->policy, "save", path);
	do
		r = rb->inner->ops->save(rb->inner, h, data, len);
	while (r < 0 && attempt_again(&s, &r));
	return r;
}

/* save_fd: as save; the inner backend re-reads the file from offset 0 on
 * every attempt (pread), so a half-sent attempt leaves nothing behind.  An
 * inner backend without save_fd gets backend.c's generic one. */
static int retry__save_fd(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
	const cairn_id *sha256)
{
	retry_backend *rb = retry_downcast(be);
	char path[128];
	attempt_state s;
	int r;

	cairn_layout_path(path, sizeof(path), h);
	attempt_begin(&s, &rb->policy, "save", path);
	do
		r = cairn_backend_save_fd(rb->inner, h, fd, len, sha256);
	while (r < 0 && attempt_again(&s, &r));
	return r;
}

/* The inner backend's spool (its filesystem, if it has one); a local
 * operation, nothing to retry. */
static int retry__spool_open(int *fd_out, cairn_backend *be)
{
	return cairn_backend_spool_open(fd_out, retry_downcast(be)->inner);
}

static int retry__load(cairn_buf *out, cairn_backend *be, const cairn_handle *h,
	uint64_t offset, size_t length)
{
	retry_backend *rb = retry_downcast(be);
	char path[128];
	attempt_state s;
	int r;

	cairn_layout_path(path, sizeof(path), h);
	attempt_begin(&s, &rb->policy, "load", path);
	do
		r = rb->inner->ops->load(out, rb->inner, h, offset, length);
	while (r < 0 && attempt_again(&s, &r));
	return r;
}

static int retry__stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h)
{
	retry_backend *rb = retry_downcast(be);
	char path[128];
	attempt_state s;
	int r;

	cairn_layout_path(path, sizeof(path), h);
	attempt_begin(&s, &rb->policy, "stat", path);
	do
		r = rb->inner->ops->stat(size_out, rb->inner, h);
	while (r < 0 && attempt_again(&s, &r));
	return r;
}

static int retry__remove(cairn_backend *be, const cairn_handle *h)
{
	retry_backend *rb = retry_downcast(be);
	char path[128];
	attempt_state s;
	int r;

	cairn_layout_path(path, sizeof(path), h);
	attempt_begin(&s, &rb->policy, "remove", path);
	do
		r = rb->inner->ops->remove(rb->inner, h);
	while (r < 0 && attempt_again(&s, &r));
	/* the earlier DELETE did remove it; only its answer was lost */
	if (r == CAIRN_ENOTFOUND && s.attempts > 1)
		r = 0;
	return r;
}

/* ---- list: each name reaches the caller once across attempts ---- */

/* Open-addressing set of ids (first 8 bytes as the hash: ids are SHA-256). */
typedef struct id_set {
	cairn_id *slots;
	unsigned char *used;
	size_t cap, count; /* cap is 0 or a power of two */
} id_set;

static uint64_t id_hash(const cairn_id *id)
{
	uint64_t h;
	memcpy(&h, id->bytes, sizeof(h));
	return h;
}

static int id_set_grow(id_set *set)
{
	size_t cap = set->cap ? set->cap * 2 : 1024;
	cairn_id *slots = calloc(cap, sizeof(*slots));
	unsigned char *used = calloc(cap, 1);

	if (!slots || !used) {
		free(slots);
		free(used);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory while listing");
	}
	for (size_t i = 0; i < set->cap; i++) {
		if (!set->used[i])
			continue;
		size_t j = id_hash(&set->slots[i]) & (cap - 1);
		while (used[j])
			j = (j + 1) & (cap - 1);
		used[j] = 1;
		slots[j] = set->slots[i];
	}
	free(set->slots);
	free(set->used);
	set->slots = slots;
	set->used = used;
	set->cap = cap;
	return 0;
}

/* Add id; 1 if it was new, 0 if present, negative on ENOMEM. */
static int id_set_add(id_set *set, const cairn_id *id)
{
	size_t j;

	if (set->count + 1 > set->cap / 2)
		CAIRN_TRY(id_set_grow(set));
	j = id_hash(id) & (set->cap - 1);
	while (set->used[j]) {
		if (cairn_id_equal(&set->slots[j], id))
			return 0;
		j = (j + 1) & (set->cap - 1);
	}
	set->used[j] = 1;
	set->slots[j] = *id;
	set->count++;
	return 1;
}

static void id_set_release(id_set *set)
{
	free(set->slots);
	free(set->used);
	memset(set, 0, sizeof(*set));
}

typedef struct list_state {
	cairn_backend_list_cb cb;
	void *payload;
	id_set seen;
	int stopped;    /* the caller's callback returned non-zero */
	int stop_value;
	int failed;     /* our own failure (ENOMEM), not the inner backend's */
} list_state;

static int list_filter(const char *name, uint64_t size, void *payload)
{
	list_state *ls = payload;
	cairn_id id;
	int r;

	if (cairn_id_from_hex(&id, name) < 0)
		return 0; /* not an object name: backends skip those already */
	if ((r = id_set_add(&ls->seen, &id)) < 0) {
		ls->failed = 1;
		return r;
	}
	if (r == 0)
		return 0; /* delivered by an earlier attempt */
	if ((r = ls->cb(name, size, ls->payload)) != 0) {
		ls->stopped = 1;
		ls->stop_value = r;
	}
	return r;
}

static int retry__list(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb,
	void *payload)
{
	retry_backend *rb = retry_downcast(be);
	list_state ls = { cb, payload, { NULL, NULL, 0, 0 }, 0, 0, 0 };
	char what[32];
	attempt_state s;
	int r;

	snprintf(what, sizeof(what), "%s/", cairn_layout_dir(type));
	attempt_begin(&s, &rb->policy, "list", what);
	for (;;) {
		r = rb->inner->ops->list(rb->inner, type, list_filter, &ls);
		if (ls.stopped) {
			r = ls.stop_value;
			break;
		}
		if (r >= 0 || ls.failed || !attempt_again(&s, &r))
			break;
	}
	id_set_release(&ls.seen);
	return r;
}

static void retry__free(cairn_backend *be)
{
	retry_backend *rb = retry_downcast(be);
	cairn_backend_free(rb->inner);
	free(rb);
}

static const cairn_backend_ops retry_ops = {
	.version = 1,
	.name = "retry",
	.create = retry__create,
	.save = retry__save,
	.load = retry__load,
	.stat = retry__stat,
	.list = retry__list,
	.remove = retry__remove,
	.free = retry__free,
	.spool_open = retry__spool_open,
	.save_fd = retry__save_fd,
};

int cairn_backend_retry_open(cairn_backend **out, cairn_backend *inner,
	const cairn_retry_policy *policy)
{
	retry_backend *rb = NULL;
	int r = 0;

	*out = NULL;
	if (!(rb = calloc(1, sizeof(*rb)))
		|| !(rb->base.location = strdup(cairn_backend_location(inner)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot allocate the retry wrapper for '%s'",
			cairn_backend_location(inner));
		goto out;
	}
	rb->base.ops = &retry_ops;
	rb->base.max_connections = inner->max_connections;
	rb->inner = inner;
	rb->policy = policy ? *policy : default_policy;
	if (!(rb->policy.timeout >= 0)) /* negative or NaN: no retries */
		rb->policy.timeout = 0;
	if (!(rb->policy.max_delay > 0))
		rb->policy.max_delay = default_policy.max_delay;
	*out = &rb->base;
	rb = NULL;
out:
	if (rb) {
		free(rb->base.location);
		free(rb);
	}
	if (r < 0)
		cairn_backend_free(inner);
	return r;
}
