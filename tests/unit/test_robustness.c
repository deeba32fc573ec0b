/* test_robustness.c: every parser of untrusted bytes, fed thousands of
 * seeded mutations of valid inputs (issue #2 point 5: bad input gets a clear
 * error and loses nothing).
 *
 * What reaches these parsers comes from a repository folder or a network
 * backend that cairn does not control: tree blobs, snapshot, index and
 * config JSON, key files, pack headers, sealed blobs, zstd frames, the
 * "unpacked" encoding, Go-quoted names, RFC 3339 times and base64.  Each test
 * builds valid seeds with the library's own encoders, then mutates them with
 * a deterministic generator (bit flips; bytes replaced by 0, 0xff, quotes,
 * backslashes and brackets; truncation; duplicated and deleted spans; huge,
 * negative and fractional numbers; deep nesting; bytes that are not UTF-8;
 * "..", "a/b", NUL bytes and \u0000 escapes inside strings; ids of the wrong
 * length).  Every call must either succeed or return a negative cairn code
 * from the set that parser documents, with a non-empty message; under `make
 * unit-san` the same run also proves there is no crash, leak or undefined
 * behaviour.  Accepted mutants must still satisfy the parser's invariants
 * (a decoded tree re-encodes and decodes again, no node name can leave the
 * restore target, pack entries add up to the pack size, an index that fails
 * reports no blob at all).  Data behind a MAC is also tampered with *and
 * resealed* under the right key, so the checks after the MAC see hostile
 * plaintext too.  Explicit cases pin the promises restore relies on: a node
 * named ".", "..", "", "a/b", "a\0b" or Go-quoted "\x2f" is refused with a
 * message naming it, a file with "content":null is refused, a truncated
 * pack is refused, an index entry shorter than 32 bytes is refused.
 *
 * Iteration counts are scaled down under AddressSanitizer so that the plain
 * binary runs in about a second and the sanitizer build in a few seconds.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairn/cairn.h>
#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW 2
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW 2
#endif
#endif
#ifndef SLOW
#define SLOW 1
#endif
#define ITERS(n) ((unsigned)((n) / SLOW))

/* ---- deterministic randomness --------------------------------------------- */

typedef struct rng {
	uint64_t s;
} rng;

static uint64_t rnd(rng *g)
{
	/* xorshift64*: fast, and the same sequence on every machine. */
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545F4914F6CDD1DULL;
}

static size_t below(rng *g, size_t n)
{
	return n ? (size_t)(rnd(g) % n) : 0;
}

static void fill_random(rng *g, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rnd(g);
}

/* ---- buffers ---------------------------------------------------------------- */

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "setup failed: %s: %s\n", what, cairn_error_message());
		exit(2);
	}
}

static void put(cairn_buf *b, const void *p, size_t n)
{
	must(cairn_buf_append(b, p, n), "append");
}

static void insert_at(cairn_buf *b, size_t pos, const void *p, size_t n)
{
	if (pos > b->len)
		pos = b->len;
	must(cairn_buf_reserve(b, n), "reserve");
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	memcpy(b->data + pos, p, n);
	b->len += n;
}

static void erase_at(cairn_buf *b, size_t pos, size_t n)
{
	if (pos >= b->len)
		return;
	if (n > b->len - pos)
		n = b->len - pos;
	memmove(b->data + pos, b->data + pos + n, b->len - pos - n);
	b->len -= n;
}

static void copy_to(cairn_buf *dst, const void *p, size_t n)
{
	cairn_buf_clear(dst);
	put(dst, p, n);
}

/* ---- the mutator ------------------------------------------------------------ */

static const unsigned char interesting_bytes[] = {
	0x00, 0xff, '"', '\\', '{', '}', '[', ']', ',', ':', 0x80, 0xc0, 0xfe, '0', '9', '-',
	'.', 'e', ' ', '\n', 0x01, 0x1f, 0x7f, '/', 'x', 'u', 0x02, 0x28, 0xb5,
};

/* Text inserted into or substituted for parts of the input (with explicit
 * lengths: a few binary tokens hold NUL bytes). */
#define T(s) { s, sizeof(s) - 1 }
static const struct token {
	const char *s;
	size_t n;
} tokens[] = {
	T("99999999999999999999"), T("-1"), T("-0"), T("1e400"), T("-1e400"), T("1.5"), T("0.0"),
	T("1e2"), T("4294967295"), T("4294967296"), T("18446744073709551615"),
	T("18446744073709551616"), T("9223372036854775807"), T("-9223372036854775808"), T("00"),
	T("0x10"), T("null"), T("true"), T("false"), T("{}"), T("[]"), T("\"\""), T("{\"a\":"),
	T("[null]"), T(","), T(":"), T("\""), T("\\"), T("\"..\""), T("\".\""), T("\"a/b\""),
	T("\"/\""), T(".."), T("a/b"), T("\\u0000"), T("\\\\x2f"), T("\\\\x00"), T("\\u002f"),
	T("\\/"), T("\\ud800"), T("\\udc00x"), T("\\ud83d\\ude00"), T("\\\\U0010ffff"),
	T("\\\\377"), T("\\\\400"), T("\\\\"), T("\\'"), T("\xff\xfe"), T("\xc0\xaf"),
	T("\xed\xa0\x80"), T("\xf4\x90\x80\x80"), T("\xe2\x82"), T("0123"),
	T("01234567890123456789012345678901234567890123456789012345678901a"),
	T("01234567890123456789012345678901234567890123456789012345678901abc"),
	T("0123456789012345678901234567890123456789012345678901234567890abg"),
	T("2024-02-30T00:00:00Z"), T("0000-01-01T00:00:00Z"),
	T("9999-12-31T23:59:59.999999999999+23:59"), T("\"type\":\"dir\""), T("\"content\":null"),
	T("\"name\":\"..\""), T("\"length\":5"), T("\"uncompressed_length\":0"),
	T("\"nodes\":null"), T("\"tree\":null"), T("\"version\":3"), T("===="), T("A==="),
	T("AA=="), T("\t\r\n "), T("\x01\x00\x00\x00"), T("\xff\xff\xff\xff"),
	T("\x00\x00\x00\x80"), T("\x04"), T("\x03"), T("\x02"), T("\x00"), T("\x28\xb5\x2f\xfd"),
};
#undef T
#define N_TOKENS (sizeof(tokens) / sizeof(tokens[0]))

/* Deep nesting, made on first use: "[[[[...". */
static char deep_open[6000];

static const char *pick_token(rng *g, size_t *len)
{
	size_t k = below(g, N_TOKENS + 2);

	if (k >= N_TOKENS) {
		if (!deep_open[0])
			memset(deep_open, '[', sizeof(deep_open));
		*len = k == N_TOKENS ? 100 + below(g, 400) : sizeof(deep_open);
		return deep_open;
	}
	*len = tokens[k].n;
	return tokens[k].s;
}

/* Apply 1..4 random edits to a copy of the seed. */
static void mutate(cairn_buf *out, const void *seed, size_t seed_len, rng *g)
{
	unsigned edits = 1 + (unsigned)below(g, 4);

	copy_to(out, seed, seed_len);
	for (unsigned e = 0; e < edits; e++) {
		size_t len = out->len, pos = below(g, len + 1), n, tl;
		const char *tok;

		switch (below(g, 10)) {
		case 0: /* flip a bit */
			if (len)
				out->data[below(g, len)] ^= (unsigned char)(1u << below(g, 8));
			break;
		case 1: /* replace a byte with an interesting one */
			if (len)
				out->data[below(g, len)] =
					interesting_bytes[below(g, sizeof(interesting_bytes))];
			break;
		case 2: /* truncate */
			out->len = below(g, len + 1);
			break;
		case 3: { /* duplicate a span */
			size_t from = below(g, len + 1);
			unsigned char tmp[256];
			n = below(g, len - from + 1);
			if (n > sizeof(tmp))
				n = sizeof(tmp);
			memcpy(tmp, out->data + from, n);
			insert_at(out, pos, tmp, n);
			break;
		}
		case 4: /* insert a token */
			tok = pick_token(g, &tl);
			insert_at(out, pos, tok, tl);
			break;
		case 5: /* replace a short span by a token */
			tok = pick_token(g, &tl);
			erase_at(out, pos, 1 + below(g, 8));
			insert_at(out, pos, tok, tl);
			break;
		case 6: /* delete a span */
			erase_at(out, pos, 1 + below(g, 16));
			break;
		case 7: /* swap two bytes */
			if (len) {
				size_t a = below(g, len), b = below(g, len);
				unsigned char c = out->data[a];
				out->data[a] = out->data[b];
				out->data[b] = c;
			}
			break;
		case 8: { /* replace a number by a token */
			size_t i = pos, j;
			while (i < len && (out->data[i] < '0' || out->data[i] > '9'))
				i++;
			if (i >= len)
				break;
			for (j = i; j < len && out->data[j] >= '0' && out->data[j] <= '9'; j++)
				;
			tok = pick_token(g, &tl);
			erase_at(out, i, j - i);
			insert_at(out, i, tok, tl);
			break;
		}
		default: { /* replace the contents of a string by a token */
			size_t i = pos, j;
			while (i < len && out->data[i] != '"')
				i++;
			for (j = i + 1; j < len && out->data[j] != '"'; j++)
				;
			if (j >= len)
				break;
			tok = pick_token(g, &tl);
			erase_at(out, i + 1, j - i - 1);
			insert_at(out, i + 1, tok, tl);
			break;
		}
		}
	}
}

/* ---- verdicts --------------------------------------------------------------- */

#define BIT(code) (1u << (unsigned)-(code))

typedef struct verdicts {
	const char *what;
	unsigned allowed; /* BIT(code) of each acceptable error code */
	unsigned runs, ok, reported;
	unsigned codes[16];
} verdicts;

static void show_input(const void *p, size_t len)
{
	const unsigned char *s = p;

	fprintf(stderr, "    input (%zu bytes): \"", len);
	for (size_t i = 0; i < len && i < 200; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
			fputc(s[i], stderr);
		else
			fprintf(stderr, "\\x%02x", s[i]);
	}
	fprintf(stderr, "%s\"\n", len > 200 ? "..." : "");
}

static void problem(verdicts *v, const void *in, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A failed expectation about one input: counted always, shown five times. */
static void problem(verdicts *v, const void *in, size_t len, const char *fmt, ...)
{
	va_list ap;

	unit_failures++;
	if (v->reported++ < 5) {
		fprintf(stderr, "%s: %s: ", unit_current, v->what);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, " (message: '%s')\n", cairn_error_message());
		show_input(in, len);
	}
}

/* Record one result; 1 when the call succeeded. */
static int judge(verdicts *v, int r, const void *in, size_t len)
{
	v->runs++;
	if (r >= 0) {
		v->ok++;
		return 1;
	}
	if (r < CAIRN_ENOSPC) {
		problem(v, in, len, "returned %d, not a cairn error code", r);
		return 0;
	}
	v->codes[-r]++;
	if (!(v->allowed & BIT(r)))
		problem(v, in, len, "returned unexpected code %d", r);
	else if (!cairn_error_message()[0])
		problem(v, in, len, "failed (%d) with an empty message", r);
	return 0;
}

static void summary(const verdicts *v)
{
	printf("  %s: %u inputs, %u accepted;", v->what, v->runs, v->ok);
	for (int c = 1; c < 16; c++)
		if (v->codes[c])
			printf(" %s x%u;", cairn_strerror(-c), v->codes[c]);
	printf("\n");
	/* The mutator must actually reach both outcomes to prove anything. */
	CHECK(v->runs > v->ok);
}

/* ---- trees ------------------------------------------------------------------ */

static cairn_id id_n(unsigned n)
{
	cairn_id id;
	for (int i = 0; i < CAIRN_ID_SIZE; i++)
		id.bytes[i] = (unsigned char)(n * 31 + (unsigned)i * 7);
	return id;
}

static void add_node(cairn_tree *t, const char *name, cairn_node_type type)
{
	cairn_node n = CAIRN_NODE_INIT;
	cairn_id id;

	n.name = strdup(name);
	n.type = type;
	n.mode = type == CAIRN_NODE_DIR ? (CAIRN_GOMODE_DIR | 0755) : 0644;
	n.mtime.sec = 1700000000;
	n.mtime.nsec = 123456789;
	n.atime = n.mtime;
	n.ctime.sec = 1700000001;
	n.uid = 1000;
	n.gid = 100;
	n.user = strdup("alice");
	n.group = strdup("users");
	n.inode = 4242;
	n.device_id = 65024;
	n.links = 1;
	if (type == CAIRN_NODE_FILE) {
		n.size = 5000;
		id = id_n(1);
		must(cairn_node_add_content(&n, &id), "content");
		id = id_n(2);
		must(cairn_node_add_content(&n, &id), "content");
		must(cairn_node_add_xattr(&n, "user.bin", "\x00\xff\x80", 3), "xattr");
		must(cairn_node_add_xattr(&n, "user.empty", NULL, 0), "xattr");
	} else if (type == CAIRN_NODE_DIR) {
		n.has_subtree = 1;
		n.subtree = id_n(3);
	} else if (type == CAIRN_NODE_SYMLINK) {
		n.linktarget = strdup("../target \xc3\xa9");
	} else if (type == CAIRN_NODE_CHARDEV) {
		n.device = 259;
	}
	must(cairn_tree_add(t, &n), "tree add");
}

/* Valid trees: one from the encoder with every node type and odd names, the
 * empty tree, and a hand-written one with nulls, unknown keys and nesting. */
static void tree_seeds(cairn_buf seeds[3])
{
	cairn_tree t = CAIRN_TREE_INIT;
	static const char hand[] =
		"{ \"nodes\" : [ {\"name\":\"x\\\\x01y\",\"type\":\"symlink\",\"linktarget_raw\":\"YWJj/w==\","
		"\"generic_attributes\":{\"a\":[1,2.5e3,-0.1,true,false,null,\"s\",{\"b\":[]}]},"
		"\"mtime\":null,\"uid\":null,\"content\":null,\"extended_attributes\":null},"
		"{\"name\":\"d\",\"type\":\"dir\",\"subtree\":\"" "0101010101010101010101010101010101010101010101010101010101010101"
		"\",\"content\":null,\"size\":18446744073709551615}],\n \"extra\":{\"k\":[[]]} }";

	add_node(&t, "plain.txt", CAIRN_NODE_FILE);
	add_node(&t, "sub", CAIRN_NODE_DIR);
	add_node(&t, "link", CAIRN_NODE_SYMLINK);
	add_node(&t, "pipe", CAIRN_NODE_FIFO);
	add_node(&t, "tty", CAIRN_NODE_CHARDEV);
	add_node(&t, "odd\n\"q\\\x80\xc3\xa9<&>", CAIRN_NODE_FILE);
	must(cairn_tree_encode(&seeds[0], &t), "tree encode");
	cairn_tree_release(&t);
	copy_to(&seeds[1], "{\"nodes\":[]}\n", 13);
	copy_to(&seeds[2], hand, sizeof(hand) - 1);
}

/* What restore relies on in any tree the decoder returns. */
static int tree_is_sane(const cairn_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const cairn_node *n = &t->nodes[i];
		if (!n->name || cairn_node_name_check(n->name) < 0 || strchr(n->name, '/'))
			return 0;
		if ((unsigned)n->type > CAIRN_NODE_SOCKET)
			return 0;
		if (n->type == CAIRN_NODE_DIR && !n->has_subtree)
			return 0;
		if (n->n_content && !n->content)
			return 0;
		if (i && strcmp(t->nodes[i - 1].name, n->name) >= 0)
			return 0;
	}
	return 1;
}

static void test_tree_mutations(void)
{
	cairn_buf seeds[3] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_buf m = CAIRN_BUF_INIT, again = CAIRN_BUF_INIT;
	verdicts v = { "cairn_tree_decode", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	rng g = { 0x7265650001ULL };

	tree_seeds(seeds);
	for (int s = 0; s < 3; s++) {
		cairn_tree t = CAIRN_TREE_INIT;
		CHECK_OK(cairn_tree_decode(&t, (const char *)seeds[s].data, seeds[s].len));
		cairn_tree_release(&t);
	}
	for (unsigned i = 0; i < ITERS(30000); i++) {
		const cairn_buf *seed = &seeds[i % 5 < 3 ? 0 : i % 5 == 3 ? 1 : 2];
		cairn_tree t = CAIRN_TREE_INIT, t2 = CAIRN_TREE_INIT;

		mutate(&m, seed->data, seed->len, &g);
		cairn_error_clear();
		if (!judge(&v, cairn_tree_decode(&t, (const char *)m.data, m.len), m.data, m.len)) {
			if (t.n || t.nodes)
				problem(&v, m.data, m.len, "failed but filled the tree (%d nodes)", (int)t.n);
			continue;
		}
		if (!tree_is_sane(&t))
			problem(&v, m.data, m.len, "accepted a tree restore must not see (%d)", 0);
		/* Whatever was accepted can be written back and read again. */
		if (cairn_tree_encode(&again, &t) < 0)
			problem(&v, m.data, m.len, "accepted a tree that does not re-encode (%d)", 0);
		else if (cairn_tree_decode(&t2, (const char *)again.data, again.len) < 0 || t2.n != t.n)
			problem(&v, again.data, again.len, "re-encoded tree does not decode (%d)", 0);
		cairn_tree_release(&t);
		cairn_tree_release(&t2);
	}
	summary(&v);
	for (int s = 0; s < 3; s++)
		cairn_buf_release(&seeds[s]);
	cairn_buf_release(&m);
	cairn_buf_release(&again);
}

/* Every cut of a valid tree before its closing brace is refused. */
static void test_tree_truncated(void)
{
	cairn_buf seeds[3] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	verdicts v = { "cairn_tree_decode (truncated)", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };

	tree_seeds(seeds);
	for (int s = 0; s < 3; s++) {
		const char *json = (const char *)seeds[s].data;
		size_t end = seeds[s].len;
		while (end && json[end - 1] != '}')
			end--;
		for (size_t cut = 0; cut < end; cut++) {
			cairn_tree t = CAIRN_TREE_INIT;
			cairn_error_clear();
			if (judge(&v, cairn_tree_decode(&t, json, cut), json, cut))
				problem(&v, json, cut, "accepted a truncated tree (%d)", 0);
			cairn_tree_release(&t);
		}
		cairn_buf_release(&seeds[s]);
	}
	summary(&v);
	CHECK_INT(v.ok, 0);
}

/* Names restore must never see: each is refused, with a message that shows
 * the name (as restic's Go quoting shows it). */
static void test_tree_hostile_names(void)
{
	static const struct {
		const char *json_name; /* the JSON string literal's contents */
		const char *shown;     /* must appear in the message */
	} cases[] = {
		{ "..", "'..'" },
		{ ".", "'.'" },
		{ "", "''" },
		{ "a/b", "'a/b'" },
		{ "/", "'/'" },
		{ "/etc", "'/etc'" },
		{ "../../etc", "'../../etc'" },
		{ "a\\/b", "'a/b'" },          /* JSON escape of '/' */
		{ "a\\u002fb", "'a/b'" },      /* JSON \u escape of '/' */
		{ "a\\\\x2fb", "'a/b'" },      /* Go \x2f: unquotes to '/' */
		{ "\\\\x2f", "'/'" },
		{ "a\\\\057b", "'a/b'" },      /* Go octal escape of '/' */
		{ "a\\\\u002fb", "'a/b'" },    /* Go \u escape of '/' */
		{ "\\\\x2e\\\\x2e", "'..'" },  /* Go-quoted ".." */
		{ "\\\\056", "'.'" },
		{ "a\\u0000b", "a\\x00b" },     /* NUL from a JSON escape */
		{ "a\\\\x00b", "a\\\\x00b" },   /* NUL from a Go escape (shown still quoted) */
		{ "a\\\\000b", "a\\\\000b" },
		{ "\\u0000", "\\x00" },
	};
	char json[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int type = 0; type < 2; type++) {
			cairn_tree t = CAIRN_TREE_INIT;
			int r;

			snprintf(json, sizeof(json),
				"{\"nodes\":[{\"name\":\"ok\",\"type\":\"file\",\"content\":[]},"
				"{\"name\":\"%s\",\"type\":\"%s\",\"content\":%s}]}\n", cases[i].json_name,
				type ? "dir" : "file",
				type ? "null,\"subtree\":\"0202020202020202020202020202020202020202020202020202020202020202\""
				     : "[]");
			cairn_error_clear();
			r = cairn_tree_decode(&t, json, strlen(json));
			if (r != CAIRN_ECORRUPT && r != CAIRN_EINVAL) {
				unit_failures++;
				fprintf(stderr, "%s: name \"%s\": decode returned %d\n", unit_current,
					cases[i].json_name, r);
			} else if (!strstr(cairn_error_message(), cases[i].shown)) {
				unit_failures++;
				fprintf(stderr, "%s: name \"%s\": message '%s' does not show %s\n",
					unit_current, cases[i].json_name, cairn_error_message(), cases[i].shown);
			}
			CHECK(t.n == 0 && t.nodes == NULL);
			cairn_tree_release(&t);
		}
	}
	/* A missing name is an empty one. */
	{
		static const char nameless[] = "{\"nodes\":[{\"type\":\"file\",\"content\":[]}]}";
		cairn_tree t = CAIRN_TREE_INIT;
		CHECK_INT(cairn_tree_decode(&t, nameless, sizeof(nameless) - 1), CAIRN_ECORRUPT);
		CHECK(strstr(cairn_error_message(), "empty") != NULL);
	}
	/* cairn_node_name_check agrees for the C-string cases. */
	CHECK_INT(cairn_node_name_check(".."), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "'..'") != NULL);
	CHECK_INT(cairn_node_name_check("."), CAIRN_ECORRUPT);
	CHECK_INT(cairn_node_name_check(""), CAIRN_ECORRUPT);
	CHECK_INT(cairn_node_name_check("x/"), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "'x/'") != NULL);
	CHECK_OK(cairn_node_name_check("...")); /* only "." and ".." are special */
	CHECK_OK(cairn_node_name_check(".hidden"));
}

/* Node shapes restore cannot act on safely are refused, naming the node. */
static void test_tree_bad_nodes(void)
{
	static const struct {
		const char *json;
		const char *shown;
	} cases[] = {
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":null}]}", "'f'" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\"}]}", "'f'" },
		{ "{\"nodes\":[{\"name\":\"d\",\"type\":\"dir\",\"content\":null}]}", "'d'" },
		{ "{\"nodes\":[{\"name\":\"d\",\"type\":\"dir\",\"subtree\":null}]}", "'d'" },
		{ "{\"nodes\":[{\"name\":\"w\",\"type\":\"whiteout\",\"content\":null}]}", "'w'" },
		{ "{\"nodes\":[{\"name\":\"t\",\"content\":null}]}", "'t'" },
		{ "{\"nodes\":[{\"name\":\"s\",\"type\":\"symlink\",\"linktarget_raw\":\"YQBi\"}]}", "'s'" },
		{ "{\"nodes\":[{\"name\":\"a\",\"type\":\"fifo\"},{\"name\":\"a\",\"type\":\"fifo\"}]}", "'a'" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[\"0123\"]}]}", "content" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[null]}]}", "null" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"size\":-1}]}", "size" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"size\":18446744073709551616}]}", "size" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"uid\":4294967296}]}", "uid" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"mode\":1.5}]}", "mode" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"mtime\":\"yesterday\"}]}", "mtime" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"user\":\"a\\u0000b\"}]}", "user" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],"
		  "\"extended_attributes\":[{\"value\":\"AA==\"}]}]}", "extended attribute" },
		{ "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],"
		  "\"extended_attributes\":[{\"name\":\"user.x\",\"value\":\"A\"}]}]}", "extended attribute" },
		{ "{\"nodes\":[null]}", "null" },
		{ "{\"nodes\":[]} x", "after" },
		{ "{\"nodes\":[],}", "offset" },
		{ "[]", "offset" },
		{ "", "offset" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_tree t = CAIRN_TREE_INIT;
		int r;

		cairn_error_clear();
		r = cairn_tree_decode(&t, cases[i].json, strlen(cases[i].json));
		if (r != CAIRN_ECORRUPT || !strstr(cairn_error_message(), cases[i].shown)) {
			unit_failures++;
			fprintf(stderr, "%s: %s: got %d '%s', want ECORRUPT mentioning %s\n", unit_current,
				cases[i].json, r, cairn_error_message(), cases[i].shown);
		}
		cairn_tree_release(&t);
	}
}

/* Nesting far beyond any real tree, in skipped values, stays bounded. */
static void test_tree_deep_nesting(void)
{
	enum { DEPTH = 100000 };
	cairn_buf b = CAIRN_BUF_INIT;
	cairn_tree t = CAIRN_TREE_INIT;

	must(cairn_buf_puts(&b, "{\"nodes\":[],\"x\":"), "puts");
	for (int i = 0; i < DEPTH; i++)
		put(&b, "[", 1);
	for (int i = 0; i < DEPTH; i++)
		put(&b, "]", 1);
	put(&b, "}", 1);
	CHECK_INT(cairn_tree_decode(&t, (const char *)b.data, b.len), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "deep") != NULL);
	cairn_buf_clear(&b);
	must(cairn_buf_puts(&b, "{\"nodes\":[{\"name\":\"f\",\"type\":\"file\",\"content\":[],\"x\":"), "puts");
	for (int i = 0; i < DEPTH; i++)
		put(&b, "{\"a\":", 5);
	CHECK_INT(cairn_tree_decode(&t, (const char *)b.data, b.len), CAIRN_ECORRUPT);
	cairn_buf_release(&b);
	cairn_tree_release(&t);
}

/* ---- snapshots -------------------------------------------------------------- */

static void snapshot_seeds(cairn_buf seeds[2])
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	static const char restic[] =
		"{\"time\":\"2026-11-30T18:50:54.255817221+01:00\",\"tree\":"
		"\"0404040404040404040404040404040404040404040404040404040404040404\","
		"\"paths\":[\"/srv\"],\"hostname\":\"vm\",\"username\":\"root\",\"uid\":0,\"gid\":0,"
		"\"program_version\":\"restic 0.16.0\",\"summary\":{\"files_new\":1,\"x\":[1.5,-2e9,null]},"
		"\"parent\":null,\"excludes\":null}";

	s.time.sec = 1764528654;
	s.time.nsec = 255817221;
	s.time_offset_sec = 3600;
	s.tree = id_n(4);
	s.has_parent = 1;
	s.parent = id_n(5);
	s.has_original = 1;
	s.original = id_n(6);
	must(cairn_strlist_add(&s.paths, &s.n_paths, "/home/alice"), "paths");
	must(cairn_strlist_add(&s.paths, &s.n_paths, "/etc/\xc3\xa9<&>"), "paths");
	must(cairn_strlist_add(&s.tags, &s.n_tags, "daily"), "tags");
	must(cairn_strlist_add(&s.excludes, &s.n_excludes, "*.tmp"), "excludes");
	s.hostname = strdup("host");
	s.username = strdup("alice");
	s.uid = 1000;
	s.gid = 1000;
	must(cairn_snapshot_encode(&seeds[0], &s), "snapshot encode");
	cairn_snapshot_release(&s);
	copy_to(&seeds[1], restic, sizeof(restic) - 1);
}

static void test_snapshot_mutations(void)
{
	cairn_buf seeds[2] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_buf m = CAIRN_BUF_INIT, again = CAIRN_BUF_INIT;
	verdicts v = { "cairn_snapshot_decode", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	rng g = { 0x736e6170ULL };

	snapshot_seeds(seeds);
	for (unsigned i = 0; i < ITERS(20000); i++) {
		const cairn_buf *seed = &seeds[i & 1];
		cairn_snapshot s = CAIRN_SNAPSHOT_INIT, s2 = CAIRN_SNAPSHOT_INIT;

		mutate(&m, seed->data, seed->len, &g);
		cairn_error_clear();
		if (!judge(&v, cairn_snapshot_decode(&s, (const char *)m.data, m.len), m.data, m.len))
			continue;
		if (s.time.nsec < 0 || s.time.nsec > 999999999)
			problem(&v, m.data, m.len, "accepted a time with nsec out of range (%d)", s.time.nsec);
		/* Every decoded snapshot is written back and read again alike. */
		if (cairn_snapshot_encode(&again, &s) < 0 ||
		    cairn_snapshot_decode(&s2, (const char *)again.data, again.len) < 0)
			problem(&v, m.data, m.len, "accepted snapshot does not round-trip (%d)", 0);
		else if (!cairn_id_equal(&s.tree, &s2.tree) || cairn_time_compare(s.time, s2.time) ||
			 s.n_paths != s2.n_paths || s.n_tags != s2.n_tags)
			problem(&v, m.data, m.len, "re-encoded snapshot differs (%d)", 0);
		cairn_snapshot_release(&s);
		cairn_snapshot_release(&s2);
	}
	summary(&v);
	for (int i = 0; i < 2; i++)
		cairn_buf_release(&seeds[i]);
	cairn_buf_release(&m);
	cairn_buf_release(&again);
}

static void test_snapshot_bad_documents(void)
{
	static const char *const bad[] = {
		"",
		"[]",
		"null",
		"{}",
		"{\"time\":\"2024-01-01T00:00:00Z\"}",
		"{\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\"}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":null}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"04040404\"}",
		"{\"time\":\"2024-02-30T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\"}",
		"{\"time\":12,\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\"}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"uid\":-1}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"gid\":4294967296}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"uid\":99999999999999999999}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"paths\":[1]}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"paths\":[\"a\\u0000b\"]}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"tags\":\"x\"}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\",\"hostname\":\"\xff\"}",
		"{\"time\":\"2024-01-01T00:00:00Z\",\"tree\":\"0404040404040404040404040404040404040404040404040404040404040404\"} {}",
	};
	cairn_buf deep = CAIRN_BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
		int r;
		cairn_error_clear();
		r = cairn_snapshot_decode(&s, bad[i], strlen(bad[i]));
		if (r != CAIRN_ECORRUPT || !cairn_error_message()[0]) {
			unit_failures++;
			fprintf(stderr, "%s: %s: got %d '%s'\n", unit_current, bad[i], r, cairn_error_message());
		}
		cairn_snapshot_release(&s);
	}
	/* jansson limits nesting; the document is refused, not a stack overflow. */
	for (int i = 0; i < 100000; i++)
		put(&deep, "[", 1);
	for (int i = 0; i < 100000; i++)
		put(&deep, "]", 1);
	{
		cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
		CHECK_INT(cairn_snapshot_decode(&s, (const char *)deep.data, deep.len), CAIRN_ECORRUPT);
	}
	cairn_buf_release(&deep);
}

/* ---- index files ------------------------------------------------------------ */

struct index_seen {
	unsigned calls, bad;
};

static int count_entry(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	struct index_seen *seen = payload;
	(void)pack;
	seen->calls++;
	if (e->length < 32 || (e->type != CAIRN_BLOB_DATA && e->type != CAIRN_BLOB_TREE))
		seen->bad++;
	return 0;
}

static void index_seeds(cairn_buf seeds[3])
{
	cairn_index_builder *b = NULL;
	cairn_pack_entry e[3];
	cairn_id pack;
	static const char legacy[] =
		"[{\"id\":\"0707070707070707070707070707070707070707070707070707070707070707\",\"blobs\":["
		"{\"id\":\"0808080808080808080808080808080808080808080808080808080808080808\",\"type\":\"data\","
		"\"offset\":0,\"length\":100},"
		"{\"id\":\"0909090909090909090909090909090909090909090909090909090909090909\",\"type\":\"tree\","
		"\"offset\":100,\"length\":40,\"uncompressed_length\":null}]}]";
	static const char superseding[] =
		"{\"supersedes\":[\"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\"],"
		"\"packs\":[{\"id\":\"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b\","
		"\"blobs\":[{\"id\":\"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c\","
		"\"type\":\"data\",\"offset\":4294967295,\"length\":32,\"uncompressed_length\":4294967295,"
		"\"extra\":[{}]}]}],\"unknown\":true}\n";

	must(cairn_index_builder_new(&b), "builder");
	memset(e, 0, sizeof(e));
	for (int i = 0; i < 3; i++) {
		e[i].id = id_n(10 + (unsigned)i);
		e[i].type = i == 2 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA;
		e[i].offset = (uint32_t)(i * 1000);
		e[i].length = 1000;
		e[i].uncompressed_length = i == 1 ? 0 : 4000;
	}
	pack = id_n(20);
	must(cairn_index_builder_add_pack(b, &pack, e, 3), "builder add");
	pack = id_n(21);
	must(cairn_index_builder_add_pack(b, &pack, e + 2, 1), "builder add");
	must(cairn_index_builder_encode(&seeds[0], b), "builder encode");
	cairn_index_builder_free(b);
	copy_to(&seeds[1], legacy, sizeof(legacy) - 1);
	copy_to(&seeds[2], superseding, sizeof(superseding) - 1);
}

static void test_index_mutations(void)
{
	cairn_buf seeds[3] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_buf m = CAIRN_BUF_INIT;
	verdicts v = { "cairn_index_parse_json", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	rng g = { 0x696e646578ULL };

	index_seeds(seeds);
	for (unsigned i = 0; i < ITERS(20000); i++) {
		const cairn_buf *seed = &seeds[i % 3];
		struct index_seen seen = { 0, 0 };
		int r;

		mutate(&m, seed->data, seed->len, &g);
		cairn_error_clear();
		r = cairn_index_parse_json((const char *)m.data, m.len, count_entry, &seen);
		/* A damaged index file must add nothing: validation comes first. */
		if (!judge(&v, r, m.data, m.len) && seen.calls)
			problem(&v, m.data, m.len, "failed (%d) after reporting blobs", r);
		if (seen.bad)
			problem(&v, m.data, m.len, "reported an impossible blob (%d)", (int)seen.bad);
	}
	summary(&v);
	for (int i = 0; i < 3; i++)
		cairn_buf_release(&seeds[i]);
	cairn_buf_release(&m);
}

static int stop_after_one(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	(void)pack;
	(void)e;
	++*(unsigned *)payload;
	return 7;
}

/* Copy `tpl`, replacing '@', '#' and '~' by a 64-digit id, its first 63
 * digits, and 64 characters one of which is not hex. */
static void expand_ids(char *out, size_t size, const char *tpl, const char *hex)
{
	size_t o = 0;

	for (; *tpl && o + 65 < size; tpl++) {
		if (*tpl == '@' || *tpl == '#' || *tpl == '~') {
			memcpy(out + o, hex, 64);
			if (*tpl == '~')
				out[o + 30] = 'g';
			o += *tpl == '#' ? 63 : 64;
		} else {
			out[o++] = *tpl;
		}
	}
	out[o] = '\0';
}

static void test_index_bad_entries(void)
{
	static const struct {
		const char *blob; /* one blob object: @ is a good id, # one of 63
				   * digits, ~ one with a 'g' */
		int ok;
	} cases[] = {
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":5}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":31}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":32}", 1 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":-40}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":40.5}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":\"40\"}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":4294967296}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0,\"length\":99999999999999999999}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":-1,\"length\":40}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"length\":40}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\",\"offset\":0}", 0 },
		{ "{\"id\":\"@\",\"type\":\"Data\",\"offset\":0,\"length\":40}", 0 },
		{ "{\"id\":\"@\",\"type\":\"data\\u0000\",\"offset\":0,\"length\":40}", 0 },
		{ "{\"id\":\"@\",\"type\":null,\"offset\":0,\"length\":40}", 0 },
		{ "{\"id\":\"@\",\"type\":\"tree\",\"offset\":0,\"length\":40,\"uncompressed_length\":-1}", 0 },
		{ "{\"id\":\"@\",\"type\":\"tree\",\"offset\":0,\"length\":40,\"uncompressed_length\":null}", 1 },
		{ "{\"id\":\"#\",\"type\":\"data\",\"offset\":0,\"length\":40}", 0 },
		{ "{\"id\":\"@0\",\"type\":\"data\",\"offset\":0,\"length\":40}", 0 },
		{ "{\"id\":\"~\",\"type\":\"data\",\"offset\":0,\"length\":40}", 0 },
		{ "{\"id\":null,\"type\":\"data\",\"offset\":0,\"length\":40}", 0 },
		{ "[\"@\"]", 0 },
	};
	char hex[CAIRN_ID_HEX_SIZE], blob[512], json[1024];
	cairn_id id = id_n(30);

	cairn_id_to_hex(hex, &id);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned calls = 0;
		int r;
		expand_ids(blob, sizeof(blob), cases[i].blob, hex);
		/* A valid first blob: it must not be reported when the second is bad. */
		snprintf(json, sizeof(json),
			"{\"packs\":[{\"id\":\"%s\",\"blobs\":[{\"id\":\"%s\",\"type\":\"tree\",\"offset\":0,"
			"\"length\":33},%s]}]}", hex, hex, blob);
		cairn_error_clear();
		r = cairn_index_parse_json(json, strlen(json), stop_after_one, &calls);
		/* The message names the blob, or says the JSON itself is bad. */
		if (cases[i].ok ? (r != 7 || calls != 1)
				: (r != CAIRN_ECORRUPT || calls != 0 ||
				   (!strstr(cairn_error_message(), "pack 0 blob 1") &&
				    !strstr(cairn_error_message(), "not valid JSON")))) {
			unit_failures++;
			fprintf(stderr, "%s: %s: got %d after %u blobs, '%s'\n", unit_current, json, r, calls,
				cairn_error_message());
		}
	}
	{
		static const char *const docs[] = {
			"", "null", "1", "\"x\"", "{\"packs\":{}}", "{\"packs\":[1]}", "{\"packs\":[{\"blobs\":[]}]}",
			"{\"packs\":[{\"id\":\"ab\",\"blobs\":[]}]}", "{\"supersedes\":[\"ab\"]}",
			"{\"supersedes\":{}}", "{\"packs\":[]} []",
		};
		for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
			unsigned calls = 0;
			cairn_error_clear();
			CHECK_INT(cairn_index_parse_json(docs[i], strlen(docs[i]), stop_after_one, &calls),
				CAIRN_ECORRUPT);
			CHECK(cairn_error_message()[0] != '\0');
		}
	}
}

/* ---- config ----------------------------------------------------------------- */

static void test_config_mutations(void)
{
	cairn_config cfg = { 2, id_n(40), 0x3f0293f5a7f421ULL }, back;
	cairn_buf seeds[2] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT }, m = CAIRN_BUF_INIT;
	verdicts v = { "cairn_config_decode", BIT(CAIRN_ECORRUPT) | BIT(CAIRN_EUNSUPPORTED), 0, 0, 0,
		{ 0 } };
	rng g = { 0x636f6e666967ULL };
	static const char cfg_hand[] = "{ \"chunker_polynomial\" : \"003F0293F5A7F421\", \"x\":[{}], "
		"\"version\":1,\"id\":\"2828282828282828282828282828282828282828282828282828282828282828\" }";
	static const char *const cfg_bad[] = {
		"{\"version\":2,\"id\":\"2828\",\"chunker_polynomial\":\"1\"}",
		"{\"version\":2,\"id\":\"2828282828282828282828282828282828282828282828282828282828282828\","
		"\"chunker_polynomial\":\"10000000000000000\"}",
		"{\"version\":2,\"id\":\"2828282828282828282828282828282828282828282828282828282828282828\","
		"\"chunker_polynomial\":\"\"}",
		"{\"version\":2.0,\"id\":\"2828282828282828282828282828282828282828282828282828282828282828\","
		"\"chunker_polynomial\":\"1\"}",
		"{\"version\":\"2\"}", "[]", "", "{} {}",
	};

	must(cairn_config_encode(&seeds[0], &cfg), "config encode");
	copy_to(&seeds[1], cfg_hand, strlen(cfg_hand));
	CHECK_OK(cairn_config_decode(&back, (const char *)seeds[1].data, seeds[1].len));
	for (unsigned i = 0; i < ITERS(20000); i++) {
		mutate(&m, seeds[i & 1].data, seeds[i & 1].len, &g);
		memset(&back, 0, sizeof(back));
		cairn_error_clear();
		if (judge(&v, cairn_config_decode(&back, (const char *)m.data, m.len), m.data, m.len) &&
		    back.version != 1 && back.version != 2)
			problem(&v, m.data, m.len, "accepted version %d", (int)back.version);
	}
	summary(&v);
	CHECK_INT(cairn_config_decode(&back, "{\"version\":3}", 13), CAIRN_EUNSUPPORTED);
	CHECK(strstr(cairn_error_message(), "version 3") != NULL);
	for (size_t i = 0; i < sizeof(cfg_bad) / sizeof(cfg_bad[0]); i++) {
		cairn_error_clear();
		CHECK_INT(cairn_config_decode(&back, cfg_bad[i], strlen(cfg_bad[i])), CAIRN_ECORRUPT);
		CHECK(cairn_error_message()[0] != '\0');
	}
	for (int i = 0; i < 2; i++)
		cairn_buf_release(&seeds[i]);
	cairn_buf_release(&m);
}

/* ---- key files -------------------------------------------------------------- */

/* A key file whose sealed master-key JSON is `plain` (which need not be
 * valid): lets the parser behind the MAC see hostile input. */
static void keyfile_sealing(cairn_buf *out, const unsigned char salt[64], const cairn_key *user,
	const void *plain, size_t len)
{
	cairn_buf sealed = CAIRN_BUF_INIT;

	must(cairn_crypto_seal_buf(&sealed, user, plain, len), "seal");
	cairn_buf_clear(out);
	must(cairn_buf_puts(out, "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\""), "kf");
	must(cairn_base64_encode(out, salt, 64), "kf");
	must(cairn_buf_puts(out, "\",\"data\":\""), "kf");
	must(cairn_base64_encode(out, sealed.data, sealed.len), "kf");
	must(cairn_buf_puts(out, "\"}"), "kf");
	cairn_buf_release(&sealed);
}

static void test_keyfile_mutations(void)
{
	cairn_key master, got, user;
	cairn_buf kf = CAIRN_BUF_INIT, m = CAIRN_BUF_INIT, inner = CAIRN_BUF_INIT, mi = CAIRN_BUF_INIT;
	cairn_buf tmp = CAIRN_BUF_INIT;
	verdicts v = { "cairn_keyfile_open",
		BIT(CAIRN_ECORRUPT) | BIT(CAIRN_EUNSUPPORTED) | BIT(CAIRN_EAUTH) | BIT(CAIRN_EINVAL), 0, 0,
		0, { 0 } };
	verdicts vi = { "cairn_keyfile_open (resealed master key)", BIT(CAIRN_ECORRUPT), 0, 0, 0,
		{ 0 } };
	unsigned char salt[64];
	rng g = { 0x6b6579ULL };

	must(cairn_key_generate(&master), "key");
	must(cairn_keyfile_create(&kf, &master, "pw", 2, 16, 1, 1, "alice", "host"), "keyfile");
	CHECK_OK(cairn_keyfile_open(&got, (const char *)kf.data, kf.len, "pw", 2));
	CHECK(memcmp(&got, &master, sizeof(got)) == 0);
	CHECK_INT(cairn_keyfile_open(&got, (const char *)kf.data, kf.len, "pW", 2), CAIRN_EAUTH);

	for (unsigned i = 0; i < ITERS(12000); i++) {
		mutate(&m, kf.data, kf.len, &g);
		memset(&got, 0, sizeof(got));
		cairn_error_clear();
		/* The MAC makes a changed salt, data or parameter fail; whatever
		 * opens must be the master key itself. */
		if (judge(&v, cairn_keyfile_open(&got, (const char *)m.data, m.len, "pw", 2), m.data, m.len) &&
		    memcmp(&got, &master, sizeof(got)) != 0)
			problem(&v, m.data, m.len, "opened to a different key (%d)", 0);
	}
	summary(&v);

	/* Behind the MAC: the master key JSON itself, tampered and resealed. */
	fill_random(&g, salt, sizeof(salt));
	must(cairn_kdf_scrypt(&user, "pw", 2, salt, 64, 16, 1, 1), "kdf");
	must(cairn_buf_puts(&inner, "{\"mac\":{\"k\":\""), "json");
	must(cairn_base64_encode(&inner, master.mac_k, 16), "json");
	must(cairn_buf_puts(&inner, "\",\"r\":\""), "json");
	must(cairn_base64_encode(&inner, master.mac_r, 16), "json");
	must(cairn_buf_puts(&inner, "\"},\"encrypt\":\""), "json");
	must(cairn_base64_encode(&inner, master.encrypt, 32), "json");
	must(cairn_buf_puts(&inner, "\"}"), "json");
	keyfile_sealing(&kf, salt, &user, inner.data, inner.len);
	CHECK_OK(cairn_keyfile_open(&got, (const char *)kf.data, kf.len, "pw", 2));
	CHECK(memcmp(&got, &master, sizeof(got)) == 0);
	for (unsigned i = 0; i < ITERS(6000); i++) {
		mutate(&mi, inner.data, inner.len, &g);
		keyfile_sealing(&kf, salt, &user, mi.data, mi.len);
		cairn_error_clear();
		if (judge(&vi, cairn_keyfile_open(&got, (const char *)kf.data, kf.len, "pw", 2), mi.data,
			    mi.len) && !cairn_key_valid(&got))
			problem(&vi, mi.data, mi.len, "opened to an invalid key (%d)", 0);
	}
	summary(&vi);

	/* Parameters that would cost more than the scrypt memory cap are
	 * refused before any work, not attempted. */
	{
		static const char *const params[] = {
			"\"N\":4294967296,\"r\":1,\"p\":1", "\"N\":1073741824,\"r\":8,\"p\":1",
			"\"N\":16,\"r\":1,\"p\":1073741823", "\"N\":16,\"r\":4294967295,\"p\":4294967295",
			"\"N\":0,\"r\":1,\"p\":1", "\"N\":15,\"r\":1,\"p\":1", "\"N\":-16,\"r\":1,\"p\":1",
			"\"N\":16,\"r\":0,\"p\":1", "\"N\":16.0,\"r\":1,\"p\":1",
		};
		for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
			char *at;
			int r;
			cairn_buf_clear(&tmp);
			at = strstr((char *)cairn_buf_cstr(&kf), "\"N\":16,\"r\":1,\"p\":1");
			CHECK(at != NULL);
			if (!at)
				break;
			put(&tmp, kf.data, (size_t)(at - (char *)kf.data));
			must(cairn_buf_puts(&tmp, params[i]), "params");
			must(cairn_buf_puts(&tmp, at + strlen("\"N\":16,\"r\":1,\"p\":1")), "params");
			cairn_error_clear();
			r = cairn_keyfile_open(&got, (const char *)tmp.data, tmp.len, "pw", 2);
			if (r != CAIRN_ECORRUPT && r != CAIRN_EINVAL && r != CAIRN_EUNSUPPORTED) {
				unit_failures++;
				fprintf(stderr, "%s: %s: got %d '%s'\n", unit_current, params[i], r,
					cairn_error_message());
			}
		}
	}
	cairn_key_wipe(&master);
	cairn_key_wipe(&user);
	cairn_buf_release(&kf);
	cairn_buf_release(&m);
	cairn_buf_release(&inner);
	cairn_buf_release(&mi);
	cairn_buf_release(&tmp);
}

/* ---- packs ------------------------------------------------------------------ */

struct pack_fixture {
	cairn_key key;
	cairn_buf pack;      /* the whole file */
	cairn_buf header;    /* its plaintext header */
	size_t blobs_len;    /* bytes before the encrypted header */
	cairn_pack_entry entries[4];
	cairn_id ids[4];
	cairn_buf plain[4];
	cairn_buf sealed[4];
	uint32_t ulen[4];
};

static void pack_fixture_make(struct pack_fixture *f)
{
	cairn_pack_writer *pw = NULL;
	cairn_buf scratch = CAIRN_BUF_INIT;
	const unsigned char *data;
	const cairn_pack_entry *we;
	size_t len, n;
	cairn_id pack_id;
	uint32_t hlen;
	rng g = { 0x7061636bULL };

	memset(f, 0, sizeof(*f));
	must(cairn_key_generate(&f->key), "key");
	must(cairn_pack_writer_new(&pw, &f->key), "pack writer");
	for (int i = 0; i < 4; i++) {
		size_t plen = 200 + (size_t)i * 700;
		must(cairn_buf_reserve(&f->plain[i], plen), "plain");
		if (i % 2) {
			fill_random(&g, f->plain[i].data, plen); /* incompressible */
		} else {
			for (size_t k = 0; k < plen; k++)
				f->plain[i].data[k] = (unsigned char)("tree or data "[k % 13]);
		}
		f->plain[i].len = plen;
		cairn_sha256(&f->ids[i], f->plain[i].data, plen);
		must(cairn_blob_encode(&f->sealed[i], &f->ulen[i], &scratch, &f->key, 2,
			     i == 3 ? CAIRN_COMPRESSION_OFF : CAIRN_COMPRESSION_AUTO, f->plain[i].data, plen),
			"blob encode");
		must(cairn_pack_writer_add_sealed(pw, i == 2 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, &f->ids[i],
			     f->sealed[i].data, f->sealed[i].len, f->ulen[i]), "add sealed");
	}
	must(cairn_pack_writer_finish(&pack_id, pw), "finish");
	data = cairn_pack_writer_data(pw, &len);
	we = cairn_pack_writer_entries(pw, &n);
	memcpy(f->entries, we, 4 * sizeof(*we));
	put(&f->pack, data, len);
	hlen = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 | (uint32_t)data[len - 2] << 16 |
	       (uint32_t)data[len - 1] << 24;
	f->blobs_len = len - 4 - hlen;
	must(cairn_crypto_open_buf(&f->header, &f->key, data + f->blobs_len, hlen), "open header");
	cairn_pack_writer_free(pw);
	cairn_buf_release(&scratch);
}

static void pack_fixture_free(struct pack_fixture *f)
{
	cairn_buf_release(&f->pack);
	cairn_buf_release(&f->header);
	for (int i = 0; i < 4; i++) {
		cairn_buf_release(&f->plain[i]);
		cairn_buf_release(&f->sealed[i]);
	}
	cairn_key_wipe(&f->key);
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static int parse_pack(cairn_pack_entry **e, size_t *n, const cairn_key *key, const cairn_buf *b,
	uint64_t size)
{
	*e = NULL;
	*n = 0;
	return cairn_pack_parse_header(e, n, key, b->data, b->len, size);
}

/* What every accepted header promises its users (check, restore, repack). */
static int entries_are_sane(const cairn_pack_entry *e, size_t n, uint64_t pack_size)
{
	uint64_t at = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].offset != at || e[i].length < 32)
			return 0;
		if (e[i].type != CAIRN_BLOB_DATA && e[i].type != CAIRN_BLOB_TREE)
			return 0;
		at += e[i].length;
	}
	return cairn_pack_expected_size(e, n) == pack_size;
}

static void test_pack_truncated(void)
{
	struct pack_fixture f;
	cairn_buf b = CAIRN_BUF_INIT;
	verdicts v = { "cairn_pack_parse_header (truncated)", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	cairn_pack_entry *e;
	size_t n, len, hlen4;

	pack_fixture_make(&f);
	len = f.pack.len;
	hlen4 = len - f.blobs_len;
	CHECK_OK(parse_pack(&e, &n, &f.key, &f.pack, len));
	CHECK_INT(n, 4);
	CHECK(e && entries_are_sane(e, n, len) && memcmp(e, f.entries, sizeof(f.entries)) == 0);
	free(e);
	/* A pack cut short at its end, or missing bytes at its start: the whole
	 * remaining file as the tail, so "need more bytes" is impossible. */
	for (size_t cut = 0; cut < len; cut++) {
		copy_to(&b, f.pack.data, cut);
		cairn_error_clear();
		if (judge(&v, parse_pack(&e, &n, &f.key, &b, cut), b.data, b.len))
			problem(&v, b.data, b.len, "accepted a pack cut to %d bytes", (int)cut);
		copy_to(&b, f.pack.data + len - cut, cut);
		cairn_error_clear();
		if (judge(&v, parse_pack(&e, &n, &f.key, &b, cut), b.data, b.len))
			problem(&v, b.data, b.len, "accepted a pack without its first bytes (%d)", (int)(len - cut));
	}
	summary(&v);
	CHECK_INT(v.ok, 0);
	/* An intact pack read through too short a tail asks for more. */
	for (size_t k = 0; k < hlen4; k++) {
		int r;
		copy_to(&b, f.pack.data + len - k, k);
		r = parse_pack(&e, &n, &f.key, &b, len);
		CHECK_INT(r, k < 4 ? 4 : (int)hlen4);
		CHECK(e == NULL);
	}
	cairn_buf_release(&b);
	pack_fixture_free(&f);
}

static void test_pack_header_mutations(void)
{
	struct pack_fixture f;
	cairn_buf m = CAIRN_BUF_INIT, hdr = CAIRN_BUF_INIT, tail = CAIRN_BUF_INIT;
	verdicts raw = { "cairn_pack_parse_header (raw bytes)", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	verdicts sealed = { "cairn_pack_parse_header (resealed header)", BIT(CAIRN_ECORRUPT), 0, 0, 0,
		{ 0 } };
	cairn_pack_entry *e;
	size_t n;
	rng g = { 0x6864720ULL };
	static const uint32_t hlens[] = { 0, 1, 31, 32, 33, 36, 0x1000000, 0x1000001, 0x7fffffff,
		0x80000000, 0xffffffff };

	pack_fixture_make(&f);
	/* Raw damage: anything that touches the header or the length fails;
	 * damage inside blob bytes is the blob check's job, not this one's. */
	for (unsigned i = 0; i < ITERS(8000); i++) {
		size_t hstart = f.blobs_len;
		mutate(&m, f.pack.data, f.pack.len, &g);
		cairn_error_clear();
		if (judge(&raw, parse_pack(&e, &n, &f.key, &m, m.len), m.data, m.len)) {
			if (m.len != f.pack.len || memcmp(m.data + hstart, f.pack.data + hstart, m.len - hstart))
				problem(&raw, m.data, m.len, "accepted a damaged header (%d)", 0);
			free(e);
		}
	}
	summary(&raw);
	/* Every impossible header length. */
	for (size_t i = 0; i < sizeof(hlens) / sizeof(hlens[0]); i++) {
		copy_to(&m, f.pack.data, f.pack.len);
		put_le32(m.data + m.len - 4, hlens[i]);
		cairn_error_clear();
		CHECK_INT(parse_pack(&e, &n, &f.key, &m, m.len), CAIRN_ECORRUPT);
		CHECK(cairn_error_message()[0] != '\0');
	}
	copy_to(&m, f.pack.data, f.pack.len);
	put_le32(m.data + m.len - 4, (uint32_t)(m.len - 3));
	CHECK_INT(parse_pack(&e, &n, &f.key, &m, m.len), CAIRN_ECORRUPT);

	/* Behind the MAC: a tampered plaintext header, resealed with the key.
	 * Half the time the pack size is made to match what the header
	 * claims, so the checks past the size sum are reached too. */
	for (unsigned i = 0; i < ITERS(20000); i++) {
		uint64_t size, claimed = 0;
		const unsigned char *p;
		int well_formed = 1;

		mutate(&hdr, f.header.data, f.header.len, &g);
		cairn_buf_clear(&tail);
		must(cairn_buf_reserve(&tail, hdr.len + 36), "tail");
		must(cairn_crypto_seal(tail.data, &f.key, hdr.data, hdr.len), "seal");
		tail.len = hdr.len + 32;
		put_le32(tail.data + tail.len, (uint32_t)tail.len);
		tail.len += 4;
		for (p = hdr.data; p < hdr.data + hdr.len;) {
			size_t es = p[0] < 2 ? 37 : 41;
			if (p[0] > 3 || (size_t)(hdr.data + hdr.len - p) < es) {
				well_formed = 0;
				break;
			}
			claimed += (uint64_t)p[1] | (uint64_t)p[2] << 8 | (uint64_t)p[3] << 16 |
				   (uint64_t)p[4] << 24;
			p += es;
		}
		size = (i & 1) && well_formed ? claimed + tail.len : f.blobs_len + tail.len;
		cairn_error_clear();
		if (judge(&sealed, parse_pack(&e, &n, &f.key, &tail, size), hdr.data, hdr.len)) {
			if (!entries_are_sane(e, n, size))
				problem(&sealed, hdr.data, hdr.len, "accepted entries that do not add up (%d)", (int)n);
			free(e);
		}
	}
	summary(&sealed);

	/* Specific resealed headers. */
	{
		static const struct {
			unsigned char type;
			uint32_t len, ulen;
		} bad[] = { { 4, 100, 0 }, { 0xff, 100, 0 }, { 0, 31, 0 }, { 0, 0, 0 }, { 2, 100, 0 },
			    { 3, 0xffffffff, 0 } };
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			unsigned char h[41];
			size_t hl = bad[i].type == 2 || bad[i].type == 3 ? 41 : 37;
			h[0] = bad[i].type;
			put_le32(h + 1, bad[i].len);
			put_le32(h + 5, bad[i].ulen);
			memset(h + hl - 32, 0x5a, 32);
			cairn_buf_clear(&tail);
			must(cairn_buf_reserve(&tail, hl + 36), "tail");
			must(cairn_crypto_seal(tail.data, &f.key, h, hl), "seal");
			put_le32(tail.data + hl + 32, (uint32_t)(hl + 32));
			tail.len = hl + 36;
			cairn_error_clear();
			CHECK_INT(parse_pack(&e, &n, &f.key, &tail, (uint64_t)bad[i].len + tail.len), CAIRN_ECORRUPT);
			CHECK(cairn_error_message()[0] != '\0');
		}
		/* Three blobs of 4 GiB - 1: the third would start past 4 GiB, which
		 * no uint32 offset can say. */
		{
			unsigned char h[3 * 37];
			for (int k = 0; k < 3; k++) {
				h[k * 37] = 0;
				put_le32(h + k * 37 + 1, 0xffffffff);
				memset(h + k * 37 + 5, 0x33, 32);
			}
			cairn_buf_clear(&tail);
			must(cairn_buf_reserve(&tail, sizeof(h) + 36), "tail");
			must(cairn_crypto_seal(tail.data, &f.key, h, sizeof(h)), "seal");
			put_le32(tail.data + sizeof(h) + 32, (uint32_t)(sizeof(h) + 32));
			tail.len = sizeof(h) + 36;
			CHECK_INT(parse_pack(&e, &n, &f.key, &tail, 3 * (uint64_t)0xffffffff + tail.len),
				CAIRN_ECORRUPT);
			CHECK(strstr(cairn_error_message(), "4 GiB") != NULL);
			/* Two are fine: the second starts at 4 GiB - 1. */
			cairn_buf_clear(&tail);
			must(cairn_buf_reserve(&tail, 2 * 37 + 36), "tail");
			must(cairn_crypto_seal(tail.data, &f.key, h, 2 * 37), "seal");
			put_le32(tail.data + 2 * 37 + 32, 2 * 37 + 32);
			tail.len = 2 * 37 + 36;
			CHECK_OK(parse_pack(&e, &n, &f.key, &tail, 2 * (uint64_t)0xffffffff + tail.len));
			CHECK(n == 2 && e && e[1].offset == 0xffffffff);
			free(e);
		}
		/* An empty header (only the crypto bytes). */
		cairn_buf_clear(&tail);
		must(cairn_buf_reserve(&tail, 36), "tail");
		must(cairn_crypto_seal(tail.data, &f.key, "", 0), "seal");
		put_le32(tail.data + 32, 32);
		tail.len = 36;
		CHECK_INT(parse_pack(&e, &n, &f.key, &tail, 36), CAIRN_ECORRUPT);
	}
	/* A wrong key fails the MAC. */
	{
		cairn_key other;
		must(cairn_key_generate(&other), "key");
		CHECK_INT(parse_pack(&e, &n, &other, &f.pack, f.pack.len), CAIRN_ECORRUPT);
		CHECK(strstr(cairn_error_message(), "MAC") != NULL);
	}
	cairn_buf_release(&m);
	cairn_buf_release(&hdr);
	cairn_buf_release(&tail);
	pack_fixture_free(&f);
}

/* ---- blobs ------------------------------------------------------------------ */

static void test_blob_decode_mutations(void)
{
	struct pack_fixture f;
	cairn_buf out = CAIRN_BUF_INIT, m = CAIRN_BUF_INIT, frame = CAIRN_BUF_INIT;
	verdicts v = { "cairn_blob_decode", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	char hex[CAIRN_ID_HEX_SIZE];
	unsigned equivalent = 0;
	rng g = { 0x626c6f62ULL };

	pack_fixture_make(&f);
	for (int b = 0; b < 4; b++) {
		CHECK_OK(cairn_blob_decode(&out, &f.key, f.sealed[b].data, f.sealed[b].len, f.ulen[b], &f.ids[b]));
		CHECK(out.len == f.plain[b].len && memcmp(out.data, f.plain[b].data, out.len) == 0);
	}
	CHECK(f.ulen[0] != 0 && f.ulen[3] == 0);
	for (unsigned i = 0; i < ITERS(8000); i++) {
		int b = (int)(i % 4), kind = (int)(i / 4 % 4), r;
		uint32_t ulen = f.ulen[b];
		const cairn_id *id = &f.ids[b];
		cairn_id other = id_n(i);

		switch (kind) {
		case 0: /* damaged stored bytes (a no-op edit is skipped) */
			mutate(&m, f.sealed[b].data, f.sealed[b].len, &g);
			if (m.len == f.sealed[b].len && memcmp(m.data, f.sealed[b].data, m.len) == 0)
				continue;
			break;
		case 1: { /* a wrong length from a damaged index or header */
			static const uint32_t ulens[] = { 0, 1, 31, 32, 0x7fffffff, 0x80000000, 0xffffffff };
			copy_to(&m, f.sealed[b].data, f.sealed[b].len);
			ulen = i & 32 ? ulens[below(&g, 7)] : ulen + (uint32_t)below(&g, 64) - 32;
			if (ulen == f.ulen[b])
				ulen ^= 1;
			break;
		}
		case 2: /* a wrong id */
			copy_to(&m, f.sealed[b].data, f.sealed[b].len);
			id = &other;
			break;
		default: /* tampered payload, resealed: only the hash can tell */
			if (ulen) {
				must(cairn_zstd_compress(&frame, f.plain[b].data, f.plain[b].len, 3), "compress");
			} else {
				copy_to(&frame, f.plain[b].data, f.plain[b].len);
			}
			mutate(&m, frame.data, frame.len, &g);
			if (m.len == frame.len && memcmp(m.data, frame.data, m.len) == 0)
				m.data[0] ^= 0xff;
			copy_to(&frame, m.data, m.len);
			cairn_buf_clear(&m);
			must(cairn_crypto_seal_buf(&m, &f.key, frame.data, frame.len), "seal");
			break;
		}
		cairn_error_clear();
		r = cairn_blob_decode(&out, &f.key, m.data, m.len, ulen, id);
		/* Nothing here is the stored blob: every result is a failure
		 * that names the blob and leaves no plaintext behind.  The one
		 * exception is a resealed zstd frame that differs only in ways
		 * that decode to the same bytes: the hash proves it authentic. */
		if (judge(&v, r, m.data, m.len)) {
			if (kind != 3 || out.len != f.plain[b].len ||
			    memcmp(out.data, f.plain[b].data, out.len) != 0)
				problem(&v, m.data, m.len, "accepted a damaged blob (%d)", b);
			else
				equivalent++;
			continue;
		}
		cairn_id_to_hex(hex, id);
		if (!strstr(cairn_error_message(), hex))
			problem(&v, m.data, m.len, "message does not name the blob (%d)", r);
		if (out.len != 0)
			problem(&v, m.data, m.len, "left %d bytes of output", (int)out.len);
	}
	summary(&v);
	CHECK_INT(v.ok, equivalent);
	cairn_buf_release(&out);
	cairn_buf_release(&m);
	cairn_buf_release(&frame);
	pack_fixture_free(&f);
}

/* ---- zstd ------------------------------------------------------------------- */

static void test_zstd_mutations(void)
{
	cairn_buf plain[4] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_buf frames[4] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_buf m = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT;
	verdicts ve = { "cairn_zstd_decompress_exact", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	verdicts vs = { "cairn_zstd_decompress_stream", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	unsigned char *dst = malloc(300000);
	rng g = { 0x7a737464ULL };

	CHECK(dst != NULL);
	if (!dst)
		return;
	must(cairn_buf_reserve(&plain[1], 1000), "plain");
	for (int k = 0; k < 1000; k++)
		plain[1].data[k] = (unsigned char)"hello zstd "[k % 11];
	plain[1].len = 1000;
	must(cairn_buf_reserve(&plain[2], 300000), "plain");
	for (int k = 0; k < 300000; k++)
		plain[2].data[k] = (unsigned char)(k % 251 ^ k / 1000);
	plain[2].len = 300000;
	must(cairn_buf_reserve(&plain[3], 4096), "plain");
	fill_random(&g, plain[3].data, 4096);
	plain[3].len = 4096;
	for (int s = 0; s < 4; s++)
		must(cairn_zstd_compress(&frames[s], plain[s].data, plain[s].len, 3), "compress");

	for (unsigned i = 0; i < ITERS(12000); i++) {
		int s = (int)(i % 4);
		if (s == 2 && i / 4 % 8 != 0)
			s = 1; /* the 300 KB one less often */
		size_t ulen = plain[s].len;
		int r;

		mutate(&m, frames[s].data, frames[s].len, &g);
		cairn_error_clear();
		judge(&ve, cairn_zstd_decompress_exact(dst, ulen, m.data, m.len), m.data, m.len);
		cairn_buf_clear(&out);
		put(&out, "PFX", 3);
		cairn_error_clear();
		r = cairn_zstd_decompress_stream(&out, m.data, m.len, ulen + 64);
		if (!judge(&vs, r, m.data, m.len)) {
			if (out.len != 3 || memcmp(out.data, "PFX", 3) != 0)
				problem(&vs, m.data, m.len, "failed (%d) but changed the output", r);
		} else if (out.len - 3 > ulen + 64) {
			problem(&vs, m.data, m.len, "exceeded max_len (%d)", (int)out.len);
		}
	}
	summary(&ve);
	summary(&vs);

	/* Every proper prefix of a frame is refused by both decoders. */
	for (int s = 0; s < 4; s++) {
		size_t step = frames[s].len > 2000 ? 97 : 1;
		for (size_t cut = 0; cut < frames[s].len; cut += step) {
			cairn_buf_clear(&out);
			CHECK_INT(cairn_zstd_decompress_exact(dst, plain[s].len, frames[s].data, cut), CAIRN_ECORRUPT);
			CHECK_INT(cairn_zstd_decompress_stream(&out, frames[s].data, cut, 1 << 20), CAIRN_ECORRUPT);
			CHECK_INT(out.len, 0);
		}
	}
	/* Trailing garbage after a good frame, and a wrong ulen, are refused. */
	copy_to(&m, frames[1].data, frames[1].len);
	put(&m, "\0\0\0", 3);
	CHECK_INT(cairn_zstd_decompress_exact(dst, 1000, m.data, m.len), CAIRN_ECORRUPT);
	cairn_buf_clear(&out);
	CHECK_INT(cairn_zstd_decompress_stream(&out, m.data, m.len, 1 << 20), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_exact(dst, 999, frames[1].data, frames[1].len), CAIRN_ECORRUPT);
	CHECK_INT(cairn_zstd_decompress_exact(dst, 1001, frames[1].data, frames[1].len), CAIRN_ECORRUPT);
	/* A small frame that expands past max_len (a "zip bomb") stops at the cap. */
	cairn_buf_clear(&out);
	CHECK_INT(cairn_zstd_decompress_stream(&out, frames[2].data, frames[2].len, 1000), CAIRN_ECORRUPT);
	CHECK_INT(out.len, 0);
	/* Two frames back to back decode to their concatenation. */
	copy_to(&m, frames[1].data, frames[1].len);
	put(&m, frames[3].data, frames[3].len);
	CHECK_OK(cairn_zstd_decompress_exact(dst, 5096, m.data, m.len));
	cairn_buf_clear(&out);
	CHECK_OK(cairn_zstd_decompress_stream(&out, m.data, m.len, 5096));
	CHECK_INT(out.len, 5096);

	free(dst);
	for (int s = 0; s < 4; s++) {
		cairn_buf_release(&plain[s]);
		cairn_buf_release(&frames[s]);
	}
	cairn_buf_release(&m);
	cairn_buf_release(&out);
}

/* ---- unpacked files (index, snapshot, lock) ----------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_unpacked_mutations(void)
{
	char tmp[] = "/tmp/cairn-robust-XXXXXX", path[64];
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	cairn_repo_init_options o = CAIRN_REPO_INIT_OPTIONS_INIT;
	cairn_buf seeds[3] = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_buf m = CAIRN_BUF_INIT, sealed = CAIRN_BUF_INIT, out = CAIRN_BUF_INIT, z = CAIRN_BUF_INIT;
	verdicts vp = { "cairn_repo_decode_unpacked (resealed plaintext)", BIT(CAIRN_ECORRUPT), 0, 0, 0,
		{ 0 } };
	verdicts vc = { "cairn_repo_decode_unpacked (damaged file)", BIT(CAIRN_ECORRUPT), 0, 0, 0, { 0 } };
	const cairn_key *key;
	rng g = { 0x756e706bULL };
	static const char json[] = "{\"packs\":[],\"supersedes\":[]}\n";

	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		unit_failures++;
		return;
	}
	snprintf(path, sizeof(path), "%s/repo", tmp);
	o.kdf_n = 1024;
	CHECK_OK(cairn_backend_open(&be, path, 0));
	if (be)
		CHECK_OK(cairn_repo_init(&repo, be, "pw", 2, &o));
	if (!repo)
		goto out;
	key = cairn_repo_key(repo);
	must(cairn_zstd_compress(&z, json, sizeof(json) - 1, 3), "compress");
	put(&seeds[0], "\x02", 1);
	put(&seeds[0], z.data, z.len);
	put(&seeds[1], json, sizeof(json) - 1);
	put(&seeds[2], "[{\"id\":\"00\"}]", 13);

	for (unsigned i = 0; i < ITERS(9000); i++) {
		const cairn_buf *seed = &seeds[i % 3];
		int r;

		mutate(&m, seed->data, seed->len, &g);
		cairn_buf_clear(&sealed);
		must(cairn_crypto_seal_buf(&sealed, key, m.data, m.len), "seal");
		cairn_buf_clear(&out);
		cairn_error_clear();
		r = cairn_repo_decode_unpacked(&out, repo, sealed.data, sealed.len);
		if (judge(&vp, r, m.data, m.len)) {
			if (!out.data || out.data[out.len] != '\0')
				problem(&vp, m.data, m.len, "output not NUL-terminated (%d)", 0);
			if (m.len && m.data[0] != 0x02 && m.data[0] != '{' && m.data[0] != '[')
				problem(&vp, m.data, m.len, "accepted first byte %d", m.data[0]);
		} else if (out.len) {
			problem(&vp, m.data, m.len, "failed (%d) but left output", r);
		}
		/* The stored file damaged instead: the MAC refuses it. */
		cairn_buf_clear(&sealed);
		must(cairn_crypto_seal_buf(&sealed, key, seed->data, seed->len), "seal");
		mutate(&m, sealed.data, sealed.len, &g);
		if (m.len == sealed.len && memcmp(m.data, sealed.data, m.len) == 0)
			continue;
		cairn_error_clear();
		if (judge(&vc, cairn_repo_decode_unpacked(&out, repo, m.data, m.len), m.data, m.len))
			problem(&vc, m.data, m.len, "accepted a damaged file (%d)", 0);
	}
	summary(&vp);
	summary(&vc);
	CHECK_INT(vc.ok, 0);
	/* An empty plaintext passes through (restic does the same). */
	cairn_buf_clear(&sealed);
	must(cairn_crypto_seal_buf(&sealed, key, "", 0), "seal");
	CHECK_OK(cairn_repo_decode_unpacked(&out, repo, sealed.data, sealed.len));
	CHECK_INT(out.len, 0);
	/* Leading blanks are "not supported encoding format", as in restic. */
	cairn_buf_clear(&sealed);
	must(cairn_crypto_seal_buf(&sealed, key, " {}", 3), "seal");
	CHECK_INT(cairn_repo_decode_unpacked(&out, repo, sealed.data, sealed.len), CAIRN_ECORRUPT);
	CHECK(strstr(cairn_error_message(), "encoding") != NULL);
	CHECK_INT(cairn_repo_decode_unpacked(&out, repo, sealed.data, 31), CAIRN_ECORRUPT);
out:
	cairn_repo_free(repo);
	cairn_backend_free(be);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (int i = 0; i < 3; i++)
		cairn_buf_release(&seeds[i]);
	cairn_buf_release(&m);
	cairn_buf_release(&sealed);
	cairn_buf_release(&out);
	cairn_buf_release(&z);
}

/* ---- Go quoting ------------------------------------------------------------- */

static void test_go_unquote_mutations(void)
{
	cairn_buf q = CAIRN_BUF_INIT, u = CAIRN_BUF_INIT, m = CAIRN_BUF_INIT, q2 = CAIRN_BUF_INIT;
	cairn_buf u2 = CAIRN_BUF_INIT;
	verdicts v = { "cairn_go_unquote", BIT(CAIRN_EINVAL), 0, 0, 0, { 0 } };
	static const unsigned char special[] = { '\\', '"', '\n', '\t', 0x7f, 0x80, 0xc3, 0xa9, 0xe2,
		0x80, 0xa8, 0xed, 0xa0, 0xf0, 0x9f, 0x98, 0x80, 0xff, 'x', '0', 0x01, '/', '.', 'u' };
	unsigned char name[64];
	rng g = { 0x676f71ULL };

	/* Any NUL-free byte string survives quote + unquote exactly. */
	for (unsigned i = 0; i < ITERS(20000); i++) {
		size_t len = below(&g, sizeof(name));
		for (size_t k = 0; k < len; k++) {
			name[k] = i & 1 ? special[below(&g, sizeof(special))] : (unsigned char)(1 + below(&g, 255));
		}
		cairn_buf_clear(&q);
		CHECK_OK(cairn_go_quote(&q, (const char *)name, len));
		if (cairn_go_unquote(&u, (const char *)q.data, q.len) < 0 || u.len != len ||
		    memcmp(u.data, name, len) != 0) {
			unit_failures++;
			fprintf(stderr, "%s: quote/unquote round trip failed:\n", unit_current);
			show_input(name, len);
			break;
		}

		/* Mutated quoted text: refused, or a NUL-free name that is
		 * itself stable under quote + unquote. */
		mutate(&m, q.data, q.len, &g);
		cairn_error_clear();
		if (!judge(&v, cairn_go_unquote(&u, (const char *)m.data, m.len), m.data, m.len))
			continue;
		if (strlen((const char *)u.data) != u.len)
			problem(&v, m.data, m.len, "unquoted to a name with a NUL byte (%d)", 0);
		cairn_buf_clear(&q2);
		if (cairn_go_quote(&q2, (const char *)u.data, u.len) < 0 ||
		    cairn_go_unquote(&u2, (const char *)q2.data, q2.len) < 0 || u2.len != u.len ||
		    memcmp(u2.data, u.data, u.len) != 0)
			problem(&v, m.data, m.len, "result does not round-trip (%d)", 0);
	}
	summary(&v);
	{
		static const char *const bad[] = { "\\", "\"", "\n", "\\q", "\\'", "\\x", "\\x4", "\\xg0",
			"\\u12", "\\ud800", "\\U00110000", "\\400", "\\0", "\\00", "\\000", "\\x00", "\\u0000",
			"a\\U00000000" };
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			cairn_error_clear();
			CHECK_INT(cairn_go_unquote(&u, bad[i], strlen(bad[i])), CAIRN_EINVAL);
			CHECK(cairn_error_message()[0] != '\0');
		}
		CHECK_INT(cairn_go_unquote(&u, "a\0b", 3), CAIRN_EINVAL);
		CHECK_OK(cairn_go_unquote(&u, "\\x2f\\056\\u002F", 14));
		CHECK_STR((const char *)u.data, "/./");
	}
	cairn_buf_release(&q);
	cairn_buf_release(&u);
	cairn_buf_release(&m);
	cairn_buf_release(&q2);
	cairn_buf_release(&u2);
}

/* ---- times ------------------------------------------------------------------ */

static void test_time_parse_mutations(void)
{
	char text[CAIRN_TIME_TEXT_SIZE], back[CAIRN_TIME_TEXT_SIZE];
	cairn_buf m = CAIRN_BUF_INIT;
	verdicts v = { "cairn_time_parse", BIT(CAIRN_EINVAL), 0, 0, 0, { 0 } };
	rng g = { 0x74696d65ULL };

	for (unsigned i = 0; i < ITERS(30000); i++) {
		/* Years 0002..9997, so no offset moves the text out of 0000..9999. */
		cairn_time t = { -62104060800LL + (int64_t)below(&g, 315472000000ULL),
			(int32_t)(i & 1 ? below(&g, 1000000000) : below(&g, 10) * 100000000) };
		int off = i & 2 ? 0 : ((int)below(&g, 2 * 1440 - 1) - 1439) * 60, off2 = -1;
		cairn_time p = { 0, 0 }, p2;

		cairn_time_format(text, t, off);
		if (cairn_time_parse_offset(&p, &off2, text) < 0 || cairn_time_compare(p, t) != 0 || off2 != off) {
			unit_failures++;
			fprintf(stderr, "%s: '%s' does not parse back to %lld.%09d %+d\n", unit_current, text,
				(long long)t.sec, (int)t.nsec, off);
			break;
		}
		mutate(&m, text, strlen(text), &g);
		must(cairn_buf_cstr(&m) ? 0 : CAIRN_ENOMEM, "cstr");
		cairn_error_clear();
		if (!judge(&v, cairn_time_parse_offset(&p, &off2, (const char *)m.data), m.data, m.len))
			continue;
		if (p.nsec < 0 || p.nsec > 999999999 || off2 <= -86400 || off2 >= 86400) {
			problem(&v, m.data, m.len, "accepted an impossible time (%d)", p.nsec);
			continue;
		}
		cairn_time_format(back, p, off2);
		if (cairn_time_parse(&p2, back) < 0 || cairn_time_compare(p, p2) != 0)
			problem(&v, m.data, m.len, "accepted time does not round-trip (%d)", 0);
	}
	summary(&v);
	{
		static const char *const bad[] = { "", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z",
			"2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-01-01T24:00:00Z",
			"2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00",
			"2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+01:60", "2024-01-01T00:00:00.Z",
			"2024-01-01T00:00:00Z ", " 2024-01-01T00:00:00Z", "2024-01-01 00:00:00Z",
			"-024-01-01T00:00:00Z", "20240-01-01T00:00:00Z", "2024-1-01T00:00:00Z",
			"2024-01-01T00:00:00+0100", "+2024-01-01T00:00:00Z" };
		cairn_time t;
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			cairn_error_clear();
			if (cairn_time_parse(&t, bad[i]) != CAIRN_EINVAL || !cairn_error_message()[0]) {
				unit_failures++;
				fprintf(stderr, "%s: time '%s' was not refused\n", unit_current, bad[i]);
			}
		}
		CHECK_OK(cairn_time_parse(&t, "2024-02-29T23:59:59.1234567890123456789012345678901234567890-23:59"));
		CHECK_INT(t.nsec, 123456789);
		CHECK_OK(cairn_time_parse(&t, "0000-01-01T00:00:00Z"));
		CHECK_OK(cairn_time_parse(&t, "9999-12-31T23:59:59.999999999-23:59"));
	}
	cairn_buf_release(&m);
}

/* ---- base64 ----------------------------------------------------------------- */

static void test_base64_mutations(void)
{
	cairn_buf e = CAIRN_BUF_INIT, d = CAIRN_BUF_INIT, m = CAIRN_BUF_INIT;
	verdicts v = { "cairn_base64_decode", BIT(CAIRN_EINVAL), 0, 0, 0, { 0 } };
	unsigned char raw[100];
	rng g = { 0x623634ULL };

	for (unsigned i = 0; i < ITERS(30000); i++) {
		size_t len = below(&g, sizeof(raw) + 1), pad;

		fill_random(&g, raw, len);
		cairn_buf_clear(&e);
		cairn_buf_clear(&d);
		CHECK_OK(cairn_base64_encode(&e, raw, len));
		if (cairn_base64_decode(&d, (const char *)e.data, e.len) < 0 || d.len != len ||
		    memcmp(d.data, raw, len) != 0) {
			unit_failures++;
			fprintf(stderr, "%s: base64 round trip of %zu bytes failed\n", unit_current, len);
			break;
		}
		mutate(&m, e.data, e.len, &g);
		cairn_buf_clear(&d);
		cairn_error_clear();
		if (!judge(&v, cairn_base64_decode(&d, (const char *)m.data, m.len), m.data, m.len))
			continue;
		pad = m.len >= 2 && m.data[m.len - 1] == '=' ? (m.data[m.len - 2] == '=' ? 2 : 1) : 0;
		if (m.len % 4 || d.len != m.len / 4 * 3 - pad)
			problem(&v, m.data, m.len, "decoded to %d bytes", (int)d.len);
		for (size_t k = 0; k + pad < m.len; k++)
			if (m.data[k] == '=' || !(m.data[k] == '+' || m.data[k] == '/' ||
						  (m.data[k] >= '0' && m.data[k] <= '9') ||
						  ((m.data[k] | 0x20) >= 'a' && (m.data[k] | 0x20) <= 'z'))) {
				problem(&v, m.data, m.len, "accepted a byte outside the alphabet (%d)", m.data[k]);
				break;
			}
	}
	summary(&v);
	{
		static const char *const bad[] = { "A", "AB", "ABC", "A===", "====", "AB=C", "AB\nC",
			"AB-_", "AB==AAAA", "A\0==" };
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			cairn_buf_clear(&d);
			cairn_error_clear();
			CHECK_INT(cairn_base64_decode(&d, bad[i], i == 9 ? 4 : strlen(bad[i])), CAIRN_EINVAL);
			CHECK(cairn_error_message()[0] != '\0');
		}
	}
	cairn_buf_release(&e);
	cairn_buf_release(&d);
	cairn_buf_release(&m);
}

UNIT_MAIN(test_tree_mutations, test_tree_truncated, test_tree_hostile_names, test_tree_bad_nodes,
	test_tree_deep_nesting, test_snapshot_mutations, test_snapshot_bad_documents,
	test_index_mutations, test_index_bad_entries, test_config_mutations, test_keyfile_mutations,
	test_pack_truncated, test_pack_header_mutations, test_blob_decode_mutations, test_zstd_mutations,
	test_unpacked_mutations, test_go_unquote_mutations, test_time_parse_mutations,
	test_base64_mutations)
