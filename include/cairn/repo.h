/* repo.h: an open repository: config, master key, index, unpacked files,
 * and saving/loading blobs.
 *
 * Durability: cairn_repo_save_blob() fills packs in memory; a full pack is
 * stored completely before any index entry names it; cairn_repo_flush()
 * stores the open packs, then an index file for every stored pack not yet
 * indexed.  A snapshot is saved only after flush.  Save/load of blobs and
 * lookups are thread-safe.
 */
#ifndef CAIRN_REPO_H
#define CAIRN_REPO_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"
#include "id.h"
#include "crypto.h"
#include "compress.h"
#include "backend.h"
#include "pack.h"
#include "index.h"
#include "snapshot.h"

typedef struct cairn_config {
	unsigned version;            /* 1 or 2 */
	cairn_id id;                 /* repository id */
	uint64_t chunker_polynomial;
} cairn_config;

typedef struct cairn_repo cairn_repo;

typedef struct cairn_repo_init_options {
	int version;                 /* of this struct: 1 */
	unsigned repo_version;       /* 2 (default) or 1 */
	uint64_t chunker_polynomial; /* 0: draw a random one */
	uint64_t kdf_n;              /* scrypt N, default 32768 */
	uint32_t kdf_r, kdf_p;       /* default 8, 1 */
} cairn_repo_init_options;
#define CAIRN_REPO_INIT_OPTIONS_INIT { 1, 2, 0, 32768, 8, 1 }

/* Create a repository: layout, config, one key file for `password`.
 * The backend is borrowed and must outlive the repo.  CAIRN_EEXISTS if a
 * config already exists.  Caller frees *out with cairn_repo_free(). */
CAIRN_API int cairn_repo_init(cairn_repo **out, cairn_backend *be, const char *password,
	size_t password_len, const cairn_repo_init_options *opts);

/* Open: try key files (at most 20) until one opens with the password; read
 * and check the config.  CAIRN_EAUTH "wrong password or no key found" when
 * none opens; CAIRN_ENOTFOUND when there is no repository (no config).  The
 * index is not loaded yet (see cairn_repo_load_index). */
CAIRN_API int cairn_repo_open(cairn_repo **out, cairn_backend *be, const char *password,
	size_t password_len);

/* Flushes nothing: call cairn_repo_flush() first.  NULL is a no-op. */
CAIRN_API void cairn_repo_free(cairn_repo *repo);

/* Borrowed, valid while the repo lives. */
CAIRN_API const cairn_config *cairn_repo_config(const cairn_repo *repo);
CAIRN_API const cairn_key *cairn_repo_key(const cairn_repo *repo);
CAIRN_API cairn_backend *cairn_repo_backend(cairn_repo *repo);
CAIRN_API cairn_index *cairn_repo_index(cairn_repo *repo);
/* The id of the key file that opened the repository (hex). */
CAIRN_API const char *cairn_repo_key_name(const cairn_repo *repo);

/* Keep the blob index in a local cache under `dir` (its <repository id
 * hex>/index.lmdb, see index.h) instead of in memory; NULL: in memory (the
 * default).  Takes effect at the next cairn_repo_load_index.  The string is
 * copied. */
CAIRN_API int cairn_repo_set_cache_dir(cairn_repo *repo, const char *dir);

/* Write settings (before saving blobs). */
CAIRN_API void cairn_repo_set_compression(cairn_repo *repo, cairn_compression mode);
CAIRN_API void cairn_repo_set_pack_size(cairn_repo *repo, size_t bytes);

/* --- unpacked files: config-less encrypted JSON (index, snapshot, lock) --- */

/* Load, check the name is SHA-256 of the stored bytes, check the MAC,
 * decode (raw JSON or 0x02+zstd).  out replaced; JSON is NUL-terminated via
 * cairn_buf_cstr.  CAIRN_ECORRUPT names the file. */
CAIRN_API int cairn_repo_load_unpacked(cairn_buf *out, cairn_repo *repo, cairn_file_type type,
	const cairn_id *id);
/* Decode stored bytes (MAC, decrypt, 0x02/raw) without the name check. */
CAIRN_API int cairn_repo_decode_unpacked(cairn_buf *out, const cairn_repo *repo,
	const void *stored, size_t len);
/* Encrypt (v2: 0x02 + zstd) and store under SHA-256 of the stored bytes. */
CAIRN_API int cairn_repo_save_unpacked(cairn_id *id_out, cairn_repo *repo, cairn_file_type type,
	const void *plain, size_t len);

/* --- index --- */

/* Bring the index up to date with the repository's index files: with a
 * cache dir, open the cached index and merge only the index files it has not
 * seen (a cache that cannot be used gives a warning and an index in memory);
 * without, read every index file into memory.  Entries added before (blobs
 * of packs stored in this session) are kept.  An unreadable or corrupt
 * index file is an error that names it.  Not concurrently with saving or
 * loading blobs (the index object may be replaced: re-fetch
 * cairn_repo_index() afterwards). */
CAIRN_API int cairn_repo_load_index(cairn_repo *repo);

/* --- blobs --- */

/* 1 if the blob is in the index or already queued in this session. */
CAIRN_API int cairn_repo_has_blob(cairn_repo *repo, cairn_blob_type type, const cairn_id *id);

/* Load a blob's verified plaintext (out replaced).  CAIRN_ENOTFOUND if not in
 * the index; CAIRN_ECORRUPT naming pack and blob if it does not verify. */
CAIRN_API int cairn_repo_load_blob(cairn_buf *out, cairn_repo *repo, cairn_blob_type type,
	const cairn_id *id);

/* Save a blob unless the repository already has it.  `id` may be NULL (it
 * is computed).  *id_out (may be NULL) gets the id; *added_out (may be NULL)
 * is 1 when new data was written, 0 for a duplicate.  Compresses and seals
 * in the caller's thread; stores a pack when it is full. */
CAIRN_API int cairn_repo_save_blob(cairn_id *id_out, int *added_out, cairn_repo *repo,
	cairn_blob_type type, const void *data, size_t len, const cairn_id *id);

/* Store open packs, then index files naming every stored pack not yet in
 * an index file. */
CAIRN_API int cairn_repo_flush(cairn_repo *repo);

typedef struct cairn_repo_stats {
	uint64_t blobs_added, blobs_duplicate;
	uint64_t data_added_plain;   /* plaintext bytes of new blobs */
	uint64_t data_added_stored;  /* stored bytes of new blobs (after zstd + crypto) */
	uint64_t packs_written, index_files_written;
} cairn_repo_stats;
CAIRN_API void cairn_repo_get_stats(cairn_repo *repo, cairn_repo_stats *out);

/* --- snapshots --- */

/* Load and decode one snapshot (its id is set). */
CAIRN_API int cairn_repo_load_snapshot(cairn_snapshot *out, cairn_repo *repo, const cairn_id *id);
/* Encode and save; sets s->id. */
CAIRN_API int cairn_repo_save_snapshot(cairn_repo *repo, cairn_snapshot *s);
/* Load all snapshots, sorted by time (oldest first).  Caller frees with
 * cairn_snapshot_list_free. A corrupt snapshot file fails with its name. */
CAIRN_API int cairn_repo_list_snapshots(cairn_snapshot **out, size_t *n_out, cairn_repo *repo);
CAIRN_API void cairn_snapshot_list_free(cairn_snapshot *list, size_t n);
/* Resolve a full id or a unique prefix (>= 1 hex char) of a snapshot file name. */
CAIRN_API int cairn_repo_find_snapshot(cairn_id *out, cairn_repo *repo, const char *prefix);

/* --- config and key files (codecs, used by init/open and tests) --- */
CAIRN_API int cairn_config_encode(cairn_buf *out, const cairn_config *cfg);
CAIRN_API int cairn_config_decode(cairn_config *out, const char *json, size_t len);

/* A key file JSON sealing `master` under scrypt(password). */
CAIRN_API int cairn_keyfile_create(cairn_buf *out, const cairn_key *master, const char *password,
	size_t password_len, uint64_t n, uint32_t r, uint32_t p, const char *username,
	const char *hostname);
/* Open a key file.  CAIRN_EAUTH if the password does not open it,
 * CAIRN_ECORRUPT/EINVAL if the file is malformed. */
CAIRN_API int cairn_keyfile_open(cairn_key *master_out, const char *json, size_t len,
	const char *password, size_t password_len);

#endif
