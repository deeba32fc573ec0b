/* test_backend_retry.c: the retry wrapper (repo-format/backend/retry.c)
 * around a scripted fake backend with call counters: transient failures are
 * retried until success or the time bound, permanent ones pass through at
 * once, load/remove/list stay correct when repeated, cancellation stops the
 * pauses.  Pauses are shortened (initial 10 ms) so the suite runs in about
 * a second. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <cairn/backend.h>
#include <cairn/error.h>
#include <cairn/id.h>
#include <cairn/sys/backend.h>
#include "unit.h"

/* The fake: every operation first consumes one scripted result from
 * `script` (0 = go on and do the real work) and counts its calls.  Objects
 * live in a small table; thread-safe through one mutex. */
#define FAKE_MAX 16
typedef struct fake_backend {
	cairn_backend base;
	pthread_mutex_t mu;
	int script[32];
	int n_script, pos;
	atomic_int calls;
	struct { cairn_handle h; unsigned char data[64]; size_t len; int used; } obj[FAKE_MAX];
	int list_fail_after;  /* list: fail with ETRANSIENT after this many names (once) */
	int remove_then_fail; /* remove: do it, then report ETRANSIENT (once) */
} fake_backend;

static fake_backend *fake_of(cairn_backend *be) { return (fake_backend *)be; }

/* Next scripted result (0 when the script is used up). */
static int fake_step(fake_backend *f)
{
	int r = 0;
	atomic_fetch_add(&f->calls, 1);
	pthread_mutex_lock(&f->mu);
	if (f->pos < f->n_script)
		r = f->script[f->pos++];
	pthread_mutex_unlock(&f->mu);
	if (r == CAIRN_ETRANSIENT)
		return cairn_error_set(r, "connection reset by the fake");
	if (r < 0)
		return cairn_error_set(r, "fake says %d", r);
	return 0;
}

static int fake_find(fake_backend *f, const cairn_handle *h)
{
	for (int i = 0; i < FAKE_MAX; i++)
		if (f->obj[i].used && f->obj[i].h.type == h->type && !strcmp(f->obj[i].h.name, h->name))
			return i;
	return -1;
}

static int fake__create(cairn_backend *be) { return fake_step(fake_of(be)); }

static int fake__save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	fake_backend *f = fake_of(be);
	int i, r = fake_step(f);
	if (r < 0)
		return r;
	pthread_mutex_lock(&f->mu);
	if ((i = fake_find(f, h)) < 0)
		for (i = 0; i < FAKE_MAX && f->obj[i].used; i++)
			;
	if (i < FAKE_MAX && len <= sizeof(f->obj[i].data)) {
		f->obj[i].used = 1;
		f->obj[i].h = *h;
		memcpy(f->obj[i].data, data, len);
		f->obj[i].len = len;
	} else {
		r = cairn_error_set(CAIRN_EIO, "fake is full");
	}
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int fake__load(cairn_buf *out, cairn_backend *be, const cairn_handle *h,
	uint64_t offset, size_t length)
{
	fake_backend *f = fake_of(be);
	int i, r;

	/* a failing attempt leaves junk behind, as a half-read response would,
	 * before the contract's "replace" makes the next attempt start clean */
	cairn_buf_clear(out);
	cairn_buf_puts(out, "junk from a broken attempt");
	if ((r = fake_step(f)) < 0)
		return r;
	cairn_buf_clear(out);
	pthread_mutex_lock(&f->mu);
	if ((i = fake_find(f, h)) < 0)
		r = cairn_error_set(CAIRN_ENOTFOUND, "no such object");
	else if (offset + length > f->obj[i].len)
		r = cairn_error_set(CAIRN_ECORRUPT, "truncated");
	else
		r = cairn_buf_append(out, f->obj[i].data + offset,
			length ? length : f->obj[i].len - (size_t)offset);
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int fake__stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h)
{
	fake_backend *f = fake_of(be);
	int i, r = fake_step(f);
	if (r < 0)
		return r;
	pthread_mutex_lock(&f->mu);
	if ((i = fake_find(f, h)) < 0)
		r = cairn_error_set(CAIRN_ENOTFOUND, "no such object");
	else
		*size_out = f->obj[i].len;
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int fake__list(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb,
	void *payload)
{
	fake_backend *f = fake_of(be);
	int r = fake_step(f), delivered = 0;
	if (r < 0)
		return r;
	for (int i = 0; i < FAKE_MAX; i++) {
		if (!f->obj[i].used || f->obj[i].h.type != type)
			continue;
		if (f->list_fail_after && delivered == f->list_fail_after) {
			f->list_fail_after = 0;
			return cairn_error_set(CAIRN_ETRANSIENT, "listing cut off");
		}
		if ((r = cb(f->obj[i].h.name, f->obj[i].len, payload)) != 0)
			return r;
		delivered++;
	}
	return 0;
}

static int fake__remove(cairn_backend *be, const cairn_handle *h)
{
	fake_backend *f = fake_of(be);
	int i, r = fake_step(f);
	if (r < 0)
		return r;
	pthread_mutex_lock(&f->mu);
	if ((i = fake_find(f, h)) < 0) {
		r = cairn_error_set(CAIRN_ENOTFOUND, "no such object");
	} else {
		f->obj[i].used = 0;
		if (f->remove_then_fail) {
			f->remove_then_fail = 0;
			r = cairn_error_set(CAIRN_ETRANSIENT, "answer lost");
		}
	}
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int fake_freed;
static void fake__free(cairn_backend *be)
{
	fake_backend *f = fake_of(be);
	pthread_mutex_destroy(&f->mu);
	free(f);
	fake_freed++;
}

static const cairn_backend_ops fake_ops = {
	.version = 1, .name = "fake",
	.create = fake__create, .save = fake__save, .load = fake__load, .stat = fake__stat,
	.list = fake__list, .remove = fake__remove, .free = fake__free,
};

/* save_fd and spool_open for the fake: reads [0, len) with pread (from
 * offset 0 on every attempt, as the real ones do) after the script's step. */
static atomic_int fake_spools;
static int fake__spool_open(int *fd_out, cairn_backend *be)
{
	(void)be;
	atomic_fetch_add(&fake_spools, 1);
	return cairn_backend_spool_generic(fd_out);
}

static int fake__save_fd(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
	const cairn_id *sha256)
{
	unsigned char data[64];
	cairn_id sum;
	ssize_t n;
	int r = fake_step(fake_of(be));

	if (r < 0)
		return r;
	if (len > sizeof(data) || (n = pread(fd, data, (size_t)len, 0)) != (ssize_t)len)
		return cairn_error_set(CAIRN_EIO, "fake cannot read the file");
	cairn_sha256(&sum, data, (size_t)len);
	if (sha256 && !cairn_id_equal(&sum, sha256))
		return cairn_error_set(CAIRN_EINVAL, "fake got a wrong sha256");
	return fake__save(be, h, data, (size_t)len);
}

static const cairn_backend_ops fake_fd_ops = {
	.version = 1, .name = "fake-fd",
	.create = fake__create, .save = fake__save, .load = fake__load, .stat = fake__stat,
	.list = fake__list, .remove = fake__remove, .free = fake__free,
	.spool_open = fake__spool_open, .save_fd = fake__save_fd,
};

static fake_backend *fake_new(void)
{
	fake_backend *f = calloc(1, sizeof(*f));
	if (!f)
		exit(2);
	pthread_mutex_init(&f->mu, NULL);
	f->base.ops = &fake_ops;
	f->base.location = strdup("fake:somewhere");
	f->base.max_connections = 7;
	return f;
}

static void fake_script(fake_backend *f, const int *results, int n)
{
	if (n > 0)
		memcpy(f->script, results, (size_t)n * sizeof(int));
	f->n_script = n;
	f->pos = 0;
	atomic_store(&f->calls, 0);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const cairn_retry_policy fast = { 2.0, 0.01, 0.05, NULL };

static cairn_backend *wrap(fake_backend *f, const cairn_retry_policy *p)
{
	cairn_backend *be = NULL;
	CHECK_OK(cairn_backend_retry_open(&be, &f->base, p));
	return be;
}

static void name_for(char out[CAIRN_ID_HEX_SIZE], int seed)
{
	cairn_id id;
	cairn_sha256(&id, &seed, sizeof(seed));
	cairn_id_to_hex(out, &id);
}

static void test_wrapper_is_transparent(void)
{
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &fast);
	fake_freed = 0;
	CHECK_STR(cairn_backend_location(be), "fake:somewhere");
	CHECK_INT(be->max_connections, 7);
	cairn_backend_free(be);
	CHECK_INT(fake_freed, 1);
}

static void test_transient_then_success(void)
{
	static const int three_fails[] = { CAIRN_ETRANSIENT, CAIRN_ETRANSIENT, CAIRN_ETRANSIENT };
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &fast);
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	uint64_t size = 0;

	name_for(name, 1);
	cairn_handle_set(&h, CAIRN_FILE_PACK, name);
	fake_script(f, three_fails, 3);
	CHECK_OK(cairn_backend_save(be, &h, "pack bytes", 10));
	CHECK_INT(atomic_load(&f->calls), 4);

	/* load: the junk of the failed attempts never reaches the caller */
	fake_script(f, three_fails, 2);
	CHECK_OK(cairn_backend_load(&out, be, &h, 0, 0));
	CHECK_INT(atomic_load(&f->calls), 3);
	CHECK_INT(out.len, 10);
	CHECK_MEM(out.data, "pack bytes", 10);
	fake_script(f, three_fails, 1);
	CHECK_OK(cairn_backend_load(&out, be, &h, 5, 5));
	CHECK_INT(out.len, 5);
	CHECK_MEM(out.data, "bytes", 5);

	fake_script(f, three_fails, 3);
	CHECK_OK(cairn_backend_stat(&size, be, &h));
	CHECK_INT(size, 10);
	CHECK_INT(atomic_load(&f->calls), 4);

	fake_script(f, three_fails, 1);
	CHECK_OK(cairn_backend_create(be));
	CHECK_INT(atomic_load(&f->calls), 2);

	fake_script(f, three_fails, 2);
	CHECK_OK(cairn_backend_remove(be, &h));
	CHECK_INT(atomic_load(&f->calls), 3);
	cairn_buf_release(&out);
	cairn_backend_free(be);
}

static void test_permanent_errors_pass_at_once(void)
{
	static const int codes[] = { CAIRN_EAUTH, CAIRN_ENOTFOUND, CAIRN_ECORRUPT, CAIRN_EIO,
		CAIRN_EINVAL, CAIRN_ENOSPC, CAIRN_EUNSUPPORTED };
	cairn_retry_policy slow = { 60.0, 5.0, 30.0, NULL };
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &slow);
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	double t0 = now();

	name_for(name, 2);
	cairn_handle_set(&h, CAIRN_FILE_INDEX, name);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		fake_script(f, &codes[i], 1);
		CHECK_INT(cairn_backend_save(be, &h, "x", 1), codes[i]);
		CHECK_INT(atomic_load(&f->calls), 1);
		fake_script(f, &codes[i], 1);
		CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), codes[i]);
		CHECK_INT(atomic_load(&f->calls), 1);
	}
	/* the inner message is kept as it was */
	fake_script(f, &codes[0], 1);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_EAUTH);
	CHECK_STR(cairn_error_message(), "fake says -9");
	CHECK(now() - t0 < 1.0);
	cairn_buf_release(&out);
	cairn_backend_free(be);
}

static void test_gives_up_after_timeout(void)
{
	int forever[32];
	cairn_retry_policy p = { 0.3, 0.02, 0.08, NULL };
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &p);
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	double t0, took;

	for (int i = 0; i < 32; i++)
		forever[i] = CAIRN_ETRANSIENT;
	name_for(name, 3);
	cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, name);
	fake_script(f, forever, 32);
	t0 = now();
	CHECK_INT(cairn_backend_save(be, &h, "x", 1), CAIRN_ETRANSIENT);
	took = now() - t0;
	CHECK(took >= 0.29 && took < 0.6);
	/* pauses of 10..80 ms over 0.3 s: several attempts, not one per ms */
	CHECK(atomic_load(&f->calls) >= 4 && atomic_load(&f->calls) <= 20);
	CHECK(strstr(cairn_error_message(), "connection reset by the fake (gave up after ") != NULL);
	cairn_backend_free(be);

	/* timeout 0: no retries at all, message untouched */
	p.timeout = 0;
	f = fake_new();
	be = wrap(f, &p);
	fake_script(f, forever, 32);
	CHECK_INT(cairn_backend_save(be, &h, "x", 1), CAIRN_ETRANSIENT);
	CHECK_INT(atomic_load(&f->calls), 1);
	CHECK_STR(cairn_error_message(), "connection reset by the fake");
	cairn_backend_free(be);
}

static atomic_int cancel_flag;
static int canceled(void) { return atomic_load(&cancel_flag); }

static void *cancel_later(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 150 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	atomic_store(&cancel_flag, 1);
	return NULL;
}

static void test_cancel_stops_the_pause(void)
{
	static const int fails[] = { CAIRN_ETRANSIENT, CAIRN_ETRANSIENT, CAIRN_ETRANSIENT };
	cairn_retry_policy p = { 600.0, 20.0, 30.0, canceled };
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &p);
	cairn_handle h;
	pthread_t t;
	double t0 = now();

	atomic_store(&cancel_flag, 0);
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	fake_script(f, fails, 3);
	pthread_create(&t, NULL, cancel_later, NULL);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ECANCELED);
	pthread_join(t, NULL);
	CHECK(now() - t0 < 1.0);
	CHECK_INT(atomic_load(&f->calls), 1);
	CHECK(strstr(cairn_error_message(), "connection reset by the fake (interrupted after 1 "
		"attempts)") != NULL);
	/* already canceled: the first transient failure is the last */
	fake_script(f, fails, 3);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ECANCELED);
	CHECK_INT(atomic_load(&f->calls), 1);
	/* a permanent error stays what it is */
	fake_script(f, &(int){ CAIRN_EAUTH }, 1);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_EAUTH);
	atomic_store(&cancel_flag, 0);
	cairn_backend_free(be);
}

static void test_remove_whose_answer_was_lost(void)
{
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &fast);
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];

	name_for(name, 4);
	cairn_handle_set(&h, CAIRN_FILE_LOCK, name);
	CHECK_OK(cairn_backend_save(be, &h, "lock", 4));
	f->remove_then_fail = 1;
	fake_script(f, NULL, 0);
	CHECK_OK(cairn_backend_remove(be, &h));
	CHECK_INT(atomic_load(&f->calls), 2);
	/* a plain missing object is still reported */
	CHECK_INT(cairn_backend_remove(be, &h), CAIRN_ENOTFOUND);
	cairn_backend_free(be);
}

typedef struct seen { char names[FAKE_MAX][CAIRN_ID_HEX_SIZE]; int n, stop_at; } seen;
static int collect(const char *name, uint64_t size, void *payload)
{
	seen *s = payload;
	(void)size;
	if (s->n < FAKE_MAX)
		snprintf(s->names[s->n], CAIRN_ID_HEX_SIZE, "%s", name);
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 42 : 0;
}

static void test_list_delivers_each_name_once(void)
{
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &fast);
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	seen s;

	for (int i = 0; i < 5; i++) {
		name_for(name, 100 + i);
		cairn_handle_set(&h, CAIRN_FILE_PACK, name);
		CHECK_OK(cairn_backend_save(be, &h, "p", 1));
	}
	name_for(name, 200);
	cairn_handle_set(&h, CAIRN_FILE_INDEX, name);
	CHECK_OK(cairn_backend_save(be, &h, "i", 1));

	/* three names, then the listing breaks; the second attempt starts over */
	memset(&s, 0, sizeof(s));
	f->list_fail_after = 3;
	fake_script(f, NULL, 0);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, collect, &s));
	CHECK_INT(atomic_load(&f->calls), 2);
	CHECK_INT(s.n, 5);
	for (int i = 0; i < s.n && i < FAKE_MAX; i++)
		for (int j = i + 1; j < s.n && j < FAKE_MAX; j++)
			CHECK(strcmp(s.names[i], s.names[j]) != 0);

	/* the caller's stop value comes back and is not retried */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	fake_script(f, NULL, 0);
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_PACK, collect, &s), 42);
	CHECK_INT(s.n, 2);
	CHECK_INT(atomic_load(&f->calls), 1);
	/* even a stop value that looks like a transient error */
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	fake_script(f, NULL, 0);
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_INDEX, collect, &s), 42);
	CHECK_INT(atomic_load(&f->calls), 1);
	cairn_backend_free(be);
}

static int stop_transient(const char *name, uint64_t size, void *payload)
{
	(void)name; (void)size;
	(*(int *)payload)++;
	return CAIRN_ETRANSIENT;
}

static void test_list_callback_error_not_retried(void)
{
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &fast);
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	int calls = 0;

	name_for(name, 300);
	cairn_handle_set(&h, CAIRN_FILE_KEY, name);
	CHECK_OK(cairn_backend_save(be, &h, "k", 1));
	fake_script(f, NULL, 0);
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_KEY, stop_transient, &calls), CAIRN_ETRANSIENT);
	CHECK_INT(calls, 1);
	CHECK_INT(atomic_load(&f->calls), 1);
	cairn_backend_free(be);
}

typedef struct worker { cairn_backend *be; int seed, failures; } worker;
static void *hammer(void *arg)
{
	worker *w = arg;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];

	name_for(name, w->seed);
	cairn_handle_set(&h, CAIRN_FILE_PACK, name);
	if (cairn_backend_save(w->be, &h, name, 32) < 0)
		w->failures++;
	for (int i = 0; i < 20; i++)
		if (cairn_backend_load(&out, w->be, &h, 0, 0) < 0 || out.len != 32
			|| memcmp(out.data, name, 32))
			w->failures++;
	cairn_buf_release(&out);
	return NULL;
}

static void test_concurrent_retries(void)
{
	int fails[32];
	fake_backend *f = fake_new();
	cairn_backend *be = wrap(f, &fast);
	pthread_t t[8];
	worker w[8];

	/* 24 transient failures shared by whoever draws them */
	for (int i = 0; i < 24; i++)
		fails[i] = CAIRN_ETRANSIENT;
	fake_script(f, fails, 24);
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){ be, 500 + i, 0 };
		pthread_create(&t[i], NULL, hammer, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(w[i].failures, 0);
	}
	CHECK_INT(atomic_load(&f->calls), 8 * 21 + 24);
	cairn_backend_free(be);
}

/* save_fd and spool_open go through the wrapper: save_fd with save's
 * retries (each attempt reads the file again from its start), spool_open
 * to the inner backend's spool; an inner backend without them gets
 * backend.c's generic ones. */
static void test_save_fd_forwarded(void)
{
	static const int two_fails[] = { CAIRN_ETRANSIENT, CAIRN_ETRANSIENT };
	fake_backend *f = fake_new();
	cairn_backend *be;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	cairn_id sum;
	int fd = -1;

	f->base.ops = &fake_fd_ops;
	be = wrap(f, &fast);
	name_for(name, 600);
	cairn_handle_set(&h, CAIRN_FILE_PACK, name);
	atomic_store(&fake_spools, 0);
	CHECK_OK(cairn_backend_spool_open(&fd, be));
	CHECK_INT(atomic_load(&fake_spools), 1);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "spooled pack", 12), 12);
	cairn_sha256(&sum, "spooled pack", 12);

	/* two transient failures, then the third attempt stores it whole */
	fake_script(f, two_fails, 2);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 12, &sum));
	/* each attempt: one step in save_fd; the last one another in save */
	CHECK_INT(atomic_load(&f->calls), 4);
	CHECK_OK(cairn_backend_load(&out, be, &h, 0, 0));
	CHECK(out.len == 12 && memcmp(out.data, "spooled pack", 12) == 0);

	/* a permanent failure passes at once */
	fake_script(f, &(int){ CAIRN_EAUTH }, 1);
	CHECK_INT(cairn_backend_save_fd(be, &h, fd, 12, NULL), CAIRN_EAUTH);
	CHECK_INT(atomic_load(&f->calls), 1);
	/* bad arguments never reach the inner backend */
	fake_script(f, NULL, 0);
	CHECK_INT(cairn_backend_save_fd(be, &h, -1, 12, NULL), CAIRN_EINVAL);
	CHECK_INT(atomic_load(&f->calls), 0);
	cairn_backend_free(be);

	/* an inner backend without save_fd: the generic one, retried the same */
	f = fake_new();
	be = wrap(f, &fast);
	fake_script(f, two_fails, 1);
	name_for(name, 601);
	cairn_handle_set(&h, CAIRN_FILE_INDEX, name);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 7, NULL));
	CHECK_INT(atomic_load(&f->calls), 2);
	CHECK_OK(cairn_backend_load(&out, be, &h, 0, 0));
	CHECK(out.len == 7 && memcmp(out.data, "spooled", 7) == 0);
	close(fd);
	fd = -1;
	CHECK_OK(cairn_backend_spool_open(&fd, be));
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	cairn_buf_release(&out);
	cairn_backend_free(be);
}

static void test_default_policy(void)
{
	cairn_retry_policy p;

	cairn_retry_default_policy(&p);
	CHECK(p.timeout == CAIRN_RETRY_DEFAULT_TIMEOUT);
	cairn_backend_set_retry(12.5, canceled);
	cairn_retry_default_policy(&p);
	CHECK(p.timeout == 12.5);
	CHECK(p.canceled == canceled);
	cairn_backend_set_retry(-1, NULL);
	cairn_retry_default_policy(&p);
	CHECK(p.timeout == 0);
	cairn_backend_set_retry(CAIRN_RETRY_DEFAULT_TIMEOUT, NULL);
}

UNIT_MAIN(test_wrapper_is_transparent, test_transient_then_success,
	test_permanent_errors_pass_at_once, test_gives_up_after_timeout, test_cancel_stops_the_pause,
	test_remove_whose_answer_was_lost, test_list_delivers_each_name_once,
	test_list_callback_error_not_retried, test_concurrent_retries, test_save_fd_forwarded,
	test_default_policy)
