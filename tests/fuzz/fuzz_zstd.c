/* fuzz_zstd.c: libFuzzer harness for cairn_zstd_decompress_exact and
 * cairn_zstd_decompress_stream.
 *
 * Compressed blobs (exact: their size is in the pack header) and 0x02
 * unpacked files (stream: their size is recorded nowhere) are both decoded
 * from untrusted frames.  Input: 3 bytes of expected size (below 1 MiB),
 * then the frames.  A failure must be CAIRN_ECORRUPT with a message and
 * leave the stream output as it was; the stream decoder never passes its
 * cap; and when both decoders accept the same bytes with the same size,
 * they agree byte for byte.
 *
 * The stream decoder is more lenient than the one-shot one in Debian's
 * libzstd 1.5.4, and this harness found three cases (see README.md): a
 * compressed block of size 0, a frame declaring N > 0 bytes that holds one
 * empty last block (when the output room is below N), and a cut-short
 * legacy v0.7 frame are all taken as empty.  So "stream accepts" does not
 * imply "one-shot accepts", and that is not asserted here.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_zstd: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf out = CAIRN_BUF_INIT;
	unsigned char *dst;
	size_t ulen;
	int r, exact_ok;

	if (size < 3)
		return 0;
	ulen = ((size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16) & 0xfffff;
	data += 3;
	size -= 3;
	dst = malloc(ulen ? ulen : 1);
	REQUIRE(dst != NULL);
	cairn_error_clear();
	r = cairn_zstd_decompress_exact(dst, ulen, data, size);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
	}
	exact_ok = r == 0;
	REQUIRE(cairn_buf_append(&out, "pfx", 3) == 0);
	cairn_error_clear();
	r = cairn_zstd_decompress_stream(&out, data, size, ulen);
	REQUIRE(out.len - 3 <= ulen);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
		REQUIRE(out.len == 3 && memcmp(out.data, "pfx", 3) == 0);
	} else if (exact_ok && out.len - 3 == ulen) {
		REQUIRE(ulen == 0 || memcmp(out.data + 3, dst, ulen) == 0);
	}
	free(dst);
	cairn_buf_release(&out);
	return 0;
}
