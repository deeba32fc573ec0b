/* index.h: the blob index: (type, blob id) -> (pack, offset, length, ulen),
 * and the index-file JSON codec.
 *
 * A cairn_index comes in two kinds behind the same functions:
 *  - in memory (cairn_index_new): an open-addressing hash table holding every
 *    entry; used by check, by tests, and as the fallback when no cache
 *    directory can be used;
 *  - cached (cairn_index_open_cache): the entries merged from the
 *    repository's index files live in a local LMDB database per repository,
 *    <cache dir>/<repository id hex>/index.lmdb, so memory does not grow with
 *    the repository and a start-up reads only the index files it has not seen.
 *    Entries added with cairn_index_add (the blobs of packs this process
 *    stored) go to a small in-memory overlay and never into the database:
 *    the database only ever holds what index files in the repository say,
 *    so a process that dies before writing its own index file leaves no trace
 *    in it.
 * Both kinds are thread-safe: lookups from many threads run in parallel
 * (a cached lookup costs about a microsecond while the pages it needs are
 * mapped, more when the cache is far larger than the RSS budget of its
 * mapping: see index_cache.c); database lookups wait while
 * cairn_index_sync runs.  One process may open a given cache once at a time.
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

/* Open (creating it if needed) the cached index of repository `repo_id` under
 * the cache directory `cache_dir` (its <repo id hex>/index.lmdb folder).  A
 * stale or corrupt cache (LMDB error, other format version, other repository,
 * failed sanity check, marked damaged) is deleted and created afresh, with an
 * info log line.  The cache starts out as it was left: call cairn_index_sync
 * to bring it up to date with the repository.  CAIRN_EIO when the folder
 * cannot be created or the database cannot be opened.  Caller frees *out
 * with cairn_index_free(). */
CAIRN_API int cairn_index_open_cache(cairn_index **out, const char *cache_dir,
	const cairn_id *repo_id);

/* The database folder of a cached index (borrowed, lives as long as idx), or
 * NULL for an index in memory. */
CAIRN_API const char *cairn_index_cache_path(const cairn_index *idx);

/* Add an entry; if the (type, id) is already known the first location is
 * kept and 0 returned; 1 when it was new.  For a cached index the entry goes
 * to the in-memory overlay of this process only (see above): add only blobs
 * whose pack is completely stored. */
CAIRN_API int cairn_index_add(cairn_index *idx, cairn_blob_type type, const cairn_id *id,
	const cairn_blob_location *loc);

/* 1 and *out filled (out may be NULL) when known, 0 when not.  A cached
 * index may also fail: CAIRN_ECORRUPT when the entry found does not pass its
 * check (the cache is then marked damaged and rebuilt by the next open),
 * CAIRN_EIO on a database error.  Callers that only decide whether to store
 * a blob may treat any result other than 1 as "not known". */
CAIRN_API int cairn_index_lookup(cairn_blob_location *out, cairn_index *idx,
	cairn_blob_type type, const cairn_id *id);

/* Number of distinct (type, id) entries (0 if a cached index cannot be read). */
CAIRN_API size_t cairn_index_count(cairn_index *idx);

/* Visit every entry (cb must not add).  Non-zero from cb stops and is
 * returned; a cached index is walked with a database cursor, so the entries
 * are never all in memory at once (database entries first, in key order,
 * then the overlay). */
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

/* Bringing an index up to date with the repository's index files. */
typedef struct cairn_index_file {
	cairn_id id;                 /* the file's name */
	uint64_t size;               /* its stored size (informational; 0 if unknown) */
} cairn_index_file;

/* Return in *json_out (replaced) the verified JSON of index file `file`:
 * name = SHA-256 of the stored bytes, MAC, decoding, as
 * cairn_repo_load_unpacked does.  Negative on failure (the sync stops). */
typedef int (*cairn_index_fetch_cb)(cairn_buf *json_out, const cairn_id *file, void *payload);

typedef struct cairn_index_sync_stats {
	size_t files_listed;         /* n */
	size_t files_merged;         /* files fetched and merged by this call */
	uint64_t blobs_merged;       /* entries those files listed */
	int rebuilt;                 /* 1 when the cache was emptied and rebuilt */
	int cache_failed;            /* on failure: 1 if the cache failed (not an index file) */
} cairn_index_sync_stats;

/* Bring idx up to date with `files`, the complete listing of the
 * repository's index/ folder (any order, no duplicates).
 *  - cached: fetches and merges only the files the cache has not merged yet
 *    and records them as merged (other processes see the merge once it is
 *    complete; one that dies half-way leaves a cache the next open
 *    rebuilds); if a file the cache merged earlier is no longer listed
 *    (prune removed it, so entries may name deleted packs) the cache is
 *    emptied and rebuilt from all files.  A cache that turns out corrupt is
 *    deleted and rebuilt.
 *  - in memory: adds the files this index has not added yet.
 * An error from fetch, or a malformed file (wrapped with the file's name),
 * stops the sync and is returned; the files merged before it are kept.  A
 * failure of the cache itself is CAIRN_EIO with stats_out->cache_failed set
 * (the caller may fall back to an index in memory).  stats_out may be NULL.
 * Safe beside other calls on idx (database lookups wait for it), but not
 * from inside a cairn_index_foreach callback. */
CAIRN_API int cairn_index_sync(cairn_index *idx, const cairn_index_file *files, size_t n,
	cairn_index_fetch_cb fetch, void *payload, cairn_index_sync_stats *stats_out);

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
