/* make_seeds.c: writes the seed corpus of every fuzz harness.
 *
 * `make fuzz` runs `build/fuzz/make_seeds build/fuzz/corpus`, which creates
 * one folder per harness (corpus/tree for fuzz_tree, ...) holding valid
 * inputs made with the library's own encoders, in the input layout each
 * harness documents (mode byte, length prefixes).  Seeds are generated
 * rather than committed so they always match the current encoders and no
 * binaries live in git.  The pack and blob seeds use the same fixed key as
 * fuzz_pack_header.c and fuzz_blob.c; the key-file seeds use the password
 * "pw" and the salt of fuzz_keyfile.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cairn/cairn.h>

static const char *root;

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "make_seeds: %s: %s\n", what, cairn_error_message());
		exit(1);
	}
}

/* Write corpus/<dir>/<name> = prefix || data. */
static void seed(const char *dir, const char *name, const void *prefix, size_t plen,
	const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	if (!(f = fopen(path, "wb")) || (plen && fwrite(prefix, 1, plen, f) != plen) ||
	    (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void seed_str(const char *dir, const char *name, const char *s)
{
	seed(dir, name, NULL, 0, s, strlen(s));
}

static void fixed_key(cairn_key *k)
{
	static const unsigned char mask[16] = { 0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
		0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f };
	for (int i = 0; i < 32; i++)
		k->encrypt[i] = (unsigned char)(0x10 + i);
	for (int i = 0; i < 16; i++) {
		k->mac_k[i] = (unsigned char)(0x40 + i);
		k->mac_r[i] = (unsigned char)((0x70 + i) & mask[i]);
	}
}

static cairn_id id_n(unsigned n)
{
	cairn_id id;
	for (int i = 0; i < CAIRN_ID_SIZE; i++)
		id.bytes[i] = (unsigned char)(n * 31 + (unsigned)i * 7);
	return id;
}

static void tree_seeds(void)
{
	static const char *const names[] = { "file", "dir", "link", "fifo", "dev", "odd\n\"\\\x80\xc3\xa9<&>" };
	cairn_tree t = CAIRN_TREE_INIT;
	cairn_buf b = CAIRN_BUF_INIT;

	for (int i = 0; i < 6; i++) {
		cairn_node n = CAIRN_NODE_INIT;
		cairn_id id = id_n((unsigned)i);
		n.name = strdup(names[i]);
		n.type = i == 1 ? CAIRN_NODE_DIR : i == 2 ? CAIRN_NODE_SYMLINK : i == 3 ? CAIRN_NODE_FIFO
			: i == 4 ? CAIRN_NODE_CHARDEV : CAIRN_NODE_FILE;
		n.mode = n.type == CAIRN_NODE_DIR ? CAIRN_GOMODE_DIR | 0755 : 0644;
		n.mtime.sec = n.atime.sec = n.ctime.sec = 1700000000 + i;
		n.mtime.nsec = 5;
		n.uid = n.gid = 1000;
		n.user = strdup("alice");
		n.inode = 100 + (uint64_t)i;
		n.links = 1;
		if (n.type == CAIRN_NODE_FILE) {
			n.size = 10;
			must(cairn_node_add_content(&n, &id), "content");
			must(cairn_node_add_xattr(&n, "user.x", "\0\xff", 2), "xattr");
		} else if (n.type == CAIRN_NODE_DIR) {
			n.has_subtree = 1;
			n.subtree = id;
		} else if (n.type == CAIRN_NODE_SYMLINK) {
			n.linktarget = strdup("../t");
		} else if (n.type == CAIRN_NODE_CHARDEV) {
			n.device = 259;
		}
		must(cairn_tree_add(&t, &n), "tree add");
	}
	must(cairn_tree_encode(&b, &t), "tree encode");
	seed("tree", "full", NULL, 0, b.data, b.len);
	seed_str("tree", "empty", "{\"nodes\":[]}\n");
	seed_str("tree", "restic-0.17",
		"{\"nodes\":[{\"name\":\"x\\\\x01\",\"type\":\"symlink\",\"linktarget_raw\":\"YWJj/w==\","
		"\"generic_attributes\":{\"a\":[1,2.5e3,null]},\"mtime\":\"2024-01-02T03:04:05.5+01:00\","
		"\"content\":null}]}\n");
	cairn_tree_release(&t);
	cairn_buf_release(&b);
}

static void snapshot_seeds(void)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	cairn_buf b = CAIRN_BUF_INIT;

	s.time.sec = 1764528654;
	s.time.nsec = 255817221;
	s.time_offset_sec = 3600;
	s.tree = id_n(1);
	s.has_parent = 1;
	s.parent = id_n(2);
	must(cairn_strlist_add(&s.paths, &s.n_paths, "/home/\xc3\xa9"), "paths");
	must(cairn_strlist_add(&s.tags, &s.n_tags, "daily"), "tags");
	must(cairn_strlist_add(&s.excludes, &s.n_excludes, "*.tmp"), "excludes");
	s.hostname = strdup("host");
	s.username = strdup("alice");
	s.uid = s.gid = 1000;
	must(cairn_snapshot_encode(&b, &s), "snapshot encode");
	seed("snapshot", "full", NULL, 0, b.data, b.len);
	seed_str("snapshot", "restic",
		"{\"time\":\"2026-11-30T18:50:54.255817221Z\",\"tree\":"
		"\"0404040404040404040404040404040404040404040404040404040404040404\",\"paths\":[\"/srv\"],"
		"\"hostname\":\"vm\",\"program_version\":\"restic 0.16.0\",\"summary\":{\"files_new\":1}}");
	cairn_snapshot_release(&s);
	cairn_buf_release(&b);
}

static void index_seeds(void)
{
	cairn_index_builder *ib = NULL;
	cairn_pack_entry e[2];
	cairn_id pack = id_n(9);
	cairn_buf b = CAIRN_BUF_INIT;

	memset(e, 0, sizeof(e));
	e[0].id = id_n(1);
	e[0].type = CAIRN_BLOB_DATA;
	e[0].length = 1000;
	e[0].uncompressed_length = 4000;
	e[1].id = id_n(2);
	e[1].type = CAIRN_BLOB_TREE;
	e[1].offset = 1000;
	e[1].length = 77;
	must(cairn_index_builder_new(&ib), "builder");
	must(cairn_index_builder_add_pack(ib, &pack, e, 2), "builder add");
	must(cairn_index_builder_encode(&b, ib), "builder encode");
	seed("index", "v2", NULL, 0, b.data, b.len);
	seed_str("index", "legacy",
		"[{\"id\":\"0707070707070707070707070707070707070707070707070707070707070707\",\"blobs\":"
		"[{\"id\":\"0808080808080808080808080808080808080808080808080808080808080808\","
		"\"type\":\"data\",\"offset\":0,\"length\":100}]}]");
	seed_str("index", "supersedes",
		"{\"supersedes\":[\"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\"],\"packs\":[]}");
	cairn_index_builder_free(ib);
	cairn_buf_release(&b);
}

static void config_seeds(void)
{
	cairn_config cfg = { 2, id_n(3), 0x3f0293f5a7f421ULL };
	cairn_buf b = CAIRN_BUF_INIT;

	must(cairn_config_encode(&b, &cfg), "config encode");
	seed("config", "v2", NULL, 0, b.data, b.len);
	cairn_buf_release(&b);
}

static void keyfile_seeds(void)
{
	cairn_key master;
	cairn_buf kf = CAIRN_BUF_INIT, inner = CAIRN_BUF_INIT;

	fixed_key(&master);
	must(cairn_keyfile_create(&kf, &master, "pw", 2, 16, 1, 1, "alice", "host"), "keyfile");
	seed("keyfile", "file", "\0", 1, kf.data, kf.len);
	must(cairn_buf_puts(&inner, "{\"mac\":{\"k\":\""), "json");
	must(cairn_base64_encode(&inner, master.mac_k, 16), "json");
	must(cairn_buf_puts(&inner, "\",\"r\":\""), "json");
	must(cairn_base64_encode(&inner, master.mac_r, 16), "json");
	must(cairn_buf_puts(&inner, "\"},\"encrypt\":\""), "json");
	must(cairn_base64_encode(&inner, master.encrypt, 32), "json");
	must(cairn_buf_puts(&inner, "\"}"), "json");
	seed("keyfile", "master", "\1", 1, inner.data, inner.len);
	cairn_buf_release(&kf);
	cairn_buf_release(&inner);
}

/* A pack of three blobs; its header in plaintext for the resealing modes;
 * and blob seeds from the same blobs. */
static void pack_and_blob_seeds(void)
{
	cairn_key key;
	cairn_pack_writer *pw = NULL;
	cairn_buf sealed = CAIRN_BUF_INIT, scratch = CAIRN_BUF_INIT, frame = CAIRN_BUF_INIT;
	cairn_buf hdr = CAIRN_BUF_INIT;
	unsigned char plain[3000], pre[5];
	const unsigned char *data;
	size_t len;
	uint32_t ulen, hlen;
	cairn_id id;

	fixed_key(&key);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (unsigned char)("blob data "[i % 10] + i / 1000);
	must(cairn_pack_writer_new(&pw, &key), "pack writer");
	for (int b = 0; b < 3; b++) {
		size_t plen = 500 + (size_t)b * 1000;
		cairn_sha256(&id, plain, plen);
		must(cairn_blob_encode(&sealed, &ulen, &scratch, &key, 2,
			     b == 1 ? CAIRN_COMPRESSION_OFF : CAIRN_COMPRESSION_AUTO, plain, plen), "blob encode");
		must(cairn_pack_writer_add_sealed(pw, b == 2 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, &id,
			     sealed.data, sealed.len, ulen), "add");
		pre[0] = 0;
		pre[1] = (unsigned char)ulen;
		pre[2] = (unsigned char)(ulen >> 8);
		pre[3] = (unsigned char)(ulen >> 16);
		pre[4] = (unsigned char)(ulen >> 24);
		seed("blob", b == 0 ? "stored0" : b == 1 ? "stored1" : "stored2", pre, 5, sealed.data, sealed.len);
	}
	must(cairn_zstd_compress(&frame, plain, 1500, 3), "compress");
	pre[0] = 1;
	pre[1] = 1500 & 0xff;
	pre[2] = 1500 >> 8;
	pre[3] = pre[4] = 0;
	seed("blob", "frame", pre, 5, frame.data, frame.len);
	pre[0] = 2;
	seed("blob", "plain", pre, 5, plain, 100);
	must(cairn_pack_writer_finish(&id, pw), "finish");
	data = cairn_pack_writer_data(pw, &len);
	seed("pack_header", "pack", "\0", 1, data, len);
	hlen = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 | (uint32_t)data[len - 2] << 16 |
	       (uint32_t)data[len - 1] << 24;
	must(cairn_crypto_open_buf(&hdr, &key, data + len - 4 - hlen, hlen), "open header");
	seed("pack_header", "header", "\1", 1, hdr.data, hdr.len);
	{
		uint32_t blobs = (uint32_t)(len - 4 - hlen);
		unsigned char p2[5] = { 2, (unsigned char)blobs, (unsigned char)(blobs >> 8),
			(unsigned char)(blobs >> 16), (unsigned char)(blobs >> 24) };
		seed("pack_header", "header-sized", p2, 5, hdr.data, hdr.len);
	}
	/* zstd: 3-byte size, then the frames. */
	pre[0] = 1500 & 0xff;
	pre[1] = 1500 >> 8;
	pre[2] = 0;
	seed("zstd", "frame", pre, 3, frame.data, frame.len);
	must(cairn_zstd_compress(&frame, "", 0, 3), "compress");
	seed("zstd", "empty", "\0\0\0", 3, frame.data, frame.len);
	cairn_pack_writer_free(pw);
	cairn_buf_release(&sealed);
	cairn_buf_release(&scratch);
	cairn_buf_release(&frame);
	cairn_buf_release(&hdr);
}

static void text_seeds(void)
{
	static const char *const names[] = { "plain.txt", "a\nb", "c\x80\x64", "we\"ird\\name",
		"soft\xc2\xad", "emoji\xf0\x9f\x98\x80", "ctl\x01\x07" };
	char text[CAIRN_TIME_TEXT_SIZE], name[16];
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_time t = { 1764528654, 255817221 };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		cairn_buf_clear(&b);
		must(cairn_go_quote(&b, names[i], strlen(names[i])), "quote");
		snprintf(name, sizeof(name), "q%zu", i);
		seed("unquote", name, NULL, 0, b.data, b.len);
	}
	seed_str("unquote", "escapes", "\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\x41\\101\\u00e9\\U0001F600");
	cairn_time_format(text, t, 0);
	seed_str("time", "utc", text);
	cairn_time_format(text, t, -(5 * 3600 + 30 * 60));
	seed_str("time", "offset", text);
	seed_str("time", "long-fraction", "2024-02-29T23:59:59.12345678901234567890+23:59");
	cairn_buf_clear(&b);
	must(cairn_base64_encode(&b, "\0\xff\x80 salt and pepper", 19), "base64");
	seed("base64", "b", NULL, 0, b.data, b.len);
	seed_str("base64", "pad1", "YWI=");
	seed_str("base64", "pad2", "YQ==");
	cairn_buf_release(&b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	tree_seeds();
	snapshot_seeds();
	index_seeds();
	config_seeds();
	keyfile_seeds();
	pack_and_blob_seeds();
	text_seeds();
	return 0;
}
