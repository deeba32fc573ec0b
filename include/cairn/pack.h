/* pack.h: pack files: sealed blobs followed by an encrypted header.
 *
 *   blob_1 || ... || blob_n || IV||CTR(header)||MAC || LE32(len of that)
 * header entry: type(1) LE32 len [LE32 ulen if compressed] id(32).
 * Also the blob codec: compress (maybe) + seal, and open + decompress + verify.
 */
#ifndef CAIRN_PACK_H
#define CAIRN_PACK_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"
#include "id.h"
#include "crypto.h"
#include "compress.h"
#include "backend.h"

typedef enum cairn_blob_type {
	CAIRN_BLOB_DATA = 0,
	CAIRN_BLOB_TREE = 1
} cairn_blob_type;

/* "data" / "tree" */
CAIRN_API const char *cairn_blob_type_name(cairn_blob_type t);

typedef struct cairn_pack_entry {
	cairn_id id;                  /* SHA-256 of the plaintext */
	cairn_blob_type type;
	uint32_t offset;              /* in the pack */
	uint32_t length;              /* stored length, incl. 32 crypto bytes */
	uint32_t uncompressed_length; /* 0 when stored uncompressed */
} cairn_pack_entry;

/* Size of the plaintext of a blob described by an entry. */
static inline uint32_t cairn_pack_entry_plain_length(const cairn_pack_entry *e)
{
	return e->uncompressed_length ? e->uncompressed_length : e->length - 32;
}

#define CAIRN_PACK_HEADER_MAX (16u * 1024u * 1024u)
#define CAIRN_PACK_TARGET_SIZE (16u * 1024u * 1024u)

/* Encode a blob for storage: compress `plain` when `mode` says so (trees and
 * data alike), keeping it raw if zstd does not make it smaller, then seal.
 * Above 128 KiB a cheap probe (four 16 KiB samples at zstd level 1) first
 * decides whether compressing is worth it, so incompressible data costs
 * almost no zstd time (see pack.c).  sealed_out is replaced; *ulen_out is
 * the plaintext length if compressed, else 0.  repo_version 1 never
 * compresses.  Thread-safe; `scratch` is a caller-owned work buffer reused
 * across calls. */
CAIRN_API int cairn_blob_encode(cairn_buf *sealed_out, uint32_t *ulen_out, cairn_buf *scratch,
	const cairn_key *key, unsigned repo_version, cairn_compression mode,
	const void *plain, size_t len);

/* Decode a stored blob: check MAC, decrypt, decompress when ulen != 0,
 * check the length and that SHA-256 equals `id`.  out is replaced.
 * CAIRN_ECORRUPT with a message naming the blob on any mismatch. */
CAIRN_API int cairn_blob_decode(cairn_buf *out, const cairn_key *key, const void *sealed,
	size_t sealed_len, uint32_t ulen, const cairn_id *id);

/* Building one pack, in memory or (after cairn_pack_writer_set_file) in a
 * spool file.  Not thread-safe (one owner). */
typedef struct cairn_pack_writer cairn_pack_writer;

CAIRN_API int cairn_pack_writer_new(cairn_pack_writer **out, const cairn_key *key);
CAIRN_API void cairn_pack_writer_free(cairn_pack_writer *pw);
/* Append an already sealed blob (from cairn_blob_encode). */
CAIRN_API int cairn_pack_writer_add_sealed(cairn_pack_writer *pw, cairn_blob_type type,
	const cairn_id *id, const void *sealed, size_t sealed_len, uint32_t ulen);
/* Bytes so far (blobs only) and number of blobs. */
CAIRN_API size_t cairn_pack_writer_size(const cairn_pack_writer *pw);
CAIRN_API size_t cairn_pack_writer_count(const cairn_pack_writer *pw);
/* Append the header; the pack is then complete.  Fills *id_out with the
 * SHA-256 of the whole file. CAIRN_EINVAL if empty. */
CAIRN_API int cairn_pack_writer_finish(cairn_id *id_out, cairn_pack_writer *pw);
/* After finish: the file bytes and the entries (borrowed until reset/free). */
CAIRN_API const unsigned char *cairn_pack_writer_data(const cairn_pack_writer *pw, size_t *len_out);
CAIRN_API const cairn_pack_entry *cairn_pack_writer_entries(const cairn_pack_writer *pw, size_t *n_out);
/* Spool this pack into `fd` (an empty read-write file; see
 * cairn_backend_spool_open) instead of memory: blobs are written to it as
 * they are added and the file's SHA-256 is computed on the way, so memory
 * does not grow with the pack.  Only on an empty writer (new or reset).
 * The writer owns fd from then on: reset and free close it.  In file mode
 * cairn_pack_writer_data gives nothing (len 0). */
CAIRN_API int cairn_pack_writer_set_file(cairn_pack_writer *pw, int fd);
/* The spool file descriptor (borrowed), or -1 in memory mode. */
CAIRN_API int cairn_pack_writer_file(const cairn_pack_writer *pw);
/* After finish: the whole pack's length (blobs, header, length field);
 * before: the blobs' length. */
CAIRN_API uint64_t cairn_pack_writer_length(const cairn_pack_writer *pw);
/* Empty it for the next pack, keeping memory; a spool file is closed and
 * the writer is back in memory mode. */
CAIRN_API void cairn_pack_writer_reset(cairn_pack_writer *pw);

/* Parse the header of a pack of `pack_size` bytes from its last `tail_len`
 * bytes.  If the tail is too short to hold the whole header, returns
 * returns the number of tail bytes needed (> tail_len)
 * as a positive value and sets nothing.  On success returns 0 and *entries_out
 * (caller frees with free()) holds *n_out entries with offsets computed.
 * CAIRN_ECORRUPT for a bad length, MAC, entry type or sizes that do not add up. */
CAIRN_API int cairn_pack_parse_header(cairn_pack_entry **entries_out, size_t *n_out,
	const cairn_key *key, const unsigned char *tail, size_t tail_len, uint64_t pack_size);

/* Stat and read the pack's tail from the backend and parse its header.
 * Caller frees *entries_out with free(). */
CAIRN_API int cairn_pack_load_header(cairn_pack_entry **entries_out, size_t *n_out,
	cairn_backend *be, const cairn_key *key, const cairn_id *pack_id);

/* Expected file size from entries: 4 + 32 + sum(len) + sum(37 or 41). */
CAIRN_API uint64_t cairn_pack_expected_size(const cairn_pack_entry *entries, size_t n);

#endif
