/* http.c: the libcurl handle pool of include/cairn/sys/http.h.
 *
 * Design: one curl easy handle per concurrent request, at most
 * `max_connections` of them, created on first need and kept in an idle
 * stack.  A handle keeps its own connection cache, so a handle taken again
 * reuses its kept-alive connection (curl_easy_reset keeps connections, DNS
 * and TLS-session caches).  A CURLSH share object, locked per data kind,
 * shares DNS results and TLS sessions between the handles.  Requests are
 * blocking: the calling thread runs curl_easy_perform itself, which is what
 * the backend contract (synchronous save/load from many threads) wants.
 * Request bodies come from memory or stream from a file (cairn_http_body,
 * read with pread by the read callback into curl's 1 MiB upload buffer),
 * so an upload's memory does not depend on its size; the seek callback
 * lets curl rewind either kind when it must send the body again.
 *
 * Invariants: a handle is used by one thread at a time (taken from and
 * returned to the idle stack under `mu`); every option is set again after
 * curl_easy_reset, so nothing leaks from one request into the next; the URL
 * is never copied into a message (it may hold a password), only the
 * caller's secret-free `what`.  Signals: CURLOPT_NOSIGNAL everywhere, as
 * required for threaded use; curl_global_init runs once (pthread_once).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include <cairn/version.h>
#include <cairn/sys/http.h>

#define DEFAULT_CONNECTIONS 5
#define MAX_CONNECTIONS 128
#define DEFAULT_CONNECT_MS 30000L
#define DEFAULT_STALL_MS 120000L
#define RECV_BUFFER (512L * 1024)
#define SEND_BUFFER (1024L * 1024)

struct cairn_http {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	CURL **idle;      /* max handles; idle[0..n_idle) are free */
	int n_idle;
	int created;      /* handles that exist (idle or busy) */
	int max;
	CURLSH *share;
	pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
	char *cacert;
	int insecure_tls;
	long connect_ms, stall_ms;
	char *user_agent;
	int (*canceled)(void);
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
	cairn_http *h = userptr;
	(void)handle;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_mu[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
	cairn_http *h = userptr;
	(void)handle;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_mu[data]);
}

int cairn_http_new(cairn_http **out, const cairn_http_options *opts)
{
	cairn_http *h;
	cairn_http_options none;
	int r = 0;

	*out = NULL;
	if (!opts) {
		memset(&none, 0, sizeof(none));
		opts = &none;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return cairn_error_set(CAIRN_EIO, "cannot initialise libcurl: %s", curl_easy_strerror(global_rc));
	if (!(h = calloc(1, sizeof(*h))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	h->max = opts->max_connections > 0 ? opts->max_connections : DEFAULT_CONNECTIONS;
	if (h->max > MAX_CONNECTIONS)
		h->max = MAX_CONNECTIONS;
	h->insecure_tls = opts->insecure_tls;
	h->canceled = opts->canceled;
	h->connect_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_MS;
	h->stall_ms = opts->stall_timeout_ms > 0 ? opts->stall_timeout_ms : DEFAULT_STALL_MS;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&h->share_mu[i], NULL);
	if (!(h->idle = calloc((size_t)h->max, sizeof(*h->idle)))
		|| (opts->cacert && !(h->cacert = strdup(opts->cacert)))
		|| !(h->user_agent = strdup(opts->user_agent ? opts->user_agent : "cairn/" CAIRN_VERSION))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	if (!(h->share = curl_share_init())
		|| curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK
		|| curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK
		|| curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) != CURLSHE_OK
		|| curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK
		|| curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		r = cairn_error_set(CAIRN_EIO, "cannot set up libcurl's shared caches");
		goto out;
	}
	*out = h;
	h = NULL;
out:
	cairn_http_free(h);
	return r;
}

void cairn_http_free(cairn_http *h)
{
	if (!h)
		return;
	/* every handle is idle: the contract says no request is running */
	for (int i = 0; i < h->n_idle; i++)
		curl_easy_cleanup(h->idle[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&h->share_mu[i]);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h->idle);
	free(h->cacert);
	free(h->user_agent);
	free(h);
}

int cairn_http_max_connections(const cairn_http *h)
{
	return h ? h->max : 0;
}

/* Take an idle handle, create one while below the limit, else wait. */
static int acquire(CURL **out, cairn_http *h)
{
	CURL *c = NULL;
	int create = 0;

	pthread_mutex_lock(&h->mu);
	while (h->n_idle == 0 && h->created >= h->max)
		pthread_cond_wait(&h->cv, &h->mu);
	if (h->n_idle > 0) {
		c = h->idle[--h->n_idle];
	} else {
		h->created++;
		create = 1;
	}
	pthread_mutex_unlock(&h->mu);
	if (create && !(c = curl_easy_init())) {
		pthread_mutex_lock(&h->mu);
		h->created--;
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
		return cairn_error_set(CAIRN_ENOMEM, "cannot create a libcurl handle");
	}
	*out = c;
	return 0;
}

static void release(cairn_http *h, CURL *c)
{
	pthread_mutex_lock(&h->mu);
	h->idle[h->n_idle++] = c;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* State of one transfer, seen by the callbacks. */
typedef struct transfer {
	const cairn_http_request *req;
	uint64_t sent;        /* request body bytes handed to curl */
	int read_errno;       /* pread failure; -1 when the file is shorter than the body */
	cairn_buf *body;      /* response body, or NULL */
	size_t cap;           /* response body limit */
	int too_large, no_memory, canceled;
	int (*cancel_cb)(void);
	CURL *curl;
	cairn_buf *headers;
} transfer;

static size_t read_cb(char *dst, size_t size, size_t nitems, void *userdata)
{
	transfer *t = userdata;
	const cairn_http_body *b = &t->req->body;
	uint64_t left = b->len - t->sent;
	size_t want = size * nitems;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (b->fd >= 0) {
		ssize_t n;
		do
			n = pread(b->fd, dst, want, (off_t)(b->offset + t->sent));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			t->read_errno = n < 0 ? errno : -1; /* -1: the file ended early */
			return CURL_READFUNC_ABORT;
		}
		want = (size_t)n;
	} else {
		memcpy(dst, (const unsigned char *)b->data + t->sent, want);
	}
	t->sent += want;
	return want;
}

/* curl rewinds the body when it must send it again (a reused connection
 * that turned out closed, a redirect or an authentication round): the
 * bytes are read again from the source, memory or file. */
static int seek_cb(void *userdata, curl_off_t offset, int origin)
{
	transfer *t = userdata;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->req->body.len)
		return CURL_SEEKFUNC_CANTSEEK;
	t->sent = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	transfer *t = userdata;
	size_t n = size * nmemb;

	if (!t->body)
		return n;
	if (t->body->len == 0 && t->body->cap == 0) {
		/* first bytes: make room for the announced length at once */
		curl_off_t cl = -1;
		if (curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK
			&& cl > 0 && (uint64_t)cl <= t->cap)
			(void)cairn_buf_reserve(t->body, (size_t)cl);
	}
	if (n > t->cap - t->body->len) {
		t->too_large = 1;
		return 0;
	}
	if (cairn_buf_append(t->body, data, n) < 0) {
		t->no_memory = 1;
		return 0;
	}
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userdata)
{
	transfer *t = userdata;
	size_t n = size * nitems;

	/* a new status line starts a new response (after 100 Continue, ...) */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		cairn_buf_clear(t->headers);
		if (t->body)
			cairn_buf_clear(t->body);
	}
	if (t->headers->len + n > 256 * 1024)
		return n; /* absurdly many headers: keep the first ones */
	if (cairn_buf_append(t->headers, data, n) < 0) {
		t->no_memory = 1;
		return 0;
	}
	return n;
}

/* Progress callback: the only place a running transfer can be stopped. */
static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
	curl_off_t ulnow)
{
	transfer *t = userdata;
	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	if (t->cancel_cb && t->cancel_cb()) {
		t->canceled = 1;
		return 1;
	}
	return 0;
}

/* Map a transport failure to a cairn error with a message. */
static int transport_error(CURLcode rc, const transfer *t, const char *errbuf)
{
	const char *what = t->req->what ? t->req->what : "HTTP request";
	const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	if (t->canceled)
		return cairn_error_set(CAIRN_ECANCELED, "cannot %s: interrupted", what);
	if (t->no_memory)
		return cairn_error_set(CAIRN_ENOMEM, "cannot %s: out of memory", what);
	if (t->too_large)
		return cairn_error_set(CAIRN_EIO, "cannot %s: the response is larger than %zu bytes",
			what, t->cap);
	if (t->read_errno < 0)
		return cairn_error_set(CAIRN_EIO, "cannot %s: the file to send is shorter than %llu bytes",
			what, (unsigned long long)(t->req->body.offset + t->req->body.len));
	if (t->read_errno)
		return cairn_error_set_errno(CAIRN_EIO, t->read_errno, "cannot %s: cannot read the request body",
			what);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP3:
		return cairn_error_set(CAIRN_ETRANSIENT, "cannot %s: %s", what, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return cairn_error_set(CAIRN_EIO, "cannot %s: TLS: %s (trust a CA with --cacert, or skip "
			"the check with --insecure-tls)", what, detail);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return cairn_error_set(CAIRN_EINVAL, "cannot %s: %s", what, detail);
	case CURLE_OUT_OF_MEMORY:
		return cairn_error_set(CAIRN_ENOMEM, "cannot %s: out of memory", what);
	default:
		return cairn_error_set(CAIRN_EIO, "cannot %s: %s", what, detail);
	}
}

static int has_header(const cairn_http_request *req, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->n_headers; i++)
		if (strncasecmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
			return 1;
	return 0;
}

#define SET(opt, val) do { if ((rc = curl_easy_setopt(c, opt, val)) != CURLE_OK) goto curl_failed; } while (0)

int cairn_http_perform(cairn_http *h, const cairn_http_request *req, cairn_http_response *resp)
{
	struct curl_slist *list = NULL, *grown;
	char errbuf[CURL_ERROR_SIZE];
	CURL *c = NULL;
	CURLcode rc = CURLE_OK;
	transfer t;
	int upload, r = 0;

	if (!h || !req || !resp || !req->method || !req->url)
		return cairn_error_set(CAIRN_EINVAL, "incomplete HTTP request");
	if (req->body.len && !req->body.data && req->body.fd < 0)
		return cairn_error_set(CAIRN_EINVAL, "HTTP request body of %llu bytes has no source",
			(unsigned long long)req->body.len);
	resp->status = 0;
	cairn_buf_clear(&resp->headers);
	if (resp->body)
		cairn_buf_clear(resp->body);
	if (req->body.fd >= 0) {
		/* a file shorter than the body fails before a byte is sent: a
		 * request cut off midway may leave a partial object on some
		 * servers (rclone shows it until it notices) */
		struct stat st;
		if (fstat(req->body.fd, &st) < 0)
			return cairn_error_set_errno(CAIRN_EIO, errno, "cannot %s: cannot read the file to send",
				req->what ? req->what : "send an HTTP request");
		if ((uint64_t)st.st_size < req->body.offset + req->body.len)
			return cairn_error_set(CAIRN_EIO, "cannot %s: the file to send has %llu bytes, not "
				"%llu", req->what ? req->what : "send an HTTP request",
				(unsigned long long)st.st_size,
				(unsigned long long)(req->body.offset + req->body.len));
	}
	memset(&t, 0, sizeof(t));
	t.req = req;
	t.body = resp->body;
	t.cap = req->max_response ? req->max_response : CAIRN_BUF_MAX;
	t.headers = &resp->headers;
	t.cancel_cb = h->canceled;
	errbuf[0] = '\0';

	for (size_t i = 0; i < req->n_headers; i++) {
		if (!(grown = curl_slist_append(list, req->headers[i])))
			goto no_memory;
		list = grown;
	}
	/* no 100-continue round trip (and no 1 s wait on servers that ignore it) */
	if (!has_header(req, "Expect")) {
		if (!(grown = curl_slist_append(list, "Expect:")))
			goto no_memory;
		list = grown;
	}

	if ((r = acquire(&c, h)) < 0)
		goto out;
	t.curl = c;
	curl_easy_reset(c);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_SHARE, h->share);
	SET(CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, (h->stall_ms + 999) / 1000);
	SET(CURLOPT_USERAGENT, h->user_agent);
	SET(CURLOPT_BUFFERSIZE, RECV_BUFFER);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, SEND_BUFFER);
	if (h->cacert)
		SET(CURLOPT_CAINFO, h->cacert);
	if (h->insecure_tls) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	SET(CURLOPT_HTTPHEADER, list);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, &t);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, &t);
	if (h->canceled) {
		SET(CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		SET(CURLOPT_XFERINFODATA, &t);
		SET(CURLOPT_NOPROGRESS, 0L);
	}

	upload = req->body.len > 0 || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0;
	if (strcmp(req->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (upload) {
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body.len);
		SET(CURLOPT_READFUNCTION, read_cb);
		SET(CURLOPT_READDATA, &t);
		SET(CURLOPT_SEEKFUNCTION, seek_cb);
		SET(CURLOPT_SEEKDATA, &t);
		if (strcmp(req->method, "PUT") != 0)
			SET(CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, req->method);
	}

	rc = curl_easy_perform(c);
	if (rc != CURLE_OK || t.too_large || t.no_memory || t.read_errno || t.canceled) {
		r = transport_error(rc, &t, errbuf);
		goto out;
	}
	SET(CURLOPT_ERRORBUFFER, NULL);
	if ((rc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status)) != CURLE_OK)
		goto curl_failed;
	r = 0;
	goto out;

curl_failed:
	r = cairn_error_set(CAIRN_EIO, "cannot %s: libcurl: %s", req->what ? req->what : "HTTP request",
		curl_easy_strerror(rc));
	goto out;
no_memory:
	r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
out:
	if (c) {
		/* the handle must not point at our stack after we return */
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
		release(h, c);
	}
	curl_slist_free_all(list);
	if (r < 0) {
		resp->status = 0;
		if (resp->body)
			cairn_buf_clear(resp->body);
	}
	return r;
}

cairn_http_body cairn_http_body_slice(const cairn_http_body *b, uint64_t off, uint64_t len)
{
	cairn_http_body part = *b;

	assert(off <= b->len && len <= b->len - off);
	if (part.fd >= 0)
		part.offset += off;
	else
		part.data = (const unsigned char *)b->data + off;
	part.len = len;
	return part;
}

#define HASH_CHUNK ((size_t)1 << 20)

int cairn_http_body_sha256(cairn_id *out, const cairn_http_body *b, const char *what)
{
	cairn_sha256_ctx *ctx = NULL;
	unsigned char *chunk = NULL;
	uint64_t done = 0;
	int r = 0;

	if (b->fd < 0) {
		cairn_sha256(out, b->len ? b->data : "", (size_t)b->len);
		return 0;
	}
	if ((r = cairn_sha256_new(&ctx)) < 0)
		goto out;
	if (!(chunk = malloc(HASH_CHUNK))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	while (done < b->len) {
		size_t want = b->len - done < HASH_CHUNK ? (size_t)(b->len - done) : HASH_CHUNK;
		ssize_t n = pread(b->fd, chunk, want, (off_t)(b->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot %s: cannot read the file to send",
				what ? what : "send an HTTP request");
			goto out;
		}
		if (n == 0) {
			r = cairn_error_set(CAIRN_EIO, "cannot %s: the file to send is shorter than %llu "
				"bytes", what ? what : "send an HTTP request",
				(unsigned long long)(b->offset + b->len));
			goto out;
		}
		cairn_sha256_update(ctx, chunk, (size_t)n);
		done += (uint64_t)n;
	}
	cairn_sha256_final(out, ctx);
out:
	free(chunk);
	cairn_sha256_free(ctx);
	return r;
}

int cairn_http_response_header(const cairn_http_response *resp, const char *name, char *out,
	size_t size)
{
	const char *p = (const char *)resp->headers.data, *end = p + resp->headers.len;
	size_t n = strlen(name);

	if (size)
		out[0] = '\0';
	if (!p)
		return 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		if ((size_t)(line_end - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *ve = line_end;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (size) {
				size_t len = (size_t)(ve - v) < size - 1 ? (size_t)(ve - v) : size - 1;
				memcpy(out, v, len);
				out[len] = '\0';
			}
			return 1;
		}
		p = eol ? eol + 1 : end;
	}
	return 0;
}

void cairn_http_response_release(cairn_http_response *resp)
{
	if (resp)
		cairn_buf_release(&resp->headers);
}

int cairn_http_status_error(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	if (status == 404)
		return CAIRN_ENOTFOUND;
	if (status == 401 || status == 403)
		return CAIRN_EAUTH;
	if (status == 408 || status == 429 || (status >= 500 && status < 600))
		return CAIRN_ETRANSIENT;
	return CAIRN_EIO;
}
