/* sys/sigv4.h: AWS Signature Version 4, the signer of the S3 backend.
 *
 * cairn signs S3 requests itself (OpenSSL HMAC-SHA256) instead of using
 * libcurl's CURLOPT_AWS_SIGV4, which in 7.88 neither signs the payload hash
 * header nor canonicalises the query string.  The functions are pure: no
 * state, safe from any thread.  Tested against AWS's published test suite
 * (tests/unit/test_sigv4.c) and, end to end, against a strict S3 server.
 *
 * S3 rules, which differ from the generic suite in one point: the path is
 * never normalised ("//", "." and ".." are kept), each segment is only
 * decoded and re-encoded once.  The query is split at '&' and '=', decoded,
 * re-encoded (RFC 3986 unreserved characters kept, everything else %XX in
 * upper case) and sorted by name, then value; a parameter without '=' signs
 * as "name=".  Header names are lower-cased, values trimmed with inner runs
 * of spaces collapsed; repeated names join their values with ',' in order.
 *
 * The secret key and a session token pass through these functions: buffers
 * that hold them (canonical request with x-amz-security-token) should be
 * released with cairn_buf_wipe.
 */
#ifndef CAIRN_SYS_SIGV4_H
#define CAIRN_SYS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "../buf.h"

/* SHA-256 of the empty string, the payload hash of a request without body. */
#define CAIRN_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct cairn_sigv4_header {
	const char *name;  /* any case; "host" must be among the signed headers */
	const char *value; /* as sent */
} cairn_sigv4_header;

typedef struct cairn_sigv4_request {
	const char *method;     /* "GET", "PUT", ... */
	const char *path;       /* request path as sent ("/bucket/key"), encoded or not */
	const char *query;      /* query as sent, without '?'; NULL or "" for none */
	const cairn_sigv4_header *headers; /* every header to sign */
	size_t n_headers;
	const char *payload_sha256; /* lowercase hex SHA-256 of the body */
} cairn_sigv4_request;

typedef struct cairn_sigv4_scope {
	const char *access_key;
	const char *secret_key;
	const char *region;   /* "us-east-1" */
	const char *service;  /* "s3" */
	const char *amz_date; /* "20150830T123600Z": the x-amz-date header's value */
} cairn_sigv4_scope;

/* The canonical request (AWS's "creq") into out, replacing its contents.
 * CAIRN_EINVAL for a request without method, path or payload hash, or a
 * header name that is empty or not a token; CAIRN_ENOMEM. */
int cairn_sigv4_canonical_request(cairn_buf *out, const cairn_sigv4_request *req);

/* The string to sign ("sts") into out, replacing its contents. */
int cairn_sigv4_string_to_sign(cairn_buf *out, const cairn_sigv4_request *req,
	const cairn_sigv4_scope *scope);

/* The value of the Authorization header into out, replacing its contents:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=<64 hex>". */
int cairn_sigv4_authorization(cairn_buf *out, const cairn_sigv4_request *req,
	const cairn_sigv4_scope *scope);

/* "YYYYMMDDTHHMMSSZ" of t in UTC. */
void cairn_sigv4_amz_date(char out[17], time_t t);

/* Lowercase hex SHA-256 of data. */
void cairn_sigv4_sha256_hex(char out[65], const void *data, size_t len);

/* Append s[0..len) percent-encoded as SigV4 wants: A-Z a-z 0-9 - . _ ~ kept,
 * '/' kept when keep_slash, every other byte %XX (upper-case hex). */
int cairn_sigv4_uri_encode(cairn_buf *out, const char *s, size_t len, int keep_slash);

#endif
