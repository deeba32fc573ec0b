/* sigv4.c: AWS Signature Version 4 (include/cairn/sys/sigv4.h).
 *
 * Signing is three steps, each a pure function of its inputs:
 *   canonical request  = METHOD \n URI \n QUERY \n HEADERS \n SIGNED \n PAYLOAD-HASH
 *   string to sign     = "AWS4-HMAC-SHA256" \n DATE-TIME \n SCOPE \n hex(SHA-256(creq))
 *   signature          = hex(HMAC(k_signing, sts)), where k_signing chains
 *                        HMAC("AWS4"+secret, date) -> region -> service -> "aws4_request".
 * The URI and the query are canonicalised from what is sent (decode, then
 * encode once), so a caller that builds its URL with cairn_sigv4_uri_encode
 * signs exactly the bytes on the wire.  S3 does not normalise paths, and
 * neither do we (see the header).
 *
 * Invariants: no state, no locks; every allocation is released before
 * return; the derived keys and the "AWS4"+secret string are wiped from the
 * stack with OPENSSL_cleanse.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cairn/id.h>
#include <cairn/sys/sigv4.h>

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		|| c == '-' || c == '.' || c == '_' || c == '~';
}

int cairn_sigv4_uri_encode(cairn_buf *out, const char *s, size_t len, int keep_slash)
{
	CAIRN_TRY(cairn_buf_reserve(out, len * 3));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			out->data[out->len++] = c;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = (unsigned char)hex_upper[c >> 4];
			out->data[out->len++] = (unsigned char)hex_upper[c & 15];
		}
	}
	return 0;
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append the percent-decoding of s[0..len) then its SigV4 encoding.  A '%'
 * not followed by two hex digits is taken literally (and so encoded). */
static int reencode(cairn_buf *out, const char *s, size_t len)
{
	char *plain = malloc(len + 1);
	size_t n = 0;
	int r;

	if (!plain)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len
			&& (hi = hex_value((unsigned char)s[i + 1])) >= 0
			&& (lo = hex_value((unsigned char)s[i + 2])) >= 0) {
			plain[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			plain[n++] = s[i];
		}
	}
	r = cairn_sigv4_uri_encode(out, plain, n, 0);
	free(plain);
	return r;
}

/* Canonical URI: every segment between '/' decoded and re-encoded. */
static int canonical_uri(cairn_buf *out, const char *path)
{
	const char *p = path, *seg;

	if (!*p)
		return cairn_buf_puts(out, "/");
	for (;;) {
		seg = p;
		while (*p && *p != '/')
			p++;
		CAIRN_TRY(reencode(out, seg, (size_t)(p - seg)));
		if (!*p)
			return 0;
		CAIRN_TRY(cairn_buf_append(out, "/", 1));
		p++;
	}
}

typedef struct span {
	size_t off, len; /* into a shared buffer */
} span;

typedef struct query_param {
	span name, value;
} query_param;

static int span_cmp(const unsigned char *base, const span *a, const span *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(base + a->off, base + b->off, n) : 0;
	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* Sort parameters by encoded name, then value (insertion sort: queries are
 * short, and a stable sort keeps the order of identical pairs, which does
 * not change the output anyway).  `base` is the buffer the spans index. */
static void sort_params(query_param *v, size_t n, const unsigned char *base)
{
	for (size_t i = 1; i < n; i++) {
		query_param x = v[i];
		size_t j = i;
		while (j > 0) {
			int c = span_cmp(base, &v[j - 1].name, &x.name);
			if (c < 0 || (c == 0 && span_cmp(base, &v[j - 1].value, &x.value) <= 0))
				break;
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/* Canonical query string appended to out. */
static int canonical_query(cairn_buf *out, const char *query)
{
	cairn_buf pool = CAIRN_BUF_INIT;
	query_param *params = NULL;
	size_t n = 0, cap = 0;
	const char *p = query;
	int r = 0;

	while (p && *p) {
		const char *end = strchr(p, '&'), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 0) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				query_param *g = realloc(params, ncap * sizeof(*g));
				if (!g) {
					r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
					goto out;
				}
				params = g;
				cap = ncap;
			}
			eq = memchr(p, '=', len);
			params[n].name.off = pool.len;
			if ((r = reencode(&pool, p, eq ? (size_t)(eq - p) : len)) < 0)
				goto out;
			params[n].name.len = pool.len - params[n].name.off;
			params[n].value.off = pool.len;
			if (eq && (r = reencode(&pool, eq + 1, len - (size_t)(eq + 1 - p))) < 0)
				goto out;
			params[n].value.len = pool.len - params[n].value.off;
			n++;
		}
		p = end ? end + 1 : NULL;
	}
	sort_params(params, n, pool.data);
	for (size_t i = 0; i < n; i++) {
		if ((i && (r = cairn_buf_append(out, "&", 1)) < 0)
			|| (r = cairn_buf_append(out, pool.data + params[i].name.off, params[i].name.len)) < 0
			|| (r = cairn_buf_append(out, "=", 1)) < 0
			|| (r = cairn_buf_append(out, pool.data + params[i].value.off, params[i].value.len)) < 0)
			goto out;
	}
out:
	free(params);
	cairn_buf_release(&pool);
	return r;
}

static int is_token_char(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Lower-case header names, sorted (stable: repeated names keep their order). */
static int sorted_header_order(size_t **order_out, const cairn_sigv4_request *req)
{
	size_t *order = malloc((req->n_headers ? req->n_headers : 1) * sizeof(*order));

	if (!order)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *name = req->headers[i].name;
		if (!name || !*name || !req->headers[i].value) {
			free(order);
			return cairn_error_set(CAIRN_EINVAL, "sigv4: a header has no name or value");
		}
		for (const char *c = name; *c; c++) {
			if (!is_token_char((unsigned char)*c)) {
				free(order);
				return cairn_error_set(CAIRN_EINVAL, "sigv4: invalid header name '%s'", name);
			}
		}
		order[i] = i;
	}
	for (size_t i = 1; i < req->n_headers; i++) {
		size_t x = order[i], j = i;
		while (j > 0 && strcasecmp(req->headers[order[j - 1]].name, req->headers[x].name) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = x;
	}
	*order_out = order;
	return 0;
}

static int append_lower(cairn_buf *out, const char *s)
{
	size_t n = strlen(s);
	CAIRN_TRY(cairn_buf_reserve(out, n));
	for (size_t i = 0; i < n; i++)
		out->data[out->len++] = (unsigned char)tolower((unsigned char)s[i]);
	return 0;
}

/* A header value trimmed, inner runs of blanks collapsed to one space. */
static int append_trimmed(cairn_buf *out, const char *v)
{
	int pending_space = 0, any = 0;

	CAIRN_TRY(cairn_buf_reserve(out, strlen(v)));
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			pending_space = any;
			continue;
		}
		if (pending_space)
			out->data[out->len++] = ' ';
		pending_space = 0;
		any = 1;
		out->data[out->len++] = c;
	}
	return 0;
}

/* Canonical headers ("name:value\n" each) then, after a newline, the signed
 * header list; `signed_out` (may be NULL) also receives the list. */
static int canonical_headers(cairn_buf *out, cairn_buf *signed_out, const cairn_sigv4_request *req)
{
	cairn_buf names = CAIRN_BUF_INIT;
	size_t *order = NULL;
	int r;

	if ((r = sorted_header_order(&order, req)) < 0)
		return r;
	for (size_t k = 0; k < req->n_headers; k++) {
		const cairn_sigv4_header *h = &req->headers[order[k]];
		int same = k > 0 && strcasecmp(req->headers[order[k - 1]].name, h->name) == 0;
		if (same) {
			/* "a:1\n" + "a:2" -> "a:1,2\n": drop the newline, add ',' */
			out->len--;
			if ((r = cairn_buf_append(out, ",", 1)) < 0)
				goto out;
		} else {
			if ((names.len && (r = cairn_buf_append(&names, ";", 1)) < 0)
				|| (r = append_lower(&names, h->name)) < 0
				|| (r = append_lower(out, h->name)) < 0
				|| (r = cairn_buf_append(out, ":", 1)) < 0)
				goto out;
		}
		if ((r = append_trimmed(out, h->value)) < 0 || (r = cairn_buf_append(out, "\n", 1)) < 0)
			goto out;
	}
	if ((r = cairn_buf_append(out, "\n", 1)) < 0
		|| (r = cairn_buf_append(out, names.data, names.len)) < 0)
		goto out;
	if (signed_out) {
		cairn_buf_clear(signed_out);
		r = cairn_buf_append(signed_out, names.data, names.len);
	}
out:
	free(order);
	cairn_buf_release(&names);
	return r;
}

static int check_hash(const char *h)
{
	if (!h || !*h)
		return cairn_error_set(CAIRN_EINVAL, "sigv4: no payload hash given");
	for (const char *c = h; *c; c++)
		if (!isprint((unsigned char)*c) || *c == '\n')
			return cairn_error_set(CAIRN_EINVAL, "sigv4: invalid payload hash");
	return 0;
}

static int build_canonical(cairn_buf *out, cairn_buf *signed_out, const cairn_sigv4_request *req)
{
	cairn_buf_clear(out);
	if (!req || !req->method || !*req->method || !req->path)
		return cairn_error_set(CAIRN_EINVAL, "sigv4: request has no method or path");
	CAIRN_TRY(check_hash(req->payload_sha256));
	CAIRN_TRY(cairn_buf_puts(out, req->method));
	CAIRN_TRY(cairn_buf_append(out, "\n", 1));
	CAIRN_TRY(canonical_uri(out, req->path));
	CAIRN_TRY(cairn_buf_append(out, "\n", 1));
	CAIRN_TRY(canonical_query(out, req->query));
	CAIRN_TRY(cairn_buf_append(out, "\n", 1));
	CAIRN_TRY(canonical_headers(out, signed_out, req));
	CAIRN_TRY(cairn_buf_append(out, "\n", 1));
	return cairn_buf_puts(out, req->payload_sha256);
}

int cairn_sigv4_canonical_request(cairn_buf *out, const cairn_sigv4_request *req)
{
	int r = build_canonical(out, NULL, req);
	if (r < 0)
		cairn_buf_clear(out);
	return r;
}

void cairn_sigv4_sha256_hex(char out[65], const void *data, size_t len)
{
	cairn_id id;
	cairn_sha256(&id, data, len);
	cairn_id_to_hex(out, &id);
}

void cairn_sigv4_amz_date(char out[17], time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int check_scope(const cairn_sigv4_scope *s)
{
	const char *d;

	if (!s || !s->access_key || !*s->access_key || !s->secret_key || !s->region || !*s->region
		|| !s->service || !*s->service || !s->amz_date)
		return cairn_error_set(CAIRN_EINVAL, "sigv4: incomplete credentials or scope");
	d = s->amz_date;
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return cairn_error_set(CAIRN_EINVAL, "sigv4: invalid date '%s': want YYYYMMDDTHHMMSSZ", d);
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return cairn_error_set(CAIRN_EINVAL, "sigv4: invalid date '%s': want YYYYMMDDTHHMMSSZ", d);
	for (const char *p = s->region; *p; p++)
		if (*p == '/' || !isgraph((unsigned char)*p))
			return cairn_error_set(CAIRN_EINVAL, "sigv4: invalid region '%s'", s->region);
	for (const char *p = s->access_key; *p; p++)
		if (*p == '/' || *p == ',' || !isgraph((unsigned char)*p))
			return cairn_error_set(CAIRN_EINVAL, "sigv4: the access key id contains an invalid character");
	return 0;
}

/* "DATE/REGION/SERVICE/aws4_request" */
static int append_scope(cairn_buf *out, const cairn_sigv4_scope *s)
{
	return cairn_buf_printf(out, "%.8s/%s/%s/aws4_request", s->amz_date, s->region, s->service);
}

/* String to sign from an already built canonical request. */
static int build_sts(cairn_buf *out, const cairn_buf *creq, const cairn_sigv4_scope *scope)
{
	char hash[65];

	cairn_sigv4_sha256_hex(hash, creq->data ? creq->data : (const unsigned char *)"", creq->len);
	cairn_buf_clear(out);
	CAIRN_TRY(cairn_buf_printf(out, "AWS4-HMAC-SHA256\n%s\n", scope->amz_date));
	CAIRN_TRY(append_scope(out, scope));
	return cairn_buf_printf(out, "\n%s", hash);
}

int cairn_sigv4_string_to_sign(cairn_buf *out, const cairn_sigv4_request *req,
	const cairn_sigv4_scope *scope)
{
	cairn_buf creq = CAIRN_BUF_INIT;
	int r;

	cairn_buf_clear(out);
	if ((r = check_scope(scope)) < 0 || (r = build_canonical(&creq, NULL, req)) < 0
		|| (r = build_sts(out, &creq, scope)) < 0)
		cairn_buf_clear(out);
	cairn_buf_wipe(&creq);
	return r;
}

static int hmac256(unsigned char out[32], const void *key, size_t key_len, const void *data,
	size_t len)
{
	unsigned int n = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) || n != 32)
		return cairn_error_set(CAIRN_EIO, "sigv4: HMAC-SHA256 failed");
	return 0;
}

/* The 64-hex signature of sts. */
static int sign(char out[65], const cairn_buf *sts, const cairn_sigv4_scope *s)
{
	unsigned char k[32], k2[32], mac[32];
	size_t slen = strlen(s->secret_key);
	char *secret = malloc(slen + 5);
	int r = 0;

	if (!secret)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	memcpy(secret, "AWS4", 4);
	memcpy(secret + 4, s->secret_key, slen + 1);
	if ((r = hmac256(k, secret, slen + 4, s->amz_date, 8)) < 0
		|| (r = hmac256(k2, k, 32, s->region, strlen(s->region))) < 0
		|| (r = hmac256(k, k2, 32, s->service, strlen(s->service))) < 0
		|| (r = hmac256(k2, k, 32, "aws4_request", 12)) < 0
		|| (r = hmac256(mac, k2, 32, sts->data, sts->len)) < 0)
		goto out;
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex_lower[mac[i] >> 4];
		out[2 * i + 1] = hex_lower[mac[i] & 15];
	}
	out[64] = '\0';
out:
	OPENSSL_cleanse(secret, slen + 4);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	free(secret);
	return r;
}

int cairn_sigv4_authorization(cairn_buf *out, const cairn_sigv4_request *req,
	const cairn_sigv4_scope *scope)
{
	cairn_buf creq = CAIRN_BUF_INIT, sts = CAIRN_BUF_INIT, names = CAIRN_BUF_INIT;
	char sig[65];
	int r;

	cairn_buf_clear(out);
	if ((r = check_scope(scope)) < 0 || (r = build_canonical(&creq, &names, req)) < 0
		|| (r = build_sts(&sts, &creq, scope)) < 0 || (r = sign(sig, &sts, scope)) < 0)
		goto out;
	if ((r = cairn_buf_printf(out, "AWS4-HMAC-SHA256 Credential=%s/", scope->access_key)) < 0
		|| (r = append_scope(out, scope)) < 0
		|| (r = cairn_buf_puts(out, ", SignedHeaders=")) < 0
		|| (r = cairn_buf_append(out, names.data, names.len)) < 0
		|| (r = cairn_buf_printf(out, ", Signature=%s", sig)) < 0)
		goto out;
out:
	if (r < 0)
		cairn_buf_clear(out);
	cairn_buf_wipe(&creq);
	cairn_buf_release(&sts);
	cairn_buf_release(&names);
	return r;
}
