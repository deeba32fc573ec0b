/* fuzz_blob.c: libFuzzer harness for cairn_blob_decode.
 *
 * Blobs are the file contents restore writes, so only verified plaintext
 * may come out.  One fixed key (as in make_seeds.c).  The first input byte
 * picks what the rest is:
 *   0 mod 3: LE32 ulen, then stored bytes as they would sit in a pack;
 *   1 mod 3: LE32 ulen, then a payload (a zstd frame when ulen != 0),
 *            sealed here so the decompressor behind the MAC sees it; the
 *            expected id is the SHA-256 of the input's own payload, which
 *            only a true round trip can match;
 *   2 mod 3: plaintext stored uncompressed with its true id: must decode.
 * ulen is kept below 1 MiB unless its top nibble is 0xf (then it is used as
 * is, above 2 GiB): a large authenticated ulen legitimately allocates that
 * much, which is not what this harness is looking for.  A failure must be
 * CAIRN_ECORRUPT naming the blob and leave no output behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_blob: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

static void fixed_key(cairn_key *k)
{
	static const unsigned char mask[16] = { 0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
		0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f };
	for (int i = 0; i < 32; i++)
		k->encrypt[i] = (unsigned char)(0x10 + i);
	for (int i = 0; i < 16; i++) {
		k->mac_k[i] = (unsigned char)(0x40 + i);
		k->mac_r[i] = (unsigned char)((0x70 + i) & mask[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_key key;
	cairn_buf sealed = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	cairn_id id;
	char hex[CAIRN_ID_HEX_SIZE];
	uint32_t ulen;
	int mode, r;

	if (size < 5)
		return 0;
	fixed_key(&key);
	mode = data[0] % 3;
	ulen = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
	       (uint32_t)data[4] << 24;
	if (ulen >> 28 != 0xf)
		ulen &= 0xfffff;
	data += 5;
	size -= 5;
	cairn_sha256(&id, data, size);
	if (mode == 0) {
		REQUIRE(cairn_buf_append(&sealed, data, size) == 0);
	} else {
		REQUIRE(cairn_crypto_seal_buf(&sealed, &key, data, size) == 0);
		if (mode == 2)
			ulen = 0;
	}
	cairn_error_clear();
	r = cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen, &id);
	if (mode == 2) {
		REQUIRE(r == 0);
		REQUIRE(out.len == size && (size == 0 || memcmp(out.data, data, size) == 0));
	} else if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		cairn_id_to_hex(hex, &id);
		REQUIRE(strstr(cairn_error_message(), hex) != NULL);
		REQUIRE(out.len == 0);
	} else {
		/* Only possible if the payload decodes to exactly itself. */
		REQUIRE(out.len == size && memcmp(out.data, data, size) == 0);
	}
	cairn_buf_release(&sealed);
	cairn_buf_release(&out);
	return 0;
}
