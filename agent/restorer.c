/* restorer.c: recreate a snapshot tree under a target directory, restic
 * style: dirs, files (sparse where blobs are all zeros), symlinks, hard
 * links, fifos and devices, then owner, xattrs, mode and times; a dir gets
 * its metadata after its children.  --include/--exclude select entries by
 * their path inside the snapshot; --verify re-reads every restored file and
 * checks each blob's SHA-256 against the node's content list.
 *
 * Safety invariants:
 *  - Every entry is created relative to an open descriptor of its parent
 *    dir (openat, mkdirat, symlinkat, mknodat, linkat, fchownat, utimensat)
 *    and with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW.  The only path ever resolved
 *    through the kernel is the user's --target itself.  A symlink inside the
 *    target where a dir should be is refused and named; one where a file,
 *    link or device should be is removed (unlinkat never follows), never
 *    written through.  An existing file is unlinked before the new one is
 *    created with O_EXCL, so a hard link planted in the target cannot carry
 *    the write to a file outside it.
 *  - Names come from cairn_tree_decode (validated) and are checked again by
 *    tw_walk before any path is built from them.
 *  - Only verified plaintext (cairn_repo_load_blob checks MAC and hash) is
 *    written.  When a blob of a file fails, that file is removed again, the
 *    failure is reported with the file, blob and pack, and the restore goes
 *    on with the next entry.
 *  - Memory: one blob buffer (<= 8 MiB for restic's chunker), reused for
 *    every blob; one decoded tree and one open dir fd per directory level.
 *
 * Issue #3 replaces the one-blob-at-a-time loop in restore_file() with a
 * pack-ordered plan (read each pack once, blobs fanned out to the files
 * that use them) run by worker threads; the walk, the metadata order and
 * the safety rules here stay as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "restorer.h"
#include "tree_walk.h"

/* ---- restic filter patterns ---- */

#define MAX_COMPONENTS 4096

/* Split a cleaned path or pattern into components in place: "/a/b" ->
 * {"", "a", "b"}, "a/b" -> {"a", "b"}.  Like Go's filepath.Clean followed
 * by strings.Split: empty and "." components vanish, ".." removes the one
 * before it (and nothing at the root), "/" alone is {"", ""}.  Returns the
 * number of components, or -1 if there are too many. */
static int split_clean(char *s, char **parts, int max)
{
	int n = 0, absolute = s[0] == '/', first = 0;
	char *p = s;

	if (absolute) {
		if (max < 1)
			return -1;
		parts[n++] = s + strlen(s); /* "" */
		first = 1;
	}
	while (*p) {
		char *end = strchr(p, '/');
		if (end)
			*end = '\0';
		if (*p == '\0' || strcmp(p, ".") == 0) {
			/* skip */
		} else if (strcmp(p, "..") == 0 && n > first && strcmp(parts[n - 1], "..") != 0) {
			n--;
		} else if (strcmp(p, "..") == 0 && absolute && n == first) {
			/* "/.." is "/" */
		} else {
			if (n >= max)
				return -1;
			parts[n++] = p;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (absolute && n == 1) {
		if (max < 2)
			return -1;
		parts[n++] = parts[0]; /* "/" splits into "", "" */
	}
	if (n == 0) {
		parts[n++] = (char *)"."; /* Clean("") == "." */
	}
	return n;
}

static int double_wildcard(char *const *pat, int np)
{
	for (int i = 0; i < np; i++)
		if (strcmp(pat[i], "**") == 0)
			return i;
	return -1;
}

static int match_parts(char *const *pat, int np, char *const *strs, int ns)
{
	int pos = double_wildcard(pat, np);

	if (pos >= 0) {
		/* "**" becomes zero, one, two, ... "*" components in turn. */
		char **expanded;
		int result = 0;
		if (ns + np + 1 <= 0 || !(expanded = malloc(sizeof(*expanded) * (size_t)(ns + np + 1))))
			return 0;
		for (int i = 0; i <= ns - np + 1; i++) {
			int k = 0;
			for (int j = 0; j < pos; j++)
				expanded[k++] = pat[j];
			for (int j = 0; j < i; j++)
				expanded[k++] = (char *)"*";
			for (int j = pos + 1; j < np; j++)
				expanded[k++] = pat[j];
			if (match_parts(expanded, k, strs, ns)) {
				result = 1;
				break;
			}
		}
		free(expanded);
		return result;
	}
	if (np == 0 && ns == 0)
		return 1;
	if (np <= ns) {
		int min_off = 0, max_off = ns - np;
		if (pat[0][0] == '\0')
			max_off = 0;               /* anchored at the root */
		else if (strs[0][0] == '\0')
			min_off = 1;               /* a relative pattern skips the root marker */
		for (int off = max_off; off >= min_off; off--) {
			int ok = 1;
			for (int i = np - 1; i >= 0 && ok; i--)
				ok = fnmatch(pat[i], strs[off + i], 0) == 0;
			if (ok)
				return 1;
		}
	}
	return 0;
}

static int child_match_parts(char *const *pat, int np, char *const *strs, int ns)
{
	int pos, l;

	if (pat[0][0] != '\0')
		return 1; /* a relative pattern can match at any depth */
	pos = double_wildcard(pat, np);
	if (pos >= 0 && ns >= pos)
		ns = pos;
	l = ns > np ? np : ns;
	return match_parts(pat, l, strs, ns);
}

void restorer_pattern_list(int *matched, int *child_may_match, const char *const *patterns,
	size_t n, const char *path)
{
	char *path_copy = strdup(path), *pat_copy = NULL;
	char **strs = malloc(sizeof(*strs) * MAX_COMPONENTS);
	char **pat = malloc(sizeof(*pat) * MAX_COMPONENTS);
	int ns, m = 0, c = 0, has_negated = 0;

	if (!path_copy || !strs || !pat || (ns = split_clean(path_copy, strs, MAX_COMPONENTS)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		has_negated |= patterns[i][0] == '!';
	for (size_t i = 0; i < n; i++) {
		const char *text = patterns[i];
		int negated = text[0] == '!', np, pm, pc;
		if (negated)
			text++;
		if (*text == '\0')
			continue;
		free(pat_copy);
		if (!(pat_copy = strdup(text)) || (np = split_clean(pat_copy, pat, MAX_COMPONENTS)) < 0)
			goto out;
		pm = match_parts(pat, np, strs, ns);
		pc = child_may_match ? child_match_parts(pat, np, strs, ns) : 1;
		if (negated) {
			m = m && !pm;
			c = c && !pm;
		} else {
			m = m || pm;
			c = c || pc;
			if (m && c && !has_negated)
				break;
		}
	}
out:
	*matched = m;
	if (child_may_match)
		*child_may_match = c;
	free(pat_copy);
	free(pat);
	free(strs);
	free(path_copy);
}

/* ---- small hash tables: hard-link groups and failed paths ---- */

typedef struct hl_entry {
	uint64_t dev, ino;
	char *path; /* owned; NULL = empty slot */
} hl_entry;

typedef struct hl_map {
	hl_entry *slots;
	size_t cap, n;
} hl_map;

static size_t hl_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ (dev + 0x632be59bd9b4e019ull) * 0xff51afd7ed558ccdull;
	return (size_t)(h ^ (h >> 31));
}

/* Borrowed path of the first restored member of the group, or NULL. */
static const char *hl_get(const hl_map *m, uint64_t dev, uint64_t ino)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hl_hash(dev, ino) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].path)
			return NULL;
		if (m->slots[i].dev == dev && m->slots[i].ino == ino)
			return m->slots[i].path;
	}
}

/* Copies path. */
static int hl_put(hl_map *m, uint64_t dev, uint64_t ino, const char *path)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		hl_entry *slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		for (size_t i = 0; i < m->cap; i++) {
			hl_entry *e = &m->slots[i];
			size_t j;
			if (!e->path)
				continue;
			for (j = hl_hash(e->dev, e->ino) & (cap - 1); slots[j].path; j = (j + 1) & (cap - 1))
				;
			slots[j] = *e;
		}
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	for (size_t i = hl_hash(dev, ino) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].path) {
			if (!(m->slots[i].path = strdup(path)))
				return cairn_error_set(CAIRN_ENOMEM, "out of memory");
			m->slots[i].dev = dev;
			m->slots[i].ino = ino;
			m->n++;
			return 0;
		}
		if (m->slots[i].dev == dev && m->slots[i].ino == ino)
			return 0;
	}
}

static void hl_release(hl_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].path);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

typedef struct str_set {
	char **slots; /* owned strings; NULL = empty */
	size_t cap, n;
} str_set;

static size_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (size_t)h;
}

static int set_has(const str_set *s, const char *key)
{
	if (!s->n)
		return 0;
	for (size_t i = str_hash(key) & (s->cap - 1); s->slots[i]; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slots[i], key) == 0)
			return 1;
	return 0;
}

static int set_add(str_set *s, const char *key)
{
	size_t i;
	if (set_has(s, key))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		for (size_t k = 0; k < s->cap; k++) {
			if (!s->slots[k])
				continue;
			for (i = str_hash(s->slots[k]) & (cap - 1); slots[i]; i = (i + 1) & (cap - 1))
				;
			slots[i] = s->slots[k];
		}
		free(s->slots);
		s->slots = slots;
		s->cap = cap;
	}
	for (i = str_hash(key) & (s->cap - 1); s->slots[i]; i = (i + 1) & (s->cap - 1))
		;
	if (!(s->slots[i] = strdup(key)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	s->n++;
	return 0;
}

static void set_release(str_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ---- the restorer ---- */

typedef struct dir_frame {
	int fd;       /* open dir, O_NOFOLLOW */
	int created;  /* we made it (may be removed again if nothing lands in it) */
	int keep;     /* selected itself, or something was restored inside */
} dir_frame;

typedef struct restorer {
	cairn_repo *repo;
	const restorer_options *opts;
	const cli_globals *g;
	restorer_stats *st;
	dir_frame *stack;      /* stack[0] is the target itself */
	size_t depth, cap;
	cairn_buf blob;        /* the one blob buffer, reused */
	cairn_buf where;       /* scratch: target path of an entry, for messages */
	hl_map links;          /* (device_id, inode) -> path of the first restored member */
	str_set failed;        /* paths that could not be restored (skipped by --verify) */
	int have_zero;         /* zero_id is a verified all-zero blob of zero_len bytes */
	cairn_id zero_id;
	size_t zero_len;
	int is_root;           /* euid 0: ownership errors are reported */
	int phase_verify;
} restorer;

static int push_frame(restorer *r, int fd, int created, int keep)
{
	if (r->depth == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		dir_frame *s = realloc(r->stack, cap * sizeof(*s));
		if (!s)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		r->stack = s;
		r->cap = cap;
	}
	r->stack[r->depth].fd = fd;
	r->stack[r->depth].created = created;
	r->stack[r->depth].keep = keep;
	r->depth++;
	return 0;
}

static dir_frame *top(restorer *r)
{
	return &r->stack[r->depth - 1];
}

/* The entry's path on disk, for messages: target + snapshot path.  Borrowed
 * until the next call. */
static const char *disk_path(restorer *r, const char *path)
{
	const char *t = r->opts->target;
	size_t tl = strlen(t);
	cairn_buf_clear(&r->where);
	if (cairn_buf_append(&r->where, t, tl && t[tl - 1] == '/' ? tl - 1 : tl) < 0 ||
		cairn_buf_puts(&r->where, path) < 0 || !cairn_buf_cstr(&r->where))
		return path;
	return (const char *)r->where.data;
}

static void report(restorer *r, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "cairn: cannot restore '/path': <what>", counted as one error. */
static void report(restorer *r, const char *path, const char *fmt, ...)
{
	va_list ap;
	cli_progress_done(r->g);
	fprintf(stderr, "cairn: %s '%s': ", r->phase_verify ? "verify failed for" : "cannot restore",
		path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (r->phase_verify)
		r->st->verify_errors++;
	else
		r->st->errors++;
}

static void report_errno(restorer *r, const char *path, const char *what, int err)
{
	report(r, path, "%s '%s': %s", what, disk_path(r, path), strerror(err));
}

/* A failed entry: remembered so that --verify does not count it twice. */
static void mark_failed(restorer *r, const char *path)
{
	(void)set_add(&r->failed, path);
}

static void show_progress(restorer *r, uint64_t extra_bytes)
{
	char b[32];
	cli_progress(r->g, "[restore] %llu files, %s",
		(unsigned long long)r->st->files_restored,
		cli_format_bytes(b, sizeof(b), r->st->bytes_restored + extra_bytes));
}

static int is_all_zero(const unsigned char *p, size_t len)
{
	size_t i = 0;
	for (; i < len && ((uintptr_t)(p + i) & 7); i++)
		if (p[i])
			return 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if (w)
			return 0;
	}
	for (; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

static int pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Owner, xattrs, mode, times, in that order (chown clears setuid, so the mode
 * comes after it; user xattrs need write permission, so before it).  Uses
 * fd when >= 0, else (dirfd, name) without following a symlink.  Each
 * failure is reported; returns the number of failures. */
static int restore_metadata(restorer *r, int fd, int dirfd, const char *name, const char *path,
	const cairn_node *n)
{
	struct timespec ts[2];
	int failures = 0, rc;

	rc = fd >= 0 ? fchown(fd, n->uid, n->gid)
		: fchownat(dirfd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW);
	if (rc < 0 && (r->is_root || (errno != EPERM && errno != EINVAL))) {
		report_errno(r, path, "cannot change owner of", errno);
		failures++;
	}
	for (size_t i = 0; i < n->n_xattrs; i++) {
		const cairn_xattr *x = &n->xattrs[i];
		if (fd >= 0) {
			rc = fsetxattr(fd, x->name, x->value ? (const void *)x->value : "", x->value_len, 0);
		} else {
			/* No fd for symlinks, fifos and devices: go through the dir
			 * fd's /proc entry, still without following `name`. */
			char proc[64];
			cairn_buf p = CAIRN_BUF_INIT;
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d/", dirfd);
			if (cairn_buf_puts(&p, proc) < 0 || cairn_buf_puts(&p, name) < 0 || !cairn_buf_cstr(&p)) {
				cairn_buf_release(&p);
				errno = ENOMEM;
				rc = -1;
			} else {
				rc = lsetxattr((const char *)p.data, x->name,
					x->value ? (const void *)x->value : "", x->value_len, 0);
				cairn_buf_release(&p);
			}
		}
		if (rc < 0) {
			int err = errno;
			report(r, path, "cannot set extended attribute '%s' on '%s': %s", x->name,
				disk_path(r, path), strerror(err));
			failures++;
		}
	}
	if (n->type != CAIRN_NODE_SYMLINK) {
		mode_t m = cairn_mode_to_posix(n->mode) & 07777;
		rc = fd >= 0 ? fchmod(fd, m) : fchmodat(dirfd, name, m, 0);
		if (rc < 0) {
			report_errno(r, path, "cannot change mode of", errno);
			failures++;
		}
	}
	ts[0].tv_sec = (time_t)n->atime.sec;
	ts[0].tv_nsec = n->atime.nsec;
	ts[1].tv_sec = (time_t)n->mtime.sec;
	ts[1].tv_nsec = n->mtime.nsec;
	rc = fd >= 0 ? futimens(fd, ts) : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (rc < 0) {
		report_errno(r, path, "cannot set times of", errno);
		failures++;
	}
	return failures;
}

/* Make room for a non-directory entry `name`: nothing there, or a
 * non-directory that is removed (a symlink is removed, not followed).  A
 * directory in the way is an error.  0 or -1 (reported). */
static int clear_entry(restorer *r, int dirfd, const char *name, const char *path)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		report_errno(r, path, "cannot stat", errno);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		report(r, path, "'%s' exists and is a directory", disk_path(r, path));
		return -1;
	}
	if (unlinkat(dirfd, name, 0) < 0) {
		report_errno(r, path, "cannot replace", errno);
		return -1;
	}
	return 0;
}

/* Open (and create if needed) dir `name` in dirfd.  An existing dir is
 * reused, another non-dir replaced; a symlink is refused.  Returns the fd
 * or -1 (reported). */
static int open_dir(restorer *r, int dirfd, const char *name, const char *path, int *created)
{
	struct stat st;
	int fd;

	*created = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(st.st_mode)) {
			report(r, path, "'%s' is a symbolic link in the target; refusing to follow it",
				disk_path(r, path));
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dirfd, name, 0) < 0) {
				report_errno(r, path, "cannot replace", errno);
				return -1;
			}
			st.st_mode = 0;
		}
	} else if (errno != ENOENT) {
		report_errno(r, path, "cannot stat", errno);
		return -1;
	} else {
		st.st_mode = 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (mkdirat(dirfd, name, 0700) < 0) {
			report_errno(r, path, "cannot create directory", errno);
			return -1;
		}
		*created = 1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			report(r, path, "'%s' is not a directory (a symbolic link?); refusing to follow it",
				disk_path(r, path));
		else
			report_errno(r, path, "cannot open directory", errno);
		return -1;
	}
	return fd;
}

/* Open the parent dir of snapshot path `path` (relative to the target),
 * component by component with O_NOFOLLOW; *last_out points into path at
 * the last name.  Returns an fd the caller closes, or -1 with errno. */
static int open_parent(restorer *r, const char *path, const char **last_out)
{
	const char *p = path;
	int fd = dup(r->stack[0].fd);

	if (fd < 0)
		return -1;
	while (*p == '/')
		p++;
	for (;;) {
		const char *end = strchr(p, '/');
		char name[NAME_MAX + 1];
		size_t len;
		int next;
		if (!end)
			break;
		len = (size_t)(end - p);
		if (len == 0 || len > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
		p = end + 1;
	}
	*last_out = p;
	return fd;
}

/* Another member of a hard-link group: link it to the first one. */
static void restore_hardlink(restorer *r, int dirfd, const char *path, const cairn_node *n,
	const char *first)
{
	const char *last;
	int pfd;

	if (clear_entry(r, dirfd, n->name, path) < 0)
		goto failed;
	if ((pfd = open_parent(r, first, &last)) < 0) {
		int err = errno;
		report(r, path, "cannot open the directory of '%s': %s", disk_path(r, first), strerror(err));
		goto failed;
	}
	if (linkat(pfd, last, dirfd, n->name, 0) < 0) {
		int err = errno;
		close(pfd);
		report(r, path, "cannot link to '%s': %s", disk_path(r, first), strerror(err));
		goto failed;
	}
	close(pfd);
	r->st->files_restored++;
	r->st->bytes_restored += n->size;
	top(r)->keep = 1;
	return;
failed:
	mark_failed(r, path);
}

/* Report a blob that could not be loaded, naming file, blob and pack. */
static void report_blob(restorer *r, const char *path, const cairn_id *id)
{
	char bhex[CAIRN_ID_HEX_SIZE], phex[CAIRN_ID_HEX_SIZE], msg[512];
	cairn_blob_location loc;

	snprintf(msg, sizeof(msg), "%s", cairn_error_message());
	cairn_id_to_hex(bhex, id);
	if (strstr(msg, bhex) && strstr(msg, "pack"))
		report(r, path, "%s", msg); /* the library's message names both already */
	else if (cairn_index_lookup(&loc, cairn_repo_index(r->repo), CAIRN_BLOB_DATA, id) == 1) {
		cairn_id_to_hex(phex, &loc.pack);
		report(r, path, "blob %s in pack %s: %s", bhex, phex, msg);
	} else {
		report(r, path, "blob %s: %s", bhex, msg);
	}
}

/* Write a file's content blob by blob at running offsets, all-zero blobs
 * as holes, then truncate to node.size (size drives, as in restic: size 0
 * is an empty file whatever the content list says).  A failure removes the
 * file again.  Returns 0, or CAIRN_ECANCELED / CAIRN_ENOMEM to stop. */
static int restore_file(restorer *r, int dirfd, const char *path, const cairn_node *n)
{
	const char *first;
	uint64_t off = 0;
	int fd = -1, rc = 0, hardlinked = n->links > 1 && (n->inode || n->device_id);

	r->st->total_files++;
	r->st->total_bytes += n->size;
	if (hardlinked && (first = hl_get(&r->links, n->device_id, n->inode)) && strcmp(first, path)) {
		restore_hardlink(r, dirfd, path, n, first);
		return 0;
	}
	if (clear_entry(r, dirfd, n->name, path) < 0) {
		mark_failed(r, path);
		return 0;
	}
	fd = openat(dirfd, n->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		report_errno(r, path, "cannot create", errno);
		mark_failed(r, path);
		return 0;
	}
	for (size_t i = 0; n->size > 0 && i < n->n_content && off < n->size; i++) {
		const cairn_id *id = &n->content[i];
		size_t len;
		if (cli_interrupted()) {
			rc = cairn_error_set(CAIRN_ECANCELED, "interrupted");
			goto remove;
		}
		if (r->have_zero && cairn_id_equal(id, &r->zero_id)) {
			off += r->zero_len; /* verified before: leave a hole */
			continue;
		}
		if (cairn_repo_load_blob(&r->blob, r->repo, CAIRN_BLOB_DATA, id) < 0) {
			report_blob(r, path, id);
			goto remove;
		}
		len = r->blob.len;
		if (is_all_zero(r->blob.data, len)) {
			r->have_zero = 1;
			r->zero_id = *id;
			r->zero_len = len;
		} else if (pwrite_all(fd, r->blob.data, len, off) < 0) {
			report_errno(r, path, "cannot write", errno);
			goto remove;
		}
		off += len;
		show_progress(r, off < n->size ? off : n->size);
	}
	if (ftruncate(fd, (off_t)n->size) < 0) {
		report_errno(r, path, "cannot set the size of", errno);
		goto remove;
	}
	restore_metadata(r, fd, dirfd, n->name, path, n);
	if (close(fd) < 0) {
		fd = -1;
		report_errno(r, path, "cannot write", errno);
		goto remove;
	}
	fd = -1;
	if (hardlinked && (rc = hl_put(&r->links, n->device_id, n->inode, path)) < 0)
		return rc;
	r->st->files_restored++;
	r->st->bytes_restored += n->size;
	top(r)->keep = 1;
	show_progress(r, 0);
	return 0;
remove:
	/* Never leave a partly written file that looks restored. */
	if (fd >= 0)
		close(fd);
	if (unlinkat(dirfd, n->name, 0) < 0 && errno != ENOENT)
		report_errno(r, path, "cannot remove the incomplete file", errno);
	mark_failed(r, path);
	return rc;
}

/* Symlinks, fifos and devices.  Sockets are skipped, as restic does. */
static void restore_special(restorer *r, int dirfd, const char *path, const cairn_node *n)
{
	int rc;

	if (n->type == CAIRN_NODE_SOCKET)
		return;
	if (clear_entry(r, dirfd, n->name, path) < 0)
		goto failed;
	switch (n->type) {
	case CAIRN_NODE_SYMLINK:
		rc = symlinkat(n->linktarget ? n->linktarget : "", dirfd, n->name);
		break;
	case CAIRN_NODE_FIFO:
		rc = mkfifoat(dirfd, n->name, 0600);
		break;
	case CAIRN_NODE_DEV:
	case CAIRN_NODE_CHARDEV: {
		/* node.device is a Linux st_rdev: split and rebuild it with glibc's
		 * encoding so large major/minor numbers survive. */
		dev_t d = (dev_t)n->device;
		rc = mknodat(dirfd, n->name, (n->type == CAIRN_NODE_DEV ? S_IFBLK : S_IFCHR) | 0600,
			makedev(major(d), minor(d)));
		break;
	}
	default:
		report(r, path, "unknown node type %d", (int)n->type);
		goto failed;
	}
	if (rc < 0) {
		report_errno(r, path, "cannot create", errno);
		goto failed;
	}
	restore_metadata(r, -1, dirfd, n->name, path, n);
	r->st->other_restored++;
	top(r)->keep = 1;
	return;
failed:
	mark_failed(r, path);
}

/* Which entries take part: includes select (and let the walk go down to
 * what they may select below), excludes take away, and an excluded dir is
 * not descended. */
static void select_node(const restorer *r, const char *path, const cairn_node *n, int *selected,
	int *descend)
{
	int sel = 1, child = 1, m;
	if (r->opts->n_includes)
		restorer_pattern_list(&sel, &child, r->opts->includes, r->opts->n_includes, path);
	if (r->opts->n_excludes) {
		restorer_pattern_list(&m, NULL, r->opts->excludes, r->opts->n_excludes, path);
		if (m)
			sel = child = 0;
	}
	*selected = sel;
	*descend = child && n->type == CAIRN_NODE_DIR;
}

static int restore_enter(const char *path, const cairn_node *n, void *payload)
{
	restorer *r = payload;
	int sel, descend, fd, created, rc;

	if (cli_interrupted())
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	select_node(r, path, n, &sel, &descend);
	if (!sel && !descend)
		return TW_SKIP;
	if (n->type != CAIRN_NODE_DIR) {
		if (n->type == CAIRN_NODE_FILE)
			return restore_file(r, top(r)->fd, path, n);
		restore_special(r, top(r)->fd, path, n);
		return TW_SKIP;
	}
	if ((fd = open_dir(r, top(r)->fd, n->name, path, &created)) < 0) {
		mark_failed(r, path);
		return TW_SKIP;
	}
	if ((rc = push_frame(r, fd, created, sel)) < 0) {
		close(fd);
		return rc;
	}
	if (!descend) {
		/* Selected but nothing below can be: finish it now. */
		r->depth--;
		restore_metadata(r, fd, -1, n->name, path, n);
		close(fd);
		r->st->other_restored++;
		top(r)->keep = 1;
		return TW_SKIP;
	}
	return TW_DESCEND;
}

static int restore_leave(const char *path, const cairn_node *n, void *payload)
{
	restorer *r = payload;
	dir_frame f = *top(r);

	r->depth--;
	if (f.keep) {
		/* After the children, so their creation does not touch the times. */
		restore_metadata(r, f.fd, -1, n->name, path, n);
		r->st->other_restored++;
		top(r)->keep = 1;
		close(f.fd);
	} else {
		/* Only entered to look for included entries, and none was found:
		 * remove it again if we made it. */
		close(f.fd);
		if (f.created && unlinkat(top(r)->fd, n->name, AT_REMOVEDIR) < 0 && errno != ENOTEMPTY)
			report_errno(r, path, "cannot remove the unused directory", errno);
	}
	return 0;
}

static int restore_tree_error(const char *path, const cairn_node *n, int code, void *payload)
{
	restorer *r = payload;
	report(r, path, "%s", cairn_error_message());
	mark_failed(r, path);
	return code == CAIRN_ENOMEM || code == CAIRN_ECANCELED ? code : 0;
}

/* ---- --verify: re-read restored files and hash each blob's range ---- */

static void verify_file(restorer *r, int dirfd, const char *path, const cairn_node *n)
{
	struct stat st;
	uint64_t off = 0;
	int fd = openat(dirfd, n->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0) {
		report_errno(r, path, "cannot open", errno);
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		report(r, path, "'%s' is not a regular file", disk_path(r, path));
		goto out;
	}
	if ((uint64_t)st.st_size != n->size) {
		report(r, path, "size is %lld, want %llu", (long long)st.st_size,
			(unsigned long long)n->size);
		goto out;
	}
	for (size_t i = 0; n->size > 0 && i < n->n_content && off < n->size; i++) {
		cairn_blob_location loc;
		char hex[CAIRN_ID_HEX_SIZE];
		cairn_id got;
		size_t len, done = 0;

		if (cli_interrupted())
			goto out;
		cairn_id_to_hex(hex, &n->content[i]);
		if (cairn_index_lookup(&loc, cairn_repo_index(r->repo), CAIRN_BLOB_DATA, &n->content[i]) != 1) {
			report(r, path, "blob %s is not in the index", hex);
			goto out;
		}
		len = loc.uncompressed_length ? loc.uncompressed_length : loc.length - 32;
		if (off + len > n->size)
			break; /* content longer than size: restore truncated it, nothing to hash */
		cairn_buf_clear(&r->blob);
		if (cairn_buf_reserve(&r->blob, len) < 0) {
			report(r, path, "out of memory");
			goto out;
		}
		while (done < len) {
			ssize_t got_n = pread(fd, r->blob.data + done, len - done, (off_t)(off + done));
			if (got_n < 0 && errno == EINTR)
				continue;
			if (got_n <= 0) {
				report_errno(r, path, "cannot read", got_n < 0 ? errno : EIO);
				goto out;
			}
			done += (size_t)got_n;
		}
		cairn_sha256(&got, r->blob.data, len);
		if (!cairn_id_equal(&got, &n->content[i])) {
			report(r, path, "content at offset %llu does not match blob %s",
				(unsigned long long)off, hex);
			goto out;
		}
		off += len;
	}
	r->st->files_verified++;
out:
	close(fd);
}

static int verify_enter(const char *path, const cairn_node *n, void *payload)
{
	restorer *r = payload;
	int sel, descend, fd, rc;

	if (cli_interrupted())
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	if (set_has(&r->failed, path))
		return TW_SKIP; /* already reported */
	select_node(r, path, n, &sel, &descend);
	if (n->type == CAIRN_NODE_FILE) {
		if (sel)
			verify_file(r, top(r)->fd, path, n);
		return TW_SKIP;
	}
	if (!descend)
		return TW_SKIP;
	fd = openat(top(r)->fd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (!(errno == ENOENT && !sel)) /* an unused dir was removed again */
			report_errno(r, path, "cannot open directory", errno);
		return TW_SKIP;
	}
	if ((rc = push_frame(r, fd, 0, 0)) < 0) {
		close(fd);
		return rc;
	}
	return TW_DESCEND;
}

static int verify_leave(const char *path, const cairn_node *n, void *payload)
{
	restorer *r = payload;
	close(top(r)->fd);
	r->depth--;
	return 0;
}

static int verify_tree_error(const char *path, const cairn_node *n, int code, void *payload)
{
	/* Already reported by the restore pass (it loads the same trees). */
	return code == CAIRN_ENOMEM || code == CAIRN_ECANCELED ? code : 0;
}

/* mkdir -p of the user's target (symlinks in the target path itself are
 * the user's choice and are followed). */
static int make_target(const char *target)
{
	char *copy = strdup(target);
	int r = 0;

	if (!copy)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (char *p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
				r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot create target '%s'", copy);
				break;
			}
			*p = saved;
			if (!saved)
				break;
		}
	}
	free(copy);
	return r;
}

int restorer_run(restorer_stats *stats, cairn_repo *repo, const cairn_id *tree,
	const restorer_options *opts, const cli_globals *g)
{
	restorer r;
	tw_visitor v = { restore_enter, restore_leave, restore_tree_error, NULL };
	int rc, root_fd = -1;

	memset(stats, 0, sizeof(*stats));
	memset(&r, 0, sizeof(r));
	r.repo = repo;
	r.opts = opts;
	r.g = g;
	r.st = stats;
	r.is_root = geteuid() == 0;
	v.payload = &r;

	if (!opts->target || !*opts->target) {
		rc = cairn_error_set(CAIRN_EINVAL, "no target directory given");
		goto out;
	}
	if ((rc = make_target(opts->target)) < 0)
		goto out;
	if ((root_fd = open(opts->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = cairn_error_set_errno(CAIRN_EIO, errno, "cannot open target '%s'", opts->target);
		goto out;
	}
	if ((rc = push_frame(&r, root_fd, 0, 1)) < 0)
		goto out;
	root_fd = -1;

	rc = tw_walk(repo, tree, "/", &v);
	if (rc == CAIRN_ENOTFOUND || rc == CAIRN_ECORRUPT || rc == CAIRN_EIO) {
		/* The root tree itself could not be read. */
		report(&r, "/", "%s", cairn_error_message());
		rc = 0;
	}
	if (rc < 0)
		goto out;
	cli_progress_done(g);

	if (opts->verify) {
		tw_visitor vv = { verify_enter, verify_leave, verify_tree_error, &r };
		r.phase_verify = 1;
		while (r.depth > 1) {
			r.depth--;
			close(r.stack[r.depth].fd);
		}
		rc = tw_walk(repo, tree, "/", &vv);
		if (rc == CAIRN_ENOTFOUND || rc == CAIRN_ECORRUPT || rc == CAIRN_EIO)
			rc = 0; /* reported by the restore pass */
	}
out:
	cli_progress_done(g);
	if (root_fd >= 0)
		close(root_fd);
	while (r.depth > 0) {
		r.depth--;
		close(r.stack[r.depth].fd);
	}
	free(r.stack);
	cairn_buf_release(&r.blob);
	cairn_buf_release(&r.where);
	hl_release(&r.links);
	set_release(&r.failed);
	return rc;
}
