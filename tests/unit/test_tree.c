/* test_tree.c: tree blobs, nodes, modes and Go name quoting.
 *
 * Oracle data: the trees below are the exact bytes restic 0.14.0 (Debian,
 * go1.19.8) stored for a folder made for this test (odd names, a symlink
 * whose target is not UTF-8, a fifo, block and char devices, a setuid file,
 * a sticky dir, xattrs including an empty one, a hard link), obtained with
 * `restic cat blob <tree id>` after `restic backup --compression off`; each
 * literal's SHA-256 is the tree id restic gave it.  restic wrote the times
 * in its local zone: Europe/Berlin for the first three trees, UTC for the
 * last.  cairn_node keeps no zone offset, and cairn_tree_encode writes
 * times in the local zone at each instant, exactly like restic.  So the
 * byte-for-byte re-encoding tests set TZ to those same zone rules (as a
 * POSIX TZ string, so no tzdata is needed) - re-encoding in another zone
 * gives the same instants with other offsets, and a different tree id, just
 * as restic itself would.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <cairn/crypto.h>
#include <cairn/id.h>
#include <cairn/tree.h>
#include "unit.h"
#include "../../repo-format/util/gojson.h"

#define TZ_BERLIN "CET-1CEST,M3.5.0,M10.5.0/3"

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static cairn_id id_of(const char *hex)
{
	cairn_id id;
	memset(&id, 0, sizeof(id));
	CHECK_OK(cairn_id_from_hex(&id, hex));
	return id;
}

static int id_is(const cairn_id *id, const char *hex)
{
	char h[CAIRN_ID_HEX_SIZE];
	cairn_id_to_hex(h, id);
	return strcmp(h, hex) == 0;
}

/* ---- restic 0.14.0 output ------------------------------------------------- */

static const char oracle_src_tree[] =
	"{\"nodes\":[{\"name\":\"a\\\\nb\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952788,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"blk\",\"type\":\"dev\",\"mode\":67109284,\"mtime\":\"2026-11-30T20:58:41.52806925+01:00\",\"atime\":\"2026-11-30T20:58:41.52806925+01:00\",\"ctime\":\"2026-11-30T20:58:41.52806925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952840,\"device_id\":65024,\"links\":1,\"device\":1992,\"content\":null}"
	",{\"name\":\"bom\\\\ufeff\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952834,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"chr\",\"type\":\"chardev\",\"mode\":69206436,\"mtime\":\"2026-11-30T20:58:41.53206925+01:00\",\"atime\":\"2026-11-30T20:58:41.53206925+01:00\",\"ctime\":\"2026-11-30T20:58:41.53206925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952841,\"device_id\":65024,\"links\":1,\"device\":259,\"content\":null}"
	",{\"name\":\"ctl\\\\x01\\\\a\\\\b\\\\f\\\\v\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952813,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"c\\\\x80d\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952789,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"del\\\\x7f\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952790,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"emoji\360\237\230\200\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952808,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"empty\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2020-01-01T00:00:00+01:00\",\"atime\":\"2020-01-01T00:00:00+01:00\",\"ctime\":\"2026-11-30T20:58:41.54006925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952787,\"device_id\":65024,\"links\":1,\"extended_attributes\":[{\"name\":\"user.bin\",\"value\":\"AP+A\"}],\"content\":[]}"
	",{\"name\":\"fifo\",\"type\":\"fifo\",\"mode\":33554852,\"mtime\":\"2026-11-30T20:58:41.516069251+01:00\",\"atime\":\"2026-11-30T20:58:41.516069251+01:00\",\"ctime\":\"2026-11-30T20:58:41.516069251+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952838,\"device_id\":65024,\"content\":null}"
	",{\"name\":\"hard\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.53206925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952786,\"device_id\":65024,\"size\":12,\"links\":2,\"extended_attributes\":[{\"name\":\"user.x\",\"value\":\"MQ==\"}"
	",{\"name\":\"user.empty\",\"value\":\"\"}],\"content\":[\"a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\"]}"
	",{\"name\":\"ideo\\\\u3000\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952835,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"link1\",\"type\":\"symlink\",\"mode\":134218239,\"mtime\":\"2026-11-30T20:58:41.508069251+01:00\",\"atime\":\"2026-11-30T20:58:41.508069251+01:00\",\"ctime\":\"2026-11-30T20:58:41.508069251+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952836,\"device_id\":65024,\"links\":1,\"linktarget\":\"tgt\\ufffd\\u003c\\u0026\\u003e\\u0001\\n\",\"content\":null}"
	",{\"name\":\"link2\",\"type\":\"symlink\",\"mode\":134218239,\"mtime\":\"2021-03-04T05:06:07.123456789+01:00\",\"atime\":\"2021-03-04T05:06:07.123456789+01:00\",\"ctime\":\"2026-11-30T20:58:41.53606925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952837,\"device_id\":65024,\"links\":1,\"linktarget\":\"plain.txt\",\"content\":null}"
	",{\"name\":\"ls\\\\u2028\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952807,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"nbsp\\\\u00a0\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952806,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"nel\\\\u0085\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952805,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"overlong\\\\xc0\\\\xaf\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952833,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"plain.txt\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.53206925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952786,\"device_id\":65024,\"size\":12,\"links\":2,\"extended_attributes\":[{\"name\":\"user.x\",\"value\":\"MQ==\"}"
	",{\"name\":\"user.empty\",\"value\":\"\"}],\"content\":[\"a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\"]}"
	",{\"name\":\"pua\\\\ue000\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952812,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"repl\357\277\275\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952809,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"soft\\\\u00adhy\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952803,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"sticky\",\"type\":\"dir\",\"mode\":2148532735,\"mtime\":\"2026-11-30T20:58:41.504069251+01:00\",\"atime\":\"2026-11-30T20:58:41.504069251+01:00\",\"ctime\":\"2026-11-30T20:58:41.520069251+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952784,\"device_id\":65024,\"content\":null,\"subtree\":\"ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8\"}"
	",{\"name\":\"sub\",\"type\":\"dir\",\"mode\":2147484141,\"mtime\":\"2019-12-31T23:59:59.000000001+01:00\",\"atime\":\"2019-12-31T23:59:59.000000001+01:00\",\"ctime\":\"2026-11-30T20:58:43.456069168+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952783,\"device_id\":65024,\"content\":null,\"subtree\":\"1b970340a728b2f060862fe7239f5bf8e40b927ff29233e4fe4cbb81ab24245c\"}"
	",{\"name\":\"suid\",\"type\":\"file\",\"mode\":8389101,\"mtime\":\"2022-07-08T09:10:11.5+02:00\",\"atime\":\"2022-07-08T09:10:11.5+02:00\",\"ctime\":\"2026-11-30T20:58:41.54006925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952839,\"device_id\":65024,\"size\":4,\"links\":1,\"content\":[\"15460c0b5edfae7f2ffbe4b0374123ca87016732fcaae48d6e0850f7cabe7943\"]}"
	",{\"name\":\"surr\\\\xed\\\\xa0\\\\x80\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952811,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"t\\\\tab\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952801,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"tag\\\\U000e0001\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952816,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"trunc\\\\xe2\\\\x82\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952810,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"un\\\\u0378\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952815,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"we\\\\\\\"ird\\\\\\\\name\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952802,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"zw\\\\u200b\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952814,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}"
	",{\"name\":\"\303\251\\u003c\\u0026\\u003e\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:41.507188933+01:00\",\"atime\":\"2026-11-30T20:58:41.507188933+01:00\",\"ctime\":\"2026-11-30T20:58:41.507188933+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952804,\"device_id\":65024,\"size\":1,\"links\":1,\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\"]}]}\n";

static const char oracle_root_tree[] =
	"{\"nodes\":[{\"name\":\"src\",\"type\":\"dir\",\"mode\":2147484141,\"mtime\":\"2026-11-30T20:58:41.53206925+01:00\",\"atime\":\"2026-11-30T20:58:41.53206925+01:00\",\"ctime\":\"2026-11-30T20:58:41.53206925+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10952782,\"device_id\":65024,\"content\":null,\"subtree\":\"98926bf27ee5791ba02665d1553706e438f2fa7ece2cffa7d00d7cfc457b775f\"}]}\n";

static const char oracle_sub_tree[] =
	"{\"nodes\":[{\"name\":\"inner\",\"type\":\"file\",\"mode\":420,\"mtime\":\"2026-11-30T20:58:43.456069168+01:00\",\"atime\":\"2026-11-30T20:58:43.456069168+01:00\",\"ctime\":\"2026-11-30T20:58:43.456069168+01:00\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":10953235,\"device_id\":65024,\"size\":5,\"links\":1,\"content\":[\"33bf6fbd7cd8379785a21e233d8e09f824e7bab459168a96312c1c882c1d7e1f\"]}]}\n";

static const char oracle_utc_tree[] =
	"{\"nodes\":[{\"name\":\"tmp\",\"type\":\"dir\",\"mode\":2148532735,\"mtime\":\"2026-11-30T19:59:06.860068168Z\",\"atime\":\"2026-11-30T19:59:06.860068168Z\",\"ctime\":\"2026-11-30T19:59:06.860068168Z\",\"uid\":0,\"gid\":0,\"user\":\"root\",\"group\":\"root\",\"inode\":247066,\"device_id\":65024,\"content\":null,\"subtree\":\"975220e3f506a488d062be752c9b823cb24cfce87c4acb5d09b8ae299cdd40dd\"}]}\n";

/* ---- node types and modes -------------------------------------------------- */

static void test_node_types(void)
{
	static const char *const names[] = { "file", "dir", "symlink", "dev", "chardev", "fifo", "socket" };
	cairn_node_type t;

	for (int i = 0; i < 7; i++) {
		CHECK_STR(cairn_node_type_name((cairn_node_type)i), names[i]);
		CHECK_OK(cairn_node_type_parse(&t, names[i]));
		CHECK_INT(t, i);
	}
	CHECK_STR(cairn_node_type_name((cairn_node_type)7), "unknown");
	CHECK_INT(cairn_node_type_parse(&t, "whiteout"), CAIRN_EINVAL);
	CHECK_INT(cairn_node_type_parse(&t, "File"), CAIRN_EINVAL);
	CHECK_INT(cairn_node_type_parse(&t, ""), CAIRN_EINVAL);
}

static void test_modes(void)
{
	/* Values restic 0.14 wrote (restic-format.md §7, and the oracle tree). */
	static const struct { mode_t posix; uint32_t go; } cases[] = {
		{ S_IFDIR | 0755, 2147484141u },
		{ S_IFDIR | 01777, 2148532735u },
		{ S_IFREG | 0644, 420 },
		{ S_IFREG | 04755, 8389101 },
		{ S_IFLNK | 0777, 134218239 },
		{ S_IFIFO | 0644, 33554852 },
		{ S_IFBLK | 0644, 67109284 },
		{ S_IFCHR | 0644, 69206436 },
		{ S_IFSOCK | 0755, CAIRN_GOMODE_SOCKET | 0755 },
		{ S_IFREG | 02750, CAIRN_GOMODE_SETGID | 0750 },
		{ S_IFDIR | 07777, CAIRN_GOMODE_DIR | CAIRN_GOMODE_SETUID | CAIRN_GOMODE_SETGID |
			CAIRN_GOMODE_STICKY | 0777 },
		{ S_IFREG, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(cairn_mode_from_posix(cases[i].posix), cases[i].go);
		CHECK_INT(cairn_mode_to_posix(cases[i].go), cases[i].posix);
	}
	/* A corrupt mode with two type bits resolves to the first listed. */
	CHECK_INT(cairn_mode_to_posix(CAIRN_GOMODE_DIR | CAIRN_GOMODE_SYMLINK | 0700), S_IFDIR | 0700);
	/* Bits Go has but restic masks away are ignored. */
	CHECK_INT(cairn_mode_to_posix((1u << 30) | 0644), S_IFREG | 0644);
}

/* ---- Go quoting ------------------------------------------------------------ */

/* (raw name, strconv.Quote without the quotes).  All but the last block
 * were checked against restic 0.14.0 (go1.19, Unicode 13). */
static const struct { const char *raw, *quoted; } quote_cases[] = {
	{ "a\nb", "a\\nb" },
	{ "c\x80" "d", "c\\x80d" },
	{ "del\x7f", "del\\x7f" },
	{ "t\tab", "t\\tab" },
	{ "we\"ird\\name", "we\\\"ird\\\\name" },
	{ "soft\xc2\xad" "hy", "soft\\u00adhy" },
	{ "\xc3\xa9<&>", "\xc3\xa9<&>" },
	{ "nel\xc2\x85", "nel\\u0085" },
	{ "nbsp\xc2\xa0", "nbsp\\u00a0" },
	{ "ls\xe2\x80\xa8", "ls\\u2028" },
	{ "emoji\xf0\x9f\x98\x80", "emoji\xf0\x9f\x98\x80" },
	{ "repl\xef\xbf\xbd", "repl\xef\xbf\xbd" },
	{ "trunc\xe2\x82", "trunc\\xe2\\x82" },
	{ "surr\xed\xa0\x80", "surr\\xed\\xa0\\x80" },
	{ "overlong\xc0\xaf", "overlong\\xc0\\xaf" },
	{ "pua\xee\x80\x80", "pua\\ue000" },
	{ "ctl\x01\a\b\f\v", "ctl\\x01\\a\\b\\f\\v" },
	{ "zw\xe2\x80\x8b", "zw\\u200b" },
	{ "un\xcd\xb8", "un\\u0378" },
	{ "tag\xf3\xa0\x80\x81", "tag\\U000e0001" },
	{ "bom\xef\xbb\xbf", "bom\\ufeff" },
	{ "ideo\xe3\x80\x80", "ideo\\u3000" },
	{ "ae\xd8\x9d", "ae\\u061d" },                  /* U+061D is new in Unicode 14 */
	{ "em\xf0\x9f\x9b\x9d", "em\\U0001f6dd" },      /* so is U+1F6DD */
	{ "u13\xe0\xa2\xbe", "u13\xe0\xa2\xbe" },       /* U+08BE is Unicode 13: raw */
	{ "kel\xe2\x84\xaa", "kel\xe2\x84\xaa" },
	{ "cf\xe2\x81\xa6", "cf\\u2066" },
	{ "sp\xe2\x80\x80", "sp\\u2000" },
	/* from the Go rules, not run through restic */
	{ "", "" },
	{ "plain name.txt", "plain name.txt" },
	{ "\r\x1b", "\\r\\x1b" },
	{ "\xff\xfe", "\\xff\\xfe" },
	{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" }, /* above U+10FFFF */
	{ "\xf4\x8f\xbf\xbf", "\\U0010ffff" },
	{ "'single'", "'single'" },
	{ "\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad\xe6\x96\x87" },
};

static void test_go_quote_table(void)
{
	cairn_buf q = CAIRN_BUF_INIT, u = CAIRN_BUF_INIT;

	for (size_t i = 0; i < sizeof(quote_cases) / sizeof(quote_cases[0]); i++) {
		const char *raw = quote_cases[i].raw;
		cairn_buf_clear(&q);
		CHECK_OK(cairn_buf_puts(&q, "prefix:"));
		CHECK_OK(cairn_go_quote(&q, raw, strlen(raw)));
		CHECK_STR(cairn_buf_cstr(&q) + 7, quote_cases[i].quoted); /* appended */
		CHECK_OK(cairn_go_unquote(&u, quote_cases[i].quoted, strlen(quote_cases[i].quoted)));
		/* Unquoting gives the raw bytes back, invalid UTF-8 included. */
		CHECK_INT(u.len, strlen(raw));
		CHECK_STR((const char *)u.data, raw);
	}
	cairn_buf_release(&q);
	cairn_buf_release(&u);
}

static void test_go_unquote(void)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "\\101\\x41\\u0041\\U00000041", "AAAA" },
		{ "\\u00e9\\U0001F600", "\xc3\xa9\xf0\x9f\x98\x80" },
		{ "\\377\\xFF", "\xff\xff" },
		{ "raw\ttab and 'quote'", "raw\ttab and 'quote'" },
		{ "\\a\\b\\f\\n\\r\\t\\v\\\\\\\"", "\a\b\f\n\r\t\v\\\"" },
		{ "bad\x80" "byte", "bad\xef\xbf\xbd" "byte" }, /* raw non-UTF-8 becomes U+FFFD, as in Go */
		{ "", "" },
	};
	static const char *const bad[] = {
		"\\'", "a\"b", "a\nb", "\\q", "\\x4", "\\xg0", "\\400", "\\08", "\\u12", "\\ud800",
		"\\U00110000", "\\x00", "\\000", "\\u0000", "trailing\\", "nul\0byte",
	};
	static const size_t bad_len[] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8 };
	cairn_buf u = CAIRN_BUF_INIT;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		CHECK_OK(cairn_go_unquote(&u, ok[i].in, strlen(ok[i].in)));
		CHECK_STR((const char *)u.data, ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad_len[i] ? bad_len[i] : strlen(bad[i]);
		int r = cairn_go_unquote(&u, bad[i], len);
		if (r != CAIRN_EINVAL)
			fprintf(stderr, "unquote accepted bad input #%zu\n", i);
		CHECK_INT(r, CAIRN_EINVAL);
	}
	CHECK(strstr(cairn_error_message(), "NUL") != NULL);
	cairn_buf_release(&u);
}

/* Every code point and every single byte survives quote + unquote, and the
 * quoted form is always printable (no control bytes, valid UTF-8). */
static void test_go_quote_round_trip_all_runes(void)
{
	cairn_buf q = CAIRN_BUF_INIT, u = CAIRN_BUF_INIT;
	unsigned char in[8];
	size_t n;
	int failures = 0;

	for (uint32_t r = 1; r <= 0x10ffff + 0xff && failures < 5; r++) {
		if (r <= 0x10ffff) {
			if (r >= 0xd800 && r <= 0xdfff)
				continue;
			if (r < 0x80) { in[0] = (unsigned char)r; n = 1; }
			else if (r < 0x800) { in[0] = 0xc0 | r >> 6; in[1] = 0x80 | (r & 63); n = 2; }
			else if (r < 0x10000) { in[0] = 0xe0 | r >> 12; in[1] = 0x80 | (r >> 6 & 63); in[2] = 0x80 | (r & 63); n = 3; }
			else { in[0] = 0xf0 | r >> 18; in[1] = 0x80 | (r >> 12 & 63); in[2] = 0x80 | (r >> 6 & 63); in[3] = 0x80 | (r & 63); n = 4; }
		} else {
			in[0] = (unsigned char)(r - 0x10ffff); /* lone bytes 0x01..0xff */
			in[1] = 'z';
			n = 2;
		}
		cairn_buf_clear(&q);
		if (cairn_go_quote(&q, (const char *)in, n) < 0 ||
		    cairn_go_unquote(&u, (const char *)q.data, q.len) < 0 || u.len != n ||
		    memcmp(u.data, in, n) != 0) {
			fprintf(stderr, "round trip failed for U+%04X\n", (unsigned)r);
			failures++;
		}
		for (size_t k = 0; k < q.len; k++) {
			if (q.data[k] < 0x20 || q.data[k] == 0x7f)
				failures++; /* a control byte left raw */
			else if (q.data[k] == '"' && (k == 0 || q.data[k - 1] != '\\'))
				failures++; /* an unescaped quote */
		}
	}
	CHECK_INT(failures, 0);
	cairn_buf_release(&q);
	cairn_buf_release(&u);
}

/* ---- nodes ------------------------------------------------------------------- */

static void test_name_check(void)
{
	static const char *const good[] = { "a", "...", ".a", "a..b", "a\\b", " ", "\n", "\xff" };
	static const char *const bad[] = { "", ".", "..", "a/b", "/", "a/", "/a" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK_OK(cairn_node_name_check(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_INT(cairn_node_name_check(bad[i]), CAIRN_ECORRUPT);
	CHECK_INT(cairn_node_name_check(NULL), CAIRN_ECORRUPT);
	CHECK_INT(cairn_node_name_check(".."), CAIRN_ECORRUPT);
	CHECK_STR(cairn_error_message(), "invalid node name '..': not allowed in a tree");
	CHECK_INT(cairn_node_name_check("evil\n/\x80name"), CAIRN_ECORRUPT);
	CHECK_STR(cairn_error_message(), "invalid node name 'evil\\n/\\x80name': contains '/'");
	CHECK_INT(cairn_node_name_check(""), CAIRN_ECORRUPT);
	CHECK_STR(cairn_error_message(), "invalid node name '': empty");
}

/* A node with every field set, for copy and encode tests. */
static void fill_node(cairn_node *n)
{
	static const unsigned char bin[] = { 0x00, 0xff, 0x80 };
	cairn_id a = id_of("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
	cairn_id b = id_of("a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");

	memset(n, 0, sizeof(*n));
	n->name = strdup("f\nile");
	n->type = CAIRN_NODE_FILE;
	n->mode = 0640;
	n->mtime = (cairn_time){ 1657264211, 500000000 };
	n->atime = (cairn_time){ 1577833200, 0 };
	n->ctime = (cairn_time){ 1614830767, 123456789 };
	n->uid = 1000;
	n->gid = 100;
	n->user = strdup("us<er>");
	n->group = strdup("gr&p");
	n->inode = UINT64_MAX;
	n->device_id = 65024;
	n->size = 24;
	n->links = 1;
	n->error = strdup("warn\x01");
	CHECK_OK(cairn_node_add_content(n, &a));
	CHECK_OK(cairn_node_add_content(n, &b));
	CHECK_OK(cairn_node_add_xattr(n, "user.bin", bin, sizeof(bin)));
	CHECK_OK(cairn_node_add_xattr(n, "user.empty", NULL, 0));
}

static void test_node_copy_and_lists(void)
{
	cairn_node n, c;
	cairn_id id;

	fill_node(&n);
	/* Growing past a few powers of two keeps every element. */
	for (int i = 0; i < 1000; i++) {
		memset(&id, 0, sizeof(id));
		id.bytes[0] = (unsigned char)i;
		id.bytes[1] = (unsigned char)(i >> 8);
		CHECK_OK(cairn_node_add_content(&n, &id));
	}
	CHECK_INT(n.n_content, 1002);
	CHECK(n.content[1001].bytes[0] == (999 & 255) && n.content[1001].bytes[1] == 3);
	CHECK_OK(cairn_node_copy(&c, &n));
	CHECK(c.name != n.name && strcmp(c.name, n.name) == 0);
	CHECK_STR(c.user, "us<er>");
	CHECK_STR(c.group, "gr&p");
	CHECK(c.linktarget == NULL);
	CHECK_STR(c.error, "warn\x01");
	CHECK_INT(c.n_content, 1002);
	CHECK(memcmp(c.content, n.content, 1002 * sizeof(cairn_id)) == 0);
	CHECK_INT(c.n_xattrs, 2);
	CHECK_STR(c.xattrs[0].name, "user.bin");
	CHECK_INT(c.xattrs[0].value_len, 3);
	CHECK(memcmp(c.xattrs[0].value, "\x00\xff\x80", 3) == 0);
	CHECK_INT(c.xattrs[1].value_len, 0);
	CHECK_INT(c.inode, UINT64_MAX);
	CHECK_INT(c.mtime.nsec, 500000000);
	/* A content array allocated to its exact size elsewhere still grows. */
	cairn_node_release(&c);
	CHECK(c.name == NULL && c.n_content == 0);
	memset(&c, 0, sizeof(c));
	c.content = malloc(sizeof(cairn_id) * 5);
	memset(c.content, 7, sizeof(cairn_id) * 5);
	c.n_content = 5;
	CHECK_OK(cairn_node_add_content(&c, &id));
	CHECK(c.n_content == 6 && c.content[4].bytes[0] == 7 && cairn_id_equal(&c.content[5], &id));
	CHECK_INT(cairn_node_add_xattr(&c, NULL, "x", 1), CAIRN_EINVAL);
	cairn_node_release(&c);
	cairn_node_release(&n);
	cairn_node_release(NULL);
}

/* ---- trees ------------------------------------------------------------------- */

static void add_named(cairn_tree *t, const char *name, cairn_node_type type)
{
	cairn_node n = CAIRN_NODE_INIT;
	n.name = strdup(name);
	n.type = type;
	if (type == CAIRN_NODE_DIR) {
		n.has_subtree = 1;
		memset(n.subtree.bytes, 0xab, sizeof(n.subtree.bytes));
	}
	CHECK_OK(cairn_tree_add(t, &n));
	CHECK(n.name == NULL); /* moved */
}

static void test_tree_sort_find_duplicates(void)
{
	/* Byte order: uppercase < lowercase, and bytes >= 0x80 after ASCII. */
	static const char *const order[] = { "A", "B", "Z", "a", "a b", "ab", "a\xff", "b", "\xc3\xa9", "\xff" };
	static const size_t shuffle[] = { 7, 2, 9, 0, 5, 3, 8, 1, 6, 4 };
	cairn_tree t = CAIRN_TREE_INIT;

	for (size_t i = 0; i < 10; i++)
		add_named(&t, order[shuffle[i]], CAIRN_NODE_FILE);
	CHECK_OK(cairn_tree_sort(&t));
	for (size_t i = 0; i < 10; i++) {
		CHECK_STR(t.nodes[i].name, order[i]);
		CHECK(cairn_tree_find(&t, order[i]) == &t.nodes[i]);
	}
	CHECK(cairn_tree_find(&t, "") == NULL);
	CHECK(cairn_tree_find(&t, "aa") == NULL);
	CHECK(cairn_tree_find(&t, "\xff\xff") == NULL);
	add_named(&t, "a b", CAIRN_NODE_DIR);
	CHECK_INT(cairn_tree_sort(&t), CAIRN_EINVAL);
	CHECK_STR(cairn_error_message(), "duplicate node name 'a b' in tree");
	cairn_tree_release(&t);
	CHECK(t.nodes == NULL && t.n == 0 && t.cap == 0);

	/* Many nodes: sort and find them all. */
	for (int i = 0; i < 5000; i++) {
		char name[32];
		snprintf(name, sizeof(name), "n%07d", (i * 7919) % 5000);
		add_named(&t, name, CAIRN_NODE_FILE);
	}
	CHECK_OK(cairn_tree_sort(&t));
	for (size_t i = 1; i < t.n; i++)
		CHECK(strcmp(t.nodes[i - 1].name, t.nodes[i].name) < 0);
	CHECK(cairn_tree_find(&t, "n0004999") == &t.nodes[4999]);
	cairn_tree_release(&t);
	CHECK_INT(cairn_tree_add(&t, NULL), CAIRN_EINVAL);
}

/* ---- encoding ------------------------------------------------------------------ */

static void test_encode_empty_and_exact(void)
{
	cairn_tree t = CAIRN_TREE_INIT;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_node n;

	set_tz("UTC0");
	CHECK_OK(cairn_buf_puts(&out, "garbage"));
	CHECK_OK(cairn_tree_encode(&out, &t));
	CHECK_INT(out.len, 13);
	CHECK_STR(cairn_buf_cstr(&out), "{\"nodes\":[]}\n");

	fill_node(&n);
	CHECK_OK(cairn_tree_add(&t, &n));
	memset(&n, 0, sizeof(n));
	n.name = strdup("d\xc2\xad\xff<");
	n.type = CAIRN_NODE_DIR;
	n.mode = cairn_mode_from_posix(S_IFDIR | 0755);
	n.has_subtree = 1;
	n.subtree = id_of("ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8");
	CHECK_OK(cairn_tree_add(&t, &n));
	memset(&n, 0, sizeof(n));
	n.name = strdup("link");
	n.type = CAIRN_NODE_SYMLINK;
	n.mode = 134218239;
	n.linktarget = strdup("t\x80<\n\"\xe2\x80\xa9\x7f");
	n.links = 1;
	CHECK_OK(cairn_tree_add(&t, &n));
	memset(&n, 0, sizeof(n));
	n.name = strdup("empty");
	n.type = CAIRN_NODE_FILE;
	CHECK_OK(cairn_tree_add(&t, &n));
	memset(&n, 0, sizeof(n));
	n.name = strdup("dev");
	n.type = CAIRN_NODE_CHARDEV;
	n.device = 259;
	CHECK_OK(cairn_tree_add(&t, &n));

	CHECK_OK(cairn_tree_encode(&out, &t));
	CHECK_STR(cairn_buf_cstr(&out),
		"{\"nodes\":["
		"{\"name\":\"dev\",\"type\":\"chardev\","
		"\"mtime\":\"1970-01-01T00:00:00Z\",\"atime\":\"1970-01-01T00:00:00Z\",\"ctime\":\"1970-01-01T00:00:00Z\","
		"\"uid\":0,\"gid\":0,\"device\":259,\"content\":null},"
		"{\"name\":\"d\\\\u00ad\\\\xff\\u003c\",\"type\":\"dir\",\"mode\":2147484141,"
		"\"mtime\":\"1970-01-01T00:00:00Z\",\"atime\":\"1970-01-01T00:00:00Z\",\"ctime\":\"1970-01-01T00:00:00Z\","
		"\"uid\":0,\"gid\":0,\"content\":null,"
		"\"subtree\":\"ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8\"},"
		"{\"name\":\"empty\",\"type\":\"file\","
		"\"mtime\":\"1970-01-01T00:00:00Z\",\"atime\":\"1970-01-01T00:00:00Z\",\"ctime\":\"1970-01-01T00:00:00Z\","
		"\"uid\":0,\"gid\":0,\"content\":[]},"
		"{\"name\":\"f\\\\nile\",\"type\":\"file\",\"mode\":416,"
		"\"mtime\":\"2022-07-08T07:10:11.5Z\",\"atime\":\"2019-12-31T23:00:00Z\","
		"\"ctime\":\"2021-03-04T04:06:07.123456789Z\",\"uid\":1000,\"gid\":100,"
		"\"user\":\"us\\u003cer\\u003e\",\"group\":\"gr\\u0026p\",\"inode\":18446744073709551615,"
		"\"device_id\":65024,\"size\":24,\"links\":1,"
		"\"extended_attributes\":[{\"name\":\"user.bin\",\"value\":\"AP+A\"},{\"name\":\"user.empty\",\"value\":\"\"}],"
		"\"content\":[\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\","
		"\"a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\"],"
		"\"error\":\"warn\\u0001\"},"
		"{\"name\":\"link\",\"type\":\"symlink\",\"mode\":134218239,"
		"\"mtime\":\"1970-01-01T00:00:00Z\",\"atime\":\"1970-01-01T00:00:00Z\",\"ctime\":\"1970-01-01T00:00:00Z\","
		"\"uid\":0,\"gid\":0,\"links\":1,"
		"\"linktarget\":\"t\\ufffd\\u003c\\n\\\"\\u2029\x7f\",\"content\":null}"
		"]}\n");

	/* The encoding decodes to the same nodes (linktarget excepted: 0.14
	 * stores non-UTF-8 targets lossily, as restic does). */
	cairn_tree back = CAIRN_TREE_INIT;
	CHECK_OK(cairn_tree_decode(&back, (const char *)out.data, out.len));
	CHECK_INT(back.n, 5);
	const cairn_node *f = cairn_tree_find(&back, "f\nile");
	CHECK(f != NULL);
	if (f) {
		CHECK_INT(f->mode, 0640);
		CHECK_INT(f->mtime.sec, 1657264211);
		CHECK_INT(f->mtime.nsec, 500000000);
		CHECK_INT(f->ctime.nsec, 123456789);
		CHECK_INT(f->inode, UINT64_MAX);
		CHECK_STR(f->user, "us<er>");
		CHECK_STR(f->group, "gr&p");
		CHECK_STR(f->error, "warn\x01");
		CHECK_INT(f->n_content, 2);
		CHECK_INT(f->n_xattrs, 2);
		CHECK_INT(f->xattrs[0].value_len, 3);
		CHECK_INT(f->xattrs[1].value_len, 0);
	}
	const cairn_node *d = cairn_tree_find(&back, "d\xc2\xad\xff<");
	CHECK(d != NULL && d->has_subtree && id_is(&d->subtree, "ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8"));
	const cairn_node *l = cairn_tree_find(&back, "link");
	CHECK(l != NULL && strcmp(l->linktarget, "t\xef\xbf\xbd<\n\"\xe2\x80\xa9\x7f") == 0);
	const cairn_node *e = cairn_tree_find(&back, "empty");
	CHECK(e != NULL && e->n_content == 0 && e->content == NULL);
	cairn_tree_release(&back);

	/* Encoding refuses what a reader would reject (nodes are sorted now:
	 * dev, d<U+00AD>..., empty, f<LF>ile, link). */
	CHECK_STR(t.nodes[1].name, "d\xc2\xad\xff<");
	t.nodes[1].has_subtree = 0;
	CHECK_INT(cairn_tree_encode(&out, &t), CAIRN_EINVAL);
	CHECK_STR(cairn_error_message(), "dir 'd\\u00ad\\xff<' has no subtree");
	CHECK_INT(out.len, 0);
	t.nodes[1].has_subtree = 1;
	free(t.nodes[2].name);
	t.nodes[2].name = strdup("..");
	CHECK_INT(cairn_tree_encode(&out, &t), CAIRN_EINVAL);
	free(t.nodes[2].name);
	t.nodes[2].name = strdup("dev");
	t.nodes[2].type = (cairn_node_type)42;
	CHECK_INT(cairn_tree_encode(&out, &t), CAIRN_EINVAL);
	t.nodes[2].type = CAIRN_NODE_FILE;
	free(t.nodes[2].name);
	t.nodes[2].name = strdup("link");
	CHECK_INT(cairn_tree_encode(&out, &t), CAIRN_EINVAL); /* duplicate */
	cairn_buf_release(&out);
	cairn_tree_release(&t);
}

/* Nodes in an unsorted tree are sorted by encode; the result is the same
 * bytes whatever order they were added in. */
static void test_encode_sorts(void)
{
	cairn_tree a = CAIRN_TREE_INIT, b = CAIRN_TREE_INIT;
	cairn_buf ea = CAIRN_BUF_INIT, eb = CAIRN_BUF_INIT;

	add_named(&a, "zeta", CAIRN_NODE_FILE);
	add_named(&a, "Alpha", CAIRN_NODE_DIR);
	add_named(&a, "m\xc3\xa9", CAIRN_NODE_FIFO);
	add_named(&b, "m\xc3\xa9", CAIRN_NODE_FIFO);
	add_named(&b, "zeta", CAIRN_NODE_FILE);
	add_named(&b, "Alpha", CAIRN_NODE_DIR);
	CHECK_OK(cairn_tree_encode(&ea, &a));
	CHECK_OK(cairn_tree_encode(&eb, &b));
	CHECK(ea.len == eb.len && memcmp(ea.data, eb.data, ea.len) == 0);
	CHECK_STR(a.nodes[0].name, "Alpha");
	CHECK_STR(a.nodes[2].name, "zeta");
	cairn_buf_release(&ea);
	cairn_buf_release(&eb);
	cairn_tree_release(&a);
	cairn_tree_release(&b);
}

/* ---- decoding restic's trees ------------------------------------------------------- */

static const cairn_node *must_find(const cairn_tree *t, const char *name)
{
	const cairn_node *n = cairn_tree_find(t, name);
	if (!n)
		fprintf(stderr, "node '%s' not found\n", name);
	CHECK(n != NULL);
	return n;
}

static void test_oracle_decode_fields(void)
{
	cairn_tree t = CAIRN_TREE_INIT;
	const cairn_node *n;
	cairn_id id;

	cairn_sha256(&id, oracle_src_tree, sizeof(oracle_src_tree) - 1);
	CHECK(id_is(&id, "98926bf27ee5791ba02665d1553706e438f2fa7ece2cffa7d00d7cfc457b775f"));
	CHECK_OK(cairn_tree_decode(&t, oracle_src_tree, sizeof(oracle_src_tree) - 1));
	CHECK_INT(t.n, 33);
	/* The first 22 names of quote_cases are the oracle folder's 1-byte files. */
	for (size_t i = 0; i < 22; i++) {
		if ((n = must_find(&t, quote_cases[i].raw))) {
			CHECK_INT(n->type, CAIRN_NODE_FILE);
			CHECK_INT(n->size, 1);
			CHECK_INT(n->n_content, 1);
			CHECK(id_is(&n->content[0], "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"));
		}
	}
	if ((n = must_find(&t, "a\nb"))) {
		CHECK_INT(n->mode, 420);
		CHECK_INT(n->mtime.sec, 1796068721);
		CHECK_INT(n->mtime.nsec, 507188933);
		CHECK_INT(n->uid, 0);
		CHECK_STR(n->user, "root");
		CHECK_STR(n->group, "root");
		CHECK_INT(n->inode, 10952788);
		CHECK_INT(n->device_id, 65024);
		CHECK_INT(n->links, 1);
		CHECK(!n->has_subtree && n->linktarget == NULL && n->n_xattrs == 0 && n->error == NULL);
	}
	if ((n = must_find(&t, "blk"))) {
		CHECK_INT(n->type, CAIRN_NODE_DEV);
		CHECK_INT(n->mode, 67109284);
		CHECK_INT(cairn_mode_to_posix(n->mode), S_IFBLK | 0644);
		CHECK_INT(n->device, 1992);
		CHECK(n->content == NULL && n->n_content == 0);
	}
	if ((n = must_find(&t, "chr"))) {
		CHECK_INT(n->type, CAIRN_NODE_CHARDEV);
		CHECK_INT(n->mode, 69206436);
		CHECK_INT(n->device, 259);
	}
	if ((n = must_find(&t, "empty"))) {
		CHECK_INT(n->size, 0);
		CHECK_INT(n->n_content, 0);
		CHECK_INT(n->mtime.sec, 1577833200);
		CHECK_INT(n->mtime.nsec, 0);
		CHECK_INT(n->ctime.nsec, 540069250);
		CHECK_INT(n->n_xattrs, 1);
		CHECK_STR(n->xattrs[0].name, "user.bin");
		CHECK_INT(n->xattrs[0].value_len, 3);
		CHECK(n->xattrs[0].value && memcmp(n->xattrs[0].value, "\x00\xff\x80", 3) == 0);
	}
	if ((n = must_find(&t, "fifo"))) {
		CHECK_INT(n->type, CAIRN_NODE_FIFO);
		CHECK_INT(cairn_mode_to_posix(n->mode), S_IFIFO | 0644);
		CHECK_INT(n->links, 0);
	}
	if ((n = must_find(&t, "plain.txt"))) {
		CHECK_INT(n->size, 12);
		CHECK_INT(n->links, 2);
		CHECK_INT(n->inode, 10952786);
		CHECK_INT(n->n_xattrs, 2);
		CHECK_STR(n->xattrs[0].name, "user.x");
		CHECK(n->xattrs[0].value_len == 1 && n->xattrs[0].value[0] == '1');
		CHECK_STR(n->xattrs[1].name, "user.empty");
		CHECK_INT(n->xattrs[1].value_len, 0);
		CHECK(id_is(&n->content[0], "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"));
	}
	if ((n = must_find(&t, "hard")))
		CHECK(n->inode == 10952786 && n->links == 2);
	if ((n = must_find(&t, "link1"))) {
		CHECK_INT(n->type, CAIRN_NODE_SYMLINK);
		CHECK_INT(n->mode, 134218239);
		/* the on-disk target was "tgt\x80<&>\x01\n"; 0.14 stored U+FFFD */
		CHECK_STR(n->linktarget, "tgt\xef\xbf\xbd<&>\x01\n");
	}
	if ((n = must_find(&t, "link2"))) {
		CHECK_STR(n->linktarget, "plain.txt");
		CHECK_INT(n->mtime.sec, 1614830767);
		CHECK_INT(n->mtime.nsec, 123456789);
	}
	if ((n = must_find(&t, "sticky"))) {
		CHECK_INT(n->type, CAIRN_NODE_DIR);
		CHECK_INT(cairn_mode_to_posix(n->mode), S_IFDIR | 01777);
		CHECK(n->has_subtree && id_is(&n->subtree, "ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8"));
	}
	if ((n = must_find(&t, "sub"))) {
		CHECK_INT(n->mtime.sec, 1577833199);
		CHECK_INT(n->mtime.nsec, 1);
		CHECK(n->has_subtree && id_is(&n->subtree, "1b970340a728b2f060862fe7239f5bf8e40b927ff29233e4fe4cbb81ab24245c"));
	}
	if ((n = must_find(&t, "suid"))) {
		CHECK_INT(n->mode, 8389101);
		CHECK_INT(cairn_mode_to_posix(n->mode), S_IFREG | 04755);
		CHECK_INT(n->mtime.sec, 1657264211);
		CHECK_INT(n->mtime.nsec, 500000000);
		CHECK_INT(n->size, 4);
	}
	/* sorted by raw bytes, as restic wrote them */
	for (size_t i = 1; i < t.n; i++)
		CHECK(strcmp(t.nodes[i - 1].name, t.nodes[i].name) < 0);
	CHECK_STR(t.nodes[0].name, "a\nb");
	CHECK_STR(t.nodes[4].name, "ctl\x01\a\b\f\v");
	CHECK_STR(t.nodes[5].name, "c\x80" "d");
	cairn_tree_release(&t);
}

/* encode(decode(x)) == x for every tree restic wrote, in restic's zone.
 * One node cannot come back from its JSON alone: restic 0.14 stored the
 * symlink target "tgt\x80<&>\x01\n" (not UTF-8) lossily as
 * "tgt\ufffd...", which decodes to a real U+FFFD that Go, like us, then
 * writes raw.  So the test puts back the target that was on disk, and the
 * encoder must make the same lossy conversion restic made. */
static void test_oracle_reencode_byte_exact(void)
{
	static const struct { const char *json; size_t len; const char *tz, *id; } cases[] = {
		{ oracle_src_tree, sizeof(oracle_src_tree) - 1, TZ_BERLIN,
		  "98926bf27ee5791ba02665d1553706e438f2fa7ece2cffa7d00d7cfc457b775f" },
		{ oracle_root_tree, sizeof(oracle_root_tree) - 1, TZ_BERLIN,
		  "19a8653d658cf51c96a77da4c8d5189a0adbf68e2737a48cc79ebe56012e1803" },
		{ oracle_sub_tree, sizeof(oracle_sub_tree) - 1, TZ_BERLIN,
		  "1b970340a728b2f060862fe7239f5bf8e40b927ff29233e4fe4cbb81ab24245c" },
		{ oracle_utc_tree, sizeof(oracle_utc_tree) - 1, "UTC0",
		  "e47666b96ed779a0955761da5d70c514d889cb2d99332a2d02986ba8be45a011" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_tree t = CAIRN_TREE_INIT;
		cairn_buf out = CAIRN_BUF_INIT;
		cairn_id id;

		set_tz(cases[i].tz);
		CHECK_OK(cairn_tree_decode(&t, cases[i].json, cases[i].len));
		const cairn_node *link1 = cairn_tree_find(&t, "link1");
		if (link1) {
			free(link1->linktarget);
			((cairn_node *)link1)->linktarget = strdup("tgt\x80<&>\x01\n");
		}
		CHECK_OK(cairn_tree_encode(&out, &t));
		CHECK_INT(out.len, cases[i].len);
		if (out.len != cases[i].len || memcmp(out.data, cases[i].json, out.len) != 0) {
			size_t k = 0;
			while (k < out.len && k < cases[i].len && out.data[k] == (unsigned char)cases[i].json[k])
				k++;
			fprintf(stderr, "tree %zu differs at byte %zu:\n  got  %.80s\n  want %.80s\n", i, k,
				(const char *)out.data + k, cases[i].json + k);
			CHECK(0);
		}
		cairn_sha256(&id, out.data, out.len);
		CHECK(id_is(&id, cases[i].id));
		cairn_buf_release(&out);
		cairn_tree_release(&t);
	}
	/* Same instants in another zone: other offsets, other bytes, and the
	 * times still decode to the same values. */
	cairn_tree a = CAIRN_TREE_INIT, b = CAIRN_TREE_INIT;
	cairn_buf out = CAIRN_BUF_INIT;
	set_tz("UTC0");
	CHECK_OK(cairn_tree_decode(&a, oracle_src_tree, sizeof(oracle_src_tree) - 1));
	CHECK_OK(cairn_tree_encode(&out, &a));
	CHECK(strstr((const char *)cairn_buf_cstr(&out), "\"mtime\":\"2022-07-08T07:10:11.5Z\"") != NULL);
	CHECK_OK(cairn_tree_decode(&b, (const char *)out.data, out.len));
	CHECK_INT(a.n, b.n);
	for (size_t i = 0; i < a.n && i < b.n; i++) {
		CHECK_STR(a.nodes[i].name, b.nodes[i].name);
		CHECK(cairn_time_compare(a.nodes[i].mtime, b.nodes[i].mtime) == 0);
		CHECK(cairn_time_compare(a.nodes[i].ctime, b.nodes[i].ctime) == 0);
	}
	cairn_buf_release(&out);
	cairn_tree_release(&a);
	cairn_tree_release(&b);
}

/* ---- decoding: accepted variants and rejects ------------------------------------- */

#define ID_A "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
#define TIMES "\"mtime\":\"2024-01-02T03:04:05Z\",\"atime\":\"2024-01-02T03:04:05Z\",\"ctime\":\"2024-01-02T03:04:05Z\""

static int decode_str(cairn_tree *t, const char *json)
{
	return cairn_tree_decode(t, json, strlen(json));
}

static void test_decode_accepts(void)
{
	cairn_tree t = CAIRN_TREE_INIT;
	const cairn_node *n;

	/* Unknown keys of every shape, unsorted nodes, whitespace, no final
	 * newline, missing times, full uint64 range, later restic's fields. */
	CHECK_OK(decode_str(&t,
		" {\"version\":2, \"nodes\" : [\n"
		"  {\"name\":\"zz\",\"type\":\"symlink\",\"linktarget\":\"lossy\ufffd\","
		"   \"linktarget_raw\":\"dIB4\",\"generic_attributes\":{\"a\":[1,-2.5e3,true,false,null,{\"b\":\"\\u00e9\"}]},"
		"   \"content\":null},\n"
		"  {\"name\":\"aa\",\"type\":\"file\",\"size\":18446744073709551615,\"inode\":0,"
		"   \"mode\":4294967295,\"uid\":4294967295,\"content\":[],\"subtree\":null,\"unknown\":[[[]]]},"
		"  {\"name\":\"\\ud83d\\ude00 \\ud800x \\\\u00e9\",\"type\":\"fifo\",\"content\":null, \"user\":null}"
		" ], \"trailer\":\"x\"}\r\n\t"));
	CHECK_INT(t.n, 3);
	CHECK_STR(t.nodes[0].name, "aa");
	if ((n = must_find(&t, "aa"))) {
		CHECK(n->size == UINT64_MAX && n->mode == UINT32_MAX && n->uid == UINT32_MAX);
		CHECK_INT(n->mtime.sec, -62135596800LL); /* Go's zero time */
		CHECK_INT(n->n_content, 0);
	}
	if ((n = must_find(&t, "zz")))
		CHECK_STR(n->linktarget, "t\x80x"); /* linktarget_raw wins */
	/* a JSON surrogate pair, a lone surrogate (U+FFFD), then Go's \u00e9 */
	must_find(&t, "\xf0\x9f\x98\x80 \xef\xbf\xbdx \xc3\xa9");
	cairn_tree_release(&t);

	CHECK_OK(decode_str(&t, "{\"nodes\":null}"));
	CHECK_INT(t.n, 0);
	CHECK_OK(decode_str(&t, "{}"));
	CHECK_INT(t.n, 0);
	/* a repeated key: the last one wins, as in Go */
	CHECK_OK(decode_str(&t, "{\"nodes\":[{\"name\":\"x\",\"type\":\"fifo\",\"content\":null}],"
		"\"nodes\":[{\"name\":\"a\",\"name\":\"b\",\"type\":\"dir\",\"type\":\"file\",\"mode\":1,\"mode\":null,"
		"\"content\":[\"" ID_A "\"],\"content\":[]}]}"));
	CHECK_INT(t.n, 1);
	if (t.n == 1) {
		CHECK_STR(t.nodes[0].name, "b");
		CHECK_INT(t.nodes[0].type, CAIRN_NODE_FILE);
		CHECK_INT(t.nodes[0].mode, 1);
		CHECK_INT(t.nodes[0].n_content, 0);
	}
	cairn_tree_release(&t);
}

static void test_decode_rejects(void)
{
	static const struct { const char *json, *message; } bad[] = {
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\"," TIMES ",\"content\":null}]}",
		  "file 'f' has no content list" },
		{ "{\"nodes\":[{\"name\":\"bad\\\\nname\",\"type\":\"file\"}]}",
		  "file 'bad\\nname' has no content list" },
		{ "{\"nodes\":[{\"name\":\"d\",\"type\":\"dir\",\"content\":null}]}", "dir 'd' has no subtree" },
		{ "{\"nodes\":[{\"name\":\"d\",\"type\":\"dir\",\"subtree\":null}]}", "dir 'd' has no subtree" },
		{ "{\"nodes\":[{\"name\":\"w\",\"type\":\"whiteout\",\"content\":null}]}",
		  "node 'w' has unknown type 'whiteout'" },
		{ "{\"nodes\":[{\"name\":\"w\",\"content\":null}]}", "node 'w' has unknown type ''" },
		{ "{\"nodes\":[{\"name\":\"..\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\".\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a/b\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\\\\x2fb\",\"type\":\"fifo\"}]}", NULL },  /* '/' via Go escape */
		{ "{\"nodes\":[{\"name\":\"a\\\\x00\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\\u0000\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\\\\q\",\"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\\\"\",\"type\":\"fifo\"}]}", NULL },     /* raw '"' after JSON */
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"file\",\"content\":[\"" ID_A "0\"]}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"file\",\"content\":[\"g" ID_A "\"]}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"file\",\"content\":[null]}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"file\",\"content\":[1]}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"dir\",\"subtree\":\"abc\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mtime\":\"2024-02-30T00:00:00Z\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mtime\":5}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mode\":-1}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mode\":1.5}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mode\":1e3}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mode\":4294967296}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"mode\":\"420\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"size\":18446744073709551616}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"size\":01}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"user\":7}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"user\":\"r\\u0000t\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"extended_attributes\":[{\"value\":\"AA==\"}]}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"extended_attributes\":[{\"name\":\"x\",\"value\":\"A\"}]}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"extended_attributes\":{}}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\"},{\"name\":\"a\",\"type\":\"fifo\"}]}",
		  "tree json: duplicate node name 'a'" },
		{ "{\"nodes\":[null]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\"},]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\" \"type\":\"fifo\"}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\tb\",\"type\":\"fifo\"}]}", NULL },  /* raw control byte */
		{ "{\"nodes\":[{\"name\":\"a\\x\",\"type\":\"fifo\"}]}", NULL },  /* bad JSON escape */
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"skip\":[1,2}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"skip\":01}]}", NULL },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\",\"skip\":tru}]}", NULL },
		{ "{\"nodes\":[]}x", "tree json: data after the tree at offset 12" },
		{ "{\"nodes\":[]", NULL },
		{ "{\"nodes\":[", NULL },
		{ "{\"nodes\":[{\"name\":\"unterminated", NULL },
		{ "[]", NULL },
		{ "", NULL },
		{ "null", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_tree t = CAIRN_TREE_INIT;
		int r = decode_str(&t, bad[i].json);
		if (r != CAIRN_ECORRUPT)
			fprintf(stderr, "case %zu: %d for %s\n", i, r, bad[i].json);
		CHECK_INT(r, CAIRN_ECORRUPT);
		CHECK(t.n == 0 && t.nodes == NULL);
		if (bad[i].message)
			CHECK_STR(cairn_error_message(), bad[i].message);
		cairn_tree_release(&t);
	}
	/* deep nesting in an unknown key is bounded, not a stack overflow */
	cairn_buf deep = CAIRN_BUF_INIT;
	cairn_tree t = CAIRN_TREE_INIT;
	CHECK_OK(cairn_buf_puts(&deep, "{\"x\":"));
	for (int i = 0; i < 100000; i++)
		CHECK_OK(cairn_buf_puts(&deep, "["));
	CHECK_INT(cairn_tree_decode(&t, (const char *)deep.data, deep.len), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "nesting") != NULL);
	cairn_buf_release(&deep);
}

/* ---- the encoder against a printf reference ---------------------------------- */

/* The encoder as it was written with printf (cairn_buf_printf and
 * cairn_time_format), kept as the reference for the hand-written one: the
 * bytes must be the same, since the tree id is their hash. */
static void ref_key_string(cairn_buf *b, const char *key, const char *value)
{
	CHECK_OK(cairn_buf_printf(b, ",\"%s\":", key));
	CHECK_OK(cairn_json__put_string(b, value, strlen(value)));
}

static void ref_time(cairn_buf *b, const char *key, cairn_time t)
{
	char text[CAIRN_TIME_TEXT_SIZE];

	cairn_time_format(text, t, cairn_time_local_offset(t));
	CHECK_OK(cairn_buf_printf(b, ",\"%s\":\"%s\"", key, text));
}

static void ref_uint(cairn_buf *b, const char *key, uint64_t v, int always)
{
	if (v || always)
		CHECK_OK(cairn_buf_printf(b, ",\"%s\":%" PRIu64, key, v));
}

static void ref_node(cairn_buf *b, const cairn_node *n)
{
	static const char *const types[] = { "file", "dir", "symlink", "dev", "chardev", "fifo", "socket" };
	cairn_buf q = CAIRN_BUF_INIT;
	char hex[CAIRN_ID_HEX_SIZE];

	CHECK_OK(cairn_go_quote(&q, n->name, strlen(n->name)));
	CHECK_OK(cairn_buf_puts(b, "{\"name\":"));
	CHECK_OK(cairn_json__put_string(b, (const char *)q.data, q.len));
	cairn_buf_release(&q);
	CHECK_OK(cairn_buf_printf(b, ",\"type\":\"%s\"", types[n->type]));
	ref_uint(b, "mode", n->mode, 0);
	ref_time(b, "mtime", n->mtime);
	ref_time(b, "atime", n->atime);
	ref_time(b, "ctime", n->ctime);
	ref_uint(b, "uid", n->uid, 1);
	ref_uint(b, "gid", n->gid, 1);
	if (n->user && *n->user)
		ref_key_string(b, "user", n->user);
	if (n->group && *n->group)
		ref_key_string(b, "group", n->group);
	ref_uint(b, "inode", n->inode, 0);
	ref_uint(b, "device_id", n->device_id, 0);
	ref_uint(b, "size", n->size, 0);
	ref_uint(b, "links", n->links, 0);
	if (n->linktarget && *n->linktarget)
		ref_key_string(b, "linktarget", n->linktarget);
	if (n->n_xattrs > 0) {
		CHECK_OK(cairn_buf_puts(b, ",\"extended_attributes\":["));
		for (size_t i = 0; i < n->n_xattrs; i++) {
			const cairn_xattr *x = &n->xattrs[i];
			CHECK_OK(cairn_buf_puts(b, i ? ",{\"name\":" : "{\"name\":"));
			CHECK_OK(cairn_json__put_string(b, x->name, strlen(x->name)));
			CHECK_OK(cairn_buf_puts(b, ",\"value\":\""));
			CHECK_OK(cairn_base64_encode(b, x->value, x->value_len));
			CHECK_OK(cairn_buf_puts(b, "\"}"));
		}
		CHECK_OK(cairn_buf_puts(b, "]"));
	}
	ref_uint(b, "device", n->device, 0);
	if (n->type != CAIRN_NODE_FILE) {
		CHECK_OK(cairn_buf_puts(b, ",\"content\":null"));
	} else {
		CHECK_OK(cairn_buf_puts(b, ",\"content\":["));
		for (size_t i = 0; i < n->n_content; i++) {
			cairn_id_to_hex(hex, &n->content[i]);
			CHECK_OK(cairn_buf_printf(b, i ? ",\"%s\"" : "\"%s\"", hex));
		}
		CHECK_OK(cairn_buf_puts(b, "]"));
	}
	if (n->type == CAIRN_NODE_DIR) {
		cairn_id_to_hex(hex, &n->subtree);
		CHECK_OK(cairn_buf_printf(b, ",\"subtree\":\"%s\"", hex));
	}
	if (n->error && *n->error)
		ref_key_string(b, "error", n->error);
	CHECK_OK(cairn_buf_puts(b, "}"));
}

/* xorshift64*: deterministic, so a failure reproduces */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* A string of 1..12 pieces: plain ASCII, bytes the escapes care about,
 * valid multi-byte runes (printable or not) and invalid UTF-8. */
static char *rnd_string(int allow_slash)
{
	static const char *const pieces[] = {
		"a", "Zz09", ".", " ", "-_~", "\"", "\\", "<", ">", "&", "\n", "\t", "\r", "\x01", "\x1f",
		"\x7f", "\xc2\xa0", "\xc2\xad", "\xc2\x85", "\xc3\xa9", "\xe2\x80\xa8", "\xe2\x80\xa9",
		"\xe2\x80\x8b", "\xe3\x80\x80", "\xef\xbb\xbf", "\xef\xbf\xbd", "\xee\x80\x80",
		"\xf0\x9f\x98\x80", "\xf3\xa0\x80\x81", "\xcd\xb8", "\x80", "\xff", "\xc0\xaf",
		"\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80", "\xe4\xb8\xad\xe6\x96\x87", "/",
	};
	char buf[256];
	size_t len = 0, k = 1 + rnd() % 12;

	for (size_t i = 0; i < k; i++) {
		const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
		if (!allow_slash && strcmp(p, "/") == 0)
			p = "x";
		memcpy(buf + len, p, strlen(p));
		len += strlen(p);
	}
	buf[len] = '\0';
	if (strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0)
		buf[0] = 'y';
	return strdup(buf);
}

static cairn_time rnd_time(void)
{
	static const int32_t nsecs[] = { 0, 1, 10, 500000000, 123456789, 999999999, 100, 120000000 };
	static const int64_t secs[] = { 0, -1, 1, 86399, 86400, -86400, 951782400, 951868799,
		1577833199, 1577833200, 1711846800, 1711850400, 1729987200, 1729990800, 4102444800,
		253402300799, 253402300800, -62135596800, -62135596801, -62167219200, -62167219201,
		INT64_MAX / 2, -(INT64_MAX / 2), 1657264211 };
	cairn_time t;

	switch (rnd() % 4) {
	case 0:
		t.sec = secs[rnd() % (sizeof(secs) / sizeof(secs[0]))] + (int64_t)(rnd() % 3) - 1;
		break;
	case 1: /* any year 0..9999 */
		t.sec = (int64_t)(rnd() % 315537897600ull) - 62167219200ll;
		break;
	default: /* the last decades, like files on a disk */
		t.sec = (int64_t)(rnd() % 2000000000ull);
		break;
	}
	t.nsec = rnd() % 2 ? (int32_t)(rnd() % 1000000000) : nsecs[rnd() % (sizeof(nsecs) / sizeof(nsecs[0]))];
	if (rnd() % 64 == 0) /* out of range: written as cairn_time_format carries it */
		t.nsec = rnd() % 2 ? -1 : 1000000000 + (int32_t)(rnd() % 5);
	return t;
}

static uint64_t rnd_u64(void)
{
	switch (rnd() % 4) {
	case 0: return 0;
	case 1: return rnd() % 10;
	case 2: return rnd() % 100000;
	default: return rnd() >> (rnd() % 64);
	}
}

static void rnd_node(cairn_node *n, unsigned k)
{
	char name[16];

	memset(n, 0, sizeof(*n));
	n->name = rnd_string(0);
	/* distinct names: a counter in front */
	snprintf(name, sizeof(name), "%05u", k);
	{
		char *full = malloc(strlen(name) + strlen(n->name) + 1);
		strcpy(full, name);
		strcat(full, n->name);
		free(n->name);
		n->name = full;
	}
	n->type = (cairn_node_type)(rnd() % 7);
	n->mode = rnd() % 3 ? cairn_mode_from_posix((mode_t)(rnd() & 0177777)) : (uint32_t)rnd_u64();
	n->mtime = rnd_time();
	n->atime = rnd() % 2 ? n->mtime : rnd_time();
	n->ctime = rnd_time();
	n->uid = (uint32_t)rnd_u64();
	n->gid = (uint32_t)rnd_u64();
	if (rnd() % 4)
		n->user = rnd() % 4 ? strdup("root") : rnd_string(1);
	if (rnd() % 4)
		n->group = rnd() % 8 ? strdup("") : rnd_string(1);
	n->inode = rnd_u64();
	n->device_id = rnd_u64();
	n->size = rnd_u64();
	n->links = rnd_u64();
	if (rnd() % 4 == 0)
		n->linktarget = rnd_string(1);
	for (unsigned i = rnd() % 6 == 0 ? rnd() % 4 : 0; i > 0; i--) {
		unsigned char v[40];
		size_t vl = rnd() % sizeof(v);
		char *xn = rnd_string(1);
		for (size_t j = 0; j < vl; j++)
			v[j] = (unsigned char)rnd();
		CHECK_OK(cairn_node_add_xattr(n, xn, v, vl));
		free(xn);
	}
	n->device = rnd() % 4 ? 0 : rnd_u64();
	for (unsigned i = rnd() % 4 ? rnd() % 5 : 0; i > 0; i--) {
		cairn_id id;
		for (size_t j = 0; j < sizeof(id.bytes); j++)
			id.bytes[j] = (unsigned char)rnd();
		CHECK_OK(cairn_node_add_content(n, &id));
	}
	if (n->type == CAIRN_NODE_DIR || rnd() % 8 == 0) {
		n->has_subtree = 1;
		for (size_t j = 0; j < sizeof(n->subtree.bytes); j++)
			n->subtree.bytes[j] = (unsigned char)rnd();
	}
	if (rnd() % 16 == 0)
		n->error = rnd_string(1);
}

static void test_encode_matches_printf_reference(void)
{
	/* zones with DST, a negative half-hour one, one whose offset has
	 * seconds (dropped: RFC 3339 has none), a far one, and UTC */
	static const char *const zones[] = { TZ_BERLIN, "UTC0", "NST3:30NDT,M3.2.0,M11.1.0",
		"LMT-0:53:28", "<+1345>-13:45<+1445>,M9.5.0/2:45,M4.1.0/3:45", "EST5EDT,M3.2.0,M11.1.0" };
	const char *saved = getenv("TZ");
	char *saved_tz = saved ? strdup(saved) : NULL;

	for (size_t zi = 0; zi < sizeof(zones) / sizeof(zones[0]); zi++) {
		set_tz(zones[zi]);
		for (unsigned round = 0; round < 40; round++) {
			cairn_tree t = CAIRN_TREE_INIT;
			cairn_buf got = CAIRN_BUF_INIT, want = CAIRN_BUF_INIT;
			unsigned count = (unsigned)(rnd() % 40);

			for (unsigned k = 0; k < count; k++) {
				cairn_node n;
				rnd_node(&n, k);
				CHECK_OK(cairn_tree_add(&t, &n));
			}
			CHECK_OK(cairn_tree_encode(&got, &t));
			/* the nodes are sorted now (names start with distinct counters) */
			CHECK_OK(cairn_buf_puts(&want, "{\"nodes\":["));
			for (size_t k = 0; k < t.n; k++) {
				if (k)
					CHECK_OK(cairn_buf_puts(&want, ","));
				ref_node(&want, &t.nodes[k]);
			}
			CHECK_OK(cairn_buf_puts(&want, "]}\n"));
			CHECK_INT(got.len, want.len);
			if (got.len == want.len)
				CHECK_MEM(got.data, want.data, got.len);
			if (got.len != want.len || memcmp(got.data, want.data, got.len)) {
				fprintf(stderr, "zone %s round %u:\n got  %.*s\n want %.*s\n", zones[zi], round,
					(int)got.len, (const char *)got.data, (int)want.len, (const char *)want.data);
				zi = sizeof(zones) / sizeof(zones[0]) - 1;
				round = 1000;
			}
			cairn_buf_release(&got);
			cairn_buf_release(&want);
			cairn_tree_release(&t);
		}
	}
	if (saved_tz)
		set_tz(saved_tz);
	else {
		unsetenv("TZ");
		tzset();
	}
	free(saved_tz);
}

/* Times at the edges of the formatter: fractions, year clamping, zone
 * offsets with seconds, the day boundary in a zone. */
static void test_encode_times(void)
{
	static const struct { const char *tz; int64_t sec; int32_t nsec; const char *text; } cases[] = {
		{ "UTC0", 0, 0, "1970-01-01T00:00:00Z" },
		{ "UTC0", 0, 1, "1970-01-01T00:00:00.000000001Z" },
		{ "UTC0", 0, 100000000, "1970-01-01T00:00:00.1Z" },
		{ "UTC0", -1, 999999999, "1969-12-31T23:59:59.999999999Z" },
		{ "UTC0", 253402300799, 0, "9999-12-31T23:59:59Z" },
		{ "UTC0", 253402300800, 0, "9999-01-01T00:00:00Z" },     /* year 10000 -> 9999 */
		{ "UTC0", -62167219201, 0, "0000-12-31T23:59:59Z" },    /* year -1 -> 0000 */
		{ "UTC0", -62135596800, 0, "0001-01-01T00:00:00Z" },    /* Go's zero time */
		{ "UTC0", 951782400, 0, "2000-02-29T00:00:00Z" },
		{ "UTC0", 5, 1000000000, "1970-01-01T00:00:06Z" },      /* nsec carried */
		{ "UTC0", 5, -1, "1970-01-01T00:00:04.999999999Z" },
		{ TZ_BERLIN, 1577836799, 0, "2020-01-01T00:59:59+01:00" },
		{ TZ_BERLIN, 1593561600, 5, "2020-07-01T02:00:00.000000005+02:00" },
		{ "NST3:30", 0, 0, "1969-12-31T20:30:00-03:30" },
		{ "LMT-0:53:28", 0, 0, "1970-01-01T00:53:00+00:53" },
		{ "<+1345>-13:45", 86399, 0, "1970-01-02T13:44:59+13:45" },
	};
	const char *saved = getenv("TZ");
	char *saved_tz = saved ? strdup(saved) : NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_tree t = CAIRN_TREE_INIT;
		cairn_buf out = CAIRN_BUF_INIT;
		cairn_node n = CAIRN_NODE_INIT;
		char want[256];

		set_tz(cases[i].tz);
		n.name = strdup("f");
		n.type = CAIRN_NODE_FIFO;
		n.mtime = n.atime = n.ctime = (cairn_time){ cases[i].sec, cases[i].nsec };
		CHECK_OK(cairn_tree_add(&t, &n));
		CHECK_OK(cairn_tree_encode(&out, &t));
		snprintf(want, sizeof(want), "{\"nodes\":[{\"name\":\"f\",\"type\":\"fifo\",\"mtime\":\"%s\","
			"\"atime\":\"%s\",\"ctime\":\"%s\",\"uid\":0,\"gid\":0,\"content\":null}]}\n",
			cases[i].text, cases[i].text, cases[i].text);
		CHECK_STR(cairn_buf_cstr(&out), want);
		cairn_buf_release(&out);
		cairn_tree_release(&t);
	}
	if (saved_tz)
		set_tz(saved_tz);
	else {
		unsetenv("TZ");
		tzset();
	}
	free(saved_tz);
}

UNIT_MAIN(test_node_types, test_modes, test_go_quote_table, test_go_unquote,
	test_go_quote_round_trip_all_runes, test_name_check, test_node_copy_and_lists,
	test_tree_sort_find_duplicates, test_encode_empty_and_exact, test_encode_sorts,
	test_oracle_decode_fields, test_oracle_reencode_byte_exact, test_decode_accepts,
	test_decode_rejects, test_encode_matches_printf_reference, test_encode_times)
