/* source.h: what the archiver backs up, as an interface.
 *
 * The archiver never calls the file system itself.  It asks a source for
 * directory listings and for readers of file contents; a file-system walk
 * (source_fs.c) implements this, and so do generated in-memory files
 * (source_mem.c).  An etcd snapshot stream or a volume-plus-manifests
 * composite are further implementations of the same three operations.
 *
 * Model: a source is a tree.  list(NULL) gives the top-level entries of the
 * snapshot (the root tree); list(dir) gives the entries of a directory entry
 * that an earlier listing returned.  Every listing is sorted by name in byte
 * order (strcmp) with no duplicate names, and each entry carries complete
 * node metadata (cairn_node: name, type, mode, times, owner, inode, links,
 * size, link target, xattrs, device number); content and subtree are left
 * empty for the archiver to fill.  open(file) gives a reader of a file
 * entry's bytes; the archiver stores exactly the bytes the reader yields.
 *
 * Errors: a listing or a reader that fails outright returns a negative
 * cairn_error with the reason in the error record; the archiver then skips
 * that entry.  Problems inside a listing that do not stop it (an entry that
 * vanished, an unreadable xattr) are reported through the source's report
 * callback and the entry is left out (error) or kept (warning).  An error
 * means the snapshot is incomplete (exit code 3).
 *
 * Ownership and threads: list(), open() and the reader operations are
 * called from the archiver's threads, several directories and files at
 * once, so an implementation's list() and open() must be thread-safe (a
 * reader itself is used by one thread at a time; each directory is listed
 * once).
 * Entries returned by list() belong to the caller (source_entries_free).  A
 * reader belongs to the caller until source_reader_close().
 */
#ifndef CAIRN_AGENT_SOURCE_H
#define CAIRN_AGENT_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cairn/cairn.h>

typedef struct source source;
typedef struct source_reader source_reader;

/* One entry of a listing. */
typedef struct source_entry {
	cairn_node node;  /* metadata; content empty, has_subtree 0 */
	char *path;       /* owned: the entry's path in the source's own namespace (for a
	                   * file-system walk the real path); names it in messages */
	uint64_t priv;    /* for the source's own use (the walk keeps the device it may
	                   * descend into); the archiver only carries it along */
} source_entry;

/* Report a problem with one entry.  is_error: 1 = the entry (or part of it)
 * is missing from the snapshot, 0 = a warning only.  `path` and `message`
 * are borrowed for the call. */
typedef void (*source_report_fn)(int is_error, const char *path, const char *message,
	void *payload);

typedef struct source_ops {
	const char *name;
	/* List a directory entry (dir == NULL: the root).  *out gets an array of
	 * *n_out entries sorted by name, no duplicates (NULL/0 when empty); the
	 * caller frees it with source_entries_free.  Entries that cannot be read
	 * are reported and left out.  Negative cairn_error (reason in the error
	 * record) when the directory cannot be listed at all. */
	int (*list)(source *s, const source_entry *dir, source_entry **out, size_t *n_out);
	/* Open a file entry for reading.  *out belongs to the caller until
	 * source_reader_close.  Negative cairn_error when it cannot be opened. */
	int (*open)(source *s, const source_entry *file, source_reader **out);
	void (*free)(source *s);
} source_ops;

/* The base of every source; implementations embed it as their first member. */
struct source {
	const source_ops *ops;
	source_report_fn report;  /* may be NULL */
	void *report_payload;
};

typedef struct source_reader_ops {
	/* Up to len bytes into buf: the count, 0 at the end, negative cairn_error
	 * (reason in the error record). */
	ssize_t (*read)(source_reader *r, void *buf, size_t len);
	/* Finish (a file that changed while it was read is reported as a warning
	 * here) and free the reader. */
	void (*close)(source_reader *r);
} source_reader_ops;

/* The base of every reader; implementations embed it as their first member. */
struct source_reader {
	const source_reader_ops *ops;
};

static inline int source_list(source *s, const source_entry *dir, source_entry **out,
	size_t *n_out)
{
	return s->ops->list(s, dir, out, n_out);
}
static inline int source_open(source *s, const source_entry *file, source_reader **out)
{
	return s->ops->open(s, file, out);
}
static inline ssize_t source_read(source_reader *r, void *buf, size_t len)
{
	return r->ops->read(r, buf, len);
}
/* NULL is a no-op. */
static inline void source_reader_close(source_reader *r)
{
	if (r)
		r->ops->close(r);
}
/* NULL is a no-op. */
static inline void source_free(source *s)
{
	if (s)
		s->ops->free(s);
}

/* Release an entry's node and path (the struct itself is not freed). */
void source_entry_release(source_entry *e);
/* Release and free an array from list(); NULL is a no-op. */
void source_entries_free(source_entry *entries, size_t n);
/* Sort a listing by name (strcmp); CAIRN_EINVAL naming the duplicate when
 * two entries share a name. */
int source_entries_sort(source_entry *entries, size_t n);
/* Call the source's report callback with a printf-formatted message. */
void source_report(source *s, int is_error, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- the file-system walk (source_fs.c) --- */

typedef struct source_fs_options {
	const char *const *targets;  /* paths as the user gave them */
	size_t n_targets;
	const char *const *excludes; /* fnmatch patterns, see source_fs.c */
	size_t n_excludes;
	int one_file_system;         /* do not descend into directories on another device */
	int with_atime;              /* store real access times (default: atime = mtime, as restic) */
	source_report_fn report;     /* also installed as the source's report callback */
	void *report_payload;
} source_fs_options;

/* A walk over the targets, laid out in the snapshot as restic 0.14 does:
 * absolute targets under their full path, relative ones under their cleaned
 * path without leading "..", "/" and "." at the root (see source_fs.c).
 * Targets that do not exist are reported as warnings and skipped;
 * CAIRN_ENOTFOUND when none exists.  Caller frees *out with source_free. */
int source_fs_new(source **out, const source_fs_options *opts);

/* The absolute, lexically normalised paths of the targets that exist, in
 * argument order (duplicates removed): the snapshot's "paths".  Borrowed
 * from the source. */
const char *const *source_fs_paths(source *s, size_t *n_out);

/* Absolute, lexically normalised form of `path` (relative to the current
 * directory; "." and ".." resolved by text, symlinks are not followed), as
 * restic records backup paths.  Caller frees *out. */
int source_fs_abspath(char **out, const char *path);

/* --- generated files from memory (source_mem.c) --- */

/* A tree built in memory, e.g. Kubernetes manifests rendered by the agent.
 * Paths are relative, '/'-separated ("k8s/pod.json"); parent directories are
 * created implicitly with mode 0755 and the source's time. */
int source_mem_new(source **out, cairn_time time);
/* Add a regular file with a copy of `data` (mode: POSIX permission bits). */
int source_mem_add_file(source *s, const char *path, const void *data, size_t len,
	mode_t mode);
/* Add an empty directory (or set the mode of an implicit one). */
int source_mem_add_dir(source *s, const char *path, mode_t mode);

#endif
