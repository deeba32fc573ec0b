/* fuzz_unquote.c: libFuzzer harness for cairn_go_unquote and cairn_go_quote.
 *
 * Every tree node name is Go-unquoted after JSON decoding, and the result
 * becomes a file name on restore.  The input is used twice: as quoted text
 * (unquote must refuse it with CAIRN_EINVAL and a message, or give a name
 * without NUL bytes that survives quote + unquote unchanged), and as a raw
 * name (if it holds no NUL, quote + unquote gives back exactly its bytes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_unquote: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf u = CAIRN_BUF_INIT, q = CAIRN_BUF_INIT, u2 = CAIRN_BUF_INIT;
	int r;

	cairn_error_clear();
	r = cairn_go_unquote(&u, (const char *)data, size);
	if (r < 0) {
		REQUIRE(r == CAIRN_EINVAL);
		REQUIRE(cairn_error_message()[0] != '\0');
	} else {
		REQUIRE(u.data && u.data[u.len] == '\0' && strlen((const char *)u.data) == u.len);
		REQUIRE(cairn_go_quote(&q, (const char *)u.data, u.len) == 0);
		REQUIRE(cairn_go_unquote(&u2, (const char *)q.data, q.len) == 0);
		REQUIRE(u2.len == u.len && memcmp(u2.data, u.data, u.len) == 0);
	}
	if (!memchr(data, 0, size)) {
		cairn_buf_clear(&q);
		REQUIRE(cairn_go_quote(&q, (const char *)data, size) == 0);
		REQUIRE(cairn_go_unquote(&u2, (const char *)q.data, q.len) == 0);
		REQUIRE(u2.len == size && (size == 0 || memcmp(u2.data, data, size) == 0));
	}
	cairn_buf_release(&u);
	cairn_buf_release(&q);
	cairn_buf_release(&u2);
	return 0;
}
