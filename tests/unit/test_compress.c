/* test_compress.c: zstd as the v2 format uses it: mode names, one-frame
 * compression with content size, exact decoding of frames with and without
 * a content size (including one written by restic 0.14.0 itself),
 * concatenated frames, truncation, size mismatches and the streaming cap.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include <cairn/compress.h>
#include "unit.h"

/* The zstd frame inside snapshots/f79cd439... of a restic 0.14.0 repository
 * (after the 0x02 marker): no Frame_Content_Size (FHD byte 0x00). */
static const unsigned char restic_frame[] = {
	0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x6d, 0x04, 0x00, 0xd2, 0x4a, 0x22,
	0x1f, 0x70, 0x49, 0xaa, 0x00, 0xe6, 0x11, 0x94, 0xd4, 0xd6, 0xe2, 0x32,
	0x85, 0x62, 0x17, 0xc1, 0xfd, 0xa0, 0x0a, 0x81, 0xa4, 0xb6, 0x0d, 0xd9,
	0x90, 0x6d, 0xd8, 0x7e, 0xfd, 0xff, 0x7b, 0x01, 0x0b, 0x8f, 0x49, 0xf2,
	0xbe, 0xde, 0x8e, 0x21, 0x5e, 0x43, 0x84, 0x97, 0xbb, 0x84, 0xaf, 0xb7,
	0x63, 0x88, 0x08, 0x93, 0xc3, 0x0b, 0xc1, 0xdb, 0x83, 0x91, 0x1d, 0x18,
	0x09, 0x17, 0x8d, 0x0f, 0xac, 0xc3, 0x43, 0x64, 0x89, 0x97, 0x33, 0x2b,
	0x6f, 0xe6, 0xd1, 0x6b, 0x30, 0xdb, 0x27, 0x13, 0x25, 0xb7, 0xae, 0xa6,
	0xb2, 0x59, 0x66, 0x35, 0x2a, 0x99, 0xc4, 0x8e, 0x6d, 0x86, 0x82, 0xb4,
	0x9d, 0xd0, 0x2e, 0x42, 0xa9, 0x8d, 0xdb, 0x2e, 0xcb, 0x83, 0xd3, 0xd7,
	0xbb, 0x5f, 0x7c, 0xb9, 0x40, 0x52, 0x0a, 0x41, 0xaa, 0x32, 0x01, 0xa4,
	0x2e, 0x44, 0xd7, 0x9e, 0x00, 0x83, 0x8a, 0x73, 0x0a, 0x95, 0x26, 0xbf,
	0xde, 0xce, 0x20, 0x5e, 0x21, 0x00,
};

/* Deterministic test data: text-like (compressible) or noise. */
static unsigned char *make_data(size_t n, int noise)
{
	unsigned char *p = malloc(n ? n : 1);
	uint32_t x = 2463534242u;
	for (size_t i = 0; p && i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = noise ? (unsigned char)x : (unsigned char)("lorem ipsum dolor sit amet "[i % 27] + (x % 61 == 0));
	}
	return p;
}

/* One frame without Frame_Content_Size, as restic's encoder sometimes
 * writes, made with libzstd's streaming API.  Caller frees *out. */
static size_t frame_without_size(unsigned char **out, const void *in, size_t len)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(len) + 64, rem;
	ZSTD_outBuffer ob;
	ZSTD_inBuffer ib = { in, len, 0 };

	*out = malloc(cap);
	ob.dst = *out;
	ob.size = cap;
	ob.pos = 0;
	CHECK(c != NULL && *out != NULL);
	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	rem = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
	CHECK(rem == 0);
	ZSTD_freeCCtx(c);
	CHECK(ZSTD_getFrameContentSize(*out, ob.pos) == ZSTD_CONTENTSIZE_UNKNOWN);
	return ob.pos;
}

static void test_compression_modes(void)
{
	static const struct { const char *name; cairn_compression mode; int level; } ok[] = {
		{ "auto", CAIRN_COMPRESSION_AUTO, 3 }, { "off", CAIRN_COMPRESSION_OFF, 0 },
		{ "fastest", CAIRN_COMPRESSION_FASTEST, 1 }, { "better", CAIRN_COMPRESSION_BETTER, 7 },
		{ "max", CAIRN_COMPRESSION_MAX, 19 },
	};
	static const char *const bad[] = { "", "Auto", "MAX", "zstd", "auto ", "3", "of" };
	cairn_compression m;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		m = (cairn_compression)99;
		CHECK_OK(cairn_compression_parse(&m, ok[i].name));
		CHECK_INT(m, ok[i].mode);
		CHECK_INT(cairn_compression_level(m), ok[i].level);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(cairn_compression_parse(&m, bad[i]), CAIRN_EINVAL);
	CHECK_INT(cairn_compression_parse(&m, NULL), CAIRN_EINVAL);
}

static void test_round_trip_levels_and_sizes(void)
{
	static const size_t sizes[] = { 1, 100, 4096, 131073, (size_t)3 << 20 };
	static const int levels[] = { 1, 3, 7, 19 };
	cairn_buf z = CAIRN_BUF_INIT, s = CAIRN_BUF_INIT;

	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		for (int noise = 0; noise < 2; noise++) {
			size_t n = sizes[si];
			unsigned char *in = make_data(n, noise), *out = malloc(n);
			for (size_t li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
				if (levels[li] == 19 && n > 200000)
					continue; /* slow and adds nothing */
				CHECK_OK(cairn_zstd_compress(&z, in, n, levels[li]));
				CHECK(z.len > 0);
				if (!noise && n >= 4096)
					CHECK(z.len < n / 4);
				/* one frame, content size recorded, no checksum needed */
				CHECK(ZSTD_getFrameContentSize(z.data, z.len) == n);
				CHECK(ZSTD_findFrameCompressedSize(z.data, z.len) == z.len);
				memset(out, 0, n);
				CHECK_OK(cairn_zstd_decompress_exact(out, n, z.data, z.len));
				CHECK(memcmp(out, in, n) == 0);
				cairn_buf_clear(&s);
				CHECK_OK(cairn_zstd_decompress_stream(&s, z.data, z.len, n));
				CHECK(s.len == n && memcmp(s.data, in, n) == 0);
			}
			free(in);
			free(out);
		}
	}

	/* compress replaces the buffer's contents */
	CHECK_OK(cairn_buf_puts(&z, "old"));
	CHECK_OK(cairn_zstd_compress(&z, "abc", 3, 3));
	CHECK(ZSTD_getFrameContentSize(z.data, z.len) == 3);
	/* an empty input is one valid frame of size 0 */
	CHECK_OK(cairn_zstd_compress(&z, NULL, 0, 3));
	CHECK(ZSTD_getFrameContentSize(z.data, z.len) == 0);
	CHECK_OK(cairn_zstd_decompress_exact(NULL, 0, z.data, z.len));
	cairn_buf_release(&z);
	cairn_buf_release(&s);
}

static void test_frame_without_content_size(void)
{
	size_t n = 300000;
	unsigned char *in = make_data(n, 0), *out = malloc(n + 1), *f = NULL;
	size_t flen = frame_without_size(&f, in, n);
	cairn_buf s = CAIRN_BUF_INIT;

	CHECK_OK(cairn_zstd_decompress_exact(out, n, f, flen));
	CHECK(memcmp(out, in, n) == 0);
	CHECK_INT(cairn_zstd_decompress_exact(out, n - 1, f, flen), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_exact(out, n + 1, f, flen), CAIRN_ECORRUPT);
	CHECK_OK(cairn_zstd_decompress_stream(&s, f, flen, n));
	CHECK(s.len == n && memcmp(s.data, in, n) == 0);
	/* the frame's checksum is verified */
	f[flen - 1] ^= 1;
	CHECK_INT(cairn_zstd_decompress_exact(out, n, f, flen), CAIRN_ECORRUPT);
	cairn_buf_release(&s);
	free(in);
	free(out);
	free(f);
}

static void test_restic_frame(void)
{
	cairn_buf s = CAIRN_BUF_INIT;
	unsigned char *out;

	CHECK(ZSTD_getFrameContentSize(restic_frame, sizeof(restic_frame)) == ZSTD_CONTENTSIZE_UNKNOWN);
	CHECK_OK(cairn_zstd_decompress_stream(&s, restic_frame, sizeof(restic_frame), 1 << 20));
	CHECK(s.len > 100);
	CHECK(strncmp(cairn_buf_cstr(&s), "{\"time\":\"", 9) == 0);
	CHECK(strstr(cairn_buf_cstr(&s), "\"paths\":[\"/tmp/katsrc\"]") != NULL);
	CHECK(s.data[s.len - 1] == '}');

	out = malloc(s.len + 1);
	CHECK_OK(cairn_zstd_decompress_exact(out, s.len, restic_frame, sizeof(restic_frame)));
	CHECK(memcmp(out, s.data, s.len) == 0);
	CHECK_INT(cairn_zstd_decompress_exact(out, s.len - 1, restic_frame, sizeof(restic_frame)), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_exact(out, s.len + 1, restic_frame, sizeof(restic_frame)), CAIRN_ECORRUPT);
	free(out);
	cairn_buf_release(&s);
}

static void test_concatenated_frames(void)
{
	size_t na = 70000, nb = 50000;
	unsigned char *a = make_data(na, 0), *b = make_data(nb, 1), *fb = NULL;
	size_t fblen = frame_without_size(&fb, b, nb);
	/* a skippable frame (magic 0x184D2A50, 4 bytes of payload) */
	static const unsigned char skip[] = { 0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4 };
	cairn_buf all = CAIRN_BUF_INIT, fa = CAIRN_BUF_INIT, s = CAIRN_BUF_INIT;
	unsigned char *out = malloc(na + nb + 1);

	CHECK_OK(cairn_zstd_compress(&fa, a, na, 3));
	CHECK_OK(cairn_buf_append(&all, fa.data, fa.len));
	CHECK_OK(cairn_buf_append(&all, skip, sizeof(skip)));
	CHECK_OK(cairn_buf_append(&all, fb, fblen));

	CHECK_OK(cairn_zstd_decompress_exact(out, na + nb, all.data, all.len));
	CHECK(memcmp(out, a, na) == 0 && memcmp(out + na, b, nb) == 0);
	CHECK_INT(cairn_zstd_decompress_exact(out, na, all.data, all.len), CAIRN_ECORRUPT);

	CHECK_OK(cairn_buf_puts(&s, "prefix"));
	CHECK_OK(cairn_zstd_decompress_stream(&s, all.data, all.len, na + nb));
	CHECK_INT(s.len, 6 + na + nb);
	CHECK(memcmp(s.data, "prefix", 6) == 0);
	CHECK(memcmp(s.data + 6, a, na) == 0 && memcmp(s.data + 6 + na, b, nb) == 0);

	free(a);
	free(b);
	free(fb);
	free(out);
	cairn_buf_release(&all);
	cairn_buf_release(&fa);
	cairn_buf_release(&s);
}

static void test_truncated_and_invalid(void)
{
	size_t n = 20000;
	unsigned char *in = make_data(n, 0), *out = malloc(n), *noise = make_data(500, 1);
	cairn_buf z = CAIRN_BUF_INIT, s = CAIRN_BUF_INIT, g = CAIRN_BUF_INIT;
	int bad_exact = 0, bad_stream = 0;

	CHECK_OK(cairn_zstd_compress(&z, in, n, 3));
	for (size_t cut = 0; cut < z.len; cut++) {
		if (cairn_zstd_decompress_exact(out, n, z.data, cut) != CAIRN_ECORRUPT)
			bad_exact++;
		CHECK_OK(cairn_buf_puts(&s, "keep"));
		if (cairn_zstd_decompress_stream(&s, z.data, cut, n) != CAIRN_ECORRUPT || s.len != 4)
			bad_stream++;
		cairn_buf_clear(&s);
	}
	CHECK_INT(bad_exact, 0);
	CHECK_INT(bad_stream, 0);

	/* trailing garbage after a good frame */
	CHECK_OK(cairn_buf_append(&g, z.data, z.len));
	CHECK_OK(cairn_buf_append(&g, "xyz!", 4));
	CHECK_INT(cairn_zstd_decompress_exact(out, n, g.data, g.len), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_stream(&s, g.data, g.len, n), CAIRN_ECORRUPT);
	CHECK_INT(s.len, 0);

	/* not zstd at all */
	CHECK_INT(cairn_zstd_decompress_exact(out, n, noise, 500), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_stream(&s, noise, 500, n), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_exact(out, n, "{\"a\":1}", 7), CAIRN_ECORRUPT);

	/* the contexts recover from errors: a good call right after works */
	CHECK_OK(cairn_zstd_decompress_exact(out, n, z.data, z.len));
	CHECK(memcmp(out, in, n) == 0);
	CHECK_OK(cairn_zstd_decompress_stream(&s, z.data, z.len, n));
	CHECK_INT(s.len, n);

	free(in);
	free(out);
	free(noise);
	cairn_buf_release(&z);
	cairn_buf_release(&s);
	cairn_buf_release(&g);
}

static void test_stream_cap(void)
{
	size_t n = (size_t)1 << 20;
	unsigned char *in = make_data(n, 0);
	cairn_buf z = CAIRN_BUF_INIT, s = CAIRN_BUF_INIT;

	CHECK_OK(cairn_zstd_compress(&z, in, n, 3));
	CHECK_OK(cairn_zstd_decompress_stream(&s, z.data, z.len, n));
	CHECK(s.len == n && memcmp(s.data, in, n) == 0);

	/* one byte over the cap fails and appends nothing */
	CHECK_OK(cairn_buf_puts(&s, "x")); /* s now holds n + 1 bytes */
	CHECK_INT(cairn_zstd_decompress_stream(&s, z.data, z.len, n - 1), CAIRN_ECORRUPT);
	CHECK_INT(s.len, n + 1);
	cairn_buf_clear(&s);
	CHECK_INT(cairn_zstd_decompress_stream(&s, z.data, z.len, 1000), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_stream(&s, z.data, z.len, 0), CAIRN_ECORRUPT);
	CHECK_INT(s.len, 0);

	/* a zstd bomb (64 MiB of zeros in a tiny frame) stops at the cap
	 * without decoding or allocating the whole thing */
	{
		size_t big = (size_t)64 << 20;
		unsigned char *zeros = calloc(1, big);
		CHECK_OK(cairn_zstd_compress(&z, zeros, big, 3));
		free(zeros);
		CHECK(z.len < 10000);
		cairn_buf_release(&s);
		CHECK_INT(cairn_zstd_decompress_stream(&s, z.data, z.len, 1 << 20), CAIRN_ECORRUPT);
		CHECK(s.cap <= ((size_t)2 << 20));
	}

	/* empty input is not a frame; an empty frame is fine with cap 0 */
	CHECK_INT(cairn_zstd_decompress_stream(&s, NULL, 0, 100), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_exact(NULL, 0, NULL, 0), CAIRN_ECORRUPT);
	CHECK_OK(cairn_zstd_compress(&z, "", 0, 3));
	CHECK_OK(cairn_zstd_decompress_stream(&s, z.data, z.len, 0));
	CHECK_INT(s.len, 0);

	free(in);
	cairn_buf_release(&z);
	cairn_buf_release(&s);
}

struct zjob {
	int seed, failures;
};

static void *zworker(void *arg)
{
	struct zjob *job = arg;
	cairn_buf z = CAIRN_BUF_INIT, s = CAIRN_BUF_INIT;
	unsigned char *in = make_data(200000, 0), *out = malloc(200000);

	for (int round = 0; round < 40; round++) {
		size_t n = 1000 + (size_t)(job->seed * 7919 + round * 4099) % 199000;
		int level = 1 + (job->seed + round) % 7;
		cairn_buf_clear(&s);
		if (cairn_zstd_compress(&z, in + round, n - round, level) < 0 ||
		    cairn_zstd_decompress_exact(out, n - round, z.data, z.len) < 0 ||
		    memcmp(out, in + round, n - round) != 0 ||
		    cairn_zstd_decompress_stream(&s, z.data, z.len, n) < 0 || s.len != n - round)
			job->failures++;
	}
	free(in);
	free(out);
	cairn_buf_release(&z);
	cairn_buf_release(&s);
	return NULL;
}

static void test_threads(void)
{
	enum { NTHREADS = 6 };
	pthread_t th[NTHREADS];
	struct zjob jobs[NTHREADS];

	for (int i = 0; i < NTHREADS; i++) {
		jobs[i].seed = i;
		jobs[i].failures = 0;
		CHECK(pthread_create(&th[i], NULL, zworker, &jobs[i]) == 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(jobs[i].failures, 0);
	}
}

UNIT_MAIN(test_compression_modes, test_round_trip_levels_and_sizes, test_frame_without_content_size,
	test_restic_frame, test_concatenated_frames, test_truncated_and_invalid, test_stream_cap,
	test_threads)
