/* id.c: 32-byte ids, their hex form, and SHA-256 through OpenSSL's EVP
 * (which uses the SHA-NI instructions where the CPU has them). */
#include <stdlib.h>

#include <openssl/evp.h>

#include <cairn/id.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

void cairn_id_to_hex(char out[CAIRN_ID_HEX_SIZE], const cairn_id *id)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < CAIRN_ID_SIZE; i++) {
		out[2 * i] = digits[id->bytes[i] >> 4];
		out[2 * i + 1] = digits[id->bytes[i] & 15];
	}
	out[64] = '\0';
}

int cairn_id_from_hex_n(cairn_id *out, const char *hex, size_t len)
{
	if (len != 64)
		return cairn_error_set(CAIRN_EINVAL, "invalid id '%.*s': want 64 hex characters",
			(int)(len > 80 ? 80 : len), hex);
	for (int i = 0; i < CAIRN_ID_SIZE; i++) {
		int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return cairn_error_set(CAIRN_EINVAL, "invalid id '%.64s': not hex", hex);
		out->bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int cairn_id_from_hex(cairn_id *out, const char *hex)
{
	return cairn_id_from_hex_n(out, hex, strlen(hex));
}

int cairn_id_is_hex(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (i >= 64 || hexval((unsigned char)s[i]) < 0)
			return 0;
	return i == 64;
}

void cairn_sha256(cairn_id *out, const void *data, size_t len)
{
	unsigned int n = 0;
	/* EVP_Digest with the default provider's SHA-256; cannot fail for these inputs */
	EVP_Digest(data, len, out->bytes, &n, EVP_sha256(), NULL);
}

struct cairn_sha256_ctx {
	EVP_MD_CTX *md;
};

int cairn_sha256_new(cairn_sha256_ctx **out)
{
	cairn_sha256_ctx *c = calloc(1, sizeof(*c));
	if (!c || !(c->md = EVP_MD_CTX_new())) {
		free(c);
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate sha256 context");
	}
	EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
	*out = c;
	return 0;
}

void cairn_sha256_update(cairn_sha256_ctx *ctx, const void *data, size_t len)
{
	EVP_DigestUpdate(ctx->md, data, len);
}

void cairn_sha256_final(cairn_id *out, cairn_sha256_ctx *ctx)
{
	unsigned int n = 0;
	EVP_DigestFinal_ex(ctx->md, out->bytes, &n);
	EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL);
}

void cairn_sha256_free(cairn_sha256_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}
