/* restore_fs.h: what the restorer's walk and its worker threads share on the
 * target side: the error report (one mutex for stderr, the error counters
 * and the set of failed paths), a node's metadata in the compact form the
 * plan keeps, setting that metadata on a created entry, and the safe
 * replacement of whatever is in the way of a new entry.
 *
 * Thread-safety: every function here may be called from any thread; those
 * that touch shared state take ctx->mu.  Paths in messages are snapshot
 * paths ("/src/x"); the on-disk path is the target followed by it.
 */
#ifndef CAIRN_AGENT_RESTORE_FS_H
#define CAIRN_AGENT_RESTORE_FS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cairn/cairn.h>

#include "cli.h"
#include "restorer.h"

/* A set of strings (owned copies), for the paths that failed. */
typedef struct rs_strset {
	char **slots; /* NULL = empty */
	size_t cap, n;
} rs_strset;

/* Shared by the walk and the workers of one restore. */
typedef struct rs_ctx {
	const char *target;  /* the user's --target, borrowed */
	int target_len;      /* without a trailing '/', for "%.*s%s" with a snapshot path */
	const cli_globals *g;
	restorer_stats *st;  /* errors/verify_errors under mu; the rest with rs_add() */
	int is_root;         /* euid 0: ownership errors are reported */
	int phase_verify;    /* messages say "verify failed for" and count as verify errors */
	pthread_mutex_t mu;
	rs_strset failed;    /* under mu */
} rs_ctx;

/* The metadata a restored entry gets once its content is complete. */
typedef struct rs_meta {
	uint32_t mode;        /* Go FileMode of the node */
	uint32_t uid, gid;
	cairn_time atime, mtime;
	cairn_xattr *xattrs;  /* owned deep copy (rs_meta_from_node), NULL when none */
	size_t n_xattrs;
} rs_meta;

int rs_ctx_init(rs_ctx *c, const char *target, const cli_globals *g, restorer_stats *st);
void rs_ctx_release(rs_ctx *c);

/* Add to a stats counter from any thread. */
static inline void rs_add(uint64_t *counter, uint64_t v)
{
	__atomic_fetch_add(counter, v, __ATOMIC_RELAXED);
}

/* "cairn: cannot restore '/path': <what>" (or "verify failed for"), counted
 * as one error.  Takes ctx->mu. */
void rs_report(rs_ctx *c, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "<what> '<target>/path': <strerror(err)>". */
void rs_report_errno(rs_ctx *c, const char *path, const char *what, int err);
/* Remember a path that could not be restored (so --verify skips it). */
void rs_mark_failed(rs_ctx *c, const char *path);
/* 1 if the path was marked failed. */
int rs_has_failed(rs_ctx *c, const char *path);
/* Progress line from the main thread: holds mu so it never interleaves with
 * a worker's message. */
void rs_progress(rs_ctx *c);

/* Copy what rs_metadata needs from a node (xattrs deep-copied). */
int rs_meta_from_node(rs_meta *out, const cairn_node *n);
void rs_meta_release(rs_meta *m);

/* What a file is known to have (from the fstat after creating it), so
 * that rs_metadata can skip a chown or chmod that would change nothing. */
typedef struct rs_have {
	uint32_t uid, gid, mode; /* mode: permission bits (07777) */
} rs_have;

/* Owner, xattrs, mode, times, in that order (chown clears setuid, so the
 * mode comes after it; user xattrs need write permission, so before it).
 * Uses fd when >= 0, else (dirfd, name) without following a symlink.
 * `type` is the node type (a symlink gets no mode).  `have` (may be NULL)
 * is what the entry has now.  Each failure is reported; returns the number
 * of failures. */
int rs_metadata(rs_ctx *c, int fd, int dirfd, const char *name, const char *path,
	cairn_node_type type, const rs_meta *m, const rs_have *have);

/* Make room for a non-directory entry `name` in dirfd: nothing there, or a
 * non-directory that is removed (a symlink is removed, not followed).  A
 * directory in the way is an error.  0, or -1 (reported). */
int rs_clear_entry(rs_ctx *c, int dirfd, const char *name, const char *path);

/* pwrite everything, retrying on EINTR and short writes.  0 or -1 (errno). */
int rs_pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off);

/* pwrite len bytes at file offset off of a file this restore created,
 * leaving out every whole file-system page (4 KiB, aligned in the file)
 * that is all zeros, so it stays a hole (reads as zeros).  *written_out
 * gets the bytes written; *tail_out is 1 when the last byte was written
 * (else the caller sets the size).  0 or -1 (errno). */
int rs_pwrite_sparse(size_t *written_out, int *tail_out, int fd, const unsigned char *p,
	size_t len, uint64_t off);

/* 1 if len bytes at p are all zero. */
int rs_all_zero(const unsigned char *p, size_t len);

#endif
