/* backend.c: the public face of backends (include/cairn/backend.h): parsing a
 * location string into a concrete backend, and the dispatch functions that
 * check their arguments once and call through the backend's const ops table.
 *
 * Location strings: "local:PATH" or a plain PATH open the folder backend;
 * "s3:..." the S3 backend (s3.c) and "rest:..." the REST backend (rest.c),
 * each inside the retry wrapper (retry.c).
 * A prefix that looks like a URL scheme ("s3:", "rest:", "sftp:", ...) names
 * a backend; the ones restic knows but cairn does not implement yet answer
 * CAIRN_EUNSUPPORTED, as do unknown schemes ("local:./a:b" reaches a folder
 * whose name contains a colon).
 *
 * Invariants: every handle that reaches a backend has a valid type and, for
 * everything but the config, a name of exactly 64 hex characters, so no
 * backend can be tricked into a path outside its layout ("../x").  The
 * dispatchers keep no state of their own and are as thread-safe as the
 * backend behind them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cairn/id.h>
#include <cairn/sys/backend.h>
#include <cairn/sys/rest.h>

/* Schemes restic accepts; named in the "not supported yet" message. */
static const char *const known_schemes[] = {
	"s3", "rest", "sftp", "b2", "azure", "gs", "swift", "rclone",
};

/* Length of a URL-like scheme at the start of `s` ("s3" for "s3:bucket"),
 * or 0 when `s` has none.  One-letter prefixes are not schemes, so that a
 * drive-letter-like "c:dir" stays a path. */
static size_t scheme_length(const char *s)
{
	size_t i = 0;

	if (!isalpha((unsigned char)s[0]))
		return 0;
	while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')
		i++;
	if (s[i] != ':' || i < 2)
		return 0;
	return i;
}

int cairn_backend_open(cairn_backend **out, const char *location, int must_exist)
{
	return cairn_backend_open_ex(out, location, must_exist, NULL);
}

int cairn_backend_open_ex(cairn_backend **out, const char *location, int must_exist,
	const cairn_backend_options *opts)
{
	cairn_backend *inner = NULL;
	size_t n;

	if (!out || !location)
		return cairn_error_set(CAIRN_EINVAL, "no repository location given");
	*out = NULL;
	if (location[0] == '\0')
		return cairn_error_set(CAIRN_EINVAL, "empty repository location");
	CAIRN_TRY(cairn_backend_options_check(opts, NULL, NULL));
	if (strncmp(location, "s3:", 3) == 0) {
		/* network backends come wrapped in the retry layer */
		CAIRN_TRY(cairn_backend_s3_open(&inner, location + 3, must_exist, opts));
		return cairn_backend_retry_open(out, inner, NULL);
	}
	if (strncmp(location, "rest:", 5) == 0) {
		CAIRN_TRY(cairn_backend_rest_open(&inner, location + 5, must_exist, opts));
		return cairn_backend_retry_open(out, inner, NULL);
	}
	if (strncmp(location, "local:", 6) == 0) {
		if (location[6] == '\0')
			return cairn_error_set(CAIRN_EINVAL, "repository location 'local:' has no path");
		return cairn_backend_local_open(out, location + 6, must_exist);
	}
	n = scheme_length(location);
	if (n == 0)
		return cairn_backend_local_open(out, location, must_exist);
	for (size_t i = 0; i < sizeof(known_schemes) / sizeof(known_schemes[0]); i++)
		if (strlen(known_schemes[i]) == n && strncmp(location, known_schemes[i], n) == 0)
			return cairn_error_set(CAIRN_EUNSUPPORTED, "backend '%.*s' is not supported yet",
				(int)n, location);
	return cairn_error_set(CAIRN_EUNSUPPORTED,
		"unknown backend '%.*s' (for a folder whose name contains ':', write 'local:%s')",
		(int)n, location, location);
}

/* Refuse handles that would leave the layout: bad type, or a name that is
 * not a 64-hex id (the config's name is ignored). */
static int check_handle(const cairn_handle *h)
{
	if (!h)
		return cairn_error_set(CAIRN_EINVAL, "no file handle given");
	if ((int)h->type < CAIRN_FILE_CONFIG || h->type > CAIRN_FILE_PACK)
		return cairn_error_set(CAIRN_EINVAL, "invalid file type %d", (int)h->type);
	if (h->type != CAIRN_FILE_CONFIG && !cairn_id_is_hex(h->name))
		return cairn_error_set(CAIRN_EINVAL, "invalid %s name '%.64s': want 64 hex characters",
			cairn_file_type_name(h->type), h->name);
	return 0;
}

#define CHECK_BACKEND(be) do { if (!(be) || !(be)->ops) \
	return cairn_error_set(CAIRN_EINVAL, "no backend given"); } while (0)

int cairn_backend_create(cairn_backend *be)
{
	CHECK_BACKEND(be);
	return be->ops->create(be);
}

int cairn_backend_save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	CHECK_BACKEND(be);
	CAIRN_TRY(check_handle(h));
	if (!data && len)
		return cairn_error_set(CAIRN_EINVAL, "no data given to save");
	return be->ops->save(be, h, data, len);
}

int cairn_backend_load(cairn_buf *out, cairn_backend *be, const cairn_handle *h,
	uint64_t offset, size_t length)
{
	CHECK_BACKEND(be);
	CAIRN_TRY(check_handle(h));
	if (!out)
		return cairn_error_set(CAIRN_EINVAL, "no output buffer given");
	return be->ops->load(out, be, h, offset, length);
}

int cairn_backend_stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h)
{
	CHECK_BACKEND(be);
	CAIRN_TRY(check_handle(h));
	if (!size_out)
		return cairn_error_set(CAIRN_EINVAL, "no size output given");
	return be->ops->stat(size_out, be, h);
}

int cairn_backend_list(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb,
	void *payload)
{
	CHECK_BACKEND(be);
	if ((int)type <= CAIRN_FILE_CONFIG || type > CAIRN_FILE_PACK)
		return cairn_error_set(CAIRN_EINVAL, "cannot list files of type %d", (int)type);
	if (!cb)
		return cairn_error_set(CAIRN_EINVAL, "no list callback given");
	return be->ops->list(be, type, cb, payload);
}

int cairn_backend_remove(cairn_backend *be, const cairn_handle *h)
{
	CHECK_BACKEND(be);
	CAIRN_TRY(check_handle(h));
	return be->ops->remove(be, h);
}

/* The generic spool: an unlinked temp file in $TMPDIR (or /tmp). */
int cairn_backend_spool_generic(int *fd_out)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		*fd_out = fd;
		return 0;
	}
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/cairn-spool-XXXXXX", dir) >= sizeof(path))
		return cairn_error_set(CAIRN_EINVAL, "temp directory path too long: %s", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot create a temp file in %s", dir);
	unlink(path);
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	*fd_out = fd;
	return 0;
}

int cairn_backend_spool_open(int *fd_out, cairn_backend *be)
{
	CHECK_BACKEND(be);
	*fd_out = -1;
	if (be->ops->spool_open)
		return be->ops->spool_open(fd_out, be);
	return cairn_backend_spool_generic(fd_out);
}

/* Read [0, len) of fd into memory and save it: for backends without save_fd. */
static int save_fd_via_memory(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len)
{
	cairn_buf data = CAIRN_BUF_INIT;
	size_t done = 0;
	int r;

	if (len > SIZE_MAX)
		return cairn_error_set(CAIRN_EINVAL, "object of %llu bytes is too large",
			(unsigned long long)len);
	if ((r = cairn_buf_reserve(&data, (size_t)len)) < 0)
		return r;
	while (done < len) {
		ssize_t n = pread(fd, data.data + done, (size_t)len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot read the spooled %s", cairn_file_type_name(h->type));
			goto out;
		}
		if (n == 0) {
			r = cairn_error_set(CAIRN_EIO, "spooled %s is shorter than %llu bytes",
				cairn_file_type_name(h->type), (unsigned long long)len);
			goto out;
		}
		done += (size_t)n;
	}
	data.len = done;
	r = be->ops->save(be, h, data.data, data.len);
out:
	cairn_buf_release(&data);
	return r;
}

int cairn_backend_save_fd(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
	const cairn_id *sha256)
{
	CHECK_BACKEND(be);
	CAIRN_TRY(check_handle(h));
	if (fd < 0)
		return cairn_error_set(CAIRN_EINVAL, "no file given to save");
	if (be->ops->save_fd)
		return be->ops->save_fd(be, h, fd, len, sha256);
	return save_fd_via_memory(be, h, fd, len);
}

int cairn_backend_max_connections(const cairn_backend *be)
{
	return be && be->max_connections > 0 ? be->max_connections : 1;
}

const char *cairn_backend_location(const cairn_backend *be)
{
	return be && be->location ? be->location : "";
}

void cairn_backend_free(cairn_backend *be)
{
	char *location;

	if (!be)
		return;
	/* ops->free releases the implementation's struct; the location string
	 * belongs to the base and is freed here. */
	location = be->location;
	be->ops->free(be);
	free(location);
}

void cairn_handle_set(cairn_handle *h, cairn_file_type type, const char *name)
{
	size_t n = 0;

	h->type = type;
	if (name) {
		n = strnlen(name, sizeof(h->name) - 1);
		memcpy(h->name, name, n);
	}
	h->name[n] = '\0';
}

const char *cairn_file_type_name(cairn_file_type type)
{
	switch (type) {
	case CAIRN_FILE_CONFIG: return "config";
	case CAIRN_FILE_KEY: return "key";
	case CAIRN_FILE_LOCK: return "lock";
	case CAIRN_FILE_SNAPSHOT: return "snapshot";
	case CAIRN_FILE_INDEX: return "index";
	case CAIRN_FILE_PACK: return "pack";
	}
	return "unknown";
}
