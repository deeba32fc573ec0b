/* source_fs.c: the file-system walk behind the source interface (source.h).
 *
 * What it yields, entry by entry, is what restic 0.14 records for the same
 * file: lstat metadata (Go FileMode bits, nanosecond times, uid/gid and
 * their names, inode and st_dev for every type, st_nlink for files,
 * symlinks and devices, st_size for files, st_rdev for devices), the
 * symlink target, and every extended attribute llistxattr shows (values
 * read with lgetxattr; file systems without xattrs give none).  Sockets are
 * skipped, as restic skips them.  Directory listings are sorted by name in
 * byte order.
 *
 * Top level, as restic 0.14 lays it out: an absolute target keeps its whole
 * path in the snapshot (`backup /var/lib/x` gives /var/lib/x, with the real
 * metadata of /var and /var/lib on the directories above it); a relative
 * target keeps its lexically cleaned components with leading ".." dropped
 * (`backup ../src/a` gives /src/a); "/" or "." puts the target's entries at
 * the root.  The targets form a small prefix tree (target_node); listing a
 * directory that is only on the way to a target yields just the next
 * elements towards the targets (directories above a target are stat'ed
 * through symlinks and are not subject to excludes, as in restic).  Targets
 * that do not exist are skipped with a warning, as restic does; a target
 * that would take a place already taken by another real path is renamed
 * "name-1", "name-2", ... at that level, as restic renames it.
 *
 * Access times are stored equal to the modification time unless asked
 * (restic's --with-atime), so that reading files, which may update their
 * atime, does not make every tree look changed.
 *
 * Excludes (restic's simple cases): a pattern without '/' is matched with
 * fnmatch against the entry's name; a pattern starting with '/' against the
 * entry's absolute path; any other pattern with '/' against every tail of
 * the absolute path that starts at a path element.  '*' does not match '/'
 * in path patterns; "**" is not special.  An excluded directory is not
 * entered.  With one_file_system a directory on another device than its
 * target is kept as an empty directory (the mount point) and not entered.
 *
 * Reading: files are opened O_RDONLY|O_NOFOLLOW|O_NONBLOCK (so a file that
 * was swapped for a fifo cannot block us) plus O_NOATIME where permitted;
 * directories are opened with O_NOATIME too, so a backup does not change the
 * atimes it records.  One fstat after the first read checks that the open
 * file is still a regular file (and warns when it is another inode); when a
 * file's size, mtime or ctime after reading differ from the listing, or the
 * bytes read differ from the listed size, the reader reports a warning; the
 * archiver stores what was read.
 *
 * System calls per entry (what restic makes per file, no more): listing,
 * fstatat and listxattrat relative to the open directory (lgetxattr only
 * for names listxattrat returned, readlinkat for symlinks); reading a
 * small file, open, read, fstat, close (the fstat after a read that got the
 * whole file stands for the end-of-read check, and the end of file needs no
 * second read).
 *
 * Threads: listings of different directories and readers of different
 * files may run at the same time (source.h); the user and group name cache
 * is under id_mu, everything else a listing touches is its own or
 * read-only.
 *
 * Invariants: every entry's path is its absolute path; priv holds the
 * device of the target it was reached from (for one_file_system).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "source.h"

typedef struct idname {
	uint32_t id;
	char *name; /* NULL: no such user/group */
} idname;

typedef struct idcache {
	idname *v;
	size_t n, cap;
} idcache;

/* Where the targets sit in the snapshot: one node per path element. */
typedef struct target_node {
	char *name;                 /* element name in the snapshot; NULL for the root */
	char *path;                 /* real absolute path of this element */
	int is_target;              /* backed up whole: listed from the file system */
	struct target_node **children;
	size_t n_children;
} target_node;

typedef struct fs_source {
	source base; /* first member */
	char **paths;      /* absolute target paths that exist, argument order */
	size_t n_paths;
	char **excludes;
	size_t n_excludes;
	int one_file_system;
	int with_atime;
	target_node root;
	pthread_mutex_t id_mu;      /* guards users and groups: listings run in several threads */
	idcache users, groups;
	atomic_int no_listxattrat;  /* the kernel (or a seccomp filter) refused listxattrat */
	atomic_int noatime_eperm;   /* O_NOATIME was refused for a file we do not own */
	uid_t euid;
} fs_source;

typedef struct fs_reader {
	source_reader base; /* first member */
	fs_source *src;
	int fd;
	char *path;
	uint64_t size_before, bytes_read;
	uint64_t ino, dev;  /* of the listed file */
	cairn_time mtime_before, ctime_before;
	int checked;        /* the open file was fstat'ed: a regular file (see fs_read) */
	int blocking;       /* O_NONBLOCK was cleared */
	int eof_known;      /* end_st was taken after every byte was read: the end */
	int at_eof;         /* read returned 0: only a complete read is checked for changes */
	struct stat end_st;
} fs_reader;

static const source_ops fs_ops;
static const source_reader_ops fs_reader_ops;

static fs_source *fs_downcast(source *s)
{
	return s->ops == &fs_ops ? (fs_source *)s : NULL;
}

/* ---- paths ---- */

/* "dir" + "/" + "name", without doubling the slash after "/". */
static char *join_path(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	int slash = dl > 0 && dir[dl - 1] != '/';
	char *p = malloc(dl + slash + nl + 1);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (slash)
		p[dl] = '/';
	memcpy(p + dl + slash, name, nl + 1);
	return p;
}

int source_fs_abspath(char **out, const char *path)
{
	char *cwd = NULL, *full = NULL, *res = NULL;
	size_t len, o = 0;
	int r = 0;

	*out = NULL;
	if (!path || !*path)
		return cairn_error_set(CAIRN_EINVAL, "empty path");
	if (path[0] == '/') {
		full = strdup(path);
	} else {
		if (!(cwd = getcwd(NULL, 0))) {
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot get the current directory");
			goto out;
		}
		full = join_path(cwd, path);
	}
	if (!full) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	len = strlen(full);
	if (!(res = malloc(len + 2))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	/* Walk the elements; res always holds "/a/b" without a trailing slash
	 * (o == 0 stands for "/"). */
	for (size_t i = 0; i < len;) {
		size_t j;
		while (i < len && full[i] == '/')
			i++;
		j = i;
		while (j < len && full[j] != '/')
			j++;
		if (j == i)
			break;
		if (j - i == 1 && full[i] == '.') {
			/* nothing */
		} else if (j - i == 2 && full[i] == '.' && full[i + 1] == '.') {
			while (o > 0 && res[o - 1] != '/')
				o--;
			if (o > 0)
				o--; /* drop the slash too */
		} else {
			res[o++] = '/';
			memcpy(res + o, full + i, j - i);
			o += j - i;
		}
		i = j;
	}
	if (o == 0)
		res[o++] = '/';
	res[o] = '\0';
	*out = res;
	res = NULL;
out:
	free(cwd);
	free(full);
	free(res);
	return r;
}

/* ---- excludes ---- */

static int excluded(const fs_source *fs, const char *path, const char *name)
{
	for (size_t i = 0; i < fs->n_excludes; i++) {
		const char *p = fs->excludes[i];
		if (!strchr(p, '/')) {
			if (fnmatch(p, name, 0) == 0)
				return 1;
		} else if (p[0] == '/') {
			if (fnmatch(p, path, FNM_PATHNAME) == 0)
				return 1;
		} else {
			for (const char *t = path; t; t = strchr(t + 1, '/'))
				if (fnmatch(p, t + (*t == '/'), FNM_PATHNAME) == 0)
					return 1;
		}
	}
	return 0;
}

/* ---- user and group names ---- */

static int idcache_lookup(idcache *c, uint32_t id, int group, char **name_out)
{
	char *buf = NULL, *name = NULL;
	size_t bufsize = 1024;
	int r = 0, e;

	*name_out = NULL;
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].id == id) {
			if (c->v[i].name && !(*name_out = strdup(c->v[i].name)))
				return cairn_error_set(CAIRN_ENOMEM, "out of memory");
			return 0;
		}
	for (;;) {
		if (!(buf = malloc(bufsize)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		if (group) {
			struct group gr, *res = NULL;
			e = getgrgid_r((gid_t)id, &gr, buf, bufsize, &res);
			if (e == 0 && res && !(name = strdup(gr.gr_name)))
				e = ENOMEM;
		} else {
			struct passwd pw, *res = NULL;
			e = getpwuid_r((uid_t)id, &pw, buf, bufsize, &res);
			if (e == 0 && res && !(name = strdup(pw.pw_name)))
				e = ENOMEM;
		}
		free(buf);
		buf = NULL;
		if (e != ERANGE || bufsize >= (1u << 20))
			break;
		bufsize *= 2;
	}
	if (e == ENOMEM)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	/* other lookup failures: the name is unknown, like restic's "" */
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		idname *v = realloc(c->v, cap * sizeof(*v));
		if (!v) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].id = id;
	c->v[c->n].name = name;
	c->n++;
	if (name && !(*name_out = strdup(name)))
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
	name = NULL;
out:
	free(name);
	return r;
}

static void idcache_release(idcache *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* ---- metadata ---- */

static int os_error_is_no_xattrs(int e)
{
	return e == ENOTSUP || e == ENODATA || e == ENOSYS;
}

#ifdef __linux__
/* listxattrat(2) (Linux 6.13): the same syscall number on every
 * architecture with the unified table (all but alpha). */
#if !defined(SYS_listxattrat) && !defined(__alpha__)
#define SYS_listxattrat 465
#endif
#endif

/* List the xattr names of `name` in directory dirfd (path is the same file's
 * full path): listxattrat when the kernel has it (one path element to look
 * up instead of the whole path), llistxattr otherwise.  ENOSYS, or EPERM
 * from a seccomp filter, turns listxattrat off for the rest of the run. */
static ssize_t list_xattrs(fs_source *fs, int dirfd, const char *name, const char *path,
	char *list, size_t size)
{
#ifdef SYS_listxattrat
	if (dirfd >= 0 && !atomic_load_explicit(&fs->no_listxattrat, memory_order_relaxed)) {
		ssize_t n = syscall(SYS_listxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, list, size);
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return n;
		atomic_store_explicit(&fs->no_listxattrat, 1, memory_order_relaxed);
	}
#else
	(void)fs;
	(void)dirfd;
	(void)name;
#endif
	return llistxattr(path, list, size);
}

/* Read every listable xattr of the file into the node (dirfd/name as for
 * list_xattrs).  Failures that are not "no xattrs here" are warnings: the
 * entry is still stored. */
static int read_xattrs(fs_source *fs, int dirfd, const char *name_in_dir, const char *path,
	cairn_node *node)
{
	char *names = NULL;
	unsigned char *value = NULL;
	ssize_t n;
	int r = 0;

	for (;;) {
		n = list_xattrs(fs, dirfd, name_in_dir, path, NULL, 0);
		if (n <= 0)
			break;
		free(names);
		if (!(names = malloc((size_t)n))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		n = list_xattrs(fs, dirfd, name_in_dir, path, names, (size_t)n);
		if (n >= 0 || errno != ERANGE)
			break;
	}
	if (n < 0) {
		if (!os_error_is_no_xattrs(errno))
			source_report(&fs->base, 0, path, "cannot list extended attributes: %s",
				strerror(errno));
		goto out;
	}
	/* values by path: only files that have xattrs get here */
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		const char *name = names + i;
		ssize_t vl;
		for (;;) {
			vl = lgetxattr(path, name, NULL, 0);
			if (vl < 0)
				break;
			free(value);
			if (!(value = malloc(vl ? (size_t)vl : 1))) {
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto out;
			}
			vl = lgetxattr(path, name, value, (size_t)vl);
			if (vl >= 0 || errno != ERANGE)
				break;
		}
		if (vl < 0) {
			if (!os_error_is_no_xattrs(errno))
				source_report(&fs->base, 0, path, "cannot read extended attribute '%s': %s",
					name, strerror(errno));
			continue;
		}
		if ((r = cairn_node_add_xattr(node, name, value, (size_t)vl)) < 0)
			goto out;
	}
out:
	free(names);
	free(value);
	return r;
}

static cairn_time ts_time(struct timespec ts)
{
	cairn_time t = { (int64_t)ts.tv_sec, (int32_t)ts.tv_nsec };
	return t;
}

/* Fill `e` for the file at `path` with lstat result `st`, named `name`.
 * dirfd >= 0 is its directory, open (then `name` is its name there; the
 * symlink target and the xattrs are read relative to it).  Returns 1 when
 * the entry is stored, 0 when it is skipped (a socket or a symlink that
 * vanished), negative on a fatal error.  Problems are reported. */
static int fill_entry(fs_source *fs, source_entry *e, int dirfd, const char *path,
	const char *name, const struct stat *st, uint64_t target_dev)
{
	cairn_node *n = &e->node;
	int r = 0;

	memset(e, 0, sizeof(*e));
	if (S_ISSOCK(st->st_mode))
		return 0;
	if (!(n->name = strdup(name)) || !(e->path = strdup(path))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	e->priv = target_dev;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG: n->type = CAIRN_NODE_FILE; break;
	case S_IFDIR: n->type = CAIRN_NODE_DIR; break;
	case S_IFLNK: n->type = CAIRN_NODE_SYMLINK; break;
	case S_IFBLK: n->type = CAIRN_NODE_DEV; break;
	case S_IFCHR: n->type = CAIRN_NODE_CHARDEV; break;
	case S_IFIFO: n->type = CAIRN_NODE_FIFO; break;
	default:
		source_report(&fs->base, 1, path, "unknown file type %#o", (unsigned)(st->st_mode & S_IFMT));
		r = 0;
		goto out;
	}
	n->mode = cairn_mode_from_posix(st->st_mode);
	n->mtime = ts_time(st->st_mtim);
	n->atime = fs->with_atime ? ts_time(st->st_atim) : n->mtime;
	n->ctime = ts_time(st->st_ctim);
	n->uid = (uint32_t)st->st_uid;
	n->gid = (uint32_t)st->st_gid;
	pthread_mutex_lock(&fs->id_mu);
	if ((r = idcache_lookup(&fs->users, n->uid, 0, &n->user)) >= 0)
		r = idcache_lookup(&fs->groups, n->gid, 1, &n->group);
	pthread_mutex_unlock(&fs->id_mu);
	if (r < 0)
		goto out;
	n->inode = (uint64_t)st->st_ino;
	n->device_id = (uint64_t)st->st_dev;
	switch (n->type) {
	case CAIRN_NODE_FILE:
		n->size = (uint64_t)st->st_size;
		n->links = (uint64_t)st->st_nlink;
		break;
	case CAIRN_NODE_SYMLINK: {
		size_t cap = (size_t)st->st_size + 1;
		ssize_t l;
		for (;;) {
			if (cap < 64)
				cap = 64;
			free(n->linktarget);
			if (!(n->linktarget = malloc(cap))) {
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto out;
			}
			l = dirfd >= 0 ? readlinkat(dirfd, name, n->linktarget, cap)
				: readlink(path, n->linktarget, cap);
			if (l < 0 || (size_t)l < cap)
				break;
			cap *= 2;
		}
		if (l < 0) {
			source_report(&fs->base, 1, path, "cannot read the symlink: %s", strerror(errno));
			r = 0;
			goto out;
		}
		n->linktarget[l] = '\0';
		n->links = (uint64_t)st->st_nlink;
		break;
	}
	case CAIRN_NODE_DEV:
	case CAIRN_NODE_CHARDEV:
		n->device = (uint64_t)st->st_rdev;
		n->links = (uint64_t)st->st_nlink;
		break;
	default:
		break;
	}
	if ((r = read_xattrs(fs, dirfd, name, path, n)) < 0)
		goto out;
	return 1;
out:
	source_entry_release(e);
	return r;
}

/* ---- listing ---- */

typedef struct entry_vec {
	source_entry *v;
	size_t n, cap;
} entry_vec;

static source_entry *vec_push(entry_vec *a)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		source_entry *v = realloc(a->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		a->v = v;
		a->cap = cap;
	}
	memset(&a->v[a->n], 0, sizeof(a->v[0]));
	return &a->v[a->n];
}

/* How add_path treats a path. */
enum {
	ADD_TARGET = 1,      /* a backup target: its device bounds --one-file-system */
	ADD_ON_THE_WAY = 2   /* a directory above a target: follow symlinks (the target
	                      * lies below the real directory) and ignore excludes */
};

/* lstat `path` and append its entry (named `name`) unless it is excluded,
 * a socket or unreadable (reported).  dirfd >= 0: the open directory that
 * holds it under `name` (the metadata is read relative to it: the kernel
 * then looks up one path element, not the whole path). */
static int add_path(fs_source *fs, entry_vec *a, int dirfd, const char *path, const char *name,
	int flags, uint64_t target_dev)
{
	struct stat st;
	source_entry *e;
	int r;

	if (!(flags & ADD_ON_THE_WAY) && excluded(fs, path, name))
		return 0;
	if (((flags & ADD_ON_THE_WAY) ? stat(path, &st)
		: dirfd >= 0 ? fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)
		: lstat(path, &st)) < 0) {
		if ((flags & ADD_TARGET) && errno == ENOENT) {
			source_report(&fs->base, 0, path, "does not exist, skipping");
			return 0;
		}
		source_report(&fs->base, 1, path, "%s", strerror(errno));
		return 0;
	}
	if ((flags & ADD_ON_THE_WAY) && !S_ISDIR(st.st_mode)) {
		source_report(&fs->base, 1, path, "is not a directory, cannot reach the targets below it");
		return 0;
	}
	if (flags & (ADD_TARGET | ADD_ON_THE_WAY))
		target_dev = (uint64_t)st.st_dev;
	if (!(e = vec_push(a)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if ((r = fill_entry(fs, e, (flags & ADD_ON_THE_WAY) ? -1 : dirfd, path, name, &st,
		target_dev)) < 0)
		return r;
	if (r > 0)
		a->n++;
	return 0;
}

/* Read the names in directory `path` (without "." and ".."), in directory
 * order.  *dir_out gets the directory, still open for lookups relative to
 * it (the caller closes it with closedir). */
static int read_names(char ***out, size_t *n_out, DIR **dir_out, const char *path)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d = NULL;
	int fd, r = 0;

	*out = NULL;
	*n_out = 0;
	*dir_out = NULL;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = cairn_error_set(CAIRN_EIO, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	for (;;) {
		struct dirent *de;
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno) {
				r = cairn_error_set(CAIRN_EIO, "%s", strerror(errno));
				goto out;
			}
			break;
		}
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
			(de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (n == cap) {
			size_t c2 = cap ? cap * 2 : 32;
			char **v = realloc(names, c2 * sizeof(*v));
			if (!v) {
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto out;
			}
			names = v;
			cap = c2;
		}
		if (!(names[n] = strdup(de->d_name))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		n++;
	}
	*out = names;
	*n_out = n;
	*dir_out = d;
	names = NULL;
	d = NULL;
out:
	if (d)
		closedir(d);
	if (names) {
		for (size_t i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return r;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Append the entries of directory `path`, named as in the directory. */
static int add_dir_entries(fs_source *fs, entry_vec *a, const char *path, uint64_t target_dev,
	int is_target)
{
	char **names = NULL;
	size_t n = 0;
	DIR *dir = NULL;
	int dfd, r;

	if ((r = read_names(&names, &n, &dir, path)) < 0)
		return r;
	dfd = dirfd(dir);
	for (size_t i = 0; i < n && r >= 0; i++) {
		char *child = join_path(path, names[i]);
		if (!child) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			break;
		}
		r = add_path(fs, a, dfd, child, names[i], is_target ? ADD_TARGET : 0, target_dev);
		free(child);
	}
	closedir(dir);
	free_names(names, n);
	return r;
}

/* 1 if one of the first n entries of a is called `name`. */
static int name_taken(const entry_vec *a, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a->v[i].node.name, name) == 0)
			return 1;
	return 0;
}

/* The node on the way to a target whose real path is `path`, or NULL when
 * `path` is not such an intermediate directory.  Nodes below a target are
 * never intermediate: the target is listed from the file system. */
static const target_node *find_intermediate(const target_node *t, const char *path)
{
	for (size_t i = 0; i < t->n_children; i++) {
		const target_node *c = t->children[i], *found;
		if (c->is_target)
			continue;
		if (strcmp(c->path, path) == 0)
			return c;
		if ((found = find_intermediate(c, path)))
			return found;
	}
	return NULL;
}

/* Entries for the elements below an intermediate node (or the root). Each
 * one is stat'ed for real metadata; `skip_taken` leaves out names already
 * in `a` (the root of a "/" or "." target merged with others). */
static int add_target_children(fs_source *fs, entry_vec *a, const target_node *t, int skip_taken)
{
	size_t before = a->n;
	int r = 0;

	for (size_t i = 0; i < t->n_children && r >= 0; i++) {
		const target_node *c = t->children[i];
		if (skip_taken && name_taken(a, before, c->name)) {
			source_report(&fs->base, 1, c->path,
				"'%s' is already in the snapshot from another target, skipping", c->name);
			continue;
		}
		r = add_path(fs, a, -1, c->path, c->name, c->is_target ? ADD_TARGET : ADD_ON_THE_WAY, 0);
	}
	return r;
}

static int list_root(fs_source *fs, entry_vec *a)
{
	int r;
	struct stat st;

	if (!fs->root.is_target)
		return add_target_children(fs, a, &fs->root, 0);
	/* "/" or "." was a target: its entries form the root */
	if (lstat(fs->root.path, &st) < 0) {
		source_report(&fs->base, 1, fs->root.path, "%s", strerror(errno));
		return 0;
	}
	if ((r = add_dir_entries(fs, a, fs->root.path, (uint64_t)st.st_dev, 0)) < 0) {
		source_report(&fs->base, 1, fs->root.path, "%s", cairn_error_message());
		r = 0;
	}
	return add_target_children(fs, a, &fs->root, 1);
}

static int fs_list(source *s, const source_entry *dir, source_entry **out, size_t *n_out)
{
	fs_source *fs = fs_downcast(s);
	entry_vec a = { NULL, 0, 0 };
	const target_node *t;
	int r;

	*out = NULL;
	*n_out = 0;
	if (!dir) {
		r = list_root(fs, &a);
	} else if (dir->node.type == CAIRN_NODE_DIR && (t = find_intermediate(&fs->root, dir->path))) {
		r = add_target_children(fs, &a, t, 0);
	} else if (dir->node.type != CAIRN_NODE_DIR) {
		r = cairn_error_set(CAIRN_EINVAL, "not a directory");
	} else if (fs->one_file_system && dir->node.device_id != dir->priv) {
		r = 0; /* a mount point: kept, not entered */
	} else {
		r = add_dir_entries(fs, &a, dir->path, dir->priv, 0);
	}
	if (r >= 0)
		r = source_entries_sort(a.v, a.n);
	if (r < 0) {
		source_entries_free(a.v, a.n);
		return r;
	}
	*out = a.v;
	*n_out = a.n;
	return 0;
}

/* ---- reading ---- */

/* Open a file for reading: one open(2), nothing else.  The checks that the
 * open file is still the listed regular file are made by the first read,
 * with one fstat after it (see fs_read), so a small file costs open, read,
 * fstat, close.
 *
 * O_NONBLOCK keeps a file swapped for a fifo from blocking the open (and
 * its reads: they fail, and the fstat then says why); it does nothing to
 * the reads of a regular file (Linux ignores it there), so it is not
 * cleared unless a read says EAGAIN.  O_NOATIME is refused (EPERM) for a
 * file that is not ours unless we have CAP_FOWNER: after the first such
 * refusal it is only asked for our own files. */
static int fs_open(source *s, const source_entry *file, source_reader **out)
{
	fs_source *fs = fs_downcast(s);
	fs_reader *rd = NULL;
	int fd, flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, r = 0;
	int own = (uid_t)file->node.uid == fs->euid;

	*out = NULL;
	if (own || !atomic_load_explicit(&fs->noatime_eperm, memory_order_relaxed)) {
		fd = open(file->path, flags | O_NOATIME);
		if (fd < 0 && errno == EPERM) {
			if (!own)
				atomic_store_explicit(&fs->noatime_eperm, 1, memory_order_relaxed);
			fd = open(file->path, flags);
		}
	} else {
		fd = open(file->path, flags);
	}
	if (fd < 0)
		return cairn_error_set(CAIRN_EIO, "%s", strerror(errno));
	if (!(rd = calloc(1, sizeof(*rd))) || !(rd->path = strdup(file->path))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	rd->base.ops = &fs_reader_ops;
	rd->src = fs;
	rd->fd = fd;
	/* compare with the listing, so a change between listing and opening
	 * counts as well */
	rd->size_before = file->node.size;
	rd->mtime_before = file->node.mtime;
	rd->ctime_before = file->node.ctime;
	rd->ino = file->node.inode;
	rd->dev = file->node.device_id;
	fd = -1;
	*out = &rd->base;
	rd = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (rd) {
		free(rd->path);
		free(rd);
	}
	return r;
}

static ssize_t read_fd(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/* After the first read: the open file must be a regular file (it may have
 * been swapped for something else since it was listed); a different inode
 * is a warning.  When every byte the file holds was read before this
 * fstat, it also stands for the check at the end (fs_close) and the end of
 * file is known without another read. */
static int check_first_read(fs_reader *rd)
{
	struct stat st;

	rd->checked = 1;
	if (fstat(rd->fd, &st) < 0)
		return cairn_error_set(CAIRN_EIO, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cairn_error_set(CAIRN_EIO, "is no longer a regular file");
	if ((uint64_t)st.st_ino != rd->ino || (uint64_t)st.st_dev != rd->dev)
		source_report(&rd->src->base, 0, rd->path, "file was replaced after it was listed");
	if ((uint64_t)st.st_size == rd->bytes_read) {
		rd->end_st = st;
		rd->eof_known = 1;
	}
	return 0;
}

static ssize_t fs_read(source_reader *r, void *buf, size_t len)
{
	fs_reader *rd = (fs_reader *)r;
	ssize_t n;
	int e, c;

	if (rd->eof_known && rd->checked) {
		if (len > 0)
			rd->at_eof = 1;
		return 0;
	}
	n = read_fd(rd->fd, buf, len);
	e = errno;
	if (n > 0)
		rd->bytes_read += (uint64_t)n;
	if (!rd->checked && (c = check_first_read(rd)) < 0)
		return c;
	if (n < 0 && e == EAGAIN && !rd->blocking) {
		/* a regular file whose reads honour O_NONBLOCK after all */
		int fl = fcntl(rd->fd, F_GETFL);
		if (fl < 0 || fcntl(rd->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			return cairn_error_set(CAIRN_EIO, "%s", strerror(errno));
		rd->blocking = 1;
		rd->eof_known = 0;
		n = read_fd(rd->fd, buf, len);
		e = errno;
		if (n > 0)
			rd->bytes_read += (uint64_t)n;
	}
	if (n < 0)
		return cairn_error_set(CAIRN_EIO, "%s", strerror(e));
	if (n == 0 && len > 0)
		rd->at_eof = 1;
	return n;
}

static int same_time(cairn_time a, struct timespec b)
{
	return a.sec == (int64_t)b.tv_sec && a.nsec == (int32_t)b.tv_nsec;
}

static void fs_close(source_reader *r)
{
	fs_reader *rd = (fs_reader *)r;
	struct stat st;
	int have = 0;

	if (rd->at_eof) {
		if (rd->eof_known) {
			st = rd->end_st;
			have = 1;
		} else {
			have = fstat(rd->fd, &st) == 0;
		}
	}
	if (have && ((uint64_t)st.st_size != rd->size_before || rd->bytes_read != rd->size_before ||
		 !same_time(rd->mtime_before, st.st_mtim) || !same_time(rd->ctime_before, st.st_ctim)))
		source_report(&rd->src->base, 0, rd->path,
			"file changed while it was read; stored the %llu bytes read",
			(unsigned long long)rd->bytes_read);
	close(rd->fd);
	free(rd->path);
	free(rd);
}

/* ---- where targets go in the snapshot ---- */

static void target_node_release(target_node *t)
{
	for (size_t i = 0; i < t->n_children; i++) {
		target_node_release(t->children[i]);
		free(t->children[i]);
	}
	free(t->children);
	free(t->name);
	free(t->path);
	memset(t, 0, sizeof(*t));
}

/* Split `path` into its lexically cleaned elements ("." dropped, "x/.."
 * folded).  For a relative path the leading ".." elements are counted in
 * *dotdots_out and not returned.  Caller frees the array and its strings. */
static int path_elements(char ***out, size_t *n_out, size_t *dotdots_out, const char *path)
{
	char **v = calloc(strlen(path) / 2 + 2, sizeof(char *));
	size_t n = 0, dotdots = 0;
	const char *p = path;

	if (!v)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	while (*p) {
		const char *e;
		size_t len;
		while (*p == '/')
			p++;
		for (e = p; *e && *e != '/'; e++)
			;
		len = (size_t)(e - p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* nothing */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n > 0)
				free(v[--n]);
			else if (path[0] != '/')
				dotdots++;
		} else if (!(v[n++] = strndup(p, len))) {
			for (size_t i = 0; i + 1 < n; i++)
				free(v[i]);
			free(v);
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		}
		p = e;
	}
	*out = v;
	*n_out = n;
	*dotdots_out = dotdots;
	return 0;
}

/* The real absolute path of the first k elements of a target. */
static int element_path(char **out, const char *given, char **elems, size_t k, size_t dotdots)
{
	cairn_buf b = CAIRN_BUF_INIT;
	int r = 0;

	if (given[0] == '/')
		r = cairn_buf_puts(&b, "/");
	for (size_t i = 0; i < dotdots && r >= 0; i++)
		r = cairn_buf_puts(&b, "../");
	for (size_t i = 0; i < k && r >= 0; i++) {
		r = cairn_buf_puts(&b, elems[i]);
		if (r >= 0 && i + 1 < k)
			r = cairn_buf_puts(&b, "/");
	}
	if (r >= 0 && !cairn_buf_cstr(&b))
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if (r >= 0)
		r = source_fs_abspath(out, b.len ? (const char *)b.data : ".");
	cairn_buf_release(&b);
	return r;
}

/* Place target `given` (real path `abs`) in the prefix tree. */
static int place_target(fs_source *fs, const char *given, const char *abs)
{
	char **elems = NULL, *name = NULL;
	size_t n = 0, dotdots = 0;
	target_node *cur = &fs->root;
	int r;

	if ((r = path_elements(&elems, &n, &dotdots, given)) < 0)
		return r;
	if (n == 0) {
		if (fs->root.is_target) {
			if (strcmp(fs->root.path, abs) != 0)
				source_report(&fs->base, 1, abs, "another target already fills the "
					"snapshot's root, skipping");
		} else {
			fs->root.is_target = 1;
			if (!(fs->root.path = strdup(abs)))
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		}
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		target_node *child = NULL, **grown;
		char *real = NULL;

		if (cur != &fs->root && cur->is_target)
			goto out; /* inside an earlier target: already included */
		if ((r = element_path(&real, given, elems, k + 1, dotdots)) < 0)
			goto out;
		/* A place taken by another real path: restic keeps both and renames
		 * the newcomer "name-1", "name-2", ... (only the name in the
		 * snapshot changes; elems keep the real path). */
		for (unsigned suffix = 0;; suffix++) {
			child = NULL;
			for (size_t i = 0; i < cur->n_children && !child; i++)
				if (strcmp(cur->children[i]->name, name ? name : elems[k]) == 0)
					child = cur->children[i];
			if (!child || strcmp(child->path, real) == 0)
				break;
			free(name);
			if (!(name = malloc(strlen(elems[k]) + 24))) {
				free(real);
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto out;
			}
			sprintf(name, "%s-%u", elems[k], suffix + 1);
		}
		if (!child) {
			grown = realloc(cur->children, (cur->n_children + 1) * sizeof(*grown));
			if (grown)
				cur->children = grown;
			if (!grown || !(child = calloc(1, sizeof(*child))) ||
				!(child->name = strdup(name ? name : elems[k]))) {
				free(child);
				free(real);
				r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
				goto out;
			}
			cur->children[cur->n_children++] = child;
			child->path = real;
		} else {
			free(real);
		}
		free(name);
		name = NULL;
		cur = child;
	}
	cur->is_target = 1;
out:
	free(name);
	for (size_t i = 0; i < n; i++)
		free(elems[i]);
	free(elems);
	return r;
}

/* ---- lifecycle ---- */

static void fs_free(source *s)
{
	fs_source *fs = fs_downcast(s);
	if (!fs)
		return;
	for (size_t i = 0; i < fs->n_paths; i++)
		free(fs->paths[i]);
	free(fs->paths);
	for (size_t i = 0; i < fs->n_excludes; i++)
		free(fs->excludes[i]);
	free(fs->excludes);
	idcache_release(&fs->users);
	idcache_release(&fs->groups);
	pthread_mutex_destroy(&fs->id_mu);
	target_node_release(&fs->root);
	free(fs);
}

static const source_ops fs_ops = { "fs", fs_list, fs_open, fs_free };
static const source_reader_ops fs_reader_ops = { fs_read, fs_close };

int source_fs_new(source **out, const source_fs_options *opts)
{
	fs_source *fs = NULL;
	int r = 0;

	*out = NULL;
	if (!(fs = calloc(1, sizeof(*fs))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	fs->base.ops = &fs_ops;
	pthread_mutex_init(&fs->id_mu, NULL);
	fs->base.report = opts->report;
	fs->base.report_payload = opts->report_payload;
	fs->one_file_system = opts->one_file_system;
	fs->with_atime = opts->with_atime;
	fs->euid = geteuid();
	atomic_init(&fs->no_listxattrat, 0);
	atomic_init(&fs->noatime_eperm, 0);
	if (!(fs->paths = calloc(opts->n_targets + 1, sizeof(char *))) ||
		!(fs->excludes = calloc(opts->n_excludes + 1, sizeof(char *)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < opts->n_excludes; i++) {
		if (!(fs->excludes[i] = strdup(opts->excludes[i]))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
		fs->n_excludes++;
	}
	for (size_t i = 0; i < opts->n_targets; i++) {
		char *abs = NULL;
		struct stat st;
		int dup = 0;

		if ((r = source_fs_abspath(&abs, opts->targets[i])) < 0)
			goto out;
		for (size_t j = 0; j < fs->n_paths && !dup; j++)
			dup = strcmp(fs->paths[j], abs) == 0;
		if (dup) {
			free(abs);
			continue;
		}
		if (lstat(abs, &st) < 0 && errno == ENOENT) {
			source_report(&fs->base, 0, abs, "does not exist, skipping");
			free(abs);
			continue;
		}
		fs->paths[fs->n_paths++] = abs;
		if ((r = place_target(fs, opts->targets[i], abs)) < 0)
			goto out;
	}
	if (fs->n_paths == 0) {
		r = cairn_error_set(CAIRN_ENOTFOUND, "all target directories/files do not exist");
		goto out;
	}
	*out = &fs->base;
	fs = NULL;
out:
	if (fs)
		fs_free(&fs->base);
	return r;
}

const char *const *source_fs_paths(source *s, size_t *n_out)
{
	fs_source *fs = fs_downcast(s);
	if (!fs) {
		*n_out = 0;
		return NULL;
	}
	*n_out = fs->n_paths;
	return (const char *const *)fs->paths;
}
