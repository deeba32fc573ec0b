/* test_index.c: the blob index table, the index JSON parser (also against
 * the jansson parser it replaced) and the builder. */
#include <inttypes.h>
#include <pthread.h>

#include <cairn/error.h>
#include <cairn/id.h>
#include <cairn/index.h>
#include "unit.h"

static cairn_id id_of(unsigned seed)
{
	cairn_id id;
	cairn_sha256(&id, &seed, sizeof(seed));
	return id;
}

static cairn_blob_location loc_of(unsigned seed)
{
	cairn_blob_location loc;
	loc.pack = id_of(seed / 100 + 7000000);
	loc.offset = seed * 3;
	loc.length = 32 + seed % 1000;
	loc.uncompressed_length = seed % 3 ? seed : 0;
	return loc;
}

static int loc_equal(const cairn_blob_location *a, const cairn_blob_location *b)
{
	return cairn_id_equal(&a->pack, &b->pack) && a->offset == b->offset && a->length == b->length
		&& a->uncompressed_length == b->uncompressed_length;
}

static void test_add_lookup_dup(void)
{
	cairn_index *idx = NULL;
	cairn_blob_location a = loc_of(1), b = loc_of(2), got;
	cairn_id id = id_of(1);

	CHECK_OK(cairn_index_new(&idx));
	CHECK_INT(cairn_index_count(idx), 0);
	CHECK_INT(cairn_index_lookup(&got, idx, CAIRN_BLOB_DATA, &id), 0);
	CHECK_INT(cairn_index_add(idx, CAIRN_BLOB_DATA, &id, &a), 1);
	CHECK_INT(cairn_index_add(idx, CAIRN_BLOB_DATA, &id, &b), 0); /* first location kept */
	CHECK_INT(cairn_index_lookup(&got, idx, CAIRN_BLOB_DATA, &id), 1);
	CHECK(loc_equal(&got, &a));
	CHECK_INT(cairn_index_lookup(NULL, idx, CAIRN_BLOB_DATA, &id), 1);
	/* the same id as a tree is a different blob */
	CHECK_INT(cairn_index_lookup(&got, idx, CAIRN_BLOB_TREE, &id), 0);
	CHECK_INT(cairn_index_add(idx, CAIRN_BLOB_TREE, &id, &b), 1);
	CHECK_INT(cairn_index_lookup(&got, idx, CAIRN_BLOB_TREE, &id), 1);
	CHECK(loc_equal(&got, &b));
	CHECK_INT(cairn_index_count(idx), 2);
	CHECK_INT(cairn_index_add(idx, (cairn_blob_type)5, &id, &b), CAIRN_EINVAL);
	cairn_index_free(idx);
	cairn_index_free(NULL);
}

struct sums {
	size_t n;
	uint64_t offsets;
	size_t trees;
};

static int sum_cb(cairn_blob_type type, const cairn_id *id, const cairn_blob_location *loc,
	void *payload)
{
	struct sums *s = payload;
	(void)id;
	s->n++;
	s->offsets += loc->offset;
	s->trees += type == CAIRN_BLOB_TREE;
	return 0;
}

static int stop_cb(cairn_blob_type type, const cairn_id *id, const cairn_blob_location *loc,
	void *payload)
{
	(void)type; (void)id; (void)loc;
	return ++*(int *)payload == 10 ? 42 : 0;
}

static void test_growth_200k(void)
{
	const unsigned n = 200000;
	cairn_index *idx = NULL;
	cairn_blob_location got, want;
	struct sums s = { 0, 0, 0 };
	uint64_t offsets = 0;
	int bad = 0, calls = 0;

	CHECK_OK(cairn_index_new(&idx));
	for (unsigned i = 0; i < n; i++) {
		cairn_id id = id_of(i);
		want = loc_of(i);
		if (cairn_index_add(idx, i % 5 ? CAIRN_BLOB_DATA : CAIRN_BLOB_TREE, &id, &want) != 1)
			bad++;
		offsets += want.offset;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(cairn_index_count(idx), n);
	for (unsigned i = 0; i < n; i++) {
		cairn_id id = id_of(i);
		want = loc_of(i);
		if (cairn_index_lookup(&got, idx, i % 5 ? CAIRN_BLOB_DATA : CAIRN_BLOB_TREE, &id) != 1
			|| !loc_equal(&got, &want))
			bad++;
		if (cairn_index_lookup(&got, idx, i % 5 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, &id) != 0)
			bad++;
	}
	CHECK_INT(bad, 0);
	for (unsigned i = n; i < n + 1000; i++) {
		cairn_id id = id_of(i);
		bad += cairn_index_lookup(&got, idx, CAIRN_BLOB_DATA, &id);
	}
	CHECK_INT(bad, 0);
	CHECK_OK(cairn_index_foreach(idx, sum_cb, &s));
	CHECK_INT(s.n, n);
	CHECK_INT(s.trees, n / 5);
	CHECK(s.offsets == offsets);
	CHECK_INT(cairn_index_foreach(idx, stop_cb, &calls), 42);
	CHECK_INT(calls, 10);
	cairn_index_free(idx);
}

/* Ids sharing their first 8 bytes all hash alike: probing must still work. */
static void test_colliding_prefixes(void)
{
	cairn_index *idx = NULL;
	cairn_blob_location loc = loc_of(9), got;
	cairn_id id;
	int bad = 0;

	CHECK_OK(cairn_index_new(&idx));
	memset(&id, 0xab, sizeof(id));
	for (unsigned i = 0; i < 3000; i++) {
		memcpy(id.bytes + 28, &i, sizeof(i));
		loc.offset = i;
		bad += cairn_index_add(idx, CAIRN_BLOB_DATA, &id, &loc) != 1;
	}
	for (unsigned i = 0; i < 3000; i++) {
		memcpy(id.bytes + 28, &i, sizeof(i));
		bad += cairn_index_lookup(&got, idx, CAIRN_BLOB_DATA, &id) != 1 || got.offset != i;
	}
	CHECK_INT(bad, 0);
	cairn_index_free(idx);
}

struct thread_arg {
	cairn_index *idx;
	unsigned base;
	int bad;
};

static void *writer_main(void *p)
{
	struct thread_arg *a = p;
	for (unsigned i = a->base; i < a->base + 20000; i++) {
		cairn_id id = id_of(i);
		cairn_blob_location loc = loc_of(i);
		a->bad += cairn_index_add(a->idx, CAIRN_BLOB_DATA, &id, &loc) != 1;
	}
	return NULL;
}

static void *reader_main(void *p)
{
	struct thread_arg *a = p;
	cairn_blob_location got, want;
	for (int round = 0; round < 3; round++)
		for (unsigned i = 0; i < 5000; i++) {
			cairn_id id = id_of(i); /* preloaded */
			want = loc_of(i);
			a->bad += cairn_index_lookup(&got, a->idx, CAIRN_BLOB_DATA, &id) != 1
				|| !loc_equal(&got, &want);
		}
	return NULL;
}

static void test_concurrent_add_lookup(void)
{
	cairn_index *idx = NULL;
	struct thread_arg args[4];
	pthread_t t[4];

	CHECK_OK(cairn_index_new(&idx));
	for (unsigned i = 0; i < 5000; i++) {
		cairn_id id = id_of(i);
		cairn_blob_location loc = loc_of(i);
		cairn_index_add(idx, CAIRN_BLOB_DATA, &id, &loc);
	}
	for (int i = 0; i < 4; i++) {
		args[i].idx = idx;
		args[i].base = 100000 + (unsigned)i * 20000;
		args[i].bad = 0;
		pthread_create(&t[i], NULL, i < 2 ? writer_main : reader_main, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_INT(args[i].bad, 0);
	}
	CHECK_INT(cairn_index_count(idx), 5000 + 2 * 20000);
	cairn_index_free(idx);
}

/* Collects parsed entries as text, one per line. */
static int collect_cb(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	char ph[CAIRN_ID_HEX_SIZE], bh[CAIRN_ID_HEX_SIZE];
	cairn_id_to_hex(ph, pack);
	cairn_id_to_hex(bh, &e->id);
	return cairn_buf_printf(payload, "%.8s %.8s %s %u %u %u\n", ph, bh, cairn_blob_type_name(e->type),
		(unsigned)e->offset, (unsigned)e->length, (unsigned)e->uncompressed_length);
}

static void fill_entries(cairn_pack_entry *e, size_t n, unsigned seed)
{
	uint32_t off = 0;
	for (size_t i = 0; i < n; i++) {
		e[i].id = id_of(seed + (unsigned)i);
		e[i].type = i == n - 1 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
		e[i].offset = off;
		e[i].length = 40 + (uint32_t)i * 13;
		e[i].uncompressed_length = i % 2 ? 100 + (uint32_t)i : 0;
		off += e[i].length;
	}
}

static void test_builder_exact_json(void)
{
	cairn_index_builder *b = NULL;
	cairn_pack_entry e[2];
	cairn_id pack;
	cairn_buf out = CAIRN_BUF_INIT;
	char expect[1024];

	memset(&pack, 0x11, sizeof(pack));
	memset(&e[0].id, 0x22, sizeof(e[0].id));
	e[0].type = CAIRN_BLOB_DATA;
	e[0].offset = 0;
	e[0].length = 4294967295u;
	e[0].uncompressed_length = 0;
	memset(&e[1].id, 0xaf, sizeof(e[1].id));
	e[1].type = CAIRN_BLOB_TREE;
	e[1].offset = 1234567;
	e[1].length = 32;
	e[1].uncompressed_length = 10;
	CHECK_OK(cairn_index_builder_new(&b));
	CHECK_OK(cairn_index_builder_encode(&out, b));
	CHECK_STR(cairn_buf_cstr(&out), "{\"packs\":[]}\n");
	CHECK_OK(cairn_index_builder_add_pack(b, &pack, e, 2));
	CHECK_OK(cairn_index_builder_encode(&out, b));
	snprintf(expect, sizeof(expect),
		"{\"packs\":[{\"id\":\"%s\",\"blobs\":["
		"{\"id\":\"%s\",\"type\":\"data\",\"offset\":0,\"length\":4294967295},"
		"{\"id\":\"%s\",\"type\":\"tree\",\"offset\":1234567,\"length\":32,\"uncompressed_length\":10}"
		"]}]}\n",
		"1111111111111111111111111111111111111111111111111111111111111111",
		"2222222222222222222222222222222222222222222222222222222222222222",
		"afafafafafafafafafafafafafafafafafafafafafafafafafafafafafafafaf");
	CHECK_STR(cairn_buf_cstr(&out), expect);
	CHECK_INT(cairn_index_builder_add_pack(b, &pack, e, 0), CAIRN_EINVAL);
	cairn_buf_release(&out);
	cairn_index_builder_free(b);
	cairn_index_builder_free(NULL);
}

static void test_builder_round_trip(void)
{
	cairn_index_builder *b = NULL;
	cairn_index *idx = NULL;
	cairn_pack_entry e[300];
	cairn_id packs[5];
	cairn_buf json = CAIRN_BUF_INIT, listed = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
	cairn_blob_location got;
	int bad = 0;

	CHECK_OK(cairn_index_builder_new(&b));
	for (unsigned p = 0; p < 5; p++) {
		packs[p] = id_of(900000 + p);
		fill_entries(e, 60, p * 1000);
		CHECK_OK(cairn_index_builder_add_pack(b, &packs[p], e, 60));
		for (size_t i = 0; i < 60; i++)
			collect_cb(&packs[p], &e[i], &want);
	}
	CHECK_INT(cairn_index_builder_pack_count(b), 5);
	CHECK_INT(cairn_index_builder_blob_count(b), 300);
	CHECK_OK(cairn_index_builder_encode(&json, b));
	CHECK(json.len > 0 && json.data[json.len - 1] == '\n');
	CHECK_OK(cairn_index_parse_json((const char *)json.data, json.len, collect_cb, &listed));
	CHECK_INT(listed.len, want.len);
	CHECK_STR(cairn_buf_cstr(&listed), cairn_buf_cstr(&want));

	CHECK_OK(cairn_index_new(&idx));
	CHECK_OK(cairn_index_add_json(idx, (const char *)json.data, json.len));
	CHECK_INT(cairn_index_count(idx), 300);
	for (unsigned p = 0; p < 5; p++) {
		fill_entries(e, 60, p * 1000);
		for (size_t i = 0; i < 60; i++) {
			bad += cairn_index_lookup(&got, idx, e[i].type, &e[i].id) != 1;
			bad += !cairn_id_equal(&got.pack, &packs[p]) || got.offset != e[i].offset
				|| got.length != e[i].length || got.uncompressed_length != e[i].uncompressed_length;
		}
	}
	CHECK_INT(bad, 0);

	cairn_index_builder_reset(b);
	CHECK_INT(cairn_index_builder_blob_count(b), 0);
	CHECK_OK(cairn_index_builder_encode(&json, b));
	CHECK_STR(cairn_buf_cstr(&json), "{\"packs\":[]}\n");
	cairn_index_free(idx);
	cairn_index_builder_free(b);
	cairn_buf_release(&json);
	cairn_buf_release(&listed);
	cairn_buf_release(&want);
}

#define P "\"1111111111111111111111111111111111111111111111111111111111111111\""
#define B "\"2222222222222222222222222222222222222222222222222222222222222222\""

static void test_parse_formats(void)
{
	cairn_buf listed = CAIRN_BUF_INIT;
	/* restic-like v2 with supersedes, whitespace, unknown keys, blobs out of order */
	const char *v2 =
		"{\"supersedes\": [" P "],\n \"packs\": [ {\"id\": " P ", \"blobs\": [\n"
		"  {\"id\": " B ", \"type\": \"tree\", \"offset\": 100, \"length\": 50, \"uncompressed_length\": 77},\n"
		"  {\"id\": " B ", \"type\": \"data\", \"offset\": 0, \"length\": 100, \"extra\": true}\n"
		"]}]}\n";
	const char *legacy =
		"[{\"id\":" P ",\"blobs\":[{\"id\":" B ",\"type\":\"data\",\"offset\":5,\"length\":32}]}]";

	CHECK_OK(cairn_index_parse_json(v2, strlen(v2), collect_cb, &listed));
	CHECK_STR(cairn_buf_cstr(&listed),
		"11111111 22222222 tree 100 50 77\n11111111 22222222 data 0 100 0\n");
	cairn_buf_clear(&listed);
	CHECK_OK(cairn_index_parse_json(legacy, strlen(legacy), collect_cb, &listed));
	CHECK_STR(cairn_buf_cstr(&listed), "11111111 22222222 data 5 32 0\n");
	cairn_buf_clear(&listed);
	CHECK_OK(cairn_index_parse_json("{\"packs\":[]}", 12, collect_cb, &listed));
	CHECK_OK(cairn_index_parse_json("{}", 2, collect_cb, &listed));
	CHECK_OK(cairn_index_parse_json("[]", 2, collect_cb, &listed));
	CHECK_INT(listed.len, 0);
	/* "uncompressed_length": null or 0 means uncompressed */
	const char *nul = "{\"packs\":[{\"id\":" P ",\"blobs\":[{\"id\":" B ",\"type\":\"data\","
		"\"offset\":0,\"length\":40,\"uncompressed_length\":null}]}]}";
	CHECK_OK(cairn_index_parse_json(nul, strlen(nul), collect_cb, &listed));
	CHECK_STR(cairn_buf_cstr(&listed), "11111111 22222222 data 0 40 0\n");
	cairn_buf_release(&listed);
}

static int never_cb(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	(void)pack; (void)e;
	(*(int *)payload)++;
	return 0;
}

static int stop_after_one(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	(void)pack; (void)e;
	(*(int *)payload)++;
	return 99;
}

static void test_parse_rejects_malformed(void)
{
#define BLOB(fields) "{\"packs\":[{\"id\":" P ",\"blobs\":[{" fields "}]}]}"
	static const char *const bad[] = {
		"",
		"{",
		"nope",
		"42",
		"\"packs\"",
		"{\"packs\":{}}",
		"{\"packs\":[1]}",
		"{\"packs\":[{\"blobs\":[]}]}",
		"{\"packs\":[{\"id\":" P "}]}",
		"{\"packs\":[{\"id\":" P ",\"blobs\":{}}]}",
		"{\"packs\":[{\"id\":\"abc\",\"blobs\":[]}]}",
		"{\"packs\":[{\"id\":12,\"blobs\":[]}]}",
		"{\"supersedes\":\"x\",\"packs\":[]}",
		"{\"supersedes\":[\"abcd\"],\"packs\":[]}",
		"{\"packs\":[{\"id\":" P ",\"blobs\":[7]}]}",
		BLOB("\"type\":\"data\",\"offset\":0,\"length\":40"),
		BLOB("\"id\":\"zz22222222222222222222222222222222222222222222222222222222222222\",\"type\":\"data\",\"offset\":0,\"length\":40"),
		BLOB("\"id\":\"22222222222222222222222222222222222222222222222222222222222222\",\"type\":\"data\",\"offset\":0,\"length\":40"),
		BLOB("\"id\":" B ",\"offset\":0,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"Data\",\"offset\":0,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data \",\"offset\":0,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"blob\",\"offset\":0,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":1,\"offset\":0,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":-1,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":4294967296,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":1.5,\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":\"0\",\"length\":40"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":0"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":0,\"length\":31"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":0,\"length\":40,\"uncompressed_length\":-3"),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":0,\"length\":40,\"uncompressed_length\":\"9\""),
		BLOB("\"id\":" B ",\"type\":\"data\",\"offset\":0,\"length\":40,\"uncompressed_length\":5000000000"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int calls = 0;
		int r = cairn_index_parse_json(bad[i], strlen(bad[i]), never_cb, &calls);
		if (r != CAIRN_ECORRUPT || calls != 0 || strncmp(cairn_error_message(), "index", 5) != 0) {
			unit_failures++;
			fprintf(stderr, "malformed case %zu accepted or misreported: r=%d calls=%d msg='%s'\n  %s\n",
				i, r, calls, cairn_error_message(), bad[i]);
		}
	}
	/* a bad blob late in the file reports nothing before it */
	const char *late = "{\"packs\":[{\"id\":" P ",\"blobs\":["
		"{\"id\":" B ",\"type\":\"data\",\"offset\":0,\"length\":40},"
		"{\"id\":" B ",\"type\":\"tree\",\"offset\":40,\"length\":3}]}]}";
	int calls = 0;
	CHECK_INT(cairn_index_parse_json(late, strlen(late), never_cb, &calls), CAIRN_ECORRUPT);
	CHECK_INT(calls, 0);
	CHECK(strstr(cairn_error_message(), "pack 0 blob 1") != NULL);
	CHECK(strstr(cairn_error_message(), "length") != NULL);
	/* a callback's non-zero result stops parsing and is returned */
	const char *two = "{\"packs\":[{\"id\":" P ",\"blobs\":["
		"{\"id\":" B ",\"type\":\"data\",\"offset\":0,\"length\":40},"
		"{\"id\":" B ",\"type\":\"tree\",\"offset\":40,\"length\":40}]}]}";
	calls = 0;
	CHECK_INT(cairn_index_parse_json(two, strlen(two), stop_after_one, &calls), 99);
	CHECK_INT(calls, 1);
	/* embedded NUL and trailing garbage */
	CHECK_INT(cairn_index_parse_json("{}\0", 3, never_cb, &calls), CAIRN_ECORRUPT);
	CHECK_INT(cairn_index_parse_json("{} {}", 5, never_cb, &calls), CAIRN_ECORRUPT);
#undef BLOB
}


/* ---- the streaming parser against the jansson parser it replaced ----
 * ref_* below is the jansson-based parser cairn used before (a tree per
 * file): the streaming parser must accept exactly the same texts, report
 * exactly the same entries, and give the same message for every error that
 * is not a JSON syntax error. */
#include <jansson.h>


/* Parse a 64-hex id member `key` of `obj`. `where` names the object. */
static int ref_json_id(cairn_id *out, json_t *obj, const char *key, const char *where)
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
static int ref_json_u32(uint32_t *out, json_t *obj, const char *key, int optional, uint32_t min,
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

static int ref_parse_blob(cairn_pack_entry *e, json_t *blob, const char *where)
{
	json_t *type;
	const char *name;

	if (!json_is_object(blob))
		return cairn_error_set(CAIRN_ECORRUPT, "index: %s is not an object", where);
	CAIRN_TRY(ref_json_id(&e->id, blob, "id", where));
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
	CAIRN_TRY(ref_json_u32(&e->offset, blob, "offset", 0, 0, where));
	CAIRN_TRY(ref_json_u32(&e->length, blob, "length", 0, 32, where));
	CAIRN_TRY(ref_json_u32(&e->uncompressed_length, blob, "uncompressed_length", 1, 0, where));
	return 0;
}

/* Validate every blob of every pack; with cb, report them too. */
static int ref_walk_packs(json_t *packs, cairn_index_entry_cb cb, void *payload)
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
		CAIRN_TRY(ref_json_id(&pack_id, pack, "id", where));
		blobs = json_object_get(pack, "blobs");
		if (!blobs || !json_is_array(blobs))
			return cairn_error_set(CAIRN_ECORRUPT, "index: %s has no \"blobs\" array", where);
		json_array_foreach(blobs, j, blob) {
			snprintf(where, sizeof(where), "pack %zu blob %zu", i, j);
			memset(&e, 0, sizeof(e));
			CAIRN_TRY(ref_parse_blob(&e, blob, where));
			if (cb && (r = cb(&pack_id, &e, payload)) != 0)
				return r;
		}
	}
	return 0;
}

static int ref_parse_json(const char *json, size_t len, cairn_index_entry_cb cb, void *payload)
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
	if ((r = ref_walk_packs(packs, NULL, NULL)) < 0)
		goto out;
	r = ref_walk_packs(packs, cb, payload);
out:
	json_decref(root);
	return r;
}


static int listing_cb(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	cairn_buf *out = payload;
	char p[CAIRN_ID_HEX_SIZE], b[CAIRN_ID_HEX_SIZE], line[256];
	cairn_id_to_hex(p, pack);
	cairn_id_to_hex(b, &e->id);
	snprintf(line, sizeof(line), "%s %s %d %u %u %u\n", p, b, (int)e->type, e->offset, e->length,
		e->uncompressed_length);
	return cairn_buf_puts(out, line);
}

/* 0 when both parsers agree on text; else prints the case. */
static int same_verdict(const char *text, size_t len)
{
	cairn_buf a = CAIRN_BUF_INIT, b = CAIRN_BUF_INIT;
	char msg_a[512];
	int ra, rb, bad = 0;

	ra = ref_parse_json(text, len, listing_cb, &a);
	snprintf(msg_a, sizeof(msg_a), "%s", cairn_error_message());
	rb = cairn_index_parse_json(text, len, listing_cb, &b);
	if ((ra < 0) != (rb < 0) || (ra < 0 && rb != CAIRN_ECORRUPT))
		bad = 1;
	else if (ra == 0 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0)))
		bad = 1;
	else if (ra < 0 && strncmp(msg_a, "index is not valid JSON", 23) != 0
		&& strcmp(msg_a, cairn_error_message()) != 0)
		bad = 1;
	if (bad) {
		fprintf(stderr, "parsers disagree (jansson %d '%s', streaming %d '%s') on %zu bytes: %.*s\n",
			ra, msg_a, rb, cairn_error_message(), len, (int)(len > 300 ? 300 : len), text);
	}
	cairn_buf_release(&a);
	cairn_buf_release(&b);
	return bad;
}

static void test_parser_matches_jansson(void)
{
#define H "\"2222222222222222222222222222222222222222222222222222222222222222\""
#define Q "\"1111111111111111111111111111111111111111111111111111111111111111\""
#define BL "{\"id\":" H ",\"type\":\"data\",\"offset\":0,\"length\":40}"
	static const char *const cases[] = {
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[" BL "]}]}",
		/* escapes in keys and values */
		"{\"pa\\u0063ks\":[{\"\\u0069d\":" Q ",\"blobs\":[{\"id\":\"\\u0032222222222222222222222222222222222222222222222222222222222222222\",\"type\":\"d\\u0061ta\",\"offset\":0,\"length\":40}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"tree\",\"offset\":0,\"length\":40,\"x\":\"\\ud83d\\ude00\\n\\t\\/\\\\\\\"\"}]}]}",
		/* members given twice: the last counts */
		"{\"packs\":[{\"id\":12}],\"packs\":[{\"id\":" Q ",\"blobs\":[" BL "]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[" BL "]}],\"packs\":null}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[7],\"blobs\":[" BL "]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[" BL "],\"blobs\":[7]}]}",
		"{\"packs\":[{\"id\":\"x\",\"id\":" Q ",\"blobs\":[" BL "]}]}",
		"{\"packs\":[{\"blobs\":[" BL "],\"id\":" Q "}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":0,\"length\":40,\"length\":20}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":\"0\",\"offset\":7,\"length\":40}]}]}",
		"{\"supersedes\":5,\"supersedes\":[" Q "],\"packs\":[]}",
		"{\"supersedes\":[" Q "],\"supersedes\":[1],\"packs\":[]}",
		"{\"supersedes\":[\"zz\"],\"packs\":[7]}",
		"{\"packs\":[7],\"supersedes\":[\"zz\"]}",
		"{\"packs\":5,\"packs\":[]}",
		"{\"packs\":[]}  \n\t\r",
		/* unknown members of every kind */
		"{\"a\":{\"b\":[1,2.5e3,-0,true,false,null,\"s\",{}],\"c\":[]},\"packs\":[{\"z\":[[]],\"id\":" Q ",\"blobs\":[]}]}",
		/* numbers */
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":-0,\"length\":40}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":0,\"length\":4e1}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":0,\"length\":40,\"uncompressed_length\":9223372036854775807}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":0,\"length\":40,\"uncompressed_length\":9223372036854775808}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":-9223372036854775808,\"length\":40}]}]}",
		"{\"packs\":[{\"id\":" Q ",\"blobs\":[{\"id\":" H ",\"type\":\"data\",\"offset\":-9223372036854775809,\"length\":40}]}]}",
		"{\"x\":1e400,\"packs\":[]}",
		"{\"x\":1e-400,\"packs\":[]}",
		"{\"x\":01,\"packs\":[]}",
		"{\"x\":1.,\"packs\":[]}",
		"{\"x\":-,\"packs\":[]}",
		"{\"x\":.5,\"packs\":[]}",
		"{\"x\":+1,\"packs\":[]}",
		"{\"x\":1e+,\"packs\":[]}",
		/* strings */
		"{\"x\":\"\\u0000\",\"packs\":[]}",
		"{\"x\":\"\\ud800\",\"packs\":[]}",
		"{\"x\":\"\\udc00\",\"packs\":[]}",
		"{\"x\":\"\\ud800\\u0041\",\"packs\":[]}",
		"{\"x\":\"\\q\",\"packs\":[]}",
		"{\"x\":\"\\u12g4\",\"packs\":[]}",
		"{\"x\":\"\t\",\"packs\":[]}",
		"{\"x\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"packs\":[]}",
		"{\"x\":\"\xc0\xaf\",\"packs\":[]}",
		"{\"x\":\"\xed\xa0\x80\",\"packs\":[]}",
		"{\"x\":\"\xf4\x90\x80\x80\",\"packs\":[]}",
		"{\"x\":\"\xe2\x82\",\"packs\":[]}",
		"{\"x\":\"\xff\",\"packs\":[]}",
		"\xef\xbb\xbf{\"packs\":[]}",
		"{\"\\u0000\":1}",
		/* structure */
		"{\"packs\":[],}",
		"{\"packs\":[1,]}",
		"{,\"packs\":[]}",
		"{\"packs\" [] }",
		"{\"packs\":[]}}",
		"{\"packs\":[]",
		"[]",
		"[7]",
		"[null]",
		" [ ] ",
		"{\"packs\":tru}",
		"{\"packs\":true}",
		"{\"packs\":nullx}",
		"{\"packs\":[truex]}",
		"{'packs':[]}",
		"{\"packs\":[]}\x00",
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		bad += same_verdict(cases[i], strlen(cases[i]));
	bad += same_verdict("{\"packs\":[]}\0", 13);

	/* nesting around jansson's limit of 2048 */
	for (int depth = 2040; depth <= 2052; depth++) {
		for (int with_value = 0; with_value < 2; with_value++) {
			cairn_buf t = CAIRN_BUF_INIT;
			cairn_buf_puts(&t, "{\"x\":");
			for (int d = 1; d < depth; d++)
				cairn_buf_puts(&t, "[");
			if (with_value)
				cairn_buf_puts(&t, "1");
			for (int d = 1; d < depth; d++)
				cairn_buf_puts(&t, "]");
			cairn_buf_puts(&t, ",\"packs\":[]}");
			bad += same_verdict((const char *)t.data, t.len);
			cairn_buf_release(&t);
		}
	}

	/* seeded mutations of a real index file */
	{
		cairn_index_builder *b = NULL;
		cairn_pack_entry e[4];
		cairn_id pack = id_of(1);
		cairn_buf json = CAIRN_BUF_INIT, m = CAIRN_BUF_INIT;
		static const char alphabet[] = "{}[],:\"\\ 0123456789-+.eEtrufalsn\x80\xc3\xa9\n";
		uint32_t x = 12345;

		for (int k = 0; k < 4; k++) {
			memset(&e[k], 0, sizeof(e[k]));
			e[k].id = id_of(100 + (unsigned)k);
			e[k].type = k == 1 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
			e[k].offset = (uint32_t)k * 100;
			e[k].length = 64 + (uint32_t)k;
			e[k].uncompressed_length = k == 2 ? 500 : 0;
		}
		CHECK_OK(cairn_index_builder_new(&b));
		CHECK_OK(cairn_index_builder_add_pack(b, &pack, e, 3));
		pack = id_of(2);
		CHECK_OK(cairn_index_builder_add_pack(b, &pack, e + 3, 1));
		CHECK_OK(cairn_index_builder_encode(&json, b));
		bad += same_verdict((const char *)json.data, json.len);
		for (int round = 0; round < 40000 && bad < 5; round++) {
			int edits = 1 + round % 3;
			cairn_buf_clear(&m);
			cairn_buf_append(&m, json.data, json.len);
			for (int k = 0; k < edits; k++) {
				size_t at;
				x ^= x << 13; x ^= x >> 17; x ^= x << 5;
				at = m.len ? x % m.len : 0;
				switch ((x >> 24) % 4) {
				case 0: /* replace a byte */
					if (m.len)
						m.data[at] = (unsigned char)alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
					break;
				case 1: /* delete a byte */
					if (m.len) {
						memmove(m.data + at, m.data + at + 1, m.len - at - 1);
						m.len--;
					}
					break;
				case 2: /* insert a byte */
					cairn_buf_append(&m, "", 1);
					memmove(m.data + at + 1, m.data + at, m.len - at - 1);
					m.data[at] = (unsigned char)alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
					break;
				default: /* repeat a slice (members given twice) */
					if (m.len > 8) {
						size_t n = 1 + (x >> 12) % 40, from = (x >> 4) % m.len;
						unsigned char slice[64];
						if (from + n > m.len)
							n = m.len - from;
						memcpy(slice, m.data + from, n);
						cairn_buf_append(&m, slice, n);
						memmove(m.data + at + n, m.data + at, m.len - at - n);
						memcpy(m.data + at, slice, n);
					}
					break;
				}
			}
			bad += same_verdict((const char *)m.data, m.len);
		}
		cairn_index_builder_free(b);
		cairn_buf_release(&json);
		cairn_buf_release(&m);
	}
	CHECK_INT(bad, 0);
#undef H
#undef Q
#undef BL
}

UNIT_MAIN(test_add_lookup_dup, test_growth_200k, test_colliding_prefixes, test_concurrent_add_lookup,
	test_builder_exact_json, test_builder_round_trip, test_parse_formats, test_parse_rejects_malformed,
	test_parser_matches_jansson)
