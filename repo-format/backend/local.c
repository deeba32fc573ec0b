/* local.c: the folder backend, a repository in a local directory laid out
 * exactly as restic's local backend does (see layout.c).
 *
 * Saving is atomic and durable: the bytes go to a temp file in the target's
 * own directory, named "<name>-tmp-<16 random hex>" (restic's lister skips
 * names that are not 64 hex, so a leftover temp file is harmless), written in
 * full, fsync'ed, renamed over the final name, and then the directory is
 * fsync'ed.  Any failure unlinks the temp file, so after an error the object
 * does not exist (or still has its old, identical content).  Missing
 * directories (data/XX, keys, ...) are created on demand.  Big objects
 * (packs) come through spool_open/save_fd instead: an O_TMPFILE inside the
 * repository, linked into place without a copy (see "spooling" below).
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

/* Where an object goes: its layout path, its directory, both below the root. */
typedef struct target {
	char rel[128], rel_dir[128];  /* "data/ab/ab12..", "data/ab" */
	char final[PATH_MAX], dir[PATH_MAX];
} target;

static int target_of(target *t, const local_backend *lb, const cairn_handle *h)
{
	const char *slash;

	cairn_layout_path(t->rel, sizeof(t->rel), h);
	slash = strrchr(t->rel, '/');
	snprintf(t->rel_dir, sizeof(t->rel_dir), "%.*s", slash ? (int)(slash - t->rel) : 0, t->rel);
	CAIRN_TRY(join(t->final, lb, t->rel));
	return join(t->dir, lb, t->rel_dir);
}

/* How a new file appears at a temp name: created empty, or an O_TMPFILE
 * linked there.  Returns 0 or -errno. */
typedef int (*make_fn)(const char *tmp, void *arg);

static int make_created(const char *tmp, void *arg)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
	if (fd < 0)
		return -errno;
	*(int *)arg = fd;
	return 0;
}

static int make_linked(const char *tmp, void *arg)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", *(int *)arg);
	return linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

/* Make a file at a fresh temp name "<final>-tmp-<16 hex>" (into tmp, of
 * PATH_MAX + 32 bytes) with make(): a name taken is drawn again, missing
 * directories (data/XX, keys, ...) are made once.  0 on success; 1 when
 * make() failed, with its errno in *os_errno (no message set); a negative
 * cairn error (message set) when a directory cannot be made. */
static int at_temp_name(char *tmp, int *os_errno, const local_backend *lb, const target *t,
	make_fn make, void *arg)
{
	char suffix[17];
	int made_dirs = 0, e;

	for (int attempt = 0; ; attempt++) {
		random_suffix(suffix);
		snprintf(tmp, PATH_MAX + 32, "%s-tmp-%s", t->final, suffix);
		if ((e = make(tmp, arg)) == 0)
			return 0;
		if (e == -ENOENT && t->rel_dir[0] && !made_dirs) {
			/* data/XX (or keys/, ...) not there yet: make it, try again */
			made_dirs = 1;
			CAIRN_TRY(make_dirs_below_root(lb, t->rel_dir));
			continue;
		}
		if (e == -EEXIST && attempt < 8)
			continue;
		*os_errno = -e;
		return 1;
	}
}

/* Put the complete, synced temp file in place: rename over the final name
 * (an existing object is replaced whole, as save always did), then sync the
 * directory.  *have_tmp is cleared once the temp name is gone. */
static int publish(const local_backend *lb, const target *t, const char *tmp, int *have_tmp)
{
	if (rename(tmp, t->final) < 0)
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot rename the temp file to '%s' in '%s'",
			t->rel, lb->root);
	/* rename does nothing when both names are links of one file (two
	 * save_fd of one spool at once): then the temp name is still there */
	(void)unlink(tmp);
	*have_tmp = 0;
	return sync_dir(t->dir);
}

static int local__save(cairn_backend *be, const cairn_handle *h, const void *data, size_t len)
{
	local_backend *lb = local_downcast(be);
	char tmp[PATH_MAX + 32];
	target t;
	int fd = -1, r = 0, e;
	int have_tmp = 0;

	if ((r = target_of(&t, lb, h)) < 0)
		goto out;
	if ((r = at_temp_name(tmp, &e, lb, &t, make_created, &fd)) != 0) {
		if (r > 0)
			r = cairn_error_set_errno(CAIRN_EIO, e, "cannot create a temp file for '%s' in '%s'",
				t.rel, lb->root);
		goto out;
	}
	have_tmp = 1;

	if ((e = write_all(fd, data, len)) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, -e, "cannot write '%s' in '%s'", t.rel, lb->root);
		goto out;
	}
	if (fsync(fd) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot sync '%s' in '%s'", t.rel, lb->root);
		goto out;
	}
	e = close(fd);
	fd = -1;
	if (e < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot close '%s' in '%s'", t.rel, lb->root);
		goto out;
	}
	r = publish(lb, &t, tmp, &have_tmp);

out:
	if (fd >= 0)
		close(fd);
	if (have_tmp)
		unlink(tmp);
	return r;
}

/* ---- spooling ----
 *
 * spool_open makes an O_TMPFILE in data/ (the root before create), so the
 * spool lies on the repository's filesystem, has the mode save gives
 * (FILE_MODE, umask applied), and vanishes by itself if we crash.
 * save_fd then links such a file into place without copying a byte: fsync
 * it, linkat("/proc/self/fd/N") to a temp name next to the final one,
 * rename, sync the directory -- the same temp + rename as save, so an
 * existing object is replaced the same way.  Only a file with no name at
 * all (st_nlink 0, i.e. an O_TMPFILE) of exactly `len` bytes is linked:
 * linking a named file would make the object a hard link the caller could
 * still change.  After a link the caller's descriptor refers to the stored
 * object; it must only close it.  Anything else -- a file from elsewhere,
 * another filesystem (EXDEV), no /proc, a longer file -- is copied into a
 * temp file with copy_file_range (in the kernel; a reflink where the
 * filesystem can), or with pread/write through a 1 MiB buffer, then synced
 * and renamed like save.  Memory use never depends on len. */

#define COPY_CHUNK ((size_t)1 << 20)

static int local__spool_open(int *fd_out, cairn_backend *be)
{
#ifdef O_TMPFILE
	local_backend *lb = local_downcast(be);
	static const char *const dirs[] = { "data", "" };
	char path[PATH_MAX];
	int fd, e = 0;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		CAIRN_TRY(join(path, lb, dirs[i]));
		fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC, FILE_MODE);
		if (fd >= 0) {
			*fd_out = fd;
			return 0;
		}
		e = errno;
		if (e == ENOENT && dirs[i][0])
			continue; /* no data/ yet: the root */
		break;
	}
	/* no O_TMPFILE here (old kernel: EISDIR; filesystem: EOPNOTSUPP) */
	if (e != EOPNOTSUPP && e != EISDIR && e != EINVAL)
		return cairn_error_set_errno(CAIRN_EIO, e, "cannot create a spool file in '%s'", path);
#else
	(void)be;
#endif
	return cairn_backend_spool_generic(fd_out);
}

/* Copy [0, len) of src into dst: copy_file_range, else pread/write. */
static int copy_bytes(int dst, int src, uint64_t len, const local_backend *lb, const target *t)
{
	unsigned char *buf = NULL;
	loff_t in = 0, out = 0;
	int use_cfr = 1, r = 0, e;

	while ((uint64_t)in < len) {
		uint64_t left = len - (uint64_t)in;
		ssize_t n;

		if (use_cfr) {
			n = copy_file_range(src, &in, dst, &out, left > (1u << 30) ? (size_t)1 << 30
				: (size_t)left, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP
				|| errno == EINVAL || errno == EBADF || errno == ETXTBSY)) {
				use_cfr = 0; /* not here: copy by hand from where we are */
				continue;
			}
			if (n < 0) {
				r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot copy the file to save as "
					"'%s' in '%s'", t->rel, lb->root);
				goto out;
			}
		} else {
			if (!buf && !(buf = malloc(COPY_CHUNK))) {
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto out;
			}
			n = pread(src, buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK, in);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot read the file to save as "
					"'%s' in '%s'", t->rel, lb->root);
				goto out;
			}
			if (n > 0 && (e = write_all(dst, buf, (size_t)n)) < 0) {
				r = cairn_error_set_errno(CAIRN_EIO, -e, "cannot write '%s' in '%s'", t->rel,
					lb->root);
				goto out;
			}
			in += n;
			out += n;
		}
		if (n == 0) {
			r = cairn_error_set(CAIRN_EIO, "cannot save '%s' in '%s': the file to save has "
				"%llu bytes, not %llu", t->rel, lb->root, (unsigned long long)in,
				(unsigned long long)len);
			goto out;
		}
	}
out:
	free(buf);
	return r;
}

static int local__save_fd(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
	const cairn_id *sha256)
{
	local_backend *lb = local_downcast(be);
	char tmp[PATH_MAX + 32];
	struct stat st, fst;
	target t;
	int dst = -1, r = 0, e, have_tmp = 0;

	(void)sha256; /* nothing here signs the payload */
	if ((r = target_of(&t, lb, h)) < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot save '%s' in '%s': cannot stat the "
			"file to save", t.rel, lb->root);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = cairn_error_set(CAIRN_EINVAL, "cannot save '%s' in '%s': not a regular file", t.rel,
			lb->root);
		goto out;
	}
	if ((uint64_t)st.st_size < len) {
		r = cairn_error_set(CAIRN_EIO, "cannot save '%s' in '%s': the file to save has %llu "
			"bytes, not %llu", t.rel, lb->root, (unsigned long long)st.st_size,
			(unsigned long long)len);
		goto out;
	}
	/* saved again after an earlier save_fd linked this very file in place */
	if ((uint64_t)st.st_size == len && stat(t.final, &fst) == 0 && fst.st_dev == st.st_dev
		&& fst.st_ino == st.st_ino)
		goto out;

	if (st.st_nlink == 0 && (uint64_t)st.st_size == len) {
		if (fsync(fd) < 0) {
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot sync '%s' in '%s'", t.rel,
				lb->root);
			goto out;
		}
		/* a spool from elsewhere may carry other mode bits than save gives */
		if ((st.st_mode & 07777 & ~(mode_t)FILE_MODE) && fchmod(fd, st.st_mode & FILE_MODE) < 0) {
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot change the mode of '%s' in '%s'",
				t.rel, lb->root);
			goto out;
		}
		r = at_temp_name(tmp, &e, lb, &t, make_linked, &fd);
		if (r == 0) {
			have_tmp = 1;
			r = publish(lb, &t, tmp, &have_tmp);
			goto out;
		}
		if (r < 0)
			goto out;
		if (e == ENOSPC || e == EDQUOT || e == EIO || e == EROFS) {
			r = cairn_error_set_errno(CAIRN_EIO, e, "cannot link '%s' into '%s'", t.rel, lb->root);
			goto out;
		}
		/* EXDEV, ENOENT (not an O_TMPFILE, no /proc), EPERM, ...: copy */
		r = 0;
	}

	if ((r = at_temp_name(tmp, &e, lb, &t, make_created, &dst)) != 0) {
		if (r > 0)
			r = cairn_error_set_errno(CAIRN_EIO, e, "cannot create a temp file for '%s' in '%s'",
				t.rel, lb->root);
		goto out;
	}
	have_tmp = 1;
	if ((r = copy_bytes(dst, fd, len, lb, &t)) < 0)
		goto out;
	if (fsync(dst) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot sync '%s' in '%s'", t.rel, lb->root);
		goto out;
	}
	e = close(dst);
	dst = -1;
	if (e < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot close '%s' in '%s'", t.rel, lb->root);
		goto out;
	}
	r = publish(lb, &t, tmp, &have_tmp);
out:
	if (dst >= 0)
		close(dst);
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
	.spool_open = local__spool_open,
	.save_fd = local__save_fd,
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
