/* id.h: 32-byte SHA-256 identifiers (blob, pack, snapshot, index IDs) and hex. */
#ifndef CAIRN_ID_H
#define CAIRN_ID_H

#include <stddef.h>
#include <string.h>
#include "error.h"

#define CAIRN_ID_SIZE 32
#define CAIRN_ID_HEX_SIZE 65 /* 64 hex chars + NUL */

typedef struct cairn_id {
	unsigned char bytes[CAIRN_ID_SIZE];
} cairn_id;

/* Lowercase hex, NUL-terminated. */
CAIRN_API void cairn_id_to_hex(char out[CAIRN_ID_HEX_SIZE], const cairn_id *id);
/* Parse exactly 64 hex chars (either case).  CAIRN_EINVAL otherwise. */
CAIRN_API int cairn_id_from_hex(cairn_id *out, const char *hex);
/* Same, for a string of known length (must be 64). */
CAIRN_API int cairn_id_from_hex_n(cairn_id *out, const char *hex, size_t len);
/* 1 if `s` is 64 lowercase-or-uppercase hex chars and nothing else. */
CAIRN_API int cairn_id_is_hex(const char *s);

static inline int cairn_id_equal(const cairn_id *a, const cairn_id *b)
{
	return memcmp(a->bytes, b->bytes, CAIRN_ID_SIZE) == 0;
}
static inline int cairn_id_is_zero(const cairn_id *a)
{
	static const cairn_id zero;
	return memcmp(a->bytes, zero.bytes, CAIRN_ID_SIZE) == 0;
}

/* SHA-256 of a buffer (OpenSSL EVP; SHA-NI where the CPU has it). */
CAIRN_API void cairn_sha256(cairn_id *out, const void *data, size_t len);

/* Incremental SHA-256 (for whole packs streamed out). */
typedef struct cairn_sha256_ctx cairn_sha256_ctx;
CAIRN_API int cairn_sha256_new(cairn_sha256_ctx **out);
CAIRN_API void cairn_sha256_update(cairn_sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and resets the context for reuse. */
CAIRN_API void cairn_sha256_final(cairn_id *out, cairn_sha256_ctx *ctx);
CAIRN_API void cairn_sha256_free(cairn_sha256_ctx *ctx);

#endif
