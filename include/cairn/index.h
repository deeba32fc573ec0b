/* index.h: the blob index: (type, blob id) -> (pack, offset, length, ulen),
 * and the index-file JSON codec.
 *
 * cairn_index is an in-memory open-addressing hash table, thread-safe (an
 * internal rwlock).  Issue #3 replaces its storage with an LMDB cache behind
 * the same functions.
 */
#ifndef CAIRN_INDEX_H
#define CAIRN_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"
#include "id.h"
#include "pack.h"

typedef struct cairn_blob_location {
	cairn_id pack;
	uint32_t offset;
	uint32_t length;              /* stored length */
	uint32_t uncompressed_length; /* 0 when uncompressed */
} cairn_blob_location;

typedef struct cairn_index cairn_index;

CAIRN_API int cairn_index_new(cairn_index **out);
CAIRN_API void cairn_index_free(cairn_index *idx);

/* Add an entry; if the (type, id) is already known the first location is
 * kept and 0 returned; 1 when it was new. */
CAIRN_API int cairn_index_add(cairn_index *idx, cairn_blob_type type, const cairn_id *id,
	const cairn_blob_location *loc);

/* 1 and *out filled (out may be NULL) when known, 0 when not. */
CAIRN_API int cairn_index_lookup(cairn_blob_location *out, cairn_index *idx,
	cairn_blob_type type, const cairn_id *id);

CAIRN_API size_t cairn_index_count(cairn_index *idx);

/* Visit every entry (under the read lock: cb must not add). Non-zero from cb stops. */
typedef int (*cairn_index_foreach_cb)(cairn_blob_type type, const cairn_id *id,
	const cairn_blob_location *loc, void *payload);
CAIRN_API int cairn_index_foreach(cairn_index *idx, cairn_index_foreach_cb cb, void *payload);

/* Parse one index file's JSON (v2 object form, or the legacy top-level array).
 * For each blob calls cb(pack_id, entry).  A non-zero cb result stops and is
 * returned.  CAIRN_ECORRUPT (message says what) for malformed JSON, bad ids,
 * unknown types or impossible sizes. */
typedef int (*cairn_index_entry_cb)(const cairn_id *pack, const cairn_pack_entry *entry,
	void *payload);
CAIRN_API int cairn_index_parse_json(const char *json, size_t len,
	cairn_index_entry_cb cb, void *payload);

/* Add every entry of an index file's JSON to idx. */
CAIRN_API int cairn_index_add_json(cairn_index *idx, const char *json, size_t len);

/* Accumulates packs for one new index file.  Not thread-safe. */
typedef struct cairn_index_builder cairn_index_builder;
CAIRN_API int cairn_index_builder_new(cairn_index_builder **out);
CAIRN_API void cairn_index_builder_free(cairn_index_builder *b);
/* Copies the entries. */
CAIRN_API int cairn_index_builder_add_pack(cairn_index_builder *b, const cairn_id *pack,
	const cairn_pack_entry *entries, size_t n);
CAIRN_API size_t cairn_index_builder_blob_count(const cairn_index_builder *b);
CAIRN_API size_t cairn_index_builder_pack_count(const cairn_index_builder *b);
/* Compact JSON with trailing newline, as restic writes it; out is replaced. */
CAIRN_API int cairn_index_builder_encode(cairn_buf *out, const cairn_index_builder *b);
CAIRN_API void cairn_index_builder_reset(cairn_index_builder *b);

#endif
