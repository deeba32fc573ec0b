/* repo.c: an open repository (include/cairn/repo.h).
 *
 * A cairn_repo ties a borrowed backend to the repository's master key, its
 * config and the blob index (in memory, or cached in a local LMDB database
 * when a cache dir is set: index.h, index_cache.c; blobs of packs stored in
 * this session are only ever in memory), and implements everything that needs
 * the key: "unpacked" files (index, snapshot, lock: IV||CTR||MAC of raw JSON
 * or, in v2, of 0x02||zstd(JSON), named by SHA-256 of the stored bytes), the
 * config (always raw JSON, never compressed), blobs in packs, and snapshots.
 *
 * Writing blobs.  cairn_repo_save_blob() may be called from many threads.
 * The dedup decision is one atomic step: a blob is new only if it is neither
 * in the index nor in `reserved`, the set of (type, id) saved during this
 * session, and it is inserted into `reserved` under the same mutex hold that
 * found it missing.  So two threads never both store a blob.  Compression and
 * sealing run in the caller's thread without the mutex, in work buffers
 * borrowed from a small free list in the repo; only the append to
 * the open pack writer of that blob type (data and tree blobs go to separate
 * packs) is serialised, under that type's own writer mutex.
 *
 * Packs are spooled: each open pack writes its blobs into an anonymous
 * temp file from cairn_backend_spool_open (for a local repository, inside
 * it, so storing is a link, not a copy), so memory does not grow with the
 * pack size or the number of uploads in flight.  If no spool file can be
 * made, packs are built in memory instead.  A full writer is taken out and
 * handed to a bounded upload queue served by uploader threads (as many as
 * the backend's useful connections, started on the first full pack); a
 * saving thread blocks while the queue is full, which bounds the work (and
 * disk) in flight.
 *
 * Durability order, the invariant everything here protects:
 *   1. a pack is stored completely (backend save: temp, fsync, rename)
 *      before any of its blobs enters the in-memory index or the pending
 *      index builder, so no index file can ever name a pack that was not
 *      fully stored;
 *   2. an index file is written only for packs that are stored;
 *   3. callers save a snapshot only after cairn_repo_flush() returned 0.
 * A crash therefore leaves at worst packs no index names (prune's job).
 * Blobs stay in `reserved` for the whole session, including after their
 * pack is stored, because the index only learns about them at that point.
 *
 * Index files are written when 50,000 blobs are pending, when the oldest
 * pending pack is five minutes old (so that the next run after a crash
 * finds and reuses what was uploaded), and at flush.
 *
 * Failure is sticky: once a pack or index upload fails, blobs that other
 * threads were told are duplicates may be lost, so every later save_blob and
 * flush fails with the first error and no snapshot can be written on top of
 * it.  The caller must start a new session (open the repository again).
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cairn/chunker.h>
#include <cairn/log.h>
#include <cairn/repo.h>
#include "index_cache.h"

#define MAX_KEYS_TRIED 20                          /* as restic */
#define UNPACKED_MAX ((size_t)1 << 30)             /* decoded index/snapshot/lock JSON */
#define INDEX_AUTO_BLOBS 50000                     /* start a new index file after this many */
#define INDEX_AUTO_SECONDS 300                     /* ... or when its oldest pack is this old, so
                                                    * a killed backup's next run reuses the packs */
#define PACK_SIZE_MAX ((size_t)128 * 1024 * 1024)  /* restic's --pack-size upper bound */
#define BLOB_MAX ((size_t)1 << 30)                 /* pack offsets are 32-bit */
#define SPARE_WRITERS 2
#define UPLOADERS_MAX 16                           /* upload threads, whatever the backend says */
#define SPARE_SCRATCH 16                           /* encode buffers kept for reuse */
#define SCRATCH_KEEP ((size_t)2 << 20)             /* ... each at most this large: a rare
                                                    * big chunk's buffers are given back */

static time_t monotonic_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* --- the set of blobs saved in this session -------------------------------- */

/* Open addressing with linear probing; ids are SHA-256 so their first bytes
 * are already a good hash.  Not locked: the repo mutex protects it. */
typedef struct blob_key {
	cairn_id id;
	unsigned char type;
	unsigned char used;
} blob_key;

typedef struct blob_set {
	blob_key *slots;
	size_t cap; /* power of two or 0 */
	size_t count;
} blob_set;

static size_t blob_hash(const cairn_id *id, cairn_blob_type type)
{
	uint64_t h;
	memcpy(&h, id->bytes, sizeof(h));
	return (size_t)(h ^ (uint64_t)type * 0x9e3779b97f4a7c15ULL);
}

static size_t set_find(const blob_set *s, cairn_blob_type type, const cairn_id *id)
{
	size_t mask = s->cap - 1, i = blob_hash(id, type) & mask;
	while (s->slots[i].used &&
		!(s->slots[i].type == (unsigned char)type && cairn_id_equal(&s->slots[i].id, id)))
		i = (i + 1) & mask;
	return i;
}

static int set_contains(const blob_set *s, cairn_blob_type type, const cairn_id *id)
{
	return s->cap && s->slots[set_find(s, type, id)].used;
}

/* Insert (the caller checked it is absent).  CAIRN_ENOMEM on failure. */
static int set_insert(blob_set *s, cairn_blob_type type, const cairn_id *id)
{
	size_t i;
	if ((s->count + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		blob_set grown = { calloc(ncap, sizeof(blob_key)), ncap, 0 };
		if (!grown.slots)
			return cairn_error_set(CAIRN_ENOMEM, "out of memory for the set of saved blobs");
		for (size_t k = 0; k < s->cap; k++) {
			if (s->slots[k].used) {
				grown.slots[set_find(&grown, s->slots[k].type, &s->slots[k].id)] = s->slots[k];
				grown.count++;
			}
		}
		free(s->slots);
		*s = grown;
	}
	i = set_find(s, type, id);
	s->slots[i].id = *id;
	s->slots[i].type = (unsigned char)type;
	s->slots[i].used = 1;
	s->count++;
	return 0;
}

/* Remove with backward shift, so probe chains stay unbroken without tombstones. */
static void set_remove(blob_set *s, cairn_blob_type type, const cairn_id *id)
{
	size_t mask, i, j;
	if (!s->cap)
		return;
	mask = s->cap - 1;
	i = set_find(s, type, id);
	if (!s->slots[i].used)
		return;
	s->slots[i].used = 0;
	s->count--;
	for (j = (i + 1) & mask; s->slots[j].used; j = (j + 1) & mask) {
		size_t home = blob_hash(&s->slots[j].id, s->slots[j].type) & mask;
		/* move j into the hole at i unless its home lies cyclically in (i, j] */
		int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			s->slots[i] = s->slots[j];
			s->slots[j].used = 0;
			i = j;
		}
	}
}

/* --- the repository -------------------------------------------------------- */

/* Work buffers for encoding one blob, lent to a saving thread for one call
 * and returned to the repo's free list, so the hot path does not allocate
 * chunk-sized buffers per blob. */
typedef struct scratch {
	cairn_buf sealed, work;
	struct scratch *next;
} scratch;

struct cairn_repo {
	cairn_backend *be;          /* borrowed */
	cairn_config config;
	cairn_key key;              /* master key, wiped on free */
	char key_name[CAIRN_ID_HEX_SIZE];
	cairn_index *index;         /* thread-safe on its own; replaced only by load_index */
	char *cache_dir;            /* where the index is cached; NULL: in memory */
	int cache_failed;           /* the cache could not be used: stay in memory */
	cairn_compression compression;
	size_t pack_size;

	/* The open pack per blob type, each under its own mutex (never taken
	 * while holding mu). */
	pthread_mutex_t writer_mu[2];
	cairn_pack_writer *writer[2];

	/* Upload queue and threads, under mu. */
	cairn_pack_writer *queue[UPLOADERS_MAX];
	size_t queue_head, queue_len, queue_cap;
	pthread_cond_t queue_ready, queue_space;
	pthread_t uploaders[UPLOADERS_MAX];
	int n_uploaders;
	int uploaders_tried;        /* starting them was attempted (0 threads: store inline) */
	int uploaders_stop;
	int spool_failed;           /* no spool file could be made: packs in memory */

	/* Write state, all under mu. */
	pthread_mutex_t mu;
	pthread_cond_t idle;        /* signalled when busy drops */
	blob_set reserved;
	cairn_pack_writer *spare[SPARE_WRITERS];
	cairn_index_builder *builder;          /* stored packs not yet in an index file */
	time_t builder_since;                  /* monotonic seconds when its first pack came */
	scratch *free_scratch;
	size_t n_free_scratch;
	int busy;                   /* packs queued or being stored, index uploads */
	int write_error;            /* sticky, see the file comment */
	char write_error_msg[512];
	cairn_repo_stats stats;
};

static void stop_uploaders(cairn_repo *repo);

static int repo_new(cairn_repo **out, cairn_backend *be)
{
	cairn_repo *repo = calloc(1, sizeof(*repo));
	int r = 0;

	if (!repo)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	repo->be = be;
	repo->compression = CAIRN_COMPRESSION_AUTO;
	repo->pack_size = CAIRN_PACK_TARGET_SIZE;
	if (pthread_mutex_init(&repo->mu, NULL) != 0) {
		free(repo);
		return cairn_error_set(CAIRN_ENOMEM, "cannot create a mutex");
	}
	if (pthread_cond_init(&repo->idle, NULL) != 0) {
		pthread_mutex_destroy(&repo->mu);
		free(repo);
		return cairn_error_set(CAIRN_ENOMEM, "cannot create a condition variable");
	}
	/* default attributes: these cannot fail on Linux (glibc returns 0) */
	pthread_cond_init(&repo->queue_ready, NULL);
	pthread_cond_init(&repo->queue_space, NULL);
	pthread_mutex_init(&repo->writer_mu[0], NULL);
	pthread_mutex_init(&repo->writer_mu[1], NULL);
	if ((r = cairn_index_new(&repo->index)) < 0)
		goto out;
	if ((r = cairn_index_builder_new(&repo->builder)) < 0)
		goto out;
	*out = repo;
	repo = NULL;
out:
	cairn_repo_free(repo);
	return r;
}

void cairn_repo_free(cairn_repo *repo)
{
	if (!repo)
		return;
	stop_uploaders(repo);
	for (int t = 0; t < 2; t++)
		cairn_pack_writer_free(repo->writer[t]);
	for (int k = 0; k < SPARE_WRITERS; k++)
		cairn_pack_writer_free(repo->spare[k]);
	cairn_index_builder_free(repo->builder);
	while (repo->free_scratch) {
		scratch *next = repo->free_scratch->next;
		cairn_buf_release(&repo->free_scratch->sealed);
		cairn_buf_release(&repo->free_scratch->work);
		free(repo->free_scratch);
		repo->free_scratch = next;
	}
	cairn_index_free(repo->index);
	free(repo->cache_dir);
	free(repo->reserved.slots);
	cairn_key_wipe(&repo->key);
	pthread_cond_destroy(&repo->idle);
	pthread_cond_destroy(&repo->queue_ready);
	pthread_cond_destroy(&repo->queue_space);
	pthread_mutex_destroy(&repo->writer_mu[0]);
	pthread_mutex_destroy(&repo->writer_mu[1]);
	pthread_mutex_destroy(&repo->mu);
	free(repo);
}

const cairn_config *cairn_repo_config(const cairn_repo *repo) { return &repo->config; }
const cairn_key *cairn_repo_key(const cairn_repo *repo) { return &repo->key; }
cairn_backend *cairn_repo_backend(cairn_repo *repo) { return repo->be; }
cairn_index *cairn_repo_index(cairn_repo *repo) { return repo->index; }
const char *cairn_repo_key_name(const cairn_repo *repo) { return repo->key_name; }

int cairn_repo_set_cache_dir(cairn_repo *repo, const char *dir)
{
	char *copy = NULL;

	if (dir && !(copy = strdup(dir)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	free(repo->cache_dir);
	repo->cache_dir = copy;
	repo->cache_failed = 0;
	return 0;
}

void cairn_repo_set_compression(cairn_repo *repo, cairn_compression mode)
{
	pthread_mutex_lock(&repo->mu);
	repo->compression = mode;
	pthread_mutex_unlock(&repo->mu);
}

/* 0 means the default; larger than restic's 128 MiB maximum is clamped. */
void cairn_repo_set_pack_size(cairn_repo *repo, size_t bytes)
{
	if (bytes == 0)
		bytes = CAIRN_PACK_TARGET_SIZE;
	if (bytes > PACK_SIZE_MAX)
		bytes = PACK_SIZE_MAX;
	pthread_mutex_lock(&repo->mu);
	repo->pack_size = bytes;
	pthread_mutex_unlock(&repo->mu);
}

void cairn_repo_get_stats(cairn_repo *repo, cairn_repo_stats *out)
{
	pthread_mutex_lock(&repo->mu);
	*out = repo->stats;
	pthread_mutex_unlock(&repo->mu);
}

/* Record the first failure of a background-ish write (mu held). */
static void set_write_error_locked(cairn_repo *repo, int code)
{
	if (repo->write_error)
		return;
	repo->write_error = code;
	snprintf(repo->write_error_msg, sizeof(repo->write_error_msg), "%s", cairn_error_message());
}

/* CAIRN error if an earlier write failed (mu held). */
static int check_write_error_locked(cairn_repo *repo)
{
	if (!repo->write_error)
		return 0;
	return cairn_error_set(repo->write_error, "an earlier write to the repository failed: %s",
		repo->write_error_msg);
}

/* --- listing helpers --------------------------------------------------------- */

typedef struct id_list {
	cairn_id *ids;
	size_t n, cap;
	int error;
} id_list;

static int collect_id(const char *name, uint64_t size, void *payload)
{
	id_list *l = payload;
	(void)size;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		cairn_id *p = realloc(l->ids, ncap * sizeof(*p));
		if (!p) {
			l->error = cairn_error_set(CAIRN_ENOMEM, "out of memory listing files");
			return 1;
		}
		l->ids = p;
		l->cap = ncap;
	}
	if (cairn_id_from_hex(&l->ids[l->n], name) < 0)
		return 0; /* the backend only passes hex names; be tolerant anyway */
	l->n++;
	return 0;
}

static int id_compare(const void *a, const void *b)
{
	return memcmp(a, b, CAIRN_ID_SIZE);
}

/* All ids of one file type, sorted.  *out (free()) owned by the caller. */
static int list_ids(cairn_id **out, size_t *n_out, cairn_backend *be, cairn_file_type type)
{
	id_list l = { NULL, 0, 0, 0 };
	int r = cairn_backend_list(be, type, collect_id, &l);

	if (l.error)
		r = l.error;
	if (r < 0) {
		r = cairn_error_wrap(r, "cannot list %s files", cairn_file_type_name(type));
		free(l.ids);
		return r;
	}
	if (l.n)
		qsort(l.ids, l.n, sizeof(*l.ids), id_compare);
	*out = l.ids;
	*n_out = l.n;
	return 0;
}

/* --- config and keys --------------------------------------------------------- */

/* Seal the raw config JSON (never compressed, §4) and store it. */
static int save_config(cairn_repo *repo)
{
	cairn_buf json = CAIRN_BUF_INIT, sealed = CAIRN_BUF_INIT;
	cairn_handle h;
	int r;

	if ((r = cairn_config_encode(&json, &repo->config)) < 0)
		goto out;
	if ((r = cairn_crypto_seal_buf(&sealed, &repo->key, json.data, json.len)) < 0)
		goto out;
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	if ((r = cairn_backend_save(repo->be, &h, sealed.data, sealed.len)) < 0)
		r = cairn_error_wrap(r, "cannot save the config of '%s'", cairn_backend_location(repo->be));
out:
	cairn_buf_release(&json);
	cairn_buf_release(&sealed);
	return r;
}

/* Load, open and check the config with the master key already in repo. */
static int load_config(cairn_repo *repo)
{
	cairn_buf stored = CAIRN_BUF_INIT, json = CAIRN_BUF_INIT;
	cairn_handle h;
	const char *loc = cairn_backend_location(repo->be);
	int r;

	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	if ((r = cairn_backend_load(&stored, repo->be, &h, 0, 0)) < 0) {
		r = cairn_error_wrap(r, "cannot read the config of '%s'", loc);
		goto out;
	}
	if ((r = cairn_crypto_open_buf(&json, &repo->key, stored.data, stored.len)) < 0) {
		r = cairn_error_wrap(CAIRN_ECORRUPT, "config of '%s' cannot be decrypted", loc);
		goto out;
	}
	if ((r = cairn_config_decode(&repo->config, (const char *)json.data, json.len)) < 0) {
		r = cairn_error_wrap(r, "config of '%s'", loc);
		goto out;
	}
	if (repo->config.version != 1 && repo->config.version != 2) {
		r = cairn_error_set(CAIRN_EUNSUPPORTED, "repository '%s' has unsupported version %u",
			loc, repo->config.version);
		goto out;
	}
	if (!cairn_polynomial_irreducible(repo->config.chunker_polynomial)) {
		r = cairn_error_set(CAIRN_ECORRUPT, "config of '%s': invalid chunker polynomial", loc);
		goto out;
	}
out:
	cairn_buf_release(&stored);
	cairn_buf_wipe(&json);
	return r;
}

/* Does the config exist?  1 yes, 0 no, negative on a real error. */
static int config_exists(cairn_backend *be)
{
	cairn_handle h;
	uint64_t size;
	int r;

	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	r = cairn_backend_stat(&size, be, &h);
	if (r == CAIRN_ENOTFOUND) {
		cairn_error_clear();
		return 0;
	}
	if (r < 0)
		return cairn_error_wrap(r, "cannot check for a repository at '%s'", cairn_backend_location(be));
	return 1;
}

static void current_user(char *out, size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	out[0] = '\0';
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
		snprintf(out, size, "%s", res->pw_name);
}

static void current_host(char *out, size_t size)
{
	if (gethostname(out, size) != 0)
		out[0] = '\0';
	out[size - 1] = '\0';
}

int cairn_repo_init(cairn_repo **out, cairn_backend *be, const char *password,
	size_t password_len, const cairn_repo_init_options *opts)
{
	cairn_repo_init_options o = CAIRN_REPO_INIT_OPTIONS_INIT;
	cairn_repo *repo = NULL;
	cairn_buf keyfile = CAIRN_BUF_INIT;
	cairn_handle h;
	cairn_id key_id;
	char user[256], host[256];
	const char *loc = cairn_backend_location(be);
	int r;

	if (opts)
		o = *opts;
	if (o.repo_version == 0)
		o.repo_version = 2;
	if (o.kdf_n == 0)
		o.kdf_n = 32768;
	if (o.kdf_r == 0)
		o.kdf_r = 8;
	if (o.kdf_p == 0)
		o.kdf_p = 1;
	if (o.repo_version != 1 && o.repo_version != 2)
		return cairn_error_set(CAIRN_EINVAL, "repository version %u is not supported", o.repo_version);
	if (o.chunker_polynomial && !cairn_polynomial_irreducible(o.chunker_polynomial))
		return cairn_error_set(CAIRN_EINVAL, "chunker polynomial %llx is not irreducible",
			(unsigned long long)o.chunker_polynomial);

	if ((r = config_exists(be)) < 0)
		goto out;
	if (r == 1) {
		r = cairn_error_set(CAIRN_EEXISTS, "repository at '%s' already exists", loc);
		goto out;
	}
	if ((r = cairn_backend_create(be)) < 0) {
		if (r == CAIRN_EEXISTS)
			r = cairn_error_set(CAIRN_EEXISTS, "repository at '%s' already exists", loc);
		else
			r = cairn_error_wrap(r, "cannot create a repository at '%s'", loc);
		goto out;
	}
	if ((r = repo_new(&repo, be)) < 0)
		goto out;
	repo->config.version = o.repo_version;
	if ((r = cairn_random_bytes(repo->config.id.bytes, CAIRN_ID_SIZE)) < 0)
		goto out;
	repo->config.chunker_polynomial = o.chunker_polynomial;
	if (!o.chunker_polynomial && (r = cairn_polynomial_random(&repo->config.chunker_polynomial)) < 0)
		goto out;
	if ((r = cairn_key_generate(&repo->key)) < 0)
		goto out;

	/* Key file first, config last: the config is what makes a folder a
	 * repository, so a crash in between leaves no half-made repository. */
	current_user(user, sizeof(user));
	current_host(host, sizeof(host));
	if ((r = cairn_keyfile_create(&keyfile, &repo->key, password, password_len, o.kdf_n,
			o.kdf_r, o.kdf_p, user, host)) < 0)
		goto out;
	cairn_sha256(&key_id, keyfile.data, keyfile.len);
	cairn_id_to_hex(repo->key_name, &key_id);
	cairn_handle_set(&h, CAIRN_FILE_KEY, repo->key_name);
	if ((r = cairn_backend_save(be, &h, keyfile.data, keyfile.len)) < 0) {
		r = cairn_error_wrap(r, "cannot save key file '%s'", repo->key_name);
		goto out;
	}
	if ((r = save_config(repo)) < 0)
		goto out;
	*out = repo;
	repo = NULL;
out:
	cairn_buf_release(&keyfile);
	cairn_repo_free(repo);
	return r;
}

int cairn_repo_open(cairn_repo **out, cairn_backend *be, const char *password,
	size_t password_len)
{
	cairn_repo *repo = NULL;
	cairn_id *keys = NULL;
	size_t n_keys = 0, tried = 0;
	cairn_buf keyfile = CAIRN_BUF_INIT;
	const char *loc = cairn_backend_location(be);
	int r, found = 0;

	if ((r = config_exists(be)) < 0)
		goto out;
	if (r == 0) {
		r = cairn_error_set(CAIRN_ENOTFOUND, "no repository at '%s'", loc);
		goto out;
	}
	if ((r = repo_new(&repo, be)) < 0)
		goto out;
	if ((r = list_ids(&keys, &n_keys, be, CAIRN_FILE_KEY)) < 0)
		goto out;

	for (size_t i = 0; i < n_keys && tried < MAX_KEYS_TRIED && !found; i++) {
		char name[CAIRN_ID_HEX_SIZE];
		cairn_handle h;

		cairn_id_to_hex(name, &keys[i]);
		cairn_handle_set(&h, CAIRN_FILE_KEY, name);
		r = cairn_backend_load(&keyfile, be, &h, 0, 0);
		if (r == CAIRN_ENOTFOUND)
			continue; /* removed since listing */
		if (r < 0) {
			/* an I/O failure is not a wrong password: say so */
			r = cairn_error_wrap(r, "cannot read key file '%s'", name);
			goto out;
		}
		tried++;
		r = cairn_keyfile_open(&repo->key, (const char *)keyfile.data, keyfile.len,
			password, password_len);
		if (r == 0) {
			snprintf(repo->key_name, sizeof(repo->key_name), "%s", name);
			found = 1;
		} else if (r == CAIRN_EAUTH) {
			continue;
		} else if (r == CAIRN_ENOMEM) {
			goto out;
		} else {
			/* one malformed key file must not lock everyone out */
			cairn_log(CAIRN_LOG_WARN, "repo", "skipping key file '%s': %s", name,
				cairn_error_message());
		}
	}
	if (!found) {
		r = cairn_error_set(CAIRN_EAUTH, "wrong password or no key found for '%s'", loc);
		goto out;
	}
	if ((r = load_config(repo)) < 0)
		goto out;
	*out = repo;
	repo = NULL;
	r = 0;
out:
	free(keys);
	cairn_buf_wipe(&keyfile);
	cairn_repo_free(repo);
	return r;
}

/* --- unpacked files ---------------------------------------------------------- */

int cairn_repo_decode_unpacked(cairn_buf *out, const cairn_repo *repo, const void *stored,
	size_t len)
{
	cairn_buf json = CAIRN_BUF_INIT;
	int r;

	if ((r = cairn_crypto_open_buf(out, &repo->key, stored, len)) < 0) {
		r = cairn_error_wrap(CAIRN_ECORRUPT, "cannot decrypt");
		goto out;
	}
	if (repo->config.version >= 2 && out->len > 0) {
		unsigned char first = out->data[0];
		if (first == 0x02) {
			if ((r = cairn_zstd_decompress_stream(&json, out->data + 1, out->len - 1,
					UNPACKED_MAX)) < 0) {
				r = cairn_error_wrap(CAIRN_ECORRUPT, "cannot decompress");
				goto out;
			}
			cairn_buf_release(out);
			*out = json;
			json = (cairn_buf)CAIRN_BUF_INIT;
		} else if (first != '{' && first != '[') {
			r = cairn_error_set(CAIRN_ECORRUPT, "not supported encoding format (first byte 0x%02x)",
				first);
			goto out;
		}
	}
	if (!cairn_buf_cstr(out))
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
out:
	cairn_buf_release(&json);
	if (r < 0)
		cairn_buf_clear(out);
	return r;
}

int cairn_repo_load_unpacked(cairn_buf *out, cairn_repo *repo, cairn_file_type type,
	const cairn_id *id)
{
	cairn_buf stored = CAIRN_BUF_INIT;
	cairn_handle h;
	cairn_id actual;
	char name[CAIRN_ID_HEX_SIZE];
	const char *what = cairn_file_type_name(type);
	int r;

	cairn_id_to_hex(name, id);
	cairn_handle_set(&h, type, name);
	if ((r = cairn_backend_load(&stored, repo->be, &h, 0, 0)) < 0) {
		r = cairn_error_wrap(r, "cannot read %s file '%s'", what, name);
		goto out;
	}
	cairn_sha256(&actual, stored.data, stored.len);
	if (!cairn_id_equal(&actual, id)) {
		r = cairn_error_set(CAIRN_ECORRUPT,
			"%s file '%s' is damaged: content does not match its name", what, name);
		goto out;
	}
	if ((r = cairn_repo_decode_unpacked(out, repo, stored.data, stored.len)) < 0)
		r = cairn_error_wrap(r, "%s file '%s' is damaged", what, name);
out:
	cairn_buf_release(&stored);
	return r;
}

int cairn_repo_save_unpacked(cairn_id *id_out, cairn_repo *repo, cairn_file_type type,
	const void *plain, size_t len)
{
	cairn_buf encoded = CAIRN_BUF_INIT, zst = CAIRN_BUF_INIT, sealed = CAIRN_BUF_INIT;
	const void *body = plain;
	size_t body_len = len;
	cairn_handle h;
	cairn_id id;
	char name[CAIRN_ID_HEX_SIZE];
	int r, level;

	if (repo->config.version >= 2) {
		pthread_mutex_lock(&repo->mu);
		level = repo->compression == CAIRN_COMPRESSION_OFF
			? cairn_compression_level(CAIRN_COMPRESSION_AUTO)
			: cairn_compression_level(repo->compression);
		pthread_mutex_unlock(&repo->mu);
		if ((r = cairn_zstd_compress(&zst, plain, len, level)) < 0)
			goto out;
		if ((r = cairn_buf_reserve(&encoded, zst.len + 1)) < 0)
			goto out;
		encoded.data[0] = 0x02;
		memcpy(encoded.data + 1, zst.data, zst.len);
		encoded.len = zst.len + 1;
		body = encoded.data;
		body_len = encoded.len;
	}
	if ((r = cairn_crypto_seal_buf(&sealed, &repo->key, body, body_len)) < 0)
		goto out;
	cairn_sha256(&id, sealed.data, sealed.len);
	cairn_id_to_hex(name, &id);
	cairn_handle_set(&h, type, name);
	if ((r = cairn_backend_save(repo->be, &h, sealed.data, sealed.len)) < 0) {
		r = cairn_error_wrap(r, "cannot save %s file '%s'", cairn_file_type_name(type), name);
		goto out;
	}
	if (id_out)
		*id_out = id;
out:
	cairn_buf_release(&encoded);
	cairn_buf_release(&zst);
	cairn_buf_release(&sealed);
	return r;
}

/* --- index ------------------------------------------------------------------- */

typedef struct file_list {
	cairn_index_file *files;
	size_t n, cap;
	int error;
} file_list;

static int collect_index_file(const char *name, uint64_t size, void *payload)
{
	file_list *l = payload;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		cairn_index_file *p = realloc(l->files, ncap * sizeof(*p));
		if (!p) {
			l->error = cairn_error_set(CAIRN_ENOMEM, "out of memory listing files");
			return 1;
		}
		l->files = p;
		l->cap = ncap;
	}
	if (cairn_id_from_hex(&l->files[l->n].id, name) < 0)
		return 0; /* the backend only passes hex names; be tolerant anyway */
	l->files[l->n].size = size;
	l->n++;
	return 0;
}

typedef struct fetch_ctx {
	cairn_repo *repo;
	int failed;                 /* the error came from reading an index file */
} fetch_ctx;

static int fetch_index_file(cairn_buf *json, const cairn_id *id, void *payload)
{
	fetch_ctx *f = payload;
	int r = cairn_repo_load_unpacked(json, f->repo, CAIRN_FILE_INDEX, id);
	if (r < 0)
		f->failed = 1;
	return r;
}

/* Copy one entry into another index (moving the overlay). */
static int copy_entry(cairn_blob_type type, const cairn_id *id, const cairn_blob_location *loc,
	void *payload)
{
	int r = cairn_index_add(payload, type, id, loc);
	return r < 0 ? r : 0;
}

/* Replace repo->index by `next`, moving the entries added so far (blobs of
 * packs stored in this session, which no index file may name yet; not what
 * a cache holds, which the sync brings back).  Takes ownership of next. */
static int swap_index(cairn_repo *repo, cairn_index *next)
{
	int r = cairn_index__foreach_added(repo->index, copy_entry, next);
	if (r < 0) {
		cairn_index_free(next);
		return r;
	}
	cairn_index_free(repo->index);
	repo->index = next;
	return 0;
}

/* Give up on the cache: keep the index in memory for this session. */
static int fall_back_to_memory(cairn_repo *repo, const char *why)
{
	cairn_index *mem = NULL;
	int r;

	cairn_log(CAIRN_LOG_WARN, "index", "%s; keeping the index in memory", why);
	repo->cache_failed = 1;
	if (!cairn_index_cache_path(repo->index))
		return 0;
	if ((r = cairn_index_new(&mem)) < 0)
		return r;
	return swap_index(repo, mem);
}

/* Not concurrently with saving or loading blobs: the index may be replaced. */
int cairn_repo_load_index(cairn_repo *repo)
{
	file_list l = { NULL, 0, 0, 0 };
	cairn_index_sync_stats st;
	fetch_ctx f = { repo, 0 };
	char why[600];
	int r;

	r = cairn_backend_list(repo->be, CAIRN_FILE_INDEX, collect_index_file, &l);
	if (l.error)
		r = l.error;
	if (r < 0) {
		r = cairn_error_wrap(r, "cannot list index files");
		goto out;
	}
	if (repo->cache_dir && !repo->cache_failed && !cairn_index_cache_path(repo->index)) {
		cairn_index *cached = NULL;
		if ((r = cairn_index_open_cache(&cached, repo->cache_dir, &repo->config.id)) < 0) {
			snprintf(why, sizeof(why), "%s", cairn_error_message());
			if ((r = fall_back_to_memory(repo, why)) < 0)
				goto out;
		} else if ((r = swap_index(repo, cached)) < 0) {
			goto out;
		}
	}
	r = cairn_index_sync(repo->index, l.files, l.n, fetch_index_file, &f, &st);
	if (r < 0 && st.cache_failed && !f.failed) {
		/* the cache failed, not the repository: carry on without it */
		snprintf(why, sizeof(why), "%s", cairn_error_message());
		if ((r = fall_back_to_memory(repo, why)) < 0)
			goto out;
		r = cairn_index_sync(repo->index, l.files, l.n, fetch_index_file, &f, &st);
	}
	if (r < 0)
		goto out;
	if (st.rebuilt || st.files_merged)
		cairn_log(CAIRN_LOG_DEBUG, "index", "index: %zu of %zu index files read (%llu blobs)%s",
			st.files_merged, st.files_listed, (unsigned long long)st.blobs_merged,
			st.rebuilt ? ", cache rebuilt" : "");
	r = 0;
out:
	free(l.files);
	return r;
}

/* --- blobs ------------------------------------------------------------------- */

int cairn_repo_has_blob(cairn_repo *repo, cairn_blob_type type, const cairn_id *id)
{
	int found;

	if (cairn_index_lookup(NULL, repo->index, type, id) == 1)
		return 1;
	pthread_mutex_lock(&repo->mu);
	found = set_contains(&repo->reserved, type, id);
	pthread_mutex_unlock(&repo->mu);
	return found;
}

int cairn_repo_load_blob(cairn_buf *out, cairn_repo *repo, cairn_blob_type type,
	const cairn_id *id)
{
	cairn_blob_location loc;
	cairn_buf stored = CAIRN_BUF_INIT;
	cairn_handle h;
	char blob[CAIRN_ID_HEX_SIZE], pack[CAIRN_ID_HEX_SIZE];
	int r;

	cairn_id_to_hex(blob, id);
	if ((r = cairn_index_lookup(&loc, repo->index, type, id)) < 0)
		return cairn_error_wrap(r, "cannot look up %s blob '%s'", cairn_blob_type_name(type), blob);
	if (r != 1)
		return cairn_error_set(CAIRN_ENOTFOUND, "%s blob '%s' is not in the index",
			cairn_blob_type_name(type), blob);
	cairn_id_to_hex(pack, &loc.pack);
	cairn_handle_set(&h, CAIRN_FILE_PACK, pack);
	if ((r = cairn_backend_load(&stored, repo->be, &h, loc.offset, loc.length)) < 0) {
		r = cairn_error_wrap(r, "cannot read %s blob '%s' from pack '%s'",
			cairn_blob_type_name(type), blob, pack);
		goto out;
	}
	if (stored.len != loc.length) {
		r = cairn_error_set(CAIRN_ECORRUPT, "pack '%s' is truncated at %s blob '%s'", pack,
			cairn_blob_type_name(type), blob);
		goto out;
	}
	if ((r = cairn_blob_decode(out, &repo->key, stored.data, stored.len,
			loc.uncompressed_length, id)) < 0)
		r = cairn_error_wrap(r, "pack '%s'", pack);
out:
	cairn_buf_release(&stored);
	return r;
}

/* Write an index file for the packs collected so far, if there are at least
 * `min_blobs` blobs (and at least one pack).  The builder is swapped for a
 * fresh one under the mutex; encoding and upload happen outside it. */
static int store_index(cairn_repo *repo, size_t min_blobs)
{
	cairn_index_builder *fresh = NULL, *full = NULL;
	cairn_buf json = CAIRN_BUF_INIT;
	int r;

	if ((r = cairn_index_builder_new(&fresh)) < 0)
		return r;
	pthread_mutex_lock(&repo->mu);
	if (cairn_index_builder_pack_count(repo->builder) > 0 &&
	    cairn_index_builder_blob_count(repo->builder) >= min_blobs) {
		full = repo->builder;
		repo->builder = fresh;
		fresh = NULL;
		repo->busy++;
	}
	pthread_mutex_unlock(&repo->mu);
	if (!full)
		goto out;

	if ((r = cairn_index_builder_encode(&json, full)) >= 0 &&
	    (r = cairn_repo_save_unpacked(NULL, repo, CAIRN_FILE_INDEX, json.data, json.len)) >= 0)
		r = 0;
	pthread_mutex_lock(&repo->mu);
	if (r < 0)
		set_write_error_locked(repo, r);
	else
		repo->stats.index_files_written++;
	repo->busy--;
	pthread_cond_broadcast(&repo->idle);
	pthread_mutex_unlock(&repo->mu);
out:
	cairn_index_builder_free(fresh);
	cairn_index_builder_free(full);
	cairn_buf_release(&json);
	return r;
}

/* Finish and store a pack writer that was taken out of the repo (busy was
 * counted for it), then publish its entries: first in the in-memory index,
 * then in the pending index builder.  Takes ownership of pw. */
static int store_pack(cairn_repo *repo, cairn_pack_writer *pw)
{
	cairn_id pack_id;
	const cairn_pack_entry *entries = NULL;
	size_t n = 0;
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE];
	int r, index_due = 0;

	/* After a failure nothing more is stored (see the file comment). */
	pthread_mutex_lock(&repo->mu);
	r = check_write_error_locked(repo);
	pthread_mutex_unlock(&repo->mu);
	if (r < 0)
		goto out;
	if ((r = cairn_pack_writer_finish(&pack_id, pw)) < 0)
		goto out;
	cairn_id_to_hex(name, &pack_id);
	cairn_handle_set(&h, CAIRN_FILE_PACK, name);
	if (cairn_pack_writer_file(pw) >= 0) {
		r = cairn_backend_save_fd(repo->be, &h, cairn_pack_writer_file(pw),
			cairn_pack_writer_length(pw), &pack_id);
	} else {
		size_t len;
		const unsigned char *data = cairn_pack_writer_data(pw, &len);
		r = cairn_backend_save(repo->be, &h, data, len);
	}
	if (r < 0) {
		r = cairn_error_wrap(r, "cannot store pack '%s'", name);
		goto out;
	}
	/* The pack is durable: only now may anything name it. */
	entries = cairn_pack_writer_entries(pw, &n);
	for (size_t i = 0; i < n; i++) {
		cairn_blob_location loc;
		loc.pack = pack_id;
		loc.offset = entries[i].offset;
		loc.length = entries[i].length;
		loc.uncompressed_length = entries[i].uncompressed_length;
		if ((r = cairn_index_add(repo->index, entries[i].type, &entries[i].id, &loc)) < 0)
			goto out;
	}
	r = 0;
out:
	pthread_mutex_lock(&repo->mu);
	if (r == 0 && (r = cairn_index_builder_add_pack(repo->builder, &pack_id, entries, n)) == 0) {
		time_t now = monotonic_seconds();
		repo->stats.packs_written++;
		if (cairn_index_builder_pack_count(repo->builder) == 1)
			repo->builder_since = now;
		if (cairn_index_builder_blob_count(repo->builder) >= INDEX_AUTO_BLOBS)
			index_due = INDEX_AUTO_BLOBS;
		else if (now - repo->builder_since >= INDEX_AUTO_SECONDS)
			index_due = 1;
	}
	if (r < 0)
		set_write_error_locked(repo, r);
	cairn_pack_writer_reset(pw);
	for (int k = 0; k < SPARE_WRITERS && pw; k++) {
		if (!repo->spare[k]) {
			repo->spare[k] = pw;
			pw = NULL;
		}
	}
	repo->busy--;
	pthread_cond_broadcast(&repo->idle);
	pthread_mutex_unlock(&repo->mu);
	cairn_pack_writer_free(pw);
	if (r == 0 && index_due)
		r = store_index(repo, index_due);
	return r;
}

/* A writer for a new pack (mu held): a spare one or a new one. */
static int take_writer_locked(cairn_pack_writer **out, cairn_repo *repo)
{
	for (int k = 0; k < SPARE_WRITERS; k++) {
		if (repo->spare[k]) {
			*out = repo->spare[k];
			repo->spare[k] = NULL;
			return 0;
		}
	}
	return cairn_pack_writer_new(out, &repo->key);
}

/* A writer for a new pack of the open-pack slot, with a spool file unless
 * spooling failed before; the caller holds writer_mu of the slot, not mu. */
static int open_writer(cairn_pack_writer **out, cairn_repo *repo)
{
	cairn_pack_writer *pw = NULL;
	int r, spool, fd = -1;

	pthread_mutex_lock(&repo->mu);
	r = take_writer_locked(&pw, repo);
	spool = !repo->spool_failed;
	pthread_mutex_unlock(&repo->mu);
	if (r < 0)
		return r;
	if (spool) {
		if ((r = cairn_backend_spool_open(&fd, repo->be)) == 0 &&
		    (r = cairn_pack_writer_set_file(pw, fd)) < 0)
			close(fd);
		if (r < 0) {
			pthread_mutex_lock(&repo->mu);
			if (!repo->spool_failed)
				cairn_log(CAIRN_LOG_WARN, "repo", "packs are built in memory: %s",
					cairn_error_message());
			repo->spool_failed = 1;
			pthread_mutex_unlock(&repo->mu);
		}
	}
	*out = pw;
	return 0;
}

/* --- uploaders ------------------------------------------------------------- */

static void *uploader_main(void *arg)
{
	cairn_repo *repo = arg;
	cairn_pack_writer *pw;

	pthread_mutex_lock(&repo->mu);
	for (;;) {
		while (repo->queue_len == 0 && !repo->uploaders_stop)
			pthread_cond_wait(&repo->queue_ready, &repo->mu);
		if (repo->queue_len == 0)
			break;
		pw = repo->queue[repo->queue_head];
		repo->queue_head = (repo->queue_head + 1) % UPLOADERS_MAX;
		repo->queue_len--;
		pthread_cond_signal(&repo->queue_space);
		pthread_mutex_unlock(&repo->mu);
		(void)store_pack(repo, pw); /* failures are sticky in the repo */
		pthread_mutex_lock(&repo->mu);
	}
	pthread_mutex_unlock(&repo->mu);
	return NULL;
}

/* Start the upload threads once (mu held).  If none can be started, packs
 * are stored by the threads that fill them. */
static void start_uploaders_locked(cairn_repo *repo)
{
	int want = cairn_backend_max_connections(repo->be);

	repo->uploaders_tried = 1;
	if (want > UPLOADERS_MAX)
		want = UPLOADERS_MAX;
	while (repo->n_uploaders < want &&
	       pthread_create(&repo->uploaders[repo->n_uploaders], NULL, uploader_main, repo) == 0)
		repo->n_uploaders++;
	/* In memory mode every queued pack is a pack-sized buffer: keep one. */
	repo->queue_cap = repo->spool_failed ? 1 : (size_t)repo->n_uploaders;
}

/* Hand a full writer (busy already counted for it) to the uploaders, waiting
 * while the queue is full.  Takes ownership of pw. */
static int queue_pack(cairn_repo *repo, cairn_pack_writer *pw)
{
	pthread_mutex_lock(&repo->mu);
	if (!repo->uploaders_tried)
		start_uploaders_locked(repo);
	if (repo->n_uploaders == 0) {
		pthread_mutex_unlock(&repo->mu);
		return store_pack(repo, pw);
	}
	while (repo->queue_len >= repo->queue_cap)
		pthread_cond_wait(&repo->queue_space, &repo->mu);
	repo->queue[(repo->queue_head + repo->queue_len) % UPLOADERS_MAX] = pw;
	repo->queue_len++;
	pthread_cond_signal(&repo->queue_ready);
	pthread_mutex_unlock(&repo->mu);
	return 0;
}

/* Join the upload threads; packs still queued are dropped (their blobs were
 * never indexed, so nothing names them).  For cairn_repo_free. */
static void stop_uploaders(cairn_repo *repo)
{
	pthread_mutex_lock(&repo->mu);
	repo->uploaders_stop = 1;
	/* drop what is queued first, so the threads finish only what they hold */
	while (repo->queue_len > 0) {
		cairn_pack_writer_free(repo->queue[repo->queue_head]);
		repo->queue_head = (repo->queue_head + 1) % UPLOADERS_MAX;
		repo->queue_len--;
		repo->busy--;
	}
	pthread_cond_broadcast(&repo->queue_ready);
	pthread_cond_broadcast(&repo->queue_space);
	pthread_mutex_unlock(&repo->mu);
	for (int i = 0; i < repo->n_uploaders; i++)
		pthread_join(repo->uploaders[i], NULL);
	repo->n_uploaders = 0;
}

/* Borrow encode buffers (mu held); NULL when out of memory. */
static scratch *take_scratch_locked(cairn_repo *repo)
{
	scratch *sc = repo->free_scratch;
	if (sc) {
		repo->free_scratch = sc->next;
		repo->n_free_scratch--;
		return sc;
	}
	return calloc(1, sizeof(*sc));
}

/* Give back the memory of buffers that grew beyond SCRATCH_KEEP for a big
 * chunk (without mu: sc is the caller's), so that idle encode buffers cost at
 * most 2 x SCRATCH_KEEP each, whatever the largest chunk was. */
static void trim_scratch(scratch *sc)
{
	if (!sc)
		return;
	if (sc->sealed.cap > SCRATCH_KEEP)
		cairn_buf_release(&sc->sealed);
	if (sc->work.cap > SCRATCH_KEEP)
		cairn_buf_release(&sc->work);
}

/* Return them (mu held); beyond SPARE_SCRATCH they are freed. */
static void give_scratch_locked(cairn_repo *repo, scratch *sc)
{
	if (!sc)
		return;
	if (repo->n_free_scratch >= SPARE_SCRATCH) {
		cairn_buf_release(&sc->sealed);
		cairn_buf_release(&sc->work);
		free(sc);
		return;
	}
	sc->next = repo->free_scratch;
	repo->free_scratch = sc;
	repo->n_free_scratch++;
}

int cairn_repo_save_blob(cairn_id *id_out, int *added_out, cairn_repo *repo,
	cairn_blob_type type, const void *data, size_t len, const cairn_id *id)
{
	scratch *sc = NULL;
	cairn_pack_writer *full = NULL, *broken = NULL;
	cairn_compression mode = CAIRN_COMPRESSION_AUTO;
	size_t pack_size = CAIRN_PACK_TARGET_SIZE, stored_len;
	cairn_id bid;
	uint32_t ulen = 0;
	int r = 0, reserved = 0, added = 0;

	if (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE)
		return cairn_error_set(CAIRN_EINVAL, "invalid blob type %d", (int)type);
	if (len > BLOB_MAX)
		return cairn_error_set(CAIRN_EINVAL, "blob of %zu bytes is too large", len);
	if (id)
		bid = *id;
	else
		cairn_sha256(&bid, data, len);

	/* Atomic check-and-reserve.  A blob enters the index during a session
	 * only after it was reserved, so index-then-set under one lock is exact. */
	if (cairn_index_lookup(NULL, repo->index, type, &bid) != 1) {
		pthread_mutex_lock(&repo->mu);
		if ((r = check_write_error_locked(repo)) == 0 &&
		    !set_contains(&repo->reserved, type, &bid) &&
		    (r = set_insert(&repo->reserved, type, &bid)) == 0)
			reserved = 1;
		mode = repo->compression;
		pack_size = repo->pack_size;
		if (r == 0 && !reserved)
			repo->stats.blobs_duplicate++;
		if (reserved && !(sc = take_scratch_locked(repo)))
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		pthread_mutex_unlock(&repo->mu);
		if (r < 0 || !reserved)
			goto out;
	} else {
		pthread_mutex_lock(&repo->mu);
		repo->stats.blobs_duplicate++;
		pthread_mutex_unlock(&repo->mu);
		goto out;
	}

	/* Compress and seal in the caller's thread, without the lock. */
	if ((r = cairn_blob_encode(&sc->sealed, &ulen, &sc->work, &repo->key, repo->config.version, mode,
			data, len)) < 0) {
		r = cairn_error_wrap(r, "cannot encode %s blob", cairn_blob_type_name(type));
		goto out;
	}

	pthread_mutex_lock(&repo->writer_mu[type]);
	if (repo->writer[type] || (r = open_writer(&repo->writer[type], repo)) == 0)
		r = cairn_pack_writer_add_sealed(repo->writer[type], type, &bid, sc->sealed.data,
			sc->sealed.len, ulen);
	if (r < 0 && repo->writer[type] && cairn_pack_writer_file(repo->writer[type]) >= 0) {
		/* a failed write leaves the spool file in an unknown state: the
		 * blobs already in it are lost, which must fail the session */
		broken = repo->writer[type];
		repo->writer[type] = NULL;
	}
	if (r == 0) {
		added = 1;
		if (cairn_pack_writer_size(repo->writer[type]) >= pack_size) {
			full = repo->writer[type];
			repo->writer[type] = NULL;
			/* counted before the writer lock is dropped, so that a
			 * flush never sees neither the open pack nor a busy count */
			pthread_mutex_lock(&repo->mu);
			repo->busy++;
			pthread_mutex_unlock(&repo->mu);
		}
	}
	pthread_mutex_unlock(&repo->writer_mu[type]);
	stored_len = sc->sealed.len;
	trim_scratch(sc);

	pthread_mutex_lock(&repo->mu);
	if (added) {
		repo->stats.blobs_added++;
		repo->stats.data_added_plain += len;
		repo->stats.data_added_stored += stored_len;
	}
	if (broken)
		set_write_error_locked(repo, r);
	give_scratch_locked(repo, sc);
	sc = NULL;
	pthread_mutex_unlock(&repo->mu);
	cairn_pack_writer_free(broken);
	if (r < 0)
		goto out;
	if (full)
		r = queue_pack(repo, full);
out:
	if (sc || (r < 0 && reserved && !added)) {
		trim_scratch(sc);
		pthread_mutex_lock(&repo->mu);
		/* nothing was queued: let a later attempt save it */
		if (r < 0 && reserved && !added)
			set_remove(&repo->reserved, type, &bid);
		give_scratch_locked(repo, sc);
		pthread_mutex_unlock(&repo->mu);
	}
	if (id_out)
		*id_out = bid;
	if (added_out)
		*added_out = added;
	return r;
}

/* Wait until no pack or index upload is running (mu held). */
static void wait_idle_locked(cairn_repo *repo)
{
	while (repo->busy > 0)
		pthread_cond_wait(&repo->idle, &repo->mu);
}

int cairn_repo_flush(cairn_repo *repo)
{
	cairn_pack_writer *open[2] = { NULL, NULL };
	int r = 0, r2;

	for (int t = 0; t < 2; t++) {
		pthread_mutex_lock(&repo->writer_mu[t]);
		if (repo->writer[t] && cairn_pack_writer_count(repo->writer[t]) > 0) {
			open[t] = repo->writer[t];
			repo->writer[t] = NULL;
			pthread_mutex_lock(&repo->mu);
			repo->busy++;
			pthread_mutex_unlock(&repo->mu);
		}
		pthread_mutex_unlock(&repo->writer_mu[t]);
	}
	for (int t = 0; t < 2; t++) {
		if (open[t] && (r2 = queue_pack(repo, open[t])) < 0 && r == 0)
			r = r2;
	}
	/* Packs other threads are uploading must land before the index file. */
	pthread_mutex_lock(&repo->mu);
	wait_idle_locked(repo);
	pthread_mutex_unlock(&repo->mu);
	/* Even after a failure: the builder only holds packs that are stored,
	 * and indexing them keeps their blobs usable for the next session. */
	if ((r2 = store_index(repo, 1)) < 0 && r == 0)
		r = r2;
	/* An automatic index write by another thread may have taken the builder. */
	pthread_mutex_lock(&repo->mu);
	wait_idle_locked(repo);
	if (r == 0)
		r = check_write_error_locked(repo);
	pthread_mutex_unlock(&repo->mu);
	return r;
}

/* --- snapshots ---------------------------------------------------------------- */

int cairn_repo_load_snapshot(cairn_snapshot *out, cairn_repo *repo, const cairn_id *id)
{
	cairn_buf json = CAIRN_BUF_INIT;
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	char name[CAIRN_ID_HEX_SIZE];
	int r;

	if ((r = cairn_repo_load_unpacked(&json, repo, CAIRN_FILE_SNAPSHOT, id)) < 0)
		goto out;
	if ((r = cairn_snapshot_decode(&s, (const char *)json.data, json.len)) < 0) {
		cairn_id_to_hex(name, id);
		r = cairn_error_wrap(r, "snapshot file '%s'", name);
		goto out;
	}
	s.id = *id;
	*out = s;
	s = (cairn_snapshot)CAIRN_SNAPSHOT_INIT;
out:
	cairn_snapshot_release(&s);
	cairn_buf_release(&json);
	return r;
}

int cairn_repo_save_snapshot(cairn_repo *repo, cairn_snapshot *s)
{
	cairn_buf json = CAIRN_BUF_INIT;
	cairn_id id;
	int r;

	if ((r = cairn_snapshot_encode(&json, s)) < 0)
		goto out;
	if ((r = cairn_repo_save_unpacked(&id, repo, CAIRN_FILE_SNAPSHOT, json.data, json.len)) < 0)
		goto out;
	s->id = id;
out:
	cairn_buf_release(&json);
	return r;
}

static int snapshot_time_compare(const void *a, const void *b)
{
	const cairn_snapshot *x = a, *y = b;
	int c = cairn_time_compare(x->time, y->time);
	return c ? c : memcmp(x->id.bytes, y->id.bytes, CAIRN_ID_SIZE);
}

void cairn_snapshot_list_free(cairn_snapshot *list, size_t n)
{
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		cairn_snapshot_release(&list[i]);
	free(list);
}

int cairn_repo_list_snapshots(cairn_snapshot **out, size_t *n_out, cairn_repo *repo)
{
	cairn_id *ids = NULL;
	cairn_snapshot *list = NULL;
	size_t n = 0, have = 0;
	int r;

	if ((r = list_ids(&ids, &n, repo->be, CAIRN_FILE_SNAPSHOT)) < 0)
		goto out;
	if (n && !(list = calloc(n, sizeof(*list)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = cairn_repo_load_snapshot(&list[have], repo, &ids[i]);
		if (r == CAIRN_ENOTFOUND)
			continue; /* forgotten since listing */
		if (r < 0)
			goto out;
		have++;
	}
	if (have)
		qsort(list, have, sizeof(*list), snapshot_time_compare);
	*out = list;
	*n_out = have;
	list = NULL;
	r = 0;
out:
	cairn_snapshot_list_free(list, have);
	free(ids);
	return r;
}

int cairn_repo_find_snapshot(cairn_id *out, cairn_repo *repo, const char *prefix)
{
	cairn_id *ids = NULL;
	size_t n = 0, plen = prefix ? strlen(prefix) : 0, matches = 0;
	char want[CAIRN_ID_HEX_SIZE];
	cairn_id found = { { 0 } };
	int r;

	if (plen == 0 || plen > 64)
		return cairn_error_set(CAIRN_EINVAL, "invalid snapshot id '%s'", prefix ? prefix : "");
	for (size_t i = 0; i < plen; i++) {
		char c = prefix[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return cairn_error_set(CAIRN_EINVAL, "invalid snapshot id '%s'", prefix);
		want[i] = c;
	}
	want[plen] = '\0';

	if ((r = list_ids(&ids, &n, repo->be, CAIRN_FILE_SNAPSHOT)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char hex[CAIRN_ID_HEX_SIZE];
		cairn_id_to_hex(hex, &ids[i]);
		if (memcmp(hex, want, plen) == 0) {
			found = ids[i];
			matches++;
		}
	}
	if (matches == 0) {
		r = cairn_error_set(CAIRN_ENOTFOUND, "no snapshot matches '%s'", want);
		goto out;
	}
	if (matches > 1) {
		r = cairn_error_set(CAIRN_EINVAL, "prefix '%s' matches several snapshots", want);
		goto out;
	}
	*out = found;
	r = 0;
out:
	free(ids);
	return r;
}
