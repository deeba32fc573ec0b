/* test_index_cache.c: the blob index cached in LMDB (repo-format/index_cache.c).
 *
 * Index files are made with the index builder and served by a fake fetch
 * callback that counts its calls, so each test can say exactly which files a
 * sync read: a first merge, a warm reopen that reads nothing, a new file
 * merged alone, a vanished file that forces a rebuild, damaged or alien
 * caches (meta pages overwritten, an entry's bytes overwritten, another
 * format, another repository, a merge that never finished) detected and
 * rebuilt, lookups from 8 threads beside adds, two processes syncing the
 * same cache at once, the overlay (blobs this process stored never reach the
 * database, so a crash before the index file leaves no trace), and a
 * repository falling back to memory when the cache folder is unusable.
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include <cairn/cairn.h>
#include "unit.h"

#define N_FILES 6
#define PACKS_PER_FILE 20
#define BLOBS_PER_PACK 50
#define BLOBS_PER_FILE (PACKS_PER_FILE * BLOBS_PER_PACK)

/* --- helpers --------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/cairn-test-icache-XXXXXX");
	if (!d || !mkdtemp(d)) {
		perror("mkdtemp");
		exit(2);
	}
	return d;
}

/* An id for "<what> a b". */
static void text_id(cairn_id *out, const char *what, int a, int b)
{
	char s[96];
	snprintf(s, sizeof(s), "%s %d %d", what, a, b);
	cairn_sha256(out, s, strlen(s));
}

static void blob_id(cairn_id *out, int file, int k)
{
	text_id(out, "blob", file, k);
}

static void pack_id(cairn_id *out, int file, int p)
{
	text_id(out, "pack", file, p);
}

/* The entry of blob k of file f, as its index file lists it. */
static void blob_entry(cairn_pack_entry *e, int f, int k)
{
	memset(e, 0, sizeof(*e));
	blob_id(&e->id, f, k);
	e->type = k % 7 == 0 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
	e->offset = (uint32_t)(k % BLOBS_PER_PACK) * 100;
	e->length = 40 + (uint32_t)k;
	e->uncompressed_length = k % 2 ? 1000 + (uint32_t)k : 0;
}

typedef struct fake_file {
	cairn_id id;
	cairn_buf json;
	int present;
} fake_file;

typedef struct fake_repo {
	fake_file files[N_FILES + 2];
	int n;
	int fetches;
} fake_repo;

static void make_file(fake_repo *fr, int f)
{
	cairn_index_builder *b = NULL;
	cairn_pack_entry e[BLOBS_PER_PACK];
	fake_file *ff = &fr->files[f];

	CHECK_OK(cairn_index_builder_new(&b));
	for (int p = 0; p < PACKS_PER_FILE; p++) {
		cairn_id pack;
		pack_id(&pack, f, p);
		for (int k = 0; k < BLOBS_PER_PACK; k++)
			blob_entry(&e[k], f, p * BLOBS_PER_PACK + k);
		CHECK_OK(cairn_index_builder_add_pack(b, &pack, e, BLOBS_PER_PACK));
	}
	ff->json = (cairn_buf)CAIRN_BUF_INIT;
	CHECK_OK(cairn_index_builder_encode(&ff->json, b));
	cairn_sha256(&ff->id, ff->json.data, ff->json.len);
	ff->present = 1;
	if (f >= fr->n)
		fr->n = f + 1;
	cairn_index_builder_free(b);
}

static void fake_init(fake_repo *fr, int n_files)
{
	memset(fr, 0, sizeof(*fr));
	for (int f = 0; f < n_files; f++)
		make_file(fr, f);
}

static void fake_release(fake_repo *fr)
{
	for (int f = 0; f < fr->n; f++)
		cairn_buf_release(&fr->files[f].json);
}

static int fetch_cb(cairn_buf *out, const cairn_id *id, void *payload)
{
	fake_repo *fr = payload;
	for (int f = 0; f < fr->n; f++) {
		if (fr->files[f].present && cairn_id_equal(&fr->files[f].id, id)) {
			fr->fetches++;
			cairn_buf_clear(out);
			return cairn_buf_append(out, fr->files[f].json.data, fr->files[f].json.len);
		}
	}
	return cairn_error_set(CAIRN_ENOTFOUND, "no such index file");
}

/* Sync idx with the present files; returns the result, stats in *st. */
static int sync_fake(cairn_index *idx, fake_repo *fr, cairn_index_sync_stats *st)
{
	cairn_index_file list[N_FILES + 2];
	size_t n = 0;

	for (int f = 0; f < fr->n; f++) {
		if (!fr->files[f].present)
			continue;
		list[n].id = fr->files[f].id;
		list[n].size = fr->files[f].json.len;
		n++;
	}
	fr->fetches = 0;
	return cairn_index_sync(idx, list, n, fetch_cb, fr, st);
}

/* Number of blobs of file f whose lookup does not give `want_found` (and,
 * when found, exactly the location the file lists). */
static int check_file(cairn_index *idx, int f, int want_found)
{
	int bad = 0;
	for (int k = 0; k < BLOBS_PER_FILE; k++) {
		cairn_pack_entry e;
		cairn_blob_location loc;
		cairn_id pack;
		int r;

		blob_entry(&e, f, k);
		pack_id(&pack, f, k / BLOBS_PER_PACK);
		r = cairn_index_lookup(&loc, idx, e.type, &e.id);
		if (r != want_found) {
			bad++;
			continue;
		}
		if (r == 1 && (!cairn_id_equal(&loc.pack, &pack) || loc.offset != e.offset
			|| loc.length != e.length || loc.uncompressed_length != e.uncompressed_length))
			bad++;
		/* the other type is never known */
		if (cairn_index_lookup(NULL, idx, e.type == CAIRN_BLOB_DATA ? CAIRN_BLOB_TREE
			: CAIRN_BLOB_DATA, &e.id) != 0)
			bad++;
	}
	return bad;
}

/* Log lines, to see the info line of a rebuild. */
static char log_text[8192];

static void log_cb(cairn_log_level level, const char *component, const char *message, void *payload)
{
	size_t len = strlen(log_text);
	(void)level; (void)component; (void)payload;
	snprintf(log_text + len, sizeof(log_text) - len, "%s\n", message);
}

static void log_start(void)
{
	log_text[0] = '\0';
	cairn_log_set(CAIRN_LOG_INFO, log_cb, NULL);
}

static void log_stop(void)
{
	cairn_log_set(CAIRN_LOG_ERROR, NULL, NULL);
}

static void env_path(char *out, size_t size, const char *cache, const cairn_id *repo_id)
{
	char hex[CAIRN_ID_HEX_SIZE];
	cairn_id_to_hex(hex, repo_id);
	snprintf(out, size, "%s/%s/index.lmdb", cache, hex);
}

/* Write meta[key] = value straight into the cache's LMDB database. */
static void poke_meta(const char *env_dir, const char *key, const char *value)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = { strlen(key), (void *)key }, v = { strlen(value), (void *)value };

	CHECK_INT(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 4);
	mdb_env_set_mapsize(env, (size_t)1 << 36);
	CHECK_INT(mdb_env_open(env, env_dir, 0, 0600), 0);
	CHECK_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
	CHECK_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	CHECK_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
	CHECK_INT(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p = NULL;
	long n;

	*len = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n > 0 && (p = malloc((size_t)n)) && fread(p, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	fclose(f);
	return p;
}

static void write_at(const char *path, long off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(pwrite(fd, data, len, off) == (ssize_t)len);
	close(fd);
}

static const cairn_id repo_a = { { 0xaa, 1, 2, 3 } }, repo_b = { { 0xbb, 4, 5, 6 } };

/* A cache in dir with files 0..n-1 merged; returns the open index. */
static cairn_index *merged_cache(const char *dir, fake_repo *fr, const cairn_id *repo_id)
{
	cairn_index *idx = NULL;
	cairn_index_sync_stats st;

	CHECK_OK(cairn_index_open_cache(&idx, dir, repo_id));
	if (!idx)
		return NULL;
	CHECK_OK(sync_fake(idx, fr, &st));
	return idx;
}

/* --- tests --------------------------------------------------------------------- */

static int count_entry(cairn_blob_type type, const cairn_id *id, const cairn_blob_location *loc,
	void *payload)
{
	cairn_index *mem = payload;
	cairn_blob_location want;
	/* every entry walked is one a memory index built from the same files has */
	if (cairn_index_lookup(&want, mem, type, id) != 1 || !cairn_id_equal(&want.pack, &loc->pack)
		|| want.offset != loc->offset || want.length != loc->length
		|| want.uncompressed_length != loc->uncompressed_length)
		return -100;
	return 0;
}

static void test_merge_lookup_count_foreach(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx = NULL, *mem = NULL;
	cairn_index_sync_stats st;
	cairn_id nope;

	fake_init(&fr, 3);
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK(cairn_index_cache_path(idx) != NULL);
	CHECK(strstr(cairn_index_cache_path(idx), "index.lmdb") != NULL);
	CHECK_INT(cairn_index_count(idx), 0);
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 3);
	CHECK_INT(st.files_listed, 3);
	CHECK_INT(st.files_merged, 3);
	CHECK_INT(st.blobs_merged, 3 * BLOBS_PER_FILE);
	CHECK_INT(st.rebuilt, 0);
	for (int f = 0; f < 3; f++)
		CHECK_INT(check_file(idx, f, 1), 0);
	CHECK_INT(check_file(idx, 3, 0), 0);
	memset(&nope, 0x5a, sizeof(nope));
	CHECK_INT(cairn_index_lookup(NULL, idx, CAIRN_BLOB_DATA, &nope), 0);
	CHECK_INT(cairn_index_count(idx), 3 * BLOBS_PER_FILE);

	/* foreach walks exactly what a memory index of the same files holds */
	CHECK_OK(cairn_index_new(&mem));
	CHECK_OK(sync_fake(mem, &fr, &st));
	CHECK_INT(cairn_index_count(mem), 3 * BLOBS_PER_FILE);
	CHECK_INT(cairn_index_foreach(idx, count_entry, mem), 0);
	/* and a memory index also syncs incrementally */
	CHECK_OK(sync_fake(mem, &fr, &st));
	CHECK_INT(fr.fetches, 0);
	CHECK(cairn_index_cache_path(mem) == NULL);

	/* the CACHEDIR.TAG marks the cache folder */
	{
		char tag[512];
		snprintf(tag, sizeof(tag), "%s/CACHEDIR.TAG", tmp);
		CHECK(access(tag, F_OK) == 0);
	}
	cairn_index_free(mem);
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

static void test_warm_reopen_and_incremental(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx;
	cairn_index_sync_stats st;

	fake_init(&fr, 3);
	idx = merged_cache(tmp, &fr, &repo_a);
	cairn_index_free(idx);

	/* warm: nothing is read again */
	idx = NULL;
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK_INT(cairn_index_count(idx), 3 * BLOBS_PER_FILE);
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 0);
	CHECK_INT(st.files_merged, 0);
	for (int f = 0; f < 3; f++)
		CHECK_INT(check_file(idx, f, 1), 0);

	/* a new index file is merged alone, into the open index */
	make_file(&fr, 3);
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 1);
	CHECK_INT(st.files_merged, 1);
	CHECK_INT(st.blobs_merged, BLOBS_PER_FILE);
	for (int f = 0; f < 4; f++)
		CHECK_INT(check_file(idx, f, 1), 0);
	CHECK_INT(cairn_index_count(idx), 4 * BLOBS_PER_FILE);
	cairn_index_free(idx);

	/* and stays merged for the next process */
	idx = NULL;
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 0);
	CHECK_INT(check_file(idx, 3, 1), 0);

	/* a file listing blobs already known keeps their first location */
	{
		cairn_index_builder *b = NULL;
		cairn_pack_entry e;
		cairn_id other_pack;
		cairn_blob_location loc;
		fake_file *ff = &fr.files[4];

		blob_entry(&e, 0, 3);
		e.offset = 999999;
		text_id(&other_pack, "other pack", 0, 0);
		CHECK_OK(cairn_index_builder_new(&b));
		CHECK_OK(cairn_index_builder_add_pack(b, &other_pack, &e, 1));
		ff->json = (cairn_buf)CAIRN_BUF_INIT;
		CHECK_OK(cairn_index_builder_encode(&ff->json, b));
		cairn_sha256(&ff->id, ff->json.data, ff->json.len);
		ff->present = 1;
		fr.n = 5;
		cairn_index_builder_free(b);
		CHECK_OK(sync_fake(idx, &fr, &st));
		CHECK_INT(st.files_merged, 1);
		CHECK_INT(cairn_index_lookup(&loc, idx, e.type, &e.id), 1);
		CHECK(loc.offset != 999999);
		CHECK_INT(cairn_index_count(idx), 4 * BLOBS_PER_FILE);
	}
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

static void test_vanished_file_rebuilds(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx;
	cairn_index_sync_stats st;

	fake_init(&fr, 4);
	idx = merged_cache(tmp, &fr, &repo_a);
	cairn_index_free(idx);

	/* prune removed file 1 (and wrote file 4): its entries may name deleted
	 * packs, so the cache is rebuilt from the files listed now */
	fr.files[1].present = 0;
	make_file(&fr, 4);
	log_start();
	idx = NULL;
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK_OK(sync_fake(idx, &fr, &st));
	log_stop();
	CHECK_INT(st.rebuilt, 1);
	CHECK_INT(st.files_merged, 4);
	CHECK_INT(fr.fetches, 4);
	CHECK(strstr(log_text, "gone from the repository") != NULL);
	CHECK_INT(check_file(idx, 1, 0), 0);
	CHECK_INT(check_file(idx, 0, 1), 0);
	CHECK_INT(check_file(idx, 4, 1), 0);
	CHECK_INT(cairn_index_count(idx), 4 * BLOBS_PER_FILE);
	cairn_index_free(idx);

	/* the rebuilt cache is warm again */
	idx = NULL;
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 0);
	CHECK_INT(st.rebuilt, 0);
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

/* Reopen a cache expected to be rebuilt with `reason` in the log: all files
 * are read again and every lookup is right. */
static void expect_rebuild(const char *tmp, fake_repo *fr, const cairn_id *repo_id, const char *reason)
{
	cairn_index *idx = NULL;
	cairn_index_sync_stats st;

	log_start();
	CHECK_OK(cairn_index_open_cache(&idx, tmp, repo_id));
	log_stop();
	if (!strstr(log_text, reason) || !strstr(log_text, "rebuilding it")) {
		unit_failures++;
		fprintf(stderr, "no rebuild for '%s'; log: %s\n", reason, log_text);
	}
	if (!idx)
		return;
	CHECK_OK(sync_fake(idx, fr, &st));
	CHECK_INT(fr->fetches, 3);
	for (int f = 0; f < 3; f++)
		CHECK_INT(check_file(idx, f, 1), 0);
	cairn_index_free(idx);
}

static void test_damaged_or_alien_cache_rebuilt(void)
{
	char *tmp = make_tmpdir();
	char env_dir[1024], data[1100], other[1100];
	fake_repo fr;
	cairn_index *idx;
	unsigned char garbage[8192];

	fake_init(&fr, 3);
	env_path(env_dir, sizeof(env_dir), tmp, &repo_a);
	snprintf(data, sizeof(data), "%s/data.mdb", env_dir);

	/* the meta pages overwritten: LMDB refuses the file */
	cairn_index_free(merged_cache(tmp, &fr, &repo_a));
	memset(garbage, 0x5c, sizeof(garbage));
	write_at(data, 0, garbage, sizeof(garbage));
	expect_rebuild(tmp, &fr, &repo_a, "MDB_INVALID");

	/* the bytes of one entry overwritten: its lookup fails its check, marks
	 * the cache damaged, and the next open rebuilds */
	{
		size_t len;
		unsigned char *bytes = read_file(data, &len), key[33];
		cairn_pack_entry e;
		cairn_blob_location loc;
		int hits = 0;

		blob_entry(&e, 1, 17);
		key[0] = (unsigned char)e.type;
		memcpy(key + 1, e.id.bytes, 32);
		for (size_t off = 0; bytes && off + 33 + 20 <= len; off++) {
			if (memcmp(bytes + off, key, 33) == 0) {
				unsigned char x[4] = { 1, 2, 3, 4 };
				write_at(data, (long)(off + 33 + 4), x, sizeof(x)); /* its offset */
				hits++;
			}
		}
		free(bytes);
		CHECK(hits >= 1);
		idx = NULL;
		log_start();
		CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
		if (idx) {
			CHECK_INT(cairn_index_lookup(&loc, idx, e.type, &e.id), CAIRN_ECORRUPT);
			CHECK(strstr(cairn_error_message(), "damaged") != NULL);
			/* the others are still right */
			CHECK_INT(check_file(idx, 0, 1), 0);
		}
		log_stop();
		CHECK(strstr(log_text, "will be rebuilt") != NULL);
		cairn_index_free(idx);
		expect_rebuild(tmp, &fr, &repo_a, "marked damaged");
	}

	/* another format version */
	poke_meta(env_dir, "format", "cairn index cache 0");
	expect_rebuild(tmp, &fr, &repo_a, "another format");

	/* a merge that never finished (the process was killed) */
	poke_meta(env_dir, "state", "merging");
	expect_rebuild(tmp, &fr, &repo_a, "did not finish");

	/* counts that do not match the tables */
	{
		unsigned char n[8] = { 7 };
		MDB_env *env = NULL;
		MDB_txn *txn = NULL;
		MDB_dbi dbi;
		MDB_val k = { 5, "blobs" }, v = { 8, n };
		CHECK_INT(mdb_env_create(&env), 0);
		mdb_env_set_maxdbs(env, 4);
		mdb_env_set_mapsize(env, (size_t)1 << 36);
		CHECK_INT(mdb_env_open(env, env_dir, 0, 0600), 0);
		CHECK_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
		CHECK_INT(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
		CHECK_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
		CHECK_INT(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	expect_rebuild(tmp, &fr, &repo_a, "counts do not match");

	/* the database of another repository (copied under this one's id) */
	{
		char cmd[4096];
		env_path(other, sizeof(other), tmp, &repo_b);
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/data.mdb' '%s/data.mdb'", other,
			env_dir, other);
		CHECK_INT(system(cmd), 0);
	}
	expect_rebuild(tmp, &fr, &repo_b, "another repository");

	/* a truncated file */
	CHECK_INT(truncate(data, 4096), 0);
	log_start();
	idx = NULL;
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	log_stop();
	CHECK(strstr(log_text, "rebuilding it") != NULL);
	if (idx) {
		cairn_index_sync_stats st;
		CHECK_OK(sync_fake(idx, &fr, &st));
		CHECK_INT(check_file(idx, 2, 1), 0);
	}
	cairn_index_free(idx);

	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

typedef struct lookup_job {
	cairn_index *idx;
	int thread;
	int bad;
} lookup_job;

static void *lookup_thread(void *arg)
{
	lookup_job *j = arg;

	if (j->thread == 7) {
		/* one thread adds (the overlay) and looks its own adds up */
		for (int k = 0; k < 2000; k++) {
			cairn_blob_location loc, got;
			cairn_id id;
			memset(&loc, 0, sizeof(loc));
			text_id(&id, "new", k, 0);
			text_id(&loc.pack, "new pack", k / 100, 0);
			loc.offset = (uint32_t)k;
			loc.length = 64;
			j->bad += cairn_index_add(j->idx, CAIRN_BLOB_DATA, &id, &loc) != 1;
			j->bad += cairn_index_lookup(&got, j->idx, CAIRN_BLOB_DATA, &id) != 1 || got.offset != (uint32_t)k;
		}
		return NULL;
	}
	for (int round = 0; round < 3; round++)
		for (int f = 0; f < 4; f++) {
			int file = (f + j->thread) % 4; /* files 0..2 merged, 3 not */
			j->bad += check_file(j->idx, file, file < 3 ? 1 : 0);
		}
	return NULL;
}

static void test_concurrent_lookups(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx;
	pthread_t th[8];
	lookup_job jobs[8];
	int bad = 0;

	fake_init(&fr, 3);
	idx = merged_cache(tmp, &fr, &repo_a);
	for (int t = 0; t < 8; t++) {
		jobs[t].idx = idx;
		jobs[t].thread = t;
		jobs[t].bad = 0;
		CHECK_INT(pthread_create(&th[t], NULL, lookup_thread, &jobs[t]), 0);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		bad += jobs[t].bad;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(cairn_index_count(idx), 3 * BLOBS_PER_FILE + 2000);
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

/* The child of test_two_processes: open, sync, check; exit status = problems. */
static void child_sync(const char *tmp, fake_repo *fr, int go_fd)
{
	cairn_index *idx = NULL;
	cairn_index_sync_stats st;
	char c;
	int bad = 0;

	if (read(go_fd, &c, 1) != 1)
		_exit(90);
	if (cairn_index_open_cache(&idx, tmp, &repo_a) < 0)
		_exit(91);
	if (sync_fake(idx, fr, &st) < 0)
		_exit(92);
	for (int f = 0; f < fr->n; f++)
		bad += check_file(idx, f, 1);
	cairn_index_free(idx);
	_exit(bad ? 93 : 0);
}

static void test_two_processes(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx = NULL;
	cairn_index_sync_stats st;
	int go[2], status = -1;
	pid_t pid[3];

	fake_init(&fr, 6);
	/* this process has the cache open (with nothing merged) across the fork */
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK_INT(pipe(go), 0);
	for (int i = 0; i < 3; i++) {
		if ((pid[i] = fork()) == 0)
			child_sync(tmp, &fr, go[0]);
		CHECK(pid[i] > 0);
	}
	/* release the three children and sync here too: four merges race */
	CHECK_INT(write(go[1], "ggg", 3), 3);
	CHECK_OK(sync_fake(idx, &fr, &st));
	for (int f = 0; f < 6; f++)
		CHECK_INT(check_file(idx, f, 1), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(waitpid(pid[i], &status, 0), pid[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(go[0]);
	close(go[1]);
	cairn_index_free(idx);

	/* afterwards: each file merged once, the counts consistent, warm */
	idx = NULL;
	log_start();
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	log_stop();
	CHECK(strstr(log_text, "rebuilding") == NULL);
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 0);
	CHECK_INT(cairn_index_count(idx), 6 * BLOBS_PER_FILE);

	/* one process cannot open the same cache twice (LMDB's locks forbid it) */
	{
		cairn_index *twice = NULL;
		CHECK_INT(cairn_index_open_cache(&twice, tmp, &repo_a), CAIRN_EINVAL);
		CHECK(twice == NULL);
	}
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

static void test_overlay_never_persisted(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx;
	cairn_index_sync_stats st;
	cairn_blob_location loc, got;
	cairn_pack_entry known;
	cairn_id id;

	fake_init(&fr, 2);
	idx = merged_cache(tmp, &fr, &repo_a);
	/* a blob the cache knows keeps the cache's location */
	blob_entry(&known, 0, 5);
	memset(&loc, 0, sizeof(loc));
	loc.length = 77;
	CHECK_INT(cairn_index_add(idx, known.type, &known.id, &loc), 0);
	CHECK_INT(cairn_index_lookup(&got, idx, known.type, &known.id), 1);
	CHECK_INT(got.length, known.length);
	/* blobs of packs this process stored: in the overlay only */
	for (int k = 0; k < 100; k++) {
		text_id(&id, "session", k, 0);
		text_id(&loc.pack, "session pack", 0, 0);
		loc.offset = (uint32_t)k * 64;
		CHECK_INT(cairn_index_add(idx, CAIRN_BLOB_DATA, &id, &loc), 1);
	}
	CHECK_INT(cairn_index_count(idx), 2 * BLOBS_PER_FILE + 100);
	text_id(&id, "session", 42, 0);
	CHECK_INT(cairn_index_lookup(&got, idx, CAIRN_BLOB_DATA, &id), 1);
	CHECK_INT(got.offset, 42 * 64);
	/* the process dies before writing its index file */
	cairn_index_free(idx);

	idx = NULL;
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(fr.fetches, 0);
	for (int k = 0; k < 100; k++) {
		text_id(&id, "session", k, 0);
		CHECK_INT(cairn_index_lookup(NULL, idx, CAIRN_BLOB_DATA, &id), 0);
	}
	CHECK_INT(cairn_index_count(idx), 2 * BLOBS_PER_FILE);

	/* overlay entries that an index file later lists are counted once */
	for (int k = 0; k < 10; k++) {
		cairn_pack_entry e;
		blob_entry(&e, 2, k);
		memset(&loc, 0, sizeof(loc));
		pack_id(&loc.pack, 2, 0);
		loc.offset = e.offset;
		loc.length = e.length;
		loc.uncompressed_length = e.uncompressed_length;
		CHECK_INT(cairn_index_add(idx, e.type, &e.id, &loc), 1);
	}
	CHECK_INT(cairn_index_count(idx), 2 * BLOBS_PER_FILE + 10);
	make_file(&fr, 2);
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(cairn_index_count(idx), 3 * BLOBS_PER_FILE);
	CHECK_INT(check_file(idx, 2, 1), 0);
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

/* A repository: blobs of packs stored in a session that dies before its
 * index file are not believed by the next session; after a flush they are,
 * from the cache. */
static void test_repo_session_crash(void)
{
	char *tmp = make_tmpdir(), path[512], cache[512];
	cairn_repo_init_options o = CAIRN_REPO_INIT_OPTIONS_INIT;
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	cairn_repo_stats rs;
	unsigned char data[64];
	cairn_id ids[200];

	o.kdf_n = 1024;
	snprintf(path, sizeof(path), "%s/repo", tmp);
	snprintf(cache, sizeof(cache), "%s/cache", tmp);
	CHECK_OK(cairn_backend_open(&be, path, 0));
	CHECK_OK(cairn_repo_init(&repo, be, "pw", 2, &o));
	if (!repo)
		goto out;
	CHECK_OK(cairn_repo_set_cache_dir(repo, cache));
	CHECK_OK(cairn_repo_load_index(repo));
	CHECK(cairn_index_cache_path(cairn_repo_index(repo)) != NULL);
	cairn_repo_set_compression(repo, CAIRN_COMPRESSION_OFF);
	cairn_repo_set_pack_size(repo, 4096); /* packs are stored as the session goes */
	for (int k = 0; k < 200; k++) {
		memset(data, 0, sizeof(data));
		snprintf((char *)data, sizeof(data), "crash test blob %d", k);
		CHECK_OK(cairn_repo_save_blob(&ids[k], NULL, repo, CAIRN_BLOB_DATA, data, sizeof(data), NULL));
	}
	/* packs are stored by uploader threads: wait (up to 20 s) until one is */
	for (int tries = 0; tries < 2000; tries++) {
		struct timespec pause = { 0, 10000000L };
		cairn_repo_get_stats(repo, &rs);
		if (rs.packs_written > 0)
			break;
		nanosleep(&pause, NULL);
	}
	CHECK(rs.packs_written > 0);
	CHECK_INT(rs.index_files_written, 0);
	/* a stored blob is known to this session (overlay) */
	CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_DATA, &ids[0]), 1);
	cairn_repo_free(repo); /* killed: no flush, no index file */
	repo = NULL;

	CHECK_OK(cairn_repo_open(&repo, be, "pw", 2));
	if (!repo)
		goto out;
	CHECK_OK(cairn_repo_set_cache_dir(repo, cache));
	CHECK_OK(cairn_repo_load_index(repo));
	for (int k = 0; k < 200; k++)
		CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_DATA, &ids[k]), 0);
	/* this time the session ends properly */
	for (int k = 0; k < 200; k++) {
		memset(data, 0, sizeof(data));
		snprintf((char *)data, sizeof(data), "crash test blob %d", k);
		CHECK_OK(cairn_repo_save_blob(NULL, NULL, repo, CAIRN_BLOB_DATA, data, sizeof(data), NULL));
	}
	CHECK_OK(cairn_repo_flush(repo));
	cairn_repo_free(repo);
	repo = NULL;

	CHECK_OK(cairn_repo_open(&repo, be, "pw", 2));
	if (!repo)
		goto out;
	CHECK_OK(cairn_repo_set_cache_dir(repo, cache));
	CHECK_OK(cairn_repo_load_index(repo));
	for (int k = 0; k < 200; k++) {
		cairn_buf got = CAIRN_BUF_INIT;
		CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_DATA, &ids[k]), 1);
		if (k % 50 == 0) {
			CHECK_OK(cairn_repo_load_blob(&got, repo, CAIRN_BLOB_DATA, &ids[k]));
			CHECK_INT(got.len, sizeof(data));
		}
		cairn_buf_release(&got);
	}
out:
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* An unusable cache folder: a warning, and the index stays in memory. */
static void test_repo_falls_back_to_memory(void)
{
	char *tmp = make_tmpdir(), path[512], cache[600], file[512];
	cairn_repo_init_options o = CAIRN_REPO_INIT_OPTIONS_INIT;
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	cairn_id id;
	FILE *f;

	o.kdf_n = 1024;
	snprintf(path, sizeof(path), "%s/repo", tmp);
	snprintf(file, sizeof(file), "%s/not-a-dir", tmp);
	snprintf(cache, sizeof(cache), "%s/sub", file);
	f = fopen(file, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	CHECK_OK(cairn_backend_open(&be, path, 0));
	CHECK_OK(cairn_repo_init(&repo, be, "pw", 2, &o));
	if (!repo)
		goto out;
	CHECK_OK(cairn_repo_save_blob(&id, NULL, repo, CAIRN_BLOB_DATA, "abc", 3, NULL));
	CHECK_OK(cairn_repo_flush(repo));
	CHECK_OK(cairn_repo_set_cache_dir(repo, cache));
	log_start();
	CHECK_OK(cairn_repo_load_index(repo));
	log_stop();
	CHECK(strstr(log_text, "keeping the index in memory") != NULL);
	CHECK(cairn_index_cache_path(cairn_repo_index(repo)) == NULL);
	CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_DATA, &id), 1);
out:
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* A malformed index file stops the sync with its name; the files before it
 * stay merged. */
static void test_bad_index_file(void)
{
	char *tmp = make_tmpdir();
	fake_repo fr;
	cairn_index *idx = NULL;
	cairn_index_sync_stats st;
	int r;

	fake_init(&fr, 3);
	cairn_buf_clear(&fr.files[2].json);
	cairn_buf_puts(&fr.files[2].json, "{\"packs\":[{\"id\":");
	CHECK_OK(cairn_index_open_cache(&idx, tmp, &repo_a));
	if (!idx)
		goto out;
	r = sync_fake(idx, &fr, &st);
	CHECK_INT(r, CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "index file") != NULL);
	CHECK_INT(st.cache_failed, 0);
	/* the files sorted before the bad one were merged and recorded */
	CHECK(st.files_merged <= 2);
	CHECK_INT(cairn_index_count(idx), st.files_merged * BLOBS_PER_FILE);
	fr.files[2].present = 0;
	CHECK_OK(sync_fake(idx, &fr, &st));
	CHECK_INT(check_file(idx, 0, 1), 0);
	CHECK_INT(check_file(idx, 1, 1), 0);
	CHECK_INT(cairn_index_count(idx), 2 * BLOBS_PER_FILE);
out:
	cairn_index_free(idx);
	fake_release(&fr);
	rm_rf(tmp);
	free(tmp);
}

UNIT_MAIN(test_merge_lookup_count_foreach, test_warm_reopen_and_incremental,
	test_vanished_file_rebuilds, test_damaged_or_alien_cache_rebuilt, test_concurrent_lookups,
	test_two_processes, test_overlay_never_persisted, test_repo_session_crash,
	test_repo_falls_back_to_memory, test_bad_index_file)
