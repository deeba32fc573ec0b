/* test_backend_local.c: the folder backend and the location/handle/layout
 * helpers, on temp directories under /tmp. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairn/backend.h>
#include <cairn/error.h>
#include <cairn/id.h>
#include <cairn/sys/backend.h>
#include "unit.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tmp(char *out, size_t size)
{
	snprintf(out, size, "/tmp/cairn-test-backend-XXXXXX");
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(2);
	}
}

static int path_exists(const char *root, const char *rel)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return stat(p, &st) == 0;
}

static void write_raw(const char *root, const char *rel, const char *text)
{
	char p[4096];
	FILE *f;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* A hex name made from a seed. */
static void name_for(char out[CAIRN_ID_HEX_SIZE], int seed)
{
	cairn_id id;
	cairn_sha256(&id, &seed, sizeof(seed));
	cairn_id_to_hex(out, &id);
}

/* Count temp files ("-tmp-") anywhere below root. */
static int tmp_count;
static int count_tmp(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	if (strstr(path, "-tmp-"))
		tmp_count++;
	return 0;
}
static int temp_files_below(const char *root)
{
	tmp_count = 0;
	nftw(root, count_tmp, 16, FTW_PHYS);
	return tmp_count;
}

static void test_layout_and_handles(void)
{
	cairn_handle h;
	char path[128];

	cairn_handle_set(&h, CAIRN_FILE_PACK, "ab12000000000000000000000000000000000000000000000000000000000000");
	cairn_layout_path(path, sizeof(path), &h);
	CHECK_STR(path, "data/ab/ab12000000000000000000000000000000000000000000000000000000000000");
	cairn_handle_set(&h, CAIRN_FILE_INDEX, "cd12000000000000000000000000000000000000000000000000000000000000");
	cairn_layout_path(path, sizeof(path), &h);
	CHECK_STR(path, "index/cd12000000000000000000000000000000000000000000000000000000000000");
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	CHECK_STR(h.name, "");
	cairn_layout_path(path, sizeof(path), &h);
	CHECK_STR(path, "config");
	CHECK_STR(cairn_layout_dir(CAIRN_FILE_KEY), "keys");
	CHECK_STR(cairn_layout_dir(CAIRN_FILE_LOCK), "locks");
	CHECK_STR(cairn_layout_dir(CAIRN_FILE_SNAPSHOT), "snapshots");
	CHECK_STR(cairn_file_type_name(CAIRN_FILE_PACK), "pack");
	CHECK_STR(cairn_file_type_name(CAIRN_FILE_SNAPSHOT), "snapshot");
}

static void test_open_locations(void)
{
	char dir[64], loc[128];
	cairn_backend *be = NULL;

	make_tmp(dir, sizeof(dir));
	/* s3: is a backend now (test_s3.c); a location without a bucket is refused */
	CHECK_INT(cairn_backend_open(&be, "s3:http://host:9000/", 1), CAIRN_EINVAL);
	CHECK(be == NULL);
	CHECK_INT(cairn_backend_open(&be, "b2:bucket/path", 1), CAIRN_EUNSUPPORTED);
	CHECK_STR(cairn_error_message(), "backend 'b2' is not supported yet");
	CHECK(be == NULL);
	/* rest: opens without asking the server, wrapped in the retry layer;
	 * the location hides the password */
	CHECK_OK(cairn_backend_open(&be, "rest:http://u:pw@host:8000", 0));
	CHECK_STR(cairn_backend_location(be), "rest:http://u:***@host:8000/");
	cairn_backend_free(be);
	be = NULL;
	CHECK_INT(cairn_backend_open(&be, "sftp:user@host:/srv/repo", 0), CAIRN_EUNSUPPORTED);
	CHECK_INT(cairn_backend_open(&be, "", 0), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_open(&be, "local:", 0), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_open(&be, "/nonexistent/cairn/repo", 1), CAIRN_ENOTFOUND);

	snprintf(loc, sizeof(loc), "local:%s/", dir);
	CHECK_OK(cairn_backend_open(&be, loc, 1));
	CHECK_STR(cairn_backend_location(be), dir);
	CHECK(be->max_connections >= 1);
	cairn_backend_free(be);
	be = NULL;
	CHECK_OK(cairn_backend_open(&be, dir, 1));
	CHECK_STR(cairn_backend_location(be), dir);
	cairn_backend_free(be);
	cairn_backend_free(NULL);
	rm_rf(dir);
}

static void test_create_layout_and_twice(void)
{
	char dir[64], repo[128];
	cairn_backend *be = NULL;
	cairn_handle h;

	make_tmp(dir, sizeof(dir));
	snprintf(repo, sizeof(repo), "%s/nested/repo", dir);
	CHECK_OK(cairn_backend_open(&be, repo, 0));
	CHECK_OK(cairn_backend_create(be));
	CHECK(path_exists(repo, "keys") && path_exists(repo, "locks") && path_exists(repo, "snapshots"));
	CHECK(path_exists(repo, "index") && path_exists(repo, "data/00") && path_exists(repo, "data/ff"));
	CHECK(path_exists(repo, "data/7f"));
	CHECK(!path_exists(repo, "config"));
	/* without a config, create again is fine (an interrupted init) */
	CHECK_OK(cairn_backend_create(be));
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	CHECK_OK(cairn_backend_save(be, &h, "cfg", 3));
	CHECK(path_exists(repo, "config"));
	CHECK_INT(cairn_backend_create(be), CAIRN_EEXISTS);
	CHECK(strstr(cairn_error_message(), "already exists") != NULL);
	cairn_backend_free(be);
	rm_rf(dir);
}

static int collect_cb(const char *name, uint64_t size, void *payload)
{
	cairn_buf *b = payload;
	cairn_buf_printf(b, "%s:%llu;", name, (unsigned long long)size);
	return 0;
}

static int stop_cb(const char *name, uint64_t size, void *payload)
{
	(void)name; (void)size;
	(*(int *)payload)++;
	return 7;
}

static void test_save_load_stat_list_remove(void)
{
	char dir[64], a[CAIRN_ID_HEX_SIZE], b[CAIRN_ID_HEX_SIZE], rel[200], expect[200];
	cairn_backend *be = NULL;
	cairn_handle ha, hb, hi;
	cairn_buf out = CAIRN_BUF_INIT, listed = CAIRN_BUF_INIT;
	unsigned char big[100000];
	uint64_t size = 0;
	int calls = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + (i >> 8));
	make_tmp(dir, sizeof(dir));
	CHECK_OK(cairn_backend_open(&be, dir, 1));
	CHECK_OK(cairn_backend_create(be));
	name_for(a, 1);
	name_for(b, 2);
	cairn_handle_set(&ha, CAIRN_FILE_PACK, a);
	cairn_handle_set(&hb, CAIRN_FILE_PACK, b);
	cairn_handle_set(&hi, CAIRN_FILE_INDEX, a);

	CHECK_OK(cairn_backend_save(be, &ha, big, sizeof(big)));
	CHECK_OK(cairn_backend_save(be, &hb, "hello", 5));
	CHECK_OK(cairn_backend_save(be, &hi, "", 0)); /* empty object */
	snprintf(rel, sizeof(rel), "data/%.2s/%s", a, a);
	CHECK(path_exists(dir, rel));
	CHECK_INT(temp_files_below(dir), 0);

	/* whole, range, to-the-end loads */
	CHECK_OK(cairn_backend_load(&out, be, &ha, 0, 0));
	CHECK_INT(out.len, sizeof(big));
	CHECK_MEM(out.data, big, sizeof(big));
	CHECK_OK(cairn_backend_load(&out, be, &ha, 12345, 1000));
	CHECK_INT(out.len, 1000);
	CHECK_MEM(out.data, big + 12345, 1000);
	CHECK_OK(cairn_backend_load(&out, be, &ha, 99990, 0));
	CHECK_INT(out.len, 10);
	CHECK_MEM(out.data, big + 99990, 10);
	CHECK_OK(cairn_backend_load(&out, be, &hi, 0, 0));
	CHECK_INT(out.len, 0);

	/* stat */
	CHECK_OK(cairn_backend_stat(&size, be, &ha));
	CHECK_INT(size, sizeof(big));
	CHECK_OK(cairn_backend_stat(&size, be, &hb));
	CHECK_INT(size, 5);

	/* truncated: the range runs past the end */
	CHECK_INT(cairn_backend_load(&out, be, &hb, 2, 10), CAIRN_ECORRUPT);
	snprintf(expect, sizeof(expect), "'data/%.2s/%s' is truncated: want 10 bytes at offset 2, file has 5",
		b, b);
	CHECK_STR(cairn_error_message(), expect);
	CHECK_INT(out.len, 0);
	CHECK_INT(cairn_backend_load(&out, be, &hb, 6, 0), CAIRN_ECORRUPT);
	CHECK_INT(cairn_backend_load(&out, be, &hb, 5, 0), 0); /* empty tail at the very end */
	CHECK_INT(out.len, 0);

	/* saving the same name again replaces it atomically */
	CHECK_OK(cairn_backend_save(be, &hb, "hello", 5));
	CHECK_OK(cairn_backend_load(&out, be, &hb, 0, 0));
	CHECK_INT(out.len, 5);
	CHECK_MEM(out.data, "hello", 5);

	/* list packs: temp and other non-id names are skipped */
	snprintf(rel, sizeof(rel), "data/%.2s/%s-tmp-1234567890abcdef", a, a);
	write_raw(dir, rel, "leftover");
	write_raw(dir, "data/00/README", "x");
	write_raw(dir, "data/00/0123", "x");
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, collect_cb, &listed));
	CHECK(strstr(cairn_buf_cstr(&listed), a) != NULL);
	CHECK(strstr(cairn_buf_cstr(&listed), b) != NULL);
	CHECK(strstr(cairn_buf_cstr(&listed), "-tmp-") == NULL);
	CHECK(strstr(cairn_buf_cstr(&listed), "README") == NULL);
	snprintf(expect, sizeof(expect), "%s:100000;", a);
	CHECK(strstr(cairn_buf_cstr(&listed), expect) != NULL);
	snprintf(expect, sizeof(expect), "%s:5;", b);
	CHECK(strstr(cairn_buf_cstr(&listed), expect) != NULL);
	CHECK_INT(listed.len, 2 * (64 + 1) + strlen("100000;") + strlen("5;"));

	cairn_buf_clear(&listed);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_INDEX, collect_cb, &listed));
	snprintf(expect, sizeof(expect), "%s:0;", a);
	CHECK_STR(cairn_buf_cstr(&listed), expect);

	/* a callback's non-zero result stops the listing and is returned */
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_PACK, stop_cb, &calls), 7);
	CHECK_INT(calls, 1);

	/* a missing directory lists as empty */
	rm_rf(dir); /* wipes everything; recreate only the root */
	mkdir(dir, 0700);
	cairn_buf_clear(&listed);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_SNAPSHOT, collect_cb, &listed));
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, collect_cb, &listed));
	CHECK_INT(listed.len, 0);

	/* save recreates data/XX on demand */
	CHECK_OK(cairn_backend_save(be, &ha, big, 10));
	CHECK_OK(cairn_backend_stat(&size, be, &ha));
	CHECK_INT(size, 10);

	/* remove */
	CHECK_OK(cairn_backend_remove(be, &ha));
	CHECK_INT(cairn_backend_remove(be, &ha), CAIRN_ENOTFOUND);

	cairn_buf_release(&out);
	cairn_buf_release(&listed);
	cairn_backend_free(be);
	rm_rf(dir);
}

static void test_missing_and_invalid(void)
{
	char dir[64], a[CAIRN_ID_HEX_SIZE];
	cairn_backend *be = NULL;
	cairn_handle h;
	cairn_buf out = CAIRN_BUF_INIT;
	uint64_t size;

	make_tmp(dir, sizeof(dir));
	CHECK_OK(cairn_backend_open(&be, dir, 1));
	CHECK_OK(cairn_backend_create(be));
	name_for(a, 3);
	cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, a);
	CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_ENOTFOUND);
	CHECK(strstr(cairn_error_message(), "does not exist") != NULL);
	CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_ENOTFOUND);
	CHECK_INT(cairn_backend_remove(be, &h), CAIRN_ENOTFOUND);
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_ENOTFOUND);

	/* names that would leave the layout are refused before any I/O */
	cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, "../config");
	CHECK_INT(cairn_backend_save(be, &h, "x", 1), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_EINVAL);
	cairn_handle_set(&h, CAIRN_FILE_PACK, "");
	CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_CONFIG, collect_cb, &out), CAIRN_EINVAL);
	cairn_buf_release(&out);
	cairn_backend_free(be);
	rm_rf(dir);
}

static void test_save_failures_leave_nothing(void)
{
	char dir[64], a[CAIRN_ID_HEX_SIZE], p[200];
	cairn_backend *be = NULL;
	cairn_handle h;
	int r;

	make_tmp(dir, sizeof(dir));
	CHECK_OK(cairn_backend_open(&be, dir, 1));
	CHECK_OK(cairn_backend_create(be));
	name_for(a, 4);

	/* a file where the keys/ directory should be */
	snprintf(p, sizeof(p), "%s/keys", dir);
	CHECK_INT(rmdir(p), 0);
	write_raw(dir, "keys", "not a directory");
	cairn_handle_set(&h, CAIRN_FILE_KEY, a);
	r = cairn_backend_save(be, &h, "key", 3);
	CHECK(r < 0);
	CHECK(strstr(cairn_error_message(), "keys") != NULL);

	/* a read-only directory (permission checks do not apply to root) */
	if (geteuid() != 0) {
		snprintf(p, sizeof(p), "%s/snapshots", dir);
		CHECK_INT(chmod(p, 0500), 0);
		cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, a);
		CHECK_INT(cairn_backend_save(be, &h, "snap", 4), CAIRN_EIO);
		chmod(p, 0700);
	}
	CHECK_INT(temp_files_below(dir), 0);
	cairn_backend_free(be);

	/* a repository root that does not exist */
	snprintf(p, sizeof(p), "%s/absent/repo", dir);
	CHECK_OK(cairn_backend_open(&be, p, 0));
	cairn_handle_set(&h, CAIRN_FILE_INDEX, a);
	CHECK(cairn_backend_save(be, &h, "x", 1) < 0);
	CHECK(!path_exists(dir, "absent"));
	cairn_backend_free(be);
	rm_rf(dir);
}

/* spool_open: an unnamed file on the repository's filesystem (data/, or
 * the root before create); save_fd links it in place, while a named file
 * of the caller's is copied (never hard-linked: the caller could change
 * the object through it). */
static void test_spool_and_save_fd(void)
{
	char dir[64], a[CAIRN_ID_HEX_SIZE], p[200], path[300];
	cairn_backend *be = NULL;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	struct stat st, rst;
	int fd = -1;
	FILE *f;

	make_tmp(dir, sizeof(dir));
	CHECK_OK(cairn_backend_open(&be, dir, 1));
	/* before create: in the root */
	CHECK_OK(cairn_backend_spool_open(&fd, be));
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink == 0);
	CHECK(stat(dir, &rst) == 0 && rst.st_dev == st.st_dev);
	close(fd);
	CHECK_OK(cairn_backend_create(be));
	CHECK_OK(cairn_backend_spool_open(&fd, be));
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_nlink == 0 && (st.st_mode & 0077) == 0);
	CHECK_INT(write(fd, "spooled", 7), 7);
	name_for(a, 40);
	cairn_handle_set(&h, CAIRN_FILE_PACK, a);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 7, NULL));
	/* linked, not copied: the object is the spool's inode */
	snprintf(path, sizeof(path), "%s/data/%.2s/%s", dir, a, a);
	CHECK(fstat(fd, &st) == 0 && stat(path, &rst) == 0 && st.st_ino == rst.st_ino);
	close(fd);
	CHECK_OK(cairn_backend_load(&out, be, &h, 0, 0));
	CHECK(out.len == 7 && memcmp(out.data, "spooled", 7) == 0);

	/* a named file of the caller's is copied */
	snprintf(p, sizeof(p), "%s/mine", dir);
	f = fopen(p, "w+");
	CHECK(f != NULL);
	if (f) {
		fputs("named file", f);
		fflush(f);
		name_for(a, 41);
		cairn_handle_set(&h, CAIRN_FILE_PACK, a);
		CHECK_OK(cairn_backend_save_fd(be, &h, fileno(f), 10, NULL));
		CHECK(fstat(fileno(f), &st) == 0 && st.st_nlink == 1);
		rewind(f);
		fputs("NAMED", f);
		fclose(f);
		CHECK_OK(cairn_backend_load(&out, be, &h, 0, 0));
		CHECK(out.len == 10 && memcmp(out.data, "named file", 10) == 0);
		unlink(p);
	}
	CHECK_INT(temp_files_below(dir), 0);
	cairn_backend_free(be);

	/* a repository root that does not exist: no spool, a clear message */
	snprintf(p, sizeof(p), "%s/absent/repo", dir);
	CHECK_OK(cairn_backend_open(&be, p, 0));
	CHECK_INT(cairn_backend_spool_open(&fd, be), CAIRN_EIO);
	CHECK(strstr(cairn_error_message(), "spool") != NULL);
	cairn_backend_free(be);
	cairn_buf_release(&out);
	rm_rf(dir);
}

/* A full disk (a 1 MiB tmpfs, when this process may mount one): save_fd
 * and save fail with CAIRN_ENOSPC saying so, and leave neither the object
 * nor a temp file; a spool that fits is linked in place. */
static void test_save_fd_full_disk(void)
{
	char dir[64], repo[128], a[CAIRN_ID_HEX_SIZE];
	cairn_backend *be = NULL;
	cairn_handle h;
	unsigned char *big = calloc(1, 2u << 20);
	int fd;

	make_tmp(dir, sizeof(dir));
	if (!big || mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
		printf("  skipped: cannot mount a small tmpfs (%s)\n", strerror(errno));
		free(big);
		rm_rf(dir);
		return;
	}
	snprintf(repo, sizeof(repo), "%s/repo", dir);
	CHECK_OK(cairn_backend_open(&be, repo, 0));
	CHECK_OK(cairn_backend_create(be));
	name_for(a, 50);
	cairn_handle_set(&h, CAIRN_FILE_PACK, a);
	/* from a file on another filesystem: copied, and the disk fills */
	fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_INT(write(fd, big, 2u << 20), 2u << 20);
		CHECK_INT(cairn_backend_save_fd(be, &h, fd, 2u << 20, NULL), CAIRN_ENOSPC);
		CHECK(strstr(cairn_error_message(), "No space left on device") != NULL);
		CHECK(strstr(cairn_error_message(), a) != NULL);
		close(fd);
	}
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ENOTFOUND);
	CHECK_INT(cairn_backend_save(be, &h, big, 2u << 20), CAIRN_ENOSPC);
	CHECK_INT(cairn_backend_stat(&(uint64_t){0}, be, &h), CAIRN_ENOTFOUND);
	CHECK_INT(temp_files_below(dir), 0);
	/* a spool on the full filesystem: the caller's write fails, not ours;
	 * one that fits is stored */
	CHECK_OK(cairn_backend_spool_open(&fd, be));
	CHECK_INT(write(fd, big, 100000), 100000);
	CHECK_OK(cairn_backend_save_fd(be, &h, fd, 100000, NULL));
	close(fd);
	CHECK_OK(cairn_backend_stat(&(uint64_t){0}, be, &h));
	cairn_backend_free(be);
	CHECK_INT(umount(dir), 0);
	free(big);
	rm_rf(dir);
}

struct worker {
	cairn_backend *be;
	int base;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	cairn_buf out = CAIRN_BUF_INIT;
	char name[CAIRN_ID_HEX_SIZE];
	cairn_handle h;
	int payload[64];

	for (int i = 0; i < 40; i++) {
		for (int k = 0; k < 64; k++)
			payload[k] = w->base + i * 1000 + k;
		name_for(name, w->base + i);
		cairn_handle_set(&h, CAIRN_FILE_PACK, name);
		if (cairn_backend_save(w->be, &h, payload, sizeof(payload)) < 0
			|| cairn_backend_load(&out, w->be, &h, 0, 0) < 0
			|| out.len != sizeof(payload) || memcmp(out.data, payload, sizeof(payload)) != 0)
			w->failures++;
	}
	cairn_buf_release(&out);
	return NULL;
}

static int count_cb(const char *name, uint64_t size, void *payload)
{
	(void)name; (void)size;
	(*(int *)payload)++;
	return 0;
}

static void test_concurrent_saves(void)
{
	char dir[64];
	cairn_backend *be = NULL;
	struct worker w[4];
	pthread_t t[4];
	int n = 0;

	make_tmp(dir, sizeof(dir));
	CHECK_OK(cairn_backend_open(&be, dir, 0));
	CHECK_OK(cairn_backend_create(be));
	for (int i = 0; i < 4; i++) {
		w[i].be = be;
		w[i].base = i * 100000;
		w[i].failures = 0;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(w[i].failures, 0);
	}
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_PACK, count_cb, &n));
	CHECK_INT(n, 160);
	cairn_backend_free(be);
	rm_rf(dir);
}

UNIT_MAIN(test_layout_and_handles, test_open_locations, test_create_layout_and_twice,
	test_save_load_stat_list_remove, test_missing_and_invalid, test_save_failures_leave_nothing,
	test_spool_and_save_fd, test_save_fd_full_disk, test_concurrent_saves)
