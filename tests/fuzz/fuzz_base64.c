/* fuzz_base64.c: libFuzzer harness for cairn_base64_decode.
 *
 * Key files (salt, sealed master key) and tree xattr values are base64 from
 * the repository.  The input is decoded: a failure must be CAIRN_EINVAL
 * with a message and append nothing; a success appends exactly
 * len/4*3 - padding bytes, which encode and decode back to themselves.  The
 * input is also encoded as raw bytes and must decode back exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_base64: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf d = CAIRN_BUF_INIT, e = CAIRN_BUF_INIT, d2 = CAIRN_BUF_INIT;
	int r;

	REQUIRE(cairn_buf_append(&d, "xy", 2) == 0); /* decode appends */
	cairn_error_clear();
	r = cairn_base64_decode(&d, (const char *)data, size);
	if (r < 0) {
		REQUIRE(r == CAIRN_EINVAL);
		REQUIRE(cairn_error_message()[0] != '\0');
		REQUIRE(d.len == 2);
	} else {
		size_t pad = size >= 2 && data[size - 1] == '=' ? (data[size - 2] == '=' ? 2 : 1) : 0;
		REQUIRE(size % 4 == 0 && d.len - 2 == size / 4 * 3 - pad);
		REQUIRE(cairn_base64_encode(&e, d.data + 2, d.len - 2) == 0);
		REQUIRE(cairn_base64_decode(&d2, (const char *)e.data, e.len) == 0);
		REQUIRE(d2.len == d.len - 2 && (d2.len == 0 || memcmp(d2.data, d.data + 2, d2.len) == 0));
	}
	cairn_buf_clear(&e);
	cairn_buf_clear(&d2);
	REQUIRE(cairn_base64_encode(&e, data, size) == 0);
	REQUIRE(cairn_base64_decode(&d2, (const char *)e.data, e.len) == 0);
	REQUIRE(d2.len == size && (size == 0 || memcmp(d2.data, data, size) == 0));
	cairn_buf_release(&d);
	cairn_buf_release(&e);
	cairn_buf_release(&d2);
	return 0;
}
