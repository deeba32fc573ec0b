/* index_cache.h: the LMDB database behind a cached cairn_index, and one
 * internal helper of index.c.  Private to the library (repo-format/); the
 * public face is include/cairn/index.h.  The design and its invariants are
 * described at the top of index_cache.c.
 */
#ifndef CAIRN_INDEX_CACHE_H
#define CAIRN_INDEX_CACHE_H

#include <stdint.h>
#include <cairn/index.h>

typedef struct cairn_index_cache cairn_index_cache;

/* Open or create <cache_dir>/<repo id hex>/index.lmdb, deleting and
 * recreating a stale or corrupt one.  Caller frees *out. */
int cairn_index_cache__open(cairn_index_cache **out, const char *cache_dir,
	const cairn_id *repo_id);
void cairn_index_cache__free(cairn_index_cache *c);

/* The database folder (borrowed, lives as long as c). */
const char *cairn_index_cache__path(const cairn_index_cache *c);

/* 1 found (*out filled if out), 0 not found, negative on a damaged entry or a
 * database failure.  Thread-safe. */
int cairn_index_cache__lookup(cairn_blob_location *out, cairn_index_cache *c,
	cairn_blob_type type, const cairn_id *id);

/* Number of entries in the database.  Thread-safe. */
int cairn_index_cache__count(uint64_t *out, cairn_index_cache *c);

/* Walk every database entry with a cursor (key order).  cb's non-zero result
 * stops the walk and is returned.  Thread-safe; cb must not call sync. */
int cairn_index_cache__foreach(cairn_index_cache *c, cairn_index_foreach_cb cb, void *payload);

/* Merge the index files of `files` not merged yet, or rebuild (see
 * cairn_index_sync).  Waits for running lookups and blocks new ones.
 * stats (not NULL, zeroed by the caller) is filled as documented there. */
int cairn_index_cache__sync(cairn_index_cache *c, const cairn_index_file *files, size_t n,
	cairn_index_fetch_cb fetch, void *payload, cairn_index_sync_stats *stats);

/* For repo.c (index.c): visit the entries added with cairn_index_add that
 * the database does not hold — the overlay of a cached index; every entry
 * of an index in memory.  Same contract as cairn_index_foreach. */
int cairn_index__foreach_added(cairn_index *idx, cairn_index_foreach_cb cb, void *payload);

#endif
