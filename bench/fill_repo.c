/* fill_repo.c: a real repository holding N distinct data blobs, fast.
 *
 * For the "backup into a repository of 2,000,000 blobs" scenario of
 * bench/run.sh.  What costs a backup client at start-up is the number of
 * index entries it must load (restic keeps every one in memory), not the
 * size of the blobs, so the blobs are small: blob i is 24 bytes (the text
 * "cairn-bench" and the little-endian number i), stored uncompressed and
 * sealed like any blob.  Everything else is real and written through
 * cairn's own format library: repository v2 with a key for
 * $CAIRN_PASSWORD (scrypt at cairn's defaults), packs of PACK_KIB KiB
 * (default 1024, about 18,000 blobs a pack), index files of about 50,000
 * blobs as cairn writes them, and one snapshot of an empty tree so the
 * repository looks used.  `restic check --read-data` passes on the result.
 *
 * Usage: fill_repo REPO N_BLOBS [PACK_KIB]   (REPO must not exist)
 * Two threads save blobs (cairn_repo_save_blob is thread-safe).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairn/backend.h>
#include <cairn/repo.h>
#include <cairn/snapshot.h>
#include <cairn/timestamp.h>
#include <cairn/tree.h>

typedef struct job {
	cairn_repo *repo;
	uint64_t from, to;
	int r;
} job;

static void *saver(void *arg)
{
	job *j = arg;
	unsigned char blob[24] = "cairn-bench-blob";
	for (uint64_t i = j->from; i < j->to && j->r >= 0; i++) {
		for (int b = 0; b < 8; b++)
			blob[16 + b] = (unsigned char)(i >> (8 * b));
		j->r = cairn_repo_save_blob(NULL, NULL, j->repo, CAIRN_BLOB_DATA, blob, sizeof(blob), NULL);
	}
	return NULL;
}

static int fail(const char *what)
{
	fprintf(stderr, "fill_repo: %s: %s\n", what, cairn_error_message());
	return 1;
}

int main(int argc, char **argv)
{
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	cairn_repo_init_options o = CAIRN_REPO_INIT_OPTIONS_INIT;
	const char *pw = getenv("CAIRN_PASSWORD");
	job jobs[2];
	pthread_t th[2];
	uint64_t n;
	size_t pack_kib;

	if (argc < 3 || argc > 4 || !pw) {
		fprintf(stderr, "usage: CAIRN_PASSWORD=... fill_repo REPO N_BLOBS [PACK_KIB]\n");
		return 2;
	}
	n = strtoull(argv[2], NULL, 10);
	pack_kib = argc > 3 ? strtoul(argv[3], NULL, 10) : 1024;
	if (cairn_backend_open(&be, argv[1], 0) < 0)
		return fail("open backend");
	if (cairn_repo_init(&repo, be, pw, strlen(pw), &o) < 0)
		return fail("init");
	cairn_repo_set_compression(repo, CAIRN_COMPRESSION_OFF);
	cairn_repo_set_pack_size(repo, pack_kib << 10);
	for (int t = 0; t < 2; t++) {
		jobs[t] = (job){ repo, n * (uint64_t)t / 2, n * (uint64_t)(t + 1) / 2, 0 };
		if (pthread_create(&th[t], NULL, saver, &jobs[t]) != 0)
			return fail("thread");
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < 2; t++)
		if (jobs[t].r < 0)
			return fail("save blob");

	/* one snapshot of an empty tree */
	cairn_tree tree = CAIRN_TREE_INIT;
	cairn_buf json = CAIRN_BUF_INIT;
	cairn_snapshot snap = CAIRN_SNAPSHOT_INIT;
	cairn_id tree_id;
	if (cairn_tree_encode(&json, &tree) < 0 ||
	    cairn_repo_save_blob(&tree_id, NULL, repo, CAIRN_BLOB_TREE, json.data, json.len, NULL) < 0 ||
	    cairn_repo_flush(repo) < 0)
		return fail("flush");
	snap.tree = tree_id;
	snap.time = cairn_time_now();
	if (cairn_strlist_add(&snap.paths, &snap.n_paths, "/fill-repo") < 0 ||
	    !(snap.hostname = strdup("cairn-bench")) || cairn_repo_save_snapshot(repo, &snap) < 0)
		return fail("snapshot");
	cairn_repo_stats st;
	cairn_repo_get_stats(repo, &st);
	printf("fill_repo: %s: %" PRIu64 " blobs in %" PRIu64 " packs, %" PRIu64 " index files\n",
	       argv[1], st.blobs_added, st.packs_written, st.index_files_written);
	cairn_snapshot_release(&snap);
	cairn_buf_release(&json);
	cairn_tree_release(&tree);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	return 0;
}
