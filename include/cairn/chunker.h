/* chunker.h: restic's content-defined chunker (Rabin fingerprint, 64-byte
 * window, 512 KiB min, 8 MiB max, cut when the low 20 bits are zero) and the
 * random irreducible polynomials it is keyed with.  Cuts are bit-for-bit the
 * ones restic makes for the same polynomial (tests/unit/test_chunker.c checks
 * restic's own vectors).
 */
#ifndef CAIRN_CHUNKER_H
#define CAIRN_CHUNKER_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

#define CAIRN_CHUNKER_WINDOW 64
#define CAIRN_CHUNKER_MIN_SIZE (512u * 1024u)
#define CAIRN_CHUNKER_MAX_SIZE (8u * 1024u * 1024u)
#define CAIRN_CHUNKER_SPLIT_MASK ((1u << 20) - 1)

/* Tables derived from one polynomial; immutable after init, shareable
 * between threads. */
typedef struct cairn_chunker_tables {
	uint64_t polynomial;
	int degree;
	uint64_t out[256]; /* fingerprint of byte b followed by 63 zero bytes */
	uint64_t mod[256]; /* reduction table indexed by the top byte */
} cairn_chunker_tables;

/* Build the tables.  CAIRN_EINVAL if the polynomial's degree is not in 9..53
 * (or it is not irreducible: restic refuses such configs). */
CAIRN_API int cairn_chunker_tables_init(cairn_chunker_tables *out, uint64_t polynomial);

/* Per-stream state; a value type, one per file being cut (not shared). */
typedef struct cairn_chunker {
	const cairn_chunker_tables *tables;
	uint64_t digest;
	size_t chunk_len;  /* bytes of the current chunk seen so far */
	unsigned wpos;
	unsigned char window[CAIRN_CHUNKER_WINDOW];
} cairn_chunker;

/* Start a new stream (a new file). */
CAIRN_API void cairn_chunker_reset(cairn_chunker *c, const cairn_chunker_tables *t);

/* Scan `len` bytes that continue the current chunk.  Returns the number of
 * bytes that belong to the current chunk: if that is < len, or == len with
 * *cut_out set to 1, the chunk ends after those bytes and the state is ready
 * for the next chunk.  With *cut_out == 0, all `len` bytes were consumed and
 * the chunk continues.  At end of stream, whatever the caller has
 * accumulated (if anything) is the last chunk. */
CAIRN_API size_t cairn_chunker_scan(cairn_chunker *c, const unsigned char *data, size_t len,
	int *cut_out);

/* 1 if `polynomial` is irreducible over GF(2), else 0. */
CAIRN_API int cairn_polynomial_irreducible(uint64_t polynomial);
/* Degree (index of the highest set bit), -1 for 0. */
CAIRN_API int cairn_polynomial_degree(uint64_t polynomial);
/* A random irreducible polynomial of degree 53, as restic draws one. */
CAIRN_API int cairn_polynomial_random(uint64_t *out);

#endif
