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
#include <fcntl.h>
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
static const char *local_dir; /* the folder of a local target, else NULL */

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

/* ---- save_fd ---- */

static void write_file(int fd, const unsigned char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n <= 0) {
			perror("write");
			exit(2);
		}
		data += n;
		len -= (size_t)n;
	}
}

/* A spool from the backend holding `data`. */
static int spool_with(const unsigned char *data, size_t len)
{
	int fd = -1;
	CHECK_OK(cairn_backend_spool_open(&fd, be));
	CHECK(fd >= 0);
	if (fd < 0)
		exit(2);
	write_file(fd, data, len);
	return fd;
}

/* A file of our own (named, in $TMPDIR or /tmp) holding `data`. */
static int file_with(const unsigned char *data, size_t len)
{
	char path[] = "/tmp/cairn-test-savefd-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	unlink(path);
	write_file(fd, data, len);
	return fd;
}

static int tmp_count;
static int count_tmp(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	if (strstr(path + ftw->base, "-tmp-"))
		tmp_count++;
	return 0;
}

/* Temp files left in a local repository (0 for other targets). */
static int temp_files_left(void)
{
	if (!local_dir)
		return 0;
	tmp_count = 0;
	nftw(local_dir, count_tmp, 16, FTW_PHYS);
	return tmp_count;
}

/* Mode bits of a local object (-1 for other targets). */
static int local_mode(const cairn_handle *h)
{
	char rel[128], path[1024];
	struct stat st;

	if (!local_dir)
		return -1;
	cairn_layout_path(rel, sizeof(rel), h);
	snprintf(path, sizeof(path), "%s/repo/%s", local_dir, rel);
	if (stat(path, &st) < 0)
		return -2;
	return (int)(st.st_mode & 07777);
}

static void test_save_fd_large(void)
{
	size_t len = 20u << 20;
	unsigned char *data = make_bytes(len, 2020);
	cairn_handle h1, h2, h3;
	cairn_id sum;
	int fd;

	cairn_sha256(&sum, data, len);
	/* a spool from the backend, with the SHA-256 */
	handle_for(&h1, CAIRN_FILE_PACK, 20);
	fd = spool_with(data, len);
	CHECK_OK(cairn_backend_save_fd(be, &h1, fd, len, &sum));
	/* the offset is the caller's: save_fd reads with pread */
	CHECK_INT(lseek(fd, 0, SEEK_CUR), len);
	close(fd);
	check_object(&h1, data, len);
	/* a file from elsewhere, without the SHA-256 */
	handle_for(&h2, CAIRN_FILE_PACK, 21);
	fd = file_with(data, len);
	CHECK_OK(cairn_backend_save_fd(be, &h2, fd, len, NULL));
	close(fd);
	check_object(&h2, data, len);
	/* a spool without the SHA-256 */
	handle_for(&h3, CAIRN_FILE_PACK, 22);
	fd = spool_with(data, len);
	CHECK_OK(cairn_backend_save_fd(be, &h3, fd, len, NULL));
	close(fd);
	check_object(&h3, data, len);
	CHECK_INT(temp_files_left(), 0);
	if (local_dir) {
		/* the same mode as save gives */
		cairn_handle hs;
		handle_for(&hs, CAIRN_FILE_PACK, 23);
		CHECK_OK(cairn_backend_save(be, &hs, data, 100));
		CHECK_INT(local_mode(&h1), local_mode(&hs));
		CHECK_INT(local_mode(&h2), local_mode(&hs));
		CHECK_OK(cairn_backend_remove(be, &hs));
	}
	CHECK_OK(cairn_backend_remove(be, &h1));
	CHECK_OK(cairn_backend_remove(be, &h2));
	CHECK_OK(cairn_backend_remove(be, &h3));
	free(data);
}

static void test_save_fd_twice_empty_and_part(void)
{
	size_t len = 300000;
	unsigned char *data = make_bytes(len, 31);
	cairn_handle h;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_id sum;
	int fd, fd2;

	/* the same spool saved twice under one name (a retried upload), then
	 * another file with the same bytes */
	cairn_sha256(&sum, data, len);
	handle_for(&h, CAIRN_FILE_PACK, 30);
	fd = spool_with(data, len);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, len, &sum));
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, len, &sum));
	check_object(&h, data, len);
	fd2 = file_with(data, len);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd2, len, NULL));
	close(fd2);
	close(fd);
	check_object(&h, data, len);
	CHECK_OK(cairn_backend_save(be, &h, data, len));
	check_object(&h, data, len);
	CHECK_INT(temp_files_left(), 0);

	/* an empty object, from a spool and from an empty file */
	handle_for(&h, CAIRN_FILE_SNAPSHOT, 31);
	fd = spool_with(data, 0);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 0, NULL));
	close(fd);
	check_object(&h, "", 0);
	fd = file_with(data, 0);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 0, NULL));
	close(fd);
	check_object(&h, "", 0);

	/* only [0, len) of a longer file */
	handle_for(&h, CAIRN_FILE_INDEX, 32);
	fd = spool_with(data, len);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 1000, NULL));
	close(fd);
	check_object(&h, data, 1000);
	CHECK_OK(cairn_backend_load(&out, be, &h, 10, 20));
	CHECK(out.len == 20 && memcmp(out.data, data + 10, 20) == 0);

	/* a file shorter than len: an error, and nothing stored */
	handle_for(&h, CAIRN_FILE_PACK, 33);
	fd = file_with(data, 1000);
	CHECK(cairn_backend_save_fd(be, &h, fd, 5000, NULL) < 0);
	/* with a SHA-256 the network backends find out while sending */
	CHECK(cairn_backend_save_fd(be, &h, fd, 5000, &sum) < 0);
	close(fd);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ENOTFOUND);
	CHECK_INT(temp_files_left(), 0);
	cairn_buf_release(&out);
	free(data);
}

typedef struct uploader {
	int id;
	atomic_int *failures;
} uploader;

/* The pack uploaders' pattern: spool, write, save_fd, close. */
static void *upload(void *arg)
{
	uploader *u = arg;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;

	for (int i = 0; i < 3; i++) {
		size_t len = (1u << 20) + (size_t)(u->id * 1000 + i);
		unsigned char *data = make_bytes(len, (unsigned)(9000 + u->id * 10 + i));
		int fd = -1, ok;

		handle_for(&h, CAIRN_FILE_PACK, 9000 + u->id * 10 + i);
		ok = cairn_backend_spool_open(&fd, be) == 0;
		if (ok) {
			write_file(fd, data, len);
			ok = cairn_backend_save_fd(be, &h, fd, len, NULL) == 0;
			close(fd);
		}
		ok = ok && cairn_backend_load(&out, be, &h, 0, 0) == 0 && out.len == len
			&& !memcmp(out.data, data, len);
		ok = ok && cairn_backend_remove(be, &h) == 0;
		if (!ok) {
			fprintf(stderr, "%s: uploader %d object %d: %s\n", target, u->id, i,
				cairn_error_message());
			atomic_fetch_add(u->failures, 1);
		}
		free(data);
	}
	cairn_buf_release(&out);
	return NULL;
}

static void test_save_fd_parallel(void)
{
	enum { THREADS = 5 };
	pthread_t t[THREADS];
	uploader u[THREADS];
	atomic_int failures = 0;

	for (int i = 0; i < THREADS; i++) {
		u[i] = (uploader){ i, &failures };
		pthread_create(&t[i], NULL, upload, &u[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(atomic_load(&failures), 0);
	CHECK_INT(temp_files_left(), 0);
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
	{ "save_fd_large", test_save_fd_large },
	{ "save_fd_twice_empty_and_part", test_save_fd_twice_empty_and_part },
	{ "save_fd_parallel", test_save_fd_parallel },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))
#define FIRST_FD_CASE (N_CASES - 3)

/* Run the cases from `first` on against the backend opened from
 * `location` with extended options `opts` (NULL-terminated, or NULL),
 * wrapped in the retry layer when `wrap`, each reported on its own line. */
static void run_target(const char *label, const char *location, int wrap, size_t first,
	const char *const *opts)
{
	cairn_backend_options o = { opts, 0, NULL, 0, NULL };
	const char *outer = unit_current;
	char current[128];

	target = label;
	be = NULL;
	while (opts && opts[o.n_extended])
		o.n_extended++;
	if (cairn_backend_open_ex(&be, location, 0, &o) < 0) {
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
	for (size_t i = first; i < N_CASES; i++) {
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
	local_dir = dir;
	run_target(label, loc, wrap, 0, NULL);
	local_dir = NULL;
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A network target from the environment, below a fresh random prefix. */
static void run_from_env(const char *label, const char *var, int dir, size_t first,
	const char *const *opts)
{
	const char *base = getenv(var);
	char loc[1024], tag[17];

	if (!base || !*base) {
		printf("  skipped %s: %s is not set\n", label, var);
		return;
	}
	random_tag(tag);
	join_prefix(loc, sizeof(loc), base, tag, dir);
	run_target(label, loc, 0, first, opts);
}

static void test_local(void) { run_in_tmp("local", 0); }
static void test_retry_wrapped_local(void) { run_in_tmp("retry+local", 1); }
static void test_rest(void) { run_from_env("rest", "CAIRN_TEST_REST_URL", 1, 0, NULL); }
static void test_s3(void) { run_from_env("s3", "CAIRN_TEST_S3_URL", 0, 0, NULL); }

/* save_fd once more with multipart uploads: the 20 MiB object in parts */
static void test_s3_multipart(void)
{
	static const char *const opts[] = { "s3.multipart-threshold=8M", "s3.part-size=5M", NULL };
	run_from_env("s3-multipart", "CAIRN_TEST_S3_URL", 0, FIRST_FD_CASE, opts);
}

UNIT_MAIN(test_local, test_retry_wrapped_local, test_rest, test_s3, test_s3_multipart)
