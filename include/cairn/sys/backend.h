/* sys/backend.h: for backend implementers (local, s3, rest, wrappers). */
#ifndef CAIRN_SYS_BACKEND_H
#define CAIRN_SYS_BACKEND_H

#include "../backend.h"

typedef struct cairn_backend_ops {
	int version; /* 1 */
	const char *name;
	int (*create)(cairn_backend *be);
	int (*save)(cairn_backend *be, const cairn_handle *h, const void *data, size_t len);
	int (*load)(cairn_buf *out, cairn_backend *be, const cairn_handle *h, uint64_t offset, size_t length);
	int (*stat)(uint64_t *size_out, cairn_backend *be, const cairn_handle *h);
	int (*list)(cairn_backend *be, cairn_file_type type, cairn_backend_list_cb cb, void *payload);
	int (*remove)(cairn_backend *be, const cairn_handle *h);
	void (*free)(cairn_backend *be);
	/* Optional (NULL: backend.c's generic versions, a temp file in $TMPDIR
	 * and a save that reads the file into memory).  See backend.h. */
	int (*spool_open)(int *fd_out, cairn_backend *be);
	int (*save_fd)(cairn_backend *be, const cairn_handle *h, int fd, uint64_t len,
		const cairn_id *sha256);
} cairn_backend_ops;

struct cairn_backend {
	const cairn_backend_ops *ops;
	char *location;      /* secret-free display form, owned (freed by cairn_backend_free) */
	int max_connections; /* useful parallelism */
};

/* The generic spool_open: an unlinked temp file in $TMPDIR (or /tmp). */
int cairn_backend_spool_generic(int *fd_out);

/* Local folder backend. */
int cairn_backend_local_open(cairn_backend **out, const char *path, int must_exist);

/* Retry wrapper (retry.c): a backend that repeats the CAIRN_ETRANSIENT
 * failures of `inner` with exponential backoff and jitter.  Takes ownership
 * of `inner` (freed with the wrapper, or at once if this fails).  policy
 * NULL means the process defaults (cairn_backend_set_retry). */
typedef struct cairn_retry_policy {
	double timeout;        /* seconds one operation may spend retrying; 0 = never retry */
	double initial;        /* first pause, seconds (default 0.5) */
	double max_delay;      /* longest single pause, seconds (default 30) */
	int (*canceled)(void); /* optional; non-zero stops retrying at once */
} cairn_retry_policy;
int cairn_backend_retry_open(cairn_backend **out, cairn_backend *inner,
	const cairn_retry_policy *policy);
/* The process defaults as a policy (what cairn_backend_open uses). */
void cairn_retry_default_policy(cairn_retry_policy *out);

/* S3 backend (s3.c).  `spec` is the location after "s3:" (see s3.c for
 * the forms); opts may be NULL. */
int cairn_backend_s3_open(cairn_backend **out, const char *spec, int must_exist,
	const cairn_backend_options *opts);

/* Extended options (options.c).  The value of `key` ("s3.connections"):
 * the last "-o key=value" wins; NULL when absent or opts is NULL. */
const char *cairn_backend_option(const cairn_backend_options *opts, const char *key);
/* CAIRN_EINVAL naming the first option of namespace `ns` ("s3") whose key
 * is not in the NULL-terminated `known` list ({ "s3.connections", ... }),
 * or a malformed option; 0 otherwise. */
int cairn_backend_options_check(const cairn_backend_options *opts, const char *ns,
	const char *const *known);
/* Parse an option value: a count in [min, max], or a size in bytes with an
 * optional K/M/G (KiB, MiB, GiB) suffix in [min, max].  CAIRN_EINVAL names
 * the key. */
int cairn_backend_option_long(long *out, const char *key, const char *value, long min, long max);
int cairn_backend_option_size(uint64_t *out, const char *key, const char *value, uint64_t min,
	uint64_t max);

/* Relative path of an object in the default layout, e.g. "data/ab/ab12..".
 * Writes at most `size` bytes including NUL. */
void cairn_layout_path(char *out, size_t size, const cairn_handle *h);
/* Directory for a file type ("data", "index", ...; "" for config). */
const char *cairn_layout_dir(cairn_file_type type);

#endif
