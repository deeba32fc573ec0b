/* index.c: the in-memory blob index and the index-file JSON codec
 * (include/cairn/index.h).
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
 * slot; the first location added for a (type, id) is the one kept.  A
 * pthread rwlock guards all of it: lookups and foreach share it, adds hold it
 * exclusively.
 *
 * JSON: parsed with jansson and validated completely before a blob is
 * reported (64-hex ids, type exactly "data"/"tree", integer offsets and
 * lengths within uint32, length >= 32); anything else is CAIRN_ECORRUPT
 * naming the pack and blob.  Both the v2 object {"supersedes", "packs"} and
 * the legacy top-level array of packs are read.  The builder encodes by hand,
 * compactly and in restic's key order, into a buffer reserved once from an
 * upper bound.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cairn/index.h>

typedef struct index_entry {
	cairn_id id;
	uint32_t pack; /* number in idx->packs */
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

struct cairn_index {
	pthread_rwlock_t lock;
	index_entry *entries;
	size_t n, cap;
	slot_table table;       /* (type, id) -> entry */
	cairn_id *packs;
	size_t n_packs, packs_cap;
	slot_table pack_table;  /* pack id -> pack number */
	uint32_t last_pack;     /* pack number of the previous add (+1, 0 = none) */
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

/* The entry with (type, id), or NULL. */
static index_entry *find_entry(const cairn_index *idx, int type, const cairn_id *id)
{
	const slot_table *t = &idx->table;
	size_t i = (size_t)id_hash(id, type) & t->mask;

	for (uint32_t v; (v = t->slots[i]) != 0; i = (i + 1) & t->mask) {
		index_entry *e = &idx->entries[v - 1];
		if (e->type == type && cairn_id_equal(&e->id, id))
			return e;
	}
	return NULL;
}

static int grow_entry_table(cairn_index *idx)
{
	slot_table t;
	CAIRN_TRY(table_init(&t, (idx->table.mask + 1) * 2));
	for (size_t k = 0; k < idx->n; k++)
		table_place(&t, id_hash(&idx->entries[k].id, idx->entries[k].type), (uint32_t)(k + 1));
	free(idx->table.slots);
	idx->table = t;
	return 0;
}

static int grow_pack_table(cairn_index *idx)
{
	slot_table t;
	CAIRN_TRY(table_init(&t, (idx->pack_table.mask + 1) * 2));
	for (size_t k = 0; k < idx->n_packs; k++)
		table_place(&t, id_hash(&idx->packs[k], 0), (uint32_t)(k + 1));
	free(idx->pack_table.slots);
	idx->pack_table = t;
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
static int intern_pack(uint32_t *num_out, cairn_index *idx, const cairn_id *id)
{
	slot_table *t = &idx->pack_table;
	size_t i;
	uint32_t v;

	if (idx->last_pack && cairn_id_equal(&idx->packs[idx->last_pack - 1], id)) {
		*num_out = idx->last_pack - 1;
		return 0;
	}
	for (i = (size_t)id_hash(id, 0) & t->mask; (v = t->slots[i]) != 0; i = (i + 1) & t->mask) {
		if (cairn_id_equal(&idx->packs[v - 1], id)) {
			idx->last_pack = v;
			*num_out = v - 1;
			return 0;
		}
	}
	CAIRN_TRY(array_grow((void **)&idx->packs, &idx->packs_cap, idx->n_packs, sizeof(cairn_id)));
	if (table_needs_growth(t, idx->n_packs + 1))
		CAIRN_TRY(grow_pack_table(idx));
	idx->packs[idx->n_packs] = *id;
	table_place(&idx->pack_table, id_hash(id, 0), (uint32_t)(idx->n_packs + 1));
	idx->n_packs++;
	idx->last_pack = (uint32_t)idx->n_packs;
	*num_out = (uint32_t)(idx->n_packs - 1);
	return 0;
}

/* Create an empty index; the caller frees it with cairn_index_free(). */
int cairn_index_new(cairn_index **out)
{
	cairn_index *idx = calloc(1, sizeof(*idx));
	int r = 0;

	*out = NULL;
	if (!idx)
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate the index");
	if ((r = table_init(&idx->table, 1024)) < 0 || (r = table_init(&idx->pack_table, 64)) < 0)
		goto out;
	if (pthread_rwlock_init(&idx->lock, NULL) != 0) {
		r = cairn_error_set(CAIRN_ENOMEM, "cannot create the index lock");
		goto out;
	}
	*out = idx;
	idx = NULL;
out:
	if (idx) {
		free(idx->table.slots);
		free(idx->pack_table.slots);
		free(idx);
	}
	return r;
}

void cairn_index_free(cairn_index *idx)
{
	if (!idx)
		return;
	pthread_rwlock_destroy(&idx->lock);
	free(idx->entries);
	free(idx->table.slots);
	free(idx->packs);
	free(idx->pack_table.slots);
	free(idx);
}

int cairn_index_add(cairn_index *idx, cairn_blob_type type, const cairn_id *id,
	const cairn_blob_location *loc)
{
	index_entry *e;
	uint32_t pack;
	int r = 0;

	if (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE)
		return cairn_error_set(CAIRN_EINVAL, "invalid blob type %d", (int)type);
	pthread_rwlock_wrlock(&idx->lock);
	if (find_entry(idx, (int)type, id))
		goto out; /* keep the first location */
	if ((r = array_grow((void **)&idx->entries, &idx->cap, idx->n, sizeof(*idx->entries))) < 0)
		goto out;
	if (table_needs_growth(&idx->table, idx->n + 1) && (r = grow_entry_table(idx)) < 0)
		goto out;
	if ((r = intern_pack(&pack, idx, &loc->pack)) < 0)
		goto out;
	e = &idx->entries[idx->n];
	e->id = *id;
	e->pack = pack;
	e->offset = loc->offset;
	e->length = loc->length;
	e->ulen = loc->uncompressed_length;
	e->type = (uint8_t)type;
	table_place(&idx->table, id_hash(id, (int)type), (uint32_t)(idx->n + 1));
	idx->n++;
	r = 1;
out:
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

static void fill_location(cairn_blob_location *out, const cairn_index *idx, const index_entry *e)
{
	out->pack = idx->packs[e->pack];
	out->offset = e->offset;
	out->length = e->length;
	out->uncompressed_length = e->ulen;
}

int cairn_index_lookup(cairn_blob_location *out, cairn_index *idx, cairn_blob_type type,
	const cairn_id *id)
{
	const index_entry *e;
	int found = 0;

	pthread_rwlock_rdlock(&idx->lock);
	if ((e = find_entry(idx, (int)type, id)) != NULL) {
		found = 1;
		if (out)
			fill_location(out, idx, e);
	}
	pthread_rwlock_unlock(&idx->lock);
	return found;
}

size_t cairn_index_count(cairn_index *idx)
{
	size_t n;
	pthread_rwlock_rdlock(&idx->lock);
	n = idx->n;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

int cairn_index_foreach(cairn_index *idx, cairn_index_foreach_cb cb, void *payload)
{
	cairn_blob_location loc;
	int r = 0;

	pthread_rwlock_rdlock(&idx->lock);
	for (size_t k = 0; k < idx->n && r == 0; k++) {
		const index_entry *e = &idx->entries[k];
		fill_location(&loc, idx, e);
		r = cb((cairn_blob_type)e->type, &e->id, &loc, payload);
	}
	pthread_rwlock_unlock(&idx->lock);
	return r;
}

/* ---- JSON parsing ---- */

/* Parse a 64-hex id member `key` of `obj`. `where` names the object. */
static int json_id(cairn_id *out, json_t *obj, const char *key, const char *where)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s has no \"%s\"", where, key);
	if (!json_is_string(v))
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s: \"%s\" is not a string", where, key);
	if (cairn_id_from_hex_n(out, json_string_value(v), json_string_length(v)) < 0)
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s: \"%s\" is not 64 hex characters: '%.80s'",
			where, key, json_string_value(v));
	return 0;
}

/* Parse an integer member within [min, UINT32_MAX].  An absent (or null)
 * optional member gives 0. */
static int json_u32(uint32_t *out, json_t *obj, const char *key, int optional, uint32_t min,
	const char *where)
{
	json_t *v = json_object_get(obj, key);
	json_int_t x;

	*out = 0;
	if (!v || (optional && json_is_null(v))) {
		if (optional)
			return 0;
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s has no \"%s\"", where, key);
	}
	if (!json_is_integer(v))
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s: \"%s\" is not an integer", where, key);
	x = json_integer_value(v);
	if (x < (json_int_t)min || x > (json_int_t)UINT32_MAX)
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s: \"%s\" is %" JSON_INTEGER_FORMAT
			", not within %" PRIu32 "..%" PRIu32, where, key, x, min, UINT32_MAX);
	*out = (uint32_t)x;
	return 0;
}

static int parse_blob(cairn_pack_entry *e, json_t *blob, const char *where)
{
	json_t *type;
	const char *name;

	if (!json_is_object(blob))
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s is not an object", where);
	CAIRN_TRY(json_id(&e->id, blob, "id", where));
	type = json_object_get(blob, "type");
	if (!type || !json_is_string(type))
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s has no \"type\" string", where);
	name = json_string_value(type);
	if (json_string_length(type) == 4 && strcmp(name, "data") == 0)
		e->type = CAIRN_BLOB_DATA;
	else if (json_string_length(type) == 4 && strcmp(name, "tree") == 0)
		e->type = CAIRN_BLOB_TREE;
	else
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s: unknown type '%.40s'", where, name);
	CAIRN_TRY(json_u32(&e->offset, blob, "offset", 0, 0, where));
	CAIRN_TRY(json_u32(&e->length, blob, "length", 0, 32, where));
	CAIRN_TRY(json_u32(&e->uncompressed_length, blob, "uncompressed_length", 1, 0, where));
	return 0;
}

/* Validate every blob of every pack; with cb, report them too. */
static int walk_packs(json_t *packs, cairn_index_entry_cb cb, void *payload)
{
	char where[96];
	size_t i, j;
	json_t *pack, *blobs, *blob;
	cairn_id pack_id;
	cairn_pack_entry e;
	int r;

	json_array_foreach(packs, i, pack) {
		snprintf(where, sizeof(where), "pack %zu", i);
		if (!json_is_object(pack))
			return cairn_error_set(CAIRN_ECORRUPT, "index: %s is not an object", where);
		CAIRN_TRY(json_id(&pack_id, pack, "id", where));
		blobs = json_object_get(pack, "blobs");
		if (!blobs || !json_is_array(blobs))
			return cairn_error_set(CAIRN_ECORRUPT, "index: %s has no \"blobs\" array", where);
		json_array_foreach(blobs, j, blob) {
			snprintf(where, sizeof(where), "pack %zu blob %zu", i, j);
			memset(&e, 0, sizeof(e));
			CAIRN_TRY(parse_blob(&e, blob, where));
			if (cb && (r = cb(&pack_id, &e, payload)) != 0)
				return r;
		}
	}
	return 0;
}

/* The entries passed to cb are borrowed for the call only. */
int cairn_index_parse_json(const char *json, size_t len, cairn_index_entry_cb cb, void *payload)
{
	json_error_t jerr;
	json_t *root = NULL, *packs, *sup, *v;
	size_t i;
	int r = 0;

	if (!json || !cb)
		return cairn_error_set(CAIRN_EINVAL, "no index JSON or callback given");
	if (!(root = json_loadb(json, len, 0, &jerr))) {
		r = cairn_error_set(CAIRN_ECORRUPT, "index is not valid JSON: %s (line %d, column %d)",
			jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (json_is_array(root)) {
		packs = root; /* legacy format: the list of packs itself */
	} else if (json_is_object(root)) {
		sup = json_object_get(root, "supersedes");
		if (sup && !json_is_null(sup)) {
			if (!json_is_array(sup)) {
				r = cairn_error_set(CAIRN_ECORRUPT, "index: \"supersedes\" is not an array");
				goto out;
			}
			json_array_foreach(sup, i, v) {
				if (!json_is_string(v) || !cairn_id_is_hex(json_string_value(v))
					|| json_string_length(v) != 64) {
					r = cairn_error_set(CAIRN_ECORRUPT,
						"index: \"supersedes\" entry %zu is not a 64-hex id", i);
					goto out;
				}
			}
		}
		packs = json_object_get(root, "packs");
		if (!packs || json_is_null(packs))
			goto out; /* an index without packs is empty, not wrong */
		if (!json_is_array(packs)) {
			r = cairn_error_set(CAIRN_ECORRUPT, "index: \"packs\" is not an array");
			goto out;
		}
	} else {
		r = cairn_error_set(CAIRN_ECORRUPT, "index JSON is neither an object nor an array");
		goto out;
	}
	/* Validate the whole file before reporting anything, so a bad file adds
	 * nothing: then walk it again with the callback. */
	if ((r = walk_packs(packs, NULL, NULL)) < 0)
		goto out;
	r = walk_packs(packs, cb, payload);
out:
	json_decref(root);
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
