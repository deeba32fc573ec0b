/* test_pack.c: the blob codec, the pack writer and the pack-header reader,
 * including damage anywhere in a blob or header and loading headers through
 * the local backend. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cairn/backend.h>
#include <cairn/crypto.h>
#include <cairn/error.h>
#include <cairn/id.h>
#include <cairn/index.h>
#include <cairn/pack.h>
#include "unit.h"

static cairn_key key;

static void setup_key(void)
{
	if (cairn_key_valid(&key))
		return;
	if (cairn_key_generate(&key) < 0) {
		fprintf(stderr, "cannot generate a key: %s\n", cairn_error_message());
		exit(2);
	}
}

/* Deterministic pseudo-random bytes (incompressible). */
static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

/* Compressible text. */
static void fill_text(unsigned char *p, size_t n, unsigned seed)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog ";
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)words[(i + seed) % (sizeof(words) - 1)];
}

static void test_blob_type_names(void)
{
	CHECK_STR(cairn_blob_type_name(CAIRN_BLOB_DATA), "data");
	CHECK_STR(cairn_blob_type_name(CAIRN_BLOB_TREE), "tree");
}

/* Encode with the given mode, check the compression decision, decode back. */
static void round_trip(unsigned version, cairn_compression mode, const unsigned char *plain,
	size_t len, int expect_compressed)
{
	cairn_buf sealed = CAIRN_BUF_INIT, scratch = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	uint32_t ulen = 77;
	cairn_id id;

	cairn_sha256(&id, plain, len);
	CHECK_OK(cairn_blob_encode(&sealed, &ulen, &scratch, &key, version, mode, plain, len));
	if (expect_compressed) {
		CHECK_INT(ulen, len);
		CHECK(sealed.len < len + 32);
	} else {
		CHECK_INT(ulen, 0);
		CHECK_INT(sealed.len, len + 32);
	}
	CHECK_OK(cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen, &id));
	CHECK_INT(out.len, len);
	if (out.len == len && len)
		CHECK_MEM(out.data, plain, len);
	cairn_buf_release(&sealed);
	cairn_buf_release(&scratch);
	cairn_buf_release(&out);
}

static void test_blob_encode_modes(void)
{
	static unsigned char text[50000], noise[50000];
	cairn_buf sealed = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	uint32_t ulen = 1;
	cairn_id id;

	setup_key();
	fill_text(text, sizeof(text), 3);
	fill_random(noise, sizeof(noise), 5);
	round_trip(2, CAIRN_COMPRESSION_AUTO, text, sizeof(text), 1);
	round_trip(2, CAIRN_COMPRESSION_FASTEST, text, sizeof(text), 1);
	round_trip(2, CAIRN_COMPRESSION_BETTER, text, sizeof(text), 1);
	round_trip(2, CAIRN_COMPRESSION_MAX, text, sizeof(text), 1);
	round_trip(2, CAIRN_COMPRESSION_OFF, text, sizeof(text), 0);
	round_trip(1, CAIRN_COMPRESSION_AUTO, text, sizeof(text), 0);  /* v1: never */
	round_trip(2, CAIRN_COMPRESSION_AUTO, noise, sizeof(noise), 0); /* does not shrink */
	round_trip(2, CAIRN_COMPRESSION_MAX, noise, 100, 0);
	round_trip(2, CAIRN_COMPRESSION_AUTO, text, 1, 0);
	round_trip(2, CAIRN_COMPRESSION_AUTO, text, 0, 0);             /* empty: never "compressed" */
	round_trip(2, CAIRN_COMPRESSION_MAX, text, 0, 0);

	/* no scratch buffer given */
	cairn_sha256(&id, text, 1000);
	CHECK_OK(cairn_blob_encode(&sealed, &ulen, NULL, &key, 2, CAIRN_COMPRESSION_AUTO, text, 1000));
	CHECK_INT(ulen, 1000);
	CHECK_OK(cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen, &id));
	CHECK_INT(out.len, 1000);
	cairn_buf_release(&sealed);
	cairn_buf_release(&out);
}

/* Above 128 KiB a level-1 probe of four 16 KiB samples decides whether the
 * whole blob is compressed (pack.c).  Incompressible data is stored raw in
 * every compressing mode, compressible data compressed, and data that is
 * random in some places and text in a sampled one still compressed.  The
 * probe's stated trade-off: redundancy at distances beyond a sample (one
 * random 64 KiB block repeated) is not seen, so that blob is stored raw,
 * while the same structure at or below 128 KiB, compressed whole, shrinks. */
static void test_blob_encode_probe(void)
{
	static unsigned char noise[1 << 20], text[1 << 20], mixed[1 << 20], repeated[1 << 20];
	static const cairn_compression modes[] = { CAIRN_COMPRESSION_AUTO,
		CAIRN_COMPRESSION_FASTEST, CAIRN_COMPRESSION_BETTER };

	setup_key();
	fill_random(noise, sizeof(noise), 11);
	fill_text(text, sizeof(text), 7);
	/* random except the last quarter, which is text */
	fill_random(mixed, sizeof(mixed), 13);
	fill_text(mixed + sizeof(mixed) * 3 / 4, sizeof(mixed) / 4, 1);
	for (size_t off = 0; off < sizeof(repeated); off += 65536)
		fill_random(repeated + off, 65536, 17);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		round_trip(2, modes[i], noise, sizeof(noise), 0);
		round_trip(2, modes[i], text, sizeof(text), 1);
		round_trip(2, modes[i], mixed, sizeof(mixed), 1);
	}
	round_trip(2, CAIRN_COMPRESSION_MAX, noise, 200000, 0);
	/* sizes around the probe threshold */
	round_trip(2, CAIRN_COMPRESSION_AUTO, noise, 128 * 1024, 0);
	round_trip(2, CAIRN_COMPRESSION_AUTO, noise, 128 * 1024 + 1, 0);
	round_trip(2, CAIRN_COMPRESSION_AUTO, text, 128 * 1024 + 1, 1);
	/* the trade-off */
	round_trip(2, CAIRN_COMPRESSION_AUTO, repeated, sizeof(repeated), 0);
	for (size_t off = 0; off < 128 * 1024; off += 32768)
		fill_random(repeated + off, 32768, 19);
	round_trip(2, CAIRN_COMPRESSION_AUTO, repeated, 128 * 1024, 1);
}

static void test_blob_decode_rejects(void)
{
	static unsigned char text[4000];
	cairn_buf sealed = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	cairn_key other;
	uint32_t ulen;
	cairn_id id, wrong;
	char hex[CAIRN_ID_HEX_SIZE];

	setup_key();
	fill_text(text, sizeof(text), 1);
	cairn_sha256(&id, text, sizeof(text));
	cairn_id_to_hex(hex, &id);
	CHECK_OK(cairn_blob_encode(&sealed, &ulen, NULL, &key, 2, CAIRN_COMPRESSION_AUTO, text, sizeof(text)));
	CHECK(ulen != 0);

	/* wrong id */
	wrong = id;
	wrong.bytes[31] ^= 1;
	CHECK_INT(cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen, &wrong), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "blob '") != NULL);
	CHECK_INT(out.len, 0);
	/* wrong uncompressed length, either side */
	CHECK_INT(cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen - 1, &id), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), hex) != NULL);
	CHECK_INT(cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen + 1, &id), CAIRN_ECORRUPT);
	/* compressed bytes read as uncompressed: hash mismatch */
	CHECK_INT(cairn_blob_decode(&out, &key, sealed.data, sealed.len, 0, &id), CAIRN_ECORRUPT);
	/* wrong key */
	CHECK_OK(cairn_key_generate(&other));
	CHECK_INT(cairn_blob_decode(&out, &other, sealed.data, sealed.len, ulen, &id), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), hex) != NULL);
	/* too short to be sealed */
	CHECK_INT(cairn_blob_decode(&out, &key, sealed.data, 31, 0, &id), CAIRN_ECORRUPT);
	cairn_key_wipe(&other);
	cairn_buf_release(&sealed);
	cairn_buf_release(&out);
}

/* Flipping any single byte of a stored blob must make decode fail. */
static void flip_every_byte(const unsigned char *plain, size_t len, cairn_compression mode,
	int expect_compressed)
{
	cairn_buf sealed = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	uint32_t ulen;
	cairn_id id;
	int accepted = 0;

	cairn_sha256(&id, plain, len);
	CHECK_OK(cairn_blob_encode(&sealed, &ulen, NULL, &key, 2, mode, plain, len));
	CHECK_INT(ulen != 0, expect_compressed);
	for (size_t i = 0; i < sealed.len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			sealed.data[i] ^= (unsigned char)(1u << bit);
			if (cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen, &id) != CAIRN_ECORRUPT)
				accepted++;
			sealed.data[i] ^= (unsigned char)(1u << bit);
		}
	}
	CHECK_INT(accepted, 0);
	CHECK_OK(cairn_blob_decode(&out, &key, sealed.data, sealed.len, ulen, &id));
	cairn_buf_release(&sealed);
	cairn_buf_release(&out);
}

static void test_blob_any_flipped_byte_is_corrupt(void)
{
	unsigned char text[600], noise[200];

	setup_key();
	fill_text(text, sizeof(text), 9);
	fill_random(noise, sizeof(noise), 11);
	flip_every_byte(text, sizeof(text), CAIRN_COMPRESSION_AUTO, 1);
	flip_every_byte(noise, sizeof(noise), CAIRN_COMPRESSION_AUTO, 0);
	flip_every_byte(text, 1, CAIRN_COMPRESSION_OFF, 0);
}

#define NBLOBS 6

struct sample_pack {
	unsigned char plain[NBLOBS][3000];
	size_t len[NBLOBS];
	cairn_id id[NBLOBS];
	cairn_pack_writer *pw;
	cairn_id pack_id;
};

/* Build a pack of text (compressed) and noise (not) blobs, data and tree. */
static void build_sample(struct sample_pack *s)
{
	cairn_buf sealed = CAIRN_BUF_INIT, scratch = CAIRN_BUF_INIT;
	uint32_t ulen;

	setup_key();
	CHECK_OK(cairn_pack_writer_new(&s->pw, &key));
	for (int i = 0; i < NBLOBS; i++) {
		s->len[i] = 500 + (size_t)i * 400;
		if (i % 2)
			fill_random(s->plain[i], s->len[i], (uint64_t)i);
		else
			fill_text(s->plain[i], s->len[i], (unsigned)i);
		cairn_sha256(&s->id[i], s->plain[i], s->len[i]);
		CHECK_OK(cairn_blob_encode(&sealed, &ulen, &scratch, &key, 2, CAIRN_COMPRESSION_AUTO,
			s->plain[i], s->len[i]));
		CHECK_INT(ulen != 0, i % 2 == 0);
		CHECK_OK(cairn_pack_writer_add_sealed(s->pw, i < 4 ? CAIRN_BLOB_DATA : CAIRN_BLOB_TREE,
			&s->id[i], sealed.data, sealed.len, ulen));
	}
	CHECK_INT(cairn_pack_writer_count(s->pw), NBLOBS);
	CHECK_OK(cairn_pack_writer_finish(&s->pack_id, s->pw));
	cairn_buf_release(&sealed);
	cairn_buf_release(&scratch);
}

static void test_pack_write_parse_decode(void)
{
	static struct sample_pack s;
	const unsigned char *data;
	const cairn_pack_entry *we;
	cairn_pack_entry *pe = NULL;
	size_t len, n, pn = 0, blobs = 0;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_id check;
	uint32_t hlen;

	build_sample(&s);
	data = cairn_pack_writer_data(s.pw, &len);
	we = cairn_pack_writer_entries(s.pw, &n);
	CHECK_INT(n, NBLOBS);
	cairn_sha256(&check, data, len);
	CHECK(cairn_id_equal(&check, &s.pack_id));
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(we[i].offset, blobs);
		blobs += we[i].length;
	}
	CHECK_INT(cairn_pack_writer_size(s.pw), blobs);
	/* header length field and exact sizes: 3 compressed (41) + 3 plain (37) entries */
	hlen = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 | (uint32_t)data[len - 2] << 16
		| (uint32_t)data[len - 1] << 24;
	CHECK_INT(hlen, 32 + 3 * 41 + 3 * 37);
	CHECK_INT(len, blobs + hlen + 4);
	CHECK_INT(cairn_pack_expected_size(we, n), len);

	/* parse from the whole file and from exactly the header's tail */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data, len, len), 0);
	CHECK_INT(pn, NBLOBS);
	for (size_t i = 0; i < pn && pe; i++) {
		CHECK(cairn_id_equal(&pe[i].id, &we[i].id));
		CHECK_INT(pe[i].type, we[i].type);
		CHECK_INT(pe[i].offset, we[i].offset);
		CHECK_INT(pe[i].length, we[i].length);
		CHECK_INT(pe[i].uncompressed_length, we[i].uncompressed_length);
		CHECK_INT(cairn_pack_entry_plain_length(&pe[i]), s.len[i]);
		CHECK_OK(cairn_blob_decode(&out, &key, data + pe[i].offset, pe[i].length,
			pe[i].uncompressed_length, &pe[i].id));
		CHECK_INT(out.len, s.len[i]);
		CHECK_MEM(out.data, s.plain[i], s.len[i]);
	}
	CHECK_INT(cairn_pack_expected_size(pe, pn), len);
	free(pe);
	pe = NULL;
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - hlen - 4, hlen + 4, len), 0);
	CHECK_INT(pn, NBLOBS);
	free(pe);
	pe = NULL;

	/* tail too short: the needed size, nothing set */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - 10, 10, len), (int)hlen + 4);
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - hlen - 3, hlen + 3, len),
		(int)hlen + 4);
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - 2, 2, len), 4);
	CHECK(pe == NULL);

	/* finishing twice, adding after finish, finishing empty */
	CHECK_INT(cairn_pack_writer_finish(&check, s.pw), CAIRN_EINVAL);
	CHECK_INT(cairn_pack_writer_add_sealed(s.pw, CAIRN_BLOB_DATA, &s.id[0], data, 40, 0), CAIRN_EINVAL);
	cairn_pack_writer_reset(s.pw);
	CHECK_INT(cairn_pack_writer_count(s.pw), 0);
	CHECK_INT(cairn_pack_writer_size(s.pw), 0);
	CHECK_INT(cairn_pack_writer_finish(&check, s.pw), CAIRN_EINVAL);
	cairn_pack_writer_free(s.pw);
	cairn_pack_writer_free(NULL);
	cairn_buf_release(&out);
}

static void test_pack_writer_reuse(void)
{
	cairn_pack_writer *pw = NULL;
	cairn_buf sealed = CAIRN_BUF_INIT;
	cairn_pack_entry *pe = NULL;
	const unsigned char *data;
	unsigned char plain[100];
	size_t len, pn;
	uint32_t ulen;
	cairn_id id, pack1, pack2;

	setup_key();
	fill_text(plain, sizeof(plain), 0);
	cairn_sha256(&id, plain, sizeof(plain));
	CHECK_OK(cairn_pack_writer_new(&pw, &key));
	CHECK_OK(cairn_blob_encode(&sealed, &ulen, NULL, &key, 2, CAIRN_COMPRESSION_OFF, plain, sizeof(plain)));
	CHECK_OK(cairn_pack_writer_add_sealed(pw, CAIRN_BLOB_TREE, &id, sealed.data, sealed.len, ulen));
	CHECK_OK(cairn_pack_writer_finish(&pack1, pw));
	cairn_pack_writer_reset(pw);
	CHECK_OK(cairn_pack_writer_add_sealed(pw, CAIRN_BLOB_TREE, &id, sealed.data, sealed.len, ulen));
	CHECK_OK(cairn_pack_writer_finish(&pack2, pw));
	CHECK(!cairn_id_equal(&pack1, &pack2)); /* fresh IV for the header */
	data = cairn_pack_writer_data(pw, &len);
	CHECK_INT(len, 132 + 32 + 37 + 4); /* the minimum-size kind of pack */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data, len, len), 0);
	CHECK_INT(pn, 1);
	if (pe)
		CHECK_INT(pe[0].type, CAIRN_BLOB_TREE);
	free(pe);
	/* invalid arguments */
	CHECK_INT(cairn_pack_writer_add_sealed(pw, CAIRN_BLOB_DATA, &id, sealed.data, 31, 0), CAIRN_EINVAL);
	cairn_pack_writer_free(pw);
	cairn_buf_release(&sealed);
}

/* A pack spooled into a file: the same entries and layout as in memory, the
 * id is the file's SHA-256, and reset closes the file and goes back to memory. */
static void test_pack_writer_spool_file(void)
{
	static struct sample_pack s;
	cairn_pack_writer *pw = NULL;
	cairn_buf sealed = CAIRN_BUF_INIT, scratch = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	cairn_pack_entry *pe = NULL;
	unsigned char *file = NULL;
	const unsigned char *mem;
	size_t pn = 0, mlen;
	uint32_t ulen;
	cairn_id pack_id, check;
	uint64_t flen;
	FILE *tmp = tmpfile();
	int fd;

	CHECK(tmp != NULL);
	if (!tmp)
		return;
	fd = dup(fileno(tmp));
	fclose(tmp);
	build_sample(&s);
	CHECK_OK(cairn_pack_writer_new(&pw, &key));
	CHECK_OK(cairn_pack_writer_set_file(pw, fd));
	CHECK_INT(cairn_pack_writer_file(pw), fd);
	CHECK_INT(cairn_pack_writer_set_file(pw, fd), CAIRN_EINVAL); /* already has one */
	for (int i = 0; i < NBLOBS; i++) {
		CHECK_OK(cairn_blob_encode(&sealed, &ulen, &scratch, &key, 2, CAIRN_COMPRESSION_AUTO,
			s.plain[i], s.len[i]));
		CHECK_OK(cairn_pack_writer_add_sealed(pw, i < 4 ? CAIRN_BLOB_DATA : CAIRN_BLOB_TREE,
			&s.id[i], sealed.data, sealed.len, ulen));
	}
	CHECK_INT(cairn_pack_writer_length(pw), cairn_pack_writer_size(s.pw));
	CHECK_OK(cairn_pack_writer_finish(&pack_id, pw));
	mem = cairn_pack_writer_data(s.pw, &mlen);
	flen = cairn_pack_writer_length(pw);
	CHECK_INT(flen, mlen); /* same blobs, same header size */
	CHECK_INT(lseek(fd, 0, SEEK_END), (off_t)flen);
	file = malloc(flen);
	CHECK(file != NULL);
	if (!file)
		goto out;
	CHECK_INT(pread(fd, file, flen, 0), (ssize_t)flen);
	cairn_sha256(&check, file, flen);
	CHECK(cairn_id_equal(&check, &pack_id));
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, file, flen, flen), 0);
	CHECK_INT(pn, NBLOBS);
	for (size_t i = 0; i < pn && pe; i++) {
		CHECK_OK(cairn_blob_decode(&out, &key, file + pe[i].offset, pe[i].length,
			pe[i].uncompressed_length, &pe[i].id));
		CHECK_MEM(out.data, s.plain[i], s.len[i]);
	}
	/* reset closes the file (the descriptor is gone) and returns to memory */
	cairn_pack_writer_reset(pw);
	CHECK_INT(cairn_pack_writer_file(pw), -1);
	CHECK_INT(fcntl(fd, F_GETFD), -1);
	CHECK_OK(cairn_pack_writer_add_sealed(pw, CAIRN_BLOB_DATA, &s.id[0], sealed.data, sealed.len, ulen));
	CHECK_OK(cairn_pack_writer_finish(&check, pw));
	mem = cairn_pack_writer_data(pw, &mlen);
	CHECK(mem != NULL);
	CHECK_INT(mlen, cairn_pack_writer_length(pw));
out:
	free(pe);
	free(file);
	cairn_pack_writer_free(pw);
	cairn_pack_writer_free(s.pw);
	cairn_buf_release(&sealed);
	cairn_buf_release(&scratch);
	cairn_buf_release(&out);
}

static void test_pack_header_damage(void)
{
	static struct sample_pack s;
	const unsigned char *orig;
	unsigned char *data;
	cairn_pack_entry *pe = NULL;
	size_t len, pn, accepted = 0;
	uint32_t hlen;
	cairn_key other;

	build_sample(&s);
	orig = cairn_pack_writer_data(s.pw, &len);
	data = malloc(len);
	memcpy(data, orig, len);
	hlen = (uint32_t)(len - cairn_pack_writer_size(s.pw) - 4);

	/* every byte of the sealed header and of the length field */
	for (size_t i = len - hlen - 4; i < len; i++) {
		data[i] ^= 0x01;
		if (cairn_pack_parse_header(&pe, &pn, &key, data, len, len) != CAIRN_ECORRUPT)
			accepted++;
		data[i] ^= 0x01;
		data[i] ^= 0x80;
		if (cairn_pack_parse_header(&pe, &pn, &key, data, len, len) != CAIRN_ECORRUPT)
			accepted++;
		data[i] ^= 0x80;
	}
	CHECK_INT(accepted, 0);
	CHECK(pe == NULL);
	data[len - hlen] ^= 0x10; /* inside the ciphertext */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data, len, len), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "MAC") != NULL);
	data[len - hlen] ^= 0x10;

	/* wrong key */
	CHECK_OK(cairn_key_generate(&other));
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &other, data, len, len), CAIRN_ECORRUPT);
	cairn_key_wipe(&other);

	/* truncated at the end: the length field is garbage */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data, len - 1, len - 1), CAIRN_ECORRUPT);
	/* truncated at the front: the header no longer adds up to the file size */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + 1, len - 1, len - 1), CAIRN_ECORRUPT);
	/* one byte too many */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - hlen - 4, hlen + 4, len + 1),
		CAIRN_ECORRUPT);
	/* tiny packs */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - 3, 3, 3), CAIRN_ECORRUPT);
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data + len - 4, 4, 4), CAIRN_ECORRUPT);
	/* tail longer than the pack is a caller error */
	CHECK_INT(cairn_pack_parse_header(&pe, &pn, &key, data, len, len - 1), CAIRN_EINVAL);
	CHECK(pe == NULL);
	free(data);
	cairn_pack_writer_free(s.pw);
}

/* A pack made of `blob_bytes` of filler followed by a header sealed from
 * the given plaintext entries. */
static int parse_crafted(const unsigned char *header, size_t hsize, size_t blob_bytes)
{
	size_t len = blob_bytes + hsize + 32 + 4;
	unsigned char *pack = calloc(1, len);
	cairn_pack_entry *pe = NULL;
	size_t pn = 0;
	int r;

	cairn_crypto_seal(pack + blob_bytes, &key, header, hsize);
	pack[len - 4] = (unsigned char)(hsize + 32);
	pack[len - 3] = (unsigned char)((hsize + 32) >> 8);
	r = cairn_pack_parse_header(&pe, &pn, &key, pack, len, len);
	free(pe);
	free(pack);
	return r;
}

static size_t put_entry(unsigned char *p, unsigned type, uint32_t length, uint32_t ulen)
{
	size_t n = 0;
	p[n++] = (unsigned char)type;
	for (int i = 0; i < 4; i++)
		p[n++] = (unsigned char)(length >> (8 * i));
	if (type >= 2)
		for (int i = 0; i < 4; i++)
			p[n++] = (unsigned char)(ulen >> (8 * i));
	memset(p + n, 0x5a, 32);
	return n + 32;
}

static void test_pack_header_entry_rules(void)
{
	unsigned char h[256];
	size_t n;

	setup_key();
	/* well formed: data 40 + zstd tree 50 */
	n = put_entry(h, 0, 40, 0);
	n += put_entry(h + n, 3, 50, 99);
	CHECK_INT(parse_crafted(h, n, 90), 0);
	/* the same, but the blobs do not cover the space before the header */
	CHECK_INT(parse_crafted(h, n, 89), CAIRN_ECORRUPT);
	CHECK_INT(parse_crafted(h, n, 91), CAIRN_ECORRUPT);
	/* unknown type */
	n = put_entry(h, 4, 40, 0);
	CHECK_INT(parse_crafted(h, n, 40), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "type") != NULL);
	/* a stored length below 32 */
	n = put_entry(h, 1, 31, 0);
	CHECK_INT(parse_crafted(h, n, 31), CAIRN_ECORRUPT);
	/* compressed with ulen 0 */
	n = put_entry(h, 2, 40, 0);
	CHECK_INT(parse_crafted(h, n, 40), CAIRN_ECORRUPT);
	/* an entry cut short */
	n = put_entry(h, 0, 40, 0);
	CHECK_INT(parse_crafted(h, n - 1, 40), CAIRN_ECORRUPT);
	n = put_entry(h, 2, 40, 7);
	CHECK_INT(parse_crafted(h, 37, 40), CAIRN_ECORRUPT); /* type 2 needs 41 bytes */
	/* no entries at all */
	CHECK_INT(parse_crafted(h, 0, 0), CAIRN_ECORRUPT);
}

static char tmp_root[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void test_pack_load_header_from_backend(void)
{
	cairn_backend *be = NULL;
	cairn_pack_writer *pw = NULL;
	cairn_buf sealed = CAIRN_BUF_INIT;
	cairn_pack_entry *pe = NULL;
	const cairn_pack_entry *we;
	const unsigned char *data;
	cairn_handle h;
	char hex[CAIRN_ID_HEX_SIZE];
	size_t len, n, pn = 0;
	uint32_t ulen;
	cairn_id id, pack_id;
	int bad = 0;

	setup_key();
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/cairn-test-pack-XXXXXX");
	CHECK(mkdtemp(tmp_root) != NULL);
	CHECK_OK(cairn_backend_open(&be, tmp_root, 1));
	CHECK_OK(cairn_backend_create(be));
	CHECK_OK(cairn_pack_writer_new(&pw, &key));

	/* 2500 tiny blobs: a 92 KiB header, more than the first 64 KiB read */
	for (unsigned i = 0; i < 2500; i++) {
		cairn_sha256(&id, &i, sizeof(i));
		CHECK_OK(cairn_blob_encode(&sealed, &ulen, NULL, &key, 2, CAIRN_COMPRESSION_AUTO, &i, sizeof(i)));
		CHECK_OK(cairn_pack_writer_add_sealed(pw, CAIRN_BLOB_DATA, &id, sealed.data, sealed.len, ulen));
	}
	CHECK_OK(cairn_pack_writer_finish(&pack_id, pw));
	data = cairn_pack_writer_data(pw, &len);
	we = cairn_pack_writer_entries(pw, &n);
	cairn_id_to_hex(hex, &pack_id);
	cairn_handle_set(&h, CAIRN_FILE_PACK, hex);
	CHECK_OK(cairn_backend_save(be, &h, data, len));
	CHECK_INT(cairn_pack_load_header(&pe, &pn, be, &key, &pack_id), 0);
	CHECK_INT(pn, 2500);
	for (size_t i = 0; i < pn && pe; i++)
		bad += !cairn_id_equal(&pe[i].id, &we[i].id) || pe[i].offset != we[i].offset
			|| pe[i].length != we[i].length;
	CHECK_INT(bad, 0);
	CHECK_INT(cairn_pack_expected_size(pe, pn), len);
	free(pe);
	pe = NULL;

	/* a small pack is read in one go */
	cairn_pack_writer_reset(pw);
	CHECK_OK(cairn_pack_writer_add_sealed(pw, CAIRN_BLOB_DATA, &id, sealed.data, sealed.len, ulen));
	CHECK_OK(cairn_pack_writer_finish(&pack_id, pw));
	data = cairn_pack_writer_data(pw, &len);
	cairn_id_to_hex(hex, &pack_id);
	cairn_handle_set(&h, CAIRN_FILE_PACK, hex);
	CHECK_OK(cairn_backend_save(be, &h, data, len));
	CHECK_INT(cairn_pack_load_header(&pe, &pn, be, &key, &pack_id), 0);
	CHECK_INT(pn, 1);
	free(pe);
	pe = NULL;

	/* damaged on disk: the error names the pack */
	CHECK_OK(cairn_backend_save(be, &h, data, len - 1));
	CHECK_INT(cairn_pack_load_header(&pe, &pn, be, &key, &pack_id), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), hex) != NULL);
	CHECK_OK(cairn_backend_save(be, &h, data, 2));
	CHECK_INT(cairn_pack_load_header(&pe, &pn, be, &key, &pack_id), CAIRN_ECORRUPT);
	/* missing */
	memset(&pack_id, 0, sizeof(pack_id));
	CHECK_INT(cairn_pack_load_header(&pe, &pn, be, &key, &pack_id), CAIRN_ENOTFOUND);
	CHECK(pe == NULL);

	cairn_pack_writer_free(pw);
	cairn_buf_release(&sealed);
	cairn_backend_free(be);
	nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- golden vectors from restic 0.14.0 ----
 * `restic init --repository-version 2`, then `backup --compression auto` of a
 * 220-byte text file and `backup --compression off` of 64 random bytes.
 * Below: the master key (taken from the key file with the password), all four
 * pack files as stored, and the two index files' JSON (stored as 0x02 ||
 * zstd).  They prove the header reader, the blob decoder, the index parser
 * and the index encoder against Go's code: compressed data and tree blobs
 * (types 2, 3) and an uncompressed data blob (type 0). */
static const unsigned char restic_encrypt[32] = {
	0x79, 0xe5, 0xeb, 0xb8, 0x88, 0xbb, 0xfc, 0xed, 0x75, 0x13, 0xc7, 0xfb, 0x3e, 0x4c, 0x28, 0x45,
	0xe4, 0x6d, 0x8e, 0x67, 0xc8, 0x37, 0x6f, 0xf9, 0x98, 0x1b, 0x3a, 0x0d, 0x07, 0x37, 0x23, 0xab,
};
static const unsigned char restic_mac_k[16] = {
	0x1a, 0x3c, 0x1e, 0x29, 0xfd, 0x7e, 0xba, 0xa4, 0x5b, 0x3d, 0x2d, 0xed, 0x34, 0x0a, 0x8a, 0x1e,
};
static const unsigned char restic_mac_r[16] = {
	0x3b, 0xa8, 0x68, 0x03, 0x70, 0x72, 0xbd, 0x0b, 0xac, 0xf1, 0xee, 0x04, 0x14, 0x21, 0x53, 0x0b,
};
/* pack 8a908b38a0ce5f9e0b1c6de96a41cd54b6ad6024e50fba7780af788d0efa1aad */
static const unsigned char restic_pack_8a908b38[618] = {
	0x80, 0x61, 0x17, 0xf3, 0xbf, 0x89, 0x80, 0x5c, 0xf5, 0x6d, 0x20, 0x48, 0xcd, 0x67, 0xa4, 0xad,
	0xd3, 0xad, 0x01, 0xf4, 0x00, 0x7d, 0xe3, 0xf4, 0x7b, 0x15, 0x46, 0xa3, 0xcb, 0xb4, 0x66, 0x6a,
	0x4e, 0x31, 0x1c, 0xb7, 0xbc, 0xa5, 0xc1, 0x98, 0x51, 0x62, 0x5f, 0x3e, 0xe1, 0xac, 0xf7, 0x29,
	0x4f, 0x12, 0xd5, 0x21, 0x61, 0x9e, 0x3d, 0x26, 0x35, 0x65, 0x19, 0x30, 0x9d, 0xe6, 0x39, 0x3a,
	0xe3, 0x93, 0x22, 0x16, 0x33, 0xbf, 0x61, 0xbc, 0xee, 0x7c, 0xb6, 0x2d, 0x63, 0x83, 0x8a, 0x98,
	0xdc, 0xa9, 0x15, 0x82, 0xdd, 0x84, 0xcd, 0xbd, 0x20, 0x4e, 0xe7, 0x7e, 0xf0, 0x11, 0x15, 0x18,
	0x5f, 0x8b, 0xe6, 0x55, 0x30, 0x30, 0x12, 0x80, 0x9e, 0x25, 0x19, 0x19, 0xe2, 0x0c, 0x9f, 0xfd,
	0x19, 0xfa, 0x3f, 0xfd, 0x27, 0x94, 0x12, 0xe9, 0x8f, 0x8d, 0x6e, 0x27, 0x1d, 0x14, 0x3e, 0x92,
	0x79, 0xa1, 0x78, 0x5e, 0x10, 0x6f, 0x0f, 0xbd, 0x61, 0x8f, 0x62, 0xf8, 0x52, 0x0b, 0xf3, 0xbf,
	0x6d, 0x2b, 0x47, 0x06, 0xf1, 0x3c, 0x0a, 0x3a, 0x0f, 0x71, 0xf8, 0xf5, 0x02, 0x45, 0x69, 0xdc,
	0x29, 0xf2, 0xdc, 0x58, 0x4b, 0x94, 0x24, 0x60, 0x21, 0x58, 0x22, 0xd3, 0x29, 0x5f, 0x74, 0x67,
	0xc6, 0xb6, 0x0f, 0xdf, 0x39, 0x05, 0xee, 0xce, 0x67, 0xb4, 0xda, 0x20, 0x53, 0x5c, 0x7d, 0xe5,
	0x7b, 0xcb, 0xd6, 0x23, 0x8c, 0xca, 0xa8, 0x46, 0xe9, 0x32, 0xec, 0xc7, 0x4f, 0xb2, 0x16, 0xd3,
	0x8a, 0xfd, 0xdf, 0xe7, 0x96, 0xb7, 0x46, 0x47, 0xe1, 0xf5, 0x6b, 0x3e, 0x0c, 0xce, 0x05, 0xef,
	0xfc, 0xe2, 0xc8, 0x43, 0x72, 0x2e, 0x41, 0x42, 0xb8, 0xd3, 0xec, 0x88, 0x4f, 0xd7, 0x07, 0x2d,
	0x0d, 0x0d, 0x3f, 0xca, 0x61, 0x3a, 0xee, 0x17, 0x2b, 0x3f, 0x9e, 0xd0, 0x32, 0xd2, 0xda, 0x4d,
	0xd7, 0x59, 0x51, 0x85, 0xde, 0x40, 0x2d, 0xdf, 0xd3, 0xdd, 0x35, 0xd7, 0xb6, 0x68, 0xee, 0x08,
	0x8b, 0x1d, 0xe4, 0xc4, 0x85, 0x8c, 0xef, 0xf8, 0x02, 0x66, 0xc3, 0x6b, 0x77, 0xe1, 0x65, 0x85,
	0x44, 0x75, 0x6f, 0x5b, 0x1f, 0x83, 0x72, 0xbd, 0xfe, 0x02, 0x78, 0x06, 0xaf, 0x8f, 0xe6, 0xf3,
	0xcb, 0x6f, 0x3e, 0x6b, 0xce, 0xcf, 0xb5, 0x8c, 0xad, 0x3f, 0xb4, 0x7d, 0xd2, 0x19, 0x2f, 0xc5,
	0x1f, 0xe0, 0xfc, 0x73, 0x68, 0x5c, 0x2e, 0x98, 0x26, 0x60, 0x63, 0x9e, 0xc3, 0x94, 0xbe, 0xba,
	0x0f, 0x23, 0x7b, 0x5f, 0x6a, 0x1c, 0x57, 0x97, 0xe7, 0x6c, 0x34, 0x55, 0x53, 0xaf, 0x98, 0x5b,
	0x4d, 0xa2, 0x70, 0xf4, 0x02, 0x3f, 0xbe, 0xc7, 0x83, 0x8e, 0x3c, 0x2a, 0x42, 0x7d, 0x6e, 0xde,
	0x9b, 0x0d, 0xaf, 0x2e, 0x4b, 0xca, 0x58, 0x96, 0x24, 0x08, 0xa5, 0x93, 0x2c, 0xe0, 0x83, 0x1a,
	0x6e, 0x1d, 0x97, 0x90, 0x4f, 0xc3, 0xc3, 0xb5, 0xe1, 0x0b, 0xb0, 0x1b, 0x44, 0xc7, 0xd9, 0x86,
	0xac, 0x90, 0xe5, 0xf5, 0x3d, 0xb0, 0x4a, 0x21, 0xba, 0x5e, 0x06, 0xbf, 0x9a, 0x56, 0x44, 0x1b,
	0xc0, 0xb9, 0x28, 0x31, 0x9d, 0x8b, 0x8c, 0x81, 0x78, 0xf9, 0x8c, 0x84, 0x95, 0x90, 0xde, 0x8b,
	0x9e, 0xce, 0x47, 0x37, 0x30, 0xaa, 0xd7, 0x6b, 0x4f, 0x31, 0x9b, 0x60, 0x73, 0x59, 0xa3, 0x55,
	0x42, 0x3b, 0x29, 0xc7, 0x17, 0x7e, 0x74, 0x6f, 0xbf, 0x10, 0x87, 0x57, 0x19, 0xfc, 0x3d, 0x44,
	0x1e, 0x1b, 0xfa, 0x19, 0xae, 0xbf, 0x78, 0x36, 0x9f, 0xbe, 0x82, 0x45, 0x30, 0x1f, 0xa5, 0x83,
	0xe1, 0xe7, 0x06, 0x93, 0xda, 0x24, 0x76, 0x0c, 0x5c, 0x33, 0x76, 0xcb, 0x7b, 0x10, 0x95, 0x40,
	0x32, 0x38, 0x9f, 0x13, 0x88, 0xc3, 0x31, 0xff, 0x09, 0x7d, 0x98, 0xe5, 0xe2, 0xac, 0xdb, 0x60,
	0xef, 0x9f, 0xfa, 0x54, 0xaf, 0x66, 0xd9, 0xf0, 0x46, 0x17, 0x0e, 0x43, 0xc4, 0xe9, 0x0f, 0x3f,
	0x90, 0xee, 0x7b, 0xf8, 0x81, 0x93, 0xfd, 0x16, 0x41, 0xc6, 0xa0, 0xbd, 0xa3, 0x7a, 0x71, 0x49,
	0x12, 0x37, 0x5d, 0xbd, 0xfb, 0xba, 0x2e, 0x20, 0x60, 0x4c, 0x27, 0x7d, 0xb7, 0x22, 0x82, 0x93,
	0xcc, 0xd7, 0x00, 0x46, 0xbd, 0xb3, 0xf7, 0x32, 0x91, 0xdf, 0xc1, 0xcf, 0xd1, 0x60, 0x2f, 0xe1,
	0x4a, 0xa7, 0x7a, 0xda, 0xc4, 0xb4, 0x99, 0x20, 0x02, 0x08, 0xe8, 0xe2, 0x16, 0x27, 0x02, 0x6e,
	0x7e, 0x46, 0x9c, 0xca, 0xe6, 0x08, 0x90, 0xb3, 0x2b, 0xf6, 0x39, 0xc3, 0xad, 0xfa, 0xc2, 0x70,
	0x47, 0x09, 0xf1, 0x19, 0xc2, 0xab, 0x72, 0x00, 0x00, 0x00,
};
/* pack 2a28661aaa027e6f32d035ada33e4aa80ea61e30283a360f1e099cdfeb56ba52 */
static const unsigned char restic_pack_2a28661a[620] = {
	0xf0, 0x2e, 0xbb, 0xcf, 0x97, 0xaa, 0x6b, 0xd1, 0x2b, 0xec, 0xad, 0x26, 0x79, 0xc3, 0x4b, 0x1b,
	0x73, 0xa4, 0x15, 0x7e, 0x84, 0x7f, 0xff, 0x8c, 0x38, 0x9a, 0x18, 0xff, 0x7b, 0xf5, 0x3a, 0xae,
	0x26, 0x23, 0x52, 0x1a, 0x30, 0x0d, 0xe4, 0x17, 0xa5, 0xd4, 0x10, 0xe9, 0xc2, 0x4f, 0x0f, 0x12,
	0xfa, 0xc1, 0xa4, 0xcf, 0x65, 0x30, 0x7d, 0xc5, 0x62, 0x90, 0x3f, 0x40, 0x64, 0xf8, 0x08, 0xf9,
	0xb2, 0x9d, 0x7a, 0x4b, 0xe4, 0x35, 0x98, 0x88, 0x61, 0x90, 0xdf, 0x44, 0x41, 0xe5, 0x20, 0x58,
	0x56, 0x7e, 0x6f, 0x4b, 0x68, 0x64, 0x1d, 0xfc, 0xcf, 0xff, 0xa9, 0x96, 0x60, 0x61, 0x57, 0xe2,
	0xe3, 0x16, 0x5e, 0x2a, 0x12, 0x8c, 0x26, 0xd9, 0x77, 0x91, 0xee, 0x75, 0x0e, 0x7b, 0x31, 0xc8,
	0x60, 0x86, 0x0f, 0x66, 0x86, 0xe7, 0xf8, 0x8d, 0xd2, 0x1a, 0x16, 0x9f, 0x99, 0xd9, 0xd7, 0x28,
	0xa9, 0xc4, 0x61, 0x82, 0x87, 0xc3, 0xe0, 0xf2, 0x53, 0x6b, 0x7c, 0x7f, 0xc6, 0x68, 0xde, 0x8d,
	0x80, 0xae, 0x37, 0xd2, 0x3b, 0x2e, 0x9f, 0xa9, 0x6d, 0x56, 0x0b, 0xdb, 0x96, 0xf0, 0x3b, 0xe2,
	0x40, 0xc1, 0xb9, 0x6a, 0xac, 0x3e, 0xba, 0x23, 0x2d, 0xea, 0x85, 0x0f, 0xc7, 0xf3, 0x19, 0x97,
	0x22, 0x08, 0x8e, 0x6c, 0x64, 0xec, 0xa3, 0xae, 0xcd, 0x40, 0x0a, 0x7e, 0xfa, 0x8b, 0x98, 0xc6,
	0xfc, 0x85, 0x26, 0xc4, 0x93, 0x52, 0xbd, 0xdf, 0xe4, 0x3b, 0x5b, 0x8d, 0xb8, 0x3b, 0x7c, 0xd9,
	0x4b, 0x25, 0xbb, 0xd0, 0x21, 0xc2, 0x96, 0xa4, 0x4a, 0x8a, 0x8a, 0x7f, 0x2b, 0x19, 0x2f, 0x31,
	0x53, 0x7c, 0xc9, 0x68, 0x07, 0x94, 0x69, 0x4f, 0x61, 0x2f, 0x98, 0x14, 0x13, 0x39, 0x3c, 0x68,
	0x81, 0x1d, 0xdf, 0x53, 0xdc, 0x27, 0x03, 0xab, 0x06, 0x54, 0x0c, 0xfe, 0x4d, 0xe9, 0x67, 0xf0,
	0x7f, 0x04, 0xde, 0xf3, 0x14, 0xe2, 0xae, 0x7e, 0x07, 0x09, 0x17, 0x3f, 0xb2, 0x2b, 0xaf, 0xa7,
	0x25, 0xf7, 0x06, 0xf2, 0x44, 0xb0, 0xf4, 0x45, 0xe1, 0x11, 0xff, 0x56, 0x95, 0x42, 0xe5, 0xea,
	0x9c, 0x40, 0x15, 0xef, 0x79, 0xcd, 0x1d, 0x96, 0xa7, 0xb3, 0x17, 0xbe, 0x16, 0x68, 0xbf, 0xaf,
	0xa8, 0x1d, 0x1a, 0x11, 0x60, 0x1f, 0xff, 0xfa, 0x84, 0x5c, 0x92, 0x34, 0xb9, 0x10, 0xda, 0xa1,
	0x85, 0x6a, 0xdd, 0xae, 0x7a, 0xd9, 0xc6, 0xf5, 0x7e, 0x54, 0xee, 0x1e, 0x34, 0xcc, 0x40, 0xcf,
	0xa1, 0xb6, 0x0f, 0x89, 0xfd, 0xbc, 0x9b, 0x89, 0x35, 0x28, 0x23, 0xb7, 0x2b, 0x20, 0x2d, 0x1a,
	0x57, 0x08, 0x65, 0x74, 0x54, 0x97, 0x68, 0xc0, 0x31, 0xe7, 0x4d, 0x5c, 0x3a, 0x85, 0x2b, 0x99,
	0x91, 0x26, 0xa3, 0xaa, 0x64, 0x25, 0x3f, 0x39, 0x1c, 0x00, 0x08, 0x71, 0xcf, 0x90, 0x11, 0x45,
	0x2c, 0xa4, 0xf8, 0x4e, 0xec, 0x91, 0xf8, 0x0c, 0x19, 0x9e, 0x75, 0x33, 0x77, 0x5f, 0x99, 0xb3,
	0x2f, 0x49, 0xc6, 0x6d, 0xca, 0x75, 0xb0, 0x7e, 0x92, 0x11, 0x29, 0xed, 0x97, 0xec, 0x90, 0x7b,
	0xe7, 0x76, 0xb6, 0x2a, 0x46, 0x25, 0xce, 0xb7, 0xf8, 0x51, 0x7b, 0x3d, 0x5a, 0xae, 0x64, 0x0d,
	0x52, 0xb7, 0x87, 0xc1, 0x37, 0xb6, 0xb9, 0x2a, 0xb4, 0xcd, 0xdc, 0x03, 0x5a, 0x68, 0x74, 0xcd,
	0x14, 0x88, 0x5a, 0xab, 0xa6, 0xf6, 0x84, 0xcc, 0x24, 0xce, 0x48, 0xd9, 0x57, 0xe6, 0x61, 0xaa,
	0x5e, 0xdf, 0x0e, 0x73, 0x6b, 0x12, 0xa8, 0x09, 0x6c, 0x64, 0x7a, 0x15, 0xc9, 0xc8, 0xfb, 0xee,
	0x3c, 0xae, 0x2e, 0x30, 0x58, 0x97, 0x3f, 0x4a, 0xfb, 0x60, 0x78, 0xa9, 0xb3, 0x5b, 0x2c, 0xbf,
	0xc1, 0xb0, 0xa5, 0x68, 0x91, 0xcc, 0xb4, 0x39, 0x50, 0x0d, 0x3b, 0x26, 0xa1, 0x6a, 0xe9, 0x11,
	0xd6, 0xcb, 0x94, 0xba, 0xc0, 0x34, 0xcf, 0x33, 0x3d, 0x64, 0xad, 0xca, 0x79, 0xa4, 0x8a, 0xe9,
	0x78, 0x11, 0x3b, 0x74, 0x6d, 0x1e, 0xdf, 0xc4, 0x40, 0xd4, 0x98, 0x2e, 0x28, 0x87, 0xaf, 0x85,
	0xe6, 0x1b, 0x7c, 0xbc, 0xa7, 0x4f, 0x61, 0x69, 0x2d, 0x61, 0xbf, 0x3f, 0xba, 0x69, 0xc7, 0xc0,
	0x3e, 0xde, 0x51, 0xd0, 0xcb, 0xec, 0x57, 0xae, 0x38, 0xbe, 0x12, 0x9a, 0x6c, 0x53, 0xff, 0x2a,
	0x5d, 0x0e, 0x3a, 0x7d, 0x51, 0x6a, 0xec, 0x92, 0xca, 0xf9, 0xdf, 0x18, 0xf3, 0x29, 0x32, 0x5e,
	0x54, 0x19, 0x1b, 0x92, 0x72, 0x7d, 0xc6, 0x6f, 0x08, 0x2d, 0xc7, 0xa3, 0x16, 0x0e, 0xd8, 0xb9,
	0x12, 0x10, 0xd5, 0xde, 0x85, 0xe9, 0xa9, 0x87, 0x72, 0x00, 0x00, 0x00,
};
/* pack a8d3bbb8ea42ce4e85f1b392edea18291db8cd5359c899ef63e484381293b478 */
static const unsigned char restic_pack_a8d3bbb8[137] = {
	0x99, 0x7f, 0x00, 0x55, 0x03, 0xc9, 0xaf, 0x0c, 0x82, 0xa1, 0x25, 0x51, 0xe7, 0x38, 0x2b, 0xd1,
	0xa0, 0x6f, 0xfc, 0x98, 0xbc, 0x4d, 0xaa, 0x86, 0xf9, 0x32, 0xec, 0x08, 0x11, 0x69, 0x7c, 0x49,
	0xa8, 0x01, 0xa7, 0x81, 0x17, 0xcb, 0x74, 0xec, 0x9a, 0x15, 0xfa, 0x25, 0xb8, 0x26, 0xa3, 0xc0,
	0x39, 0x12, 0xdb, 0xeb, 0x69, 0x97, 0xec, 0x9f, 0x1f, 0x62, 0x05, 0x3b, 0xf2, 0x0d, 0xc3, 0x5f,
	0x66, 0x25, 0x65, 0x6b, 0x9d, 0x66, 0xbb, 0xa7, 0x5c, 0xbe, 0xd3, 0xa4, 0x56, 0xdb, 0x77, 0x43,
	0x58, 0x0f, 0x5c, 0xb5, 0xf2, 0x69, 0x4c, 0x83, 0x44, 0xbe, 0x32, 0x6f, 0x8b, 0x5f, 0xba, 0xda,
	0x9d, 0x2b, 0x77, 0xe2, 0x16, 0x42, 0xd6, 0x03, 0x93, 0x8b, 0x08, 0x3c, 0x38, 0x4d, 0x8d, 0xeb,
	0x4e, 0x0e, 0xfd, 0xa8, 0x59, 0x4b, 0x50, 0x8f, 0x5c, 0xc7, 0xb1, 0xda, 0x8a, 0xe4, 0x48, 0x35,
	0x5c, 0x17, 0xf3, 0xe2, 0xcc, 0x49, 0x00, 0x00, 0x00,
};
/* pack 155bcd87a9f58aefffa5ca6163ce1b9fae6ac8749c773852fb1bbd6d7f952343 */
static const unsigned char restic_pack_155bcd87[169] = {
	0x14, 0x1f, 0x3f, 0xae, 0x5a, 0x37, 0x1d, 0x53, 0xf5, 0x0d, 0x41, 0x79, 0x61, 0x6b, 0x2c, 0xfd,
	0x2f, 0xcf, 0xff, 0xcc, 0xd3, 0x85, 0xde, 0xfc, 0x86, 0x83, 0x69, 0x23, 0x1b, 0xb0, 0xa9, 0x0f,
	0x38, 0x02, 0x25, 0x54, 0xf3, 0x9f, 0x8c, 0x9c, 0x64, 0x56, 0x3b, 0x3f, 0x3d, 0x0a, 0x3e, 0xd2,
	0x0e, 0x91, 0x57, 0x55, 0x85, 0xc1, 0x7b, 0x36, 0x04, 0x04, 0x37, 0x51, 0x90, 0x8f, 0x50, 0x52,
	0x42, 0xa4, 0x79, 0x39, 0x25, 0xc5, 0x80, 0xb1, 0xef, 0xa1, 0xb7, 0x44, 0x0f, 0xb8, 0x8f, 0xe0,
	0x94, 0x0e, 0xaf, 0x26, 0x9c, 0x0f, 0x17, 0xdf, 0x18, 0x38, 0x73, 0x72, 0xe2, 0x6f, 0xc4, 0x8a,
	0x11, 0x4f, 0x27, 0xda, 0xb8, 0x90, 0xfc, 0xb8, 0x28, 0x33, 0xb9, 0x7f, 0xf6, 0x52, 0x1c, 0xcd,
	0x56, 0x07, 0x8f, 0xce, 0x2a, 0x08, 0x3f, 0x7a, 0x50, 0xcc, 0x25, 0x0c, 0x1b, 0x23, 0x79, 0xdf,
	0xee, 0x47, 0x2f, 0xd4, 0x56, 0x52, 0x42, 0xf9, 0x0c, 0x4e, 0x40, 0xe3, 0x83, 0xda, 0xd8, 0xc9,
	0x23, 0x1f, 0x42, 0xd9, 0x64, 0xe8, 0x95, 0xb3, 0x87, 0xbc, 0xdf, 0x4d, 0x2c, 0x5d, 0x8f, 0x12,
	0xe6, 0x40, 0x4d, 0x07, 0xf9, 0x45, 0x00, 0x00, 0x00,
};
/* index 525a4ced69e2180ebc6b3233fb7e76f0459f288b78cf947a0293b6abc91babdc, first plaintext byte 0x02 */
static const char restic_index_0[] =
	"{\"packs\":[{\"id\":\"a8d3bbb8ea42ce4e85f1b392edea18291db8cd5359c899ef63e484381293b478\",\"blobs\":[{\"id\":\"f"
	"de884ea0b7f9fa35196ee0f8b810f819a90480684cbab631e0cde7d53074b27\",\"type\":\"data\",\"offset\":0,\"length\":6"
	"0,\"uncompressed_length\":220}]},{\"id\":\"2a28661aaa027e6f32d035ada33e4aa80ea61e30283a360f1e099cdfeb56ba"
	"52\",\"blobs\":[{\"id\":\"0132386f11c7103615c51af0749f5e1956093efa9a393de72bc69fd2ad35c3cf\",\"type\":\"tree\","
	"\"offset\":254,\"length\":248,\"uncompressed_length\":350},{\"id\":\"81e00fbe4c640ec463c398c7f0ba17d225fc580f"
	"6f8d1b4ef680286d375fc2e4\",\"type\":\"tree\",\"offset\":0,\"length\":254,\"uncompressed_length\":354}]}]}\n";
/* index 8c4141a9e22263bd4d5635d88478bcdc603e3cf1ac752648d182261b1e66e2b1, first plaintext byte 0x02 */
static const char restic_index_1[] =
	"{\"packs\":[{\"id\":\"155bcd87a9f58aefffa5ca6163ce1b9fae6ac8749c773852fb1bbd6d7f952343\",\"blobs\":[{\"id\":\"b"
	"a640af13e484b409e9fa015a16c3a147f000edc1f964f404ec9037984faeffd\",\"type\":\"data\",\"offset\":0,\"length\":9"
	"6}]},{\"id\":\"8a908b38a0ce5f9e0b1c6de96a41cd54b6ad6024e50fba7780af788d0efa1aad\",\"blobs\":[{\"id\":\"e335e2"
	"8523857427dace629591499781b3227b0800d3f5e16f491027d4748e7d\",\"type\":\"tree\",\"offset\":0,\"length\":252,\"u"
	"ncompressed_length\":356},{\"id\":\"2cbe3b190b95d297ec40b110b3c49100342eb054d2a09e2e9acde88562345533\",\"t"
	"ype\":\"tree\",\"offset\":252,\"length\":248,\"uncompressed_length\":353}]}]}\n";

struct golden_pack {
	const unsigned char *data;
	size_t len;
};

static const struct golden_pack golden_packs[] = {
	{ restic_pack_8a908b38, sizeof(restic_pack_8a908b38) },
	{ restic_pack_2a28661a, sizeof(restic_pack_2a28661a) },
	{ restic_pack_a8d3bbb8, sizeof(restic_pack_a8d3bbb8) },
	{ restic_pack_155bcd87, sizeof(restic_pack_155bcd87) },
};

struct golden_ctx {
	cairn_key key;
	cairn_index_builder *builder;
	cairn_id cur_pack;
	cairn_pack_entry run[8];
	size_t run_n;
	int matched, bad;
};

static void golden_flush(struct golden_ctx *g)
{
	if (g->run_n)
		CHECK_OK(cairn_index_builder_add_pack(g->builder, &g->cur_pack, g->run, g->run_n));
	g->run_n = 0;
}

/* For each index entry: find its pack, parse the header, require an
 * identical header entry, decode the blob; collect entries to re-encode. */
static int golden_entry_cb(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	struct golden_ctx *g = payload;
	cairn_pack_entry *pe = NULL;
	cairn_buf out = CAIRN_BUF_INIT;
	size_t pn = 0;
	int found = 0;

	for (size_t i = 0; i < sizeof(golden_packs) / sizeof(golden_packs[0]); i++) {
		const struct golden_pack *gp = &golden_packs[i];
		cairn_id id;
		cairn_sha256(&id, gp->data, gp->len);
		if (!cairn_id_equal(&id, pack))
			continue;
		CHECK_INT(cairn_pack_parse_header(&pe, &pn, &g->key, gp->data, gp->len, gp->len), 0);
		CHECK_INT(cairn_pack_expected_size(pe, pn), gp->len);
		for (size_t k = 0; k < pn; k++)
			if (cairn_id_equal(&pe[k].id, &e->id) && pe[k].type == e->type
				&& pe[k].offset == e->offset && pe[k].length == e->length
				&& pe[k].uncompressed_length == e->uncompressed_length)
				found = 1;
		if (found && cairn_blob_decode(&out, &g->key, gp->data + e->offset, e->length,
			e->uncompressed_length, &e->id) == 0
			&& out.len == cairn_pack_entry_plain_length(e))
			g->matched++;
		else
			g->bad++;
		free(pe);
	}
	cairn_buf_release(&out);
	if (g->run_n && (!cairn_id_equal(&g->cur_pack, pack) || g->run_n == 8))
		golden_flush(g);
	g->cur_pack = *pack;
	g->run[g->run_n++] = *e;
	return 0;
}

static void test_restic_golden_packs_and_indexes(void)
{
	static const char *const indexes[] = { restic_index_0, restic_index_1 };
	struct golden_ctx g;
	cairn_buf json = CAIRN_BUF_INIT;
	const struct golden_pack *gp = &golden_packs[0];
	cairn_pack_entry *pe = NULL;
	size_t pn;

	memset(&g, 0, sizeof(g));
	memcpy(g.key.encrypt, restic_encrypt, 32);
	memcpy(g.key.mac_k, restic_mac_k, 16);
	memcpy(g.key.mac_r, restic_mac_r, 16);
	CHECK_OK(cairn_index_builder_new(&g.builder));
	for (size_t i = 0; i < 2; i++) {
		cairn_index_builder_reset(g.builder);
		CHECK_OK(cairn_index_parse_json(indexes[i], strlen(indexes[i]), golden_entry_cb, &g));
		golden_flush(&g);
		/* the encoder writes exactly what restic wrote */
		CHECK_OK(cairn_index_builder_encode(&json, g.builder));
		CHECK_STR(cairn_buf_cstr(&json), indexes[i]);
	}
	CHECK_INT(g.matched, 6);
	CHECK_INT(g.bad, 0);

	/* a restic pack's tail too short for its header */
	CHECK(cairn_pack_parse_header(&pe, &pn, &g.key, gp->data + gp->len - 8, 8, gp->len) > 8);
	CHECK(pe == NULL);
	cairn_index_builder_free(g.builder);
	cairn_buf_release(&json);
}

UNIT_MAIN(test_blob_type_names, test_blob_encode_modes, test_blob_encode_probe,
	test_blob_decode_rejects,
	test_blob_any_flipped_byte_is_corrupt, test_pack_write_parse_decode, test_pack_writer_reuse,
	test_pack_writer_spool_file, test_pack_header_damage, test_pack_header_entry_rules, test_pack_load_header_from_backend,
	test_restic_golden_packs_and_indexes)
