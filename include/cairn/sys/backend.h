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
} cairn_backend_ops;

struct cairn_backend {
	const cairn_backend_ops *ops;
	char *location;      /* secret-free display form, owned (freed by cairn_backend_free) */
	int max_connections; /* useful parallelism */
};

/* Local folder backend. */
int cairn_backend_local_open(cairn_backend **out, const char *path, int must_exist);

/* Relative path of an object in the default layout, e.g. "data/ab/ab12..".
 * Writes at most `size` bytes including NUL. */
void cairn_layout_path(char *out, size_t size, const cairn_handle *h);
/* Directory for a file type ("data", "index", ...; "" for config). */
const char *cairn_layout_dir(cairn_file_type type);

#endif
