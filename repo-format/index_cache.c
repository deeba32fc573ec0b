/* index_cache.c: the blob index of one repository in a local LMDB database
 * (repo-format/index_cache.h; the public face is include/cairn/index.h).
 *
 * Where: <cache dir>/<repository id hex>/index.lmdb/ holds LMDB's data.mdb
 * and lock.mdb, our merge.lock, and a `damaged` marker once a damaged entry
 * was met.  The cache dir gets a CACHEDIR.TAG so backup tools skip it.
 * Deleting any of it loses nothing: the repository's index files are the
 * truth and the next open rebuilds.
 *
 * Tables (little-endian, so a cache can be read on any machine):
 *   blobs  type (1 byte) + blob id (32)  ->  pack number, offset, length,
 *          uncompressed length, check (5 x u32): 53 bytes an entry;
 *   packs  pack number (native uint, MDB_INTEGERKEY) -> pack id, check;
 *          numbers are handed out in increasing order, one per run of blobs
 *          of the same pack in one index file (a pack listed by two files
 *          gets two numbers; both name it), so packs only grows at its end;
 *   seen   index file id -> u64 number of blobs it listed: the merged files;
 *   meta   "format" (CACHE_FORMAT), "repo" (the repository id), "blobs" and
 *          "packs" (entries in those tables), "state" ("ready"/"merging").
 * The check of an entry is XXH32 over its key and its other fields; every
 * read verifies it, so bytes overwritten in the file are noticed (and the
 * cache marked damaged) rather than sending a restore to the wrong place.
 *
 * Invariant: when "state" is "ready", the database holds exactly the entries
 * of the index files in `seen`, and each of those files was in the
 * repository's index/ listing, verified (name = SHA-256, MAC, JSON), when it
 * was merged.  Blobs that this process stores are never written here
 * (index.c keeps them in an in-memory overlay): a process that dies before
 * its index file is written leaves the cache as it was, and the next run
 * does not believe in unindexed packs.  When a file recorded in `seen` is
 * missing from the listing (prune removed it, and its entries may name
 * deleted packs) the tables are emptied and rebuilt from every listed file.
 * A stale or damaged database (an LMDB error at open, another format or
 * repository id, counts that do not match the tables, a first or last entry
 * failing its check, the `damaged` marker, a "merging" state nobody is
 * working on) is deleted and created afresh, with an info log line.
 *
 * Merging: the entries of the new files are sorted first (an external merge
 * sort through an unlinked temp file, RUN_RECS records in memory), then put
 * in key order, so that each page of the tree is visited once: 2,000,000
 * random inserts would fault every page in again and again.  LMDB keeps the
 * dirty pages of a write transaction in malloc'd memory until it commits, so
 * a merge commits every few hundred or thousand puts to stay within a few
 * MB, with MDB_NOSYNC; around those commits "state" says "merging" (written
 * and synced first), and the last transaction, after a full sync, records
 * the files in `seen`, the counts and "ready" with LMDB's normal sync.  A
 * merge that dies half-way leaves "merging", which the next open turns into
 * a rebuild.  merge.lock (flock) is held exclusively by a merge and by every
 * open, so an open never sees another process's half-done merge, nor
 * deletes one that is running; a warm start that finds nothing to merge
 * reads `seen` without it.
 *
 * Memory: LMDB reads through a shared file mapping, so the pages it touches
 * count in RSS although the kernel may drop them at any time.  The mapping
 * is trimmed with madvise(MADV_DONTNEED) (harmless for a read-only shared
 * file mapping: the pages stay in the page cache and fault back in): while
 * merging every TRIM_PUTS puts (the keys come in order, so the pages left
 * behind are done with), and for lookups and walks when the process's
 * file-backed RSS (/proc/self/statm, checked every TRIM_CHECK operations)
 * has grown MAP_RSS_BUDGET beyond what it was at open.  Lookups touch random
 * pages, and every fault maps a cluster of neighbours, so trimming them on
 * a fixed beat would cost a fault per lookup; the budget caps RSS instead.
 *
 * Concurrency: the environment is opened with MDB_NOTLS; read transactions
 * live in N_SLOTS slots, each a mutex and a reset transaction renewed for
 * each lookup (renew and reset take no lock and no system call); a thread
 * tries its own slot first, then the others.  A sync, a remap and a reopen
 * take every slot, so they never run beside a lookup, and trimming happens
 * with a slot held so it never races a remap.  LMDB must not open one
 * environment twice in a process, so a process-wide registry refuses that.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <lmdb.h>
#include <xxhash.h>

#include <cairn/log.h>
#include "index_cache.h"

#define CACHE_FORMAT "cairn index cache 1"
#define N_SLOTS 32
#define MAX_READERS 510
/* The most the database may grow to (address space, not memory: without
 * MDB_WRITEMAP the file only grows as it fills). */
#define MAP_SIZE (sizeof(size_t) > 4 ? (size_t)1 << 36 : (size_t)1 << 30)
#define MAP_RSS_BUDGET ((long)8 << 20)   /* file-backed RSS the mapping may add */
#define TRIM_CHECK 64                    /* lookups or walked entries between checks */
#define TRIM_PUTS 2048                   /* puts between two trims while merging */
#define BATCH_APPEND 8192                /* puts per commit into an empty table */
#define BATCH_INSERT 512                 /* puts per commit into a filled one */
#define CHECK_SEED 0x6361726eu
#define KEY_SIZE 33
#define VAL_SIZE 20
#define PACK_VAL_SIZE 36

/* One cache line each, so that threads using neighbouring slots do not
 * share a line. */
typedef struct slot {
	_Alignas(64) pthread_mutex_t mu;
	MDB_txn *txn;               /* a reset read transaction between uses, or NULL */
	unsigned ops;               /* lookups and walked entries, to pace RSS checks */
} slot;

struct cairn_index_cache {
	char *dir;                  /* <cache>/<repo>/index.lmdb */
	char *data_path, *lock_path, *damaged_path;
	dev_t dir_dev;
	ino_t dir_ino;
	cairn_id repo_id;
	int lock_fd;                /* merge.lock */
	int statm_fd;               /* /proc/self/statm, -1 if unavailable */
	long rss_base;              /* file-backed RSS at open, bytes */
	MDB_env *env;
	MDB_dbi meta, blobs, packs, seen;
	char *map_addr;             /* the mapping of data.mdb (NULL: unknown, no trimming) */
	size_t map_len;
	slot slots[N_SLOTS];
	atomic_int damaged;         /* a damaged entry was met and reported */
	int registered;
};

/* ---- little helpers ---------------------------------------------------- */

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

static void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void encode_key(unsigned char *key, cairn_blob_type type, const cairn_id *id)
{
	key[0] = (unsigned char)type;
	memcpy(key + 1, id->bytes, CAIRN_ID_SIZE);
}

/* Check over the key and the first 16 value bytes. */
static uint32_t entry_check(const unsigned char *key, const unsigned char *val)
{
	unsigned char buf[KEY_SIZE + 16];
	memcpy(buf, key, KEY_SIZE);
	memcpy(buf + KEY_SIZE, val, 16);
	return XXH32(buf, sizeof(buf), CHECK_SEED);
}

static void encode_val(unsigned char *val, const unsigned char *key, uint32_t pack,
	const cairn_pack_entry *e)
{
	put_le32(val, pack);
	put_le32(val + 4, e->offset);
	put_le32(val + 8, e->length);
	put_le32(val + 12, e->uncompressed_length);
	put_le32(val + 16, entry_check(key, val));
}

static int val_ok(const MDB_val *k, const MDB_val *v)
{
	const unsigned char *key = k->mv_data, *val = v->mv_data;
	return k->mv_size == KEY_SIZE && v->mv_size == VAL_SIZE && key[0] <= 1
		&& get_le32(val + 16) == entry_check(key, val);
}

static uint32_t pack_check(unsigned num, const unsigned char *id)
{
	unsigned char buf[4 + CAIRN_ID_SIZE];
	put_le32(buf, num);
	memcpy(buf + 4, id, CAIRN_ID_SIZE);
	return XXH32(buf, sizeof(buf), CHECK_SEED);
}

/* "a/b", malloc'd. */
static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);
	if (!p)
		return NULL;
	memcpy(p, a, la);
	p[la] = '/';
	memcpy(p + la + 1, b, lb + 1);
	return p;
}

/* mkdir -p with mode 0700 for what is created. */
static int mkdir_p(const char *path)
{
	char *copy = strdup(path);
	int r = 0;

	if (!copy)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (char *p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
				r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot create cache folder '%s'", copy);
				break;
			}
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	free(copy);
	return r;
}

/* CACHEDIR.TAG (https://bford.info/cachedir/) so backup tools skip the
 * cache; best effort. */
static void write_cachedir_tag(const char *cache_dir)
{
	static const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
		"# This file is a cache directory tag created by cairn.\n"
		"# For information about cache directory tags see https://bford.info/cachedir/\n";
	char *path = join(cache_dir, "CACHEDIR.TAG");
	int fd;

	if (path && (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0) {
		if (write(fd, tag, sizeof(tag) - 1) < 0) { /* best effort */ }
		close(fd);
	}
	free(path);
}

/* ---- the process-wide registry of open caches ---------------------------- */

/* LMDB forbids opening one environment twice in a process (closing either
 * would drop the other's fcntl locks).  Entries of another pid are left over
 * from before a fork and do not count. */
typedef struct open_cache {
	dev_t dev;
	ino_t ino;
	pid_t pid;
	struct open_cache *next;
} open_cache;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static open_cache *registry;

static int registry_add(cairn_index_cache *c)
{
	open_cache *e;
	pid_t pid = getpid();
	int r = 0;

	pthread_mutex_lock(&registry_mu);
	for (e = registry; e; e = e->next)
		if (e->dev == c->dir_dev && e->ino == c->dir_ino && e->pid == pid)
			break;
	if (e)
		r = cairn_error_set(CAIRN_EINVAL, "index cache '%s' is already open in this process", c->dir);
	else if (!(e = malloc(sizeof(*e))))
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
	else {
		e->dev = c->dir_dev;
		e->ino = c->dir_ino;
		e->pid = pid;
		e->next = registry;
		registry = e;
		c->registered = 1;
	}
	pthread_mutex_unlock(&registry_mu);
	return r;
}

static void registry_remove(cairn_index_cache *c)
{
	pid_t pid = getpid();

	if (!c->registered)
		return;
	pthread_mutex_lock(&registry_mu);
	for (open_cache **pp = &registry; *pp; pp = &(*pp)->next) {
		open_cache *e = *pp;
		if (e->dev == c->dir_dev && e->ino == c->dir_ino && e->pid == pid) {
			*pp = e->next;
			free(e);
			break;
		}
	}
	pthread_mutex_unlock(&registry_mu);
}

/* ---- slots ------------------------------------------------------------- */

static unsigned thread_hint(void)
{
	static atomic_uint next_hint;
	static _Thread_local unsigned hint; /* 0: not assigned yet */

	if (!hint)
		hint = atomic_fetch_add(&next_hint, 1) % N_SLOTS + 1;
	return hint - 1;
}

static slot *take_slot(cairn_index_cache *c)
{
	unsigned h = thread_hint();

	for (unsigned i = 0; i < N_SLOTS; i++) {
		slot *s = &c->slots[(h + i) % N_SLOTS];
		if (pthread_mutex_trylock(&s->mu) == 0)
			return s;
	}
	pthread_mutex_lock(&c->slots[h].mu);
	return &c->slots[h];
}

static void give_slot(slot *s)
{
	pthread_mutex_unlock(&s->mu);
}

static void lock_all(cairn_index_cache *c)
{
	for (int i = 0; i < N_SLOTS; i++)
		pthread_mutex_lock(&c->slots[i].mu);
}

static void unlock_all(cairn_index_cache *c)
{
	for (int i = N_SLOTS - 1; i >= 0; i--)
		pthread_mutex_unlock(&c->slots[i].mu);
}

/* ---- errors ------------------------------------------------------------ */

/* Does an LMDB result say the database itself is damaged or alien? */
static int is_damage(int rc)
{
	return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID
		|| rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE || rc == MDB_BAD_DBI
		|| rc == MDB_BAD_VALSIZE;
}

/* Record that the cache is damaged: the marker makes the next open rebuild
 * it.  Returns CAIRN_ECORRUPT. */
static int mark_damaged(cairn_index_cache *c, const char *what)
{
	if (atomic_exchange(&c->damaged, 1) == 0) {
		int fd = open(c->damaged_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
		cairn_log(CAIRN_LOG_WARN, "index", "index cache '%s' is damaged (%s): it will be rebuilt "
			"at the next start", c->dir, what);
	}
	return cairn_error_set(CAIRN_ECORRUPT, "index cache '%s' is damaged: %s", c->dir, what);
}

/* A failed LMDB call: damage is CAIRN_ECORRUPT (and marked), the rest CAIRN_EIO. */
static int db_failure(cairn_index_cache *c, int rc, const char *what)
{
	if (is_damage(rc))
		return mark_damaged(c, mdb_strerror(rc));
	if (rc > 0)
		return cairn_error_set_errno(CAIRN_EIO, rc, "index cache '%s': cannot %s", c->dir, what);
	return cairn_error_set(CAIRN_EIO, "index cache '%s': cannot %s: %s", c->dir, what,
		mdb_strerror(rc));
}

/* ---- the mapping --------------------------------------------------------- */

/* Find the mapping of data.mdb in /proc/self/maps (LMDB does not tell). */
static void find_map(cairn_index_cache *c)
{
	struct stat st;
	char line[512];
	FILE *f;

	c->map_addr = NULL;
	c->map_len = 0;
	if (stat(c->data_path, &st) != 0 || !(f = fopen("/proc/self/maps", "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, off, ino;
		unsigned maj, mnr;
		if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu", &start, &end, &off, &maj, &mnr, &ino) == 6
			&& ino == (unsigned long)st.st_ino && maj == major(st.st_dev)
			&& mnr == minor(st.st_dev) && off == 0 && end - start > c->map_len) {
			c->map_addr = (char *)start;
			c->map_len = end - start;
		}
	}
	fclose(f);
}

/* Drop this process's page table entries of the mapping (see the file
 * comment).  The caller holds a slot or all of them, so it cannot move. */
static void trim(cairn_index_cache *c)
{
	if (c->map_addr)
		madvise(c->map_addr, c->map_len, MADV_DONTNEED);
}

/* File-backed resident bytes of the process (statm: "shared"), or -1. */
static long file_rss(cairn_index_cache *c)
{
	char buf[160];
	long size, resident, shared;
	ssize_t n;

	if (c->statm_fd < 0 || (n = pread(c->statm_fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%ld %ld %ld", &size, &resident, &shared) != 3)
		return -1;
	return shared * sysconf(_SC_PAGESIZE);
}

/* Every TRIM_CHECK operations in a slot (held): trim when the mapping
 * outgrew its budget. */
static void maybe_trim(cairn_index_cache *c, slot *s)
{
	long rss;

	if (++s->ops % TRIM_CHECK != 0)
		return;
	if ((rss = file_rss(c)) >= 0 && rss - c->rss_base > MAP_RSS_BUDGET)
		trim(c);
}

/* Another process made the database larger than our map (a build with a
 * larger MAP_SIZE): adopt its size.  Takes every slot. */
static int remap(cairn_index_cache *c)
{
	int rc;
	lock_all(c);
	rc = mdb_env_set_mapsize(c->env, 0);
	find_map(c);
	unlock_all(c);
	return rc;
}

/* ---- read transactions --------------------------------------------------- */

static int slot_begin(cairn_index_cache *c, slot *s)
{
	int rc;

	if (s->txn) {
		if ((rc = mdb_txn_renew(s->txn)) != 0) {
			mdb_txn_abort(s->txn);
			s->txn = NULL;
		}
		return rc;
	}
	return mdb_txn_begin(c->env, NULL, MDB_RDONLY, &s->txn);
}

/* A read transaction in a slot; adopts a grown map and retries. */
static int read_begin(slot **out, cairn_index_cache *c)
{
	for (int tries = 0; ; tries++) {
		slot *s = take_slot(c);
		int rc = slot_begin(c, s);
		if (rc == 0) {
			*out = s;
			return 0;
		}
		give_slot(s);
		if (rc != MDB_MAP_RESIZED || tries == 3)
			return rc;
		if ((rc = remap(c)) != 0)
			return rc;
	}
}

static void read_end(cairn_index_cache *c, slot *s, int trim_check)
{
	mdb_txn_reset(s->txn);
	if (trim_check)
		maybe_trim(c, s);
	give_slot(s);
}

/* ---- open, check, wipe --------------------------------------------------- */

static void env_close(cairn_index_cache *c)
{
	for (int i = 0; i < N_SLOTS; i++) {
		if (c->slots[i].txn)
			mdb_txn_abort(c->slots[i].txn);
		c->slots[i].txn = NULL;
	}
	if (c->env)
		mdb_env_close(c->env);
	c->env = NULL;
	c->map_addr = NULL;
	c->map_len = 0;
}

static int env_open(cairn_index_cache *c)
{
	int rc;

	if ((rc = mdb_env_create(&c->env)) != 0) {
		c->env = NULL;
		return rc;
	}
	if ((rc = mdb_env_set_maxdbs(c->env, 4)) != 0
		|| (rc = mdb_env_set_maxreaders(c->env, MAX_READERS)) != 0
		|| (rc = mdb_env_set_mapsize(c->env, MAP_SIZE)) != 0
		|| (rc = mdb_env_open(c->env, c->dir, MDB_NOTLS | MDB_NORDAHEAD, 0600)) != 0) {
		mdb_env_close(c->env);
		c->env = NULL;
		return rc;
	}
	mdb_reader_check(c->env, NULL); /* free the reader slots of dead processes */
	find_map(c);
	return 0;
}

static int put_u64(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t v)
{
	unsigned char b[8];
	MDB_val k = { strlen(key), (void *)key }, d = { 8, b };
	put_le64(b, v);
	return mdb_put(txn, dbi, &k, &d, 0);
}

static int put_u32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t v)
{
	unsigned char b[4];
	MDB_val k = { strlen(key), (void *)key }, d = { 4, b };
	put_le32(b, v);
	return mdb_put(txn, dbi, &k, &d, 0);
}

static int put_str(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *v)
{
	MDB_val k = { strlen(key), (void *)key }, d = { strlen(v), (void *)v };
	return mdb_put(txn, dbi, &k, &d, 0);
}

static int get_meta(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *out)
{
	MDB_val k = { strlen(key), (void *)key };
	return mdb_get(txn, dbi, &k, out);
}

/* Counts from meta: 0, MDB_NOTFOUND or another LMDB result. */
static int read_counts(MDB_txn *txn, cairn_index_cache *c, uint64_t *blobs, uint32_t *packs)
{
	MDB_val v;
	int rc;

	if ((rc = get_meta(txn, c->meta, "blobs", &v)) != 0)
		return rc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	*blobs = get_le64(v.mv_data);
	if ((rc = get_meta(txn, c->meta, "packs", &v)) != 0)
		return rc;
	if (v.mv_size != 4)
		return MDB_CORRUPTED;
	*packs = get_le32(v.mv_data);
	return 0;
}

/* Open the four tables, creating them (and meta) in a new database. */
static int open_tables(cairn_index_cache *c)
{
	for (int pass = 0; pass < 2; pass++) {
		unsigned create = pass ? MDB_CREATE : 0;
		MDB_txn *txn = NULL;
		MDB_val v;
		int rc;

		if ((rc = mdb_txn_begin(c->env, NULL, pass ? 0 : MDB_RDONLY, &txn)) != 0)
			return rc;
		if ((rc = mdb_dbi_open(txn, "meta", create, &c->meta)) == 0
			&& (rc = mdb_dbi_open(txn, "blobs", create, &c->blobs)) == 0
			&& (rc = mdb_dbi_open(txn, "packs", create | MDB_INTEGERKEY, &c->packs)) == 0)
			rc = mdb_dbi_open(txn, "seen", create, &c->seen);
		if (rc == MDB_NOTFOUND && pass == 0) {
			mdb_txn_abort(txn);
			continue;
		}
		if (rc == 0 && pass == 1 && get_meta(txn, c->meta, "format", &v) == MDB_NOTFOUND) {
			MDB_val rk = { 4, "repo" }, rv = { CAIRN_ID_SIZE, c->repo_id.bytes };
			if ((rc = put_str(txn, c->meta, "format", CACHE_FORMAT)) == 0
				&& (rc = mdb_put(txn, c->meta, &rk, &rv, 0)) == 0
				&& (rc = put_u64(txn, c->meta, "blobs", 0)) == 0
				&& (rc = put_u32(txn, c->meta, "packs", 0)) == 0)
				rc = put_str(txn, c->meta, "state", "ready");
		}
		if (rc != 0) {
			mdb_txn_abort(txn);
			return rc;
		}
		return mdb_txn_commit(txn);
	}
	return MDB_NOTFOUND;
}

static int meta_is(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *want, size_t len)
{
	MDB_val v;
	return get_meta(txn, dbi, key, &v) == 0 && v.mv_size == len && memcmp(v.mv_data, want, len) == 0;
}

/* Is the database ours and sane?  0 yes; 1 no, with the reason in `why`;
 * another value is an LMDB failure. */
static int check_database(cairn_index_cache *c, char *why, size_t why_size)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_stat sb, sp, ss;
	MDB_val k, v;
	uint64_t blobs = 0;
	uint32_t packs = 0;
	unsigned last;
	int rc, bad = 1;

	if ((rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn)) != 0)
		return rc;
	if (!meta_is(txn, c->meta, "format", CACHE_FORMAT, sizeof(CACHE_FORMAT) - 1)) {
		snprintf(why, why_size, "it has another format");
	} else if (!meta_is(txn, c->meta, "repo", c->repo_id.bytes, CAIRN_ID_SIZE)) {
		snprintf(why, why_size, "it belongs to another repository");
	} else if (!meta_is(txn, c->meta, "state", "ready", 5)) {
		snprintf(why, why_size, "an earlier merge did not finish");
	} else if ((rc = read_counts(txn, c, &blobs, &packs)) != 0
		|| (rc = mdb_stat(txn, c->blobs, &sb)) != 0 || (rc = mdb_stat(txn, c->packs, &sp)) != 0
		|| (rc = mdb_stat(txn, c->seen, &ss)) != 0) {
		snprintf(why, why_size, "%s", mdb_strerror(rc));
	} else if (sb.ms_entries != blobs || sp.ms_entries != packs || (blobs && !ss.ms_entries)) {
		snprintf(why, why_size, "its entry counts do not match (%" PRIu64 " blobs, %zu in the table)",
			blobs, (size_t)sb.ms_entries);
	} else {
		bad = 0;
	}
	if (!bad && blobs) {
		/* the first and the last entry of each table pass their check */
		if ((rc = mdb_cursor_open(txn, c->blobs, &cur)) != 0
			|| (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) != 0 || !val_ok(&k, &v)
			|| (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0 || !val_ok(&k, &v))
			bad = 1;
		if (cur)
			mdb_cursor_close(cur);
		cur = NULL;
		if (!bad && ((rc = mdb_cursor_open(txn, c->packs, &cur)) != 0
			|| (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) != 0 || k.mv_size != sizeof(unsigned)
			|| (memcpy(&last, k.mv_data, sizeof(last)), last != packs - 1)
			|| v.mv_size != PACK_VAL_SIZE
			|| get_le32((unsigned char *)v.mv_data + CAIRN_ID_SIZE)
				!= pack_check(packs - 1, v.mv_data)))
			bad = 1;
		if (cur)
			mdb_cursor_close(cur);
		if (bad)
			snprintf(why, why_size, "an entry fails its check");
	}
	mdb_txn_abort(txn);
	return bad;
}

static void unlink_quiet(const char *path)
{
	if (unlink(path) != 0 && errno != ENOENT)
		cairn_log(CAIRN_LOG_WARN, "index", "cannot remove '%s': %s", path, strerror(errno));
}

/* Delete the database files.  The caller closed its environment and holds
 * merge.lock exclusively. */
static void wipe(cairn_index_cache *c)
{
	char *lockmdb = join(c->dir, "lock.mdb");

	unlink_quiet(c->data_path);
	if (lockmdb)
		unlink_quiet(lockmdb);
	unlink_quiet(c->damaged_path);
	free(lockmdb);
}

/* Open the environment and check it; delete and recreate a stale or damaged
 * one (once).  Failures of the system (permissions, space, too many readers)
 * delete nothing.  Holds merge.lock exclusively: no merge runs meanwhile. */
static int attach(cairn_index_cache *c)
{
	char why[160];
	int r = 0;

	if (flock(c->lock_fd, LOCK_EX) != 0)
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot lock the index cache '%s'", c->dir);
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = 0, stale = 0;

		why[0] = '\0';
		if (access(c->damaged_path, F_OK) == 0) {
			snprintf(why, sizeof(why), "it was marked damaged");
			stale = 1;
		} else if ((rc = env_open(c)) != 0 || (rc = open_tables(c)) != 0) {
			snprintf(why, sizeof(why), "%s", mdb_strerror(rc));
			stale = is_damage(rc);
		} else if ((rc = check_database(c, why, sizeof(why))) == 1) {
			stale = 1;
		} else if (rc != 0) {
			snprintf(why, sizeof(why), "%s", mdb_strerror(rc));
			stale = is_damage(rc);
		}
		if (!why[0])
			break;
		env_close(c);
		if (!stale || attempt == 1) {
			r = cairn_error_set(CAIRN_EIO, "cannot use the index cache '%s': %s", c->dir, why);
			break;
		}
		cairn_log(CAIRN_LOG_INFO, "index", "index cache '%s': %s, rebuilding it", c->dir, why);
		wipe(c);
		atomic_store(&c->damaged, 0);
	}
	flock(c->lock_fd, LOCK_UN);
	return r;
}

int cairn_index_cache__open(cairn_index_cache **out, const char *cache_dir, const cairn_id *repo_id)
{
	cairn_index_cache *c = NULL;
	char hex[CAIRN_ID_HEX_SIZE], *repo_dir = NULL;
	struct stat st;
	int r = 0;

	*out = NULL;
	if (!cache_dir || !*cache_dir)
		return cairn_error_set(CAIRN_EINVAL, "no cache folder given");
	if (!(c = aligned_alloc(_Alignof(cairn_index_cache), sizeof(*c)))) /* slots are line-aligned */
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	memset(c, 0, sizeof(*c));
	c->lock_fd = -1;
	c->statm_fd = -1;
	c->repo_id = *repo_id;
	for (int i = 0; i < N_SLOTS; i++)
		pthread_mutex_init(&c->slots[i].mu, NULL);
	cairn_id_to_hex(hex, repo_id);
	if (!(repo_dir = join(cache_dir, hex)) || !(c->dir = join(repo_dir, "index.lmdb"))
		|| !(c->data_path = join(c->dir, "data.mdb")) || !(c->lock_path = join(c->dir, "merge.lock"))
		|| !(c->damaged_path = join(c->dir, "damaged"))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = mkdir_p(c->dir)) < 0)
		goto out;
	write_cachedir_tag(cache_dir);
	if (stat(c->dir, &st) != 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot use cache folder '%s'", c->dir);
		goto out;
	}
	c->dir_dev = st.st_dev;
	c->dir_ino = st.st_ino;
	if ((r = registry_add(c)) < 0)
		goto out;
	if ((c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot open '%s'", c->lock_path);
		goto out;
	}
	if ((r = attach(c)) < 0)
		goto out;
	c->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	c->rss_base = file_rss(c);
	*out = c;
	c = NULL;
out:
	free(repo_dir);
	cairn_index_cache__free(c);
	return r;
}

void cairn_index_cache__free(cairn_index_cache *c)
{
	if (!c)
		return;
	env_close(c);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	if (c->statm_fd >= 0)
		close(c->statm_fd);
	registry_remove(c);
	for (int i = 0; i < N_SLOTS; i++)
		pthread_mutex_destroy(&c->slots[i].mu);
	free(c->dir);
	free(c->data_path);
	free(c->lock_path);
	free(c->damaged_path);
	free(c);
}

const char *cairn_index_cache__path(const cairn_index_cache *c)
{
	return c->dir;
}

/* ---- lookups --------------------------------------------------------------- */

/* The id of pack number `num` in txn. */
static int pack_get(cairn_id *out, cairn_index_cache *c, MDB_txn *txn, uint32_t num)
{
	unsigned key = num;
	MDB_val k = { sizeof(key), &key }, v;
	int rc = mdb_get(txn, c->packs, &k, &v);

	if (rc == MDB_NOTFOUND)
		return mark_damaged(c, "a blob names an unknown pack number");
	if (rc != 0)
		return db_failure(c, rc, "read a pack");
	if (v.mv_size != PACK_VAL_SIZE
		|| get_le32((unsigned char *)v.mv_data + CAIRN_ID_SIZE) != pack_check(num, v.mv_data))
		return mark_damaged(c, "a pack entry fails its check");
	memcpy(out->bytes, v.mv_data, CAIRN_ID_SIZE);
	return 0;
}

static void decode_val(cairn_blob_location *out, const unsigned char *val)
{
	out->offset = get_le32(val + 4);
	out->length = get_le32(val + 8);
	out->uncompressed_length = get_le32(val + 12);
}

int cairn_index_cache__lookup(cairn_blob_location *out, cairn_index_cache *c,
	cairn_blob_type type, const cairn_id *id)
{
	unsigned char key[KEY_SIZE];
	MDB_val k = { KEY_SIZE, key }, v;
	slot *s;
	int rc, r;

	encode_key(key, type, id);
	if ((rc = read_begin(&s, c)) != 0)
		return db_failure(c, rc, "start a read transaction");
	rc = mdb_get(s->txn, c->blobs, &k, &v);
	if (rc == MDB_NOTFOUND) {
		r = 0;
	} else if (rc != 0) {
		r = db_failure(c, rc, "look up a blob");
	} else if (!val_ok(&k, &v)) {
		r = mark_damaged(c, "a blob entry fails its check");
	} else {
		r = 1;
		if (out) {
			decode_val(out, v.mv_data);
			if ((r = pack_get(&out->pack, c, s->txn, get_le32(v.mv_data))) == 0)
				r = 1;
		}
	}
	read_end(c, s, 1);
	return r;
}

int cairn_index_cache__count(uint64_t *out, cairn_index_cache *c)
{
	MDB_stat st;
	slot *s;
	int rc;

	*out = 0;
	if ((rc = read_begin(&s, c)) != 0)
		return db_failure(c, rc, "start a read transaction");
	rc = mdb_stat(s->txn, c->blobs, &st);
	read_end(c, s, 0);
	if (rc != 0)
		return db_failure(c, rc, "count the entries");
	*out = st.ms_entries;
	return 0;
}

int cairn_index_cache__foreach(cairn_index_cache *c, cairn_index_foreach_cb cb, void *payload)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	cairn_blob_location loc;
	cairn_id id;
	uint32_t last = 0;
	int have_last = 0, rc, r = 0;
	slot *s;

	if ((rc = read_begin(&s, c)) != 0)
		return db_failure(c, rc, "start a read transaction");
	if ((rc = mdb_cursor_open(s->txn, c->blobs, &cur)) != 0) {
		r = db_failure(c, rc, "open a cursor");
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const unsigned char *key = k.mv_data;
		uint32_t num;

		if (!val_ok(&k, &v)) {
			r = mark_damaged(c, "a blob entry fails its check");
			break;
		}
		num = get_le32(v.mv_data);
		if (!have_last || num != last) {
			if ((r = pack_get(&loc.pack, c, s->txn, num)) < 0)
				break;
			last = num;
			have_last = 1;
		}
		decode_val(&loc, v.mv_data);
		memcpy(id.bytes, key + 1, CAIRN_ID_SIZE);
		if ((r = cb((cairn_blob_type)key[0], &id, &loc, payload)) != 0)
			break;
		maybe_trim(c, s);
	}
	if (r == 0 && rc != MDB_NOTFOUND)
		r = db_failure(c, rc, "walk the entries");
out:
	if (cur)
		mdb_cursor_close(cur);
	read_end(c, s, 0);
	return r;
}

/* ---- sorting the entries to merge ------------------------------------------ */

/* Entries are merged in key order: inserting 2,000,000 random keys one by
 * one would touch every page of the tree again and again (each touch a page
 * fault once the mapping is trimmed), while keys in order visit each page
 * once.  So the entries of the files to merge are collected in runs of
 * RUN_RECS records, each sorted and, when full, spilled to an unlinked temp
 * file in the cache folder; then the runs are merged with a heap.  Ties
 * (a blob listed twice) are broken by arrival order, so the first location
 * wins as in memory. */
#define RUN_RECS 65536
#define READ_RECS 1024

typedef struct rec {
	unsigned char key[KEY_SIZE];
	unsigned char pad[3];
	uint32_t seq;               /* arrival order */
	uint32_t pack, offset, length, ulen;
} rec;

typedef struct run_reader {
	const rec *mem;             /* the in-memory run, or NULL: a spilled run */
	uint64_t pos, end;          /* in records (file runs: absolute in the temp file) */
	rec *buf;                   /* READ_RECS records read ahead */
	size_t at, have;
} run_reader;

typedef struct sorter {
	rec *buf;
	size_t n;
	int fd;                     /* the spilled runs, -1 until the first spill */
	uint64_t spilled;           /* records in the temp file */
	uint64_t *runs;             /* start of each spilled run, in records */
	size_t n_runs;
	uint32_t seq;
	const char *dir;
} sorter;

static int rec_compare(const void *a, const void *b)
{
	const rec *x = a, *y = b;
	int c = memcmp(x->key, y->key, KEY_SIZE);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void sorter_release(sorter *so)
{
	free(so->buf);
	free(so->runs);
	if (so->fd >= 0)
		close(so->fd);
	memset(so, 0, sizeof(*so));
	so->fd = -1;
}

static int write_all(int fd, const void *data, size_t len, off_t at)
{
	const char *p = data;
	while (len) {
		ssize_t w = pwrite(fd, p, len, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		len -= (size_t)w;
		at += w;
	}
	return 0;
}

/* Sort the run in memory and append it to the temp file.  0 or an errno. */
static int sorter_spill(sorter *so)
{
	uint64_t *runs;
	int rc;

	qsort(so->buf, so->n, sizeof(rec), rec_compare);
	if (so->fd < 0) {
		char *tmpl = join(so->dir, "merge.XXXXXX");
		if (!tmpl)
			return ENOMEM;
		so->fd = mkostemp(tmpl, O_CLOEXEC);
		rc = errno;
		if (so->fd >= 0)
			unlink(tmpl);
		free(tmpl);
		if (so->fd < 0)
			return rc;
	}
	if (!(runs = realloc(so->runs, (so->n_runs + 1) * sizeof(*runs))))
		return ENOMEM;
	so->runs = runs;
	if ((rc = write_all(so->fd, so->buf, so->n * sizeof(rec), (off_t)(so->spilled * sizeof(rec)))) != 0)
		return rc;
	so->runs[so->n_runs++] = so->spilled;
	so->spilled += so->n;
	so->n = 0;
	return 0;
}

/* 0 or an errno. */
static int sorter_push(sorter *so, const unsigned char *key, uint32_t pack, const cairn_pack_entry *e)
{
	rec *r;
	int rc;

	if (!so->buf && !(so->buf = malloc(RUN_RECS * sizeof(rec))))
		return ENOMEM;
	if (so->n == RUN_RECS && (rc = sorter_spill(so)) != 0)
		return rc;
	r = &so->buf[so->n++];
	memcpy(r->key, key, KEY_SIZE);
	memset(r->pad, 0, sizeof(r->pad));
	r->seq = so->seq++;
	r->pack = pack;
	r->offset = e->offset;
	r->length = e->length;
	r->ulen = e->uncompressed_length;
	return 0;
}

/* The reader's current record, or NULL at its end; 0 or an errno in *rc. */
static const rec *reader_peek(run_reader *rd, int fd, int *rc)
{
	*rc = 0;
	if (rd->mem)
		return rd->pos < rd->end ? &rd->mem[rd->pos] : NULL;
	if (rd->at == rd->have) {
		uint64_t left = rd->end - rd->pos;
		size_t want = left < READ_RECS ? (size_t)left : READ_RECS, got = 0;
		while (got < want * sizeof(rec)) {
			ssize_t n = pread(fd, (char *)rd->buf + got, want * sizeof(rec) - got,
				(off_t)(rd->pos * sizeof(rec) + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				*rc = n < 0 ? errno : EIO;
				return NULL;
			}
			got += (size_t)n;
		}
		rd->at = 0;
		rd->have = want;
		if (!want)
			return NULL;
	}
	return &rd->buf[rd->at];
}

static void reader_next(run_reader *rd)
{
	rd->pos++;
	if (!rd->mem)
		rd->at++;
}

typedef int (*emit_fn)(const rec *r, void *payload);

/* Restore the heap below position i (heap of reader numbers by head record). */
static void sift_down(size_t *heap, size_t n, size_t i, const rec **head)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && rec_compare(head[heap[l]], head[heap[m]]) < 0)
			m = l;
		if (l + 1 < n && rec_compare(head[heap[l + 1]], head[heap[m]]) < 0)
			m = l + 1;
		if (m == i)
			return;
		size_t t = heap[i];
		heap[i] = heap[m];
		heap[m] = t;
		i = m;
	}
}

/* Emit every record in (key, arrival) order.  0, an errno, or emit's
 * non-zero result. */
static int sorter_merge(sorter *so, emit_fn emit, void *payload)
{
	size_t k = so->n_runs + 1, n = 0;
	run_reader *rd = calloc(k, sizeof(*rd));
	const rec **head = calloc(k, sizeof(*head));
	size_t *heap = calloc(k, sizeof(*heap));
	int rc = 0;

	if (!rd || !head || !heap) {
		rc = ENOMEM;
		goto out;
	}
	if (so->buf)
		qsort(so->buf, so->n, sizeof(rec), rec_compare);
	for (size_t i = 0; i < so->n_runs; i++) {
		rd[i].pos = so->runs[i];
		rd[i].end = i + 1 < so->n_runs ? so->runs[i + 1] : so->spilled;
		if (!(rd[i].buf = malloc(READ_RECS * sizeof(rec)))) {
			rc = ENOMEM;
			goto out;
		}
	}
	rd[k - 1].mem = so->buf;
	rd[k - 1].end = so->n;
	for (size_t i = 0; i < k; i++) {
		if ((head[i] = reader_peek(&rd[i], so->fd, &rc)) != NULL)
			heap[n++] = i;
		if (rc)
			goto out;
	}
	for (size_t i = n / 2; i-- > 0; )
		sift_down(heap, n, i, head);
	while (n) {
		size_t top = heap[0];
		if ((rc = emit(head[top], payload)) != 0)
			goto out;
		reader_next(&rd[top]);
		head[top] = reader_peek(&rd[top], so->fd, &rc);
		if (rc)
			goto out;
		if (!head[top])
			heap[0] = heap[--n];
		sift_down(heap, n, 0, head);
	}
out:
	if (rd)
		for (size_t i = 0; i < k; i++)
			free(rd[i].buf);
	free(rd);
	free(head);
	free(heap);
	return rc;
}

/* ---- sync ------------------------------------------------------------------ */

typedef struct merge_ctx {
	cairn_index_cache *c;
	MDB_txn *txn;               /* the current write transaction */
	sorter so;
	uint64_t blobs;             /* entries in the blobs table */
	uint32_t next_pack;
	cairn_id pack;              /* the pack of the current run of blobs */
	uint32_t pack_num;
	int have_pack;
	int append;                 /* the table was empty: keys only ever grow */
	unsigned char last[KEY_SIZE];
	int have_last;
	uint64_t listed;            /* blobs the current file lists */
	uint64_t puts, batch;       /* puts so far, and per commit */
	int rc;                     /* the first LMDB (or errno) failure in a callback */
} merge_ctx;

/* Commit the current write transaction (MDB_NOSYNC is on) and begin the
 * next, so that LMDB's dirty pages stay few. */
static int next_txn(merge_ctx *m)
{
	int rc = mdb_txn_commit(m->txn);
	m->txn = NULL;
	if (rc == 0)
		rc = mdb_txn_begin(m->c->env, NULL, 0, &m->txn);
	trim(m->c);
	return rc;
}

/* Parser callback: number the pack, queue the entry for the sorted merge. */
static int collect_entry(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	merge_ctx *m = payload;
	unsigned char key[KEY_SIZE];
	int rc;

	if (!m->have_pack || !cairn_id_equal(pack, &m->pack)) {
		unsigned num = m->next_pack;
		unsigned char pv[PACK_VAL_SIZE];
		MDB_val pk = { sizeof(num), &num }, pd = { PACK_VAL_SIZE, pv };

		if (m->next_pack == UINT32_MAX) {
			m->rc = MDB_MAP_FULL; /* 4 billion packs: a rebuild renumbers */
			return 1;
		}
		memcpy(pv, pack->bytes, CAIRN_ID_SIZE);
		put_le32(pv + CAIRN_ID_SIZE, pack_check(num, pack->bytes));
		if ((rc = mdb_put(m->txn, m->c->packs, &pk, &pd, MDB_APPEND)) != 0
			|| (++m->next_pack % BATCH_APPEND == 0 && (rc = next_txn(m)) != 0)) {
			m->rc = rc;
			return 1;
		}
		m->pack = *pack;
		m->pack_num = num;
		m->have_pack = 1;
	}
	encode_key(key, e->type, &e->id);
	if ((rc = sorter_push(&m->so, key, m->pack_num, e)) != 0) {
		m->rc = rc;
		return 1;
	}
	m->listed++;
	return 0;
}

/* Sorted merge: put one entry (a key seen before keeps its first location). */
static int put_entry(const rec *r, void *payload)
{
	merge_ctx *m = payload;
	unsigned char val[VAL_SIZE];
	MDB_val k = { KEY_SIZE, (void *)r->key }, v = { VAL_SIZE, val };
	cairn_pack_entry e;
	int rc;

	if (m->have_last && memcmp(m->last, r->key, KEY_SIZE) == 0)
		return 0;
	memcpy(m->last, r->key, KEY_SIZE);
	m->have_last = 1;
	e.offset = r->offset;
	e.length = r->length;
	e.uncompressed_length = r->ulen;
	encode_val(val, r->key, r->pack, &e);
	rc = mdb_put(m->txn, m->c->blobs, &k, &v, m->append ? MDB_APPEND : MDB_NOOVERWRITE);
	if (rc == 0)
		m->blobs++;
	else if (rc != MDB_KEYEXIST)
		return rc;
	if (++m->puts % m->batch == 0)
		return next_txn(m);
	if (m->puts % TRIM_PUTS == 0)
		trim(m->c);
	return 0;
}

static int file_compare(const void *a, const void *b)
{
	return memcmp(((const cairn_index_file *)a)->id.bytes, ((const cairn_index_file *)b)->id.bytes,
		CAIRN_ID_SIZE);
}

/* Mark in merged[] the listed files that `seen` records; *vanished when it
 * records one that is not listed. */
static int read_seen(cairn_index_cache *c, MDB_txn *txn, const cairn_index_file *files, size_t n,
	unsigned char *merged, int *vanished)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc;

	*vanished = 0;
	memset(merged, 0, n);
	if ((rc = mdb_cursor_open(txn, c->seen, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		cairn_index_file key;
		const cairn_index_file *hit;

		if (k.mv_size != CAIRN_ID_SIZE) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(key.id.bytes, k.mv_data, CAIRN_ID_SIZE);
		hit = n ? bsearch(&key, files, n, sizeof(*files), file_compare) : NULL;
		if (hit)
			merged[hit - files] = 1;
		else
			*vanished = 1;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* An LMDB or system failure during a sync: a damaged database is deleted
 * and the caller retries once from scratch; anything else fails the sync as
 * the cache's failure.  Returns 1 to retry, or the error. */
static int sync_failed(cairn_index_cache *c, int rc, int *retried, cairn_index_sync_stats *stats)
{
	stats->files_merged = 0;
	stats->blobs_merged = 0;
	if (is_damage(rc) && !*retried) {
		*retried = 1;
		cairn_log(CAIRN_LOG_INFO, "index", "index cache '%s' is damaged (%s), rebuilding it",
			c->dir, mdb_strerror(rc));
		return 1;
	}
	stats->cache_failed = 1;
	return db_failure(c, rc, "merge index files");
}

/* The write phase of a sync: merge.lock held, every slot held.  Returns an
 * index file's error (what was read before it is merged) or 0; an LMDB or
 * system failure is left in *lmdb_rc (the database may then be half-merged,
 * in state "merging"). */
static int merge_files(cairn_index_cache *c, const cairn_index_file *files, size_t n,
	cairn_index_fetch_cb fetch, void *payload, cairn_index_sync_stats *stats, cairn_buf *json,
	unsigned char *merged, int *lmdb_rc)
{
	merge_ctx m;
	MDB_stat st;
	unsigned char *parsed = NULL;
	uint64_t *listed = NULL;
	size_t todo = 0;
	int vanished = 0, rc = 0, r = 0, nosync = 0;

	memset(&m, 0, sizeof(m));
	m.c = c;
	m.so.fd = -1;
	m.so.dir = c->dir;
	*lmdb_rc = 0;

	/* `seen` again, in the write transaction: another process may have
	 * merged (or rebuilt) since the plan was made. */
	if ((rc = mdb_txn_begin(c->env, NULL, 0, &m.txn)) != 0
		|| (rc = read_seen(c, m.txn, files, n, merged, &vanished)) != 0)
		goto failed;
	if (vanished)
		memset(merged, 0, n);
	for (size_t i = 0; i < n; i++)
		todo += !merged[i];
	if (!vanished && !todo) {
		mdb_txn_abort(m.txn);
		return 0;
	}
	if (vanished) {
		cairn_log(CAIRN_LOG_INFO, "index", "index cache '%s': an index file it merged is gone from "
			"the repository, rebuilding it", c->dir);
		if ((rc = mdb_drop(m.txn, c->blobs, 0)) != 0 || (rc = mdb_drop(m.txn, c->packs, 0)) != 0
			|| (rc = mdb_drop(m.txn, c->seen, 0)) != 0 || (rc = put_u64(m.txn, c->meta, "blobs", 0)) != 0
			|| (rc = put_u32(m.txn, c->meta, "packs", 0)) != 0)
			goto failed;
		stats->rebuilt = 1;
	} else if ((rc = read_counts(m.txn, c, &m.blobs, &m.next_pack)) != 0) {
		goto failed;
	}
	cairn_log(CAIRN_LOG_DEBUG, "index", "index cache '%s': merging %zu of %zu index files", c->dir,
		todo, n);
	/* "merging" goes to disk before anything else does */
	if ((rc = put_str(m.txn, c->meta, "state", "merging")) != 0
		|| (rc = mdb_stat(m.txn, c->blobs, &st)) != 0 || (rc = mdb_txn_commit(m.txn)) != 0) {
		m.txn = NULL;
		goto failed;
	}
	m.txn = NULL;
	if ((rc = mdb_env_set_flags(c->env, MDB_NOSYNC, 1)) != 0)
		goto failed;
	nosync = 1;
	if ((rc = mdb_txn_begin(c->env, NULL, 0, &m.txn)) != 0)
		goto failed;
	m.append = st.ms_entries == 0;
	m.batch = m.append ? BATCH_APPEND : BATCH_INSERT;
	if (!(parsed = calloc(n ? n : 1, 1)) || !(listed = calloc(n ? n : 1, sizeof(*listed)))) {
		rc = ENOMEM;
		goto failed;
	}

	/* Read the files: number their packs, queue their entries. */
	for (size_t i = 0; i < n; i++) {
		char name[CAIRN_ID_HEX_SIZE];

		if (merged[i])
			continue;
		if ((r = fetch(json, &files[i].id, payload)) < 0)
			break;
		m.have_pack = 0;
		m.listed = 0;
		r = cairn_index_parse_json((const char *)json->data, json->len, collect_entry, &m);
		if (m.rc) {
			rc = m.rc;
			goto failed;
		}
		if (r < 0) {
			cairn_id_to_hex(name, &files[i].id);
			r = cairn_error_wrap(r, "index file '%s'", name);
			break;
		}
		parsed[i] = 1;
		listed[i] = m.listed;
	}
	cairn_buf_release(json);

	/* Put the entries in key order; then, synced, the record of what was
	 * merged (also when a file failed: what was read is complete). */
	if ((rc = sorter_merge(&m.so, put_entry, &m)) != 0)
		goto failed;
	for (size_t i = 0; i < n; i++) {
		unsigned char cnt[8];
		MDB_val k = { CAIRN_ID_SIZE, (void *)files[i].id.bytes }, v = { 8, cnt };
		if (!parsed[i])
			continue;
		put_le64(cnt, listed[i]);
		if ((rc = mdb_put(m.txn, c->seen, &k, &v, 0)) != 0)
			goto failed;
		stats->files_merged++;
		stats->blobs_merged += listed[i];
	}
	if ((rc = put_u64(m.txn, c->meta, "blobs", m.blobs)) != 0
		|| (rc = put_u32(m.txn, c->meta, "packs", m.next_pack)) != 0
		|| (rc = put_str(m.txn, c->meta, "state", "ready")) != 0
		|| (rc = mdb_env_sync(c->env, 1)) != 0)
		goto failed;
	nosync = 0;
	if ((rc = mdb_env_set_flags(c->env, MDB_NOSYNC, 0)) != 0)
		goto failed;
	rc = mdb_txn_commit(m.txn);
	m.txn = NULL;
	if (rc != 0)
		goto failed;
	goto out;

failed:
	if (m.txn)
		mdb_txn_abort(m.txn);
	m.txn = NULL;
	if (nosync)
		mdb_env_set_flags(c->env, MDB_NOSYNC, 0);
	*lmdb_rc = rc ? rc : MDB_PANIC;
	r = 0;
out:
	trim(c);
	sorter_release(&m.so);
	free(parsed);
	free(listed);
	return r;
}

int cairn_index_cache__sync(cairn_index_cache *c, const cairn_index_file *files, size_t n,
	cairn_index_fetch_cb fetch, void *payload, cairn_index_sync_stats *stats)
{
	cairn_index_file *sorted = NULL;
	unsigned char *merged = NULL;
	cairn_buf json = CAIRN_BUF_INIT;
	MDB_txn *txn = NULL;
	int r = 0, rc, retried = 0, vanished = 0, locked = 0;
	size_t todo = 0;

	stats->files_listed = n;
	if (!(sorted = malloc((n ? n : 1) * sizeof(*sorted))) || !(merged = malloc(n ? n : 1))) {
		free(sorted);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	if (n) {
		memcpy(sorted, files, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), file_compare);
	}
	lock_all(c);
	/* Plan under a read snapshot and without merge.lock: a warm start that
	 * has nothing to merge waits for nobody. */
	if ((rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn)) == 0) {
		rc = read_seen(c, txn, sorted, n, merged, &vanished);
		mdb_txn_abort(txn);
	}
	if (rc != 0) {
		r = sync_failed(c, rc, &retried, stats);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++)
		todo += !merged[i];
	if (rc == 0 && !vanished && !todo)
		goto out;

	if (flock(c->lock_fd, LOCK_EX) != 0) {
		stats->cache_failed = 1;
		r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot lock the index cache '%s'", c->dir);
		goto out;
	}
	locked = 1;
	for (;;) {
		if (rc == 0) {
			r = merge_files(c, sorted, n, fetch, payload, stats, &json, merged, &rc);
			if (rc == 0)
				break;
			/* on failure a half-done merge may stay ("merging"): the next
			 * open deletes it; this process falls back to memory */
			if ((r = sync_failed(c, rc, &retried, stats)) < 0)
				break;
		}
		/* damaged: start afresh and merge everything */
		env_close(c);
		wipe(c);
		atomic_store(&c->damaged, 0);
		flock(c->lock_fd, LOCK_UN);
		locked = 0;
		if ((r = attach(c)) < 0) {
			stats->cache_failed = 1;
			break;
		}
		if (flock(c->lock_fd, LOCK_EX) != 0) {
			stats->cache_failed = 1;
			r = cairn_error_set_errno(CAIRN_EIO, errno, "cannot lock the index cache '%s'", c->dir);
			break;
		}
		locked = 1;
		stats->rebuilt = 1;
		rc = 0;
	}
out:
	if (locked)
		flock(c->lock_fd, LOCK_UN);
	unlock_all(c);
	cairn_buf_release(&json);
	free(sorted);
	free(merged);
	return r;
}
