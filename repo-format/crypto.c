/* crypto.c: restic's authenticated encryption, scrypt key derivation,
 * randomness and base64 (include/cairn/crypto.h, restic-format.md §2-§3).
 *
 * A sealed message is IV(16) || AES-256-CTR(encrypt, IV, plain) || MAC(16).
 * The IV is the whole initial 128-bit big-endian counter block (OpenSSL's
 * EVP_aes_256_ctr does exactly this).  The MAC is Poly1305 over the
 * ciphertext only, keyed with r_masked || AES-128-ECB(mac_k, IV).  Opening
 * checks the MAC in constant time before anything is decrypted.
 *
 * Invariants and performance:
 * - The three OpenSSL algorithm objects (AES-256-CTR, AES-128-ECB,
 *   Poly1305) are fetched once per process under pthread_once and are
 *   read-only afterwards.
 * - Each thread keeps its own three contexts (cipher, ECB, MAC), created on
 *   first use and freed by a pthread key destructor when the thread exits,
 *   so seal/open allocate nothing on the hot path and need no locks.  A
 *   context keeps the key schedule of the last message its thread handled
 *   until the next message or thread exit; the master key itself stays in
 *   memory for the life of a repository anyway.
 * - Inputs larger than INT_MAX are fed to the cipher in slices (the CTR
 *   counter carries across EVP updates).
 * - Base64 is implemented here, strict: standard alphabet, '=' padding
 *   required, nothing else allowed (no whitespace).  As in Go's
 *   base64.StdEncoding, unused low bits of the last symbol are not checked.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <cairn/crypto.h>

/* Poly1305 r clamp (restic-format.md §2). */
static const unsigned char r_mask[16] = {
	0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
	0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
};

/* scrypt memory cap: 1 GiB for V plus room for B (restic's own calibration
 * stays at about 60 MiB; this only stops hostile key files). */
#define SCRYPT_MAXMEM (((uint64_t)1 << 30) + ((uint64_t)1 << 24))

/* Largest slice handed to one EVP_EncryptUpdate call (a multiple of 16). */
#define CIPHER_SLICE ((size_t)1 << 30)

/* ---- process-wide algorithm objects, fetched once ---- */

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *alg_ctr;
static EVP_CIPHER *alg_ecb;
static EVP_MAC *alg_poly;
static pthread_key_t tls_key;
static int algs_ok;

/* IVs are drawn from a per-thread pool filled by one RAND_bytes call per
 * IV_POOL_SIZE / 16 blobs: each call costs OpenSSL's DRBG locking and fork
 * check (a getpid system call), which showed in backups of small files.
 * A fork makes every pool stale (fork_generation), so a child never reuses
 * an IV its parent drew. */
#define IV_POOL_SIZE 1024

struct tls_ctx {
	EVP_CIPHER_CTX *ctr;
	EVP_CIPHER_CTX *ecb;
	EVP_MAC_CTX *mac;
	unsigned char iv_pool[IV_POOL_SIZE];
	size_t iv_used;             /* bytes of iv_pool handed out */
	unsigned long iv_generation;
};

static atomic_ulong fork_generation = 1;

static void on_fork_child(void)
{
	atomic_fetch_add(&fork_generation, 1);
}

/* Fast path to this thread's contexts; the pthread key owns them. */
static _Thread_local struct tls_ctx *tls_cached;

/* Free a thread's contexts; runs at thread exit (pthread key destructor). */
static void tls_free(void *p)
{
	struct tls_ctx *t = p;
	if (!t)
		return;
	if (tls_cached == t)
		tls_cached = NULL; /* a later destructor may still seal: start afresh */
	EVP_CIPHER_CTX_free(t->ctr);
	EVP_CIPHER_CTX_free(t->ecb);
	EVP_MAC_CTX_free(t->mac);
	OPENSSL_free(t);
}

static void algs_init(void)
{
	alg_ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
	alg_ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
	alg_poly = EVP_MAC_fetch(NULL, "POLY1305", NULL);
	if (!alg_ctr || !alg_ecb || !alg_poly)
		return;
	if (pthread_key_create(&tls_key, tls_free) != 0)
		return;
	if (pthread_atfork(NULL, NULL, on_fork_child) != 0)
		return;
	algs_ok = 1;
}

/* Borrow this thread's contexts (owned by the thread, freed at its exit). */
static int thread_ctx(struct tls_ctx **out)
{
	struct tls_ctx *t = NULL;

	if (tls_cached) {
		*out = tls_cached;
		return 0;
	}
	pthread_once(&algs_once, algs_init);
	if (!algs_ok)
		return cairn_error_set(CAIRN_EUNSUPPORTED,
			"openssl lacks aes-256-ctr, aes-128-ecb or poly1305");
	t = OPENSSL_zalloc(sizeof(*t));
	if (!t)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate crypto context");
	t->iv_used = IV_POOL_SIZE; /* empty: filled on first use */
	t->ctr = EVP_CIPHER_CTX_new();
	t->ecb = EVP_CIPHER_CTX_new();
	t->mac = EVP_MAC_CTX_new(alg_poly);
	if (!t->ctr || !t->ecb || !t->mac || pthread_setspecific(tls_key, t) != 0) {
		tls_free(t);
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate crypto context");
	}
	tls_cached = t;
	*out = t;
	return 0;
}

/* ---- randomness and keys ---- */

/* Fills the caller's out; nothing is allocated. */
int cairn_random_bytes(void *out, size_t len)
{
	unsigned char *p = out;

	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;
		if (RAND_bytes(p, n) != 1)
			return cairn_error_set(CAIRN_EIO, "cannot draw random bytes");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void mask_r(unsigned char r[16])
{
	for (int i = 0; i < 16; i++)
		r[i] &= r_mask[i];
}

/* Fills the caller's *out (wiped again if drawing fails); caller wipes it
 * with cairn_key_wipe when done. */
int cairn_key_generate(cairn_key *out)
{
	int r;

	do {
		if ((r = cairn_random_bytes(out, sizeof(*out))) < 0) {
			cairn_key_wipe(out);
			return r;
		}
		mask_r(out->mac_r);
	} while (!cairn_key_valid(out));
	return 0;
}

void cairn_key_wipe(cairn_key *key)
{
	if (key)
		OPENSSL_cleanse(key, sizeof(*key));
}

int cairn_key_valid(const cairn_key *key)
{
	return key && !all_zero(key->encrypt, sizeof(key->encrypt)) &&
		!all_zero(key->mac_k, sizeof(key->mac_k)) &&
		!all_zero(key->mac_r, sizeof(key->mac_r));
}

/* ---- seal / open ---- */

/* A fresh random IV (never all zero) from this thread's pool. */
static int draw_iv(unsigned char iv[CAIRN_CRYPTO_IV_SIZE], struct tls_ctx *t)
{
	unsigned long gen = atomic_load(&fork_generation);
	int r;

	do {
		if (t->iv_generation != gen || t->iv_used + CAIRN_CRYPTO_IV_SIZE > IV_POOL_SIZE) {
			if ((r = cairn_random_bytes(t->iv_pool, IV_POOL_SIZE)) < 0)
				return r;
			t->iv_used = 0;
			t->iv_generation = gen;
		}
		memcpy(iv, t->iv_pool + t->iv_used, CAIRN_CRYPTO_IV_SIZE);
		t->iv_used += CAIRN_CRYPTO_IV_SIZE;
	} while (all_zero(iv, CAIRN_CRYPTO_IV_SIZE));
	return 0;
}

/* Poly1305-AES tag of `ct` under key and iv into tag[16]. */
static int compute_mac(unsigned char tag[16], struct tls_ctx *t, const cairn_key *key,
	const unsigned char iv[16], const unsigned char *ct, size_t len)
{
	unsigned char otk[32]; /* one-time Poly1305 key: r || s */
	size_t taglen = 0;
	int outl = 0, r = 0;

	memcpy(otk, key->mac_r, 16);
	mask_r(otk);
	if (EVP_EncryptInit_ex2(t->ecb, alg_ecb, key->mac_k, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(t->ecb, 0) != 1 ||
	    EVP_EncryptUpdate(t->ecb, otk + 16, &outl, iv, 16) != 1 || outl != 16) {
		r = cairn_error_set(CAIRN_EIO, "aes-128 failed while computing mac");
		goto out;
	}
	if (EVP_MAC_init(t->mac, otk, sizeof(otk), NULL) != 1 ||
	    (len > 0 && EVP_MAC_update(t->mac, ct, len) != 1) ||
	    EVP_MAC_final(t->mac, tag, &taglen, 16) != 1 || taglen != 16) {
		r = cairn_error_set(CAIRN_EIO, "poly1305 failed");
		goto out;
	}
out:
	OPENSSL_cleanse(otk, sizeof(otk));
	return r;
}

/* AES-256-CTR of len bytes from in to out (may be equal) starting at iv. */
static int ctr_xor(struct tls_ctx *t, const cairn_key *key, const unsigned char iv[16],
	unsigned char *out, const unsigned char *in, size_t len)
{
	if (EVP_EncryptInit_ex2(t->ctr, alg_ctr, key->encrypt, iv, NULL) != 1)
		return cairn_error_set(CAIRN_EIO, "aes-256-ctr init failed");
	while (len > 0) {
		size_t n = len > CIPHER_SLICE ? CIPHER_SLICE : len;
		int outl = 0;
		if (EVP_EncryptUpdate(t->ctr, out, &outl, in, (int)n) != 1 || (size_t)outl != n)
			return cairn_error_set(CAIRN_EIO, "aes-256-ctr failed");
		out += n;
		in += n;
		len -= n;
	}
	return 0;
}

/* Writes IV || ciphertext || MAC into the caller's out (len + 32 bytes);
 * borrows key and plain for the call only. */
int cairn_crypto_seal(unsigned char *out, const cairn_key *key, const void *plain, size_t len)
{
	struct tls_ctx *t = NULL;
	unsigned char *iv = out, *ct = out + CAIRN_CRYPTO_IV_SIZE;
	int r;

	if (!out || !key || (!plain && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "seal: missing argument");
	if (len > SIZE_MAX - CAIRN_CRYPTO_OVERHEAD)
		return cairn_error_set(CAIRN_EINVAL, "seal: message too large");
	if (!cairn_key_valid(key))
		return cairn_error_set(CAIRN_EINVAL, "seal: invalid key");
	if ((r = thread_ctx(&t)) < 0)
		return r;
	if ((r = draw_iv(iv, t)) < 0)
		return r;
	if ((r = ctr_xor(t, key, iv, ct, plain, len)) < 0)
		return r;
	return compute_mac(ct + len, t, key, iv, ct, len);
}

/* Verifies first, then writes len - 32 plaintext bytes into the caller's
 * out (nothing is written when verification fails). */
int cairn_crypto_open(unsigned char *out, const cairn_key *key, const void *sealed, size_t len)
{
	const unsigned char *in = sealed;
	unsigned char iv[CAIRN_CRYPTO_IV_SIZE], tag[CAIRN_CRYPTO_MAC_SIZE];
	struct tls_ctx *t = NULL;
	size_t ctlen;
	int r;

	if (!key || !sealed)
		return cairn_error_set(CAIRN_EINVAL, "open: missing argument");
	if (len < CAIRN_CRYPTO_OVERHEAD)
		return cairn_error_set(CAIRN_EINVAL, "ciphertext too short: %zu bytes", len);
	if (!out && len > CAIRN_CRYPTO_OVERHEAD)
		return cairn_error_set(CAIRN_EINVAL, "open: missing output");
	if (all_zero(in, CAIRN_CRYPTO_IV_SIZE))
		return cairn_error_set(CAIRN_EINVAL, "invalid nonce: all zero");
	if (!cairn_key_valid(key))
		return cairn_error_set(CAIRN_EINVAL, "open: invalid key");
	if ((r = thread_ctx(&t)) < 0)
		return r;
	ctlen = len - CAIRN_CRYPTO_OVERHEAD;
	/* Copy the IV: with in-place decryption (out == sealed + 16) the body
	 * is overwritten, and the IV must not be read from it afterwards. */
	memcpy(iv, in, sizeof(iv));
	if ((r = compute_mac(tag, t, key, iv, in + CAIRN_CRYPTO_IV_SIZE, ctlen)) < 0)
		return r;
	if (CRYPTO_memcmp(tag, in + len - CAIRN_CRYPTO_MAC_SIZE, sizeof(tag)) != 0)
		return cairn_error_set(CAIRN_ECORRUPT, "ciphertext verification failed");
	return ctr_xor(t, key, iv, out, in + CAIRN_CRYPTO_IV_SIZE, ctlen);
}

/* Appends to the caller's buffer; plain must not point into out (it may
 * be reallocated). */
int cairn_crypto_seal_buf(cairn_buf *out, const cairn_key *key, const void *plain, size_t len)
{
	int r;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "seal: missing output buffer");
	if (len > CAIRN_BUF_MAX - CAIRN_CRYPTO_OVERHEAD)
		return cairn_error_set(CAIRN_ENOMEM, "seal: message of %zu bytes too large", len);
	if ((r = cairn_buf_reserve(out, len + CAIRN_CRYPTO_OVERHEAD)) < 0)
		return r;
	if ((r = cairn_crypto_seal(out->data + out->len, key, plain, len)) < 0)
		return r;
	out->len += len + CAIRN_CRYPTO_OVERHEAD;
	return 0;
}

/* Replaces the caller's buffer contents (len 0 on failure); sealed must
 * not point into out. */
int cairn_crypto_open_buf(cairn_buf *out, const cairn_key *key, const void *sealed, size_t len)
{
	int r;

	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "open: missing output buffer");
	if (len < CAIRN_CRYPTO_OVERHEAD)
		return cairn_error_set(CAIRN_EINVAL, "ciphertext too short: %zu bytes", len);
	out->len = 0;
	if ((r = cairn_buf_reserve(out, len - CAIRN_CRYPTO_OVERHEAD)) < 0)
		return r;
	if ((r = cairn_crypto_open(out->data, key, sealed, len)) < 0)
		return r;
	out->len = len - CAIRN_CRYPTO_OVERHEAD;
	return 0;
}

/* ---- scrypt ---- */

/* Fills the caller's *out; the 64-byte intermediate is wiped here.
 * Parameters restic refuses give CAIRN_EINVAL; valid ones needing more
 * than SCRYPT_MAXMEM (or that OpenSSL cannot do) give CAIRN_EUNSUPPORTED. */
int cairn_kdf_scrypt(cairn_key *out, const char *password, size_t password_len,
	const unsigned char *salt, size_t salt_len, uint64_t N, uint32_t r, uint32_t p)
{
	unsigned char dk[64];
	uint64_t need;
	int rc = 0;

	if (!out || (!password && password_len > 0) || !salt)
		return cairn_error_set(CAIRN_EINVAL, "scrypt: missing argument");
	if (salt_len != 64)
		return cairn_error_set(CAIRN_EINVAL, "scrypt: salt is %zu bytes, want 64", salt_len);
	if (N <= 1 || (N & (N - 1)) != 0)
		return cairn_error_set(CAIRN_EINVAL, "scrypt: N=%llu is not a power of two > 1",
			(unsigned long long)N);
	if (r < 1 || p < 1 || (uint64_t)r * p >= ((uint64_t)1 << 30))
		return cairn_error_set(CAIRN_EINVAL, "scrypt: invalid r=%u p=%u", r, p);
	/* Memory OpenSSL needs: 128*r*(N+2) for V plus 128*r*p for B. */
	if (N > SCRYPT_MAXMEM / 128 / r)
		goto toobig;
	need = 128 * (uint64_t)r * (N + 2);
	if ((uint64_t)p > SCRYPT_MAXMEM / 128 / r || need > SCRYPT_MAXMEM - 128 * (uint64_t)r * p)
		goto toobig;
	if (EVP_PBE_scrypt(password ? password : "", password_len, salt, salt_len,
			N, r, p, SCRYPT_MAXMEM, dk, sizeof(dk)) != 1) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "scrypt failed for N=%llu r=%u p=%u",
			(unsigned long long)N, r, p);
		goto out;
	}
	memcpy(out->encrypt, dk, 32);
	memcpy(out->mac_k, dk + 32, 16);
	memcpy(out->mac_r, dk + 48, 16);
	mask_r(out->mac_r);
	goto out;
toobig:
	rc = cairn_error_set(CAIRN_EUNSUPPORTED,
		"scrypt: N=%llu r=%u p=%u needs more than %llu MiB", (unsigned long long)N, r, p,
		(unsigned long long)(SCRYPT_MAXMEM >> 20));
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	return rc;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends the encoding to the caller's buffer. */
int cairn_base64_encode(cairn_buf *out, const void *data, size_t len)
{
	const unsigned char *in = data;
	unsigned char *o;
	size_t olen, i;
	int r;

	if (!out || (!data && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "base64: missing argument");
	if (len > CAIRN_BUF_MAX / 4 * 3)
		return cairn_error_set(CAIRN_ENOMEM, "base64: %zu bytes too large", len);
	olen = (len + 2) / 3 * 4;
	if ((r = cairn_buf_reserve(out, olen)) < 0)
		return r;
	o = out->data + out->len;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = (unsigned char)b64_alphabet[v >> 18];
		*o++ = (unsigned char)b64_alphabet[(v >> 12) & 63];
		*o++ = (unsigned char)b64_alphabet[(v >> 6) & 63];
		*o++ = (unsigned char)b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		*o++ = (unsigned char)b64_alphabet[v >> 18];
		*o++ = (unsigned char)b64_alphabet[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = (unsigned char)b64_alphabet[v >> 18];
		*o++ = (unsigned char)b64_alphabet[(v >> 12) & 63];
		*o++ = (unsigned char)b64_alphabet[(v >> 6) & 63];
		*o++ = '=';
	}
	out->len += olen;
	return 0;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Appends the decoded bytes to the caller's buffer; on error nothing is
 * appended (out->len unchanged). */
int cairn_base64_decode(cairn_buf *out, const char *text, size_t len)
{
	const unsigned char *in = (const unsigned char *)text;
	size_t start, olen, pad = 0;
	unsigned char *o;
	int r;

	if (!out || (!text && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "base64: missing argument");
	if (len % 4 != 0)
		return cairn_error_set(CAIRN_EINVAL, "base64: length %zu is not a multiple of 4", len);
	if (len > 0 && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	olen = len / 4 * 3 - pad;
	start = out->len;
	if ((r = cairn_buf_reserve(out, olen)) < 0)
		return r;
	o = out->data + start;
	for (size_t i = 0; i < len; i += 4) {
		int last = i + 4 == len;
		int v0 = b64_value(in[i]), v1 = b64_value(in[i + 1]);
		int v2 = (last && pad == 2) ? 0 : b64_value(in[i + 2]);
		int v3 = (last && pad >= 1) ? 0 : b64_value(in[i + 3]);
		uint32_t v;

		if (v0 < 0 || v1 < 0 || v2 < 0 || v3 < 0)
			return cairn_error_set(CAIRN_EINVAL, "base64: invalid character near offset %zu", i);
		v = (uint32_t)v0 << 18 | (uint32_t)v1 << 12 | (uint32_t)v2 << 6 | (uint32_t)v3;
		*o++ = (unsigned char)(v >> 16);
		if (!last || pad < 2)
			*o++ = (unsigned char)(v >> 8);
		if (!last || pad < 1)
			*o++ = (unsigned char)v;
	}
	out->len = start + olen;
	return 0;
}
