/* backend.h: where repository files live (local folder now; S3 and REST next).
 *
 * A backend stores whole, immutable, named objects of six kinds.  It knows the
 * layout (data/<xx>/<id>, index/<id>, ...), nothing of encryption or JSON.
 * Implementations embed `struct cairn_backend` as their first member and point
 * `ops` at a const table; see include/cairn/sys/backend.h for implementers.
 *
 * Error contract: a missing object is CAIRN_ENOTFOUND, a retryable failure
 * CAIRN_ETRANSIENT, a full disk CAIRN_ENOSPC; anything else is permanent.
 * Thread-safety: every operation may be called from several threads at once.
 */
#ifndef CAIRN_BACKEND_H
#define CAIRN_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"
#include "id.h"

typedef enum cairn_file_type {
	CAIRN_FILE_CONFIG = 0,   /* "config", name ignored */
	CAIRN_FILE_KEY = 1,      /* keys/<id> */
	CAIRN_FILE_LOCK = 2,     /* locks/<id> */
	CAIRN_FILE_SNAPSHOT = 3, /* snapshots/<id> */
	CAIRN_FILE_INDEX = 4,    /* index/<id> */
	CAIRN_FILE_PACK = 5      /* data/<id[0:2]>/<id> */
} cairn_file_type;

typedef struct cairn_handle {
	cairn_file_type type;
	char name[65]; /* lowercase hex id; "" for the config */
} cairn_handle;

typedef struct cairn_backend cairn_backend;

/* Called once per object by list(); return non-zero to stop (that value is
 * returned by list).  `name` is borrowed for the call only. */
typedef int (*cairn_backend_list_cb)(const char *name, uint64_t size, void *payload);

/* Open a backend from a location string: "PATH" or "local:PATH" for a folder.
 * (s3: and rest: come with their backends.)  The caller frees with
 * cairn_backend_free().  Does not touch the storage beyond checking it exists
 * when `must_exist` is set. */
CAIRN_API int cairn_backend_open(cairn_backend **out, const char *location, int must_exist);

/* What a program may tell the backends beyond the location (the CLI's
 * -o key=value, --cacert, ...).  Everything is borrowed for the duration of
 * cairn_backend_open_ex only. */
typedef struct cairn_backend_options {
	/* "namespace.key=value" strings, e.g. "s3.connections=8".  A backend
	 * reads its own namespace ("s3.", "rest.") and refuses unknown keys in
	 * it; other namespaces are ignored (restic's -o).  The last of repeated
	 * keys wins. */
	const char *const *extended;
	size_t n_extended;
	const char *cacert;              /* PEM file of CAs to trust instead of the system's */
	int insecure_tls;                /* do not verify TLS certificates (only when asked) */
	const char *s3_credentials_file; /* AWS shared credentials file for s3: */
} cairn_backend_options;

/* cairn_backend_open with options (NULL: none).  A malformed extended
 * option ("x", "=v", "nonamespace=v") is CAIRN_EINVAL. */
CAIRN_API int cairn_backend_open_ex(cairn_backend **out, const char *location, int must_exist,
	const cairn_backend_options *opts);

/* Create the layout (directories) for a new repository.  CAIRN_EEXISTS if a
 * config is already there. */
CAIRN_API int cairn_backend_create(cairn_backend *be);

/* Store an object atomically: after success it is complete and durable
 * (temp + fsync + rename + dir fsync for local); after failure it does not
 * exist.  Saving an existing pack/index/snapshot/key name is not an error
 * (content-addressed: same name, same bytes). */
CAIRN_API int cairn_backend_save(cairn_backend *be, const cairn_handle *h,
	const void *data, size_t len);

/* Spooling large objects (packs) through a file instead of memory.
 *
 * cairn_backend_spool_open: a new anonymous temp file, opened read-write and
 * already unlinked (O_TMPFILE where the filesystem has it), so a crash never
 * leaves it behind.  It lies on the backend's own filesystem when the backend
 * has one (local: inside the repository, so that save_fd can link it into
 * place without copying), else in $TMPDIR (default /tmp).  The caller writes
 * the object into it and owns the descriptor (closes it, also after
 * save_fd).
 *
 * cairn_backend_save_fd: store bytes [0, len) of `fd` as object h, with the
 * same guarantees as cairn_backend_save (complete and durable after success,
 * absent after failure; an existing content-addressed name is not an error).
 * The bytes are read with pread (the file offset is neither used nor moved),
 * so a retry re-reads them from the start.  `sha256`, if not NULL, is the
 * SHA-256 of those bytes, for backends that sign the payload.  `fd` may be
 * any regular file, not only one from spool_open.  Memory use does not grow
 * with len.  After a successful save_fd of a spool file the descriptor may
 * be the stored object itself (local: the file is linked into place), so
 * the caller must only close it, never write to or truncate it. */
CAIRN_API int cairn_backend_spool_open(int *fd_out, cairn_backend *be);
CAIRN_API int cairn_backend_save_fd(cairn_backend *be, const cairn_handle *h, int fd,
	uint64_t len, const cairn_id *sha256);

/* Useful number of parallel uploads/downloads (local: 2, s3: -o
 * s3.connections, rest: -o rest.connections); at least 1. */
CAIRN_API int cairn_backend_max_connections(const cairn_backend *be);

/* Read `length` bytes at `offset` into out (replacing its contents);
 * length 0 means to the end.  A short object is CAIRN_ECORRUPT ("truncated"). */
CAIRN_API int cairn_backend_load(cairn_buf *out, cairn_backend *be, const cairn_handle *h,
	uint64_t offset, size_t length);

/* Size of an object. */
CAIRN_API int cairn_backend_stat(uint64_t *size_out, cairn_backend *be, const cairn_handle *h);

/* Call cb for every object of a type whose name is a 64-char hex id (others
 * are skipped).  Order is unspecified. */
CAIRN_API int cairn_backend_list(cairn_backend *be, cairn_file_type type,
	cairn_backend_list_cb cb, void *payload);

CAIRN_API int cairn_backend_remove(cairn_backend *be, const cairn_handle *h);

/* A location string without secrets (user:password@ removed), for messages.
 * Borrowed; valid until the backend is freed. */
CAIRN_API const char *cairn_backend_location(const cairn_backend *be);

/* Retries of the network backends (s3:, rest:), which cairn_backend_open
 * wraps in a retry layer: a transient failure (connection refused or reset,
 * timeout, HTTP 5xx, 429) is retried with exponential backoff for at most
 * `timeout_seconds` per operation (default CAIRN_RETRY_DEFAULT_TIMEOUT; 0
 * disables retries); `canceled` (may be NULL) is polled during the pauses
 * and stops retrying when it returns non-zero.  Process configuration: call
 * it before opening backends, from one thread. */
#define CAIRN_RETRY_DEFAULT_TIMEOUT 600.0
CAIRN_API void cairn_backend_set_retry(double timeout_seconds, int (*canceled)(void));

/* Free the backend; NULL is a no-op. */
CAIRN_API void cairn_backend_free(cairn_backend *be);

/* Fill a handle; name may be NULL for the config. */
CAIRN_API void cairn_handle_set(cairn_handle *h, cairn_file_type type, const char *name);
/* "pack", "index", ... for messages */
CAIRN_API const char *cairn_file_type_name(cairn_file_type type);

#endif
