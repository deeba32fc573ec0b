/* test_snapshot.c: snapshot JSON as restic 0.14 writes and reads it.
 *
 * The oracle documents are the exact plaintexts of snapshot files restic
 * 0.14.0 wrote (decrypted with the key from the repository's key file):
 * a first backup with tags and an exclude, a second backup with a parent
 * that `restic tag --add` then rewrote (giving it "original"), and a backup
 * made as uid 1000 under TZ=UTC.  Snapshot times carry their own zone
 * offset, so these round-trip byte for byte in any local zone.
 */
#include <cairn/id.h>
#include <cairn/snapshot.h>
#include "unit.h"

static const char oracle_first[] =
	"{\"time\":\"2026-11-30T20:58:46.10127361+01:00\","
	"\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
	"\"paths\":[\"/tmp/cairn-oracle/src\"],\"hostname\":\"oracle\",\"username\":\"root\","
	"\"excludes\":[\"*.bak\"],\"tags\":[\"t1\",\"x\\u003cy\"]}";
static const char oracle_rewritten[] =
	"{\"time\":\"2026-11-30T20:59:03.729316058+01:00\","
	"\"parent\":\"c5ab78f2b2c0914e063de3afb1268dbad057579347d016c38ca134cd8454be40\","
	"\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
	"\"paths\":[\"/tmp/cairn-oracle/src\"],\"hostname\":\"oracle\",\"username\":\"root\","
	"\"tags\":[\"new\\u0026tag\"],"
	"\"original\":\"c36f787b2b47df25633c88a7e304cab5bf6b0f8be0b9b807984915abfdd11d27\"}";
static const char oracle_user[] =
	"{\"time\":\"2026-11-30T19:59:06.061602355Z\","
	"\"tree\":\"e47666b96ed779a0955761da5d70c514d889cb2d99332a2d02986ba8be45a011\","
	"\"paths\":[\"/tmp/cairn-oracle/src/sub\"],\"hostname\":\"h\\u003cost\\u003e\","
	"\"username\":\"cloudsdk\",\"uid\":1000,\"gid\":1000}";

static int id_is(const cairn_id *id, const char *hex)
{
	char h[CAIRN_ID_HEX_SIZE];
	cairn_id_to_hex(h, id);
	return strcmp(h, hex) == 0;
}

static void check_reencodes(const char *json)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	cairn_buf out = CAIRN_BUF_INIT;

	CHECK_OK(cairn_snapshot_decode(&s, json, strlen(json)));
	CHECK_OK(cairn_snapshot_encode(&out, &s));
	CHECK_INT(out.len, strlen(json));
	CHECK_STR(cairn_buf_cstr(&out), json);
	cairn_buf_release(&out);
	cairn_snapshot_release(&s);
}

static void test_oracle_decode_and_reencode(void)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;

	CHECK_OK(cairn_snapshot_decode(&s, oracle_first, strlen(oracle_first)));
	CHECK_INT(s.time.sec, 1796068726);
	CHECK_INT(s.time.nsec, 101273610);
	CHECK_INT(s.time_offset_sec, 3600);
	CHECK(id_is(&s.tree, "19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803"));
	CHECK(!s.has_parent && !s.has_original);
	CHECK(cairn_id_is_zero(&s.id));
	CHECK_INT(s.n_paths, 1);
	CHECK_STR(s.paths[0], "/tmp/cairn-oracle/src");
	CHECK_STR(s.hostname, "oracle");
	CHECK_STR(s.username, "root");
	CHECK(s.uid == 0 && s.gid == 0);
	CHECK_INT(s.n_excludes, 1);
	CHECK_STR(s.excludes[0], "*.bak");
	CHECK_INT(s.n_tags, 2);
	CHECK_STR(s.tags[1], "x<y");
	CHECK(cairn_snapshot_has_tag(&s, "t1") && cairn_snapshot_has_tag(&s, "x<y"));
	CHECK(!cairn_snapshot_has_tag(&s, "t") && !cairn_snapshot_has_tag(&s, "x\\u003cy"));
	CHECK(cairn_snapshot_has_path(&s, "/tmp/cairn-oracle/src"));
	CHECK(!cairn_snapshot_has_path(&s, "/tmp/cairn-oracle"));
	cairn_snapshot_release(&s);
	CHECK(s.paths == NULL && s.n_tags == 0 && s.hostname == NULL);

	CHECK_OK(cairn_snapshot_decode(&s, oracle_rewritten, strlen(oracle_rewritten)));
	CHECK(s.has_parent && id_is(&s.parent, "c5ab78f2b2c0914e063de3afb1268dbad057579347d016c38ca134cd8454be40"));
	CHECK(s.has_original && id_is(&s.original, "c36f787b2b47df25633c88a7e304cab5bf6b0f8be0b9b807984915abfdd11d27"));
	CHECK_INT(s.n_excludes, 0);
	CHECK_STR(s.tags[0], "new&tag");
	cairn_snapshot_release(&s);

	CHECK_OK(cairn_snapshot_decode(&s, oracle_user, strlen(oracle_user)));
	CHECK_INT(s.time_offset_sec, 0);
	CHECK_INT(s.time.nsec, 61602355);
	CHECK(s.uid == 1000 && s.gid == 1000);
	CHECK_STR(s.hostname, "h<ost>");
	CHECK_STR(s.username, "cloudsdk");
	CHECK_INT(s.n_tags, 0);
	CHECK(s.tags == NULL);
	cairn_snapshot_release(&s);

	check_reencodes(oracle_first);
	check_reencodes(oracle_rewritten);
	check_reencodes(oracle_user);
}

static void test_encode_known_struct(void)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	cairn_buf out = CAIRN_BUF_INIT;

	s.time = (cairn_time){ 1704161045, 500000000 };
	s.time_offset_sec = -(3 * 3600 + 30 * 60);
	memset(s.tree.bytes, 0x11, CAIRN_ID_SIZE);
	s.has_parent = 1;
	memset(s.parent.bytes, 0x22, CAIRN_ID_SIZE);
	s.has_original = 1;
	memset(s.original.bytes, 0xab, CAIRN_ID_SIZE);
	memset(s.id.bytes, 0x99, CAIRN_ID_SIZE); /* not part of the JSON */
	CHECK_OK(cairn_strlist_add(&s.paths, &s.n_paths, "/home/a \"b\"\\c"));
	CHECK_OK(cairn_strlist_add(&s.paths, &s.n_paths, "/x\ny\t\x01\x7f"));
	CHECK_OK(cairn_strlist_add(&s.paths, &s.n_paths, "/bad\xff\xc3\xa9\xe2\x80\xa8"));
	s.hostname = strdup("h\xc3\xb6st");
	s.username = strdup("u&me");
	s.uid = 4294967295u;
	s.gid = 7;
	CHECK_OK(cairn_strlist_add(&s.excludes, &s.n_excludes, "*.tmp"));
	CHECK_OK(cairn_strlist_add(&s.excludes, &s.n_excludes, "<cache>"));
	CHECK_OK(cairn_strlist_add(&s.tags, &s.n_tags, "daily"));

	CHECK_OK(cairn_buf_puts(&out, "old contents"));
	CHECK_OK(cairn_snapshot_encode(&out, &s));
	CHECK_STR(cairn_buf_cstr(&out),
		"{\"time\":\"2024-01-01T22:34:05.5-03:30\","
		"\"parent\":\"2222222222222222222222222222222222222222222222222222222222222222\","
		"\"tree\":\"1111111111111111111111111111111111111111111111111111111111111111\","
		"\"paths\":[\"/home/a \\\"b\\\"\\\\c\",\"/x\\ny\\t\\u0001\x7f\",\"/bad\\ufffd\xc3\xa9\\u2028\"],"
		"\"hostname\":\"h\xc3\xb6st\",\"username\":\"u\\u0026me\",\"uid\":4294967295,\"gid\":7,"
		"\"excludes\":[\"*.tmp\",\"\\u003ccache\\u003e\"],\"tags\":[\"daily\"],"
		"\"original\":\"abababababababababababababababababababababababababababababababab\"}");

	/* and back: same values (the non-UTF-8 byte is the one lossy spot, as
	 * in restic) */
	cairn_snapshot d = CAIRN_SNAPSHOT_INIT;
	CHECK_OK(cairn_snapshot_decode(&d, (const char *)out.data, out.len));
	CHECK(d.time.sec == s.time.sec && d.time.nsec == s.time.nsec);
	CHECK_INT(d.time_offset_sec, s.time_offset_sec);
	CHECK(cairn_id_equal(&d.tree, &s.tree) && cairn_id_equal(&d.parent, &s.parent));
	CHECK(cairn_id_equal(&d.original, &s.original));
	CHECK(cairn_id_is_zero(&d.id));
	CHECK_INT(d.n_paths, 3);
	CHECK_STR(d.paths[0], s.paths[0]);
	CHECK_STR(d.paths[1], s.paths[1]);
	CHECK_STR(d.paths[2], "/bad\xef\xbf\xbd\xc3\xa9\xe2\x80\xa8");
	CHECK_STR(d.hostname, s.hostname);
	CHECK_STR(d.username, "u&me");
	CHECK(d.uid == 4294967295u && d.gid == 7);
	CHECK_STR(d.excludes[1], "<cache>");
	CHECK_STR(d.tags[0], "daily");
	cairn_snapshot_release(&d);
	cairn_snapshot_release(&s);
	cairn_buf_release(&out);
}

/* Only time, tree and paths when nothing else is set; empty strings and
 * empty lists count as unset, and paths is always a list. */
static void test_encode_omits_empty(void)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	cairn_buf out = CAIRN_BUF_INIT;

	memset(s.tree.bytes, 0xcd, CAIRN_ID_SIZE);
	s.hostname = strdup("");
	CHECK_OK(cairn_snapshot_encode(&out, &s));
	CHECK_STR(cairn_buf_cstr(&out),
		"{\"time\":\"1970-01-01T00:00:00Z\","
		"\"tree\":\"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd\",\"paths\":[]}");
	/* an inconsistent list is refused rather than dereferenced */
	s.n_tags = 2;
	CHECK_INT(cairn_snapshot_encode(&out, &s), CAIRN_EINVAL);
	CHECK_INT(out.len, 0);
	s.n_tags = 0;
	cairn_snapshot_release(&s);
	cairn_buf_release(&out);
}

static void test_decode_variants(void)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	const char *json =
		"{\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		" \"time\":\"2024-01-02T03:04:05.123456789123-09:00\","
		" \"program_version\":\"restic 0.17.0\",\"summary\":{\"files_new\":3,\"x\":[1,2]},"
		" \"parent\":null,\"original\":null,\"hostname\":null,\"tags\":null,\"paths\":null,"
		" \"uid\":null,\"future\":[{\"a\":true}]}\n";

	CHECK_OK(cairn_snapshot_decode(&s, json, strlen(json)));
	CHECK_INT(s.time_offset_sec, -9 * 3600);
	CHECK_INT(s.time.nsec, 123456789);
	CHECK(!s.has_parent && !s.has_original && s.hostname == NULL);
	CHECK(s.n_paths == 0 && s.paths == NULL && s.n_tags == 0 && s.uid == 0);
	cairn_snapshot_release(&s);
}

static void test_decode_rejects(void)
{
	static const struct { const char *json, *message; } bad[] = {
		{ "{\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\"}",
		  "snapshot json: missing 'time'" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\"}", "snapshot json: missing 'tree'" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":null}", "snapshot json: missing 'tree'" },
		{ "{\"time\":null,\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\"}",
		  "snapshot json: missing 'time'" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8\"}", "snapshot json: 'tree' is not an id" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":5}", "snapshot json: 'tree' is not an id" },
		{ "{\"time\":7,\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\"}",
		  "snapshot json: 'time' is not a string" },
		{ "{\"time\":\"yesterday\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\"}",
		  NULL },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"parent\":\"xyz\"}", "snapshot json: 'parent' is not an id" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"paths\":\"/x\"}", "snapshot json: 'paths' is not a list" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"tags\":[\"a\",1]}", "snapshot json: 'tags' has a non-string entry" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"uid\":-1}", "snapshot json: 'uid' is not a 32-bit unsigned integer" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"gid\":4294967296}", "snapshot json: 'gid' is not a 32-bit unsigned integer" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"uid\":1.0}", "snapshot json: 'uid' is not a 32-bit unsigned integer" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"hostname\":[]}", "snapshot json: 'hostname' is not a string" },
		{ "{\"time\":\"2024-01-02T03:04:05Z\",\"tree\":\"19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803\","
		  "\"hostname\":\"a\\u0000b\"}", NULL },
		{ "[]", "snapshot json: not an object" },
		{ "{\"time\":", NULL },
		{ "", NULL },
		{ "{} x", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
		int r = cairn_snapshot_decode(&s, bad[i].json, strlen(bad[i].json));
		if (r != CAIRN_ECORRUPT)
			fprintf(stderr, "case %zu: %d for %s\n", i, r, bad[i].json);
		CHECK_INT(r, CAIRN_ECORRUPT);
		if (bad[i].message)
			CHECK_STR(cairn_error_message(), bad[i].message);
		CHECK(s.paths == NULL && s.hostname == NULL && s.n_tags == 0);
		cairn_snapshot_release(&s);
	}
}

static void test_strlist(void)
{
	char **list = NULL;
	size_t n = 0;
	char word[16];

	for (int i = 0; i < 100; i++) {
		snprintf(word, sizeof(word), "w%d", i);
		CHECK_OK(cairn_strlist_add(&list, &n, word));
	}
	CHECK_INT(n, 100);
	CHECK_STR(list[0], "w0");
	CHECK_STR(list[99], "w99");
	CHECK(list[5] != word);
	CHECK_INT(cairn_strlist_add(&list, &n, NULL), CAIRN_EINVAL);
	CHECK_INT(n, 100);
	cairn_strlist_free(list, n);
	cairn_strlist_free(NULL, 0);

	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	CHECK(!cairn_snapshot_has_tag(&s, "x"));
	CHECK(!cairn_snapshot_has_path(&s, "/"));
	cairn_snapshot_release(&s);
	cairn_snapshot_release(NULL);
}

UNIT_MAIN(test_oracle_decode_and_reencode, test_encode_known_struct, test_encode_omits_empty,
	test_decode_variants, test_decode_rejects, test_strlist)
