/* crypto.h: restic's authenticated encryption, key derivation and randomness.
 *
 * Ciphertext = IV(16) || AES-256-CTR(encrypt, IV, plain) || Poly1305-AES MAC(16)
 * over the ciphertext only, with the one-time key r_masked || AES-128(mac_k, IV).
 * See repo-format/SPEC.md §2.  All functions are thread-safe.
 */
#ifndef CAIRN_CRYPTO_H
#define CAIRN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"

#define CAIRN_CRYPTO_IV_SIZE 16
#define CAIRN_CRYPTO_MAC_SIZE 16
#define CAIRN_CRYPTO_OVERHEAD 32 /* IV + MAC */

typedef struct cairn_key {
	unsigned char encrypt[32]; /* AES-256 key */
	unsigned char mac_k[16];   /* AES-128 key making the Poly1305 s */
	unsigned char mac_r[16];   /* Poly1305 r, stored masked */
} cairn_key;

/* Fill with random bytes from the OS CSPRNG (OpenSSL RAND_bytes). */
CAIRN_API int cairn_random_bytes(void *out, size_t len);

/* A fresh random master key, r masked. */
CAIRN_API int cairn_key_generate(cairn_key *out);

/* Zero the key material (explicit_bzero / OPENSSL_cleanse). */
CAIRN_API void cairn_key_wipe(cairn_key *key);

/* 1 if the key is usable (no all-zero part), else 0. */
CAIRN_API int cairn_key_valid(const cairn_key *key);

/* Seal `len` bytes of plain into out, which must hold len + 32 bytes.
 * A fresh random IV is drawn.  `out` may not overlap `plain`. */
CAIRN_API int cairn_crypto_seal(unsigned char *out, const cairn_key *key,
	const void *plain, size_t len);

/* Verify the MAC (constant time) and decrypt.  out must hold len - 32 bytes;
 * out may equal sealed + 16 (in-place decrypt of the body).
 * CAIRN_ECORRUPT when the MAC does not match (wrong key or damaged data),
 * CAIRN_EINVAL when len < 32 or the IV is all zero. */
CAIRN_API int cairn_crypto_open(unsigned char *out, const cairn_key *key,
	const void *sealed, size_t len);

/* Convenience: seal into a buffer (appended). */
CAIRN_API int cairn_crypto_seal_buf(cairn_buf *out, const cairn_key *key,
	const void *plain, size_t len);
/* Convenience: open into a buffer (replaces contents). */
CAIRN_API int cairn_crypto_open_buf(cairn_buf *out, const cairn_key *key,
	const void *sealed, size_t len);

/* scrypt(password, salt, N, r, p, 64 bytes) split into a user key
 * (bytes 0..31 encrypt, 32..47 mac_k, 48..63 mac_r masked).
 * CAIRN_EINVAL for parameters restic would refuse. */
CAIRN_API int cairn_kdf_scrypt(cairn_key *out, const char *password, size_t password_len,
	const unsigned char *salt, size_t salt_len, uint64_t N, uint32_t r, uint32_t p);

/* Standard base64 with '=' padding.  Decode rejects bad input with CAIRN_EINVAL. */
CAIRN_API int cairn_base64_encode(cairn_buf *out, const void *data, size_t len);
CAIRN_API int cairn_base64_decode(cairn_buf *out, const char *text, size_t len);

#endif
