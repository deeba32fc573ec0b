/* test_index.c: the blob index table, the index JSON parser and the builder. */
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

UNIT_MAIN(test_add_lookup_dup, test_growth_200k, test_colliding_prefixes, test_concurrent_add_lookup,
	test_builder_exact_json, test_builder_round_trip, test_parse_formats, test_parse_rejects_malformed)
