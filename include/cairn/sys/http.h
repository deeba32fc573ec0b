/* sys/http.h: a pool of libcurl handles with keep-alive, shared by the
 * HTTP backends (S3, REST).
 *
 * A cairn_http holds up to `max_connections` curl easy handles; each keeps
 * its connection open between requests.  cairn_http_perform() borrows a
 * handle (waiting while all are busy), runs one request to completion and
 * gives it back, so at most max_connections requests are in flight and
 * connections are reused.  DNS results and TLS sessions are shared between
 * the handles.
 *
 * Thread-safety: cairn_http_perform() may be called from any number of
 * threads at once; new/free are not concurrent with anything.
 *
 * Secrets: the URL may carry user:password@ (REST) and headers may carry
 * credentials; neither is ever put in a message or a log record.  Messages
 * name the request by `what`, which the caller must keep secret-free.
 *
 * Errors: cairn_http_perform() fails only when no HTTP response was
 * received in full (connection refused or reset, timeout, TLS failure, a
 * response body above the cap, ...).  Transport failures that may pass are
 * CAIRN_ETRANSIENT; TLS verification failures, bad URLs and local file
 * errors are permanent; a request stopped by `canceled` is CAIRN_ECANCELED.  Any HTTP status, 404 and 500 included, is a
 * success of perform(): the caller reads resp->status (see
 * cairn_http_status_error for the usual mapping).
 */
#ifndef CAIRN_SYS_HTTP_H
#define CAIRN_SYS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "../buf.h"
#include "../id.h"

typedef struct cairn_http cairn_http;

typedef struct cairn_http_options {
	int max_connections;     /* parallel requests and kept-alive connections; <= 0: 5 */
	const char *cacert;      /* PEM file of CAs to trust instead of the system's; NULL: system */
	int insecure_tls;        /* 1: do not verify the server's certificate (only when asked) */
	long connect_timeout_ms; /* 0: 30 s */
	long stall_timeout_ms;   /* a transfer that moves no byte this long fails; 0: 120 s */
	const char *user_agent;  /* NULL: "cairn/<version>" */
	int (*canceled)(void);   /* optional; polled during transfers: non-zero ends the
	                          * request with CAIRN_ECANCELED */
} cairn_http_options;

/* A request body: `len` bytes, either from memory (`data`) or, when fd >= 0,
 * from that file at `offset`, read with pread (the file offset is neither
 * used nor moved, so one fd may serve several requests, also at once, and a
 * request sent again re-reads the same bytes).  A file body is streamed: the
 * memory a request takes does not grow with len.  Borrowed by the request
 * for the duration of cairn_http_perform. */
typedef struct cairn_http_body {
	const void *data;
	int fd;
	uint64_t offset;
	uint64_t len;
} cairn_http_body;

#define CAIRN_HTTP_BODY_INIT { NULL, -1, 0, 0 }

static inline cairn_http_body cairn_http_body_mem(const void *data, size_t len)
{
	cairn_http_body b = { data, -1, 0, (uint64_t)len };
	return b;
}

static inline cairn_http_body cairn_http_body_file(int fd, uint64_t offset, uint64_t len)
{
	cairn_http_body b = { NULL, fd, offset, len };
	return b;
}

/* Bytes [off, off + len) of b as a body of its own (off + len <= b->len). */
cairn_http_body cairn_http_body_slice(const cairn_http_body *b, uint64_t off, uint64_t len);

/* SHA-256 of a body (S3 signs the payload): memory at once, a file read in
 * bounded chunks.  CAIRN_EIO naming `what` ("store pack 'data/..' in ..")
 * when the file cannot be read or is shorter than the body; CAIRN_ENOMEM. */
int cairn_http_body_sha256(cairn_id *out, const cairn_http_body *b, const char *what);

typedef struct cairn_http_request {
	const char *method;   /* "GET", "HEAD", "PUT", "POST", "DELETE", ... */
	const char *url;      /* http:// or https:// only; may carry user:password@ */
	const char *const *headers; /* "Name: value" lines; "Name:" removes a default header */
	size_t n_headers;
	/* The request body (see cairn_http_body).  None: CAIRN_HTTP_BODY_INIT;
	 * PUT and POST then send "Content-Length: 0". */
	cairn_http_body body;
	size_t max_response;  /* a longer response body fails (CAIRN_EIO); 0: CAIRN_BUF_MAX */
	const char *what;     /* secret-free name for messages: "GET 'config' in s3:..." */
} cairn_http_request;

#define CAIRN_HTTP_REQUEST_INIT { NULL, NULL, NULL, 0, CAIRN_HTTP_BODY_INIT, 0, NULL }

typedef struct cairn_http_response {
	long status;      /* HTTP status of the final response */
	cairn_buf *body;  /* borrowed: receives the body (replaced); NULL: discarded */
	cairn_buf headers; /* owned: the final response's header lines, "Name: value\r\n" */
} cairn_http_response;

#define CAIRN_HTTP_RESPONSE_INIT { 0, NULL, CAIRN_BUF_INIT }

/* Create a pool (no connection is opened yet).  opts may be NULL.  The
 * caller frees with cairn_http_free. */
int cairn_http_new(cairn_http **out, const cairn_http_options *opts);

/* Close every connection and free the pool; NULL is a no-op.  No request
 * may be running. */
void cairn_http_free(cairn_http *h);

/* The pool's connection limit. */
int cairn_http_max_connections(const cairn_http *h);

/* Run one request and wait for its complete response (see the errors
 * above).  resp->status and resp->headers are replaced; resp->body, when
 * set, receives the body.  On failure resp->status is 0.  Release
 * resp->headers with cairn_http_response_release. */
int cairn_http_perform(cairn_http *h, const cairn_http_request *req, cairn_http_response *resp);

/* Copy the value of response header `name` (case-insensitive, trimmed) into
 * out (size bytes, NUL-terminated, cut if longer).  1 if present, 0 if not. */
int cairn_http_response_header(const cairn_http_response *resp, const char *name, char *out,
	size_t size);

/* Free resp->headers (not the borrowed body). */
void cairn_http_response_release(cairn_http_response *resp);

/* The usual meaning of an HTTP status: 0 for 2xx, CAIRN_ENOTFOUND for 404,
 * CAIRN_EAUTH for 401 and 403, CAIRN_ETRANSIENT for 408, 429 and 5xx,
 * CAIRN_EIO for anything else.  Sets no message. */
int cairn_http_status_error(long status);

#endif
