/* chunker.c: restic's content-defined chunker and its GF(2) polynomials.
 *
 * The fingerprint of a byte string is the string read as a polynomial over
 * GF(2) (first byte most significant, bit 7 highest) reduced mod P.  The
 * chunker keeps the fingerprint of the last 64 bytes (the window) and cuts
 * after a byte when the low 20 bits of it are zero and the chunk is at least
 * MinSize (512 KiB) long, or when the chunk reaches MaxSize (8 MiB).  Every
 * chunk starts with a fresh window, exactly as restic resets its state.
 *
 * Invariants of a cairn_chunker between calls (chunk_len = n):
 *   - n < MinSize-64: nothing hashed yet; digest 0, window all zero.  These
 *     bytes can never end a chunk and never reach a tested window, so they are
 *     skipped without being read.
 *   - n >= MinSize-64: the window ring holds the last min(64, n-(MinSize-64))
 *     hashed bytes, oldest at window[wpos], preceded by zeros; digest is the
 *     fingerprint of the 64 ring bytes in that order.
 *   - n < MaxSize (a chunk of MaxSize bytes has already been cut).
 *
 * Speed: restic's one-byte step is a chain of dependent operations (shift,
 * table load, xor) that leaves most of the core idle.  Since the digest at any
 * position only depends on the 64 bytes before it, scan_direct() splits a
 * contiguous region into four lanes, primes lanes 1..3 from the 64 bytes
 * before their starts, and steps all four in lock-step so their chains
 * overlap.  The lowest lane with a candidate holds the earliest cut.  The
 * lanes take the byte leaving the window straight from the input
 * (data[i-64]) rather than from a ring; the ring is only used for the first
 * 64 bytes of a call and for the 64 priming bytes of a chunk (the slow path),
 * and is refilled from the input when a call returns mid-chunk.
 *
 * The tables are immutable after cairn_chunker_tables_init() and may be
 * shared between threads; a cairn_chunker belongs to one stream.
 */
#include <string.h>

#include <cairn/chunker.h>
#include <cairn/crypto.h>

#define WIN ((size_t)CAIRN_CHUNKER_WINDOW)
#define MIN_SIZE ((size_t)CAIRN_CHUNKER_MIN_SIZE)
#define MAX_SIZE ((size_t)CAIRN_CHUNKER_MAX_SIZE)
#define MASK ((uint64_t)CAIRN_CHUNKER_SPLIT_MASK)

/* Lane length of the main loop (4 lanes = 64 KiB per block) and the shortest
 * lane worth its 64 priming steps. */
#define LANE ((size_t)16384)
#define LANE_MIN ((size_t)512)

/* restic's draw limit for a random irreducible polynomial. */
#define RANDOM_POLY_TRIES 1000000

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* ---------------------------------------------------------------- GF(2) */

int cairn_polynomial_degree(uint64_t polynomial)
{
	return polynomial ? 63 - __builtin_clzll(polynomial) : -1;
}

/* x mod p, p != 0. */
static uint64_t pol_mod(uint64_t x, uint64_t p)
{
	int dp = cairn_polynomial_degree(p), dx;

	while ((dx = cairn_polynomial_degree(x)) >= dp)
		x ^= p << (dx - dp);
	return x;
}

static uint64_t pol_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t r = pol_mod(a, b);
		a = b;
		b = r;
	}
	return a;
}

/* a*b mod p for a, b already reduced (degree < deg p).  Horner over the bits
 * of b, reducing after every doubling, so no intermediate exceeds deg p + 1
 * bits: safe for every degree up to 63 without 128-bit products. */
static uint64_t pol_mulmod(uint64_t a, uint64_t b, uint64_t p)
{
	uint64_t top = (uint64_t)1 << cairn_polynomial_degree(p), r = 0;

	for (int i = cairn_polynomial_degree(b); i >= 0; i--) {
		r <<= 1;
		if (r & top)
			r ^= p;
		if ((b >> i) & 1)
			r ^= a;
	}
	return r;
}

/* Ben-Or: P of degree d is irreducible iff gcd(P, x^(2^i) - x mod P) == 1 for
 * every i in 1..d/2 (a factor of degree k <= d/2 would divide x^(2^k) - x). */
int cairn_polynomial_irreducible(uint64_t polynomial)
{
	int d = cairn_polynomial_degree(polynomial);
	uint64_t x, h;

	if (d < 1)
		return 0; /* 0 and 1 are not irreducible */
	x = pol_mod(2, polynomial);
	h = x;
	for (int i = 1; i <= d / 2; i++) {
		h = pol_mulmod(h, h, polynomial); /* h = x^(2^i) mod P */
		if (pol_gcd(polynomial, h ^ x) != 1)
			return 0;
	}
	return 1;
}

int cairn_polynomial_random(uint64_t *out)
{
	int r = 0;

	if (!out) {
		r = cairn_error_set(CAIRN_EINVAL, "no output for the random polynomial");
		goto done;
	}
	for (int tries = 0; tries < RANDOM_POLY_TRIES; tries++) {
		uint64_t f;
		if ((r = cairn_random_bytes(&f, sizeof(f))) < 0)
			goto done;
		/* Like restic: keep bits 0..53, force degree 53 and a constant term. */
		f &= ((uint64_t)1 << 54) - 1;
		f |= ((uint64_t)1 << 53) | 1;
		if (cairn_polynomial_irreducible(f)) {
			*out = f;
			goto done;
		}
	}
	r = cairn_error_set(CAIRN_EIO, "no irreducible polynomial found in %d random draws",
		RANDOM_POLY_TRIES);
done:
	return r;
}

/* -------------------------------------------------------------- tables */

int cairn_chunker_tables_init(cairn_chunker_tables *out, uint64_t polynomial)
{
	int r = 0, d = cairn_polynomial_degree(polynomial);

	if (!out) {
		r = cairn_error_set(CAIRN_EINVAL, "no chunker tables to initialise");
		goto done;
	}
	if (d < 9 || d > 53) {
		r = cairn_error_set(CAIRN_EINVAL,
			"chunker polynomial %#llx has degree %d, want 9..53",
			(unsigned long long)polynomial, d);
		goto done;
	}
	if (!cairn_polynomial_irreducible(polynomial)) {
		r = cairn_error_set(CAIRN_EINVAL, "chunker polynomial %#llx is not irreducible",
			(unsigned long long)polynomial);
		goto done;
	}
	out->polynomial = polynomial;
	out->degree = d;
	for (unsigned b = 0; b < 256; b++) {
		/* fingerprint of b followed by 63 zero bytes; h < 2^53 so h << 8 fits */
		uint64_t h = pol_mod(b, polynomial);
		for (size_t i = 0; i < WIN - 1; i++)
			h = pol_mod(h << 8, polynomial);
		out->out[b] = h;
		/* (b x^d mod P) | b x^d: one xor both reduces and clears the 8 bits
		 * that the shift pushed above the degree */
		out->mod[b] = pol_mod((uint64_t)b << d, polynomial) | ((uint64_t)b << d);
	}
done:
	return r;
}

/* ------------------------------------------------------------- scanning */

void cairn_chunker_reset(cairn_chunker *c, const cairn_chunker_tables *t)
{
	c->tables = t;
	c->digest = 0;
	c->chunk_len = 0;
	c->wpos = 0;
	memset(c->window, 0, sizeof(c->window));
}

/* Fingerprint of the 64 bytes at p, from scratch. */
static ALWAYS_INLINE uint64_t prime(const uint64_t *mod, unsigned shift, const unsigned char *p)
{
	uint64_t d = 0;

	for (size_t i = 0; i < WIN; i++)
		d = ((d << 8) | p[i]) ^ mod[d >> shift];
	return d;
}

/* Roll one byte: `old` leaves the window, `in` enters it. */
#define ROLL(d, old, in) do { \
	uint64_t x_ = (d) ^ out[(old)]; \
	(d) = ((x_ << 8) | (in)) ^ mod[x_ >> shift]; \
} while (0)

/* Test positions [a, b) of p, every one of them a possible cut (chunk length
 * >= MinSize there), taking the leaving byte from p[i-64]: requires a >= 64
 * and p[a-64 .. a-1] to be the hashed bytes of the current chunk.  *digest is
 * the fingerprint of p[a-64 .. a-1] on entry and of p[b-64 .. b-1] on return
 * when there is no cut.  Returns the index just past the cut byte, or 0. */
static ALWAYS_INLINE size_t scan_direct(const cairn_chunker_tables *t, unsigned shift,
	const unsigned char *p, size_t a, size_t b, uint64_t *digest)
{
	const uint64_t *out = t->out, *mod = t->mod;
	uint64_t d = *digest;

	while (b - a >= 4 * LANE_MIN) {
		size_t lane = (b - a) / 4 < LANE ? (b - a) / 4 : LANE;
		const unsigned char *q = p + a, *o = q - WIN; /* o[j] leaves when q[j] enters */
		uint64_t d0 = d;
		uint64_t d1 = prime(mod, shift, o + lane);
		uint64_t d2 = prime(mod, shift, o + 2 * lane);
		uint64_t d3 = prime(mod, shift, o + 3 * lane);
		size_t j = 0, best_j = 0;
		int best = 4; /* lowest lane with a candidate; 4 = none */

		for (;;) {
			for (; j < lane; j++) {
				ROLL(d0, o[j], q[j]);
				ROLL(d1, o[j + lane], q[j + lane]);
				ROLL(d2, o[j + 2 * lane], q[j + 2 * lane]);
				ROLL(d3, o[j + 3 * lane], q[j + 3 * lane]);
				if (!(d0 & MASK) || !(d1 & MASK) || !(d2 & MASK) || !(d3 & MASK))
					break;
			}
			if (j == lane)
				break;
			/* Rare: some lane has a candidate at step j.  Keep the lowest
			 * lane; lanes above it no longer matter but stepping them is
			 * cheaper than leaving the loop. */
			int k = !(d0 & MASK) ? 0 : !(d1 & MASK) ? 1 : !(d2 & MASK) ? 2 : 3;
			if (k < best) {
				best = k;
				best_j = j;
			}
			if (best == 0)
				break;
			j++;
		}
		if (best < 4)
			return a + (size_t)best * lane + best_j + 1;
		d = d3;
		a += 4 * lane;
	}
	for (; a < b; a++) {
		ROLL(d, p[a - WIN], p[a]);
		if (!(d & MASK))
			return a + 1;
	}
	*digest = d;
	return 0;
}

/* Degree 53 (every restic repository) gets a copy with a constant shift. */
static size_t scan_direct_53(const cairn_chunker_tables *t, const unsigned char *p,
	size_t a, size_t b, uint64_t *digest)
{
	return scan_direct(t, 53 - 8, p, a, b, digest);
}

static size_t scan_direct_any(const cairn_chunker_tables *t, const unsigned char *p,
	size_t a, size_t b, uint64_t *digest)
{
	return scan_direct(t, (unsigned)t->degree - 8, p, a, b, digest);
}

size_t cairn_chunker_scan(cairn_chunker *c, const unsigned char *data, size_t len,
	int *cut_out)
{
	const cairn_chunker_tables *t = c->tables;
	const uint64_t *out = t->out, *mod = t->mod;
	unsigned shift = (unsigned)t->degree - 8;
	size_t n = c->chunk_len, pos = 0, end;
	uint64_t d;
	unsigned w;

	*cut_out = 0;
	/* 1. The skipped prefix: bytes that can neither end the chunk nor be in
	 *    the window at any tested position. */
	if (n < MIN_SIZE - WIN) {
		size_t skip = MIN_SIZE - WIN - n;
		if (skip >= len) {
			c->chunk_len = n + len;
			return len;
		}
		pos = skip;
		n += skip;
	}

	/* 2. Slow path through the ring: the 64 priming bytes of the chunk (the
	 *    last of them is the first tested position) and the first 64 bytes of
	 *    this call, whose leaving bytes are in the ring, not in `data`. */
	d = c->digest;
	w = c->wpos;
	end = n < MIN_SIZE ? pos + (MIN_SIZE - n) : pos;
	if (end < WIN)
		end = WIN;
	if (end > len)
		end = len;
	while (pos < end) {
		unsigned char in = data[pos++];
		ROLL(d, c->window[w], in);
		c->window[w] = in;
		w = (w + 1) & (WIN - 1);
		n++;
		if (n >= MIN_SIZE && (!(d & MASK) || n >= MAX_SIZE))
			goto cut;
	}

	/* 3. Fast path: here n >= MinSize and pos >= 64, or the call is used up. */
	if (pos < len) {
		size_t room = MAX_SIZE - n, stop = len - pos < room ? len : pos + room, at;
		at = t->degree == 53 ? scan_direct_53(t, data, pos, stop, &d)
			: scan_direct_any(t, data, pos, stop, &d);
		if (at) {
			pos = at;
			goto cut;
		}
		n += stop - pos;
		pos = stop;
		if (n >= MAX_SIZE)
			goto cut;
		/* Mid-chunk: leave the last 64 bytes in the ring for the next call. */
		memcpy(c->window, data + pos - WIN, WIN);
		w = 0;
	}
	c->digest = d;
	c->wpos = w;
	c->chunk_len = n;
	return len;

cut:
	cairn_chunker_reset(c, t);
	*cut_out = 1;
	return pos;
}
