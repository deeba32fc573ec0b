/* gojson.c: JSON strings and UTF-8 decoding exactly as Go writes and reads
 * them, shared by the tree and snapshot encoders (see gojson.h). */
#include <string.h>

#include "gojson.h"

static const char hexdig[] = "0123456789abcdef";

size_t cairn_utf8__decode(const unsigned char *s, size_t n, int32_t *r)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t need;
	uint32_t v;

	if (c < 0x80) {
		*r = (int32_t)c;
		return 1;
	}
	if (c < 0xc2 || c > 0xf4)
		goto bad;
	if (c < 0xe0) {
		need = 1;
		v = c & 0x1f;
	} else if (c < 0xf0) {
		need = 2;
		v = c & 0x0f;
		if (c == 0xe0) lo = 0xa0;
		if (c == 0xed) hi = 0x9f;
	} else {
		need = 3;
		v = c & 0x07;
		if (c == 0xf0) lo = 0x90;
		if (c == 0xf4) hi = 0x8f;
	}
	if (n < need + 1)
		goto bad;
	for (size_t i = 1; i <= need; i++) {
		if (s[i] < lo || s[i] > hi)
			goto bad;
		lo = 0x80;
		hi = 0xbf;
		v = v << 6 | (s[i] & 0x3f);
	}
	*r = (int32_t)v;
	return need + 1;
bad:
	*r = -1;
	return 1;
}

int cairn_json__put_string(cairn_buf *b, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char *d;
	size_t i = 0;
	int r;

	if (len > (CAIRN_BUF_MAX - 2) / 6)
		return cairn_error_set(CAIRN_ENOMEM, "string of %zu bytes is too long for json", len);
	if ((r = cairn_buf_reserve(b, 6 * len + 2)) < 0)
		return r;
	d = b->data + b->len;
	*d++ = '"';
	while (i < len) {
		unsigned c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
			*d++ = (unsigned char)c;
			i++;
		} else if (c < 0x80) {
			*d++ = '\\';
			switch (c) {
			case '"': case '\\': *d++ = (unsigned char)c; break;
			case '\n': *d++ = 'n'; break;
			case '\r': *d++ = 'r'; break;
			case '\t': *d++ = 't'; break;
			default:
				memcpy(d, "u00", 3);
				d += 3;
				*d++ = (unsigned char)hexdig[c >> 4];
				*d++ = (unsigned char)hexdig[c & 15];
			}
			i++;
		} else {
			int32_t rr;
			size_t w = cairn_utf8__decode(s + i, len - i, &rr);
			if (rr < 0) {
				memcpy(d, "\\ufffd", 6);
				d += 6;
			} else if (rr == 0x2028 || rr == 0x2029) {
				memcpy(d, rr == 0x2028 ? "\\u2028" : "\\u2029", 6);
				d += 6;
			} else {
				memcpy(d, s + i, w);
				d += w;
			}
			i += w;
		}
	}
	*d++ = '"';
	b->len = (size_t)(d - b->data);
	return 0;
}
