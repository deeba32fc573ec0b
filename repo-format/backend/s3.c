/* s3.c: the S3 backend, a repository in an S3 bucket (AWS, MinIO, Ceph RGW,
 * ...), laid out exactly as restic's S3 backend lays it out: the objects of
 * layout.c ("config", "keys/<id>", "data/<xx>/<id>", ...) below an optional
 * key prefix.
 *
 * Requests: path-style (http://host/bucket/key) or virtual-hosted
 * (http://bucket.host/key), chosen by -o s3.bucket-lookup=auto|dns|path
 * (auto: virtual-hosted for AWS endpoints and DNS-compatible bucket names,
 * path-style elsewhere, as minio-go does).  Every request is signed with
 * AWS Signature V4 (sigv4.c) over the exact path and query that are sent,
 * with x-amz-content-sha256 set to the real SHA-256 of the body (never
 * UNSIGNED-PAYLOAD).  HTTP runs through the shared handle pool (http.c):
 * -o s3.connections=N requests at once (default 5) over kept-alive
 * connections, and the backend reports N as its max_connections.
 *
 * Operations: save is one PutObject (atomic on S3: the object appears whole
 * or not at all); from -o s3.multipart-threshold (64 MiB) on, a multipart
 * upload of s3.part-size parts (16 MiB), aborted on failure (a server that
 * cannot abort, like s3rver, is logged and ignored: its parts stay until
 * the bucket's lifecycle rules remove them).  save_fd does the same with
 * the body streamed from the file (http.c reads it with pread as curl
 * sends it; a multipart part is read once to hash it and once to send it),
 * signed with the caller's SHA-256 or one computed from the file in 1 MiB
 * chunks, so memory does not grow with the object.  load is a GetObject with a
 * Range; stat a HeadObject; list a ListObjectsV2 walk that follows
 * continuation tokens; remove a HeadObject (S3 answers 204 to deleting a
 * missing object, the backend contract wants CAIRN_ENOTFOUND) then a
 * DeleteObject; create makes the bucket when it is missing (as restic init
 * does) and refuses an existing config.
 *
 * Errors: 404 is CAIRN_ENOTFOUND, worded "cannot read pack 'data/..' in
 * '<location>': it does not exist (HTTP 404 NoSuchKey...)" -- a HEAD's 404
 * has no body, so NoSuchKey is named for it; 401/403 and S3's SignatureDoesNotMatch,
 * InvalidAccessKeyId, AccessDenied, ... are CAIRN_EAUTH with a message
 * naming the operation, the object and the server's error code; 5xx, 429,
 * SlowDown, RequestTimeout and lost connections are CAIRN_ETRANSIENT (the
 * retry wrapper repeats those); everything else is permanent.  A HEAD
 * answer has no body, so a refused HEAD is repeated once as a 1-byte GET to
 * learn the error code for the message.  Every message names the operation,
 * the object, the HTTP status and the server's code (or the status's reason
 * phrase when the answer has none).  Credentials never appear in
 * messages or logs; the location string carries no user information.
 *
 * Threads: all state is fixed at open (endpoint, credentials, options) and
 * the pool is thread-safe, so every operation may run from many threads.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include <cairn/id.h>
#include <cairn/log.h>
#include <cairn/sys/backend.h>
#include <cairn/sys/http.h>
#include <cairn/sys/s3.h>
#include <cairn/sys/sigv4.h>
#include <cairn/sys/xml.h>

#define DEFAULT_CONNECTIONS 5
#define DEFAULT_MULTIPART_THRESHOLD ((uint64_t)64 << 20)
#define DEFAULT_PART_SIZE ((uint64_t)16 << 20)
#define MIN_PART_SIZE ((uint64_t)5 << 20)  /* S3's minimum for all but the last part */
#define MAX_PART_SIZE ((uint64_t)5 << 30)
#define MAX_PARTS 10000
#define SMALL_RESPONSE ((size_t)1 << 20)   /* error documents, listings, multipart replies */
#define LIST_RESPONSE ((size_t)16 << 20)
#define SERVER_TEXT 240                    /* bytes of a server message kept in ours */

/* ---- locations ------------------------------------------------------------ */

void cairn_s3_location_release(cairn_s3_location *loc)
{
	if (!loc)
		return;
	free(loc->scheme);
	free(loc->host);
	free(loc->bucket);
	free(loc->prefix);
	memset(loc, 0, sizeof(*loc));
}

/* Cleaned prefix from s[0..len): parts joined by '/', empty and "." parts
 * dropped, ".." refused. */
static int clean_prefix(char **out, const char *s, size_t len)
{
	cairn_buf b = CAIRN_BUF_INIT;
	size_t i = 0;
	int r = 0;

	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != '/')
			j++;
		if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') {
			r = cairn_error_set(CAIRN_EINVAL, "s3: '..' is not allowed in the prefix");
			goto out;
		}
		if (j > i && !(j - i == 1 && s[i] == '.')) {
			for (size_t k = i; k < j; k++) {
				if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) {
					r = cairn_error_set(CAIRN_EINVAL, "s3: control character in the prefix");
					goto out;
				}
			}
			if ((b.len && (r = cairn_buf_append(&b, "/", 1)) < 0)
				|| (r = cairn_buf_append(&b, s + i, j - i)) < 0)
				goto out;
		}
		i = j + 1;
	}
	if (!cairn_buf_cstr(&b) && (r = cairn_error_set(CAIRN_ENOMEM, "out of memory")) < 0)
		goto out;
	*out = (char *)cairn_buf_detach(&b, NULL);
out:
	cairn_buf_release(&b);
	return r;
}

static int valid_bucket(const char *b, size_t n)
{
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && b[i] != '.' && b[i] != '-' && b[i] != '_')
			return 0;
	return 1;
}

static int valid_host(const char *h, size_t n)
{
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (!isalnum(c) && !strchr(".-_:[]%", c))
			return 0;
	}
	return 1;
}

/* "BUCKET[/PREFIX]" from p. */
static int parse_bucket_prefix(cairn_s3_location *loc, const char *p)
{
	const char *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);

	if (n == 0)
		return cairn_error_set(CAIRN_EINVAL, "s3: no bucket name in the location");
	if (!valid_bucket(p, n))
		return cairn_error_set(CAIRN_EINVAL, "s3: invalid bucket name '%.*s'", (int)n, p);
	if (!(loc->bucket = strndup(p, n)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return clean_prefix(&loc->prefix, slash ? slash + 1 : "", slash ? strlen(slash + 1) : 0);
}

int cairn_s3_parse_location(cairn_s3_location *out, const char *spec)
{
	const char *p = spec, *auth, *auth_end, *at;
	int url = 0;

	memset(out, 0, sizeof(*out));
	if (!spec || !*spec)
		return cairn_error_set(CAIRN_EINVAL, "s3: empty location");
	if (strncmp(p, "https://", 8) == 0) {
		out->scheme = strdup("https");
		p += 8;
		url = 1;
	} else if (strncmp(p, "http://", 7) == 0) {
		out->scheme = strdup("http");
		p += 7;
		url = 1;
	} else {
		if (strncmp(p, "//", 2) == 0)
			p += 2;
		out->scheme = strdup("https");
	}
	if (!out->scheme)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if (strpbrk(p, "?#"))
		return cairn_error_set(CAIRN_EINVAL, "s3: a location has no query or fragment");

	auth = p;
	auth_end = strchr(p, '/');
	if (!auth_end)
		auth_end = p + strlen(p);
	if (!url) {
		/* restic's "s3:HOST/BUCKET": the first part is an endpoint when it
		 * looks like one (a dot or a port); otherwise it is an AWS bucket */
		if (!memchr(auth, '.', (size_t)(auth_end - auth)) && !memchr(auth, ':', (size_t)(auth_end - auth)))
			return parse_bucket_prefix(out, p);
	}
	/* drop user information: credentials come from the environment */
	for (at = auth_end; at > auth; at--)
		if (at[-1] == '@')
			break;
	if (at > auth)
		auth = at;
	if (!valid_host(auth, (size_t)(auth_end - auth)))
		return cairn_error_set(CAIRN_EINVAL, "s3: invalid host '%.*s'", (int)(auth_end - auth), auth);
	if (!(out->host = strndup(auth, (size_t)(auth_end - auth))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if (*auth_end != '/' || auth_end[1] == '\0')
		return cairn_error_set(CAIRN_EINVAL, "s3: no bucket name in the location (want "
			"s3:%s://HOST/BUCKET[/PREFIX])", out->scheme);
	return parse_bucket_prefix(out, auth_end + 1);
}

static int valid_region(const char *r)
{
	if (!*r || strlen(r) > 64)
		return 0;
	for (; *r; r++)
		if (!isalnum((unsigned char)*r) && *r != '-')
			return 0;
	return 1;
}

int cairn_s3_region_from_host(char *out, size_t size, const char *host)
{
	const char *p, *end;
	char h[256];
	size_t n = strcspn(host, ":");

	if (size)
		out[0] = '\0';
	if (n >= sizeof(h))
		return 0;
	memcpy(h, host, n);
	h[n] = '\0';
	end = strstr(h, ".amazonaws.com");
	if (!end)
		return 0;
	/* find "s3." or "s3-" as a label start before end */
	for (p = h; p < end; p++) {
		if ((p == h || p[-1] == '.') && strncmp(p, "s3", 2) == 0 && (p[2] == '.' || p[2] == '-')) {
			const char *r = p + 3;
			size_t len = (size_t)(end - r);
			if (r >= end)
				return 0;
			/* "s3.dualstack.REGION", "s3-website-REGION" ... keep the last label */
			const char *dot = memrchr(r, '.', len);
			if (dot) {
				len -= (size_t)(dot + 1 - r);
				r = dot + 1;
			}
			if (len == 0 || len + 1 > size || strncmp(r, "external-1", 10) == 0)
				return 0;
			memcpy(out, r, len);
			out[len] = '\0';
			if (!valid_region(out)) {
				out[0] = '\0';
				return 0;
			}
			return 1;
		}
	}
	return 0;
}

/* ---- credentials files ------------------------------------------------------ */

static char *trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

int cairn_s3_read_credentials(char **access, char **secret, char **token, const char *path,
	const char *profile)
{
	FILE *f;
	char line[4096];
	int in_profile = 0, seen_profile = 0, r = 0;
	char *a = NULL, *s = NULL, *t = NULL;

	*access = *secret = *token = NULL;
	if (!(f = fopen(path, "re"))) {
		if (errno == ENOENT)
			return cairn_error_set(CAIRN_ENOTFOUND, "s3: credentials file '%s' does not exist", path);
		return cairn_error_set_errno(CAIRN_EIO, errno, "s3: cannot read credentials file '%s'", path);
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq, **dst = NULL;
		if (*l == '\0' || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');
			if (!close)
				continue;
			*close = '\0';
			in_profile = strcmp(trim(l + 1), profile) == 0;
			seen_profile |= in_profile;
			continue;
		}
		if (!in_profile || !(eq = strchr(l, '=')))
			continue;
		*eq = '\0';
		l = trim(l);
		if (strcasecmp(l, "aws_access_key_id") == 0)
			dst = &a;
		else if (strcasecmp(l, "aws_secret_access_key") == 0)
			dst = &s;
		else if (strcasecmp(l, "aws_session_token") == 0)
			dst = &t;
		if (!dst)
			continue;
		if (*dst) {
			OPENSSL_cleanse(*dst, strlen(*dst));
			free(*dst);
		}
		if (!(*dst = strdup(trim(eq + 1)))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (ferror(f)) {
		r = cairn_error_set(CAIRN_EIO, "s3: cannot read credentials file '%s'", path);
		goto out;
	}
	if (!seen_profile) {
		r = cairn_error_set(CAIRN_ENOTFOUND, "s3: no profile '%s' in credentials file '%s'", profile, path);
		goto out;
	}
	if (!a || !*a || !s || !*s) {
		r = cairn_error_set(CAIRN_EINVAL, "s3: profile '%s' in '%s' lacks aws_access_key_id or "
			"aws_secret_access_key", profile, path);
		goto out;
	}
	*access = a;
	*secret = s;
	*token = t && *t ? t : NULL;
	if (t && !*t)
		free(t);
	a = s = t = NULL;
out:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	if (s)
		OPENSSL_cleanse(s, strlen(s));
	if (t)
		OPENSSL_cleanse(t, strlen(t));
	free(a);
	free(s);
	free(t);
	return r;
}

/* ---- XML answers ------------------------------------------------------------ */

typedef struct list_parse {
	cairn_s3_list_cb cb;
	void *payload;
	char *key;
	uint64_t size;
	int have_key, have_size, bad_size;
	int truncated;
	char *token;
	int root_ok;
} list_parse;

static int parse_u64(uint64_t *out, const char *s)
{
	uint64_t v = 0;
	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	if (*s)
		return -1;
	*out = v;
	return 0;
}

static int list_leaf(const char *path, const char *text, size_t len, void *payload)
{
	list_parse *lp = payload;
	const char *slash = strchr(path, '/');

	if (!lp->root_ok) {
		size_t n = slash ? (size_t)(slash - path) : strlen(path);
		if (n != 16 || strncmp(path, "ListBucketResult", 16) != 0)
			return cairn_error_set(CAIRN_EINVAL, "s3: the listing is not a ListBucketResult "
				"but '%.*s'", (int)(n > 64 ? 64 : n), path);
		lp->root_ok = 1;
	}
	if (!slash)
		return 0;
	path = slash + 1;
	if (strcmp(path, "Contents/Key") == 0 && text) {
		free(lp->key);
		if (!(lp->key = strndup(text, len)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		lp->have_key = 1;
	} else if (strcmp(path, "Contents/Size") == 0 && text) {
		lp->have_size = 1;
		lp->bad_size = parse_u64(&lp->size, text) < 0;
	} else if (strcmp(path, "Contents") == 0 && !text) {
		int r;
		if (!lp->have_key || lp->bad_size || !lp->have_size)
			return cairn_error_set(CAIRN_EINVAL, "s3: a listing entry has no key or no valid size");
		r = lp->cb(lp->key, lp->size, lp->payload);
		lp->have_key = lp->have_size = lp->bad_size = 0;
		return r;
	} else if (strcmp(path, "IsTruncated") == 0 && text) {
		lp->truncated = strcmp(text, "true") == 0;
	} else if (strcmp(path, "NextContinuationToken") == 0 && text) {
		free(lp->token);
		if (!(lp->token = strndup(text, len)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	return 0;
}

int cairn_s3_parse_list(const char *xml, size_t len, cairn_s3_list_cb cb, void *payload,
	int *truncated, char **next_token)
{
	list_parse lp;
	int r;

	memset(&lp, 0, sizeof(lp));
	lp.cb = cb;
	lp.payload = payload;
	*truncated = 0;
	*next_token = NULL;
	r = cairn_xml_parse(xml, len, list_leaf, &lp);
	free(lp.key);
	if (r != 0) {
		free(lp.token);
		return r;
	}
	*truncated = lp.truncated;
	*next_token = lp.token;
	return 0;
}

typedef struct error_parse {
	char *code, *message;
	size_t code_size, message_size;
	int is_error;
	int decided;
} error_parse;

static void copy_cut(char *dst, size_t size, const char *src, size_t len)
{
	if (!size)
		return;
	if (len >= size)
		len = size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int error_leaf(const char *path, const char *text, size_t len, void *payload)
{
	error_parse *ep = payload;

	if (!ep->decided) {
		ep->decided = 1;
		ep->is_error = strncmp(path, "Error", 5) == 0 && (path[5] == '/' || path[5] == '\0');
	}
	if (!ep->is_error || !text)
		return 0;
	if (strcmp(path, "Error/Code") == 0)
		copy_cut(ep->code, ep->code_size, text, len);
	else if (strcmp(path, "Error/Message") == 0)
		copy_cut(ep->message, ep->message_size, text, len);
	return 0;
}

int cairn_s3_parse_error(const char *xml, size_t len, char *code, size_t code_size,
	char *message, size_t message_size)
{
	error_parse ep;
	int r;

	memset(&ep, 0, sizeof(ep));
	ep.code = code;
	ep.code_size = code_size;
	ep.message = message;
	ep.message_size = message_size;
	if (code_size)
		code[0] = '\0';
	if (message_size)
		message[0] = '\0';
	if (!xml || len == 0)
		return 0;
	r = cairn_xml_parse(xml, len, error_leaf, &ep);
	cairn_error_clear();
	if (r != 0 && !ep.is_error)
		return 0;
	return ep.is_error;
}

/* One leaf by exact path ("InitiateMultipartUploadResult/UploadId"). */
typedef struct find_leaf {
	const char *path;
	char *value;
} find_leaf;

static int find_leaf_cb(const char *path, const char *text, size_t len, void *payload)
{
	find_leaf *fl = payload;
	if (text && !fl->value && strcmp(path, fl->path) == 0 && !(fl->value = strndup(text, len)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return 0;
}

/* ---- the backend ------------------------------------------------------------- */

typedef struct s3_backend {
	cairn_backend base;   /* first member: cairn_backend* <-> s3_backend* */
	cairn_http *http;
	char *base_url;       /* "http://127.0.0.1:4568" or "https://bucket.s3.amazonaws.com" */
	char *host_header;    /* the Host header, signed */
	char *bucket_path;    /* "/bucket" (path style, encoded) or "" (virtual-hosted) */
	char *bucket;
	char *prefix;         /* "" or "repo/" */
	char *region;
	char *access_key, *secret_key, *session_token;
	uint64_t multipart_threshold, part_size;
} s3_backend;

static const cairn_backend_ops s3_ops;

static s3_backend *s3_downcast(cairn_backend *be)
{
	return be && be->ops == &s3_ops ? (s3_backend *)be : NULL;
}

/* One request and what the messages say about it. */
typedef struct s3_call {
	const char *method;
	const char *key;          /* full object key (prefix included), NULL: the bucket */
	const char *query;        /* encoded query, NULL: none */
	const cairn_http_body *body; /* NULL: none */
	const char *payload_hash; /* NULL: the hash of an empty body */
	const char *range;        /* "bytes=a-b" or NULL */
	const char *content_type; /* or NULL */
	cairn_buf *response;      /* receives the body */
	size_t max_response;
	const char *op;           /* "read", "store", "stat", "list", "remove", "create" */
	const char *object;       /* "pack 'data/ab/ab12..'" */
} s3_call;

/* "cannot read pack 'data/..' in 's3:...'" style prefix of messages. */
static void describe(char *out, size_t size, const s3_backend *s3, const s3_call *c)
{
	snprintf(out, size, "%s %s in '%s'", c->op, c->object, s3->base.location);
}

/* Send one signed request; the HTTP exchange's result (any status is 0). */
static int s3_send(s3_backend *s3, const s3_call *c, cairn_http_response *resp)
{
	cairn_buf path = CAIRN_BUF_INIT, url = CAIRN_BUF_INIT, auth = CAIRN_BUF_INIT;
	cairn_buf lines[7] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT,
		CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	const char *line_ptr[7];
	cairn_sigv4_header sh[5];
	cairn_http_request req = CAIRN_HTTP_REQUEST_INIT;
	char date[17], what[512];
	const char *hash = c->payload_hash ? c->payload_hash : CAIRN_SIGV4_EMPTY_SHA256;
	size_t nh = 0, nl = 0;
	int r;

	/* the path and query exactly as sent, and as signed */
	if ((r = cairn_buf_puts(&path, s3->bucket_path)) < 0)
		goto out;
	if (c->key) {
		if ((r = cairn_buf_append(&path, "/", 1)) < 0
			|| (r = cairn_sigv4_uri_encode(&path, c->key, strlen(c->key), 1)) < 0)
			goto out;
	} else if (path.len == 0 && (r = cairn_buf_append(&path, "/", 1)) < 0) {
		goto out;
	}
	if (!cairn_buf_cstr(&path) || (r = cairn_buf_printf(&url, "%s%s%s%s", s3->base_url,
			(char *)path.data, c->query ? "?" : "", c->query ? c->query : "")) < 0
		|| !cairn_buf_cstr(&url)) {
		r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}

	cairn_sigv4_amz_date(date, time(NULL));
	sh[nh++] = (cairn_sigv4_header){ "host", s3->host_header };
	sh[nh++] = (cairn_sigv4_header){ "x-amz-content-sha256", hash };
	sh[nh++] = (cairn_sigv4_header){ "x-amz-date", date };
	if (c->range)
		sh[nh++] = (cairn_sigv4_header){ "range", c->range };
	if (s3->session_token)
		sh[nh++] = (cairn_sigv4_header){ "x-amz-security-token", s3->session_token };
	{
		cairn_sigv4_request sreq = { c->method, (char *)path.data, c->query, sh, nh, hash };
		cairn_sigv4_scope scope = { s3->access_key, s3->secret_key, s3->region, "s3", date };
		if ((r = cairn_sigv4_authorization(&auth, &sreq, &scope)) < 0 || !cairn_buf_cstr(&auth)) {
			r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < nh; i++) {
		if ((r = cairn_buf_printf(&lines[nl], "%s: %s", sh[i].name, sh[i].value)) < 0)
			goto out;
		nl++;
	}
	if ((r = cairn_buf_printf(&lines[nl++], "Authorization: %s", (char *)auth.data)) < 0)
		goto out;
	if (c->content_type && (r = cairn_buf_printf(&lines[nl++], "Content-Type: %s", c->content_type)) < 0)
		goto out;
	for (size_t i = 0; i < nl; i++) {
		if (!cairn_buf_cstr(&lines[i])) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		line_ptr[i] = (const char *)lines[i].data;
	}

	describe(what, sizeof(what), s3, c);
	req.method = c->method;
	req.url = (const char *)url.data;
	req.headers = line_ptr;
	req.n_headers = nl;
	if (c->body)
		req.body = *c->body;
	req.max_response = c->max_response ? c->max_response : SMALL_RESPONSE;
	req.what = what;
	resp->body = c->response;
	r = cairn_http_perform(s3->http, &req, resp);
	if (r == 0)
		cairn_log(CAIRN_LOG_DEBUG, "s3", "%s %s: HTTP %ld", c->method, what, resp->status);
out:
	cairn_buf_release(&path);
	cairn_buf_release(&url);
	cairn_buf_release(&auth);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		cairn_buf_wipe(&lines[i]);
	return r;
}

/* Printable, single-line, cut copy of server text for our messages. */
static void sanitize(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	int space = 0;

	for (; *src && n + 4 < size; src++) {
		unsigned char ch = (unsigned char)*src;
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			space = n > 0;
			continue;
		}
		if (space)
			dst[n++] = ' ';
		space = 0;
		dst[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	if (*src && n + 4 >= size && size >= 4) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	if (size)
		dst[n < size ? n : size - 1] = '\0';
}

/* The reason phrase of the statuses S3 and proxies answer with. */
static const char *reason(long status)
{
	switch (status) {
	case 301: return "Moved Permanently";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 416: return "Range Not Satisfiable";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "unexpected status";
}

static int code_in(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(code, *list) == 0)
			return 1;
	return 0;
}

/* The cairn error for a non-2xx answer, with the message. `body` holds the
 * answer's body (may be empty). */
static int s3_status_error(const s3_backend *s3, const s3_call *c, const cairn_http_response *resp,
	const cairn_buf *body)
{
	static const char *const auth_codes[] = {
		"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken",
		"ExpiredToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidSecurity",
		"AllAccessDisabled", "AccountProblem", "RequestTimeTooSkewed", "InvalidClientTokenId",
		"MissingSecurityHeader", "NotSignedUp", NULL,
	};
	static const char *const transient_codes[] = {
		"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "OperationAborted",
		"BadDigest", "IncompleteBody", "XAmzContentSHA256Mismatch", "Throttling",
		"ThrottlingException", "RequestThrottled", NULL,
	};
	char code[128], raw_message[1024], message[SERVER_TEXT + 8], region[80], what[512];
	char hint[256] = "", detail[400];
	long status = resp->status;
	int err;

	cairn_s3_parse_error(body && body->len ? (const char *)body->data : NULL, body ? body->len : 0,
		code, sizeof(code), raw_message, sizeof(raw_message));
	sanitize(message, sizeof(message), raw_message);
	{
		char clean_code[128];
		sanitize(clean_code, sizeof(clean_code), code);
		memcpy(code, clean_code, sizeof(code));
	}
	describe(what, sizeof(what), s3, c);
	if (code[0])
		snprintf(detail, sizeof(detail), "%s%s%s", code, message[0] ? ": " : "", message);
	else
		snprintf(detail, sizeof(detail), "%s, no error code in the answer", reason(status));

	/* A missing object or bucket.  A HEAD's 404 (and a proxy's) carries no
	 * code: the key is what is missing then (S3's NoSuchKey), unless the
	 * request was for the bucket itself. */
	if (status == 404 || strcmp(code, "NoSuchKey") == 0 || strcmp(code, "NoSuchBucket") == 0) {
		if (strcmp(code, "NoSuchBucket") == 0 || (!code[0] && !c->key))
			return cairn_error_set(CAIRN_ENOTFOUND, "cannot %s: bucket '%s' does not exist "
				"(HTTP %ld %s)", what, s3->bucket, status, code[0] ? detail : "NoSuchBucket");
		return cairn_error_set(CAIRN_ENOTFOUND, "cannot %s: it does not exist (HTTP %ld %s)",
			what, status, code[0] ? detail : "NoSuchKey");
	}
	if (!cairn_http_response_header(resp, "x-amz-bucket-region", region, sizeof(region))
		|| !valid_region(region))
		region[0] = '\0';
	if (strcmp(code, "SignatureDoesNotMatch") == 0)
		snprintf(hint, sizeof(hint), "; check the secret key (AWS_SECRET_ACCESS_KEY)");
	else if (strcmp(code, "InvalidAccessKeyId") == 0)
		snprintf(hint, sizeof(hint), "; check the access key id (AWS_ACCESS_KEY_ID)");
	else if (strcmp(code, "RequestTimeTooSkewed") == 0)
		snprintf(hint, sizeof(hint), "; check this machine's clock");
	else if (strcmp(code, "ExpiredToken") == 0)
		snprintf(hint, sizeof(hint), "; renew the session token (AWS_SESSION_TOKEN)");
	if (region[0] && strcmp(region, s3->region) != 0)
		snprintf(hint, sizeof(hint), "; the bucket is in region '%.64s': use -o s3.region=%.64s",
			region, region);

	if (status == 401 || status == 403 || code_in(code, auth_codes)) {
		err = CAIRN_EAUTH;
		return cairn_error_set(err, "access denied: cannot %s: %s (HTTP %ld%s)", what, detail,
			status, hint);
	}
	if (status == 408 || status == 429 || status >= 500 || code_in(code, transient_codes))
		err = CAIRN_ETRANSIENT;
	else
		err = CAIRN_EIO;
	if ((status == 301 || status == 307) && !hint[0])
		snprintf(hint, sizeof(hint), "; the bucket is served by another endpoint or region");
	return cairn_error_set(err, "cannot %s: %s (HTTP %ld%s)", what, detail, status, hint);
}

/* Run a call; 0 only for a 2xx answer.  Any other answer is mapped to an
 * error whose message names the call.  *status_out (may be NULL) receives
 * the HTTP status (0 when none arrived). */
static int s3_do(s3_backend *s3, const s3_call *c, cairn_http_response *resp)
{
	cairn_buf own = CAIRN_BUF_INIT;
	s3_call call = *c;
	int r;

	if (!call.response)
		call.response = &own;
	r = s3_send(s3, &call, resp);
	if (r == 0 && (resp->status < 200 || resp->status >= 300))
		r = s3_status_error(s3, &call, resp, call.response);
	cairn_buf_release(&own);
	return r;
}

/* A HEAD that answered 4xx/5xx (other than 404) has no body: ask the same
 * thing as a 1-byte GET to learn the server's error code for the message.
 * Returns the mapped error of whichever answer says more. */
static int head_failure(s3_backend *s3, const s3_call *head, const cairn_http_response *hresp)
{
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf body = CAIRN_BUF_INIT;
	s3_call get = *head;
	int r;

	get.method = "GET";
	get.range = "bytes=0-0";
	get.response = &body;
	if (hresp->status != 404 && hresp->status >= 400 && hresp->status < 500
		&& s3_send(s3, &get, &resp) == 0 && resp.status >= 400) {
		r = s3_status_error(s3, &get, &resp, &body);
	} else {
		r = s3_status_error(s3, head, hresp, NULL);
	}
	cairn_http_response_release(&resp);
	cairn_buf_release(&body);
	return r;
}

/* Object key and message name of a handle. */
static int handle_key(char *key, size_t key_size, char *object, size_t object_size,
	const s3_backend *s3, const cairn_handle *h)
{
	char rel[128];
	int n;

	cairn_layout_path(rel, sizeof(rel), h);
	n = snprintf(key, key_size, "%s%s", s3->prefix, rel);
	if (n < 0 || (size_t)n >= key_size)
		return cairn_error_set(CAIRN_EINVAL, "s3: the key of '%s' is too long", rel);
	snprintf(object, object_size, "%s '%s'", cairn_file_type_name(h->type), rel);
	return 0;
}

#define KEY_MAX 1200

/* HEAD the object: 0 and *size, or an error. */
static int head_object(uint64_t *size, s3_backend *s3, const char *key, const char *object)
{
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	s3_call c = { 0 };
	char cl[32];
	int r;

	c.method = "HEAD";
	c.key = key;
	c.op = "stat";
	c.object = object;
	if ((r = s3_send(s3, &c, &resp)) < 0)
		goto out;
	if (resp.status < 200 || resp.status >= 300) {
		r = head_failure(s3, &c, &resp);
		goto out;
	}
	if (!cairn_http_response_header(&resp, "content-length", cl, sizeof(cl))
		|| parse_u64(size, cl) < 0) {
		char what[512];
		describe(what, sizeof(what), s3, &c);
		r = cairn_error_set(CAIRN_EIO, "cannot %s: the answer has no valid Content-Length", what);
		goto out;
	}
	r = 0;
out:
	cairn_http_response_release(&resp);
	return r;
}

static int s3__stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h)
{
	s3_backend *s3 = s3_downcast(be);
	char key[KEY_MAX], object[160];

	CAIRN_TRY(handle_key(key, sizeof(key), object, sizeof(object), s3, h));
	return head_object(size_out, s3, key, object);
}

static int s3__load(cairn_buf *out, cairn_backend *be, const cairn_handle *h, uint64_t offset,
	size_t length)
{
	s3_backend *s3 = s3_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	s3_call c = { 0 };
	char key[KEY_MAX], object[160], range[64], what[512];
	int r;

	cairn_buf_clear(out);
	if ((r = handle_key(key, sizeof(key), object, sizeof(object), s3, h)) < 0)
		goto out;
	if (length && (uint64_t)length - 1 > UINT64_MAX - offset) {
		r = cairn_error_set(CAIRN_EINVAL, "invalid range of %s", object);
		goto out;
	}
	if (length && (r = cairn_buf_reserve(out, length)) < 0)
		goto out;
	c.method = "GET";
	c.key = key;
	c.op = "read";
	c.object = object;
	c.response = out;
	c.max_response = length ? (length > SMALL_RESPONSE ? length : SMALL_RESPONSE) : CAIRN_BUF_MAX;
	if (length) {
		snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
			(unsigned long long)(offset + length - 1));
		c.range = range;
	} else if (offset) {
		snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
		c.range = range;
	}
	if ((r = s3_send(s3, &c, &resp)) < 0)
		goto out;
	describe(what, sizeof(what), s3, &c);
	if (resp.status == 416) {
		uint64_t size = 0;
		/* "bytes=SIZE-" of a SIZE-byte object is an empty read, as in local */
		if (!length && (r = head_object(&size, s3, key, object)) == 0 && size == offset) {
			cairn_buf_clear(out);
			goto out;
		}
		r = cairn_error_set(CAIRN_ECORRUPT, "'%s' is truncated: want %llu bytes at offset %llu "
			"(%s)", key + strlen(s3->prefix), (unsigned long long)length,
			(unsigned long long)offset, what);
		goto out;
	}
	if (resp.status != 200 && resp.status != 206) {
		r = s3_status_error(s3, &c, &resp, out);
		goto out;
	}
	if (resp.status == 200 && c.range) {
		/* the server ignored Range: usable only from offset 0 */
		if (offset != 0) {
			r = cairn_error_set(CAIRN_EIO, "cannot %s: the server ignored the Range header", what);
			goto out;
		}
		if (length && out->len > length)
			out->len = length;
	}
	if (length && out->len != length) {
		r = cairn_error_set(CAIRN_ECORRUPT, "'%s' is truncated: want %llu bytes at offset %llu, "
			"got %zu (%s)", key + strlen(s3->prefix), (unsigned long long)length,
			(unsigned long long)offset, out->len, what);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		cairn_buf_clear(out);
	cairn_http_response_release(&resp);
	return r;
}

/* Append "&name=value" (or "name=value" first) with the value encoded. */
static int query_add(cairn_buf *q, const char *name, const char *value)
{
	if (q->len && cairn_buf_append(q, "&", 1) < 0)
		return CAIRN_ENOMEM;
	CAIRN_TRY(cairn_buf_puts(q, name));
	CAIRN_TRY(cairn_buf_append(q, "=", 1));
	CAIRN_TRY(cairn_sigv4_uri_encode(q, value, strlen(value), 0));
	if (!cairn_buf_cstr(q))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return 0;
}

/* The payload hash of a body as SigV4 wants it (lowercase hex): `known`
 * when the caller has it, else computed (a file in bounded chunks). */
static int body_hash(char hash[65], const cairn_http_body *body, const cairn_id *known,
	const s3_backend *s3, const s3_call *c)
{
	char what[512];
	cairn_id id;

	if (!known) {
		describe(what, sizeof(what), s3, c);
		CAIRN_TRY(cairn_http_body_sha256(&id, body, what));
		known = &id;
	}
	cairn_id_to_hex(hash, known);
	return 0;
}

static int save_single(s3_backend *s3, const char *key, const char *object,
	const cairn_http_body *body, const cairn_id *sha256)
{
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	s3_call c = { 0 };
	char hash[65];
	int r;

	c.method = "PUT";
	c.key = key;
	c.body = body;
	c.payload_hash = hash;
	c.op = "store";
	c.object = object;
	if ((r = body_hash(hash, body, sha256, s3, &c)) < 0)
		return r;
	r = s3_do(s3, &c, &resp);
	cairn_http_response_release(&resp);
	return r;
}

/* Keep the current thread's error message across a cleanup call that may
 * set its own. */
typedef struct saved_error {
	int code;
	char message[1024];
} saved_error;

static void save_error(saved_error *s, int code)
{
	s->code = code;
	snprintf(s->message, sizeof(s->message), "%s", cairn_error_message());
}

static int restore_error(const saved_error *s)
{
	return cairn_error_set(s->code, "%s", s->message);
}

static void abort_multipart(s3_backend *s3, const char *key, const char *object, const char *upload_id)
{
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf q = CAIRN_BUF_INIT;
	s3_call c = { 0 };

	if (query_add(&q, "uploadId", upload_id) == 0) {
		c.method = "DELETE";
		c.key = key;
		c.query = (const char *)q.data;
		c.op = "abort the multipart upload of";
		c.object = object;
		if (s3_do(s3, &c, &resp) < 0)
			cairn_log(CAIRN_LOG_WARN, "s3", "%s (its parts stay on the server until the bucket's "
				"lifecycle rules remove them)", cairn_error_message());
	}
	cairn_http_response_release(&resp);
	cairn_buf_release(&q);
}

static int append_xml_text(cairn_buf *b, const char *s)
{
	for (; *s; s++) {
		const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
		CAIRN_TRY(e ? cairn_buf_puts(b, e) : cairn_buf_append(b, s, 1));
	}
	return 0;
}

/* A multipart upload; each part is read from `body` (memory or the file)
 * when it is hashed and again when it is sent, so a file body costs no more
 * memory than a part's buffers. */
static int save_multipart(s3_backend *s3, const char *key, const char *object,
	const cairn_http_body *body)
{
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf answer = CAIRN_BUF_INIT, q = CAIRN_BUF_INIT, done = CAIRN_BUF_INIT;
	cairn_http_body part, done_body;
	s3_call c = { 0 };
	find_leaf fl = { "InitiateMultipartUploadResult/UploadId", NULL };
	uint64_t len = body->len;
	uint64_t n_parts = (len + s3->part_size - 1) / s3->part_size;
	char what[512], hash[65], part_no[16], etag[256];
	saved_error saved;
	int r, started = 0;

	if (n_parts > MAX_PARTS)
		return cairn_error_set(CAIRN_EINVAL, "cannot store %s: %llu parts of %llu bytes exceed S3's "
			"limit of %d (raise -o s3.part-size)", object, (unsigned long long)n_parts,
			(unsigned long long)s3->part_size, MAX_PARTS);
	/* initiate */
	c.method = "POST";
	c.key = key;
	c.query = "uploads=";
	c.op = "start a multipart upload of";
	c.object = object;
	c.response = &answer;
	if ((r = s3_do(s3, &c, &resp)) < 0)
		goto out;
	describe(what, sizeof(what), s3, &c);
	if ((r = cairn_xml_parse((const char *)answer.data, answer.len, find_leaf_cb, &fl)) != 0) {
		r = cairn_error_wrap(r < 0 ? r : CAIRN_EIO, "cannot %s: bad answer", what);
		goto out;
	}
	if (!fl.value || !*fl.value) {
		r = cairn_error_set(CAIRN_EIO, "cannot %s: the answer has no UploadId", what);
		goto out;
	}
	started = 1;
	if ((r = cairn_buf_puts(&done, "<CompleteMultipartUpload>")) < 0)
		goto out;

	for (uint64_t i = 0; i < n_parts; i++) {
		uint64_t off = i * s3->part_size;
		uint64_t plen = len - off < s3->part_size ? len - off : s3->part_size;

		snprintf(part_no, sizeof(part_no), "%llu", (unsigned long long)(i + 1));
		cairn_buf_clear(&q);
		if ((r = query_add(&q, "partNumber", part_no)) < 0 || (r = query_add(&q, "uploadId", fl.value)) < 0)
			goto out;
		part = cairn_http_body_slice(body, off, plen);
		memset(&c, 0, sizeof(c));
		c.method = "PUT";
		c.key = key;
		c.query = (const char *)q.data;
		c.body = &part;
		c.payload_hash = hash;
		c.op = "store a part of";
		c.object = object;
		if ((r = body_hash(hash, &part, NULL, s3, &c)) < 0 || (r = s3_do(s3, &c, &resp)) < 0)
			goto out;
		if (!cairn_http_response_header(&resp, "etag", etag, sizeof(etag)) || !etag[0]) {
			describe(what, sizeof(what), s3, &c);
			r = cairn_error_set(CAIRN_EIO, "cannot %s: part %llu has no ETag", what,
				(unsigned long long)(i + 1));
			goto out;
		}
		if ((r = cairn_buf_printf(&done, "<Part><PartNumber>%llu</PartNumber><ETag>",
				(unsigned long long)(i + 1))) < 0
			|| (r = append_xml_text(&done, etag)) < 0
			|| (r = cairn_buf_puts(&done, "</ETag></Part>")) < 0)
			goto out;
	}
	if ((r = cairn_buf_puts(&done, "</CompleteMultipartUpload>")) < 0)
		goto out;

	/* complete: a 200 answer may still carry an <Error> */
	cairn_buf_clear(&q);
	if ((r = query_add(&q, "uploadId", fl.value)) < 0)
		goto out;
	cairn_sigv4_sha256_hex(hash, done.data, done.len);
	done_body = cairn_http_body_mem(done.data, done.len);
	memset(&c, 0, sizeof(c));
	c.method = "POST";
	c.key = key;
	c.query = (const char *)q.data;
	c.body = &done_body;
	c.payload_hash = hash;
	c.content_type = "application/xml";
	c.op = "complete the multipart upload of";
	c.object = object;
	c.response = &answer;
	if ((r = s3_do(s3, &c, &resp)) < 0)
		goto out;
	{
		char code[8];
		if (cairn_s3_parse_error((const char *)answer.data, answer.len, code, sizeof(code), NULL, 0)) {
			resp.status = 500; /* S3 documents these as to be retried */
			r = s3_status_error(s3, &c, &resp, &answer);
			goto out;
		}
	}
	started = 0;
	r = 0;
out:
	if (r < 0 && started) {
		save_error(&saved, r);
		abort_multipart(s3, key, object, fl.value);
		r = restore_error(&saved);
	}
	free(fl.value);
	cairn_http_response_release(&resp);
	cairn_buf_release(&answer);
	cairn_buf_release(&q);
	cairn_buf_release(&done);
	return r;
}

/* Both saves: one PUT below the multipart threshold, else multipart. */
static int save_body(cairn_backend *be, const cairn_handle *h, const cairn_http_body *body,
	const cairn_id *sha256)
{
	s3_backend *s3 = s3_downcast(be);
	char key[KEY_MAX], object[160];

	CAIRN_TRY(handle_key(key, sizeof(key), object, sizeof(object), s3, h));
	if (body->len >= s3->multipart_threshold)
		return save_multipart(s3, key, object, body);
	return save_single(s3, key, object, body, sha256);
}

static int s3__save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	cairn_http_body body = cairn_http_body_mem(data, len);
	return save_body(be, h, &body, NULL);
}

/* The body streams from the file (http.c reads it with pread as curl sends
 * it); without `sha256` the file is read once more first to hash it.  A
 * retry (retry.c) calls this again and everything is re-read from 0. */
static int s3__save_fd(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
	const cairn_id *sha256)
{
	cairn_http_body body = cairn_http_body_file(fd, 0, len);
	return save_body(be, h, &body, sha256);
}

static int s3__remove(cairn_backend *be, const cairn_handle *h)
{
	s3_backend *s3 = s3_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	s3_call c = { 0 };
	char key[KEY_MAX], object[160];
	uint64_t size;
	int r;

	CAIRN_TRY(handle_key(key, sizeof(key), object, sizeof(object), s3, h));
	CAIRN_TRY(head_object(&size, s3, key, object));
	c.method = "DELETE";
	c.key = key;
	c.op = "remove";
	c.object = object;
	r = s3_do(s3, &c, &resp);
	cairn_http_response_release(&resp);
	return r;
}

/* One listed object, kept until the page's callbacks run. */
typedef struct list_entry {
	char name[CAIRN_ID_HEX_SIZE];
	uint64_t size;
} list_entry;

typedef struct list_page {
	const char *dir;  /* full key prefix, "repo/data/" */
	size_t dir_len;
	int packs;        /* keys are dir + "xx/" + id */
	list_entry *v;
	size_t n, cap;
} list_page;

static int collect_cb(const char *key, uint64_t size, void *payload)
{
	list_page *lp = payload;
	const char *rel;

	if (strncmp(key, lp->dir, lp->dir_len) != 0)
		return 0;
	rel = key + lp->dir_len;
	if (lp->packs) {
		if (strlen(rel) != 67 || rel[2] != '/')
			return 0;
		rel += 3;
	}
	if (!cairn_id_is_hex(rel))
		return 0;
	if (lp->n == lp->cap) {
		size_t cap = lp->cap ? lp->cap * 2 : 1024;
		list_entry *g = realloc(lp->v, cap * sizeof(*g));
		if (!g)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		lp->v = g;
		lp->cap = cap;
	}
	memcpy(lp->v[lp->n].name, rel, CAIRN_ID_HEX_SIZE - 1);
	lp->v[lp->n].name[CAIRN_ID_HEX_SIZE - 1] = '\0';
	lp->v[lp->n].size = size;
	lp->n++;
	return 0;
}

static int s3__list(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb, void *payload)
{
	s3_backend *s3 = s3_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf body = CAIRN_BUF_INIT, q = CAIRN_BUF_INIT, dir = CAIRN_BUF_INIT;
	list_page lp;
	char *token = NULL, object[64], what[512];
	int truncated, r;

	memset(&lp, 0, sizeof(lp));
	if ((r = cairn_buf_printf(&dir, "%s%s/", s3->prefix, cairn_layout_dir(type))) < 0
		|| !cairn_buf_cstr(&dir)) {
		r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	lp.dir = (const char *)dir.data;
	lp.dir_len = dir.len;
	lp.packs = type == CAIRN_FILE_PACK;
	snprintf(object, sizeof(object), "%s files '%s/'", cairn_file_type_name(type),
		cairn_layout_dir(type));
	for (;;) {
		s3_call c = { 0 };
		char *next = NULL;

		cairn_buf_clear(&q);
		if ((token && (r = query_add(&q, "continuation-token", token)) < 0)
			|| (r = query_add(&q, "list-type", "2")) < 0
			|| (r = query_add(&q, "prefix", lp.dir)) < 0)
			goto out;
		c.method = "GET";
		c.query = (const char *)q.data;
		c.op = "list";
		c.object = object;
		c.response = &body;
		c.max_response = LIST_RESPONSE;
		if ((r = s3_do(s3, &c, &resp)) < 0)
			goto out;
		lp.n = 0;
		r = cairn_s3_parse_list((const char *)body.data, body.len, collect_cb, &lp, &truncated, &next);
		if (r != 0) {
			describe(what, sizeof(what), s3, &c);
			r = cairn_error_wrap(r < 0 ? r : CAIRN_EIO, "cannot %s: bad answer", what);
			goto out;
		}
		/* no request is in flight while the caller's callback runs */
		for (size_t i = 0; i < lp.n; i++)
			if ((r = cb(lp.v[i].name, lp.v[i].size, payload)) != 0) {
				free(next);
				goto out;
			}
		if (!truncated) {
			free(next);
			break;
		}
		if (!next || !*next || (token && strcmp(next, token) == 0)) {
			describe(what, sizeof(what), s3, &c);
			free(next);
			r = cairn_error_set(CAIRN_EIO, "cannot %s: the server says the listing goes on but "
				"gives no new continuation token", what);
			goto out;
		}
		free(token);
		token = next;
	}
	r = 0;
out:
	free(token);
	free(lp.v);
	cairn_http_response_release(&resp);
	cairn_buf_release(&body);
	cairn_buf_release(&q);
	cairn_buf_release(&dir);
	return r;
}

static int s3__create(cairn_backend *be)
{
	s3_backend *s3 = s3_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf cfg = CAIRN_BUF_INIT;
	cairn_http_body cfg_body;
	s3_call c = { 0 };
	char object[300], key[KEY_MAX], hash[65];
	uint64_t size;
	int r;

	snprintf(object, sizeof(object), "bucket '%s'", s3->bucket);
	c.method = "HEAD";
	c.op = "check";
	c.object = object;
	if ((r = s3_send(s3, &c, &resp)) < 0)
		goto out;
	if (resp.status == 404) {
		/* as restic init: make the bucket */
		if (strcmp(s3->region, "us-east-1") != 0
			&& (r = cairn_buf_printf(&cfg, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws."
				"com/doc/2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
				"</CreateBucketConfiguration>", s3->region)) < 0)
			goto out;
		cfg_body = cairn_http_body_mem(cfg.data, cfg.len);
		cairn_sigv4_sha256_hex(hash, cfg.len ? (const void *)cfg.data : "", cfg.len);
		memset(&c, 0, sizeof(c));
		c.method = "PUT";
		c.op = "create";
		c.object = object;
		c.body = &cfg_body;
		c.payload_hash = hash;
		if ((r = s3_do(s3, &c, &resp)) == 0)
			cairn_log(CAIRN_LOG_INFO, "s3", "created bucket '%s'", s3->bucket);
		else if (r != CAIRN_EIO || resp.status != 409) /* 409: someone made it meanwhile */
			goto out;
	} else if (resp.status < 200 || resp.status >= 300) {
		r = head_failure(s3, &c, &resp);
		goto out;
	}
	snprintf(key, sizeof(key), "%sconfig", s3->prefix);
	r = head_object(&size, s3, key, "config 'config'");
	if (r == 0) {
		r = cairn_error_set(CAIRN_EEXISTS, "repository '%s' already exists (it has a config)",
			s3->base.location);
		goto out;
	}
	if (r == CAIRN_ENOTFOUND)
		r = 0;
out:
	cairn_http_response_release(&resp);
	cairn_buf_release(&cfg);
	return r;
}

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void s3__free(cairn_backend *be)
{
	s3_backend *s3 = s3_downcast(be);

	if (!s3)
		return;
	cairn_http_free(s3->http);
	free(s3->base_url);
	free(s3->host_header);
	free(s3->bucket_path);
	free(s3->bucket);
	free(s3->prefix);
	free(s3->region);
	wipe_free(s3->access_key);
	wipe_free(s3->secret_key);
	wipe_free(s3->session_token);
	free(s3);
}

static const cairn_backend_ops s3_ops = {
	.version = 1,
	.name = "s3",
	.create = s3__create,
	.save = s3__save,
	.load = s3__load,
	.stat = s3__stat,
	.list = s3__list,
	.remove = s3__remove,
	.free = s3__free,
	.save_fd = s3__save_fd,
};

/* ---- open ---------------------------------------------------------------------- */

static int dup_to(char **dst, const char *src)
{
	if (!(*dst = strdup(src)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return 0;
}

/* Credentials: --s3-credentials-file, else AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), profile
 * AWS_PROFILE or "default". */
static int load_credentials(s3_backend *s3, const cairn_backend_options *opts)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN"), *profile = getenv("AWS_PROFILE");
	const char *file = opts ? opts->s3_credentials_file : NULL;
	char home_file[4096];
	int r;

	if (!profile || !*profile)
		profile = "default";
	if (!file && ak && *ak && sk && *sk) {
		CAIRN_TRY(dup_to(&s3->access_key, ak));
		CAIRN_TRY(dup_to(&s3->secret_key, sk));
		if (tok && *tok)
			CAIRN_TRY(dup_to(&s3->session_token, tok));
		return 0;
	}
	if (!file && ((ak && *ak) || (sk && *sk)))
		return cairn_error_set(CAIRN_EAUTH, "s3: %s is set but %s is not",
			ak && *ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			ak && *ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	if (!file) {
		const char *env = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
		if (env && *env) {
			file = env;
		} else if (home && *home) {
			snprintf(home_file, sizeof(home_file), "%s/.aws/credentials", home);
			file = home_file;
		}
	}
	if (!file)
		goto none;
	r = cairn_s3_read_credentials(&s3->access_key, &s3->secret_key, &s3->session_token, file, profile);
	if (r == CAIRN_ENOTFOUND && file == home_file)
		goto none;
	if (r < 0)
		return cairn_error_wrap(CAIRN_EAUTH, "no S3 credentials");
	return 0;
none:
	return cairn_error_set(CAIRN_EAUTH, "no S3 credentials: set AWS_ACCESS_KEY_ID and "
		"AWS_SECRET_ACCESS_KEY, or name a credentials file (--s3-credentials-file, "
		"AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials)");
}

/* A bucket name that works as a DNS label set (virtual-hosted style). */
static int dns_compatible(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63 || b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-'
		|| strstr(b, "..") || strstr(b, ".-") || strstr(b, "-."))
		return 0;
	for (; *b; b++)
		if (!(islower((unsigned char)*b) || isdigit((unsigned char)*b) || *b == '.' || *b == '-'))
			return 0;
	return 1;
}

static int host_is_ip(const char *host)
{
	if (host[0] == '[')
		return 1;
	for (; *host && *host != ':'; host++)
		if (!isdigit((unsigned char)*host) && *host != '.')
			return 0;
	return 1;
}

static int host_is_aws(const char *host)
{
	char h[256];
	size_t n = strcspn(host, ":");
	if (n >= sizeof(h))
		return 0;
	memcpy(h, host, n);
	h[n] = '\0';
	return (n >= 14 && strcmp(h + n - 14, ".amazonaws.com") == 0)
		|| (n >= 17 && strcmp(h + n - 17, ".amazonaws.com.cn") == 0);
}

static const char *const known_options[] = {
	"s3.connections", "s3.region", "s3.bucket-lookup", "s3.multipart-threshold", "s3.part-size",
	"s3.stall-timeout", NULL,
};

int cairn_backend_s3_open(cairn_backend **out, const char *spec, int must_exist,
	const cairn_backend_options *opts)
{
	cairn_s3_location loc;
	cairn_http_options hopts;
	cairn_retry_policy policy;
	s3_backend *s3 = NULL;
	cairn_buf b = CAIRN_BUF_INIT;
	const char *v, *lookup;
	char region[80];
	long connections = DEFAULT_CONNECTIONS, stall = 0;
	int dns, r;

	(void)must_exist; /* nothing to check before the first request (repo open reads the config) */
	*out = NULL;
	memset(&loc, 0, sizeof(loc));
	if ((r = cairn_backend_options_check(opts, "s3", known_options)) < 0
		|| (r = cairn_s3_parse_location(&loc, spec)) < 0)
		goto out;
	if (!(s3 = calloc(1, sizeof(*s3)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	s3->base.ops = &s3_ops;
	s3->multipart_threshold = DEFAULT_MULTIPART_THRESHOLD;
	s3->part_size = DEFAULT_PART_SIZE;
	if ((v = cairn_backend_option(opts, "s3.connections"))
		&& (r = cairn_backend_option_long(&connections, "s3.connections", v, 1, 128)) < 0)
		goto out;
	if ((v = cairn_backend_option(opts, "s3.stall-timeout"))
		&& (r = cairn_backend_option_long(&stall, "s3.stall-timeout", v, 1, 86400)) < 0)
		goto out;
	if ((v = cairn_backend_option(opts, "s3.multipart-threshold"))
		&& (r = cairn_backend_option_size(&s3->multipart_threshold, "s3.multipart-threshold", v,
			MIN_PART_SIZE, (uint64_t)CAIRN_BUF_MAX)) < 0)
		goto out;
	if ((v = cairn_backend_option(opts, "s3.part-size"))
		&& (r = cairn_backend_option_size(&s3->part_size, "s3.part-size", v, MIN_PART_SIZE,
			MAX_PART_SIZE)) < 0)
		goto out;

	/* region: -o s3.region, the endpoint's name, the environment, us-east-1 */
	region[0] = '\0';
	if ((v = cairn_backend_option(opts, "s3.region")) && *v)
		snprintf(region, sizeof(region), "%s", v);
	else if (!(loc.host && cairn_s3_region_from_host(region, sizeof(region), loc.host))) {
		if ((v = getenv("AWS_DEFAULT_REGION")) && *v)
			snprintf(region, sizeof(region), "%s", v);
		else if ((v = getenv("AWS_REGION")) && *v)
			snprintf(region, sizeof(region), "%s", v);
		else
			snprintf(region, sizeof(region), "us-east-1");
	}
	if (!valid_region(region)) {
		r = cairn_error_set(CAIRN_EINVAL, "s3: invalid region '%s'", region);
		goto out;
	}
	if ((r = dup_to(&s3->region, region)) < 0)
		goto out;
	if (!loc.host) {
		int cn = strncmp(region, "cn-", 3) == 0;
		if (strcmp(region, "us-east-1") == 0)
			r = dup_to(&loc.host, "s3.amazonaws.com");
		else if ((r = cairn_buf_printf(&b, "s3.%s.amazonaws.com%s", region, cn ? ".cn" : "")) == 0
			&& cairn_buf_cstr(&b))
			loc.host = (char *)cairn_buf_detach(&b, NULL);
		if (r < 0 || !loc.host) {
			r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
	}

	/* bucket lookup */
	lookup = cairn_backend_option(opts, "s3.bucket-lookup");
	if (!lookup || strcmp(lookup, "auto") == 0) {
		dns = host_is_aws(loc.host) && dns_compatible(loc.bucket)
			&& (strcmp(loc.scheme, "http") == 0 || !strchr(loc.bucket, '.'));
	} else if (strcmp(lookup, "dns") == 0) {
		if (!dns_compatible(loc.bucket)) {
			r = cairn_error_set(CAIRN_EINVAL, "s3: bucket '%s' cannot be a host name "
				"(s3.bucket-lookup=dns)", loc.bucket);
			goto out;
		}
		if (host_is_ip(loc.host)) {
			r = cairn_error_set(CAIRN_EINVAL, "s3: s3.bucket-lookup=dns needs a host name, "
				"not the address '%s'", loc.host);
			goto out;
		}
		dns = 1;
	} else if (strcmp(lookup, "path") == 0) {
		dns = 0;
	} else {
		r = cairn_error_set(CAIRN_EINVAL, "invalid value '%s' for option 's3.bucket-lookup': "
			"want auto, dns or path", lookup);
		goto out;
	}
	cairn_buf_clear(&b);
	if (dns) {
		if ((r = cairn_buf_printf(&b, "%s.%s", loc.bucket, loc.host)) < 0 || !cairn_buf_cstr(&b)
			|| !(s3->host_header = (char *)cairn_buf_detach(&b, NULL))
			|| (r = dup_to(&s3->bucket_path, "")) < 0) {
			r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
	} else {
		if ((r = dup_to(&s3->host_header, loc.host)) < 0
			|| (r = cairn_buf_append(&b, "/", 1)) < 0
			|| (r = cairn_sigv4_uri_encode(&b, loc.bucket, strlen(loc.bucket), 0)) < 0
			|| !cairn_buf_cstr(&b) || !(s3->bucket_path = (char *)cairn_buf_detach(&b, NULL))) {
			r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
	}
	if ((r = cairn_buf_printf(&b, "%s://%s", loc.scheme, s3->host_header)) < 0 || !cairn_buf_cstr(&b)
		|| !(s3->base_url = (char *)cairn_buf_detach(&b, NULL))) {
		r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = dup_to(&s3->bucket, loc.bucket)) < 0
		|| (r = cairn_buf_printf(&b, "%s%s", loc.prefix, loc.prefix[0] ? "/" : "")) < 0
		|| !cairn_buf_cstr(&b) || !(s3->prefix = (char *)cairn_buf_detach(&b, NULL))) {
		r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	/* the secret-free display form */
	if ((r = cairn_buf_printf(&b, "s3:%s://%s/%s%s%s", loc.scheme, loc.host, loc.bucket,
			loc.prefix[0] ? "/" : "", loc.prefix)) < 0 || !cairn_buf_cstr(&b)
		|| !(s3->base.location = (char *)cairn_buf_detach(&b, NULL))) {
		r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}

	if ((r = load_credentials(s3, opts)) < 0)
		goto out;
	memset(&hopts, 0, sizeof(hopts));
	cairn_retry_default_policy(&policy);
	hopts.max_connections = (int)connections;
	hopts.cacert = opts ? opts->cacert : NULL;
	hopts.insecure_tls = opts ? opts->insecure_tls : 0;
	hopts.stall_timeout_ms = stall * 1000;
	hopts.canceled = policy.canceled;
	if ((r = cairn_http_new(&s3->http, &hopts)) < 0)
		goto out;
	s3->base.max_connections = (int)connections;
	cairn_log(CAIRN_LOG_DEBUG, "s3", "%s: region %s, %s-style requests to %s, %ld connections",
		s3->base.location, s3->region, dns ? "virtual-hosted" : "path", s3->base_url, connections);
	*out = &s3->base;
	s3 = NULL;
	r = 0;
out:
	if (s3) {
		free(s3->base.location);
		s3__free(&s3->base);
	}
	cairn_s3_location_release(&loc);
	cairn_buf_release(&b);
	return r;
}
