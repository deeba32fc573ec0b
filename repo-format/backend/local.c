/* local.c: the folder backend, a repository in a local directory laid out
 * exactly as restic's local backend does (see layout.c).
 *
 * Saving is atomic and durable: the bytes go to a temp file in the target's
 * own directory, named "<name>-tmp-<16 random hex>" (restic's lister skips
 * names that are not 64 hex, so a leftover temp file is harmless), written in
 * full, fsync'ed, renamed over the final name, and then the directory is
 * fsync'ed.  Any failure unlinks the temp file, so after an error the object
 * does not exist (or still has its old, identical content).  Missing
 * directories (data/XX, keys, ...) are created on demand.
 *
 * Loading uses pread in a loop; a file shorter than the requested range is
 * CAIRN_ECORRUPT "truncated".  Listing walks the type's directory (for packs
 * every sub-directory of data/) and reports only 64-hex names; a missing
 * directory lists as empty.
 *
 * Invariants: the only state is the root path, fixed at open, so every
 * operation may run from any number of threads at once.  Nothing here reads
 * or changes the process's working directory after open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cairn/id.h>
#include <cairn/sys/backend.h>

#define DIR_MODE 0700
#define FILE_MODE 0600

typedef struct local_backend {
	cairn_backend base; /* first member: cairn_backend* <-> local_backend* */
	char *root;         /* repository directory, without trailing '/' */
} local_backend;

static const cairn_backend_ops local_ops;

static local_backend *local_downcast(cairn_backend *be)
{
	return (local_backend *)be;
}

/* "<root>/<rel>" into out (PATH_MAX bytes).  CAIRN_EINVAL when too long. */
static int join(char *out, const local_backend *lb, const char *rel)
{
	int n = rel[0] ? snprintf(out, PATH_MAX, "%s/%s", lb->root, rel)
		: snprintf(out, PATH_MAX, "%s", lb->root);
	if (n < 0 || n >= PATH_MAX)
		return cairn_error_set(CAIRN_EINVAL, "path of '%s' in '%s' is too long", rel, lb->root);
	return 0;
}

/* fsync a directory so that a rename or mkdir in it is durable. */
static int sync_dir(const char *path)
{
	int r = 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot open directory '%s'", path);
	/* Some file systems cannot fsync directories; that is not a failure. */
	if (fsync(fd) < 0 && errno != EINVAL && errno != ENOTSUP)
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot sync directory '%s'", path);
	close(fd);
	return r;
}

/* mkdir that accepts an existing directory.  *created_out (may be NULL)
 * tells whether it was made now. */
static int make_dir(const char *path, int *created_out)
{
	struct stat st;
	int e;

	if (created_out)
		*created_out = 0;
	if (mkdir(path, DIR_MODE) == 0) {
		if (created_out)
			*created_out = 1;
		return 0;
	}
	e = errno;
	if (e != EEXIST)
		return cairn_error_set_errno(CAIRN_EIO, e, "cannot create directory '%s'", path);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return cairn_error_set(CAIRN_EIO, "cannot create directory '%s': a file is in the way", path);
}

/* Make every directory of the relative path `rel_dir` below the root (not
 * the root itself), syncing each parent of a directory created now. */
static int make_dirs_below_root(const local_backend *lb, const char *rel_dir)
{
	char rel[PATH_MAX], path[PATH_MAX], parent[PATH_MAX];
	size_t len = strlen(rel_dir);
	int created;

	if (len >= sizeof(rel))
		return cairn_error_set(CAIRN_EINVAL, "path '%s' is too long", rel_dir);
	memcpy(rel, rel_dir, len + 1);
	for (size_t i = 0; i <= len; i++) {
		if (rel[i] != '/' && rel[i] != '\0')
			continue;
		rel[i] = '\0';
		CAIRN_TRY(join(path, lb, rel));
		CAIRN_TRY(make_dir(path, &created));
		if (created) {
			char *slash;
			memcpy(parent, path, strlen(path) + 1);
			slash = strrchr(parent, '/');
			if (slash && slash != parent)
				*slash = '\0';
			CAIRN_TRY(sync_dir(parent));
		}
		if (i < len)
			rel[i] = '/';
	}
	return 0;
}

/* 16 random hex digits for a temp name.  Uniqueness is also enforced by
 * O_EXCL, so a weak fallback (clock, pid, counter) is acceptable. */
static void random_suffix(char out[17])
{
	static atomic_uint_fast64_t counter;
	static const char digits[] = "0123456789abcdef";
	uint64_t v;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40)
			^ (atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15ULL);
	}
	for (int i = 0; i < 16; i++)
		out[i] = digits[(v >> (60 - 4 * i)) & 15];
	out[16] = '\0';
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int local__create(cairn_backend *be)
{
	local_backend *lb = local_downcast(be);
	static const char *const dirs[] = { "keys", "locks", "snapshots", "index", "data" };
	char path[PATH_MAX], rel[8];
	struct stat st;
	int r = 0;

	CAIRN_TRY(join(path, lb, "config"));
	if (stat(path, &st) == 0)
		return cairn_error_set(CAIRN_EEXISTS, "repository '%s' already exists (it has a config)",
			lb->root);
	/* mkdir -p of the root, as restic init does */
	CAIRN_TRY(join(path, lb, ""));
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		r = make_dir(path, NULL);
		*p = c;
		if (r < 0)
			return r;
		if (c == '\0')
			break;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		CAIRN_TRY(join(path, lb, dirs[i]));
		CAIRN_TRY(make_dir(path, NULL));
	}
	for (int i = 0; i < 256; i++) {
		snprintf(rel, sizeof(rel), "data/%02x", i);
		CAIRN_TRY(join(path, lb, rel));
		CAIRN_TRY(make_dir(path, NULL));
	}
	CAIRN_TRY(join(path, lb, "data"));
	CAIRN_TRY(sync_dir(path));
	CAIRN_TRY(join(path, lb, ""));
	return sync_dir(path);
}

static int local__save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	local_backend *lb = local_downcast(be);
	char rel[128], rel_dir[128], final[PATH_MAX], dir[PATH_MAX], tmp[PATH_MAX + 32], suffix[17];
	const char *slash;
	int fd = -1, r = 0, e, made_dirs = 0;
	int have_tmp = 0;

	cairn_layout_path(rel, sizeof(rel), h);
	slash = strrchr(rel, '/');
	snprintf(rel_dir, sizeof(rel_dir), "%.*s", slash ? (int)(slash - rel) : 0, rel);
	if ((r = join(final, lb, rel)) < 0 || (r = join(dir, lb, rel_dir)) < 0)
		goto out;

	for (int attempt = 0; fd < 0; attempt++) {
		random_suffix(suffix);
		snprintf(tmp, sizeof(tmp), "%s-tmp-%s", final, suffix);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
		if (fd >= 0)
			break;
		e = errno;
		if (e == ENOENT && rel_dir[0] && !made_dirs) {
			/* data/XX (or keys/, ...) not there yet: make it, retry */
			made_dirs = 1;
			if ((r = make_dirs_below_root(lb, rel_dir)) < 0)
				goto out;
			continue;
		}
		if (e == EEXIST && attempt < 8)
			continue;
		r = cairn_error_set_errno(CAIRN_EIO, e, "cannot create a temp file for '%s' in '%s'",
			rel, lb->root);
		goto out;
	}
	have_tmp = 1;

	if ((e = write_all(fd, data, len)) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, -e, "cannot write '%s' in '%s'", rel, lb->root);
		goto out;
	}
	if (fsync(fd) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot sync '%s' in '%s'", rel, lb->root);
		goto out;
	}
	e = close(fd);
	fd = -1;
	if (e < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot close '%s' in '%s'", rel, lb->root);
		goto out;
	}
	if (rename(tmp, final) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot rename the temp file to '%s' in '%s'",
			rel, lb->root);
		goto out;
	}
	have_tmp = 0;
	r = sync_dir(dir);

out:
	if (fd >= 0)
		close(fd);
	if (have_tmp)
		unlink(tmp);
	return r;
}

/* open() an object for reading; ENOENT becomes CAIRN_ENOTFOUND. */
static int open_object(int *fd_out, const local_backend *lb, const cairn_handle *h,
	char *rel, size_t rel_size)
{
	char path[PATH_MAX];
	int fd;

	cairn_layout_path(rel, rel_size, h);
	CAIRN_TRY(join(path, lb, rel));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return cairn_error_set(CAIRN_ENOTFOUND, "%s '%s' does not exist in '%s'",
				cairn_file_type_name(h->type), rel, lb->root);
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot open '%s' in '%s'", rel, lb->root);
	}
	*fd_out = fd;
	return 0;
}

static int local__load(cairn_buf *out, cairn_backend *be, const cairn_handle *h,
	uint64_t offset, size_t length)
{
	local_backend *lb = local_downcast(be);
	char rel[128];
	struct stat st;
	uint64_t size, want;
	size_t done = 0;
	int fd = -1, r;

	cairn_buf_clear(out);
	if ((r = open_object(&fd, lb, h, rel, sizeof(rel))) < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot stat '%s' in '%s'", rel, lb->root);
		goto out;
	}
	size = (uint64_t)st.st_size;
	if (length == 0 && offset > size) {
		r = cairn_error_set(CAIRN_ECORRUPT, "'%s' is truncated: want bytes from offset %llu, "
			"file has %llu", rel, (unsigned long long)offset, (unsigned long long)size);
		goto out;
	}
	want = length ? (uint64_t)length : size - offset;
	if (offset > size || want > size - offset) {
		r = cairn_error_set(CAIRN_ECORRUPT, "'%s' is truncated: want %llu bytes at offset %llu, "
			"file has %llu", rel, (unsigned long long)want, (unsigned long long)offset,
			(unsigned long long)size);
		goto out;
	}
	if (want > CAIRN_BUF_MAX || cairn_buf_reserve(out, (size_t)want) < 0) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot load '%s': %llu bytes do not fit in memory",
			rel, (unsigned long long)want);
		goto out;
	}
	while (done < want) {
		ssize_t n = pread(fd, out->data + done, (size_t)want - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot read '%s' in '%s'", rel, lb->root);
			goto out;
		}
		if (n == 0) {
			/* the file shrank under us */
			r = cairn_error_set(CAIRN_ECORRUPT, "'%s' is truncated: want %llu bytes at offset "
				"%llu, file has %llu", rel, (unsigned long long)want,
				(unsigned long long)offset, (unsigned long long)(offset + done));
			goto out;
		}
		done += (size_t)n;
	}
	out->len = done;
	r = 0;
out:
	if (r < 0)
		cairn_buf_clear(out);
	if (fd >= 0)
		close(fd);
	return r;
}

static int local__stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h)
{
	local_backend *lb = local_downcast(be);
	char rel[128], path[PATH_MAX];
	struct stat st;

	cairn_layout_path(rel, sizeof(rel), h);
	CAIRN_TRY(join(path, lb, rel));
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return cairn_error_set(CAIRN_ENOTFOUND, "%s '%s' does not exist in '%s'",
				cairn_file_type_name(h->type), rel, lb->root);
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot stat '%s' in '%s'", rel, lb->root);
	}
	if (!S_ISREG(st.st_mode))
		return cairn_error_set(CAIRN_EIO, "'%s' in '%s' is not a regular file", rel, lb->root);
	*size_out = (uint64_t)st.st_size;
	return 0;
}

/* List the 64-hex regular files of one directory.  A missing directory is
 * empty.  Returns a callback's non-zero result, or a negative error. */
static int list_dir(const char *path, cairn_backend_list_cb cb, void *payload)
{
	DIR *d = opendir(path);
	struct dirent *de;
	struct stat st;
	int r = 0;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot list '%s'", path);
	}
	for (;;) {
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot list '%s'", path);
			break;
		}
		if (!cairn_id_is_hex(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
			if (errno == ENOENT) /* removed while we list */
				continue;
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot stat '%s/%s'", path, de->d_name);
			break;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if ((r = cb(de->d_name, (uint64_t)st.st_size, payload)) != 0)
			break;
	}
	closedir(d);
	return r;
}

static int local__list(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb,
	void *payload)
{
	local_backend *lb = local_downcast(be);
	char path[PATH_MAX], sub[PATH_MAX];
	DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	int r = 0;

	if ((r = join(path, lb, cairn_layout_dir(type))) < 0)
		goto out;
	if (type != CAIRN_FILE_PACK) {
		r = list_dir(path, cb, payload);
		goto out;
	}
	/* packs: every sub-directory of data/ (normally 00..ff) */
	if (!(d = opendir(path))) {
		if (errno != ENOENT)
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot list '%s'", path);
		goto out;
	}
	for (;;) {
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot list '%s'", path);
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
			if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
				continue;
		} else if (de->d_type != DT_DIR) {
			continue;
		}
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
			continue;
		if ((r = list_dir(sub, cb, payload)) != 0)
			break;
	}
out:
	if (d)
		closedir(d);
	return r;
}

static int local__remove(cairn_backend *be, const cairn_handle *h)
{
	local_backend *lb = local_downcast(be);
	char rel[128], path[PATH_MAX];

	cairn_layout_path(rel, sizeof(rel), h);
	CAIRN_TRY(join(path, lb, rel));
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return cairn_error_set(CAIRN_ENOTFOUND, "%s '%s' does not exist in '%s'",
				cairn_file_type_name(h->type), rel, lb->root);
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot remove '%s' in '%s'", rel, lb->root);
	}
	return 0;
}

static void local__free(cairn_backend *be)
{
	local_backend *lb = local_downcast(be);
	free(lb->root);
	free(lb);
}

static const cairn_backend_ops local_ops = {
	.version = 1,
	.name = "local",
	.create = local__create,
	.save = local__save,
	.load = local__load,
	.stat = local__stat,
	.list = local__list,
	.remove = local__remove,
	.free = local__free,
};

/* Open the folder backend at `path`.  With must_exist, `path` must be an
 * existing directory (CAIRN_ENOTFOUND otherwise).  The caller frees *out
 * with cairn_backend_free(). */
int cairn_backend_local_open(cairn_backend **out, const char *path, int must_exist)
{
	local_backend *lb = NULL;
	struct stat st;
	size_t len = strlen(path);
	int r = 0;

	*out = NULL;
	if (len == 0)
		return cairn_error_set(CAIRN_EINVAL, "empty repository path");
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len >= PATH_MAX - 80)
		return cairn_error_set(CAIRN_EINVAL, "repository path '%s' is too long", path);
	if (must_exist) {
		if (stat(path, &st) < 0) {
			if (errno == ENOENT)
				return cairn_error_set(CAIRN_ENOTFOUND, "repository '%s' does not exist", path);
			return cairn_error_set_errno(CAIRN_EIO, errno, "cannot open repository '%s'", path);
		}
		if (!S_ISDIR(st.st_mode))
			return cairn_error_set(CAIRN_ENOTFOUND, "repository '%s' is not a directory", path);
	}
	if (!(lb = calloc(1, sizeof(*lb))) || !(lb->root = strndup(path, len))
		|| !(lb->base.location = strndup(path, len))) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot allocate the backend for '%s'", path);
		goto out;
	}
	/* a root of "/" joins as "//x", which is harmless */
	lb->base.ops = &local_ops;
	lb->base.max_connections = 2;
	*out = &lb->base;
	lb = NULL;
out:
	if (lb) {
		free(lb->base.location);
		free(lb->root);
		free(lb);
	}
	return r;
}
