/* restorer.c: recreate a snapshot tree under a target directory, restic
 * style: dirs, files (sparse where blobs are all zeros), symlinks, hard
 * links, fifos and devices, then owner, xattrs, mode and times; a dir gets
 * its metadata after its children.  --include/--exclude select entries by
 * their path inside the snapshot; --verify re-reads every restored file and
 * checks each blob's SHA-256 against the node's content list.
 *
 * Design: a restore is a walk and a plan.  The walk (this file, the main
 * thread) visits the trees in name order, creates dirs, symlinks, fifos,
 * devices and empty files at once, and adds every other regular file to
 * the plan (agent/restore_plan.h): which blob goes to which offset, and
 * where each blob is (pack, offset, length).  When the plan reaches its
 * byte limit, and at the end, the batch is run (agent/restore_exec.h):
 * worker threads take the plan's packs range by range (each needed byte is
 * read once, in a few large loads), decode and verify every blob and write it to
 * every place that needs it (the first worker to need a file creates it:
 * creating many small files costs the kernel more than writing them, so
 * that is spread over the threads too), then finish each file whose last
 * blob is written.  After the workers: hard links to
 * files of the batch, then the metadata of the dirs the walk has left, in
 * post-order (children first), so their times are set after everything
 * below them is written.  A pack needed by two batches is read in each;
 * with the default limit (64 MiB, some 200,000 small files) most restores
 * are one batch, and memory stays bounded for any snapshot.
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
 *    the write to a file outside it; a worker creates a planned file the
 *    same way, relative to its dir reopened with O_NOFOLLOW per component
 *    and checked to be the dir the walk made, and reopens it only if it is
 *    still the inode it created (restore_plan.c).
 *  - Names come from cairn_tree_decode (validated) and are checked again by
 *    tw_walk before any path is built from them.
 *  - Only verified plaintext (cairn_blob_decode checks MAC, length and
 *    SHA-256) is written.  When a blob of a file fails, that file is removed
 *    again, the failure is reported with the file, blob and pack, and the
 *    other files complete.  After SIGINT or a fatal error every planned file
 *    not finished is removed.
 *  - Memory: the plan of one batch (bounded by its limit), the workers'
 *    buffers (restore_exec.h), one decoded tree and one open dir fd per
 *    directory level of the walk, and the paths of hard-linked files.
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
#include <time.h>
#include <unistd.h>

#include "restorer.h"
#include "restore_exec.h"
#include "restore_fs.h"
#include "restore_plan.h"
#include "restore_verify.h"
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

/* ---- hard-link groups: (device_id, inode) -> the first restored member ---- */

enum { HL_DONE = 0, HL_PENDING = 1, HL_FAILED = 2 };

typedef struct hl_entry {
	uint64_t dev, ino;
	char *path;     /* owned; NULL = empty slot */
	int state;      /* HL_*: pending while the first member's batch runs */
	uint32_t file;  /* HL_PENDING: its index in the plan */
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

/* The group's entry (borrowed), or NULL; a failed group counts as absent. */
static hl_entry *hl_get(const hl_map *m, uint64_t dev, uint64_t ino)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hl_hash(dev, ino) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		hl_entry *e = &m->slots[i];
		if (!e->path)
			return NULL;
		if (e->dev == dev && e->ino == ino)
			return e->state == HL_FAILED ? NULL : e;
	}
}

/* Record (or replace a failed) first member; copies path. */
static int hl_put(hl_map *m, uint64_t dev, uint64_t ino, const char *path, int state, uint32_t file)
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
		hl_entry *e = &m->slots[i];
		char *copy;
		if (e->path && !(e->dev == dev && e->ino == ino))
			continue;
		if (!(copy = strdup(path)))
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		if (!e->path)
			m->n++;
		free(e->path);
		e->path = copy;
		e->dev = dev;
		e->ino = ino;
		e->state = state;
		e->file = file;
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

/* ---- the restorer ---- */

typedef struct dir_frame {
	int fd;          /* open dir, O_NOFOLLOW */
	int created;     /* we made it (may be removed again if nothing lands in it) */
	int keep;        /* selected itself, or something was restored inside */
	uint32_t dir;    /* its index in the plan's dir table */
	char *path;      /* owned snapshot path; "" for the target */
	uint64_t dev, ino;
} dir_frame;

typedef struct restorer {
	cairn_repo *repo;
	const restorer_options *opts;
	rs_ctx c;
	dir_frame *stack;           /* stack[0] is the target itself */
	size_t depth, cap;
	rp_plan plan;               /* the current batch */
	size_t plan_limit;
	rx_options xo;
	hl_map links;
	cairn_blob_location *locs;  /* scratch: one file's blob locations */
	size_t cap_locs;
	cairn_buf path;             /* scratch path */
} restorer;

static int push_frame(restorer *r, int fd, int created, int keep, const char *path,
	uint64_t dev, uint64_t ino)
{
	dir_frame *f;
	if (r->depth == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		dir_frame *s = realloc(r->stack, cap * sizeof(*s));
		if (!s)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory");
		r->stack = s;
		r->cap = cap;
	}
	f = &r->stack[r->depth];
	memset(f, 0, sizeof(*f));
	if (path && !(f->path = strdup(path)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	f->fd = fd;
	f->created = created;
	f->keep = keep;
	f->dir = RP_NONE;
	f->dev = dev;
	f->ino = ino;
	r->depth++;
	return 0;
}

/* Close and forget the top frame's fd and path. */
static void pop_frame(restorer *r)
{
	dir_frame *f = &r->stack[--r->depth];
	if (f->dir != RP_NONE && f->dir < r->plan.n_dirs)
		r->plan.dirs[f->dir].fd = -1;
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	f->path = NULL;
	f->fd = -1;
}

static dir_frame *top(restorer *r)
{
	return &r->stack[r->depth - 1];
}

#define TGT(r) (r)->c.target_len, (r)->c.target

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
			rs_report(&r->c, path, "'%.*s%s' is a symbolic link in the target; refusing to follow it",
				TGT(r), path);
			return -1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dirfd, name, 0) < 0) {
				rs_report_errno(&r->c, path, "cannot replace", errno);
				return -1;
			}
			st.st_mode = 0;
		}
	} else if (errno != ENOENT) {
		rs_report_errno(&r->c, path, "cannot stat", errno);
		return -1;
	} else {
		st.st_mode = 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (mkdirat(dirfd, name, 0700) < 0) {
			rs_report_errno(&r->c, path, "cannot create directory", errno);
			return -1;
		}
		*created = 1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			rs_report(&r->c, path, "'%.*s%s' is not a directory (a symbolic link?); refusing to follow it",
				TGT(r), path);
		else
			rs_report_errno(&r->c, path, "cannot open directory", errno);
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

/* Another member of a hard-link group whose first member is complete:
 * link it to the first one now. */
static void restore_hardlink(restorer *r, int dirfd, const char *path, const cairn_node *n,
	const char *first)
{
	const char *last;
	int pfd;

	if (rs_clear_entry(&r->c, dirfd, n->name, path) < 0)
		goto failed;
	if ((pfd = open_parent(r, first, &last)) < 0) {
		int err = errno;
		rs_report(&r->c, path, "cannot open the directory of '%.*s%s': %s", TGT(r), first,
			strerror(err));
		goto failed;
	}
	if (linkat(pfd, last, dirfd, n->name, 0) < 0) {
		int err = errno;
		close(pfd);
		rs_report(&r->c, path, "cannot link to '%.*s%s': %s", TGT(r), first, strerror(err));
		goto failed;
	}
	close(pfd);
	rs_add(&r->c.st->files_restored, 1);
	rs_add(&r->c.st->bytes_restored, n->size);
	top(r)->keep = 1;
	return;
failed:
	rs_mark_failed(&r->c, path);
}

/* ---- running a batch ---- */

/* Rebuild the plan's dir table from the walk's stack (after a reset). */
static int plan_stack_dirs(restorer *r)
{
	for (size_t i = 0; i < r->depth; i++) {
		dir_frame *f = &r->stack[i];
		int rc = rp_add_dir(&f->dir, &r->plan, i ? r->stack[i - 1].dir : RP_NONE, f->path,
			f->fd, f->dev, f->ino);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Hard links to first members written in this batch.  0 or CAIRN_ENOMEM. */
static int run_links(restorer *r, rp_fdcache *cache)
{
	rp_plan *p = &r->plan;
	cairn_buf first_path = CAIRN_BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < p->n_links; i++) {
		const rp_link *l = &p->links[i];
		const rp_file *f = &p->files[l->first];
		const char *path, *fpath;
		int first_dir = -1, member_dir, fd;

		if ((rc = rp_dir_child_path(&r->path, p, l->dir, rp_str(p, l->name))) < 0 ||
		    (rc = rp_file_path(&first_path, p, l->first)) < 0)
			break;
		path = (const char *)r->path.data;
		fpath = (const char *)first_path.data;
		if (f->state != RP_FILE_DONE) {
			rs_report(&r->c, path, "cannot link to '%.*s%s': it could not be restored", TGT(r), fpath);
			rs_mark_failed(&r->c, path);
			continue;
		}
		/* dup: opening the member's dir may evict the first's from the cache */
		if ((fd = rp_open_dir(cache, p, f->dir)) < 0 || (first_dir = dup(fd)) < 0 ||
		    (member_dir = rp_open_dir(cache, p, l->dir)) < 0) {
			int err = errno;
			rs_report(&r->c, path, "cannot open the directories to link '%.*s%s': %s", TGT(r),
				fpath, err == ESTALE ? "one was replaced during the restore" : strerror(err));
			rs_mark_failed(&r->c, path);
		} else if (linkat(first_dir, rp_str(p, f->name), member_dir, rp_str(p, l->name), 0) < 0) {
			int err = errno;
			rs_report(&r->c, path, "cannot link to '%.*s%s': %s", TGT(r), fpath, strerror(err));
			rs_mark_failed(&r->c, path);
		} else {
			rs_add(&r->c.st->files_restored, 1);
			rs_add(&r->c.st->bytes_restored, l->size);
		}
		if (first_dir >= 0)
			close(first_dir);
	}
	cairn_buf_release(&first_path);
	return rc;
}

/* Run the current batch: content, hard links, then the metadata of the
 * dirs the walk has left (post-order); then start the next batch with the
 * dirs still on the stack.  0, CAIRN_ECANCELED or CAIRN_ENOMEM. */
static int run_batch(restorer *r)
{
	rp_plan *p = &r->plan;
	rp_fdcache cache;
	int rc;

	rp_fdcache_init(&cache);
	if ((rc = rp_finalize(p)) < 0)
		goto out;
	if (p->n_files) {
		rs_add(&r->c.st->batches, 1);
		if ((rc = rx_run(&r->c, p, r->repo, &r->xo)) < 0)
			goto out;
	}
	for (size_t i = 0; i < r->links.cap; i++) {
		hl_entry *e = &r->links.slots[i];
		if (e->path && e->state == HL_PENDING)
			e->state = p->files[e->file].state == RP_FILE_DONE ? HL_DONE : HL_FAILED;
	}
	if ((rc = run_links(r, &cache)) < 0)
		goto out;
	for (size_t i = 0; i < p->n_dirmeta; i++) {
		const rp_dirmeta *d = &p->dirmeta[i];
		const char *path = rp_str(p, p->dirs[d->dir].path);
		int fd = rp_open_dir(&cache, p, d->dir);
		if (cli_interrupted()) {
			rc = cairn_error_set(CAIRN_ECANCELED, "interrupted");
			goto out;
		}
		if (fd < 0) {
			int err = errno;
			rs_report(&r->c, path, "cannot open directory '%.*s%s': %s", TGT(r), path,
				err == ESTALE ? "it was replaced during the restore" : strerror(err));
			continue;
		}
		rs_metadata(&r->c, fd, -1, NULL, path, CAIRN_NODE_DIR, &d->meta, NULL);
	}
	rp_reset(p);
	rc = plan_stack_dirs(r);
out:
	rp_fdcache_release(&cache);
	return rc;
}

/* Run the batch when the plan has reached its limit. */
static int maybe_run_batch(restorer *r)
{
	return rp_bytes(&r->plan) >= r->plan_limit ? run_batch(r) : 0;
}

/* ---- the walk ---- */

/* A regular file.  One that needs no blob (empty, or size 0) is created
 * and finished at once; the others go into the plan, to be created by the
 * first worker that needs them.  Returns 0, or a negative code to stop. */
static int restore_file(restorer *r, int dirfd, const char *path, const cairn_node *n)
{
	cairn_index *idx = cairn_repo_index(r->repo);
	rs_meta meta;
	hl_entry *first = NULL;
	uint64_t off = 0;
	size_t nb = 0;
	uint32_t fi;
	int fd = -1, rc = 0, hardlinked = n->links > 1 && (n->inode || n->device_id);

	memset(&meta, 0, sizeof(meta));
	rs_add(&r->c.st->total_files, 1);
	rs_add(&r->c.st->total_bytes, n->size);
	if (hardlinked && (first = hl_get(&r->links, n->device_id, n->inode)) &&
	    strcmp(first->path, path)) {
		if (first->state == HL_DONE) {
			restore_hardlink(r, dirfd, path, n, first->path);
			return 0;
		}
		/* The first member is in this batch: link after the workers. */
		if (rs_clear_entry(&r->c, dirfd, n->name, path) < 0) {
			rs_mark_failed(&r->c, path);
			return 0;
		}
		if ((rc = rp_add_link(&r->plan, top(r)->dir, n->name, first->file, n->size)) < 0)
			return rc;
		top(r)->keep = 1;
		return maybe_run_batch(r);
	}

	/* Where every needed blob is, before anything is planned. */
	for (size_t i = 0; n->size > 0 && i < n->n_content && off < n->size; i++) {
		cairn_blob_location *loc;
		char hex[CAIRN_ID_HEX_SIZE];
		if (nb == r->cap_locs) {
			size_t cap = r->cap_locs ? r->cap_locs * 2 : 64;
			cairn_blob_location *l = realloc(r->locs, cap * sizeof(*l));
			if (!l)
				return cairn_error_set(CAIRN_ENOMEM, "out of memory");
			r->locs = l;
			r->cap_locs = cap;
		}
		loc = &r->locs[nb];
		cairn_id_to_hex(hex, &n->content[i]);
		if (cairn_index_lookup(loc, idx, CAIRN_BLOB_DATA, &n->content[i]) != 1) {
			if (rs_clear_entry(&r->c, dirfd, n->name, path) == 0)
				rs_report(&r->c, path, "data blob '%s' is not in the index", hex);
			rs_mark_failed(&r->c, path);
			return 0;
		}
		if (loc->length <= 32 && !loc->uncompressed_length) {
			char phex[CAIRN_ID_HEX_SIZE];
			cairn_id_to_hex(phex, &loc->pack);
			if (rs_clear_entry(&r->c, dirfd, n->name, path) == 0)
				rs_report(&r->c, path, "blob %s in pack %s: the index gives an impossible "
					"length %u", hex, phex, loc->length);
			rs_mark_failed(&r->c, path);
			return 0;
		}
		off += loc->uncompressed_length ? loc->uncompressed_length : loc->length - 32;
		nb++;
	}
	top(r)->keep = 1;
	if (nb > 0) {
		if ((rc = rs_meta_from_node(&meta, n)) < 0 ||
		    (rc = rp_add_file(&fi, &r->plan, top(r)->dir, n->name, n->size, &meta)) < 0) {
			rs_meta_release(&meta);
			return rc;
		}
		off = 0;
		for (size_t i = 0; i < nb; i++) {
			const cairn_blob_location *loc = &r->locs[i];
			uint32_t bi;
			if ((rc = rp_add_blob(&bi, &r->plan, &n->content[i], loc)) < 0 ||
			    (rc = rp_add_use(&r->plan, bi, fi, off)) < 0)
				return rc;
			off += loc->uncompressed_length ? loc->uncompressed_length : loc->length - 32;
		}
		if (hardlinked && (rc = hl_put(&r->links, n->device_id, n->inode, path, HL_PENDING, fi)) < 0)
			return rc;
		return maybe_run_batch(r);
	}

	/* Nothing to read: create it, size and metadata now. */
	if (rs_clear_entry(&r->c, dirfd, n->name, path) < 0) {
		rs_mark_failed(&r->c, path);
		return 0;
	}
	fd = openat(dirfd, n->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rs_report_errno(&r->c, path, "cannot create", errno);
		rs_mark_failed(&r->c, path);
		return 0;
	}
	if (ftruncate(fd, (off_t)n->size) < 0) {
		rs_report_errno(&r->c, path, "cannot set the size of", errno);
		goto failed;
	}
	if ((rc = rs_meta_from_node(&meta, n)) < 0)
		goto failed;
	rs_metadata(&r->c, fd, dirfd, n->name, path, CAIRN_NODE_FILE, &meta, NULL);
	rs_meta_release(&meta);
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = 0;
		rs_report_errno(&r->c, path, "cannot write", errno);
		goto failed;
	}
	if (hardlinked && (rc = hl_put(&r->links, n->device_id, n->inode, path, HL_DONE, 0)) < 0)
		return rc;
	rs_add(&r->c.st->files_restored, 1);
	rs_add(&r->c.st->bytes_restored, n->size);
	return 0;
failed:
	/* Never leave a file that looks restored. */
	if (fd >= 0)
		close(fd);
	if (unlinkat(dirfd, n->name, 0) < 0 && errno != ENOENT)
		rs_report_errno(&r->c, path, "cannot remove the incomplete file", errno);
	rs_mark_failed(&r->c, path);
	return rc;
}

/* Symlinks, fifos and devices.  Sockets are skipped, as restic does. */
static int restore_special(restorer *r, int dirfd, const char *path, const cairn_node *n)
{
	rs_meta meta;
	int rc;

	if (n->type == CAIRN_NODE_SOCKET)
		return 0;
	if (rs_clear_entry(&r->c, dirfd, n->name, path) < 0)
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
		rs_report(&r->c, path, "unknown node type %d", (int)n->type);
		goto failed;
	}
	if (rc < 0) {
		rs_report_errno(&r->c, path, "cannot create", errno);
		goto failed;
	}
	if ((rc = rs_meta_from_node(&meta, n)) < 0)
		return rc;
	rs_metadata(&r->c, -1, dirfd, n->name, path, n->type, &meta, NULL);
	rs_meta_release(&meta);
	rs_add(&r->c.st->other_restored, 1);
	top(r)->keep = 1;
	return 0;
failed:
	rs_mark_failed(&r->c, path);
	return 0;
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
	struct stat st;
	int sel, descend, fd, created, rc;

	if (cli_interrupted())
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	select_node(r, path, n, &sel, &descend);
	if (!sel && !descend)
		return TW_SKIP;
	if (n->type != CAIRN_NODE_DIR) {
		if (n->type == CAIRN_NODE_FILE)
			rc = restore_file(r, top(r)->fd, path, n);
		else
			rc = restore_special(r, top(r)->fd, path, n);
		return rc < 0 ? rc : TW_SKIP;
	}
	if ((fd = open_dir(r, top(r)->fd, n->name, path, &created)) < 0) {
		rs_mark_failed(&r->c, path);
		return TW_SKIP;
	}
	if (fstat(fd, &st) < 0) {
		rs_report_errno(&r->c, path, "cannot stat", errno);
		rs_mark_failed(&r->c, path);
		close(fd);
		return TW_SKIP;
	}
	if ((rc = push_frame(r, fd, created, sel, path, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) < 0) {
		close(fd);
		return rc;
	}
	if ((rc = rp_add_dir(&top(r)->dir, &r->plan, r->stack[r->depth - 2].dir, path, fd,
		(uint64_t)st.st_dev, (uint64_t)st.st_ino)) < 0)
		return rc;
	if (!descend) {
		/* Selected but nothing below can be: finish it now. */
		rs_meta meta;
		if ((rc = rs_meta_from_node(&meta, n)) < 0)
			return rc;
		rs_metadata(&r->c, fd, -1, n->name, path, CAIRN_NODE_DIR, &meta, NULL);
		rs_meta_release(&meta);
		pop_frame(r);
		rs_add(&r->c.st->other_restored, 1);
		top(r)->keep = 1;
		return TW_SKIP;
	}
	return TW_DESCEND;
}

static int restore_leave(const char *path, const cairn_node *n, void *payload)
{
	restorer *r = payload;
	dir_frame f = *top(r);
	rs_meta meta;
	int rc = 0;

	if (f.keep) {
		/* After the children (when the batch has run), so their creation
		 * and content do not touch the times. */
		if ((rc = rs_meta_from_node(&meta, n)) < 0 ||
		    (rc = rp_add_dirmeta(&r->plan, f.dir, &meta)) < 0)
			rs_meta_release(&meta);
		pop_frame(r);
		rs_add(&r->c.st->other_restored, 1);
		top(r)->keep = 1;
	} else {
		/* Only entered to look for included entries, and none was found:
		 * remove it again if we made it. */
		pop_frame(r);
		if (f.created && unlinkat(top(r)->fd, n->name, AT_REMOVEDIR) < 0 && errno != ENOTEMPTY)
			rs_report_errno(&r->c, path, "cannot remove the unused directory", errno);
	}
	return rc;
}

static int restore_tree_error(const char *path, const cairn_node *n, int code, void *payload)
{
	restorer *r = payload;
	rs_report(&r->c, path, "%s", cairn_error_message());
	rs_mark_failed(&r->c, path);
	return code == CAIRN_ENOMEM || code == CAIRN_ECANCELED ? code : 0;
}

/* ---- --verify: a second walk plans every selected file's blobs, and
 * restore_verify.c's threads re-read and hash them, batch by batch ---- */

/* Plan the check of one restored file against its own content list (a
 * hard-link member is checked against its node too). */
static int verify_plan_file(restorer *r, const char *path, const cairn_node *n)
{
	cairn_index *idx = cairn_repo_index(r->repo);
	rs_meta none;
	uint64_t off = 0;
	uint32_t fi;
	int rc;

	memset(&none, 0, sizeof(none));
	if ((rc = rp_add_file(&fi, &r->plan, top(r)->dir, n->name, n->size, &none)) < 0)
		return rc;
	for (size_t i = 0; n->size > 0 && i < n->n_content && off < n->size; i++) {
		cairn_blob_location loc;
		uint32_t bi;
		if (cairn_index_lookup(&loc, idx, CAIRN_BLOB_DATA, &n->content[i]) != 1 ||
		    (loc.length <= 32 && !loc.uncompressed_length)) {
			char hex[CAIRN_ID_HEX_SIZE];
			cairn_id_to_hex(hex, &n->content[i]);
			rs_report(&r->c, path, "blob %s is not in the index", hex);
			/* checked no further: a failed file is not counted */
			atomic_store(&r->plan.files[fi].failed, 1);
			break;
		}
		if ((rc = rp_add_blob(&bi, &r->plan, &n->content[i], &loc)) < 0 ||
		    (rc = rp_add_use(&r->plan, bi, fi, off)) < 0)
			return rc;
		off += loc.uncompressed_length ? loc.uncompressed_length : loc.length - 32;
	}
	return 0;
}

/* Verify the planned files, then start the next batch. */
static int run_verify_batch(restorer *r)
{
	int rc = 0;
	if (r->plan.n_files)
		rc = rv_run(&r->c, &r->plan, r->xo.threads);
	rp_reset(&r->plan);
	if (rc == 0)
		rc = plan_stack_dirs(r);
	return rc;
}

static int verify_enter(const char *path, const cairn_node *n, void *payload)
{
	restorer *r = payload;
	struct stat st;
	int sel, descend, fd, rc;

	if (cli_interrupted())
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	if (rs_has_failed(&r->c, path))
		return TW_SKIP; /* already reported */
	select_node(r, path, n, &sel, &descend);
	if (n->type == CAIRN_NODE_FILE) {
		if (sel && ((rc = verify_plan_file(r, path, n)) < 0 ||
		    (rp_bytes(&r->plan) >= r->plan_limit && (rc = run_verify_batch(r)) < 0)))
			return rc;
		return TW_SKIP;
	}
	if (!descend)
		return TW_SKIP;
	fd = openat(top(r)->fd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (!(errno == ENOENT && !sel)) /* an unused dir was removed again */
			rs_report_errno(&r->c, path, "cannot open directory", errno);
		return TW_SKIP;
	}
	if (fstat(fd, &st) < 0) {
		rs_report_errno(&r->c, path, "cannot stat", errno);
		close(fd);
		return TW_SKIP;
	}
	if ((rc = push_frame(r, fd, 0, 0, path, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) < 0) {
		close(fd);
		return rc;
	}
	return rp_add_dir(&top(r)->dir, &r->plan, r->stack[r->depth - 2].dir, path, fd,
		(uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

static int verify_leave(const char *path, const cairn_node *n, void *payload)
{
	pop_frame(payload);
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
	struct stat st;
	int rc, root_fd = -1, ctx_ok = 0;

	memset(stats, 0, sizeof(*stats));
	memset(&r, 0, sizeof(r));
	r.repo = repo;
	r.opts = opts;
	rp_init(&r.plan);
	r.plan_limit = opts->plan_limit ? opts->plan_limit : RESTORER_PLAN_LIMIT_DEFAULT;
	r.xo.threads = opts->threads > 0 ? opts->threads : 1;
	r.xo.range_max = RX_RANGE_MAX_DEFAULT;
	r.xo.gap_max = RX_GAP_MAX_DEFAULT;
	v.payload = &r;

	if (!opts->target || !*opts->target) {
		rc = cairn_error_set(CAIRN_EINVAL, "no target directory given");
		goto out;
	}
	if ((rc = rs_ctx_init(&r.c, opts->target, g, stats)) < 0)
		goto out;
	ctx_ok = 1;
	r.c.is_root = geteuid() == 0;
	if ((rc = make_target(opts->target)) < 0)
		goto out;
	if ((root_fd = open(opts->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(root_fd, &st) < 0) {
		rc = cairn_error_set_errno(CAIRN_EIO, errno, "cannot open target '%s'", opts->target);
		goto out;
	}
	if ((rc = push_frame(&r, root_fd, 0, 1, "", (uint64_t)st.st_dev, (uint64_t)st.st_ino)) < 0)
		goto out;
	root_fd = -1;
	if ((rc = plan_stack_dirs(&r)) < 0)
		goto out;

	rc = tw_walk(repo, tree, "/", &v);
	if (rc == CAIRN_ENOTFOUND || rc == CAIRN_ECORRUPT || rc == CAIRN_EIO) {
		/* The root tree itself could not be read. */
		rs_report(&r.c, "/", "%s", cairn_error_message());
		rc = 0;
	}
	if (rc == 0)
		rc = run_batch(&r);
	if (rc < 0)
		goto out;
	cli_progress_done(g);

	if (opts->verify) {
		tw_visitor vv = { verify_enter, verify_leave, verify_tree_error, &r };
		r.c.phase_verify = 1;
		while (r.depth > 1)
			pop_frame(&r);
		rc = tw_walk(repo, tree, "/", &vv);
		if (rc == CAIRN_ENOTFOUND || rc == CAIRN_ECORRUPT || rc == CAIRN_EIO)
			rc = 0; /* reported by the restore pass */
		if (rc == 0)
			rc = run_verify_batch(&r);
	}
out:
	if (rc < 0 && ctx_ok && !r.c.phase_verify)
		rx_remove_pending(&r.c, &r.plan); /* a stopped walk: nothing half-made stays */
	cli_progress_done(g);
	if (root_fd >= 0)
		close(root_fd);
	while (r.depth > 0)
		pop_frame(&r);
	free(r.stack);
	free(r.locs);
	rp_release(&r.plan);
	cairn_buf_release(&r.path);
	hl_release(&r.links);
	if (ctx_ok)
		rs_ctx_release(&r.c);
	return rc;
}
