/* buf.c: growable byte buffers with a hard cap (include/cairn/buf.h).
 *
 * Capacity grows geometrically; every size computation is checked for
 * overflow and against CAIRN_BUF_MAX, so a hostile length field read from a
 * repository file fails with CAIRN_ENOMEM instead of exhausting memory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <cairn/buf.h>

int cairn_buf_reserve(cairn_buf *b, size_t extra)
{
	size_t need, cap;
	unsigned char *p;

	if (extra > CAIRN_BUF_MAX || b->len > CAIRN_BUF_MAX - extra)
		return cairn_error_set(CAIRN_ENOMEM, "buffer would exceed %zu bytes", (size_t)CAIRN_BUF_MAX);
	need = b->len + extra + 1; /* room for a terminating NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > CAIRN_BUF_MAX / 2 ? CAIRN_BUF_MAX + 1 : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate %zu bytes", cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int cairn_buf_append(cairn_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	CAIRN_TRY(cairn_buf_reserve(b, len));
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int cairn_buf_puts(cairn_buf *b, const char *s)
{
	return cairn_buf_append(b, s, strlen(s));
}

int cairn_buf_printf(cairn_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return cairn_error_set(CAIRN_EINVAL, "bad format string");
	CAIRN_TRY(cairn_buf_reserve(b, (size_t)n));
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *cairn_buf_cstr(cairn_buf *b)
{
	if (cairn_buf_reserve(b, 0) < 0)
		return NULL;
	b->data[b->len] = '\0';
	return (char *)b->data;
}

void cairn_buf_release(cairn_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void cairn_buf_wipe(cairn_buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->cap);
	cairn_buf_release(b);
}

unsigned char *cairn_buf_detach(cairn_buf *b, size_t *len_out)
{
	unsigned char *p = b->data;
	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
