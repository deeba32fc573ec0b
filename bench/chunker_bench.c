/* chunker_bench.c: throughput of cairn_chunker_scan, with SHA-256 beside it
 * for scale.
 *
 * Streams 1 GiB of random data through the chunker in 1 MiB buffers, the way
 * the backup pipeline feeds it, and reports MB/s (1 MB = 10^6 bytes), the
 * number of chunks and their mean size; then the SHA-256 rate over the same
 * stream.  The data is a 256 MiB splitmix64 pool read round and round, so it
 * comes from memory, not from cache.  Each figure is the best of `rounds`
 * passes (default 3) because the machine is shared.
 *
 * Build (from the repository root; no Makefile rule so that the shared
 * Makefile stays untouched):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Iinclude -o build/chunker_bench \
 *       bench/chunker_bench.c repo-format/chunker.c repo-format/util/[a-z]*.c \
 *       repo-format/crypto.c -lcrypto
 * or link build/libcairn.a with `$(pkg-config --libs libcrypto libzstd jansson ...)`.
 * Run: build/chunker_bench [GiB] [rounds]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairn/chunker.h>
#include <cairn/id.h>

#define BUF ((size_t)1 << 20)
#define POOL ((size_t)256 << 20)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(p + i, &z, 8);
	}
}

int main(int argc, char **argv)
{
	size_t gib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	size_t total = gib << 30;
	unsigned char *pool = malloc(POOL);
	cairn_chunker_tables t;
	int r = 1;

	if (!pool || !total || rounds < 1) {
		fprintf(stderr, "usage: chunker_bench [GiB >= 1] [rounds >= 1]\n");
		goto out;
	}
	fill(pool, POOL, 1);
	if (cairn_chunker_tables_init(&t, 0x3f0293f5a7f421ull) < 0) {
		fprintf(stderr, "tables: %s\n", cairn_error_message());
		goto out;
	}

	double best = 1e30;
	size_t chunks = 0;
	for (int round = 0; round < rounds; round++) {
		cairn_chunker c;
		size_t n = 0;
		cairn_chunker_reset(&c, &t);
		double t0 = now();
		for (size_t off = 0; off < total; off += BUF) {
			const unsigned char *p = pool + off % POOL;
			size_t done = 0;
			while (done < BUF) {
				int cut;
				done += cairn_chunker_scan(&c, p + done, BUF - done, &cut);
				n += (size_t)cut;
			}
		}
		double dt = now() - t0;
		if (dt < best)
			best = dt;
		chunks = n;
	}
	printf("chunker: %8.1f MB/s  (%zu MiB in 1 MiB buffers, %zu chunks, mean %.2f MiB)\n",
		(double)total / best / 1e6, total >> 20, chunks,
		chunks ? (double)total / (double)chunks / (1 << 20) : 0.0);

	cairn_sha256_ctx *sha = NULL;
	if (cairn_sha256_new(&sha) < 0) {
		fprintf(stderr, "sha256: %s\n", cairn_error_message());
		goto out;
	}
	best = 1e30;
	for (int round = 0; round < rounds; round++) {
		cairn_id id;
		double t0 = now();
		for (size_t off = 0; off < total; off += BUF)
			cairn_sha256_update(sha, pool + off % POOL, BUF);
		cairn_sha256_final(&id, sha);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
	}
	cairn_sha256_free(sha);
	printf("sha256:  %8.1f MB/s  (same stream, for comparison)\n", (double)total / best / 1e6);
	r = 0;
out:
	free(pool);
	return r;
}
