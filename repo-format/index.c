/* index.c: the blob index and the index-file JSON codec
 * (include/cairn/index.h).
 *
 * A cairn_index is an in-memory table (below), plus, for a cached index, an
 * LMDB database of the entries of the repository's index files
 * (index_cache.c).  In memory the table holds every entry; in a cached index
 * it is the overlay: the entries this process added with cairn_index_add
 * (blobs of packs it stored during this session), which the database never
 * receives (index_cache.c states the invariant).  A lookup asks the database,
 * then the overlay; an add to a cached index first asks the database, so an
 * entry is in at most one of the two and the first location known wins.
 * After a sync, overlay entries that the database learnt from index files
 * are dropped from the overlay, so count and foreach see each entry once.
 *
 * Table: entries live in one dense array in insertion order; an
 * open-addressing table of uint32 slots (0 = empty, else entry number + 1)
 * with linear probing finds them by (type, blob id).  Blob ids are SHA-256
 * digests, already uniform, so the hash is simply their first 8 bytes (the
 * type flips the bits so that a data and a tree blob with the same id land
 * apart).  The slot table doubles before it passes 70% load.  Pack ids
 * repeat for every blob of a pack, so they are interned in a second small
 * table and entries store a uint32 pack number: an entry is 52 bytes.
 * Invariants: n_entries < slot capacity * 0.7; every entry is in exactly one
 * slot; the first location added for a (type, id) is the one kept; entries
 * are only appended (a purge builds a new table).  A pthread rwlock guards
 * the table and the list of files added: lookups and foreach share it, adds
 * hold it exclusively.  The database has its own locking; no thread holds
 * the rwlock while it waits for the database, except foreach's callback.
 *
 * JSON: a streaming parser (no tree; see "JSON parsing" below) that
 * accepts what jansson accepts and validates everything before a blob is
 * reported (64-hex ids, type exactly "data"/"tree", integer offsets and
 * lengths within uint32, length >= 32); anything else is CAIRN_ECORRUPT
 * naming the pack and blob.  Both the v2 object {"supersedes", "packs"} and
 * the legacy top-level array of packs are read.  The builder encodes by hand,
 * compactly and in restic's key order, into a buffer reserved once from an
 * upper bound.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/index.h>
#include "index_cache.h"

typedef struct index_entry {
	cairn_id id;
	uint32_t pack; /* number in the table's packs */
	uint32_t offset;
	uint32_t length;
	uint32_t ulen;
	uint8_t type;
} index_entry;

/* An open-addressing set of uint32 references (value = item number + 1). */
typedef struct slot_table {
	uint32_t *slots;
	size_t mask; /* capacity - 1; capacity is a power of two */
} slot_table;

typedef struct mem_table {
	index_entry *entries;
	size_t n, cap;
	slot_table table;       /* (type, id) -> entry */
	cairn_id *packs;
	size_t n_packs, packs_cap;
	slot_table pack_table;  /* pack id -> pack number */
	uint32_t last_pack;     /* pack number of the previous add (+1, 0 = none) */
} mem_table;

struct cairn_index {
	pthread_rwlock_t lock;  /* guards mem and files */
	mem_table mem;          /* every entry, or a cached index's overlay */
	cairn_index_cache *cache; /* NULL: in memory */
	cairn_id *files;        /* in memory: index files added by sync, sorted */
	size_t n_files, files_cap;
};

#define MAX_ITEMS ((size_t)UINT32_MAX - 1)

static uint64_t id_hash(const cairn_id *id, int type)
{
	uint64_t h;
	memcpy(&h, id->bytes, sizeof(h));
	return type ? ~h : h;
}

static int table_init(slot_table *t, size_t cap)
{
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate an index table of %zu slots", cap);
	t->mask = cap - 1;
	return 0;
}

static int table_needs_growth(const slot_table *t, size_t n_after)
{
	return n_after > (t->mask + 1) / 10 * 7;
}

/* Place item `value` (number + 1) with hash h; the caller knows it is new. */
static void table_place(slot_table *t, uint64_t h, uint32_t value)
{
	size_t i = (size_t)h & t->mask;
	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = value;
}

static int mem_init(mem_table *m)
{
	memset(m, 0, sizeof(*m));
	if (table_init(&m->table, 1024) < 0)
		return CAIRN_ENOMEM;
	if (table_init(&m->pack_table, 64) < 0) {
		free(m->table.slots);
		m->table.slots = NULL;
		return CAIRN_ENOMEM;
	}
	return 0;
}

static void mem_release(mem_table *m)
{
	free(m->entries);
	free(m->table.slots);
	free(m->packs);
	free(m->pack_table.slots);
	memset(m, 0, sizeof(*m));
}

/* The entry with (type, id), or NULL. */
static index_entry *find_entry(const mem_table *m, int type, const cairn_id *id)
{
	const slot_table *t = &m->table;
	size_t i = (size_t)id_hash(id, type) & t->mask;

	for (uint32_t v; (v = t->slots[i]) != 0; i = (i + 1) & t->mask) {
		index_entry *e = &m->entries[v - 1];
		if (e->type == type && cairn_id_equal(&e->id, id))
			return e;
	}
	return NULL;
}

static int grow_entry_table(mem_table *m)
{
	slot_table t;
	CAIRN_TRY(table_init(&t, (m->table.mask + 1) * 2));
	for (size_t k = 0; k < m->n; k++)
		table_place(&t, id_hash(&m->entries[k].id, m->entries[k].type), (uint32_t)(k + 1));
	free(m->table.slots);
	m->table = t;
	return 0;
}

static int grow_pack_table(mem_table *m)
{
	slot_table t;
	CAIRN_TRY(table_init(&t, (m->pack_table.mask + 1) * 2));
	for (size_t k = 0; k < m->n_packs; k++)
		table_place(&t, id_hash(&m->packs[k], 0), (uint32_t)(k + 1));
	free(m->pack_table.slots);
	m->pack_table = t;
	return 0;
}

/* Grow a plain array to hold one more element. */
static int array_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t new_cap;
	void *p;

	if (n < *cap)
		return 0;
	new_cap = *cap ? *cap * 2 : 64;
	if (new_cap > MAX_ITEMS + 1)
		new_cap = MAX_ITEMS + 1;
	if (n >= new_cap || new_cap > SIZE_MAX / elem)
		return cairn_error_set(CAIRN_ENOMEM, "index is full (%zu items)", n);
	if (!(p = realloc(*arr, new_cap * elem)))
		return cairn_error_set(CAIRN_ENOMEM, "cannot grow the index to %zu items", new_cap);
	*arr = p;
	*cap = new_cap;
	return 0;
}

/* Number of pack `id`, interning it if new.  Write lock held. */
static int intern_pack(uint32_t *num_out, mem_table *m, const cairn_id *id)
{
	slot_table *t = &m->pack_table;
	size_t i;
	uint32_t v;

	if (m->last_pack && cairn_id_equal(&m->packs[m->last_pack - 1], id)) {
		*num_out = m->last_pack - 1;
		return 0;
	}
	for (i = (size_t)id_hash(id, 0) & t->mask; (v = t->slots[i]) != 0; i = (i + 1) & t->mask) {
		if (cairn_id_equal(&m->packs[v - 1], id)) {
			m->last_pack = v;
			*num_out = v - 1;
			return 0;
		}
	}
	CAIRN_TRY(array_grow((void **)&m->packs, &m->packs_cap, m->n_packs, sizeof(cairn_id)));
	if (table_needs_growth(t, m->n_packs + 1))
		CAIRN_TRY(grow_pack_table(m));
	m->packs[m->n_packs] = *id;
	table_place(&m->pack_table, id_hash(id, 0), (uint32_t)(m->n_packs + 1));
	m->n_packs++;
	m->last_pack = (uint32_t)m->n_packs;
	*num_out = (uint32_t)(m->n_packs - 1);
	return 0;
}

/* 1 added, 0 already there (the first location is kept), negative on
 * failure.  Write lock held. */
static int mem_add(mem_table *m, int type, const cairn_id *id, const cairn_blob_location *loc)
{
	index_entry *e;
	uint32_t pack;

	if (find_entry(m, type, id))
		return 0;
	CAIRN_TRY(array_grow((void **)&m->entries, &m->cap, m->n, sizeof(*m->entries)));
	if (table_needs_growth(&m->table, m->n + 1))
		CAIRN_TRY(grow_entry_table(m));
	CAIRN_TRY(intern_pack(&pack, m, &loc->pack));
	e = &m->entries[m->n];
	e->id = *id;
	e->pack = pack;
	e->offset = loc->offset;
	e->length = loc->length;
	e->ulen = loc->uncompressed_length;
	e->type = (uint8_t)type;
	table_place(&m->table, id_hash(id, type), (uint32_t)(m->n + 1));
	m->n++;
	return 1;
}

static void fill_location(cairn_blob_location *out, const mem_table *m, const index_entry *e)
{
	out->pack = m->packs[e->pack];
	out->offset = e->offset;
	out->length = e->length;
	out->uncompressed_length = e->ulen;
}

/* ---- the index ---- */

/* Create an empty index in memory; the caller frees it with cairn_index_free(). */
int cairn_index_new(cairn_index **out)
{
	cairn_index *idx = calloc(1, sizeof(*idx));
	int r = 0;

	*out = NULL;
	if (!idx)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate the index");
	if ((r = mem_init(&idx->mem)) < 0) {
		free(idx);
		return r;
	}
	if (pthread_rwlock_init(&idx->lock, NULL) != 0) {
		mem_release(&idx->mem);
		free(idx);
		return cairn_error_set(CAIRN_ENOMEM, "cannot create the index lock");
	}
	*out = idx;
	return 0;
}

/* Create a cached index; the caller frees it with cairn_index_free(). */
int cairn_index_open_cache(cairn_index **out, const char *cache_dir, const cairn_id *repo_id)
{
	cairn_index *idx = NULL;
	int r;

	*out = NULL;
	if (!cache_dir || !repo_id)
		return cairn_error_set(CAIRN_EINVAL, "no cache folder or repository id given");
	if ((r = cairn_index_new(&idx)) < 0)
		return r;
	if ((r = cairn_index_cache__open(&idx->cache, cache_dir, repo_id)) < 0)
		goto out;
	*out = idx;
	idx = NULL;
out:
	cairn_index_free(idx);
	return r;
}

void cairn_index_free(cairn_index *idx)
{
	if (!idx)
		return;
	cairn_index_cache__free(idx->cache);
	pthread_rwlock_destroy(&idx->lock);
	mem_release(&idx->mem);
	free(idx->files);
	free(idx);
}

const char *cairn_index_cache_path(const cairn_index *idx)
{
	return idx && idx->cache ? cairn_index_cache__path(idx->cache) : NULL;
}

int cairn_index_add(cairn_index *idx, cairn_blob_type type, const cairn_id *id,
	const cairn_blob_location *loc)
{
	int r;

	if (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE)
		return cairn_error_set(CAIRN_EINVAL, "invalid blob type %d", (int)type);
	/* the database's location came first; a damaged entry is shadowed by the overlay */
	if (idx->cache && cairn_index_cache__lookup(NULL, idx->cache, type, id) == 1)
		return 0;
	pthread_rwlock_wrlock(&idx->lock);
	r = mem_add(&idx->mem, (int)type, id, loc);
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

int cairn_index_lookup(cairn_blob_location *out, cairn_index *idx, cairn_blob_type type,
	const cairn_id *id)
{
	const index_entry *e;
	int r = 0;

	if (idx->cache && (r = cairn_index_cache__lookup(out, idx->cache, type, id)) == 1)
		return 1;
	pthread_rwlock_rdlock(&idx->lock);
	if ((e = find_entry(&idx->mem, (int)type, id)) != NULL) {
		r = 1;
		if (out)
			fill_location(out, &idx->mem, e);
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

size_t cairn_index_count(cairn_index *idx)
{
	uint64_t in_cache = 0;
	size_t n;

	if (idx->cache && cairn_index_cache__count(&in_cache, idx->cache) < 0)
		in_cache = 0;
	pthread_rwlock_rdlock(&idx->lock);
	n = idx->mem.n;
	pthread_rwlock_unlock(&idx->lock);
	return n + (size_t)in_cache;
}

int cairn_index__foreach_added(cairn_index *idx, cairn_index_foreach_cb cb, void *payload)
{
	cairn_blob_location loc;
	int r = 0;

	pthread_rwlock_rdlock(&idx->lock);
	for (size_t k = 0; k < idx->mem.n && r == 0; k++) {
		const index_entry *e = &idx->mem.entries[k];
		fill_location(&loc, &idx->mem, e);
		r = cb((cairn_blob_type)e->type, &e->id, &loc, payload);
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

int cairn_index_foreach(cairn_index *idx, cairn_index_foreach_cb cb, void *payload)
{
	int r;

	if (idx->cache && (r = cairn_index_cache__foreach(idx->cache, cb, payload)) != 0)
		return r;
	return cairn_index__foreach_added(idx, cb, payload);
}

/* Drop from the overlay the entries that the database now has.  The keys
 * are copied out first, so that no database call happens under the rwlock;
 * entries are only appended, so the first `n` entries are still the ones
 * copied when the write lock is taken again. */
static int purge_overlay(cairn_index *idx)
{
	index_entry *copy = NULL;
	unsigned char *drop = NULL;
	mem_table fresh;
	size_t n, dropped = 0;
	int r = 0;

	pthread_rwlock_rdlock(&idx->lock);
	n = idx->mem.n;
	if (n && (copy = malloc(n * sizeof(*copy))))
		memcpy(copy, idx->mem.entries, n * sizeof(*copy));
	pthread_rwlock_unlock(&idx->lock);
	if (!n)
		return 0;
	if (!copy || !(drop = calloc(n, 1))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < n; k++)
		if (cairn_index_cache__lookup(NULL, idx->cache, copy[k].type, &copy[k].id) == 1) {
			drop[k] = 1;
			dropped++;
		}
	if (!dropped)
		goto out;
	if ((r = mem_init(&fresh)) < 0)
		goto out;
	pthread_rwlock_wrlock(&idx->lock);
	for (size_t k = 0; k < idx->mem.n && r >= 0; k++) {
		cairn_blob_location loc;
		const index_entry *e = &idx->mem.entries[k];
		if (k < n && drop[k])
			continue;
		fill_location(&loc, &idx->mem, e);
		r = mem_add(&fresh, e->type, &e->id, &loc);
	}
	if (r >= 0) {
		mem_release(&idx->mem);
		idx->mem = fresh;
		r = 0;
	} else {
		mem_release(&fresh);
	}
	pthread_rwlock_unlock(&idx->lock);
out:
	free(copy);
	free(drop);
	return r;
}

static int id_compare(const void *a, const void *b)
{
	return memcmp(a, b, CAIRN_ID_SIZE);
}

/* In memory: add each listed file not added before, and remember it. */
static int sync_memory(cairn_index *idx, const cairn_index_file *files, size_t n,
	cairn_index_fetch_cb fetch, void *payload, cairn_index_sync_stats *stats)
{
	cairn_buf json = CAIRN_BUF_INIT;
	char name[CAIRN_ID_HEX_SIZE];
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		cairn_id *at;
		size_t pos;
		uint64_t before;

		pthread_rwlock_rdlock(&idx->lock);
		at = idx->n_files ? bsearch(&files[i].id, idx->files, idx->n_files, sizeof(cairn_id),
			id_compare) : NULL;
		pthread_rwlock_unlock(&idx->lock);
		if (at)
			continue;
		if ((r = fetch(&json, &files[i].id, payload)) < 0)
			break;
		before = cairn_index_count(idx);
		if ((r = cairn_index_add_json(idx, (const char *)json.data, json.len)) < 0) {
			cairn_id_to_hex(name, &files[i].id);
			r = cairn_error_wrap(r, "index file '%s'", name);
			break;
		}
		stats->files_merged++;
		stats->blobs_merged += cairn_index_count(idx) - before;
		pthread_rwlock_wrlock(&idx->lock);
		r = array_grow((void **)&idx->files, &idx->files_cap, idx->n_files, sizeof(cairn_id));
		if (r == 0) {
			for (pos = idx->n_files; pos > 0 && id_compare(&idx->files[pos - 1], &files[i].id) > 0; pos--)
				idx->files[pos] = idx->files[pos - 1];
			idx->files[pos] = files[i].id;
			idx->n_files++;
		}
		pthread_rwlock_unlock(&idx->lock);
		if (r < 0)
			break;
	}
	cairn_buf_release(&json);
	return r;
}

int cairn_index_sync(cairn_index *idx, const cairn_index_file *files, size_t n,
	cairn_index_fetch_cb fetch, void *payload, cairn_index_sync_stats *stats_out)
{
	cairn_index_sync_stats stats;
	int r;

	memset(&stats, 0, sizeof(stats));
	stats.files_listed = n;
	if (!idx || (n && !files) || !fetch)
		return cairn_error_set(CAIRN_EINVAL, "invalid arguments to cairn_index_sync");
	if (!idx->cache) {
		r = sync_memory(idx, files, n, fetch, payload, &stats);
	} else {
		r = cairn_index_cache__sync(idx->cache, files, n, fetch, payload, &stats);
		/* even after a failure: files merged before it may cover overlay entries */
		if (!stats.cache_failed) {
			int r2 = purge_overlay(idx);
			if (r == 0)
				r = r2;
		}
	}
	if (stats_out)
		*stats_out = stats;
	return r;
}

/* ---- JSON parsing ---- */

/* A streaming parser for index files: one pass over the text, no tree.
 * jansson would build a node per value (about 800 bytes a blob, 40 MB for
 * a 50,000-blob index file); this keeps only the result, 48 bytes a blob.
 * It accepts exactly what jansson 2.14 (flags 0) accepts and then applies
 * the checks the index format needs:
 *  - JSON syntax as RFC 8259: the top level an object or an array, nothing
 *    but whitespace after it; strings valid UTF-8 without raw control
 *    characters, escapes \" \\ \/ \b \f \n \r \t \uXXXX with surrogates in
 *    pairs and no \u0000; numbers without leading zeros, integers within
 *    long long, reals finite; at most JSON_MAX_DEPTH nested values.
 *  - a member given twice counts with its last value (jansson keeps the
 *    last), so a repeated "packs" or "blobs" starts its collection afresh.
 *  - the checks and messages of the index format, in the order a walk of
 *    the document would meet them: "supersedes", then "packs", then each
 *    pack (id, blobs, then each blob: id, type, offset, length,
 *    uncompressed_length).  A syntax error anywhere wins over them.
 * Nothing is reported to the callback unless the whole text passed. */

#define JSON_MAX_DEPTH 2048   /* jansson's JSON_PARSER_MAX_DEPTH */
#define KEY_MAX 24            /* longer keys are none of ours */
#define STR_MAX 128           /* string values kept for checks and messages */

enum { ST_ABSENT, ST_NULL, ST_BAD, ST_OK }; /* state of a member */

typedef struct jpack {
	cairn_id id;
	size_t first, n;           /* into jp.blobs */
} jpack;

typedef struct jp {
	const unsigned char *start, *p, *end;
	int syntax_failed;
	char syntax_msg[160];
	char sup_msg[200], packs_msg[200], pack_msg[240]; /* first semantic errors, "" = none */
	jpack *packs;
	size_t n_packs, packs_cap;
	cairn_pack_entry *blobs;
	size_t n_blobs, blobs_cap;
	int nomem;
} jp;

/* Record the first syntax error (position as line and column) and return -1. */
static int syntax(jp *j, const char *what)
{
	if (!j->syntax_failed) {
		int line = 1, col = 1;
		for (const unsigned char *q = j->start; q < j->p && q < j->end; q++) {
			if (*q == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		snprintf(j->syntax_msg, sizeof(j->syntax_msg), "%s (line %d, column %d)", what, line, col);
		j->syntax_failed = 1;
	}
	return -1;
}

static void ws(jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int peek(jp *j)
{
	return j->p < j->end ? *j->p : -1;
}

static int hexval4(const unsigned char *p, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

/* Append the UTF-8 of code point u to dec (capacity cap); *len counts all. */
static void put_utf8(char *dec, size_t cap, size_t *len, uint32_t u)
{
	unsigned char b[4];
	size_t n;
	if (u < 0x80) {
		b[0] = (unsigned char)u;
		n = 1;
	} else if (u < 0x800) {
		b[0] = (unsigned char)(0xC0 | u >> 6);
		b[1] = (unsigned char)(0x80 | (u & 0x3F));
		n = 2;
	} else if (u < 0x10000) {
		b[0] = (unsigned char)(0xE0 | u >> 12);
		b[1] = (unsigned char)(0x80 | (u >> 6 & 0x3F));
		b[2] = (unsigned char)(0x80 | (u & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | u >> 18);
		b[1] = (unsigned char)(0x80 | (u >> 12 & 0x3F));
		b[2] = (unsigned char)(0x80 | (u >> 6 & 0x3F));
		b[3] = (unsigned char)(0x80 | (u & 0x3F));
		n = 4;
	}
	for (size_t i = 0; i < n; i++, (*len)++)
		if (dec && *len < cap)
			dec[*len] = (char)b[i];
}

/* Length of a valid UTF-8 sequence at p (first byte >= 0x80), 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	uint32_t u;
	size_t n;
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2;
		u = p[0] & 0x1F;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		u = p[0] & 0x0F;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		u = p[0] & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		u = u << 6 | (p[i] & 0x3F);
	}
	if ((n == 3 && u < 0x800) || (n == 4 && u < 0x10000) || u > 0x10FFFF
		|| (u >= 0xD800 && u <= 0xDFFF))
		return 0;
	return n;
}

/* A string at p (which is '"').  Its decoded UTF-8 goes to dec (up to cap
 * bytes, may be NULL); *len gets the full decoded length. */
static int scan_string(jp *j, char *dec, size_t cap, size_t *len)
{
	size_t n = 0;

	j->p++;
	for (;;) {
		int c;
		if (j->p >= j->end)
			return syntax(j, "premature end of input in a string");
		c = *j->p;
		if (c == '"') {
			j->p++;
			break;
		}
		if (c < 0x20)
			return syntax(j, "control character in a string");
		if (c == '\\') {
			uint32_t u, lo;
			if (j->end - j->p < 2)
				return syntax(j, "premature end of input in a string");
			c = j->p[1];
			j->p += 2;
			switch (c) {
			case '"': case '\\': case '/': u = (uint32_t)c; break;
			case 'b': u = '\b'; break;
			case 'f': u = '\f'; break;
			case 'n': u = '\n'; break;
			case 'r': u = '\r'; break;
			case 't': u = '\t'; break;
			case 'u':
				if (j->end - j->p < 4 || hexval4(j->p, &u) < 0)
					return syntax(j, "invalid \\u escape");
				j->p += 4;
				if (u == 0)
					return syntax(j, "\\u0000 is not allowed");
				if (u >= 0xDC00 && u <= 0xDFFF)
					return syntax(j, "invalid Unicode escape (lone low surrogate)");
				if (u >= 0xD800 && u <= 0xDBFF) {
					if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u'
						|| hexval4(j->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
						return syntax(j, "invalid Unicode escape (unpaired surrogate)");
					j->p += 6;
					u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				}
				break;
			default:
				return syntax(j, "invalid escape");
			}
			put_utf8(dec, cap, &n, u);
			continue;
		}
		if (c >= 0x80) {
			size_t k = utf8_seq(j->p, j->end);
			if (!k)
				return syntax(j, "invalid UTF-8");
			for (size_t i = 0; i < k; i++, n++)
				if (dec && n < cap)
					dec[n] = (char)j->p[i];
			j->p += k;
			continue;
		}
		if (dec && n < cap)
			dec[n] = (char)c;
		n++;
		j->p++;
	}
	*len = n;
	return 0;
}

/* A number at p.  *is_int and, for integers, *value (long long as jansson). */
static int scan_number(jp *j, int *is_int, long long *value)
{
	const unsigned char *s = j->p;
	int neg = 0, real = 0;
	unsigned long long mag = 0, limit;
	int overflow = 0;

	if (peek(j) == '-') {
		neg = 1;
		j->p++;
	}
	if (peek(j) == '0') {
		j->p++;
		if (peek(j) >= '0' && peek(j) <= '9')
			return syntax(j, "invalid number (leading zero)");
	} else if (peek(j) >= '1' && peek(j) <= '9') {
		limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
		while (peek(j) >= '0' && peek(j) <= '9') {
			unsigned d = (unsigned)(*j->p++ - '0');
			if (mag > (limit - d) / 10)
				overflow = 1;
			else
				mag = mag * 10 + d;
		}
	} else {
		return syntax(j, "invalid token");
	}
	if (peek(j) == '.') {
		real = 1;
		j->p++;
		if (!(peek(j) >= '0' && peek(j) <= '9'))
			return syntax(j, "invalid number");
		while (peek(j) >= '0' && peek(j) <= '9')
			j->p++;
	}
	if (peek(j) == 'e' || peek(j) == 'E') {
		real = 1;
		j->p++;
		if (peek(j) == '+' || peek(j) == '-')
			j->p++;
		if (!(peek(j) >= '0' && peek(j) <= '9'))
			return syntax(j, "invalid number");
		while (peek(j) >= '0' && peek(j) <= '9')
			j->p++;
	}
	*is_int = !real;
	if (!real) {
		if (overflow)
			return syntax(j, "too big integer");
		*value = neg ? (long long)(0 - mag) : (long long)mag;
		if (neg && mag == (unsigned long long)LLONG_MAX + 1)
			*value = LLONG_MIN;
		return 0;
	} else {
		/* jansson refuses a real that overflows a double */
		size_t n = (size_t)(j->p - s);
		char small[64], *text = n < sizeof(small) ? small : malloc(n + 1);
		double d;
		if (!text) {
			j->nomem = 1;
			return syntax(j, "out of memory");
		}
		memcpy(text, s, n);
		text[n] = '\0';
		errno = 0;
		d = strtod(text, NULL);
		if (text != small)
			free(text);
		if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
			return syntax(j, "real number overflow");
		*value = 0;
		return 0;
	}
}

static int scan_literal(jp *j)
{
	static const char *const lits[] = { "true", "false", "null" };
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(lits[i]);
		if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lits[i], n) == 0) {
			j->p += n;
			return 0;
		}
	}
	return syntax(j, "invalid token");
}

/* Validate any value at nesting level `depth` (1 = the top), iteratively. */
static int skip_value(jp *j, int depth)
{
	unsigned char kind[JSON_MAX_DEPTH + 1]; /* '{' or '[' per open container */
	int top = 0, c;
	size_t len;

	for (;;) {
		if (depth + top > JSON_MAX_DEPTH)
			return syntax(j, "maximum parsing depth reached");
		ws(j);
		c = peek(j);
		if (c == '{' || c == '[') {
			j->p++;
			ws(j);
			if (peek(j) == (c == '{' ? '}' : ']')) {
				j->p++;
			} else {
				kind[top++] = (unsigned char)c;
				if (c == '{') {
					if (peek(j) != '"')
						return syntax(j, "string or '}' expected");
					if (scan_string(j, NULL, 0, &len) < 0)
						return -1;
					ws(j);
					if (peek(j) != ':')
						return syntax(j, "':' expected");
					j->p++;
				}
				continue;
			}
		} else if (c == '"') {
			if (scan_string(j, NULL, 0, &len) < 0)
				return -1;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			int is_int;
			long long v;
			if (scan_number(j, &is_int, &v) < 0)
				return -1;
		} else if (c >= 0) {
			if (scan_literal(j) < 0)
				return -1;
		} else {
			return syntax(j, "premature end of input");
		}
		/* a value ended: close containers, or go on to the next element */
		for (;;) {
			if (top == 0)
				return 0;
			ws(j);
			c = peek(j);
			if (c == ',') {
				j->p++;
				if (kind[top - 1] == '{') {
					ws(j);
					if (peek(j) != '"')
						return syntax(j, "string expected");
					if (scan_string(j, NULL, 0, &len) < 0)
						return -1;
					ws(j);
					if (peek(j) != ':')
						return syntax(j, "':' expected");
					j->p++;
				}
				break;
			}
			if (c == (kind[top - 1] == '{' ? '}' : ']')) {
				j->p++;
				top--;
				continue;
			}
			return syntax(j, kind[top - 1] == '{' ? "'}' expected" : "']' expected");
		}
	}
}

/* Iterate the members of an object at p ('{'): calls member(j, key, keylen,
 * depth of the values, payload) with p at the value, which must consume it. */
typedef int (*member_fn)(jp *j, const char *key, size_t keylen, int depth, void *payload);

static int walk_object(jp *j, int depth, member_fn member, void *payload)
{
	char key[KEY_MAX];
	size_t klen;

	if (depth > JSON_MAX_DEPTH)
		return syntax(j, "maximum parsing depth reached");
	j->p++;
	ws(j);
	if (peek(j) == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (peek(j) != '"')
			return syntax(j, "string or '}' expected");
		if (scan_string(j, key, sizeof(key), &klen) < 0)
			return -1;
		ws(j);
		if (peek(j) != ':')
			return syntax(j, "':' expected");
		j->p++;
		ws(j);
		if (depth + 1 > JSON_MAX_DEPTH)
			return syntax(j, "maximum parsing depth reached");
		if (member(j, key, klen <= sizeof(key) ? klen : 0, depth + 1, payload) < 0)
			return -1;
		ws(j);
		if (peek(j) == ',') {
			j->p++;
			ws(j);
			continue;
		}
		if (peek(j) == '}') {
			j->p++;
			return 0;
		}
		return syntax(j, "'}' expected");
	}
}

/* Iterate the elements of an array at p ('['): element(j, index, depth,
 * payload) with p at the element, which it must consume. */
typedef int (*element_fn)(jp *j, size_t index, int depth, void *payload);

static int walk_array(jp *j, int depth, element_fn element, void *payload)
{
	size_t i = 0;

	if (depth > JSON_MAX_DEPTH)
		return syntax(j, "maximum parsing depth reached");
	j->p++;
	ws(j);
	if (peek(j) == ']') {
		j->p++;
		return 0;
	}
	for (;; i++) {
		if (depth + 1 > JSON_MAX_DEPTH)
			return syntax(j, "maximum parsing depth reached");
		if (element(j, i, depth + 1, payload) < 0)
			return -1;
		ws(j);
		if (peek(j) == ',') {
			j->p++;
			ws(j);
			continue;
		}
		if (peek(j) == ']') {
			j->p++;
			return 0;
		}
		return syntax(j, "']' expected");
	}
}

static int key_is(const char *key, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(key, name, len) == 0;
}

/* A member value that is a string: its state and decoded text (str, NUL-
 * terminated, truncated to STR_MAX - 1); anything else is skipped as ST_BAD
 * and null as ST_NULL. */
static int string_member(jp *j, int depth, int *state, char *str, size_t *len)
{
	if (peek(j) == '"') {
		if (scan_string(j, str, STR_MAX - 1, len) < 0)
			return -1;
		str[*len < STR_MAX - 1 ? *len : STR_MAX - 1] = '\0';
		*state = ST_OK;
		return 0;
	}
	*state = peek(j) == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0 ? ST_NULL : ST_BAD;
	return skip_value(j, depth);
}

/* A member value that is an integer: ST_OK with *v, ST_NULL, or ST_BAD. */
static int int_member(jp *j, int depth, int *state, long long *v)
{
	int c = peek(j), is_int = 0;

	if (c == '-' || (c >= '0' && c <= '9')) {
		if (scan_number(j, &is_int, v) < 0)
			return -1;
		*state = is_int ? ST_OK : ST_BAD;
		return 0;
	}
	*state = c == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0 ? ST_NULL : ST_BAD;
	return skip_value(j, depth);
}

/* The 64-hex id check of the index format; message into msg. */
static int check_id(cairn_id *out, int state, const char *str, size_t len, const char *key,
	const char *where, char *msg, size_t size)
{
	if (state == ST_ABSENT)
		snprintf(msg, size, "index: %s has no \"%s\"", where, key);
	else if (state != ST_OK)
		snprintf(msg, size, "index: %s: \"%s\" is not a string", where, key);
	else if (len != 64 || cairn_id_from_hex_n(out, str, len) < 0)
		snprintf(msg, size, "index: %s: \"%s\" is not 64 hex characters: '%.80s'", where, key, str);
	else
		return 0;
	return -1;
}

/* The integer check of json_u32 before: [min, UINT32_MAX], optional null. */
static int check_u32(uint32_t *out, int state, long long v, const char *key, int optional,
	uint32_t min, const char *where, char *msg, size_t size)
{
	*out = 0;
	if (state == ST_ABSENT || (optional && state == ST_NULL)) {
		if (optional)
			return 0;
		snprintf(msg, size, "index: %s has no \"%s\"", where, key);
	} else if (state != ST_OK) {
		snprintf(msg, size, "index: %s: \"%s\" is not an integer", where, key);
	} else if (v < (long long)min || v > (long long)UINT32_MAX) {
		snprintf(msg, size, "index: %s: \"%s\" is %lld, not within %" PRIu32 "..%" PRIu32, where,
			key, v, min, UINT32_MAX);
	} else {
		*out = (uint32_t)v;
		return 0;
	}
	return -1;
}

typedef struct blob_state {
	int id_st, type_st, off_st, len_st, ulen_st;
	char id[STR_MAX], type[STR_MAX];
	size_t id_len, type_len;
	long long off, len, ulen;
} blob_state;

static int blob_member(jp *j, const char *key, size_t klen, int depth, void *payload)
{
	blob_state *b = payload;
	if (key_is(key, klen, "id"))
		return string_member(j, depth, &b->id_st, b->id, &b->id_len);
	if (key_is(key, klen, "type"))
		return string_member(j, depth, &b->type_st, b->type, &b->type_len);
	if (key_is(key, klen, "offset"))
		return int_member(j, depth, &b->off_st, &b->off);
	if (key_is(key, klen, "length"))
		return int_member(j, depth, &b->len_st, &b->len);
	if (key_is(key, klen, "uncompressed_length"))
		return int_member(j, depth, &b->ulen_st, &b->ulen);
	return skip_value(j, depth);
}

typedef struct pack_state {
	size_t index;              /* in the packs array */
	int id_st, blobs_st;
	char id[STR_MAX];
	size_t id_len;
	size_t first;              /* where this pack's blobs start in jp.blobs */
	char blob_msg[240];        /* first error among the blobs, "" = none */
} pack_state;

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;
	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 256;
	if (ncap > SIZE_MAX / elem || !(p = realloc(*arr, ncap * elem)))
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int blob_element(jp *j, size_t index, int depth, void *payload)
{
	pack_state *ps = payload;
	blob_state b;
	cairn_pack_entry e;
	char where[96], msg[240];

	snprintf(where, sizeof(where), "pack %zu blob %zu", ps->index, index);
	if (peek(j) != '{') {
		if (!ps->blob_msg[0])
			snprintf(ps->blob_msg, sizeof(ps->blob_msg), "index: %s is not an object", where);
		return skip_value(j, depth);
	}
	memset(&b, 0, sizeof(b));
	if (walk_object(j, depth, blob_member, &b) < 0)
		return -1;
	if (ps->blob_msg[0])
		return 0; /* an earlier blob already failed: only syntax matters now */
	memset(&e, 0, sizeof(e));
	msg[0] = '\0';
	if (check_id(&e.id, b.id_st, b.id, b.id_len, "id", where, msg, sizeof(msg)) < 0) {
		/* message set */
	} else if (b.type_st != ST_OK) {
		snprintf(msg, sizeof(msg), "index: %s has no \"type\" string", where);
	} else if (b.type_len == 4 && memcmp(b.type, "data", 4) == 0) {
		e.type = CAIRN_BLOB_DATA;
	} else if (b.type_len == 4 && memcmp(b.type, "tree", 4) == 0) {
		e.type = CAIRN_BLOB_TREE;
	} else {
		snprintf(msg, sizeof(msg), "index: %s: unknown type '%.40s'", where, b.type);
	}
	if (!msg[0] && check_u32(&e.offset, b.off_st, b.off, "offset", 0, 0, where, msg, sizeof(msg)) == 0
		&& check_u32(&e.length, b.len_st, b.len, "length", 0, 32, where, msg, sizeof(msg)) == 0)
		check_u32(&e.uncompressed_length, b.ulen_st, b.ulen, "uncompressed_length", 1, 0, where, msg,
			sizeof(msg));
	if (msg[0]) {
		snprintf(ps->blob_msg, sizeof(ps->blob_msg), "%s", msg);
		return 0;
	}
	if (grow((void **)&j->blobs, &j->blobs_cap, j->n_blobs, sizeof(*j->blobs)) < 0) {
		j->nomem = 1;
		return syntax(j, "out of memory");
	}
	j->blobs[j->n_blobs++] = e;
	return 0;
}

static int pack_member(jp *j, const char *key, size_t klen, int depth, void *payload)
{
	pack_state *ps = payload;
	if (key_is(key, klen, "id"))
		return string_member(j, depth, &ps->id_st, ps->id, &ps->id_len);
	if (key_is(key, klen, "blobs")) {
		/* the last "blobs" counts: start afresh */
		j->n_blobs = ps->first;
		ps->blob_msg[0] = '\0';
		if (peek(j) != '[') {
			ps->blobs_st = ST_BAD;
			return skip_value(j, depth);
		}
		ps->blobs_st = ST_OK;
		return walk_array(j, depth, blob_element, ps);
	}
	return skip_value(j, depth);
}

static int pack_element(jp *j, size_t index, int depth, void *payload)
{
	pack_state ps;
	char where[64], msg[240];
	cairn_id id;
	(void)payload;

	snprintf(where, sizeof(where), "pack %zu", index);
	if (peek(j) != '{') {
		if (!j->pack_msg[0])
			snprintf(j->pack_msg, sizeof(j->pack_msg), "index: %s is not an object", where);
		return skip_value(j, depth);
	}
	memset(&ps, 0, sizeof(ps));
	ps.index = index;
	ps.first = j->n_blobs;
	if (walk_object(j, depth, pack_member, &ps) < 0)
		return -1;
	if (j->pack_msg[0]) {
		j->n_blobs = ps.first;
		return 0;
	}
	msg[0] = '\0';
	if (check_id(&id, ps.id_st, ps.id, ps.id_len, "id", where, msg, sizeof(msg)) == 0
		&& ps.blobs_st != ST_OK)
		snprintf(msg, sizeof(msg), "index: %s has no \"blobs\" array", where);
	if (!msg[0] && ps.blob_msg[0])
		snprintf(msg, sizeof(msg), "%s", ps.blob_msg);
	if (msg[0]) {
		snprintf(j->pack_msg, sizeof(j->pack_msg), "%s", msg);
		j->n_blobs = ps.first;
		return 0;
	}
	if (grow((void **)&j->packs, &j->packs_cap, j->n_packs, sizeof(*j->packs)) < 0) {
		j->nomem = 1;
		return syntax(j, "out of memory");
	}
	j->packs[j->n_packs].id = id;
	j->packs[j->n_packs].first = ps.first;
	j->packs[j->n_packs].n = j->n_blobs - ps.first;
	j->n_packs++;
	return 0;
}

/* The packs array (the last "packs" member, or the legacy top level). */
static int packs_value(jp *j, int depth)
{
	j->n_packs = 0;
	j->n_blobs = 0;
	j->pack_msg[0] = '\0';
	j->packs_msg[0] = '\0';
	if (peek(j) == '[')
		return walk_array(j, depth, pack_element, NULL);
	if (!(peek(j) == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0))
		snprintf(j->packs_msg, sizeof(j->packs_msg), "index: \"packs\" is not an array");
	return skip_value(j, depth); /* null is an empty index, not a wrong one */
}

static int supersedes_element(jp *j, size_t index, int depth, void *payload)
{
	char s[STR_MAX];
	size_t len = 0;
	int st;
	(void)payload;

	if (string_member(j, depth, &st, s, &len) < 0)
		return -1;
	if (!j->sup_msg[0] && (st != ST_OK || len != 64 || !cairn_id_is_hex(s)))
		snprintf(j->sup_msg, sizeof(j->sup_msg), "index: \"supersedes\" entry %zu is not a 64-hex id",
			index);
	return 0;
}

static int top_member(jp *j, const char *key, size_t klen, int depth, void *payload)
{
	(void)payload;
	if (key_is(key, klen, "packs"))
		return packs_value(j, depth);
	if (key_is(key, klen, "supersedes")) {
		j->sup_msg[0] = '\0';
		if (peek(j) == '[')
			return walk_array(j, depth, supersedes_element, NULL);
		if (!(peek(j) == 'n' && j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0))
			snprintf(j->sup_msg, sizeof(j->sup_msg), "index: \"supersedes\" is not an array");
		return skip_value(j, depth);
	}
	return skip_value(j, depth);
}

/* The entries passed to cb are borrowed for the call only. */
int cairn_index_parse_json(const char *json, size_t len, cairn_index_entry_cb cb, void *payload)
{
	jp j;
	int r = 0;

	if (!json || !cb)
		return cairn_error_set(CAIRN_EINVAL, "no index JSON or callback given");
	memset(&j, 0, sizeof(j));
	j.start = j.p = (const unsigned char *)json;
	j.end = j.start + len;
	ws(&j);
	if (peek(&j) == '{')
		walk_object(&j, 1, top_member, NULL);
	else if (peek(&j) == '[')
		packs_value(&j, 1);
	else
		syntax(&j, "'[' or '{' expected");
	if (!j.syntax_failed) {
		ws(&j);
		if (j.p != j.end)
			syntax(&j, "end of file expected");
	}
	if (j.nomem)
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory parsing an index");
	else if (j.syntax_failed)
		r = cairn_error_set(CAIRN_ECORRUPT, "index is not valid JSON: %s", j.syntax_msg);
	else if (j.sup_msg[0])
		r = cairn_error_set(CAIRN_ECORRUPT, "%s", j.sup_msg);
	else if (j.packs_msg[0])
		r = cairn_error_set(CAIRN_ECORRUPT, "%s", j.packs_msg);
	else if (j.pack_msg[0])
		r = cairn_error_set(CAIRN_ECORRUPT, "%s", j.pack_msg);
	for (size_t i = 0; r == 0 && i < j.n_packs; i++)
		for (size_t k = 0; r == 0 && k < j.packs[i].n; k++)
			r = cb(&j.packs[i].id, &j.blobs[j.packs[i].first + k], payload);
	free(j.packs);
	free(j.blobs);
	return r;
}

static int add_entry_cb(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	cairn_blob_location loc;
	int r;

	loc.pack = *pack;
	loc.offset = e->offset;
	loc.length = e->length;
	loc.uncompressed_length = e->uncompressed_length;
	r = cairn_index_add(payload, e->type, &e->id, &loc);
	return r < 0 ? r : 0;
}

int cairn_index_add_json(cairn_index *idx, const char *json, size_t len)
{
	return cairn_index_parse_json(json, len, add_entry_cb, idx);
}

/* ---- builder ---- */

typedef struct builder_pack {
	cairn_id id;
	size_t first; /* into entries */
	size_t n;
} builder_pack;

struct cairn_index_builder {
	builder_pack *packs;
	size_t n_packs, packs_cap;
	cairn_pack_entry *entries;
	size_t n_entries, entries_cap;
};

/* Create an empty builder; the caller frees it with cairn_index_builder_free(). */
int cairn_index_builder_new(cairn_index_builder **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate an index builder");
	return 0;
}

void cairn_index_builder_free(cairn_index_builder *b)
{
	if (!b)
		return;
	free(b->packs);
	free(b->entries);
	free(b);
}

int cairn_index_builder_add_pack(cairn_index_builder *b, const cairn_id *pack,
	const cairn_pack_entry *entries, size_t n)
{
	size_t need, cap;
	void *p;

	if (n == 0 || !entries)
		return cairn_error_set(CAIRN_EINVAL, "cannot index a pack without blobs");
	for (size_t k = 0; k < n; k++)
		if ((entries[k].type != CAIRN_BLOB_DATA && entries[k].type != CAIRN_BLOB_TREE)
			|| entries[k].length < 32)
			return cairn_error_set(CAIRN_EINVAL, "invalid entry %zu of a pack to index", k);
	if (n > SIZE_MAX / sizeof(*entries) / 2 - b->n_entries)
		return cairn_error_set(CAIRN_ENOMEM, "index builder is full");
	need = b->n_entries + n;
	if (need > b->entries_cap) {
		cap = b->entries_cap ? b->entries_cap : 256;
		while (cap < need)
			cap *= 2;
		if (!(p = realloc(b->entries, cap * sizeof(*b->entries))))
			return cairn_error_set(CAIRN_ENOMEM, "cannot grow the index builder");
		b->entries = p;
		b->entries_cap = cap;
	}
	if (b->n_packs == b->packs_cap) {
		cap = b->packs_cap ? b->packs_cap * 2 : 16;
		if (!(p = realloc(b->packs, cap * sizeof(*b->packs))))
			return cairn_error_set(CAIRN_ENOMEM, "cannot grow the index builder");
		b->packs = p;
		b->packs_cap = cap;
	}
	memcpy(b->entries + b->n_entries, entries, n * sizeof(*entries));
	b->packs[b->n_packs].id = *pack;
	b->packs[b->n_packs].first = b->n_entries;
	b->packs[b->n_packs].n = n;
	b->n_packs++;
	b->n_entries += n;
	return 0;
}

size_t cairn_index_builder_blob_count(const cairn_index_builder *b)
{
	return b->n_entries;
}

size_t cairn_index_builder_pack_count(const cairn_index_builder *b)
{
	return b->n_packs;
}

void cairn_index_builder_reset(cairn_index_builder *b)
{
	b->n_packs = 0;
	b->n_entries = 0;
}

/* Longest encodings, used to reserve the output once. */
#define BLOB_JSON_MAX (sizeof("{\"id\":\"\",\"type\":\"data\",\"offset\":,\"length\":," \
	"\"uncompressed_length\":},") + 64 + 3 * 10)
#define PACK_JSON_MAX (sizeof("{\"id\":\"\",\"blobs\":[]},") + 64)

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u32(char *p, uint32_t v)
{
	char tmp[10];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_id(char *p, const cairn_id *id)
{
	char hex[CAIRN_ID_HEX_SIZE];
	cairn_id_to_hex(hex, id);
	return put(p, hex, 64);
}

/* out (caller-owned) is replaced by the JSON, trailing newline included. */
int cairn_index_builder_encode(cairn_buf *out, const cairn_index_builder *b)
{
	size_t bound;
	char *start, *p;

	cairn_buf_clear(out);
	if (b->n_entries > (CAIRN_BUF_MAX - 64) / BLOB_JSON_MAX / 2
		|| b->n_packs > (CAIRN_BUF_MAX - 64) / PACK_JSON_MAX / 2)
		return cairn_error_set(CAIRN_ENOMEM, "index with %zu blobs is too large to encode",
			b->n_entries);
	bound = 16 + b->n_entries * BLOB_JSON_MAX + b->n_packs * PACK_JSON_MAX;
	CAIRN_TRY(cairn_buf_reserve(out, bound));
	start = p = (char *)out->data;
	p = PUT_LIT(p, "{\"packs\":[");
	for (size_t i = 0; i < b->n_packs; i++) {
		const builder_pack *bp = &b->packs[i];
		if (i)
			*p++ = ',';
		p = PUT_LIT(p, "{\"id\":\"");
		p = put_id(p, &bp->id);
		p = PUT_LIT(p, "\",\"blobs\":[");
		for (size_t k = 0; k < bp->n; k++) {
			const cairn_pack_entry *e = &b->entries[bp->first + k];
			if (k)
				*p++ = ',';
			p = PUT_LIT(p, "{\"id\":\"");
			p = put_id(p, &e->id);
			if (e->type == CAIRN_BLOB_TREE)
				p = PUT_LIT(p, "\",\"type\":\"tree\",\"offset\":");
			else
				p = PUT_LIT(p, "\",\"type\":\"data\",\"offset\":");
			p = put_u32(p, e->offset);
			p = PUT_LIT(p, ",\"length\":");
			p = put_u32(p, e->length);
			if (e->uncompressed_length) {
				p = PUT_LIT(p, ",\"uncompressed_length\":");
				p = put_u32(p, e->uncompressed_length);
			}
			*p++ = '}';
		}
		p = PUT_LIT(p, "]}");
	}
	p = PUT_LIT(p, "]}\n");
	out->len = (size_t)(p - start);
	return 0;
}
