/* test_repo.c: repositories on a temp folder: init/open/password, blobs in
 * packs and index files, damage detection, snapshots, concurrent saving,
 * v1/v2 unpacked encodings, and restic 0.14 as the oracle when installed. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cairn/cairn.h>
#include <cairn/sys/backend.h>
#include "unit.h"

#define PW "correct horse"
#define PWLEN (sizeof(PW) - 1)

/* --- helpers ------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
	char *d = strdup("/tmp/cairn-test-repo-XXXXXX");
	if (!d || !mkdtemp(d)) {
		perror("mkdtemp");
		exit(2);
	}
	return d;
}

static cairn_repo_init_options fast_opts(unsigned version)
{
	cairn_repo_init_options o = CAIRN_REPO_INIT_OPTIONS_INIT;
	o.repo_version = version;
	o.kdf_n = 1024;
	return o;
}

/* A fresh repository in a temp folder (dir is the folder + "/repo"). */
static void new_repo(char **tmp_out, cairn_backend **be_out, cairn_repo **repo_out, unsigned version)
{
	char path[512];
	cairn_repo_init_options o = fast_opts(version);

	*tmp_out = make_tmpdir();
	snprintf(path, sizeof(path), "%s/repo", *tmp_out);
	*be_out = NULL;
	*repo_out = NULL;
	CHECK_OK(cairn_backend_open(be_out, path, 0));
	if (*be_out)
		CHECK_OK(cairn_repo_init(repo_out, *be_out, PW, PWLEN, &o));
}

static void repo_path(char *out, size_t size, const char *tmp, const char *rel)
{
	snprintf(out, size, "%s/repo/%s", tmp, rel);
}

static int count_cb(const char *name, uint64_t size, void *payload)
{
	(void)name; (void)size;
	(*(size_t *)payload)++;
	return 0;
}

static size_t count_files(cairn_backend *be, cairn_file_type type)
{
	size_t n = 0;
	CHECK_OK(cairn_backend_list(be, type, count_cb, &n));
	return n;
}

typedef struct name_list {
	char (*v)[CAIRN_ID_HEX_SIZE];
	size_t n;
} name_list;

static int names_cb(const char *name, uint64_t size, void *payload)
{
	name_list *ns = payload;
	(void)size;
	ns->v = realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
	snprintf(ns->v[ns->n++], CAIRN_ID_HEX_SIZE, "%s", name);
	return 0;
}

static name_list list_names(cairn_backend *be, cairn_file_type type)
{
	name_list ns = { NULL, 0 };
	CHECK_OK(cairn_backend_list(be, type, names_cb, &ns));
	return ns;
}

/* Flip one byte of a file at `offset` (negative: from the end). */
static void flip_byte(const char *path, long offset)
{
	FILE *f = fopen(path, "r+b");
	int c;
	CHECK(f != NULL);
	if (!f)
		return;
	chmod(path, 0600);
	fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
	c = fgetc(f);
	fseek(f, offset, offset < 0 ? SEEK_END : SEEK_SET);
	fputc(c ^ 0x01, f);
	fclose(f);
}

static void fill_pseudo_random(unsigned char *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

/* Count every blob entry over all pack headers; *dups gets the number of
 * (type, id) seen more than once. */
static size_t count_pack_entries(cairn_repo *repo, size_t *dups, size_t *mixed_packs)
{
	name_list packs = list_names(cairn_repo_backend(repo), CAIRN_FILE_PACK);
	cairn_index *seen = NULL;
	size_t total = 0;

	*dups = 0;
	if (mixed_packs)
		*mixed_packs = 0;
	CHECK_OK(cairn_index_new(&seen));
	for (size_t i = 0; i < packs.n; i++) {
		cairn_id pid;
		cairn_pack_entry *e = NULL;
		size_t n = 0;
		int types = 0;
		CHECK_OK(cairn_id_from_hex(&pid, packs.v[i]));
		CHECK_OK(cairn_pack_load_header(&e, &n, cairn_repo_backend(repo), cairn_repo_key(repo), &pid));
		for (size_t k = 0; k < n; k++) {
			cairn_blob_location loc = { pid, e[k].offset, e[k].length, e[k].uncompressed_length };
			if (cairn_index_add(seen, e[k].type, &e[k].id, &loc) == 0)
				(*dups)++;
			types |= 1 << e[k].type;
		}
		if (mixed_packs && types == 3)
			(*mixed_packs)++;
		total += n;
		free(e);
	}
	cairn_index_free(seen);
	free(packs.v);
	return total;
}

/* --- init / open ----------------------------------------------------------- */

static void test_init_open_and_passwords(void)
{
	char *tmp, path[512];
	cairn_backend *be;
	cairn_repo *repo, *again = NULL, *bad = NULL;
	cairn_repo_init_options o = fast_opts(2);
	cairn_config cfg;
	cairn_key master;
	char key_name[CAIRN_ID_HEX_SIZE];

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	cfg = *cairn_repo_config(repo);
	CHECK_INT(cfg.version, 2);
	CHECK(cairn_polynomial_irreducible(cfg.chunker_polynomial));
	CHECK_INT(cairn_polynomial_degree(cfg.chunker_polynomial), 53);
	CHECK(!cairn_id_is_zero(&cfg.id));
	snprintf(key_name, sizeof(key_name), "%s", cairn_repo_key_name(repo));
	master = *cairn_repo_key(repo);
	CHECK(cairn_id_is_hex(key_name));
	CHECK_INT(count_files(be, CAIRN_FILE_KEY), 1);
	cairn_repo_free(repo);
	repo = NULL;

	/* the key file is named by the SHA-256 of its bytes */
	{
		cairn_buf kf = CAIRN_BUF_INIT;
		cairn_handle h;
		cairn_id kid;
		char hex[CAIRN_ID_HEX_SIZE];
		cairn_handle_set(&h, CAIRN_FILE_KEY, key_name);
		CHECK_OK(cairn_backend_load(&kf, be, &h, 0, 0));
		cairn_sha256(&kid, kf.data, kf.len);
		cairn_id_to_hex(hex, &kid);
		CHECK_STR(hex, key_name);
		CHECK(kf.len > 0 && kf.data[0] == '{');
		CHECK(memmem(kf.data, kf.len, PW, PWLEN) == NULL);
		cairn_buf_release(&kf);
	}

	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (again) {
		CHECK(cairn_id_equal(&cairn_repo_config(again)->id, &cfg.id));
		CHECK_INT(cairn_repo_config(again)->chunker_polynomial, cfg.chunker_polynomial);
		CHECK_STR(cairn_repo_key_name(again), key_name);
		CHECK(memcmp(cairn_repo_key(again), &master, sizeof(cairn_key)) == 0);
	}

	CHECK_INT(cairn_repo_open(&bad, be, "wrong", 5), CAIRN_EAUTH);
	CHECK(strstr(cairn_error_message(), "wrong password or no key found") != NULL);
	CHECK(bad == NULL);

	/* init twice */
	CHECK_INT(cairn_repo_init(&bad, be, PW, PWLEN, &o), CAIRN_EEXISTS);
	CHECK(strstr(cairn_error_message(), "already exists") != NULL);
	CHECK(bad == NULL);

	/* the config is raw JSON under the master key, never compressed */
	if (again) {
		cairn_buf stored = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
		cairn_handle h;
		cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
		CHECK_OK(cairn_backend_load(&stored, be, &h, 0, 0));
		CHECK_OK(cairn_crypto_open_buf(&plain, cairn_repo_key(again), stored.data, stored.len));
		CHECK(plain.len > 0 && plain.data[0] == '{');
		cairn_buf_release(&stored);
		cairn_buf_release(&plain);
	}
out:
	cairn_repo_free(again);
	cairn_backend_free(be);
	/* no repository at all */
	snprintf(path, sizeof(path), "%s/empty", tmp);
	mkdir(path, 0700);
	be = NULL;
	CHECK_OK(cairn_backend_open(&be, path, 0));
	if (be) {
		CHECK_INT(cairn_repo_open(&bad, be, PW, PWLEN), CAIRN_ENOTFOUND);
		CHECK(strstr(cairn_error_message(), "no repository at") != NULL);
	}
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* Damaged key files are skipped; the right one still opens. */
static void test_open_skips_bad_key_files(void)
{
	char *tmp;
	cairn_backend *be;
	cairn_repo *repo, *again = NULL, *bad = NULL;
	cairn_handle h;
	const char junk[] = "{\"kdf\":\"scrypt\"}";
	cairn_id jid;
	char hex[CAIRN_ID_HEX_SIZE];

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	cairn_sha256(&jid, junk, sizeof(junk) - 1);
	cairn_id_to_hex(hex, &jid);
	cairn_handle_set(&h, CAIRN_FILE_KEY, hex);
	CHECK_OK(cairn_backend_save(be, &h, junk, sizeof(junk) - 1));
	CHECK_INT(count_files(be, CAIRN_FILE_KEY), 2);
	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (again && repo)
		CHECK_STR(cairn_repo_key_name(again), cairn_repo_key_name(repo));
	CHECK_INT(cairn_repo_open(&bad, be, "nope", 4), CAIRN_EAUTH);
	CHECK(bad == NULL);
out:
	cairn_repo_free(again);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* --- blobs ---------------------------------------------------------------- */

#define N_DATA 24

static void test_blobs_flush_reopen_load(void)
{
	char *tmp;
	cairn_backend *be;
	cairn_repo *repo, *again = NULL;
	static unsigned char data[N_DATA][20000];
	cairn_id ids[N_DATA], tree_id, big_tree_id, got;
	const char tree[] = "{\"nodes\":[]}\n";
	cairn_repo_stats st;
	cairn_buf out = CAIRN_BUF_INIT, big_tree = CAIRN_BUF_INIT;
	int added = -1;

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	for (int i = 0; i < N_DATA; i++) {
		if (i % 2)
			fill_pseudo_random(data[i], sizeof(data[i]), (uint32_t)i);
		else
			memset(data[i], 'a' + i, sizeof(data[i])); /* compressible */
		CHECK_OK(cairn_repo_save_blob(&ids[i], &added, repo, CAIRN_BLOB_DATA, data[i], sizeof(data[i]), NULL));
		CHECK_INT(added, 1);
		cairn_sha256(&got, data[i], sizeof(data[i]));
		CHECK(cairn_id_equal(&got, &ids[i]));
	}
	/* duplicates: by content, and with a precomputed id */
	CHECK_OK(cairn_repo_save_blob(&got, &added, repo, CAIRN_BLOB_DATA, data[3], sizeof(data[3]), NULL));
	CHECK_INT(added, 0);
	CHECK(cairn_id_equal(&got, &ids[3]));
	CHECK_OK(cairn_repo_save_blob(NULL, &added, repo, CAIRN_BLOB_DATA, data[4], sizeof(data[4]), &ids[4]));
	CHECK_INT(added, 0);
	CHECK_OK(cairn_repo_save_blob(&tree_id, &added, repo, CAIRN_BLOB_TREE, tree, sizeof(tree) - 1, NULL));
	CHECK_INT(added, 1);
	CHECK_OK(cairn_buf_puts(&big_tree, "{\"nodes\":["));
	for (int i = 0; i < 40; i++)
		CHECK_OK(cairn_buf_printf(&big_tree, "%s{\"name\":\"f%02d\",\"type\":\"file\",\"mode\":420}",
			i ? "," : "", i));
	CHECK_OK(cairn_buf_puts(&big_tree, "]}\n"));
	CHECK_OK(cairn_repo_save_blob(&big_tree_id, &added, repo, CAIRN_BLOB_TREE, big_tree.data, big_tree.len, NULL));
	CHECK_INT(added, 1);
	/* the same bytes as a tree and as data are two different blobs */
	CHECK_OK(cairn_repo_save_blob(NULL, &added, repo, CAIRN_BLOB_DATA, tree, sizeof(tree) - 1, NULL));
	CHECK_INT(added, 1);

	CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_DATA, &ids[0]), 1);
	CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_TREE, &tree_id), 1);
	CHECK_INT(cairn_repo_has_blob(repo, CAIRN_BLOB_TREE, &ids[0]), 0);
	CHECK_INT(count_files(be, CAIRN_FILE_PACK), 0); /* nothing stored before a pack is full */

	CHECK_OK(cairn_repo_flush(repo));
	cairn_repo_get_stats(repo, &st);
	CHECK_INT(st.blobs_added, N_DATA + 3);
	CHECK_INT(st.blobs_duplicate, 2);
	CHECK_INT(st.packs_written, 2); /* one data pack, one tree pack */
	CHECK_INT(st.index_files_written, 1);
	CHECK(st.data_added_plain == N_DATA * sizeof(data[0]) + 2 * (sizeof(tree) - 1) + big_tree.len);
	CHECK(st.data_added_stored < st.data_added_plain); /* half the blobs compress well */
	CHECK_INT(count_files(be, CAIRN_FILE_PACK), 2);
	CHECK_INT(count_files(be, CAIRN_FILE_INDEX), 1);
	{
		size_t dups, mixed;
		CHECK_INT(count_pack_entries(repo, &dups, &mixed), N_DATA + 3);
		CHECK_INT(dups, 0);
		CHECK_INT(mixed, 0);
	}
	/* flushing again writes nothing new */
	CHECK_OK(cairn_repo_flush(repo));
	CHECK_INT(count_files(be, CAIRN_FILE_INDEX), 1);
	/* this session can read what it wrote */
	CHECK_OK(cairn_repo_load_blob(&out, repo, CAIRN_BLOB_DATA, &ids[5]));
	CHECK(out.len == sizeof(data[5]) && memcmp(out.data, data[5], out.len) == 0);

	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (!again)
		goto out;
	CHECK_INT(cairn_repo_has_blob(again, CAIRN_BLOB_DATA, &ids[0]), 0);
	CHECK_OK(cairn_repo_load_index(again));
	CHECK_INT(cairn_index_count(cairn_repo_index(again)), N_DATA + 3);
	for (int i = 0; i < N_DATA; i++) {
		cairn_blob_location loc;
		CHECK_INT(cairn_repo_has_blob(again, CAIRN_BLOB_DATA, &ids[i]), 1);
		CHECK_OK(cairn_repo_load_blob(&out, again, CAIRN_BLOB_DATA, &ids[i]));
		CHECK(out.len == sizeof(data[i]) && memcmp(out.data, data[i], out.len) == 0);
		CHECK_INT(cairn_index_lookup(&loc, cairn_repo_index(again), CAIRN_BLOB_DATA, &ids[i]), 1);
		CHECK(loc.uncompressed_length == (i % 2 ? 0 : sizeof(data[i]))); /* AUTO keeps random raw */
	}
	CHECK_OK(cairn_repo_load_blob(&out, again, CAIRN_BLOB_TREE, &tree_id));
	CHECK(out.len == sizeof(tree) - 1 && memcmp(out.data, tree, out.len) == 0);
	{
		cairn_blob_location loc;
		CHECK_INT(cairn_index_lookup(&loc, cairn_repo_index(again), CAIRN_BLOB_TREE, &big_tree_id), 1);
		CHECK(loc.uncompressed_length == big_tree.len); /* trees are compressed in v2 */
		CHECK_OK(cairn_repo_load_blob(&out, again, CAIRN_BLOB_TREE, &big_tree_id));
		CHECK(out.len == big_tree.len && memcmp(out.data, big_tree.data, out.len) == 0);
	}
	CHECK_INT(cairn_repo_load_blob(&out, again, CAIRN_BLOB_TREE, &ids[0]), CAIRN_ENOTFOUND);
	/* a saved blob is a duplicate in the next session */
	CHECK_OK(cairn_repo_save_blob(NULL, &added, again, CAIRN_BLOB_DATA, data[7], sizeof(data[7]), NULL));
	CHECK_INT(added, 0);
out:
	cairn_buf_release(&out);
	cairn_buf_release(&big_tree);
	cairn_repo_free(again);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* A small pack target gives many packs, each stored whole and indexed. */
static void test_pack_size_target(void)
{
	char *tmp;
	cairn_backend *be;
	cairn_repo *repo, *again = NULL;
	unsigned char buf[3000];
	cairn_repo_stats st;
	cairn_buf out = CAIRN_BUF_INIT;

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	cairn_repo_set_pack_size(repo, 10000);
	cairn_repo_set_compression(repo, CAIRN_COMPRESSION_OFF);
	for (int i = 0; i < 40; i++) {
		fill_pseudo_random(buf, sizeof(buf), (uint32_t)(1000 + i));
		CHECK_OK(cairn_repo_save_blob(NULL, NULL, repo, CAIRN_BLOB_DATA, buf, sizeof(buf), NULL));
	}
	/* 4 blobs of 3032 bytes fill a 10000-byte pack: 10 packs, stored by the
	 * uploader threads; no index file before flush */
	CHECK_INT(count_files(be, CAIRN_FILE_INDEX), 0);
	CHECK_OK(cairn_repo_flush(repo));
	CHECK_INT(count_files(be, CAIRN_FILE_PACK), 10);
	cairn_repo_get_stats(repo, &st);
	CHECK_INT(st.packs_written, 10);
	CHECK_INT(st.index_files_written, 1);
	CHECK_INT(st.data_added_stored, 40 * (sizeof(buf) + 32));
	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (again) {
		CHECK_OK(cairn_repo_load_index(again));
		CHECK_INT(cairn_index_count(cairn_repo_index(again)), 40);
		fill_pseudo_random(buf, sizeof(buf), 1039);
		cairn_id id;
		cairn_sha256(&id, buf, sizeof(buf));
		CHECK_OK(cairn_repo_load_blob(&out, again, CAIRN_BLOB_DATA, &id));
		CHECK(out.len == sizeof(buf) && memcmp(out.data, buf, sizeof(buf)) == 0);
	}
out:
	cairn_buf_release(&out);
	cairn_repo_free(again);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* --- damage ---------------------------------------------------------------- */

static void test_damaged_index_file_is_named(void)
{
	char *tmp, path[600], rel[200];
	cairn_backend *be;
	cairn_repo *repo, *again = NULL;
	name_list idx = { NULL, 0 };
	cairn_id id;

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	CHECK_OK(cairn_repo_save_blob(&id, NULL, repo, CAIRN_BLOB_DATA, "hello", 5, NULL));
	CHECK_OK(cairn_repo_flush(repo));
	idx = list_names(be, CAIRN_FILE_INDEX);
	CHECK_INT(idx.n, 1);
	if (idx.n != 1)
		goto out;

	/* 1: a flipped byte: the content no longer matches the name */
	snprintf(rel, sizeof(rel), "index/%s", idx.v[0]);
	repo_path(path, sizeof(path), tmp, rel);
	flip_byte(path, 40);
	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (!again)
		goto out;
	CHECK_INT(cairn_repo_load_index(again), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), idx.v[0]) != NULL);
	CHECK(strstr(cairn_error_message(), "does not match its name") != NULL);

	/* 2: renamed to the hash of the damaged bytes: now the MAC catches it */
	{
		cairn_buf stored = CAIRN_BUF_INIT;
		cairn_handle h;
		cairn_id nid;
		char nhex[CAIRN_ID_HEX_SIZE];
		cairn_handle_set(&h, CAIRN_FILE_INDEX, idx.v[0]);
		CHECK_OK(cairn_backend_load(&stored, be, &h, 0, 0));
		CHECK_OK(cairn_backend_remove(be, &h));
		cairn_sha256(&nid, stored.data, stored.len);
		cairn_id_to_hex(nhex, &nid);
		cairn_handle_set(&h, CAIRN_FILE_INDEX, nhex);
		CHECK_OK(cairn_backend_save(be, &h, stored.data, stored.len));
		cairn_buf_release(&stored);
		CHECK_INT(cairn_repo_load_index(again), CAIRN_ECORRUPT);
		CHECK(strstr(cairn_error_message(), nhex) != NULL);
		CHECK(strstr(cairn_error_message(), "index file") != NULL);
	}
out:
	free(idx.v);
	cairn_repo_free(again);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

static void test_damaged_pack_is_detected(void)
{
	char *tmp, path[600], rel[200];
	cairn_backend *be;
	cairn_repo *repo, *again = NULL;
	name_list packs = { NULL, 0 };
	unsigned char buf[5000];
	cairn_id id;
	cairn_buf out = CAIRN_BUF_INIT;

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	fill_pseudo_random(buf, sizeof(buf), 77);
	CHECK_OK(cairn_repo_save_blob(&id, NULL, repo, CAIRN_BLOB_DATA, buf, sizeof(buf), NULL));
	CHECK_OK(cairn_repo_flush(repo));
	packs = list_names(be, CAIRN_FILE_PACK);
	CHECK_INT(packs.n, 1);
	if (packs.n != 1)
		goto out;
	snprintf(rel, sizeof(rel), "data/%.2s/%s", packs.v[0], packs.v[0]);
	repo_path(path, sizeof(path), tmp, rel);
	flip_byte(path, 100); /* inside the only blob */
	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (!again)
		goto out;
	CHECK_OK(cairn_repo_load_index(again));
	CHECK_INT(cairn_repo_load_blob(&out, again, CAIRN_BLOB_DATA, &id), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), packs.v[0]) != NULL);
out:
	cairn_buf_release(&out);
	free(packs.v);
	cairn_repo_free(again);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* --- a backend that fails pack uploads on demand ------------------------- */

typedef struct failing_backend {
	cairn_backend base;
	cairn_backend *inner;
	int fail_packs;
} failing_backend;

static int fb_create(cairn_backend *be) { return cairn_backend_create(((failing_backend *)be)->inner); }
static int fb_save(cairn_backend *be, const cairn_handle *h, const void *d, size_t n)
{
	failing_backend *fb = (failing_backend *)be;
	if (h->type == CAIRN_FILE_PACK && fb->fail_packs)
		return cairn_error_set(CAIRN_EIO, "injected failure saving pack '%s'", h->name);
	return cairn_backend_save(fb->inner, h, d, n);
}
static int fb_load(cairn_buf *out, cairn_backend *be, const cairn_handle *h, uint64_t off, size_t len)
{
	return cairn_backend_load(out, ((failing_backend *)be)->inner, h, off, len);
}
static int fb_stat(uint64_t *size, cairn_backend *be, const cairn_handle *h)
{
	return cairn_backend_stat(size, ((failing_backend *)be)->inner, h);
}
static int fb_list(cairn_backend *be, cairn_file_type t, cairn_backend_list_cb cb, void *p)
{
	return cairn_backend_list(((failing_backend *)be)->inner, t, cb, p);
}
static int fb_remove(cairn_backend *be, const cairn_handle *h)
{
	return cairn_backend_remove(((failing_backend *)be)->inner, h);
}
static void fb_free(cairn_backend *be)
{
	failing_backend *fb = (failing_backend *)be;
	cairn_backend_free(fb->inner);
	free(fb);
}
static const cairn_backend_ops fb_ops = { 1, "failing", fb_create, fb_save, fb_load, fb_stat,
	fb_list, fb_remove, fb_free, NULL, NULL };

/* A pack that was not stored must never be named by an index file, and
 * the session refuses further writes (no snapshot can follow). */
static void test_failed_pack_upload_writes_no_index(void)
{
	char *tmp;
	cairn_backend *inner;
	cairn_repo *repo, *again = NULL;
	failing_backend *fb = calloc(1, sizeof(*fb));
	unsigned char buf[4000];
	int r;

	new_repo(&tmp, &inner, &repo, 2);
	cairn_repo_free(repo);
	repo = NULL;
	if (!inner || !fb)
		goto out;
	fb->base.ops = &fb_ops;
	fb->base.location = strdup("failing");
	fb->base.max_connections = 1;
	fb->inner = inner;
	CHECK_OK(cairn_repo_open(&repo, &fb->base, PW, PWLEN));
	if (!repo)
		goto out;
	cairn_repo_set_pack_size(repo, 8000);
	cairn_repo_set_compression(repo, CAIRN_COMPRESSION_OFF);
	/* two blobs of 4032 stored bytes fill a pack, which is stored */
	for (uint32_t i = 1; i <= 2; i++) {
		fill_pseudo_random(buf, sizeof(buf), i);
		CHECK_OK(cairn_repo_save_blob(NULL, NULL, repo, CAIRN_BLOB_DATA, buf, sizeof(buf), NULL));
	}
	CHECK_OK(cairn_repo_flush(repo));
	CHECK_INT(count_files(inner, CAIRN_FILE_PACK), 1);
	CHECK_INT(count_files(inner, CAIRN_FILE_INDEX), 1);
	/* the next pack fills and is queued; its upload (by an uploader
	 * thread) fails, which the session reports at the latest at flush */
	fb->fail_packs = 1;
	for (uint32_t i = 3; i <= 4; i++) {
		fill_pseudo_random(buf, sizeof(buf), i);
		r = cairn_repo_save_blob(NULL, NULL, repo, CAIRN_BLOB_DATA, buf, sizeof(buf), NULL);
		CHECK(r == 0 || r == CAIRN_EIO);
	}
	CHECK_INT(cairn_repo_flush(repo), CAIRN_EIO);
	CHECK(strstr(cairn_error_message(), "earlier write") != NULL);
	CHECK(strstr(cairn_error_message(), "injected failure") != NULL);
	fb->fail_packs = 0;
	/* sticky: nothing more is accepted in this session */
	fill_pseudo_random(buf, sizeof(buf), 5);
	CHECK_INT(cairn_repo_save_blob(NULL, NULL, repo, CAIRN_BLOB_DATA, buf, sizeof(buf), NULL), CAIRN_EIO);
	CHECK_INT(cairn_repo_flush(repo), CAIRN_EIO);
	/* the stored pack is indexed, the failed one exists nowhere */
	CHECK_INT(count_files(inner, CAIRN_FILE_PACK), 1);
	CHECK_INT(count_files(inner, CAIRN_FILE_INDEX), 1);
	CHECK_OK(cairn_repo_open(&again, inner, PW, PWLEN));
	if (again) {
		size_t dups;
		CHECK_OK(cairn_repo_load_index(again));
		CHECK_INT(cairn_index_count(cairn_repo_index(again)), 2);
		CHECK_INT(count_pack_entries(again, &dups, NULL), 2);
		cairn_repo_free(again);
	}
out:
	cairn_repo_free(repo);
	if (fb && fb->inner)
		cairn_backend_free(&fb->base);
	else {
		cairn_backend_free(inner);
		free(fb);
	}
	rm_rf(tmp);
	free(tmp);
}

/* --- concurrency ----------------------------------------------------------- */

#define MT_THREADS 4
#define MT_BLOBS 300

typedef struct mt_arg {
	cairn_repo *repo;
	int thread;
	int added;
	int errors;
} mt_arg;

static void *mt_worker(void *p)
{
	mt_arg *a = p;
	unsigned char buf[2048];

	for (int k = 0; k < MT_BLOBS; k++) {
		/* each thread walks the same blobs from a different start and direction */
		int i = (a->thread % 2) ? (MT_BLOBS - 1 - (k + a->thread * 37) % MT_BLOBS)
			: (k + a->thread * 53) % MT_BLOBS;
		int added = 0;
		size_t len = 500 + (size_t)(i * 7) % 1500;
		fill_pseudo_random(buf, len, (uint32_t)(5000 + i));
		if (cairn_repo_save_blob(NULL, &added, a->repo, i % 10 == 0 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA,
				buf, len, NULL) < 0)
			a->errors++;
		a->added += added;
	}
	return NULL;
}

static void test_concurrent_save_stores_each_blob_once(void)
{
	char *tmp;
	cairn_backend *be;
	cairn_repo *repo, *again = NULL;
	pthread_t th[MT_THREADS];
	mt_arg args[MT_THREADS];
	cairn_repo_stats st;
	int total_added = 0;
	cairn_buf out = CAIRN_BUF_INIT;

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	cairn_repo_set_pack_size(repo, 16 * 1024); /* many uploads while others append */
	for (int t = 0; t < MT_THREADS; t++) {
		args[t] = (mt_arg){ repo, t, 0, 0 };
		pthread_create(&th[t], NULL, mt_worker, &args[t]);
	}
	for (int t = 0; t < MT_THREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_INT(args[t].errors, 0);
		total_added += args[t].added;
	}
	CHECK_INT(total_added, MT_BLOBS);
	CHECK_OK(cairn_repo_flush(repo));
	cairn_repo_get_stats(repo, &st);
	CHECK_INT(st.blobs_added, MT_BLOBS);
	CHECK_INT(st.blobs_duplicate, (MT_THREADS - 1) * MT_BLOBS);
	CHECK(st.packs_written > 10);
	{
		size_t dups, mixed;
		CHECK_INT(count_pack_entries(repo, &dups, &mixed), MT_BLOBS);
		CHECK_INT(dups, 0);
		CHECK_INT(mixed, 0);
	}
	CHECK_OK(cairn_repo_open(&again, be, PW, PWLEN));
	if (!again)
		goto out;
	CHECK_OK(cairn_repo_load_index(again));
	CHECK_INT(cairn_index_count(cairn_repo_index(again)), MT_BLOBS);
	for (int i = 0; i < MT_BLOBS; i++) {
		unsigned char buf[2048];
		size_t len = 500 + (size_t)(i * 7) % 1500;
		cairn_id id;
		fill_pseudo_random(buf, len, (uint32_t)(5000 + i));
		cairn_sha256(&id, buf, len);
		CHECK_OK(cairn_repo_load_blob(&out, again, i % 10 == 0 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, &id));
		CHECK(out.len == len && memcmp(out.data, buf, len) == 0);
	}
out:
	cairn_buf_release(&out);
	cairn_repo_free(again);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* --- unpacked files -------------------------------------------------------- */

static void check_unpacked_round_trip(unsigned version)
{
	char *tmp;
	cairn_backend *be;
	cairn_repo *repo;
	const char json[] = "{\"hello\":\"world\",\"n\":[1,2,3]}\n";
	cairn_buf out = CAIRN_BUF_INIT, stored = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
	cairn_id id, check;
	cairn_handle h;
	char hex[CAIRN_ID_HEX_SIZE];

	new_repo(&tmp, &be, &repo, version);
	if (!repo)
		goto out;
	CHECK_INT(cairn_repo_config(repo)->version, version);
	CHECK_OK(cairn_repo_save_unpacked(&id, repo, CAIRN_FILE_SNAPSHOT, json, sizeof(json) - 1));
	CHECK_OK(cairn_repo_load_unpacked(&out, repo, CAIRN_FILE_SNAPSHOT, &id));
	CHECK(out.len == sizeof(json) - 1 && memcmp(out.data, json, out.len) == 0);
	CHECK(out.data && out.data[out.len] == '\0');

	/* name = SHA-256 of the stored bytes; v2 stores 0x02+zstd, v1 raw JSON */
	cairn_id_to_hex(hex, &id);
	cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, hex);
	CHECK_OK(cairn_backend_load(&stored, be, &h, 0, 0));
	cairn_sha256(&check, stored.data, stored.len);
	CHECK(cairn_id_equal(&check, &id));
	CHECK_OK(cairn_crypto_open_buf(&plain, cairn_repo_key(repo), stored.data, stored.len));
	CHECK(plain.len > 0 && plain.data[0] == (version == 2 ? 0x02 : '{'));

	/* raw JSON is always readable, in v2 too */
	cairn_buf_clear(&stored);
	CHECK_OK(cairn_crypto_seal_buf(&stored, cairn_repo_key(repo), json, sizeof(json) - 1));
	CHECK_OK(cairn_repo_decode_unpacked(&out, repo, stored.data, stored.len));
	CHECK(out.len == sizeof(json) - 1 && memcmp(out.data, json, out.len) == 0);

	if (version == 2) {
		/* leading whitespace is not a known encoding */
		cairn_buf_clear(&stored);
		CHECK_OK(cairn_crypto_seal_buf(&stored, cairn_repo_key(repo), " {}", 3));
		CHECK_INT(cairn_repo_decode_unpacked(&out, repo, stored.data, stored.len), CAIRN_ECORRUPT);
		CHECK(strstr(cairn_error_message(), "not supported encoding format") != NULL);
	} else {
		/* v1 never compresses blobs */
		static unsigned char zeros[50000];
		cairn_id zid;
		cairn_blob_location loc;
		CHECK_OK(cairn_repo_save_blob(&zid, NULL, repo, CAIRN_BLOB_DATA, zeros, sizeof(zeros), NULL));
		CHECK_OK(cairn_repo_flush(repo));
		CHECK_INT(cairn_index_lookup(&loc, cairn_repo_index(repo), CAIRN_BLOB_DATA, &zid), 1);
		CHECK_INT(loc.uncompressed_length, 0);
		CHECK_INT(loc.length, sizeof(zeros) + 32);
		/* and the index file is raw JSON */
		name_list idx = list_names(be, CAIRN_FILE_INDEX);
		CHECK_INT(idx.n, 1);
		if (idx.n == 1) {
			cairn_handle_set(&h, CAIRN_FILE_INDEX, idx.v[0]);
			CHECK_OK(cairn_backend_load(&stored, be, &h, 0, 0));
			CHECK_OK(cairn_crypto_open_buf(&plain, cairn_repo_key(repo), stored.data, stored.len));
			CHECK(plain.len > 0 && plain.data[0] == '{');
		}
		free(idx.v);
	}
	/* a MAC failure on a file whose name matches is still named */
	{
		cairn_id bad;
		cairn_buf_clear(&stored);
		CHECK_OK(cairn_crypto_seal_buf(&stored, cairn_repo_key(repo), json, sizeof(json) - 1));
		stored.data[20] ^= 1;
		cairn_sha256(&bad, stored.data, stored.len);
		cairn_id_to_hex(hex, &bad);
		cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, hex);
		CHECK_OK(cairn_backend_save(be, &h, stored.data, stored.len));
		CHECK_INT(cairn_repo_load_unpacked(&out, repo, CAIRN_FILE_SNAPSHOT, &bad), CAIRN_ECORRUPT);
		CHECK(strstr(cairn_error_message(), hex) != NULL);
		CHECK_OK(cairn_backend_remove(be, &h));
	}
out:
	cairn_buf_release(&out);
	cairn_buf_release(&stored);
	cairn_buf_release(&plain);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

static void test_unpacked_v2(void) { check_unpacked_round_trip(2); }
static void test_unpacked_v1(void) { check_unpacked_round_trip(1); }

/* --- snapshots ------------------------------------------------------------- */

#define N_SNAP 20

static void test_snapshots_list_and_find(void)
{
	char *tmp, path[600], rel[200];
	cairn_backend *be;
	cairn_repo *repo;
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT, *list = NULL;
	cairn_id ids[N_SNAP], found;
	size_t n = 0;
	char hex[CAIRN_ID_HEX_SIZE], prefix[8];
	int ambiguous = -1;

	new_repo(&tmp, &be, &repo, 2);
	if (!repo)
		goto out;
	for (int i = 0; i < N_SNAP; i++) {
		s = (cairn_snapshot)CAIRN_SNAPSHOT_INIT;
		/* saved out of time order */
		s.time.sec = 1700000000 + ((i * 7) % N_SNAP) * 60;
		s.time.nsec = 5;
		fill_pseudo_random(s.tree.bytes, 32, (uint32_t)i);
		CHECK_OK(cairn_strlist_add(&s.paths, &s.n_paths, "/home/x"));
		s.hostname = strdup("host");
		CHECK_OK(cairn_repo_save_snapshot(repo, &s));
		CHECK(!cairn_id_is_zero(&s.id));
		ids[i] = s.id;
		cairn_snapshot_release(&s);
	}
	CHECK_OK(cairn_repo_list_snapshots(&list, &n, repo));
	CHECK_INT(n, N_SNAP);
	for (size_t i = 1; i < n; i++)
		CHECK(cairn_time_compare(list[i - 1].time, list[i].time) < 0);
	for (size_t i = 0; i < n; i++)
		CHECK(!cairn_id_is_zero(&list[i].id));
	if (n == N_SNAP) {
		/* the oldest is i == 0 (offset 0) */
		CHECK(cairn_id_equal(&list[0].id, &ids[0]));
		CHECK_STR(list[0].hostname, "host");
	}
	cairn_snapshot_list_free(list, n);
	list = NULL;

	CHECK_OK(cairn_repo_load_snapshot(&s, repo, &ids[3]));
	CHECK(cairn_id_equal(&s.id, &ids[3]));
	CHECK_INT(s.time.sec, 1700000000 + 21 % N_SNAP * 60);
	cairn_snapshot_release(&s);

	/* full id, unique prefix, ambiguous prefix, no match, bad input */
	cairn_id_to_hex(hex, &ids[5]);
	CHECK_OK(cairn_repo_find_snapshot(&found, repo, hex));
	CHECK(cairn_id_equal(&found, &ids[5]));
	for (int i = 0; i < N_SNAP; i++) {
		char a[CAIRN_ID_HEX_SIZE], b[CAIRN_ID_HEX_SIZE];
		cairn_id_to_hex(a, &ids[i]);
		for (int j = i + 1; j < N_SNAP; j++) {
			cairn_id_to_hex(b, &ids[j]);
			if (a[0] == b[0])
				ambiguous = i;
		}
	}
	CHECK(ambiguous >= 0); /* 20 ids, 16 first characters */
	if (ambiguous >= 0) {
		cairn_id_to_hex(hex, &ids[ambiguous]);
		snprintf(prefix, sizeof(prefix), "%.1s", hex);
		CHECK_INT(cairn_repo_find_snapshot(&found, repo, prefix), CAIRN_EINVAL);
		CHECK(strstr(cairn_error_message(), "matches several snapshots") != NULL);
		/* the full name is unique; uppercase is accepted */
		for (char *c = hex; *c; c++)
			if (*c >= 'a' && *c <= 'f')
				*c = (char)(*c - 'a' + 'A');
		CHECK_OK(cairn_repo_find_snapshot(&found, repo, hex));
		CHECK(cairn_id_equal(&found, &ids[ambiguous]));
	}
	{
		/* a 12-char prefix matching none of the ids */
		char probe[16];
		for (unsigned v = 0;; v++) {
			int hit = 0;
			snprintf(probe, sizeof(probe), "%012x", v);
			for (int i = 0; i < N_SNAP; i++) {
				cairn_id_to_hex(hex, &ids[i]);
				hit |= strncmp(hex, probe, 12) == 0;
			}
			if (!hit)
				break;
		}
		CHECK_INT(cairn_repo_find_snapshot(&found, repo, probe), CAIRN_ENOTFOUND);
	}
	CHECK_INT(cairn_repo_find_snapshot(&found, repo, "xyz"), CAIRN_EINVAL);
	CHECK_INT(cairn_repo_find_snapshot(&found, repo, ""), CAIRN_EINVAL);

	/* a damaged snapshot file fails the listing, named */
	cairn_id_to_hex(hex, &ids[9]);
	snprintf(rel, sizeof(rel), "snapshots/%s", hex);
	repo_path(path, sizeof(path), tmp, rel);
	flip_byte(path, -3);
	CHECK_INT(cairn_repo_list_snapshots(&list, &n, repo), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), hex) != NULL);
out:
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

/* --- restic as the oracle ------------------------------------------------------ */

static int have_restic(void)
{
	if (access("/usr/bin/restic", X_OK) == 0)
		return 1;
	printf("note: /usr/bin/restic not installed, oracle test skipped\n");
	return 0;
}

/* Run a shell command, return its exit status (output to the test log). */
static int run(const char *cmd)
{
	int st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void test_restic_checks_our_repository(void)
{
	char *tmp, cmd[2048], path[600];
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	cairn_repo_init_options o = fast_opts(2);
	const char tree[] = "{\"nodes\":[]}\n";
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	unsigned char buf[70000];

	if (!have_restic())
		return;
	tmp = make_tmpdir();
	snprintf(path, sizeof(path), "%s/cache", tmp);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/repo", tmp);
	CHECK_OK(cairn_backend_open(&be, path, 0));
	if (be)
		CHECK_OK(cairn_repo_init(&repo, be, "pw", 2, &o));
	if (!repo)
		goto out;
	cairn_repo_set_pack_size(repo, 100000); /* several data packs */
	for (int i = 0; i < 8; i++) {
		if (i % 2)
			fill_pseudo_random(buf, sizeof(buf), (uint32_t)(900 + i));
		else
			memset(buf, 'x' + i, sizeof(buf));
		CHECK_OK(cairn_repo_save_blob(NULL, NULL, repo, CAIRN_BLOB_DATA, buf, sizeof(buf) - (size_t)i, NULL));
	}
	CHECK_OK(cairn_repo_save_blob(&s.tree, NULL, repo, CAIRN_BLOB_TREE, tree, sizeof(tree) - 1, NULL));
	CHECK_OK(cairn_repo_flush(repo));
	s.time = cairn_time_now();
	CHECK_OK(cairn_strlist_add(&s.paths, &s.n_paths, "/oracle"));
	s.hostname = strdup("cairn-test");
	CHECK_OK(cairn_repo_save_snapshot(repo, &s));
	cairn_snapshot_release(&s);
	snprintf(cmd, sizeof(cmd),
		"RESTIC_PASSWORD=pw RESTIC_CACHE_DIR=%s/cache restic -r %s check --read-data >%s/check.log 2>&1",
		tmp, path, tmp);
	CHECK_INT(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "cat %s/check.log >&2", tmp);
	if (unit_failures)
		run(cmd);
	/* restic lists our snapshot */
	snprintf(cmd, sizeof(cmd),
		"RESTIC_PASSWORD=pw RESTIC_CACHE_DIR=%s/cache restic -r %s snapshots --json | grep -q cairn-test",
		tmp, path);
	CHECK_INT(run(cmd), 0);
out:
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

static void test_we_read_a_restic_repository(void)
{
	char *tmp, cmd[2048], path[600], src[600];
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	cairn_snapshot *list = NULL;
	size_t n = 0;
	cairn_buf out = CAIRN_BUF_INIT;
	FILE *f;

	if (!have_restic())
		return;
	tmp = make_tmpdir();
	snprintf(path, sizeof(path), "%s/repo", tmp);
	snprintf(src, sizeof(src), "%s/src", tmp);
	mkdir(src, 0700);
	snprintf(cmd, sizeof(cmd), "%s/file.txt", src);
	f = fopen(cmd, "w");
	if (f) {
		fputs("restic made this\n", f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd),
		"cd %s && export RESTIC_PASSWORD=secret RESTIC_CACHE_DIR=%s/cache && "
		"restic -r %s init >/dev/null 2>&1 && restic -r %s backup src >/dev/null 2>&1",
		tmp, tmp, path, path);
	CHECK_INT(run(cmd), 0);
	CHECK_OK(cairn_backend_open(&be, path, 1));
	if (!be)
		goto out;
	CHECK_INT(cairn_repo_open(&repo, be, "wrong", 5), CAIRN_EAUTH);
	CHECK_OK(cairn_repo_open(&repo, be, "secret", 6));
	if (!repo)
		goto out;
	CHECK_INT(cairn_repo_config(repo)->version, 2);
	CHECK_OK(cairn_repo_load_index(repo));
	CHECK(cairn_index_count(cairn_repo_index(repo)) >= 3); /* root tree, src tree, file data */
	CHECK_OK(cairn_repo_list_snapshots(&list, &n, repo));
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_OK(cairn_repo_load_blob(&out, repo, CAIRN_BLOB_TREE, &list[0].tree));
		CHECK(out.len > 0 && strstr(cairn_buf_cstr(&out), "\"name\":\"src\"") != NULL);
		CHECK_INT(list[0].n_paths, 1);
	}
	/* and restic can still check it after we read it */
	snprintf(cmd, sizeof(cmd),
		"RESTIC_PASSWORD=secret RESTIC_CACHE_DIR=%s/cache restic -r %s check --read-data >/dev/null 2>&1",
		tmp, path);
	CHECK_INT(run(cmd), 0);
out:
	cairn_snapshot_list_free(list, n);
	cairn_buf_release(&out);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	rm_rf(tmp);
	free(tmp);
}

UNIT_MAIN(test_init_open_and_passwords, test_open_skips_bad_key_files, test_blobs_flush_reopen_load,
	test_pack_size_target, test_damaged_index_file_is_named, test_damaged_pack_is_detected,
	test_failed_pack_upload_writes_no_index, test_concurrent_save_stores_each_blob_once,
	test_unpacked_v2, test_unpacked_v1, test_snapshots_list_and_find,
	test_restic_checks_our_repository, test_we_read_a_restic_repository)
