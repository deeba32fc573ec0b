/* fuzz_pack_header.c: libFuzzer harness for cairn_pack_parse_header.
 *
 * check, restore and repair read pack headers straight from the storage.
 * All packs here use one fixed key (the same as make_seeds.c writes).  The
 * first input byte picks what the rest is:
 *   0 mod 3: a whole pack file (blobs, sealed header, length);
 *   1 mod 3: a plaintext header, sealed here with the key so the entry
 *            parser behind the MAC sees it; the pack size is the blob bytes
 *            the entries claim plus the header (when they parse), so the
 *            sum checks can pass;
 *   2 mod 3: the same, with the pack size taken from 4 more input bytes.
 * The whole header is always in the tail, so "need more bytes" is never a
 * valid answer; a failure must be CAIRN_ECORRUPT with a message; accepted
 * entries start at 0, follow each other without gaps, are at least 32
 * bytes long and add up to the pack size exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_pack_header: violated: %s (last error: %s)\n", \
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

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check(const cairn_key *key, const unsigned char *tail, size_t tail_len, uint64_t size)
{
	cairn_pack_entry *e = NULL;
	size_t n = 0;
	uint64_t at = 0;
	int r;

	cairn_error_clear();
	r = cairn_pack_parse_header(&e, &n, key, tail, tail_len, size);
	REQUIRE(r <= 0);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
		REQUIRE(e == NULL);
		return;
	}
	REQUIRE(n > 0 && e != NULL);
	for (size_t i = 0; i < n; i++) {
		REQUIRE(e[i].offset == at);
		REQUIRE(e[i].length >= 32);
		REQUIRE(e[i].type == CAIRN_BLOB_DATA || e[i].type == CAIRN_BLOB_TREE);
		at += e[i].length;
	}
	REQUIRE(cairn_pack_expected_size(e, n) == size);
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_key key;
	cairn_buf tail = CAIRN_BUF_INIT;
	const unsigned char *hdr;
	size_t hlen;
	uint64_t pack_size = 0, claimed = 0;
	int mode, well_formed = 1;

	if (size < 1)
		return 0;
	fixed_key(&key);
	mode = data[0] % 3;
	if (mode == 0) {
		check(&key, data + 1, size - 1, size - 1);
		return 0;
	}
	hdr = data + 1;
	hlen = size - 1;
	if (mode == 2) {
		if (hlen < 4)
			return 0;
		pack_size = le32(hdr);
		hdr += 4;
		hlen -= 4;
	}
	if (hlen > CAIRN_PACK_HEADER_MAX)
		return 0;
	REQUIRE(cairn_buf_reserve(&tail, hlen + 36) == 0);
	REQUIRE(cairn_crypto_seal(tail.data, &key, hdr, hlen) == 0);
	tail.len = hlen + 36;
	tail.data[hlen + 32] = (unsigned char)(hlen + 32);
	tail.data[hlen + 33] = (unsigned char)((hlen + 32) >> 8);
	tail.data[hlen + 34] = (unsigned char)((hlen + 32) >> 16);
	tail.data[hlen + 35] = (unsigned char)((hlen + 32) >> 24);
	if (mode == 1) {
		for (size_t i = 0; i < hlen;) {
			size_t es = hdr[i] < 2 ? 37 : 41;
			if (hdr[i] > 3 || hlen - i < es) {
				well_formed = 0;
				break;
			}
			claimed += le32(hdr + i + 1);
			i += es;
		}
		pack_size = (well_formed ? claimed : 0) + tail.len;
	} else {
		pack_size += tail.len;
	}
	check(&key, tail.data, tail.len, pack_size);
	cairn_buf_release(&tail);
	return 0;
}
