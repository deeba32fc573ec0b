/* restore_plan.h: one batch of a restore, as the walk plans it and the
 * workers carry it out: the directories and files created so far, every
 * content blob they need (where it is: pack, offset, length) and every
 * place it goes (file, offset), grouped by pack and sorted by offset once
 * the batch is complete (rp_finalize).  Also reopening a planned
 * directory or file safely from a worker thread (rp_fdcache).
 *
 * Ownership: the plan owns everything in it; strings live in one arena and
 * are referred to by offset, so growing the plan never moves what a worker
 * reads.  The walk (one thread) builds the plan; after rp_finalize workers
 * only read it, except rp_file.remaining/failed (atomics) and rp_file.state
 * (written once, by the thread that finishes the file).
 *
 * Memory per batch (rp_bytes counts it): about 150 bytes per file plus its
 * name, 16 bytes per content-blob use, 56 bytes per distinct blob, 48 per
 * pack, 40 per directory plus its path.  A million one-blob files is about
 * 250 MB (350 MB with the arrays' growth slack), so the restorer cuts the
 * walk into batches at a byte limit.
 */
#ifndef CAIRN_AGENT_RESTORE_PLAN_H
#define CAIRN_AGENT_RESTORE_PLAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cairn/cairn.h>

#include "restore_fs.h"

#define RP_NONE UINT32_MAX

enum { RP_FILE_PENDING = 0, RP_FILE_DONE = 1, RP_FILE_FAILED = 2 };

typedef struct rp_dir {
	uint32_t parent;   /* RP_NONE for the target itself (dir 0) */
	uint32_t path;     /* arena offset: snapshot path, "" for the target */
	uint32_t name;     /* arena offset of the last component */
	int fd;            /* borrowed fd while the walk holds it open, else -1 */
	uint64_t dev, ino; /* identity, checked when the dir is reopened */
} rp_dir;

typedef struct rp_file {
	rs_meta meta;
	uint64_t size;
	uint64_t dev, ino;          /* of the file its creator made (O_EXCL), when created == 1 */
	uint32_t dir, name;         /* dir index, arena offset of the name */
	int state;                  /* RP_FILE_*: set by the thread that finishes it */
	atomic_int created;         /* 0 not yet, 1 created, -1 could not be (reported) */
	rs_have have;               /* owner and mode it was created with (when created == 1) */
	atomic_int tail_written;    /* its last byte was written: no ftruncate needed */
	atomic_uint remaining;      /* uses (verify: units) not yet handled; 0 = complete */
	uint32_t first_use, n_uses; /* its uses, contiguous in walk order until rp_finalize */
	atomic_int failed;          /* the first thread to set it reports */
} rp_file;

typedef struct rp_blob {
	cairn_id id;
	uint32_t pack;              /* index in packs */
	uint32_t offset, length;    /* stored, in the pack */
	uint32_t ulen;              /* plaintext length when compressed, else 0 */
	uint32_t use_start, n_uses; /* in uses, after rp_finalize */
} rp_blob;

typedef struct rp_use {
	uint32_t blob, file;
	uint64_t off;               /* in the file */
} rp_use;

typedef struct rp_pack {
	cairn_id id;
	uint32_t first, n;          /* blob_order[first..first+n): its blobs by offset */
	uint64_t need;              /* stored bytes of the blobs needed */
} rp_pack;

/* A hard-link member whose first member is still being written. */
typedef struct rp_link {
	uint32_t dir, name;
	uint32_t first;             /* file index of the first member */
	uint64_t size;
} rp_link;

/* A directory left by the walk: metadata once everything below is done. */
typedef struct rp_dirmeta {
	uint32_t dir;
	rs_meta meta;
} rp_dirmeta;

typedef struct rp_plan {
	cairn_buf strings;
	rp_dir *dirs;          size_t n_dirs, cap_dirs;
	rp_file *files;        size_t n_files, cap_files;
	rp_blob *blobs;        size_t n_blobs, cap_blobs;
	uint32_t *blob_map;    size_t blob_map_cap;   /* blob index + 1; 0 = empty */
	rp_pack *packs;        size_t n_packs, cap_packs;
	uint32_t *pack_map;    size_t pack_map_cap;
	rp_use *uses;          size_t n_uses, cap_uses;
	uint32_t *blob_order;  /* rp_finalize: blob indices by (pack, offset) */
	rp_link *links;        size_t n_links, cap_links;
	rp_dirmeta *dirmeta;   size_t n_dirmeta, cap_dirmeta;
	size_t xattr_bytes;
} rp_plan;

/* An empty plan. */
void rp_init(rp_plan *p);
/* Free everything; the plan is empty (as after rp_init) afterwards. */
void rp_release(rp_plan *p);
/* Empty it for the next batch (memory is freed, not kept: a batch can be big). */
void rp_reset(rp_plan *p);

/* Approximate heap bytes the plan holds. */
size_t rp_bytes(const rp_plan *p);

/* Add a directory; fd is borrowed (-1 when not open).  *idx_out gets its index. */
int rp_add_dir(uint32_t *idx_out, rp_plan *p, uint32_t parent, const char *path, int fd,
	uint64_t dev, uint64_t ino);
/* Add a file to be created by the first worker that handles one of its
 * blobs; *meta is moved into the plan. */
int rp_add_file(uint32_t *idx_out, rp_plan *p, uint32_t dir, const char *name, uint64_t size,
	rs_meta *meta);
/* The blob's index, adding it (and its pack) when new. */
int rp_add_blob(uint32_t *idx_out, rp_plan *p, const cairn_id *id, const cairn_blob_location *loc);
/* Blob `blob` goes to file `file` at `off`. */
int rp_add_use(rp_plan *p, uint32_t blob, uint32_t file, uint64_t off);
int rp_add_link(rp_plan *p, uint32_t dir, const char *name, uint32_t first, uint64_t size);
/* *meta is moved into the plan. */
int rp_add_dirmeta(rp_plan *p, uint32_t dir, rs_meta *meta);

/* Group uses by blob and blobs by pack, sorted by offset. */
int rp_finalize(rp_plan *p);

/* Borrowed strings of the arena (valid until the plan grows or resets). */
static inline const char *rp_str(const rp_plan *p, uint32_t off)
{
	return (const char *)p->strings.data + off;
}
/* The snapshot path of a file ("/src/x") into out (replaced, NUL-terminated). */
int rp_file_path(cairn_buf *out, const rp_plan *p, uint32_t file);
int rp_dir_child_path(cairn_buf *out, const rp_plan *p, uint32_t dir, const char *name);

/* A small per-thread cache of reopened dir and file descriptors.  Owned by
 * one thread; rp_fdcache_release closes what it holds. */
#define RP_CACHE_DIRS 16
#define RP_CACHE_FILES 16
typedef struct rp_fdslot {
	uint32_t key;     /* RP_NONE = empty */
	int fd;
	uint64_t tick;
} rp_fdslot;
typedef struct rp_fdcache {
	rp_fdslot dirs[RP_CACHE_DIRS], files[RP_CACHE_FILES];
	uint64_t tick;
} rp_fdcache;

void rp_fdcache_init(rp_fdcache *c);
void rp_fdcache_release(rp_fdcache *c);
/* Close and forget a file's fd; returns close()'s result (0 when none was open). */
int rp_fdcache_close_file(rp_fdcache *c, uint32_t file);

/* An fd for dir `dir` (borrowed from the cache or the walk; do not close):
 * reopened component by component from the nearest open ancestor with
 * O_DIRECTORY | O_NOFOLLOW, its identity checked against what the walk
 * recorded.  -1 with errno set; errno ESTALE means "replaced since". */
int rp_open_dir(rp_fdcache *c, const rp_plan *p, uint32_t dir);
/* An O_RDONLY fd for a file of the plan (for --verify: the file need not
 * be one this process created, but must be a regular file reached without
 * following a symlink).  Borrowed from the cache. */
int rp_open_file_ro(rp_fdcache *c, const rp_plan *p, uint32_t file);
/* An O_WRONLY fd for a planned file that has been created, same rules
 * (the file must still be the inode its creator made).  Borrowed from the
 * cache. */
int rp_open_file(rp_fdcache *c, const rp_plan *p, uint32_t file);
/* Create planned file `file` in its dir: whatever is in the way is removed
 * (rs_clear_entry), then O_CREAT | O_EXCL | O_NOFOLLOW; its identity is
 * recorded and the fd kept in the cache.  The caller makes sure only one
 * thread creates a given file.  Returns the fd (borrowed) or -1 with errno;
 * *reported is set when the failure was already reported. */
int rp_create_file(rp_fdcache *c, rs_ctx *ctx, rp_plan *p, uint32_t file, const char *path,
	int *reported);

#endif
