/* pack.c: the blob codec and pack files (include/cairn/pack.h).
 *
 * A blob is stored as seal(payload), where payload is the plaintext or one
 * zstd frame of it; a header entry records which (ulen != 0 means
 * compressed).  A pack is the sealed blobs back to back, then the sealed
 * header (one entry per blob, in file order: type, LE32 stored length,
 * [LE32 ulen], 32-byte id), then LE32 of the sealed header's length.
 *
 * Writer invariants: blobs are appended to one growing buffer and never
 * moved within it; entries[i].offset is the byte offset of blob i; until
 * finish the buffer holds only blobs.  finish appends header and length and
 * hashes the whole file; reset empties both arrays but keeps their memory.
 *
 * Reader invariants: a header is accepted only if its length field is sane
 * (32 <= hlen <= 16 MiB, hlen + 4 <= pack size), its MAC verifies, every
 * entry has a known type (0..3) and a stored length >= 32, and the blobs
 * plus the header cover the file exactly; offsets are then the running sums.
 * Anything else is CAIRN_ECORRUPT.  Decoding a blob checks MAC, the
 * decompressed length and SHA-256 == id before returning any byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cairn/pack.h>

#define ENTRY_SIZE_PLAIN 37
#define ENTRY_SIZE_ZSTD 41
#define LOAD_TAIL_SIZE (64u * 1024u)

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

const char *cairn_blob_type_name(cairn_blob_type t)
{
	switch (t) {
	case CAIRN_BLOB_DATA: return "data";
	case CAIRN_BLOB_TREE: return "tree";
	}
	return "unknown";
}

/* ---- blob codec ---- */

/* The compression probe.  zstd at level 3 spends ~0.5 ms per MiB even on
 * random data that it then stores as raw blocks; for a backup of media or
 * encrypted files that is most of the CPU time.  So a plaintext above
 * PROBE_MIN bytes is first sampled: PROBE_SLICES slices of PROBE_SLICE bytes
 * spread evenly over it (first and last included) are compressed at level 1,
 * each on its own.  If together they shrink by less than PROBE_GAIN_PCT
 * percent, the blob is stored raw without running the real compression
 * (cost: 64 KiB at level 1 instead of the whole blob at the mode's level).
 * Otherwise the whole blob is compressed at the mode's level, and kept only
 * if that made it smaller.  Trade-off, stated in the tests: a blob whose
 * redundancy only shows at distances above one slice (a random block
 * repeated many times) is stored raw. */
#define PROBE_MIN ((size_t)128 * 1024)
#define PROBE_SLICE ((size_t)16 * 1024)
#define PROBE_SLICES 4
#define PROBE_GAIN_PCT 3
#define PROBE_SURE_PCT 10

/* 1 if the sample says `plain` (len > PROBE_MIN) will not shrink, 0 if it
 * may, negative on error.  The samples are taken first to last; once they
 * already shrink by PROBE_SURE_PCT percent, the blob is compressible
 * whatever the rest says (the real compression decides), so text costs one
 * sample.  `work` is the caller's scratch (replaced). */
static int probe_incompressible(cairn_buf *work, const unsigned char *plain, size_t len)
{
	size_t in = 0, out = 0;

	for (size_t i = 0; i < PROBE_SLICES; i++) {
		size_t off = (len - PROBE_SLICE) / (PROBE_SLICES - 1) * i;
		CAIRN_TRY(cairn_zstd_compress(work, plain + off, PROBE_SLICE, 1));
		in += PROBE_SLICE;
		out += work->len;
		if (out * 100 < in * (100 - PROBE_SURE_PCT))
			return 0;
	}
	return out * 100 >= in * (100 - PROBE_GAIN_PCT);
}

/* sealed_out and scratch are caller-owned (scratch may be NULL: a
 * temporary is used and freed).  They must be different buffers. */
int cairn_blob_encode(cairn_buf *sealed_out, uint32_t *ulen_out, cairn_buf *scratch,
	const cairn_key *key, unsigned repo_version, cairn_compression mode,
	const void *plain, size_t len)
{
	cairn_buf own_scratch = CAIRN_BUF_INIT;
	cairn_buf *work = scratch ? scratch : &own_scratch;
	const void *payload = plain;
	size_t payload_len = len;
	uint32_t ulen = 0;
	int r = 0;

	*ulen_out = 0;
	cairn_buf_clear(sealed_out);
	if (work == sealed_out) {
		r = cairn_error_set(CAIRN_EINVAL, "blob encode: scratch and output must differ");
		goto out;
	}
	if (len > UINT32_MAX - CAIRN_CRYPTO_OVERHEAD) {
		r = cairn_error_set(CAIRN_EINVAL, "blob of %zu bytes is too large", len);
		goto out;
	}
	/* An empty plaintext is never stored compressed: ulen 0 would read as
	 * "uncompressed" and the frame would be mistaken for the content. */
	if (repo_version >= 2 && mode != CAIRN_COMPRESSION_OFF && len > 0) {
		int skip = 0;
		if (len > PROBE_MIN && (skip = probe_incompressible(work, plain, len)) < 0) {
			r = skip;
			goto out;
		}
		if (!skip && (r = cairn_zstd_compress(work, plain, len,
				cairn_compression_level(mode))) < 0)
			goto out;
		if (!skip && work->len < len) {
			payload = work->data;
			payload_len = work->len;
			ulen = (uint32_t)len;
		}
	}
	if ((r = cairn_buf_reserve(sealed_out, payload_len + CAIRN_CRYPTO_OVERHEAD)) < 0)
		goto out;
	if ((r = cairn_crypto_seal(sealed_out->data, key, payload, payload_len)) < 0)
		goto out;
	sealed_out->len = payload_len + CAIRN_CRYPTO_OVERHEAD;
	*ulen_out = ulen;
out:
	cairn_buf_release(&own_scratch);
	return r;
}

/* out (caller-owned) receives the plaintext; it is left empty on error. */
int cairn_blob_decode(cairn_buf *out, const cairn_key *key, const void *sealed,
	size_t sealed_len, uint32_t ulen, const cairn_id *id)
{
	char hex[CAIRN_ID_HEX_SIZE], got_hex[CAIRN_ID_HEX_SIZE];
	size_t plen;
	cairn_id got;
	int r = 0;

	cairn_id_to_hex(hex, id);
	cairn_buf_clear(out);
	if (sealed_len < CAIRN_CRYPTO_OVERHEAD) {
		r = cairn_error_set(CAIRN_ECORRUPT, "blob '%s' is %zu bytes, shorter than its 32 "
			"crypto bytes", hex, sealed_len);
		goto out;
	}
	plen = sealed_len - CAIRN_CRYPTO_OVERHEAD;
	if (ulen == 0) {
		if ((r = cairn_buf_reserve(out, plen)) < 0)
			goto out;
		if ((r = cairn_crypto_open(out->data, key, sealed, sealed_len)) < 0) {
			r = cairn_error_wrap(CAIRN_ECORRUPT, "blob '%s'", hex);
			goto out;
		}
		out->len = plen;
	} else {
		/* One allocation: decrypt the frame behind the room for the plaintext,
		 * then decompress to the front (the two ranges do not overlap). */
		if (ulen > CAIRN_BUF_MAX || plen > CAIRN_BUF_MAX - ulen) {
			r = cairn_error_set(CAIRN_ECORRUPT, "blob '%s' is too large", hex);
			goto out;
		}
		if ((r = cairn_buf_reserve(out, (size_t)ulen + plen)) < 0)
			goto out;
		if ((r = cairn_crypto_open(out->data + ulen, key, sealed, sealed_len)) < 0) {
			r = cairn_error_wrap(CAIRN_ECORRUPT, "blob '%s'", hex);
			goto out;
		}
		if ((r = cairn_zstd_decompress_exact(out->data, ulen, out->data + ulen, plen)) < 0) {
			r = cairn_error_wrap(CAIRN_ECORRUPT, "blob '%s'", hex);
			goto out;
		}
		out->len = ulen;
	}
	cairn_sha256(&got, out->data, out->len);
	if (!cairn_id_equal(&got, id)) {
		cairn_id_to_hex(got_hex, &got);
		r = cairn_error_set(CAIRN_ECORRUPT, "blob '%s' is damaged: its content hashes to '%s'",
			hex, got_hex);
		goto out;
	}
out:
	if (r < 0)
		cairn_buf_clear(out);
	return r;
}

/* ---- writer ---- */

struct cairn_pack_writer {
	cairn_key key;            /* copy, wiped on free */
	cairn_buf data;           /* memory mode: blobs, then (after finish) header and length */
	cairn_buf header;         /* plaintext header scratch */
	cairn_pack_entry *entries;
	size_t n, cap;
	size_t blobs_len;
	uint64_t file_len;        /* after finish: the whole pack's length */
	int fd;                   /* file mode: the spool file (owned), else -1 */
	cairn_sha256_ctx *hash;   /* file mode: SHA-256 of what was written */
	int finished;
};

/* Write all of buf at the end of the spool file, hashing it. */
static int spool_write(cairn_pack_writer *pw, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t left = len;

	while (left > 0) {
		ssize_t n = write(pw->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cairn_error_set_errno(CAIRN_EIO, errno, "cannot write the pack spool file");
		p += n;
		left -= (size_t)n;
	}
	cairn_sha256_update(pw->hash, buf, len);
	return 0;
}

/* Create a writer sealing with a copy of `key`; free with cairn_pack_writer_free(). */
int cairn_pack_writer_new(cairn_pack_writer **out, const cairn_key *key)
{
	cairn_pack_writer *pw = calloc(1, sizeof(*pw));

	*out = NULL;
	if (!pw)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate a pack writer");
	pw->key = *key;
	pw->fd = -1;
	*out = pw;
	return 0;
}

int cairn_pack_writer_set_file(cairn_pack_writer *pw, int fd)
{
	if (pw->n > 0 || pw->finished || pw->fd >= 0)
		return cairn_error_set(CAIRN_EINVAL, "a pack writer takes a spool file only when empty");
	if (!pw->hash)
		CAIRN_TRY(cairn_sha256_new(&pw->hash));
	pw->fd = fd;
	return 0;
}

int cairn_pack_writer_file(const cairn_pack_writer *pw)
{
	return pw->fd;
}

uint64_t cairn_pack_writer_length(const cairn_pack_writer *pw)
{
	return pw->finished ? pw->file_len : pw->blobs_len;
}

void cairn_pack_writer_free(cairn_pack_writer *pw)
{
	if (!pw)
		return;
	cairn_key_wipe(&pw->key);
	if (pw->fd >= 0)
		close(pw->fd);
	cairn_sha256_free(pw->hash);
	cairn_buf_release(&pw->data);
	cairn_buf_release(&pw->header);
	free(pw->entries);
	free(pw);
}

int cairn_pack_writer_add_sealed(cairn_pack_writer *pw, cairn_blob_type type,
	const cairn_id *id, const void *sealed, size_t sealed_len, uint32_t ulen)
{
	cairn_pack_entry *e;

	if (pw->finished)
		return cairn_error_set(CAIRN_EINVAL, "pack writer is finished; reset it first");
	if (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE)
		return cairn_error_set(CAIRN_EINVAL, "invalid blob type %d", (int)type);
	if (sealed_len < CAIRN_CRYPTO_OVERHEAD)
		return cairn_error_set(CAIRN_EINVAL, "sealed blob of %zu bytes is too short", sealed_len);
	/* offsets and lengths are uint32 in the index */
	if (sealed_len > UINT32_MAX || pw->blobs_len > UINT32_MAX - sealed_len)
		return cairn_error_set(CAIRN_EINVAL, "pack would exceed 4 GiB");
	if (pw->n == pw->cap) {
		size_t cap = pw->cap ? pw->cap * 2 : 256;
		void *p = realloc(pw->entries, cap * sizeof(*pw->entries));
		if (!p)
			return cairn_error_set(CAIRN_ENOMEM, "cannot grow the pack entries");
		pw->entries = p;
		pw->cap = cap;
	}
	if (pw->fd >= 0)
		CAIRN_TRY(spool_write(pw, sealed, sealed_len));
	else
		CAIRN_TRY(cairn_buf_append(&pw->data, sealed, sealed_len));
	e = &pw->entries[pw->n++];
	e->id = *id;
	e->type = type;
	e->offset = (uint32_t)pw->blobs_len;
	e->length = (uint32_t)sealed_len;
	e->uncompressed_length = ulen;
	pw->blobs_len += sealed_len;
	return 0;
}

size_t cairn_pack_writer_size(const cairn_pack_writer *pw)
{
	return pw->blobs_len;
}

size_t cairn_pack_writer_count(const cairn_pack_writer *pw)
{
	return pw->n;
}

int cairn_pack_writer_finish(cairn_id *id_out, cairn_pack_writer *pw)
{
	size_t hlen;
	unsigned char *p;
	int r = 0;

	if (pw->finished)
		return cairn_error_set(CAIRN_EINVAL, "pack writer is already finished");
	if (pw->n == 0)
		return cairn_error_set(CAIRN_EINVAL, "cannot finish an empty pack");
	cairn_buf_clear(&pw->header);
	if ((r = cairn_buf_reserve(&pw->header, pw->n * ENTRY_SIZE_ZSTD)) < 0)
		goto out;
	p = pw->header.data;
	for (size_t i = 0; i < pw->n; i++) {
		const cairn_pack_entry *e = &pw->entries[i];
		if (e->uncompressed_length) {
			*p++ = (unsigned char)(2 + e->type);
			put_le32(p, e->length);
			put_le32(p + 4, e->uncompressed_length);
			p += 8;
		} else {
			*p++ = (unsigned char)e->type;
			put_le32(p, e->length);
			p += 4;
		}
		memcpy(p, e->id.bytes, CAIRN_ID_SIZE);
		p += CAIRN_ID_SIZE;
	}
	pw->header.len = (size_t)(p - pw->header.data);
	hlen = pw->header.len + CAIRN_CRYPTO_OVERHEAD;
	if (hlen > CAIRN_PACK_HEADER_MAX) {
		r = cairn_error_set(CAIRN_EINVAL, "pack header of %zu entries exceeds 16 MiB", pw->n);
		goto out;
	}
	if (pw->fd >= 0) {
		/* seal behind the plaintext in the same scratch buffer, then write */
		size_t plain_len = pw->header.len;
		unsigned char *sealed;
		if ((r = cairn_buf_reserve(&pw->header, hlen + 4)) < 0)
			goto out;
		sealed = pw->header.data + plain_len;
		if ((r = cairn_crypto_seal(sealed, &pw->key, pw->header.data, plain_len)) < 0)
			goto out;
		put_le32(sealed + hlen, (uint32_t)hlen);
		if ((r = spool_write(pw, sealed, hlen + 4)) < 0)
			goto out;
		cairn_sha256_final(id_out, pw->hash);
		pw->file_len = (uint64_t)pw->blobs_len + hlen + 4;
	} else {
		if ((r = cairn_buf_reserve(&pw->data, hlen + 4)) < 0)
			goto out;
		if ((r = cairn_crypto_seal(pw->data.data + pw->data.len, &pw->key, pw->header.data,
			pw->header.len)) < 0)
			goto out;
		put_le32(pw->data.data + pw->data.len + hlen, (uint32_t)hlen);
		pw->data.len += hlen + 4;
		cairn_sha256(id_out, pw->data.data, pw->data.len);
		pw->file_len = pw->data.len;
	}
	pw->finished = 1;
out:
	cairn_buf_clear(&pw->header);
	return r;
}

/* Borrowed from the writer until reset/free.  Before finish it is the blobs
 * written so far. */
const unsigned char *cairn_pack_writer_data(const cairn_pack_writer *pw, size_t *len_out)
{
	*len_out = pw->data.len;
	return pw->data.data;
}

const cairn_pack_entry *cairn_pack_writer_entries(const cairn_pack_writer *pw, size_t *n_out)
{
	*n_out = pw->n;
	return pw->entries;
}

void cairn_pack_writer_reset(cairn_pack_writer *pw)
{
	cairn_buf_clear(&pw->data);
	if (pw->fd >= 0) {
		close(pw->fd);
		pw->fd = -1;
		cairn_sha256_final(&(cairn_id){ { 0 } }, pw->hash); /* resets the context */
	}
	pw->n = 0;
	pw->blobs_len = 0;
	pw->file_len = 0;
	pw->finished = 0;
}

/* ---- reader ---- */

/* On success *entries_out is a malloc'ed array the caller frees with free();
 * on a positive return (tail too short) or an error nothing is allocated. */
int cairn_pack_parse_header(cairn_pack_entry **entries_out, size_t *n_out,
	const cairn_key *key, const unsigned char *tail, size_t tail_len, uint64_t pack_size)
{
	cairn_pack_entry *entries = NULL;
	unsigned char *plain = NULL;
	const unsigned char *p, *end;
	size_t n = 0, plen;
	uint64_t hlen, sum = 0;
	int r = 0;

	if (tail_len > pack_size)
		return cairn_error_set(CAIRN_EINVAL, "pack tail of %zu bytes is longer than the pack (%llu)",
			tail_len, (unsigned long long)pack_size);
	if (pack_size < 4)
		return cairn_error_set(CAIRN_ECORRUPT, "pack of %llu bytes is too short for a header",
			(unsigned long long)pack_size);
	if (tail_len < 4)
		return 4;
	hlen = get_le32(tail + tail_len - 4);
	if (hlen < CAIRN_CRYPTO_OVERHEAD || hlen > CAIRN_PACK_HEADER_MAX || hlen + 4 > pack_size)
		return cairn_error_set(CAIRN_ECORRUPT, "pack header length %llu is impossible in a pack "
			"of %llu bytes", (unsigned long long)hlen, (unsigned long long)pack_size);
	if (tail_len < hlen + 4)
		return (int)(hlen + 4);

	plen = (size_t)hlen - CAIRN_CRYPTO_OVERHEAD;
	if (plen == 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "pack header has no entries");
		goto out;
	}
	if (!(plain = malloc(plen)) || !(entries = calloc(plen / ENTRY_SIZE_PLAIN + 1, sizeof(*entries)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot allocate a pack header of %zu bytes", plen);
		goto out;
	}
	if (cairn_crypto_open(plain, key, tail + tail_len - 4 - hlen, (size_t)hlen) < 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "pack header failed its MAC check (damaged pack or "
			"wrong key)");
		goto out;
	}
	for (p = plain, end = plain + plen; p < end; n++) {
		cairn_pack_entry *e = &entries[n];
		unsigned type = p[0];
		size_t size = type < 2 ? ENTRY_SIZE_PLAIN : ENTRY_SIZE_ZSTD;

		if (type > 3) {
			r = cairn_error_set(CAIRN_ECORRUPT, "pack header entry %zu has unknown type %u", n, type);
			goto out;
		}
		if ((size_t)(end - p) < size) {
			r = cairn_error_set(CAIRN_ECORRUPT, "pack header entry %zu is cut short", n);
			goto out;
		}
		e->type = (cairn_blob_type)(type & 1);
		e->length = get_le32(p + 1);
		e->uncompressed_length = type < 2 ? 0 : get_le32(p + 5);
		memcpy(e->id.bytes, p + size - CAIRN_ID_SIZE, CAIRN_ID_SIZE);
		if (e->length < CAIRN_CRYPTO_OVERHEAD) {
			r = cairn_error_set(CAIRN_ECORRUPT, "pack header entry %zu has length %u, below 32",
				n, (unsigned)e->length);
			goto out;
		}
		if (type >= 2 && e->uncompressed_length == 0) {
			r = cairn_error_set(CAIRN_ECORRUPT, "pack header entry %zu is compressed with "
				"uncompressed length 0", n);
			goto out;
		}
		if (sum > UINT32_MAX) {
			r = cairn_error_set(CAIRN_ECORRUPT, "pack header entry %zu starts beyond 4 GiB", n);
			goto out;
		}
		e->offset = (uint32_t)sum;
		sum += e->length;
		p += size;
	}
	if (sum + hlen + 4 != pack_size) {
		r = cairn_error_set(CAIRN_ECORRUPT, "pack header describes %llu bytes of blobs, but the "
			"pack has %llu bytes before its %llu-byte header", (unsigned long long)sum,
			(unsigned long long)(pack_size - hlen - 4), (unsigned long long)hlen + 4);
		goto out;
	}
	*entries_out = entries;
	*n_out = n;
	entries = NULL;
out:
	free(plain);
	free(entries);
	return r;
}

/* Reads the last min(size, 64 KiB) bytes, and once more if the header is
 * larger.  *entries_out as for cairn_pack_parse_header (caller frees). */
int cairn_pack_load_header(cairn_pack_entry **entries_out, size_t *n_out,
	cairn_backend *be, const cairn_key *key, const cairn_id *pack_id)
{
	cairn_buf tail = CAIRN_BUF_INIT;
	cairn_handle h;
	char hex[CAIRN_ID_HEX_SIZE];
	uint64_t size;
	size_t want;
	int r;

	cairn_id_to_hex(hex, pack_id);
	cairn_handle_set(&h, CAIRN_FILE_PACK, hex);
	if ((r = cairn_backend_stat(&size, be, &h)) < 0)
		goto out;
	if (size < 4) {
		r = cairn_error_set(CAIRN_ECORRUPT, "pack '%s' is %llu bytes, too short for a header",
			hex, (unsigned long long)size);
		goto out;
	}
	want = size < LOAD_TAIL_SIZE ? (size_t)size : LOAD_TAIL_SIZE;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((r = cairn_backend_load(&tail, be, &h, size - want, want)) < 0)
			goto out;
		r = cairn_pack_parse_header(entries_out, n_out, key, tail.data, tail.len, size);
		if (r <= 0)
			break;
		want = (size_t)r; /* the header is larger than the first read */
	}
	if (r > 0)
		r = cairn_error_set(CAIRN_ECORRUPT, "pack '%s' header still incomplete after reading "
			"%zu bytes", hex, want);
	else if (r < 0)
		r = cairn_error_wrap(r, "pack '%s'", hex);
out:
	cairn_buf_release(&tail);
	return r;
}

uint64_t cairn_pack_expected_size(const cairn_pack_entry *entries, size_t n)
{
	uint64_t size = 4 + CAIRN_CRYPTO_OVERHEAD;

	for (size_t i = 0; i < n; i++)
		size += (uint64_t)entries[i].length
			+ (entries[i].uncompressed_length ? ENTRY_SIZE_ZSTD : ENTRY_SIZE_PLAIN);
	return size;
}
