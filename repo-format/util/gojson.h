/* gojson.h: library-internal helpers for writing JSON exactly as Go's
 * encoding/json does (restic's trees and snapshots are hashed, so the bytes
 * matter), and for UTF-8 decoding as Go does it. */
#ifndef CAIRN_UTIL_GOJSON_H
#define CAIRN_UTIL_GOJSON_H

#include <stddef.h>
#include <stdint.h>
#include <cairn/buf.h>

/* Decode one UTF-8 sequence at s (n bytes available): its length, with the
 * rune in *rune, or 1 with *rune = -1 for a byte that does not start a valid
 * sequence (overlong forms, surrogates and values above U+10FFFF are invalid). */
size_t cairn_utf8__decode(const unsigned char *s, size_t n, int32_t *rune);

/* Append `len` bytes of str as a JSON string the way Go's encoding/json
 * (go1.19, HTML escaping on) writes it: '"' and '\\' backslash-escaped,
 * \n \r \t short, other bytes below 0x20 and < > & as \u00XX, U+2028/U+2029
 * escaped, each byte that is not valid UTF-8 as \ufffd; the rest raw. */
int cairn_json__put_string(cairn_buf *b, const char *str, size_t len);

#endif
