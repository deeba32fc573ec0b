/* test_backend_conformance.c: one suite of backend behaviour, run against
 * every backend this run can reach:
 *   - the folder backend (always), alone and inside the retry wrapper;
 *   - REST when CAIRN_TEST_REST_URL is set ("rest:http://[u:p@]host:port/");
 *   - S3 when CAIRN_TEST_S3_URL is set ("s3:http://host:port/bucket", with
 *     the AWS_* credential variables set as the backend reads them).
 * tests/cli/t_backend_conformance.sh starts rclone and s3rver and runs this
 * binary with both set; `make unit` runs it with the folder backend only.
 * Every network run works below a fresh random prefix, so reruns and
 * parallel runs never see each other's objects.
 *
 * What a backend must do (include/cairn/backend.h): create refuses an
 * existing repository; save/load/stat round-trip whole objects, empty ones
 * and multi-MiB ones; ranged loads return exactly the range, and a range
 * past the end is CAIRN_ECORRUPT; a missing object is CAIRN_ENOTFOUND for
 * load, stat and remove; list reports every object of a type once with its
 * size, nothing of other types, and stops on the callback's value; saving
 * an existing name replaces it whole; removed objects are gone; and all of
 * it holds with many threads at once.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairn/backend.h>
#include <cairn/error.h>
#include <cairn/id.h>
#include <cairn/sys/backend.h>
#include "unit.h"

static cairn_backend *be;     /* the backend under test */
static const char *target;    /* its label, for messages */

static void name_for(char out[CAIRN_ID_HEX_SIZE], const char *kind, int seed)
{
	char text[64];
	cairn_id id;
	int n = snprintf(text, sizeof(text), "%s-%d", kind, seed);
	cairn_sha256(&id, text, (size_t)n);
	cairn_id_to_hex(out, &id);
}

static void handle_for(cairn_handle *h, cairn_file_type type, int seed)
{
	char name[CAIRN_ID_HEX_SIZE];
	name_for(name, cairn_file_type_name(type), seed);
	cairn_handle_set(h, type, name);
}

/* Deterministic bytes for an object. */
static unsigned char *make_bytes(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 1;
	if (!p)
		exit(2);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

static void check_object(const cairn_handle *h, const void *want, size_t len)
{
	cairn_buf out = CAIRN_BUF_INIT;
	uint64_t size = 0;

	CHECK_OK(cairn_backend_stat(&size, be, h));
	CHECK_INT(size, len);
	CHECK_OK(cairn_backend_load(&out, be, h, 0, 0));
	CHECK_INT(out.len, len);
	if (out.len == len && len)
		CHECK_MEM(out.data, want, len);
	cairn_buf_release(&out);
}

static void test_create(void)
{
	cairn_handle h;

	CHECK_OK(cairn_backend_create(be));
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ENOTFOUND);
	CHECK_OK(cairn_backend_save(be, &h, "config bytes", 12));
	check_object(&h, "config bytes", 12);
	CHECK_INT(cairn_backend_create(be), CAIRN_EEXISTS);
}

static void test_save_load_every_type(void)
{
	static const cairn_file_type types[] = { CAIRN_FILE_KEY, CAIRN_FILE_LOCK,
		CAIRN_FILE_SNAPSHOT, CAIRN_FILE_INDEX, CAIRN_FILE_PACK };
	cairn_handle h;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		unsigned char *data = make_bytes(1000 + i, (unsigned)i);
		handle_for(&h, types[i], 1);
		CHECK_OK(cairn_backend_save(be, &h, data, 1000 + i));
		check_object(&h, data, 1000 + i);
		free(data);
	}
	/* an empty object */
	handle_for(&h, CAIRN_FILE_SNAPSHOT, 2);
	CHECK_OK(cairn_backend_save(be, &h, "", 0));
	check_object(&h, "", 0);
}

static void test_large_object_and_ranges(void)
{
	size_t len = (17u << 20) + 12345; /* above a default pack */
	unsigned char *data = make_bytes(len, 77);
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	static const struct { uint64_t off; size_t len; } ranges[] = {
		{ 0, 1 }, { 0, 4096 }, { 1, 100 }, { 4095, 2 }, { 1u << 20, 5u << 20 },
		{ (17u << 20) + 12340, 5 }, { (17u << 20) + 12344, 1 },
	};

	handle_for(&h, CAIRN_FILE_PACK, 3);
	CHECK_OK(cairn_backend_save(be, &h, data, len));
	check_object(&h, data, len);
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		CHECK_OK(cairn_backend_load(&out, be, &h, ranges[i].off, ranges[i].len));
		CHECK_INT(out.len, ranges[i].len);
		if (out.len == ranges[i].len)
			CHECK_MEM(out.data, data + ranges[i].off, ranges[i].len);
	}
	/* offset with length 0: to the end */
	CHECK_OK(cairn_backend_load(&out, be, &h, len - 1000, 0));
	CHECK_INT(out.len, 1000);
	if (out.len == 1000)
		CHECK_MEM(out.data, data + len - 1000, 1000);
	/* past the end: truncated, and the buffer holds nothing of it */
	CHECK_INT(cairn_backend_load(&out, be, &h, len - 10, 11), CAIRN_ECORRUPT);
	CHECK_INT(cairn_backend_load(&out, be, &h, len + 10, 1), CAIRN_ECORRUPT);
	CHECK_INT(cairn_backend_load(&out, be, &h, len + 10, 0), CAIRN_ECORRUPT);
	cairn_buf_release(&out);
	free(data);
}

static void test_missing_objects(void)
{
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	uint64_t size = 0;

	handle_for(&h, CAIRN_FILE_PACK, 404);
	CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_ENOTFOUND);
	/* the message names the object */
	CHECK(strstr(cairn_error_message(), h.name) != NULL);
	CHECK_INT(cairn_backend_load(&out, be, &h, 10, 10), CAIRN_ENOTFOUND);
	CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_ENOTFOUND);
	CHECK_INT(cairn_backend_remove(be, &h), CAIRN_ENOTFOUND);
	handle_for(&h, CAIRN_FILE_INDEX, 404);
	CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_ENOTFOUND);
	CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_ENOTFOUND);
	cairn_buf_release(&out);
}

static void test_overwrite(void)
{
	cairn_handle h;
	unsigned char *a = make_bytes(3000, 1), *b = make_bytes(200, 2);

	handle_for(&h, CAIRN_FILE_INDEX, 5);
	CHECK_OK(cairn_backend_save(be, &h, a, 3000));
	CHECK_OK(cairn_backend_save(be, &h, a, 3000)); /* same name, same bytes */
	check_object(&h, a, 3000);
	CHECK_OK(cairn_backend_save(be, &h, b, 200));  /* replaced whole, never mixed */
	check_object(&h, b, 200);
	free(a);
	free(b);
}

typedef struct listed {
	char names[64][CAIRN_ID_HEX_SIZE];
	uint64_t sizes[64];
	int n, stop_at;
} listed;

static int collect(const char *name, uint64_t size, void *payload)
{
	listed *l = payload;
	if (l->n < 64) {
		snprintf(l->names[l->n], CAIRN_ID_HEX_SIZE, "%s", name);
		l->sizes[l->n] = size;
	}
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 7 : 0;
}

/* Index of name in l, or -1; fails the check when it appears twice. */
static int find_listed(const listed *l, const char *name)
{
	int at = -1;
	for (int i = 0; i < l->n && i < 64; i++)
		if (!strcmp(l->names[i], name)) {
			CHECK(at < 0);
			at = i;
		}
	return at;
}

static int count_cb(const char *name, uint64_t size, void *payload)
{
	(void)name; (void)size;
	(*(int *)payload)++;
	return 0;
}

static void test_list_and_remove(void)
{
	cairn_handle h;
	listed *l = calloc(1, sizeof(*l));
	int at, locks_before = 0;

	if (!l)
		exit(2);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_LOCK, count_cb, &locks_before));
	/* 20 packs over many data/xx prefixes, 3 locks */
	for (int i = 0; i < 20; i++) {
		handle_for(&h, CAIRN_FILE_PACK, 1000 + i);
		CHECK_OK(cairn_backend_save(be, &h, "packpackpack", 10 + (size_t)(i % 3)));
	}
	for (int i = 0; i < 3; i++) {
		handle_for(&h, CAIRN_FILE_LOCK, 1000 + i);
		CHECK_OK(cairn_backend_save(be, &h, "{}", 2));
	}
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, collect, l));
	for (int i = 0; i < 20; i++) {
		handle_for(&h, CAIRN_FILE_PACK, 1000 + i);
		at = find_listed(l, h.name);
		CHECK(at >= 0);
		if (at >= 0)
			CHECK_INT(l->sizes[at], 10 + i % 3);
	}
	/* nothing of another type, and nothing of the locks */
	for (int i = 0; i < 3; i++) {
		handle_for(&h, CAIRN_FILE_LOCK, 1000 + i);
		CHECK(find_listed(l, h.name) < 0);
	}
	memset(l, 0, sizeof(*l));
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_LOCK, collect, l));
	CHECK_INT(l->n, locks_before + 3);

	/* the callback's value stops the listing and comes back */
	memset(l, 0, sizeof(*l));
	l->stop_at = 2;
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_PACK, collect, l), 7);
	CHECK_INT(l->n, 2);

	/* remove: gone from stat, load and list */
	handle_for(&h, CAIRN_FILE_LOCK, 1001);
	CHECK_OK(cairn_backend_remove(be, &h));
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ENOTFOUND);
	CHECK_INT(cairn_backend_remove(be, &h), CAIRN_ENOTFOUND);
	memset(l, 0, sizeof(*l));
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_LOCK, collect, l));
	CHECK_INT(l->n, locks_before + 2);
	CHECK(find_listed(l, h.name) < 0);
	for (int i = 0; i < 3; i++) {
		handle_for(&h, CAIRN_FILE_LOCK, 1000 + i);
		if (i != 1)
			CHECK_OK(cairn_backend_remove(be, &h));
	}
	memset(l, 0, sizeof(*l));
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_LOCK, collect, l));
	CHECK_INT(l->n, locks_before);
	free(l);
}

typedef struct worker {
	int id;
	atomic_int *failures;
} worker;

/* Each worker saves, stats, loads (whole and a range), lists and removes
 * its own objects, interleaved with everyone else's. */
static void *work(void *arg)
{
	worker *w = arg;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	uint64_t size;

	for (int i = 0; i < 6; i++) {
		size_t len = 50000 + (size_t)(w->id * 1000 + i);
		unsigned char *data = make_bytes(len, (unsigned)(w->id * 100 + i));
		int ok = 1;

		handle_for(&h, CAIRN_FILE_PACK, 5000 + w->id * 100 + i);
		ok &= cairn_backend_save(be, &h, data, len) == 0;
		ok &= cairn_backend_stat(&size, be, &h) == 0 && size == len;
		ok &= cairn_backend_load(&out, be, &h, 0, 0) == 0 && out.len == len
			&& !memcmp(out.data, data, len);
		ok &= cairn_backend_load(&out, be, &h, 1234, 999) == 0 && out.len == 999
			&& !memcmp(out.data, data + 1234, 999);
		if (i % 2)
			ok &= cairn_backend_remove(be, &h) == 0;
		if (!ok) {
			fprintf(stderr, "%s: worker %d object %d: %s\n", target, w->id, i,
				cairn_error_message());
			atomic_fetch_add(w->failures, 1);
		}
		free(data);
	}
	cairn_buf_release(&out);
	return NULL;
}

static void test_concurrency(void)
{
	enum { THREADS = 8 };
	pthread_t t[THREADS];
	worker w[THREADS];
	atomic_int failures = 0;
	int before = 0, after = 0;

	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, count_cb, &before));
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){ i, &failures };
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(atomic_load(&failures), 0);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, count_cb, &after));
	CHECK_INT(after, before + THREADS * 3);
}

static void test_location_has_no_secret(void)
{
	const char *loc = cairn_backend_location(be);
	CHECK(loc[0] != '\0');
	CHECK(strstr(loc, "secret") == NULL);
	CHECK(strstr(loc, "S3RVER:") == NULL);
}

/* ---- targets ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void random_tag(char out[17])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char r[8] = { 0 };
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		for (int i = 0; i < 8; i++)
			r[i] = (unsigned char)(getpid() >> (i % 4 * 8));
	for (int i = 0; i < 8; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[16] = '\0';
}

typedef void (*case_fn)(void);
static const struct { const char *name; case_fn fn; } cases[] = {
	{ "create", test_create },
	{ "save_load_every_type", test_save_load_every_type },
	{ "large_object_and_ranges", test_large_object_and_ranges },
	{ "missing_objects", test_missing_objects },
	{ "overwrite", test_overwrite },
	{ "list_and_remove", test_list_and_remove },
	{ "concurrency", test_concurrency },
	{ "location_has_no_secret", test_location_has_no_secret },
};

/* Run every case against the backend opened from `location` (wrapped in
 * the retry layer when `wrap`), each reported on its own line. */
static void run_target(const char *label, const char *location, int wrap)
{
	const char *outer = unit_current;
	char current[128];

	target = label;
	be = NULL;
	if (cairn_backend_open(&be, location, 0) < 0) {
		fprintf(stderr, "%s: cannot open '%s': %s\n", label, location, cairn_error_message());
		unit_failures++;
		return;
	}
	if (wrap) {
		cairn_retry_policy p = { 5.0, 0.05, 0.5, NULL };
		if (cairn_backend_retry_open(&be, be, &p) < 0) {
			unit_failures++;
			return;
		}
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = unit_failures;
		snprintf(current, sizeof(current), "%s/%s", label, cases[i].name);
		unit_current = current;
		cases[i].fn();
		printf("  %s %s\n", unit_failures == before ? "ok" : "FAIL", current);
		fflush(stdout);
	}
	unit_current = outer;
	cairn_backend_free(be);
	be = NULL;
}

/* "scheme:url" + "/" + tag, without doubling a slash. */
static void join_prefix(char *out, size_t size, const char *base, const char *tag, int dir)
{
	size_t n = strlen(base);
	snprintf(out, size, "%s%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", tag,
		dir ? "/" : "");
}

static void run_in_tmp(const char *label, int wrap)
{
	char dir[64], loc[128];

	snprintf(dir, sizeof(dir), "/tmp/cairn-test-conformance-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(loc, sizeof(loc), "local:%s/repo", dir);
	run_target(label, loc, wrap);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A network target from the environment, below a fresh random prefix. */
static void run_from_env(const char *label, const char *var, int dir)
{
	const char *base = getenv(var);
	char loc[1024], tag[17];

	if (!base || !*base) {
		printf("  skipped %s: %s is not set\n", label, var);
		return;
	}
	random_tag(tag);
	join_prefix(loc, sizeof(loc), base, tag, dir);
	run_target(label, loc, 0);
}

static void test_local(void) { run_in_tmp("local", 0); }
static void test_retry_wrapped_local(void) { run_in_tmp("retry+local", 1); }
static void test_rest(void) { run_from_env("rest", "CAIRN_TEST_REST_URL", 1); }
static void test_s3(void) { run_from_env("s3", "CAIRN_TEST_S3_URL", 0); }

UNIT_MAIN(test_local, test_retry_wrapped_local, test_rest, test_s3)
