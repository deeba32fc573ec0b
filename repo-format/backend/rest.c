/* rest.c: the REST backend, restic's REST protocol version 2 (restic
 * doc/REST_backend.rst), as served by rest-server and `rclone serve restic`.
 *
 * Location: "rest:http[s]://[USER:PASS@]HOST[:PORT]/[PATH]".  The URL is the
 * repository's root; a missing final '/' is added (the protocol wants one).
 * User and password, if any, stay in the request URL, where libcurl turns
 * them into HTTP basic auth; the location shown to users replaces the
 * password with "***", as restic's StripPassword does.  Percent-escapes in
 * user and password are decoded by libcurl.
 *
 * Requests (every one with "Accept: application/vnd.x.restic.rest.v2"):
 *   create  HEAD config (must be 404), then POST <root>?create=true
 *   save    POST <root><type>/<name> with the bytes; 200 is success.
 *           save_fd sends them straight from the file (pread), so an
 *           object of any size costs a fixed amount of memory
 *   load    GET, with "Range: bytes=OFF-END" unless the whole object is
 *           wanted; 200 (whole object, sliced here) or 206
 *   stat    HEAD, size from Content-Length
 *   list    GET <root><type>/: v2 answers (Content-Type v2) carry names and
 *           sizes; a v1 server's list of names is completed with one HEAD
 *           per object, as restic does
 *   remove  DELETE
 * The server keeps packs as data/<xx>/<name>; in the protocol they are just
 * data/<name>, so this backend never sees the fan-out.
 *
 * Answers: 404 is CAIRN_ENOTFOUND, 401/403 CAIRN_EAUTH, 408/429/5xx
 * CAIRN_ETRANSIENT, other non-2xx statuses permanent (cairn_http_status_
 * error).  A short or oversized answer to a load is CAIRN_ECORRUPT
 * "truncated"; so is 416 (range not satisfiable).  rclone answers a range
 * that starts beyond the end with an empty 206 whose Content-Range names
 * the real size, which is checked too.  Every message names the operation,
 * the object, the secret-free location and the server's status and text.
 * Retrying transient failures is not done here: cairn_backend_open wraps
 * this backend in the retry layer (retry.c).
 *
 * Options ("-o rest.key=value"): rest.connections (parallel requests,
 * default 5, restic's default) and rest.stall-timeout (seconds a transfer
 * may move no byte before it fails as transient, default 120).
 *
 * Threads: the state (URLs, the curl pool) is fixed at open; the pool lends
 * one curl handle per request, so any number of threads may call in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <cairn/id.h>
#include <cairn/sys/backend.h>
#include <cairn/sys/http.h>
#include <cairn/sys/rest.h>

#define ACCEPT_V2 "Accept: application/vnd.x.restic.rest.v2"
#define CONTENT_TYPE_V2 "application/vnd.x.restic.rest.v2"
#define DEFAULT_CONNECTIONS 5

typedef struct rest_backend {
	cairn_backend base; /* first member: cairn_backend* <-> rest_backend* */
	cairn_http *http;   /* owned */
	char *root;         /* the repository URL ending in '/'; may hold a password */
} rest_backend;

static const cairn_backend_ops rest_ops;

static rest_backend *rest_downcast(cairn_backend *be)
{
	return (rest_backend *)be;
}

/* The protocol's path of an object: "config", "data/<id>", "keys/<id>"... */
static void object_path(char *out, size_t size, const cairn_handle *h)
{
	if (h->type == CAIRN_FILE_CONFIG)
		snprintf(out, size, "config");
	else
		snprintf(out, size, "%s/%s", cairn_layout_dir(h->type), h->name);
}

/* root + rel into a malloc'ed string; NULL on ENOMEM (message set). */
static char *url_of(const rest_backend *rb, const char *rel)
{
	size_t a = strlen(rb->root), b = strlen(rel);
	char *url = malloc(a + b + 1);

	if (!url) {
		cairn_error_set(CAIRN_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(url, rb->root, a);
	memcpy(url + a, rel, b + 1);
	return url;
}

/* The server's own words about a failure: its first line if it is short
 * printable text, else "". */
static void server_text(char *out, size_t size, const cairn_buf *body)
{
	size_t n = 0;

	out[0] = '\0';
	if (!body || !body->data || size < 5)
		return;
	while (n < body->len && n < size - 4 && body->data[n] != '\n' && body->data[n] != '\r') {
		unsigned char c = body->data[n];
		if (c < 0x20 || c > 0x7e)
			return; /* not text: say nothing */
		n++;
	}
	if (n > 0)
		snprintf(out, size, " (%.*s)", (int)n, (const char *)body->data);
}

/* A non-2xx status as a cairn error naming the operation (e.g. "cannot
 * load pack 'data/ab..' from rest:http://h/r/: HTTP 500 (Internal error)"). */
static int status_error(long status, const char *what, const cairn_buf *body)
{
	char text[160];
	int code = cairn_http_status_error(status);

	server_text(text, sizeof(text), body);
	if (code == 0)
		code = CAIRN_EIO; /* a 2xx the operation does not expect */
	if (status == 401)
		return cairn_error_set(CAIRN_EAUTH, "cannot %s: HTTP 401 unauthorized: wrong or missing "
			"user and password in the REST URL%s", what, text);
	if (status == 403)
		return cairn_error_set(CAIRN_EAUTH, "cannot %s: HTTP 403 forbidden: access denied%s",
			what, text);
	if (status == 404)
		return cairn_error_set(CAIRN_ENOTFOUND, "cannot %s: HTTP 404 not found: it does not "
			"exist%s", what, text);
	return cairn_error_set(code, "cannot %s: HTTP %ld%s", what, status, text);
}

/* One request: method on root+rel, optional request body `send` (memory
 * or a file range, NULL: none), response body into `body` (borrowed, may
 * be NULL).  Extra header lines are added after the
 * Accept header.  On success *status_out holds the status (any); the
 * response headers are returned in resp (caller releases). */
static int request(rest_backend *rb, const char *method, const char *rel,
	const char *const *extra, size_t n_extra, const cairn_http_body *send,
	cairn_buf *body, const char *what, cairn_http_response *resp)
{
	const char *headers[4];
	cairn_http_request req = CAIRN_HTTP_REQUEST_INIT;
	char *url = url_of(rb, rel);
	size_t n = 0;
	int r;

	if (!url)
		return CAIRN_ENOMEM;
	headers[n++] = ACCEPT_V2;
	for (size_t i = 0; i < n_extra && n < sizeof(headers) / sizeof(headers[0]); i++)
		headers[n++] = extra[i];
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.n_headers = n;
	if (send)
		req.body = *send;
	req.what = what;
	resp->body = body;
	r = cairn_http_perform(rb->http, &req, resp);
	free(url);
	return r;
}

static int rest__stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h);

static int rest__create(cairn_backend *be)
{
	rest_backend *rb = rest_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf body = CAIRN_BUF_INIT;
	cairn_handle config;
	char what[600];
	uint64_t size;
	int r;

	cairn_handle_set(&config, CAIRN_FILE_CONFIG, NULL);
	r = rest__stat(&size, be, &config);
	if (r == 0)
		return cairn_error_set(CAIRN_EEXISTS, "repository '%s' already exists (it has a config)",
			be->location);
	if (r != CAIRN_ENOTFOUND)
		return r;
	snprintf(what, sizeof(what), "create the repository at %s", be->location);
	if ((r = request(rb, "POST", "?create=true", NULL, 0, NULL, &body, what, &resp)) < 0)
		goto out;
	if (resp.status != 200)
		r = status_error(resp.status, what, &body);
out:
	cairn_http_response_release(&resp);
	cairn_buf_release(&body);
	return r;
}

/* POST the object's bytes (memory or a file, streamed): both saves. */
static int save_body(cairn_backend *be, const cairn_handle *h, const cairn_http_body *send)
{
	static const char *const extra[] = { "Content-Type: application/octet-stream" };
	rest_backend *rb = rest_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf body = CAIRN_BUF_INIT;
	char path[96], what[700];
	int r;

	object_path(path, sizeof(path), h);
	snprintf(what, sizeof(what), "save %s '%s' to %s", cairn_file_type_name(h->type), path,
		be->location);
	if ((r = request(rb, "POST", path, extra, 1, send, &body, what, &resp)) < 0)
		goto out;
	if (resp.status != 200 && resp.status != 201 && resp.status != 204)
		r = status_error(resp.status, what, &body);
out:
	cairn_http_response_release(&resp);
	cairn_buf_release(&body);
	return r;
}

static int rest__save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	cairn_http_body send = cairn_http_body_mem(data, len);
	return save_body(be, h, &send);
}

/* The body streams from the file (pread, bounded buffers); the sha256 is
 * of no use to the protocol. */
static int rest__save_fd(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
	const cairn_id *sha256)
{
	cairn_http_body send = cairn_http_body_file(fd, 0, len);
	(void)sha256;
	return save_body(be, h, &send);
}

/* The total size from "Content-Range: bytes A-B/TOTAL"; 0 if absent or
 * unknown ("*"). */
static int content_range_total(uint64_t *total, const cairn_http_response *resp)
{
	char value[128];
	const char *slash;
	char *end;
	unsigned long long v;

	if (!cairn_http_response_header(resp, "Content-Range", value, sizeof(value))
		|| !(slash = strchr(value, '/')) || slash[1] < '0' || slash[1] > '9')
		return 0;
	v = strtoull(slash + 1, &end, 10);
	if (*end)
		return 0;
	*total = v;
	return 1;
}

static int rest__load(cairn_buf *out, cairn_backend *be, const cairn_handle *h,
	uint64_t offset, size_t length)
{
	rest_backend *rb = rest_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	char path[96], what[700], range[80], truncated[760];
	const char *extra[1];
	size_t n_extra = 0;
	uint64_t total;
	int r;

	cairn_buf_clear(out);
	object_path(path, sizeof(path), h);
	snprintf(what, sizeof(what), "load %s '%s' from %s", cairn_file_type_name(h->type), path,
		be->location);
	if (offset > 0 || length > 0) {
		if (length > 0)
			snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
				(unsigned long long)offset, (unsigned long long)(offset + length - 1));
		else
			snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)offset);
		extra[n_extra++] = range;
	}
	if ((r = request(rb, "GET", path, extra, n_extra, NULL, out, what, &resp)) < 0)
		goto out;
	snprintf(truncated, sizeof(truncated), "'%s' in %s is truncated: want %llu bytes at offset "
		"%llu", path, be->location, (unsigned long long)length, (unsigned long long)offset);
	if (resp.status == 416) {
		r = cairn_error_set(CAIRN_ECORRUPT, "%s, the server says the range is beyond the end",
			truncated);
		goto out;
	}
	if (resp.status != 200 && resp.status != 206) {
		r = status_error(resp.status, what, out);
		goto out;
	}
	if (resp.status == 200 && (offset > 0 || length > 0)) {
		/* the server ignored the range and sent the whole object */
		if (offset > out->len || (length > 0 && length > out->len - offset)) {
			r = cairn_error_set(CAIRN_ECORRUPT, "%s, the object has %zu", truncated, out->len);
			goto out;
		}
		size_t keep = length > 0 ? length : out->len - (size_t)offset;
		memmove(out->data, out->data + offset, keep);
		out->len = keep;
	}
	if (resp.status == 206 && content_range_total(&total, &resp) && offset > total) {
		r = cairn_error_set(CAIRN_ECORRUPT, "%s, the object has %llu", truncated,
			(unsigned long long)total);
		goto out;
	}
	if (length > 0 && out->len != length) {
		r = cairn_error_set(CAIRN_ECORRUPT, "%s, got %zu", truncated, out->len);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		cairn_buf_clear(out);
	cairn_http_response_release(&resp);
	return r;
}

static int rest__stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h)
{
	rest_backend *rb = rest_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	char path[96], what[700], value[32];
	char *end;
	unsigned long long size;
	int r;

	object_path(path, sizeof(path), h);
	snprintf(what, sizeof(what), "stat %s '%s' in %s", cairn_file_type_name(h->type), path,
		be->location);
	if ((r = request(rb, "HEAD", path, NULL, 0, NULL, NULL, what, &resp)) < 0)
		goto out;
	if (resp.status != 200) {
		r = status_error(resp.status, what, NULL);
		goto out;
	}
	if (!cairn_http_response_header(&resp, "Content-Length", value, sizeof(value))
		|| value[0] < '0' || value[0] > '9' || (size = strtoull(value, &end, 10), *end)) {
		r = cairn_error_set(CAIRN_EIO, "cannot %s: the server sent no valid Content-Length",
			what);
		goto out;
	}
	*size_out = size;
out:
	cairn_http_response_release(&resp);
	return r;
}

/* Parse a list answer and call cb per valid name.  v2: [{"name","size"}];
 * v1: ["name", ...], sizes from a HEAD each. */
static int list_parse(rest_backend *rb, cairn_file_type type, const cairn_buf *body, int v2,
	cairn_backend_list_cb cb, void *payload, const char *what)
{
	json_error_t jerr;
	json_t *root = json_loadb((const char *)body->data, body->len, 0, &jerr);
	size_t i;
	json_t *item;
	int r = 0;

	if (!root || !json_is_array(root)) {
		r = cairn_error_set(CAIRN_EIO, "cannot %s: the server's answer is not a JSON array%s%s",
			what, root ? "" : ": ", root ? "" : jerr.text);
		goto out;
	}
	json_array_foreach(root, i, item) {
		const char *name;
		uint64_t size = 0;

		if (v2) {
			json_t *jn = json_object_get(item, "name"), *js = json_object_get(item, "size");
			if (!json_is_string(jn) || !json_is_integer(js) || json_integer_value(js) < 0) {
				r = cairn_error_set(CAIRN_EIO, "cannot %s: entry %zu of the server's answer "
					"lacks a name or a size", what, i);
				goto out;
			}
			name = json_string_value(jn);
			size = (uint64_t)json_integer_value(js);
		} else {
			if (!json_is_string(item)) {
				r = cairn_error_set(CAIRN_EIO, "cannot %s: entry %zu of the server's answer "
					"is not a name", what, i);
				goto out;
			}
			name = json_string_value(item);
		}
		if (!cairn_id_is_hex(name))
			continue;
		if (!v2) {
			cairn_handle h;
			cairn_handle_set(&h, type, name);
			r = rest__stat(&size, &rb->base, &h);
			if (r == CAIRN_ENOTFOUND)
				continue; /* removed since the list was made */
			if (r < 0)
				goto out;
		}
		if ((r = cb(name, size, payload)) != 0)
			goto out;
	}
out:
	json_decref(root);
	return r;
}

static int rest__list(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb,
	void *payload)
{
	rest_backend *rb = rest_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf body = CAIRN_BUF_INIT;
	char dir[16], what[700], ctype[128];
	int r;

	snprintf(dir, sizeof(dir), "%s/", cairn_layout_dir(type));
	snprintf(what, sizeof(what), "list '%s' in %s", dir, be->location);
	if ((r = request(rb, "GET", dir, NULL, 0, NULL, &body, what, &resp)) < 0)
		goto out;
	if (resp.status == 404) {
		r = 0; /* no such directory yet: nothing of this type */
		goto out;
	}
	if (resp.status != 200) {
		r = status_error(resp.status, what, &body);
		goto out;
	}
	cairn_http_response_header(&resp, "Content-Type", ctype, sizeof(ctype));
	r = list_parse(rb, type, &body, strncasecmp(ctype, CONTENT_TYPE_V2,
		strlen(CONTENT_TYPE_V2)) == 0, cb, payload, what);
out:
	cairn_http_response_release(&resp);
	cairn_buf_release(&body);
	return r;
}

static int rest__remove(cairn_backend *be, const cairn_handle *h)
{
	rest_backend *rb = rest_downcast(be);
	cairn_http_response resp = CAIRN_HTTP_RESPONSE_INIT;
	cairn_buf body = CAIRN_BUF_INIT;
	char path[96], what[700];
	int r;

	object_path(path, sizeof(path), h);
	snprintf(what, sizeof(what), "remove %s '%s' from %s", cairn_file_type_name(h->type), path,
		be->location);
	if ((r = request(rb, "DELETE", path, NULL, 0, NULL, &body, what, &resp)) < 0)
		goto out;
	if (resp.status != 200 && resp.status != 204)
		r = status_error(resp.status, what, &body);
out:
	cairn_http_response_release(&resp);
	cairn_buf_release(&body);
	return r;
}

static void rest__free(cairn_backend *be)
{
	rest_backend *rb = rest_downcast(be);

	cairn_http_free(rb->http);
	if (rb->root) {
		/* it may hold the password */
		memset(rb->root, 0, strlen(rb->root));
		free(rb->root);
	}
	free(rb);
}

static const cairn_backend_ops rest_ops = {
	.version = 1,
	.name = "rest",
	.create = rest__create,
	.save = rest__save,
	.load = rest__load,
	.stat = rest__stat,
	.list = rest__list,
	.remove = rest__remove,
	.free = rest__free,
	.save_fd = rest__save_fd,
};

int cairn_rest_parse_url(char **root_out, char **display_out, const char *spec)
{
	const char *auth, *host_end, *at = NULL, *colon = NULL;
	size_t len = strlen(spec);
	int need_slash, r = 0;
	char *root = NULL, *display = NULL;

	*root_out = *display_out = NULL;
	if (strncmp(spec, "http://", 7) == 0)
		auth = spec + 7;
	else if (strncmp(spec, "https://", 8) == 0)
		auth = spec + 8;
	else
		return cairn_error_set(CAIRN_EINVAL, "invalid REST location: want "
			"rest:http(s)://[USER:PASS@]HOST[:PORT]/[PATH]");
	host_end = auth + strcspn(auth, "/?#");
	for (const char *p = auth; p < host_end; p++)
		if (*p == '@')
			at = p;
	if (at)
		colon = memchr(auth, ':', (size_t)(at - auth));
	if ((at ? at + 1 : auth) == host_end || strpbrk(host_end, "?#")) {
		r = cairn_error_set(CAIRN_EINVAL, "invalid REST location: %s",
			(at ? at + 1 : auth) == host_end ? "no host" : "a query or fragment is not allowed");
		goto out;
	}
	need_slash = len == 0 || spec[len - 1] != '/';
	if (!(root = malloc(len + 2))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(root, spec, len);
	if (need_slash)
		root[len++] = '/';
	root[len] = '\0';
	/* display: "rest:" + the URL with a password as "***" */
	if (!(display = malloc(len + 16))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	if (colon)
		snprintf(display, len + 16, "rest:%.*s:***%s", (int)(colon - spec), spec,
			root + (at - spec));
	else
		snprintf(display, len + 16, "rest:%s", root);
	*root_out = root;
	*display_out = display;
	root = display = NULL;
out:
	if (root) {
		memset(root, 0, strlen(spec));
		free(root);
	}
	free(display);
	return r;
}

int cairn_backend_rest_open(cairn_backend **out, const char *spec, int must_exist,
	const cairn_backend_options *opts)
{
	static const char *const known[] = { "rest.connections", "rest.stall-timeout", NULL };
	cairn_http_options ho = { 0 };
	cairn_retry_policy policy;
	rest_backend *rb = NULL;
	const char *v;
	long connections = DEFAULT_CONNECTIONS, stall = 0;
	int r;

	(void)must_exist; /* a server is only asked when the repository is opened */
	*out = NULL;
	if ((r = cairn_backend_options_check(opts, "rest", known)) < 0)
		goto out;
	if ((v = cairn_backend_option(opts, "rest.connections"))
		&& (r = cairn_backend_option_long(&connections, "rest.connections", v, 1, 128)) < 0)
		goto out;
	if ((v = cairn_backend_option(opts, "rest.stall-timeout"))
		&& (r = cairn_backend_option_long(&stall, "rest.stall-timeout", v, 1, 86400)) < 0)
		goto out;
	if (!(rb = calloc(1, sizeof(*rb)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = cairn_rest_parse_url(&rb->root, &rb->base.location, spec)) < 0)
		goto out;
	cairn_retry_default_policy(&policy);
	ho.max_connections = (int)connections;
	ho.cacert = opts ? opts->cacert : NULL;
	ho.insecure_tls = opts ? opts->insecure_tls : 0;
	ho.stall_timeout_ms = stall * 1000;
	ho.canceled = policy.canceled;
	if ((r = cairn_http_new(&rb->http, &ho)) < 0)
		goto out;
	rb->base.ops = &rest_ops;
	rb->base.max_connections = (int)connections;
	*out = &rb->base;
	rb = NULL;
out:
	if (rb) {
		cairn_http_free(rb->http);
		if (rb->root) {
			memset(rb->root, 0, strlen(rb->root));
			free(rb->root);
		}
		free(rb->base.location);
		free(rb);
	}
	return r;
}
