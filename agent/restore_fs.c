/* restore_fs.c: the target-side helpers shared by the restorer's walk
 * (agent/restorer.c) and its worker threads (agent/restore_exec.c): error
 * reports, metadata, clearing the way for a new entry.
 *
 * Design: a report is one fprintf to stderr under ctx->mu, which also
 * guards the error counters and the set of failed paths, so messages from
 * several workers never interleave and the counts match the messages.
 * The progress line is drawn by the main thread under the same mutex.
 *
 * Safety: metadata goes through the entry's own fd when there is one;
 * otherwise through (dirfd, name) with AT_SYMLINK_NOFOLLOW, and xattrs of
 * fd-less entries through /proc/self/fd/<dirfd>/<name> with lsetxattr,
 * which does not follow the last component either.  rs_clear_entry never
 * follows a symlink: unlinkat removes the link itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "restore_fs.h"

/* ---- the set of failed paths ---- */

static size_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (size_t)h;
}

static int set_has(const rs_strset *s, const char *key)
{
	if (!s->n)
		return 0;
	for (size_t i = str_hash(key) & (s->cap - 1); s->slots[i]; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slots[i], key) == 0)
			return 1;
	return 0;
}

static int set_add(rs_strset *s, const char *key)
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

static void set_release(rs_strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* ---- context and reports ---- */

int rs_ctx_init(rs_ctx *c, const char *target, const cli_globals *g, restorer_stats *st)
{
	size_t tl = strlen(target);

	memset(c, 0, sizeof(*c));
	while (tl > 1 && target[tl - 1] == '/')
		tl--;
	if (tl == 1 && target[0] == '/')
		tl = 0; /* "/" + "/src" must not print "//src" */
	c->target = target;
	c->target_len = (int)(tl > 4096 ? 4096 : tl);
	c->g = g;
	c->st = st;
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		return cairn_error_set(CAIRN_ENOMEM, "cannot create a mutex");
	return 0;
}

void rs_ctx_release(rs_ctx *c)
{
	set_release(&c->failed);
	pthread_mutex_destroy(&c->mu);
}

void rs_report(rs_ctx *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->mu);
	cli_progress_done(c->g);
	fprintf(stderr, "cairn: %s '%s': ", c->phase_verify ? "verify failed for" : "cannot restore",
		path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c->phase_verify)
		c->st->verify_errors++;
	else
		c->st->errors++;
	pthread_mutex_unlock(&c->mu);
}

void rs_report_errno(rs_ctx *c, const char *path, const char *what, int err)
{
	rs_report(c, path, "%s '%.*s%s': %s", what, c->target_len, c->target, path, strerror(err));
}

void rs_mark_failed(rs_ctx *c, const char *path)
{
	pthread_mutex_lock(&c->mu);
	(void)set_add(&c->failed, path); /* out of memory: --verify reports it once more */
	pthread_mutex_unlock(&c->mu);
}

int rs_has_failed(rs_ctx *c, const char *path)
{
	int r;
	pthread_mutex_lock(&c->mu);
	r = set_has(&c->failed, path);
	pthread_mutex_unlock(&c->mu);
	return r;
}

void rs_progress(rs_ctx *c)
{
	char b[32];
	uint64_t files = __atomic_load_n(&c->st->files_restored, __ATOMIC_RELAXED);
	uint64_t bytes = __atomic_load_n(&c->st->bytes_written, __ATOMIC_RELAXED);

	if (!c->g->progress)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->phase_verify)
		cli_progress(c->g, "[verify] %llu files", (unsigned long long)
			__atomic_load_n(&c->st->files_verified, __ATOMIC_RELAXED));
	else
		cli_progress(c->g, "[restore] %llu files, %s", (unsigned long long)files,
			cli_format_bytes(b, sizeof(b), bytes));
	pthread_mutex_unlock(&c->mu);
}

/* ---- metadata ---- */

int rs_meta_from_node(rs_meta *out, const cairn_node *n)
{
	memset(out, 0, sizeof(*out));
	out->mode = n->mode;
	out->uid = n->uid;
	out->gid = n->gid;
	out->atime = n->atime;
	out->mtime = n->mtime;
	if (!n->n_xattrs)
		return 0;
	if (!(out->xattrs = calloc(n->n_xattrs, sizeof(*out->xattrs))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < n->n_xattrs; i++) {
		const cairn_xattr *x = &n->xattrs[i];
		cairn_xattr *y = &out->xattrs[i];
		out->n_xattrs = i + 1;
		if (!(y->name = strdup(x->name)))
			goto nomem;
		if (x->value_len) {
			if (!(y->value = malloc(x->value_len)))
				goto nomem;
			memcpy(y->value, x->value, x->value_len);
		}
		y->value_len = x->value_len;
	}
	return 0;
nomem:
	rs_meta_release(out);
	return cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

void rs_meta_release(rs_meta *m)
{
	for (size_t i = 0; i < m->n_xattrs; i++) {
		free(m->xattrs[i].name);
		free(m->xattrs[i].value);
	}
	free(m->xattrs);
	m->xattrs = NULL;
	m->n_xattrs = 0;
}

int rs_metadata(rs_ctx *c, int fd, int dirfd, const char *name, const char *path,
	cairn_node_type type, const rs_meta *m, const rs_have *have)
{
	struct timespec ts[2];
	mode_t mode = cairn_mode_to_posix(m->mode) & 07777;
	int failures = 0, rc = 0;

	if (have && have->uid == m->uid && have->gid == m->gid)
		; /* already so (and a chown that changes nothing need not clear setuid: none is set yet) */
	else if (fd >= 0)
		rc = fchown(fd, m->uid, m->gid);
	else
		rc = fchownat(dirfd, name, m->uid, m->gid, AT_SYMLINK_NOFOLLOW);
	if (rc < 0 && (c->is_root || (errno != EPERM && errno != EINVAL))) {
		rs_report_errno(c, path, "cannot change owner of", errno);
		failures++;
	}
	for (size_t i = 0; i < m->n_xattrs; i++) {
		const cairn_xattr *x = &m->xattrs[i];
		if (fd >= 0) {
			rc = fsetxattr(fd, x->name, x->value ? (const void *)x->value : "", x->value_len, 0);
		} else {
			/* No fd for symlinks, fifos and devices: go through the dir
			 * fd's /proc entry, still without following `name`. */
			char proc[64];
			cairn_buf p = CAIRN_BUF_INIT;
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d/", dirfd);
			if (cairn_buf_puts(&p, proc) < 0 || cairn_buf_puts(&p, name) < 0 || !cairn_buf_cstr(&p)) {
				errno = ENOMEM;
				rc = -1;
			} else {
				rc = lsetxattr((const char *)p.data, x->name,
					x->value ? (const void *)x->value : "", x->value_len, 0);
			}
			cairn_buf_release(&p);
		}
		if (rc < 0) {
			int err = errno;
			rs_report(c, path, "cannot set extended attribute '%s' on '%.*s%s': %s", x->name,
				c->target_len, c->target, path, strerror(err));
			failures++;
		}
	}
	if (type != CAIRN_NODE_SYMLINK && !(have && have->mode == mode)) {
		rc = fd >= 0 ? fchmod(fd, mode) : fchmodat(dirfd, name, mode, 0);
		if (rc < 0) {
			rs_report_errno(c, path, "cannot change mode of", errno);
			failures++;
		}
	}
	ts[0].tv_sec = (time_t)m->atime.sec;
	ts[0].tv_nsec = m->atime.nsec;
	ts[1].tv_sec = (time_t)m->mtime.sec;
	ts[1].tv_nsec = m->mtime.nsec;
	rc = fd >= 0 ? futimens(fd, ts) : utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
	if (rc < 0) {
		rs_report_errno(c, path, "cannot set times of", errno);
		failures++;
	}
	return failures;
}

int rs_clear_entry(rs_ctx *c, int dirfd, const char *name, const char *path)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		rs_report_errno(c, path, "cannot stat", errno);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		rs_report(c, path, "'%.*s%s' exists and is a directory", c->target_len, c->target, path);
		return -1;
	}
	if (unlinkat(dirfd, name, 0) < 0) {
		rs_report_errno(c, path, "cannot replace", errno);
		return -1;
	}
	return 0;
}

/* ---- writing ---- */

int rs_pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off)
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

#define RS_PAGE 4096

int rs_pwrite_sparse(size_t *written_out, int *tail_out, int fd, const unsigned char *p,
	size_t len, uint64_t off)
{
	size_t i = 0, run = 0, written = 0;

	*tail_out = 0;
	while (i < len) {
		size_t e = i + (RS_PAGE - (size_t)((off + i) % RS_PAGE));
		if (e > len)
			e = len;
		/* Only whole pages become holes; the first word decides most. */
		if (e - i == RS_PAGE && p[i] == 0 && rs_all_zero(p + i, RS_PAGE)) {
			if (i > run) {
				if (rs_pwrite_all(fd, p + run, i - run, off + run) < 0)
					return -1;
				written += i - run;
			}
			run = e;
		}
		i = e;
	}
	if (len > run) {
		if (rs_pwrite_all(fd, p + run, len - run, off + run) < 0)
			return -1;
		written += len - run;
		*tail_out = 1;
	}
	*written_out = written;
	return 0;
}

int rs_all_zero(const unsigned char *p, size_t len)
{
	size_t i = 0;
	for (; i < len && ((uintptr_t)(p + i) & 7); i++)
		if (p[i])
			return 0;
	for (; i + 32 <= len; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, 32);
		if (w[0] | w[1] | w[2] | w[3])
			return 0;
	}
	for (; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}
