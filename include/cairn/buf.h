/* buf.h: a growable byte buffer with a hard size cap.
 *
 * Transparent value type; embed it or put it on the stack with CAIRN_BUF_INIT
 * and free its memory with cairn_buf_release().  All growth is checked for
 * overflow and against CAIRN_BUF_MAX so hostile inputs cannot balloon memory.
 */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include "error.h"

#define CAIRN_BUF_MAX ((size_t)1 << 31) /* 2 GiB: larger than any legal object */

typedef struct cairn_buf {
	unsigned char *data;
	size_t len;
	size_t cap;
} cairn_buf;

#define CAIRN_BUF_INIT { NULL, 0, 0 }

/* Make room for `extra` more bytes after len.  CAIRN_ENOMEM on failure. */
CAIRN_API int cairn_buf_reserve(cairn_buf *b, size_t extra);
/* Append bytes. */
CAIRN_API int cairn_buf_append(cairn_buf *b, const void *data, size_t len);
/* Append a NUL-terminated string (without the NUL). */
CAIRN_API int cairn_buf_puts(cairn_buf *b, const char *s);
/* printf-append. */
CAIRN_API int cairn_buf_printf(cairn_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Ensure data[len] == 0 (not counted in len); returns data as char*. NULL on ENOMEM. */
CAIRN_API char *cairn_buf_cstr(cairn_buf *b);
/* Set len to 0, keep memory. */
static inline void cairn_buf_clear(cairn_buf *b) { b->len = 0; }
/* Free memory; the buffer is CAIRN_BUF_INIT afterwards. */
CAIRN_API void cairn_buf_release(cairn_buf *b);
/* Overwrite the contents with zeros, then release (for secrets). */
CAIRN_API void cairn_buf_wipe(cairn_buf *b);
/* Take ownership of the data (caller frees with free()); buffer is reset. */
CAIRN_API unsigned char *cairn_buf_detach(cairn_buf *b, size_t *len_out);

#endif
