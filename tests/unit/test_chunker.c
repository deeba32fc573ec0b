/* test_chunker.c: the chunker against restic's own cut lists, against a
 * straightforward restic-style reference chunker, and against a bit-by-bit
 * fingerprint; plus the GF(2) polynomial arithmetic.
 *
 * Vectors: tests/vectors/restic-chunker.json (relative to the repository root,
 * where the tests run), or the file / directory named by CAIRN_TEST_VECTORS.
 * Test files are generated in memory from the vectors' splitmix64 stream;
 * every file is checked against its sha256 before its cuts are compared.
 * Each file is chunked in one piece and again in odd-sized pieces, so chunks
 * span calls with boundaries inside the skipped prefix, the 64 priming bytes
 * and the 64 bytes after a call boundary.
 */
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include <cairn/chunker.h>
#include <cairn/id.h>
#include "unit.h"

#define MIN_SIZE ((size_t)CAIRN_CHUNKER_MIN_SIZE)
#define MAX_SIZE ((size_t)CAIRN_CHUNKER_MAX_SIZE)
#define MIB ((size_t)1 << 20)

/* The 99 cases are 1.9 GB to chunk per feed mode; under AddressSanitizer only
 * files up to this size are run (still every case kind: empty, near MinSize,
 * 3 MiB and 12 MB random, zero runs, 0xff runs and MaxSize cuts). */
#if defined(__SANITIZE_ADDRESS__)
#define VECTOR_MAX_FILE ((size_t)20 * 1000 * 1000)
#else
#define VECTOR_MAX_FILE SIZE_MAX
#endif

/* ------------------------------------------------------------ helpers */

/* splitmix64 as the vectors define it: each value written little-endian,
 * the stream cut anywhere (a value may be partly used). */
typedef struct gen {
	uint64_t state;
	unsigned char pending[8];
	unsigned npending; /* unread bytes at the end of pending[] */
} gen;

static void gen_init(gen *g, uint64_t seed)
{
	g->state = seed;
	g->npending = 0;
}

static uint64_t gen_next(gen *g)
{
	uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void gen_fill(gen *g, unsigned char *out, size_t n)
{
	while (n > 0 && g->npending > 0) {
		*out++ = g->pending[8 - g->npending--];
		n--;
	}
	for (; n >= 8; n -= 8, out += 8) {
		uint64_t v = gen_next(g);
		for (int i = 0; i < 8; i++)
			out[i] = (unsigned char)(v >> (8 * i));
	}
	if (n > 0) {
		uint64_t v = gen_next(g);
		for (int i = 0; i < 8; i++)
			g->pending[i] = (unsigned char)(v >> (8 * i));
		g->npending = 8;
		while (n-- > 0)
			*out++ = g->pending[8 - g->npending--];
	}
}

/* Caller frees. */
static unsigned char *random_data(uint64_t seed, size_t n)
{
	unsigned char *p = malloc(n ? n : 1);
	gen g;
	if (!p) {
		fprintf(stderr, "out of memory for %zu bytes\n", n);
		exit(2);
	}
	gen_init(&g, seed);
	gen_fill(&g, p, n);
	return p;
}

static int ref_degree(uint64_t p)
{
	int d = -1;
	for (int i = 0; i < 64; i++)
		if ((p >> i) & 1)
			d = i;
	return d;
}

/* Fingerprint bit by bit, independent of the tables: the string as a GF(2)
 * polynomial (first byte, bit 7 highest) reduced mod P. */
static uint64_t ref_fp(uint64_t pol, const unsigned char *p, size_t n)
{
	int deg = ref_degree(pol);
	uint64_t h = 0;
	for (size_t i = 0; i < n; i++)
		for (int bit = 7; bit >= 0; bit--) {
			h = (h << 1) | ((p[i] >> bit) & 1);
			if ((h >> deg) & 1)
				h ^= pol;
		}
	return h;
}

/* Carry-less product (caller keeps the degrees small enough to fit). */
static uint64_t clmul(uint64_t a, uint64_t b)
{
	uint64_t r = 0;
	for (int i = 0; i < 64; i++)
		if ((b >> i) & 1)
			r ^= a << i;
	return r;
}

/* A list of chunk lengths; owns `v`. */
typedef struct lens {
	size_t *v;
	size_t n, cap;
} lens;

static void lens_push(lens *l, size_t x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	l->v[l->n++] = x;
}

static int lens_equal(const lens *a, const lens *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

/* Piece sizes: 0 = the whole rest in one call, 1 = a fixed odd cycle,
 * 2 = random sizes from `rng` (log-spread from 1 byte to 3 MiB). */
typedef struct feeder {
	int mode;
	size_t k;
	gen rng;
} feeder;

static const size_t odd_cycle[] = { 1, 7, 4093, 65536, 1000003, 63, 64, 65, 524225, 3, 2097153 };

static size_t feeder_next(feeder *f, size_t left)
{
	size_t s = left;
	if (f->mode == 1) {
		s = odd_cycle[f->k++ % (sizeof(odd_cycle) / sizeof(odd_cycle[0]))];
	} else if (f->mode == 2) {
		static const size_t caps[] = { 64, 4096, MIB, 3 * MIB };
		uint64_t v = gen_next(&f->rng);
		s = 1 + (size_t)((v >> 8) % caps[v & 3]);
	}
	return s < left ? s : left;
}

/* p[off .. off+len-1] copied after 64 guard bytes that differ from the real
 * bytes before it; the copy starts at the returned pointer + 64.  Caller
 * frees. */
static unsigned char *detached_copy(const unsigned char *p, size_t off, size_t len)
{
	unsigned char *b = malloc(len + 64);
	if (!b) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < 64; i++)
		b[i] = (unsigned char)((off + i >= 64 ? p[off + i - 64] : 0) ^ 0x5a);
	memcpy(b + 64, p + off, len);
	return b;
}

/* Chunk `p` with the library chunker, fed as `f` says.  When `check` is set,
 * after every call that leaves a chunk open the state is compared with a
 * fingerprint computed from scratch (roll == rehash).  Returns the number of
 * state mismatches. */
static int chunk_file(lens *out, const cairn_chunker_tables *t, const unsigned char *p,
	size_t n, feeder *f, int check)
{
	cairn_chunker c;
	size_t off = 0, cur = 0;
	int bad = 0;

	cairn_chunker_reset(&c, t);
	while (off < n) {
		size_t piece = feeder_next(f, n - off), done = 0;
		/* pieces are scanned from a copy, so a scan that reads before its
		 * buffer sees garbage, not the real previous bytes */
		unsigned char *copy = f->mode ? detached_copy(p, off, piece) : NULL;
		const unsigned char *src = copy ? copy + 64 : p + off;
		while (done < piece) {
			int cut = -1;
			size_t k = cairn_chunker_scan(&c, src + done, piece - done, &cut);
			if (k > piece - done || (!cut && k != piece - done) || (cut && k == 0)) {
				fprintf(stderr, "scan returned %zu of %zu with cut=%d\n", k, piece - done, cut);
				free(copy);
				bad++;
				return bad;
			}
			done += k;
			cur += k;
			if (cut) {
				lens_push(out, cur);
				cur = 0;
			}
		}
		free(copy);
		off += piece;
		if (check && cur > 0) {
			/* hashed bytes of the open chunk: those from MinSize-64 on */
			size_t hashed = cur > MIN_SIZE - 64 ? cur - (MIN_SIZE - 64) : 0;
			size_t w = hashed < 64 ? hashed : 64;
			uint64_t want = ref_fp(t->polynomial, p + off - w, w);
			if (c.chunk_len != cur || c.digest != want || c.wpos >= 64)
				bad++;
			for (size_t i = 0; i < 64; i++) {
				unsigned char e = i < 64 - w ? 0 : p[off - 64 + i];
				if (c.window[(c.wpos + i) & 63] != e) {
					bad++;
					break;
				}
			}
		}
	}
	if (cur > 0)
		lens_push(out, cur);
	return bad;
}

/* restic's chunker, step by step as it is written there: reset slides in the
 * byte 1, MinSize-64 bytes are skipped, then every byte is slid through the
 * ring and tested.  Slow and obvious, for comparison. */
static void ref_chunk(lens *out, const cairn_chunker_tables *t, const unsigned char *p, size_t n)
{
	unsigned char win[64];
	unsigned wpos = 0, shift = (unsigned)t->degree - 8;
	uint64_t digest = 0;
	size_t count = 0, pre = 0, i = 0;
	int fresh = 1;

	while (i < n) {
		if (fresh) {
			memset(win, 0, sizeof(win));
			win[0] = 1;
			digest = t->out[0];
			digest = ((digest << 8) | 1) ^ t->mod[digest >> shift];
			wpos = 1;
			count = 0;
			pre = MIN_SIZE - 64;
			fresh = 0;
		}
		if (pre > 0) {
			size_t take = pre < n - i ? pre : n - i;
			pre -= take;
			count += take;
			i += take;
			continue;
		}
		unsigned char b = p[i++];
		unsigned char o = win[wpos % 64];
		win[wpos % 64] = b;
		wpos++;
		digest ^= t->out[o];
		digest = ((digest << 8) | b) ^ t->mod[digest >> shift];
		count++;
		if (((digest & CAIRN_CHUNKER_SPLIT_MASK) == 0 || count >= MAX_SIZE) && count >= MIN_SIZE) {
			lens_push(out, count);
			fresh = 1;
		}
	}
	if (!fresh && count > 0)
		lens_push(out, count);
}

static void print_lens(const char *what, const lens *l)
{
	fprintf(stderr, "  %s (%zu):", what, l->n);
	for (size_t i = 0; i < l->n && i < 40; i++)
		fprintf(stderr, " %zu", l->v[i]);
	fprintf(stderr, "%s\n", l->n > 40 ? " ..." : "");
}

/* -------------------------------------------------------------- tests */

static void test_generator_check(void)
{
	static const unsigned char want1[16] = { 0xc1, 0x5c, 0x02, 0x89, 0xec, 0x2d, 0x0a, 0x91,
		0x67, 0xec, 0x8e, 0x65, 0xa1, 0x8d, 0xeb, 0xbe };
	unsigned char a[16], b[16];
	gen g;

	gen_init(&g, 0);
	CHECK(gen_next(&g) == 0xe220a8397b1dcdafull);
	gen_init(&g, 1);
	gen_fill(&g, a, 16);
	CHECK_MEM(a, want1, 16);
	/* byte-wise streaming gives the same stream as one fill */
	gen_init(&g, 1);
	gen_fill(&g, b, 3);
	gen_fill(&g, b + 3, 1);
	gen_fill(&g, b + 4, 9);
	gen_fill(&g, b + 13, 3);
	CHECK_MEM(b, want1, 16);
}

static void test_polynomial_degree(void)
{
	CHECK_INT(cairn_polynomial_degree(0), -1);
	CHECK_INT(cairn_polynomial_degree(1), 0);
	CHECK_INT(cairn_polynomial_degree(2), 1);
	CHECK_INT(cairn_polynomial_degree(0x3f0293f5a7f421ull), 53);
	CHECK_INT(cairn_polynomial_degree(1ull << 63), 63);
}

static void test_polynomial_irreducible(void)
{
	static const uint64_t irreducible[] = { 0x337682faf5ca05ull, 0x2f3a1f69240b05ull,
		0x2448be2296b681ull, 0x3f0293f5a7f421ull, 0x25b468838dcb75ull,
		0x2, 0x3, 0x7, 0xb, 0x13, 0x11b /* AES */, 0x211 /* x^9+x^4+1 */,
		0x8000000000000003ull /* x^63+x+1 */ };
	for (size_t i = 0; i < sizeof(irreducible) / sizeof(irreducible[0]); i++)
		if (!cairn_polynomial_irreducible(irreducible[i])) {
			fprintf(stderr, "  %#llx should be irreducible\n", (unsigned long long)irreducible[i]);
			CHECK(0);
		}

	/* reducible: products, multiples of x and of x+1, squares, constants */
	uint64_t a = 0x3f0293f5a7f421ull;
	CHECK(!cairn_polynomial_irreducible(0));
	CHECK(!cairn_polynomial_irreducible(1));
	CHECK(!cairn_polynomial_irreducible(clmul(a, 0x2)));     /* x * P */
	CHECK(!cairn_polynomial_irreducible(clmul(a, 0x3)));     /* (x+1) * P */
	CHECK(!cairn_polynomial_irreducible(clmul(a, 0x11b)));   /* degree 61 */
	CHECK(!cairn_polynomial_irreducible((1ull << 53) | 1));  /* x^53+1 = (x+1)(...) */
	CHECK(!cairn_polynomial_irreducible(clmul(0x7, 0x7)));   /* (x^2+x+1)^2 */
	/* a degree-53 product of two irreducible factors of degree 26 and 27 */
	uint64_t f26 = 0, f27 = 0;
	for (uint64_t c = (1ull << 26) | 1; !f26; c += 2)
		if (cairn_polynomial_irreducible(c))
			f26 = c;
	for (uint64_t c = (1ull << 27) | 1; !f27; c += 2)
		if (cairn_polynomial_irreducible(c))
			f27 = c;
	uint64_t prod = clmul(f26, f27);
	CHECK_INT(ref_degree(prod), 53);
	CHECK(!cairn_polynomial_irreducible(prod));
	CHECK(!cairn_polynomial_irreducible(clmul(clmul(0xb, 0xb), 0x13)));

	/* Count the irreducible polynomials of each degree 1..16 and compare with
	 * Gauss's formula N(n) = (1/n) sum over d|n of mu(d) 2^(n/d). */
	for (int n = 1; n <= 16; n++) {
		long long want = 0;
		for (int d = 1; d <= n; d++) {
			if (n % d)
				continue;
			int mu = 1, m = d;
			for (int q = 2; q <= m; q++) {
				if (m % q)
					continue;
				m /= q;
				if (m % q == 0) {
					mu = 0;
					break;
				}
				mu = -mu;
			}
			want += mu * (1ll << (n / d));
		}
		want /= n;
		long long got = 0;
		for (uint64_t p = 1ull << n; p < (2ull << n); p++)
			got += cairn_polynomial_irreducible(p);
		if (got != want)
			fprintf(stderr, "  degree %d\n", n);
		CHECK_INT(got, want);
	}
}

static void test_polynomial_random(void)
{
	uint64_t seen[8];
	for (int i = 0; i < 8; i++) {
		uint64_t p = 0;
		CHECK_OK(cairn_polynomial_random(&p));
		CHECK_INT(cairn_polynomial_degree(p), 53);
		CHECK(p & 1);
		CHECK(cairn_polynomial_irreducible(p));
		cairn_chunker_tables t;
		CHECK_OK(cairn_chunker_tables_init(&t, p));
		seen[i] = p;
	}
	int distinct = 0;
	for (int i = 1; i < 8; i++)
		distinct += seen[i] != seen[0];
	CHECK(distinct > 0);
}

static void test_tables_init_rejects(void)
{
	cairn_chunker_tables t;
	CHECK_INT(cairn_chunker_tables_init(&t, 0), CAIRN_EINVAL);
	CHECK_INT(cairn_chunker_tables_init(&t, 0x11b), CAIRN_EINVAL); /* degree 8 */
	CHECK(strstr(cairn_error_message(), "degree 8") != NULL);
	CHECK_INT(cairn_chunker_tables_init(&t, clmul(0x3f0293f5a7f421ull, 0x3)), CAIRN_EINVAL); /* 54 */
	CHECK_INT(cairn_chunker_tables_init(&t, (1ull << 53) | 1), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "not irreducible") != NULL);
	CHECK_INT(cairn_chunker_tables_init(&t, 0x337682faf5ca04ull), CAIRN_EINVAL); /* x | P */
	CHECK_INT(cairn_chunker_tables_init(&t, 0x211), 0);
	CHECK_INT(t.degree, 9);
	CHECK_INT(cairn_chunker_tables_init(NULL, 0x211), CAIRN_EINVAL);
}

/* out[b] and mod[b] against the bit-by-bit definition. */
static void test_tables_match_definition(void)
{
	static const uint64_t pols[] = { 0x337682faf5ca05ull, 0x2f3a1f69240b05ull,
		0x2448be2296b681ull, 0x25b468838dcb75ull, 0x211 };
	for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
		cairn_chunker_tables t;
		int bad = 0;
		CHECK_OK(cairn_chunker_tables_init(&t, pols[i]));
		CHECK(t.polynomial == pols[i]);
		for (unsigned b = 0; b < 256; b++) {
			unsigned char s[64] = { (unsigned char)b };
			bad += t.out[b] != ref_fp(pols[i], s, 64);
			/* b x^deg as 8 + deg bits: reduce bit by bit */
			uint64_t v = (uint64_t)b << t.degree;
			for (int bit = t.degree + 7; bit >= t.degree; bit--)
				if ((v >> bit) & 1)
					v ^= pols[i] << (bit - t.degree);
			bad += t.mod[b] != (v | ((uint64_t)b << t.degree));
		}
		CHECK_INT(bad, 0);
	}
}

/* The digest after any scan equals the fingerprint of the window computed
 * from scratch; window and wpos hold the last 64 bytes. */
static void test_roll_equals_rehash(void)
{
	static const uint64_t pols[] = { 0x2f3a1f69240b05ull, 0x25b468838dcb75ull, 0x211 };
	size_t n = 9 * MIB + 12345;
	unsigned char *p = random_data(77, n);
	/* a run of 0xff in the middle gives a MaxSize chunk */
	memset(p + 2 * MIB, 0xff, MAX_SIZE / 2);

	for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
		cairn_chunker_tables t;
		CHECK_OK(cairn_chunker_tables_init(&t, pols[i]));
		for (int round = 0; round < 3; round++) {
			lens got = { 0 };
			feeder f = { .mode = 2 };
			gen_init(&f.rng, 1000 + 10 * i + (uint64_t)round);
			CHECK_INT(chunk_file(&got, &t, p, n, &f, 1), 0);
			CHECK(got.n > 0);
			free(got.v);
		}
	}
	free(p);
}

/* Against ref_chunk on random data with zero and 0xff runs, in one piece and
 * in random pieces, for a degree-53 and a degree-9 polynomial. */
static void test_matches_reference_chunker(void)
{
	static const uint64_t pols[] = { 0x337682faf5ca05ull, 0x3f0293f5a7f421ull, 0x211 };
	size_t n = 40 * MIB + 777;
	unsigned char *p = random_data(4242, n);
	memset(p + 5 * MIB, 0, 3 * MIB + 5);
	memset(p + 17 * MIB, 0xff, 9 * MIB + 3);

	for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
		cairn_chunker_tables t;
		lens want = { 0 }, one = { 0 }, rnd = { 0 };
		feeder f1 = { .mode = 0 }, f2 = { .mode = 2 };
		gen_init(&f2.rng, 99 + i);
		CHECK_OK(cairn_chunker_tables_init(&t, pols[i]));
		ref_chunk(&want, &t, p, n);
		CHECK_INT(chunk_file(&one, &t, p, n, &f1, 0), 0);
		CHECK_INT(chunk_file(&rnd, &t, p, n, &f2, 0), 0);
		CHECK(want.n > 10);
		if (!lens_equal(&want, &one) || !lens_equal(&want, &rnd)) {
			fprintf(stderr, "  polynomial %#llx\n", (unsigned long long)pols[i]);
			print_lens("reference", &want);
			print_lens("one piece", &one);
			print_lens("random pieces", &rnd);
			CHECK(0);
		}
		free(want.v);
		free(one.v);
		free(rnd.v);
	}
	free(p);
}

/* A chunk fed in two calls, split at every offset around the places where
 * the scan changes mode: the chunk start, the end of the skipped prefix, the
 * priming bytes, the first tested byte and the 64 after it (read through the
 * ring), a content cut, and a MaxSize cut.  The chunker resets at every cut,
 * so each run starts at the chunk's start and stops at its cut. */
static void test_split_anywhere(void)
{
	cairn_chunker_tables t;
	size_t n = MAX_SIZE + 4 * MIB;
	unsigned char *p = random_data(5, n);
	lens want = { 0 };
	feeder whole = { .mode = 0 };

	CHECK_OK(cairn_chunker_tables_init(&t, 0x2448be2296b681ull));
	/* chunk 0 is a content cut of random data, chunk 1 a run of 0xff cut at MaxSize */
	CHECK_INT(chunk_file(&want, &t, p, n, &whole, 0), 0);
	size_t c1 = want.v[0];
	CHECK(c1 > MIN_SIZE + 200 && c1 < MAX_SIZE);
	memset(p + c1, 0xff, MAX_SIZE);
	free(want.v);
	want = (lens){ 0 };
	ref_chunk(&want, &t, p, n);
	CHECK(want.n >= 3 && want.v[0] == c1 && want.v[1] == MAX_SIZE);
	if (want.n < 3 || want.v[0] != c1 || want.v[1] != MAX_SIZE) {
		free(want.v);
		free(p);
		return;
	}

#if defined(__SANITIZE_ADDRESS__)
	const size_t wide = 5, narrow = 2;
#else
	const size_t wide = 66, narrow = 8;
#endif
	/* chunk index, offset in the chunk, spread either side */
	const struct { int chunk; size_t at, spread; } splits[] = {
		{ 0, 66, 66 }, { 0, MIN_SIZE - 64, wide }, { 0, MIN_SIZE, wide },
		{ 0, MIN_SIZE + 64, wide }, { 0, c1 - 1, wide },
		{ 1, MIN_SIZE - 64, narrow }, { 1, MIN_SIZE, narrow },
		{ 1, MAX_SIZE - 64, narrow }, { 1, MAX_SIZE - narrow - 1, narrow },
	};
	int mismatches = 0, runs = 0;
	for (size_t si = 0; si < sizeof(splits) / sizeof(splits[0]); si++) {
		size_t cs = splits[si].chunk ? c1 : 0, len = want.v[splits[si].chunk];
		for (size_t r = splits[si].at - splits[si].spread;
				r <= splits[si].at + splits[si].spread; r++) {
			cairn_chunker c;
			size_t off = cs, got = 0;
			int cut = 0;
			if (r == 0 || r >= len)
				continue;
			unsigned char *tail = detached_copy(p, cs + r, n - cs - r);
			cairn_chunker_reset(&c, &t);
			while (!cut && off < n) {
				size_t lim = off < cs + r ? cs + r : n;
				const unsigned char *src = off < cs + r ? p + off : tail + 64 + (off - cs - r);
				size_t k = cairn_chunker_scan(&c, src, lim - off, &cut);
				off += k;
				got += k;
			}
			free(tail);
			runs++;
			if (got != len && !mismatches++)
				fprintf(stderr, "  chunk %d split at +%zu: cut after %zu, want %zu\n",
					splits[si].chunk, r, got, len);
		}
	}
	CHECK_INT(mismatches, 0);
	CHECK(runs > 20);
	free(want.v);
	free(p);
}

static void test_scan_edge_calls(void)
{
	cairn_chunker_tables t;
	cairn_chunker c;
	int cut = 7;
	unsigned char zeros[4096] = { 0 };

	CHECK_OK(cairn_chunker_tables_init(&t, 0x2f3a1f69240b05ull));
	cairn_chunker_reset(&c, &t);
	CHECK_INT(cairn_chunker_scan(&c, zeros, 0, &cut), 0);
	CHECK_INT(cut, 0);
	/* zeros: 64 zero bytes fingerprint to 0, so every chunk is exactly MinSize */
	size_t total = 0, cuts = 0;
	while (total < 3 * MIN_SIZE) {
		size_t k = cairn_chunker_scan(&c, zeros, sizeof(zeros), &cut);
		total += k;
		if (cut) {
			CHECK_INT(total % MIN_SIZE, 0);
			cuts++;
		}
	}
	CHECK_INT(cuts, 3);
	CHECK_INT(c.chunk_len, 0);
}

/* ---------------------------------------------------- restic's vectors */

static json_t *load_vectors(void)
{
	const char *env = getenv("CAIRN_TEST_VECTORS");
	char path[4096];
	struct stat st;
	json_error_t jerr;
	json_t *root;

	if (env && *env) {
		if (stat(env, &st) == 0 && S_ISDIR(st.st_mode))
			snprintf(path, sizeof(path), "%s/restic-chunker.json", env);
		else
			snprintf(path, sizeof(path), "%s", env);
	} else {
		snprintf(path, sizeof(path), "tests/vectors/restic-chunker.json");
	}
	root = json_load_file(path, 0, &jerr);
	if (!root)
		fprintf(stderr, "  cannot load %s: %s (run from the repository root or set "
			"CAIRN_TEST_VECTORS)\n", path, jerr.text);
	return root;
}

static uint64_t json_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (uint64_t)json_integer_value(v) : UINT64_MAX;
}

static const char *case_name(json_t *c)
{
	const char *s = json_string_value(json_object_get(c, "name"));
	return s ? s : "";
}

static void test_restic_vectors(void)
{
	json_t *root = load_vectors();
	CHECK(root != NULL);
	if (!root)
		return;

	/* the JSON's own generator check */
	json_t *chk = json_object_get(json_object_get(root, "generator"), "check");
	const char *first = json_string_value(json_object_get(chk, "first_16_bytes_hex"));
	CHECK(first != NULL);
	if (first) {
		unsigned char b[16];
		char hex[33];
		gen g;
		gen_init(&g, json_u64(chk, "seed"));
		gen_fill(&g, b, 16);
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", b[i]);
		CHECK_STR(hex, first);
	}

	json_t *cases = json_object_get(root, "cases");
	size_t ncases = json_array_size(cases), run = 0, skipped = 0;
	CHECK_INT(ncases, 99);
	char *done = calloc(ncases ? ncases : 1, 1);
	cairn_sha256_ctx *sha = NULL;
	CHECK_OK(cairn_sha256_new(&sha));

	/* The 33 files are the same under each polynomial: build each once. */
	for (size_t i = 0; i < ncases && sha; i++) {
		json_t *ci = json_array_get(cases, i);
		const char *name = json_string_value(json_object_get(ci, "name"));
		if (done[i] || !name)
			continue;
		uint64_t seed = json_u64(ci, "seed"), plen = json_u64(ci, "prefix_len");
		uint64_t pbyte = json_u64(ci, "prefix_byte"), glen = json_u64(ci, "gen_bytes");
		uint64_t size = json_u64(ci, "size");
		const char *want_sha = json_string_value(json_object_get(ci, "sha256"));
		CHECK(size == plen + glen && pbyte < 256 && want_sha);
		if (size != plen + glen || pbyte >= 256 || !want_sha)
			break;
		if (size > VECTOR_MAX_FILE) {
			for (size_t j = i; j < ncases; j++)
				if (!done[j] && !strcmp(name, case_name(json_array_get(cases, j)))) {
					done[j] = 1;
					skipped++;
				}
			continue;
		}

		unsigned char *p = malloc(size ? size : 1);
		gen g;
		if (!p) {
			CHECK(p != NULL);
			break;
		}
		memset(p, (int)pbyte, plen);
		gen_init(&g, seed);
		/* generate in odd pieces to also exercise the streaming generator */
		for (size_t off = plen, k = 0; off < size; k++) {
			size_t step = odd_cycle[k % (sizeof(odd_cycle) / sizeof(odd_cycle[0]))];
			if (step > size - off)
				step = size - off;
			gen_fill(&g, p + off, step);
			off += step;
		}
		cairn_id id;
		char hex[CAIRN_ID_HEX_SIZE];
		for (size_t off = 0; off < size; off += 8 * MIB)
			cairn_sha256_update(sha, p + off, size - off < 8 * MIB ? size - off : 8 * MIB);
		cairn_sha256_final(&id, sha);
		cairn_id_to_hex(hex, &id);
		if (strcmp(hex, want_sha))
			fprintf(stderr, "  %s: generated file does not match its sha256\n", name);
		CHECK_STR(hex, want_sha);

		for (size_t j = i; j < ncases; j++) {
			json_t *cj = json_array_get(cases, j);
			if (done[j] || strcmp(name, case_name(cj)))
				continue;
			done[j] = 1;
			const char *pol_hex = json_string_value(json_object_get(cj, "polynomial"));
			uint64_t pol = pol_hex ? strtoull(pol_hex, NULL, 16) : 0;
			json_t *jchunks = json_object_get(cj, "chunks");
			lens want = { 0 };
			for (size_t k = 0; k < json_array_size(jchunks); k++)
				lens_push(&want, (size_t)json_integer_value(json_array_get(jchunks, k)));

			cairn_chunker_tables t;
			CHECK_OK(cairn_chunker_tables_init(&t, pol));
			/* one piece, and the odd cycle; random pieces for every third */
			for (int mode = 0; mode < 3; mode++) {
				if (mode == 2 && j % 3)
					continue;
				lens got = { 0 };
				feeder f = { .mode = mode };
				gen_init(&f.rng, j);
				CHECK_INT(chunk_file(&got, &t, p, size, &f, 0), 0);
				if (!lens_equal(&got, &want)) {
					fprintf(stderr, "  case %s polynomial %s feed mode %d\n", name,
						pol_hex, mode);
					print_lens("restic", &want);
					print_lens("cairn", &got);
					CHECK(0);
				}
				free(got.v);
			}
			free(want.v);
			run++;
		}
		free(p);
	}
	CHECK_INT(run + skipped, 99);
#if !defined(__SANITIZE_ADDRESS__)
	CHECK_INT(run, 99);
#endif
#if defined(__SANITIZE_ADDRESS__)
	printf("  restic vectors under ASan: %zu cases run, %zu skipped (files over %zu bytes)\n",
		run, skipped, (size_t)VECTOR_MAX_FILE);
#endif
	cairn_sha256_free(sha);
	free(done);
	json_decref(root);
}

UNIT_MAIN(test_generator_check, test_polynomial_degree, test_polynomial_irreducible,
	test_polynomial_random, test_tables_init_rejects, test_tables_match_definition,
	test_scan_edge_calls, test_roll_equals_rehash, test_matches_reference_chunker,
	test_split_anywhere, test_restic_vectors)
