/* tree.c: tree blobs (directory listings) and their nodes in restic's JSON
 * (include/cairn/tree.h, restic-format.md §7).
 *
 * Writing reproduces restic 0.14 byte for byte: `{"nodes":[` + the nodes
 * joined by `,` + `]}` + newline.  Each node is an object whose keys follow
 * the field order of restic's Node struct (name, type, mode, mtime, atime,
 * ctime, uid, gid, user, group, inode, device_id, size, links, linktarget,
 * extended_attributes, device, content, subtree, error) with Go's omitempty
 * rules, and every string is escaped like Go's encoding/json (HTML-safe,
 * invalid UTF-8 as \ufffd).  Names are first passed through Go's
 * strconv.Quote (outer quotes dropped), so they are escaped twice.  Times
 * are written in the local zone at that instant, as restic does, so a tree
 * written here has the same bytes (and id) as restic's for the same
 * directory in the same zone.
 *
 * Go's strconv.Quote keeps "printable" runes raw.  Which runes are printable
 * is Unicode data: restic 0.14 (Debian, go1.19) uses Unicode 13.0.0, so the
 * table below holds the code points of general category L, M, N, P or S
 * that were assigned in Unicode 13.0, plus U+0020.  It was generated with
 * Perl's Unicode::UCD (prop_invlist "gc=L|M|N|P|S" intersected with
 * "In=13.0").
 *
 * Reading is a small JSON parser written for this one schema: it keeps full
 * uint64 range for inode/size/device (a generic library would stop at
 * int64), matches Go's decoder where that matters (unknown keys ignored,
 * the last duplicate key wins, null leaves a field unset, invalid UTF-8 and
 * lone surrogates become U+FFFD) and then validates what restore relies on.
 *
 * Invariants: every tree cairn_tree_encode() writes is accepted by
 * cairn_tree_decode(), which returns nodes sorted by name with no
 * duplicates and names that pass cairn_node_name_check().
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cairn/crypto.h>
#include <cairn/tree.h>

#include "util/gojson.h"

/* Go's zero time.Time (0001-01-01T00:00:00Z): what a node has for a time
 * that its JSON leaves out or sets to null. */
#define GO_ZERO_TIME_SEC (-62135596800LL)

/* ---- node types and modes ------------------------------------------------ */

static const char *const type_names[] = {
	[CAIRN_NODE_FILE] = "file",
	[CAIRN_NODE_DIR] = "dir",
	[CAIRN_NODE_SYMLINK] = "symlink",
	[CAIRN_NODE_DEV] = "dev",
	[CAIRN_NODE_CHARDEV] = "chardev",
	[CAIRN_NODE_FIFO] = "fifo",
	[CAIRN_NODE_SOCKET] = "socket",
};
#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

static int type_valid(cairn_node_type t)
{
	return (unsigned)t < N_TYPES;
}

/* Returns "unknown" for a value outside the enum, so it is always printable. */
const char *cairn_node_type_name(cairn_node_type t)
{
	return type_valid(t) ? type_names[t] : "unknown";
}

static const char *shown(const char *s);

int cairn_node_type_parse(cairn_node_type *out, const char *name)
{
	for (size_t i = 0; name && i < N_TYPES; i++) {
		if (strcmp(name, type_names[i]) == 0) {
			*out = (cairn_node_type)i;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_EINVAL, "unknown node type '%s'", name ? shown(name) : "");
}

uint32_t cairn_mode_from_posix(mode_t m)
{
	uint32_t g = (uint32_t)(m & 0777);

	switch (m & S_IFMT) {
	case S_IFDIR: g |= CAIRN_GOMODE_DIR; break;
	case S_IFLNK: g |= CAIRN_GOMODE_SYMLINK; break;
	case S_IFBLK: g |= CAIRN_GOMODE_DEVICE; break;
	case S_IFCHR: g |= CAIRN_GOMODE_DEVICE | CAIRN_GOMODE_CHARDEVICE; break;
	case S_IFIFO: g |= CAIRN_GOMODE_NAMEDPIPE; break;
	case S_IFSOCK: g |= CAIRN_GOMODE_SOCKET; break;
	default: break; /* S_IFREG: no flag */
	}
	if (m & S_ISUID) g |= CAIRN_GOMODE_SETUID;
	if (m & S_ISGID) g |= CAIRN_GOMODE_SETGID;
	if (m & S_ISVTX) g |= CAIRN_GOMODE_STICKY;
	return g;
}

/* Go's type bits are independent flags; a corrupt value with several set
 * resolves to the first of dir, symlink, device, pipe, socket. */
mode_t cairn_mode_to_posix(uint32_t g)
{
	mode_t m = (mode_t)(g & 0777);

	if (g & CAIRN_GOMODE_DIR) m |= S_IFDIR;
	else if (g & CAIRN_GOMODE_SYMLINK) m |= S_IFLNK;
	else if (g & CAIRN_GOMODE_DEVICE) m |= (g & CAIRN_GOMODE_CHARDEVICE) ? S_IFCHR : S_IFBLK;
	else if (g & CAIRN_GOMODE_NAMEDPIPE) m |= S_IFIFO;
	else if (g & CAIRN_GOMODE_SOCKET) m |= S_IFSOCK;
	else m |= S_IFREG;
	if (g & CAIRN_GOMODE_SETUID) m |= S_ISUID;
	if (g & CAIRN_GOMODE_SETGID) m |= S_ISGID;
	if (g & CAIRN_GOMODE_STICKY) m |= S_ISVTX;
	return m;
}

/* ---- UTF-8 and Go's strconv.Quote / Unquote ------------------------------ */

/* Write rune r (valid, not a surrogate) as UTF-8; returns the length. */
static size_t utf8_encode(unsigned char *d, uint32_t r)
{
	if (r < 0x80) {
		d[0] = (unsigned char)r;
		return 1;
	}
	if (r < 0x800) {
		d[0] = (unsigned char)(0xc0 | r >> 6);
		d[1] = (unsigned char)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		d[0] = (unsigned char)(0xe0 | r >> 12);
		d[1] = (unsigned char)(0x80 | (r >> 6 & 0x3f));
		d[2] = (unsigned char)(0x80 | (r & 0x3f));
		return 3;
	}
	d[0] = (unsigned char)(0xf0 | r >> 18);
	d[1] = (unsigned char)(0x80 | (r >> 12 & 0x3f));
	d[2] = (unsigned char)(0x80 | (r >> 6 & 0x3f));
	d[3] = (unsigned char)(0x80 | (r & 0x3f));
	return 4;
}

/* Printable code points of Unicode 13.0 (see the file comment), as sorted
 * inclusive [lo, hi] pairs. */
static const uint32_t print_ranges[] = {
	0x0020,0x007e, 0x00a1,0x00ac, 0x00ae,0x0377, 0x037a,0x037f, 0x0384,0x038a, 0x038c,0x038c,
	0x038e,0x03a1, 0x03a3,0x052f, 0x0531,0x0556, 0x0559,0x058a, 0x058d,0x058f, 0x0591,0x05c7,
	0x05d0,0x05ea, 0x05ef,0x05f4, 0x0606,0x061b, 0x061e,0x06dc, 0x06de,0x070d, 0x0710,0x074a,
	0x074d,0x07b1, 0x07c0,0x07fa, 0x07fd,0x082d, 0x0830,0x083e, 0x0840,0x085b, 0x085e,0x085e,
	0x0860,0x086a, 0x08a0,0x08b4, 0x08b6,0x08c7, 0x08d3,0x08e1, 0x08e3,0x0983, 0x0985,0x098c,
	0x098f,0x0990, 0x0993,0x09a8, 0x09aa,0x09b0, 0x09b2,0x09b2, 0x09b6,0x09b9, 0x09bc,0x09c4,
	0x09c7,0x09c8, 0x09cb,0x09ce, 0x09d7,0x09d7, 0x09dc,0x09dd, 0x09df,0x09e3, 0x09e6,0x09fe,
	0x0a01,0x0a03, 0x0a05,0x0a0a, 0x0a0f,0x0a10, 0x0a13,0x0a28, 0x0a2a,0x0a30, 0x0a32,0x0a33,
	0x0a35,0x0a36, 0x0a38,0x0a39, 0x0a3c,0x0a3c, 0x0a3e,0x0a42, 0x0a47,0x0a48, 0x0a4b,0x0a4d,
	0x0a51,0x0a51, 0x0a59,0x0a5c, 0x0a5e,0x0a5e, 0x0a66,0x0a76, 0x0a81,0x0a83, 0x0a85,0x0a8d,
	0x0a8f,0x0a91, 0x0a93,0x0aa8, 0x0aaa,0x0ab0, 0x0ab2,0x0ab3, 0x0ab5,0x0ab9, 0x0abc,0x0ac5,
	0x0ac7,0x0ac9, 0x0acb,0x0acd, 0x0ad0,0x0ad0, 0x0ae0,0x0ae3, 0x0ae6,0x0af1, 0x0af9,0x0aff,
	0x0b01,0x0b03, 0x0b05,0x0b0c, 0x0b0f,0x0b10, 0x0b13,0x0b28, 0x0b2a,0x0b30, 0x0b32,0x0b33,
	0x0b35,0x0b39, 0x0b3c,0x0b44, 0x0b47,0x0b48, 0x0b4b,0x0b4d, 0x0b55,0x0b57, 0x0b5c,0x0b5d,
	0x0b5f,0x0b63, 0x0b66,0x0b77, 0x0b82,0x0b83, 0x0b85,0x0b8a, 0x0b8e,0x0b90, 0x0b92,0x0b95,
	0x0b99,0x0b9a, 0x0b9c,0x0b9c, 0x0b9e,0x0b9f, 0x0ba3,0x0ba4, 0x0ba8,0x0baa, 0x0bae,0x0bb9,
	0x0bbe,0x0bc2, 0x0bc6,0x0bc8, 0x0bca,0x0bcd, 0x0bd0,0x0bd0, 0x0bd7,0x0bd7, 0x0be6,0x0bfa,
	0x0c00,0x0c0c, 0x0c0e,0x0c10, 0x0c12,0x0c28, 0x0c2a,0x0c39, 0x0c3d,0x0c44, 0x0c46,0x0c48,
	0x0c4a,0x0c4d, 0x0c55,0x0c56, 0x0c58,0x0c5a, 0x0c60,0x0c63, 0x0c66,0x0c6f, 0x0c77,0x0c8c,
	0x0c8e,0x0c90, 0x0c92,0x0ca8, 0x0caa,0x0cb3, 0x0cb5,0x0cb9, 0x0cbc,0x0cc4, 0x0cc6,0x0cc8,
	0x0cca,0x0ccd, 0x0cd5,0x0cd6, 0x0cde,0x0cde, 0x0ce0,0x0ce3, 0x0ce6,0x0cef, 0x0cf1,0x0cf2,
	0x0d00,0x0d0c, 0x0d0e,0x0d10, 0x0d12,0x0d44, 0x0d46,0x0d48, 0x0d4a,0x0d4f, 0x0d54,0x0d63,
	0x0d66,0x0d7f, 0x0d81,0x0d83, 0x0d85,0x0d96, 0x0d9a,0x0db1, 0x0db3,0x0dbb, 0x0dbd,0x0dbd,
	0x0dc0,0x0dc6, 0x0dca,0x0dca, 0x0dcf,0x0dd4, 0x0dd6,0x0dd6, 0x0dd8,0x0ddf, 0x0de6,0x0def,
	0x0df2,0x0df4, 0x0e01,0x0e3a, 0x0e3f,0x0e5b, 0x0e81,0x0e82, 0x0e84,0x0e84, 0x0e86,0x0e8a,
	0x0e8c,0x0ea3, 0x0ea5,0x0ea5, 0x0ea7,0x0ebd, 0x0ec0,0x0ec4, 0x0ec6,0x0ec6, 0x0ec8,0x0ecd,
	0x0ed0,0x0ed9, 0x0edc,0x0edf, 0x0f00,0x0f47, 0x0f49,0x0f6c, 0x0f71,0x0f97, 0x0f99,0x0fbc,
	0x0fbe,0x0fcc, 0x0fce,0x0fda, 0x1000,0x10c5, 0x10c7,0x10c7, 0x10cd,0x10cd, 0x10d0,0x1248,
	0x124a,0x124d, 0x1250,0x1256, 0x1258,0x1258, 0x125a,0x125d, 0x1260,0x1288, 0x128a,0x128d,
	0x1290,0x12b0, 0x12b2,0x12b5, 0x12b8,0x12be, 0x12c0,0x12c0, 0x12c2,0x12c5, 0x12c8,0x12d6,
	0x12d8,0x1310, 0x1312,0x1315, 0x1318,0x135a, 0x135d,0x137c, 0x1380,0x1399, 0x13a0,0x13f5,
	0x13f8,0x13fd, 0x1400,0x167f, 0x1681,0x169c, 0x16a0,0x16f8, 0x1700,0x170c, 0x170e,0x1714,
	0x1720,0x1736, 0x1740,0x1753, 0x1760,0x176c, 0x176e,0x1770, 0x1772,0x1773, 0x1780,0x17dd,
	0x17e0,0x17e9, 0x17f0,0x17f9, 0x1800,0x180d, 0x1810,0x1819, 0x1820,0x1878, 0x1880,0x18aa,
	0x18b0,0x18f5, 0x1900,0x191e, 0x1920,0x192b, 0x1930,0x193b, 0x1940,0x1940, 0x1944,0x196d,
	0x1970,0x1974, 0x1980,0x19ab, 0x19b0,0x19c9, 0x19d0,0x19da, 0x19de,0x1a1b, 0x1a1e,0x1a5e,
	0x1a60,0x1a7c, 0x1a7f,0x1a89, 0x1a90,0x1a99, 0x1aa0,0x1aad, 0x1ab0,0x1ac0, 0x1b00,0x1b4b,
	0x1b50,0x1b7c, 0x1b80,0x1bf3, 0x1bfc,0x1c37, 0x1c3b,0x1c49, 0x1c4d,0x1c88, 0x1c90,0x1cba,
	0x1cbd,0x1cc7, 0x1cd0,0x1cfa, 0x1d00,0x1df9, 0x1dfb,0x1f15, 0x1f18,0x1f1d, 0x1f20,0x1f45,
	0x1f48,0x1f4d, 0x1f50,0x1f57, 0x1f59,0x1f59, 0x1f5b,0x1f5b, 0x1f5d,0x1f5d, 0x1f5f,0x1f7d,
	0x1f80,0x1fb4, 0x1fb6,0x1fc4, 0x1fc6,0x1fd3, 0x1fd6,0x1fdb, 0x1fdd,0x1fef, 0x1ff2,0x1ff4,
	0x1ff6,0x1ffe, 0x2010,0x2027, 0x2030,0x205e, 0x2070,0x2071, 0x2074,0x208e, 0x2090,0x209c,
	0x20a0,0x20bf, 0x20d0,0x20f0, 0x2100,0x218b, 0x2190,0x2426, 0x2440,0x244a, 0x2460,0x2b73,
	0x2b76,0x2b95, 0x2b97,0x2c2e, 0x2c30,0x2c5e, 0x2c60,0x2cf3, 0x2cf9,0x2d25, 0x2d27,0x2d27,
	0x2d2d,0x2d2d, 0x2d30,0x2d67, 0x2d6f,0x2d70, 0x2d7f,0x2d96, 0x2da0,0x2da6, 0x2da8,0x2dae,
	0x2db0,0x2db6, 0x2db8,0x2dbe, 0x2dc0,0x2dc6, 0x2dc8,0x2dce, 0x2dd0,0x2dd6, 0x2dd8,0x2dde,
	0x2de0,0x2e52, 0x2e80,0x2e99, 0x2e9b,0x2ef3, 0x2f00,0x2fd5, 0x2ff0,0x2ffb, 0x3001,0x303f,
	0x3041,0x3096, 0x3099,0x30ff, 0x3105,0x312f, 0x3131,0x318e, 0x3190,0x31e3, 0x31f0,0x321e,
	0x3220,0x9ffc, 0xa000,0xa48c, 0xa490,0xa4c6, 0xa4d0,0xa62b, 0xa640,0xa6f7, 0xa700,0xa7bf,
	0xa7c2,0xa7ca, 0xa7f5,0xa82c, 0xa830,0xa839, 0xa840,0xa877, 0xa880,0xa8c5, 0xa8ce,0xa8d9,
	0xa8e0,0xa953, 0xa95f,0xa97c, 0xa980,0xa9cd, 0xa9cf,0xa9d9, 0xa9de,0xa9fe, 0xaa00,0xaa36,
	0xaa40,0xaa4d, 0xaa50,0xaa59, 0xaa5c,0xaac2, 0xaadb,0xaaf6, 0xab01,0xab06, 0xab09,0xab0e,
	0xab11,0xab16, 0xab20,0xab26, 0xab28,0xab2e, 0xab30,0xab6b, 0xab70,0xabed, 0xabf0,0xabf9,
	0xac00,0xd7a3, 0xd7b0,0xd7c6, 0xd7cb,0xd7fb, 0xf900,0xfa6d, 0xfa70,0xfad9, 0xfb00,0xfb06,
	0xfb13,0xfb17, 0xfb1d,0xfb36, 0xfb38,0xfb3c, 0xfb3e,0xfb3e, 0xfb40,0xfb41, 0xfb43,0xfb44,
	0xfb46,0xfbc1, 0xfbd3,0xfd3f, 0xfd50,0xfd8f, 0xfd92,0xfdc7, 0xfdf0,0xfdfd, 0xfe00,0xfe19,
	0xfe20,0xfe52, 0xfe54,0xfe66, 0xfe68,0xfe6b, 0xfe70,0xfe74, 0xfe76,0xfefc, 0xff01,0xffbe,
	0xffc2,0xffc7, 0xffca,0xffcf, 0xffd2,0xffd7, 0xffda,0xffdc, 0xffe0,0xffe6, 0xffe8,0xffee,
	0xfffc,0xfffd, 0x10000,0x1000b, 0x1000d,0x10026, 0x10028,0x1003a, 0x1003c,0x1003d, 0x1003f,0x1004d,
	0x10050,0x1005d, 0x10080,0x100fa, 0x10100,0x10102, 0x10107,0x10133, 0x10137,0x1018e, 0x10190,0x1019c,
	0x101a0,0x101a0, 0x101d0,0x101fd, 0x10280,0x1029c, 0x102a0,0x102d0, 0x102e0,0x102fb, 0x10300,0x10323,
	0x1032d,0x1034a, 0x10350,0x1037a, 0x10380,0x1039d, 0x1039f,0x103c3, 0x103c8,0x103d5, 0x10400,0x1049d,
	0x104a0,0x104a9, 0x104b0,0x104d3, 0x104d8,0x104fb, 0x10500,0x10527, 0x10530,0x10563, 0x1056f,0x1056f,
	0x10600,0x10736, 0x10740,0x10755, 0x10760,0x10767, 0x10800,0x10805, 0x10808,0x10808, 0x1080a,0x10835,
	0x10837,0x10838, 0x1083c,0x1083c, 0x1083f,0x10855, 0x10857,0x1089e, 0x108a7,0x108af, 0x108e0,0x108f2,
	0x108f4,0x108f5, 0x108fb,0x1091b, 0x1091f,0x10939, 0x1093f,0x1093f, 0x10980,0x109b7, 0x109bc,0x109cf,
	0x109d2,0x10a03, 0x10a05,0x10a06, 0x10a0c,0x10a13, 0x10a15,0x10a17, 0x10a19,0x10a35, 0x10a38,0x10a3a,
	0x10a3f,0x10a48, 0x10a50,0x10a58, 0x10a60,0x10a9f, 0x10ac0,0x10ae6, 0x10aeb,0x10af6, 0x10b00,0x10b35,
	0x10b39,0x10b55, 0x10b58,0x10b72, 0x10b78,0x10b91, 0x10b99,0x10b9c, 0x10ba9,0x10baf, 0x10c00,0x10c48,
	0x10c80,0x10cb2, 0x10cc0,0x10cf2, 0x10cfa,0x10d27, 0x10d30,0x10d39, 0x10e60,0x10e7e, 0x10e80,0x10ea9,
	0x10eab,0x10ead, 0x10eb0,0x10eb1, 0x10f00,0x10f27, 0x10f30,0x10f59, 0x10fb0,0x10fcb, 0x10fe0,0x10ff6,
	0x11000,0x1104d, 0x11052,0x1106f, 0x1107f,0x110bc, 0x110be,0x110c1, 0x110d0,0x110e8, 0x110f0,0x110f9,
	0x11100,0x11134, 0x11136,0x11147, 0x11150,0x11176, 0x11180,0x111df, 0x111e1,0x111f4, 0x11200,0x11211,
	0x11213,0x1123e, 0x11280,0x11286, 0x11288,0x11288, 0x1128a,0x1128d, 0x1128f,0x1129d, 0x1129f,0x112a9,
	0x112b0,0x112ea, 0x112f0,0x112f9, 0x11300,0x11303, 0x11305,0x1130c, 0x1130f,0x11310, 0x11313,0x11328,
	0x1132a,0x11330, 0x11332,0x11333, 0x11335,0x11339, 0x1133b,0x11344, 0x11347,0x11348, 0x1134b,0x1134d,
	0x11350,0x11350, 0x11357,0x11357, 0x1135d,0x11363, 0x11366,0x1136c, 0x11370,0x11374, 0x11400,0x1145b,
	0x1145d,0x11461, 0x11480,0x114c7, 0x114d0,0x114d9, 0x11580,0x115b5, 0x115b8,0x115dd, 0x11600,0x11644,
	0x11650,0x11659, 0x11660,0x1166c, 0x11680,0x116b8, 0x116c0,0x116c9, 0x11700,0x1171a, 0x1171d,0x1172b,
	0x11730,0x1173f, 0x11800,0x1183b, 0x118a0,0x118f2, 0x118ff,0x11906, 0x11909,0x11909, 0x1190c,0x11913,
	0x11915,0x11916, 0x11918,0x11935, 0x11937,0x11938, 0x1193b,0x11946, 0x11950,0x11959, 0x119a0,0x119a7,
	0x119aa,0x119d7, 0x119da,0x119e4, 0x11a00,0x11a47, 0x11a50,0x11aa2, 0x11ac0,0x11af8, 0x11c00,0x11c08,
	0x11c0a,0x11c36, 0x11c38,0x11c45, 0x11c50,0x11c6c, 0x11c70,0x11c8f, 0x11c92,0x11ca7, 0x11ca9,0x11cb6,
	0x11d00,0x11d06, 0x11d08,0x11d09, 0x11d0b,0x11d36, 0x11d3a,0x11d3a, 0x11d3c,0x11d3d, 0x11d3f,0x11d47,
	0x11d50,0x11d59, 0x11d60,0x11d65, 0x11d67,0x11d68, 0x11d6a,0x11d8e, 0x11d90,0x11d91, 0x11d93,0x11d98,
	0x11da0,0x11da9, 0x11ee0,0x11ef8, 0x11fb0,0x11fb0, 0x11fc0,0x11ff1, 0x11fff,0x12399, 0x12400,0x1246e,
	0x12470,0x12474, 0x12480,0x12543, 0x13000,0x1342e, 0x14400,0x14646, 0x16800,0x16a38, 0x16a40,0x16a5e,
	0x16a60,0x16a69, 0x16a6e,0x16a6f, 0x16ad0,0x16aed, 0x16af0,0x16af5, 0x16b00,0x16b45, 0x16b50,0x16b59,
	0x16b5b,0x16b61, 0x16b63,0x16b77, 0x16b7d,0x16b8f, 0x16e40,0x16e9a, 0x16f00,0x16f4a, 0x16f4f,0x16f87,
	0x16f8f,0x16f9f, 0x16fe0,0x16fe4, 0x16ff0,0x16ff1, 0x17000,0x187f7, 0x18800,0x18cd5, 0x18d00,0x18d08,
	0x1b000,0x1b11e, 0x1b150,0x1b152, 0x1b164,0x1b167, 0x1b170,0x1b2fb, 0x1bc00,0x1bc6a, 0x1bc70,0x1bc7c,
	0x1bc80,0x1bc88, 0x1bc90,0x1bc99, 0x1bc9c,0x1bc9f, 0x1d000,0x1d0f5, 0x1d100,0x1d126, 0x1d129,0x1d172,
	0x1d17b,0x1d1e8, 0x1d200,0x1d245, 0x1d2e0,0x1d2f3, 0x1d300,0x1d356, 0x1d360,0x1d378, 0x1d400,0x1d454,
	0x1d456,0x1d49c, 0x1d49e,0x1d49f, 0x1d4a2,0x1d4a2, 0x1d4a5,0x1d4a6, 0x1d4a9,0x1d4ac, 0x1d4ae,0x1d4b9,
	0x1d4bb,0x1d4bb, 0x1d4bd,0x1d4c3, 0x1d4c5,0x1d505, 0x1d507,0x1d50a, 0x1d50d,0x1d514, 0x1d516,0x1d51c,
	0x1d51e,0x1d539, 0x1d53b,0x1d53e, 0x1d540,0x1d544, 0x1d546,0x1d546, 0x1d54a,0x1d550, 0x1d552,0x1d6a5,
	0x1d6a8,0x1d7cb, 0x1d7ce,0x1da8b, 0x1da9b,0x1da9f, 0x1daa1,0x1daaf, 0x1e000,0x1e006, 0x1e008,0x1e018,
	0x1e01b,0x1e021, 0x1e023,0x1e024, 0x1e026,0x1e02a, 0x1e100,0x1e12c, 0x1e130,0x1e13d, 0x1e140,0x1e149,
	0x1e14e,0x1e14f, 0x1e2c0,0x1e2f9, 0x1e2ff,0x1e2ff, 0x1e800,0x1e8c4, 0x1e8c7,0x1e8d6, 0x1e900,0x1e94b,
	0x1e950,0x1e959, 0x1e95e,0x1e95f, 0x1ec71,0x1ecb4, 0x1ed01,0x1ed3d, 0x1ee00,0x1ee03, 0x1ee05,0x1ee1f,
	0x1ee21,0x1ee22, 0x1ee24,0x1ee24, 0x1ee27,0x1ee27, 0x1ee29,0x1ee32, 0x1ee34,0x1ee37, 0x1ee39,0x1ee39,
	0x1ee3b,0x1ee3b, 0x1ee42,0x1ee42, 0x1ee47,0x1ee47, 0x1ee49,0x1ee49, 0x1ee4b,0x1ee4b, 0x1ee4d,0x1ee4f,
	0x1ee51,0x1ee52, 0x1ee54,0x1ee54, 0x1ee57,0x1ee57, 0x1ee59,0x1ee59, 0x1ee5b,0x1ee5b, 0x1ee5d,0x1ee5d,
	0x1ee5f,0x1ee5f, 0x1ee61,0x1ee62, 0x1ee64,0x1ee64, 0x1ee67,0x1ee6a, 0x1ee6c,0x1ee72, 0x1ee74,0x1ee77,
	0x1ee79,0x1ee7c, 0x1ee7e,0x1ee7e, 0x1ee80,0x1ee89, 0x1ee8b,0x1ee9b, 0x1eea1,0x1eea3, 0x1eea5,0x1eea9,
	0x1eeab,0x1eebb, 0x1eef0,0x1eef1, 0x1f000,0x1f02b, 0x1f030,0x1f093, 0x1f0a0,0x1f0ae, 0x1f0b1,0x1f0bf,
	0x1f0c1,0x1f0cf, 0x1f0d1,0x1f0f5, 0x1f100,0x1f1ad, 0x1f1e6,0x1f202, 0x1f210,0x1f23b, 0x1f240,0x1f248,
	0x1f250,0x1f251, 0x1f260,0x1f265, 0x1f300,0x1f6d7, 0x1f6e0,0x1f6ec, 0x1f6f0,0x1f6fc, 0x1f700,0x1f773,
	0x1f780,0x1f7d8, 0x1f7e0,0x1f7eb, 0x1f800,0x1f80b, 0x1f810,0x1f847, 0x1f850,0x1f859, 0x1f860,0x1f887,
	0x1f890,0x1f8ad, 0x1f8b0,0x1f8b1, 0x1f900,0x1f978, 0x1f97a,0x1f9cb, 0x1f9cd,0x1fa53, 0x1fa60,0x1fa6d,
	0x1fa70,0x1fa74, 0x1fa78,0x1fa7a, 0x1fa80,0x1fa86, 0x1fa90,0x1faa8, 0x1fab0,0x1fab6, 0x1fac0,0x1fac2,
	0x1fad0,0x1fad6, 0x1fb00,0x1fb92, 0x1fb94,0x1fbca, 0x1fbf0,0x1fbf9, 0x20000,0x2a6dd, 0x2a700,0x2b734,
	0x2b740,0x2b81d, 0x2b820,0x2cea1, 0x2ceb0,0x2ebe0, 0x2f800,0x2fa1d, 0x30000,0x3134a, 0xe0100,0xe01ef,
};

/* Go's strconv.IsPrint: categories L, M, N, P, S and the ASCII space. */
static int is_print(uint32_t r)
{
	size_t lo = 0, hi = sizeof(print_ranges) / sizeof(print_ranges[0]) / 2;

	if (r < 0x80)
		return r >= 0x20 && r < 0x7f;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r < print_ranges[2 * mid])
			hi = mid;
		else if (r > print_ranges[2 * mid + 1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static const char hexdig[] = "0123456789abcdef";

/* Go strconv.Quote of s without the outer quotes, written to dst, which must
 * have room for 4 * len bytes (the worst case is \xHH for every byte).
 * Returns the number of bytes written. */
static size_t quote_core(char *dst, const unsigned char *s, size_t len)
{
	char *d = dst;
	size_t i = 0;

	while (i < len) {
		int32_t r;
		size_t w = cairn_utf8__decode(s + i, len - i, &r);

		if (r < 0) { /* a byte that is not valid UTF-8 */
			*d++ = '\\';
			*d++ = 'x';
			*d++ = hexdig[s[i] >> 4];
			*d++ = hexdig[s[i] & 15];
		} else if (r == '"' || r == '\\') {
			*d++ = '\\';
			*d++ = (char)r;
		} else if (is_print((uint32_t)r)) {
			memcpy(d, s + i, w);
			d += w;
		} else if (r < 0x20 || r == 0x7f) {
			static const char short_esc[] = "\a\b\f\n\r\t\v", short_chr[] = "abfnrtv";
			const char *e = r ? strchr(short_esc, r) : NULL;
			*d++ = '\\';
			if (e) {
				*d++ = short_chr[e - short_esc];
			} else {
				*d++ = 'x';
				*d++ = hexdig[r >> 4];
				*d++ = hexdig[r & 15];
			}
		} else {
			int digits = r < 0x10000 ? 4 : 8;
			*d++ = '\\';
			*d++ = r < 0x10000 ? 'u' : 'U';
			for (int k = digits - 1; k >= 0; k--)
				*d++ = hexdig[(r >> (4 * k)) & 15];
		}
		i += w;
	}
	return (size_t)(d - dst);
}

int cairn_go_quote(cairn_buf *out, const char *s, size_t len)
{
	int r;

	if (len > CAIRN_BUF_MAX / 4)
		return cairn_error_set(CAIRN_ENOMEM, "name of %zu bytes is too long to quote", len);
	if ((r = cairn_buf_reserve(out, 4 * len)) < 0)
		return r;
	out->len += quote_core((char *)out->data + out->len, (const unsigned char *)s, len);
	return 0;
}

/* A name in Go-quoted form for an error message, cut after 100 input bytes.
 * Two per-thread slots, so one message can show two names; each result is
 * valid until the second next call on the same thread. */
static const char *shown_n(const char *s, size_t len)
{
	static _Thread_local char slot[2][4 * 100 + 4];
	static _Thread_local int which;
	size_t n;
	char *d = slot[which];

	which ^= 1;
	n = quote_core(d, (const unsigned char *)s, len > 100 ? 100 : len);
	if (len > 100)
		memcpy(d + n, "...", 3), n += 3;
	d[n] = '\0';
	return d;
}

static const char *shown(const char *s)
{
	return shown_n(s, strlen(s));
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int cairn_go_unquote(cairn_buf *out, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	unsigned char tmp[4];
	const char *why = NULL;
	size_t i = 0;
	int r;

	cairn_buf_clear(out);
	if ((r = cairn_buf_reserve(out, len)) < 0)
		return r;
	while (i < len) {
		unsigned c = s[i];
		uint32_t v = 0;
		int is_byte = 0, n;

		if (c == '"') {
			why = "unescaped '\"'";
			goto bad;
		}
		if (c == '\n') {
			why = "unescaped newline";
			goto bad;
		}
		if (c != '\\') {
			int32_t rr;
			size_t w = cairn_utf8__decode(s + i, len - i, &rr);
			/* Go's Unquote turns a byte that is not UTF-8 into U+FFFD. */
			v = rr < 0 ? 0xfffd : (uint32_t)rr;
			is_byte = rr >= 0 && rr < 0x80;
			i += w;
			goto emit;
		}
		if (i + 1 >= len) {
			why = "trailing backslash";
			goto bad;
		}
		c = s[i + 1];
		i += 2;
		switch (c) {
		case 'a': v = '\a'; is_byte = 1; break;
		case 'b': v = '\b'; is_byte = 1; break;
		case 'f': v = '\f'; is_byte = 1; break;
		case 'n': v = '\n'; is_byte = 1; break;
		case 'r': v = '\r'; is_byte = 1; break;
		case 't': v = '\t'; is_byte = 1; break;
		case 'v': v = '\v'; is_byte = 1; break;
		case '\\': v = '\\'; is_byte = 1; break;
		case '"': v = '"'; is_byte = 1; break;
		case 'x': case 'u': case 'U':
			n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
			if (len - i < (size_t)n) {
				why = "short escape";
				goto bad;
			}
			for (int k = 0; k < n; k++) {
				int h = hexval(s[i + (size_t)k]);
				if (h < 0) {
					why = "bad hex escape";
					goto bad;
				}
				v = v << 4 | (uint32_t)h;
			}
			i += (size_t)n;
			/* \xHH is one raw byte; \u and \U are runes and must be valid. */
			is_byte = c == 'x';
			if (!is_byte && (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))) {
				why = "escape is not a valid rune";
				goto bad;
			}
			break;
		case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
			v = c - '0';
			for (int k = 0; k < 2; k++, i++) {
				if (i >= len || s[i] < '0' || s[i] > '7') {
					why = "bad octal escape";
					goto bad;
				}
				v = v << 3 | (uint32_t)(s[i] - '0');
			}
			if (v > 255) {
				why = "octal escape above \\377";
				goto bad;
			}
			is_byte = 1;
			break;
		default:
			/* Includes \' : Go rejects it inside a double-quoted string. */
			why = "unknown escape";
			goto bad;
		}
emit:
		if (v == 0) {
			why = "NUL byte";
			goto bad;
		}
		if (is_byte) {
			tmp[0] = (unsigned char)v;
			n = 1;
		} else {
			n = (int)utf8_encode(tmp, v);
		}
		if ((r = cairn_buf_append(out, tmp, (size_t)n)) < 0)
			return r;
	}
	return cairn_buf_cstr(out) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
bad:
	cairn_buf_clear(out);
	return cairn_error_set(CAIRN_EINVAL, "cannot unquote '%s': %s", shown_n(text, len), why);
}

/* ---- nodes ---------------------------------------------------------------- */

void cairn_node_release(cairn_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->user);
	free(n->group);
	free(n->linktarget);
	free(n->error);
	for (size_t i = 0; i < n->n_xattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->content);
	memset(n, 0, sizeof(*n));
}

/* Make room for element n (0-based) of an array of `size`-byte elements.
 * The array is reallocated to the next power of two every time: when it
 * already has that size the allocator hands the block straight back, so
 * appends cost amortised O(1), and an array another module allocated to its
 * exact length is still grown correctly (no hidden capacity is assumed). */
static int grow_for(void **arr, size_t n, size_t size)
{
	size_t cap = 4;
	void *p;

	while (cap <= n) {
		if (cap > SIZE_MAX / 2 / size)
			return cairn_error_set(CAIRN_ENOMEM, "array of %zu elements is too large", n);
		cap *= 2;
	}
	if (!(p = realloc(*arr, cap * size)))
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate %zu bytes", cap * size);
	*arr = p;
	return 0;
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return cairn_error_set(CAIRN_ENOMEM, "cannot copy a string of %zu bytes", strlen(src));
	return 0;
}

int cairn_node_add_content(cairn_node *n, const cairn_id *id)
{
	int r;

	if ((r = grow_for((void **)&n->content, n->n_content, sizeof(*n->content))) < 0)
		return r;
	n->content[n->n_content++] = *id;
	return 0;
}

/* Copies name and value; the node owns the copies. */
int cairn_node_add_xattr(cairn_node *n, const char *name, const void *value, size_t len)
{
	cairn_xattr x = { NULL, NULL, len };
	int r;

	if (!name || (!value && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "extended attribute without name or value");
	if ((r = dup_str(&x.name, name)) < 0)
		goto out;
	if (len > 0) {
		if (!(x.value = malloc(len))) {
			r = cairn_error_set(CAIRN_ENOMEM, "cannot allocate %zu bytes", len);
			goto out;
		}
		memcpy(x.value, value, len);
	}
	if ((r = grow_for((void **)&n->xattrs, n->n_xattrs, sizeof(*n->xattrs))) < 0)
		goto out;
	n->xattrs[n->n_xattrs++] = x;
	x.name = NULL;
	x.value = NULL;
out:
	free(x.name);
	free(x.value);
	return r;
}

/* dst is overwritten (not released first); on failure it is left empty. */
int cairn_node_copy(cairn_node *dst, const cairn_node *src)
{
	cairn_node n = *src;
	int r;

	n.name = n.user = n.group = n.linktarget = n.error = NULL;
	n.xattrs = NULL;
	n.n_xattrs = 0;
	n.content = NULL;
	n.n_content = 0;
	if ((r = dup_str(&n.name, src->name)) < 0 || (r = dup_str(&n.user, src->user)) < 0 ||
	    (r = dup_str(&n.group, src->group)) < 0 ||
	    (r = dup_str(&n.linktarget, src->linktarget)) < 0 ||
	    (r = dup_str(&n.error, src->error)) < 0)
		goto out;
	if (src->n_content > 0) {
		if ((r = grow_for((void **)&n.content, src->n_content - 1, sizeof(*n.content))) < 0)
			goto out;
		memcpy(n.content, src->content, src->n_content * sizeof(*n.content));
		n.n_content = src->n_content;
	}
	for (size_t i = 0; i < src->n_xattrs; i++)
		if ((r = cairn_node_add_xattr(&n, src->xattrs[i].name, src->xattrs[i].value,
			     src->xattrs[i].value_len)) < 0)
			goto out;
	*dst = n;
	memset(&n, 0, sizeof(n));
out:
	cairn_node_release(&n);
	if (r < 0)
		memset(dst, 0, sizeof(*dst));
	return r;
}

/* restic's restorer refuses names that would leave the target directory;
 * NUL cannot occur in a C string, so only these three cases remain. */
int cairn_node_name_check(const char *name)
{
	const char *why;

	if (!name || !*name)
		why = "empty";
	else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		why = "not allowed in a tree";
	else if (strchr(name, '/'))
		why = "contains '/'";
	else
		return 0;
	return cairn_error_set(CAIRN_ECORRUPT, "invalid node name '%s': %s", name ? shown(name) : "",
		why);
}

/* ---- trees ---------------------------------------------------------------- */

int cairn_tree_add(cairn_tree *t, cairn_node *node)
{
	if (!node)
		return cairn_error_set(CAIRN_EINVAL, "no node to add");
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		cairn_node *p;

		if (cap > SIZE_MAX / sizeof(*p))
			return cairn_error_set(CAIRN_ENOMEM, "tree of %zu nodes is too large", t->n);
		if (!(p = realloc(t->nodes, cap * sizeof(*p))))
			return cairn_error_set(CAIRN_ENOMEM, "cannot grow a tree to %zu nodes", cap);
		t->nodes = p;
		t->cap = cap;
	}
	t->nodes[t->n++] = *node;
	memset(node, 0, sizeof(*node));
	return 0;
}

void cairn_tree_release(cairn_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		cairn_node_release(&t->nodes[i]);
	free(t->nodes);
	t->nodes = NULL;
	t->n = t->cap = 0;
}

static const char *name_of(const cairn_node *n)
{
	return n->name ? n->name : "";
}

/* strcmp compares as unsigned char: exactly Go's byte-wise string order. */
static int node_cmp(const void *a, const void *b)
{
	return strcmp(name_of(a), name_of(b));
}

/* Sort unless already sorted; returns the index of a duplicate's second
 * occurrence, or 0 when all names are distinct (index 0 is never one). */
static size_t sort_nodes(cairn_tree *t)
{
	size_t i;

	for (i = 1; i < t->n; i++)
		if (node_cmp(&t->nodes[i - 1], &t->nodes[i]) >= 0)
			break;
	if (i < t->n)
		qsort(t->nodes, t->n, sizeof(*t->nodes), node_cmp);
	for (i = 1; i < t->n; i++)
		if (node_cmp(&t->nodes[i - 1], &t->nodes[i]) == 0)
			return i;
	return 0;
}

int cairn_tree_sort(cairn_tree *t)
{
	size_t dup = sort_nodes(t);

	if (dup)
		return cairn_error_set(CAIRN_EINVAL, "duplicate node name '%s' in tree",
			shown(name_of(&t->nodes[dup])));
	return 0;
}

const cairn_node *cairn_tree_find(const cairn_tree *t, const char *name)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, name_of(&t->nodes[mid]));
		if (c == 0)
			return &t->nodes[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- writing -------------------------------------------------------------- */

/* The encoder writes straight into the output buffer: each part of a node
 * first reserves an upper bound of what it can take, then writes bytes
 * through a pointer.  No printf: on trees of small files the formatted
 * numbers and times were most of the encoding time.  The bytes are those
 * the printf-based encoder wrote (tests/unit/test_tree.c keeps that one as
 * a reference and compares them on random nodes). */

/* Upper bound of a node's keys, numbers and times (everything but the
 * strings, xattrs and content ids, which reserve their own room). */
#define NODE_FIXED_MAX 512
#define TIME_TEXT_MAX 36  /* "9999-12-31T23:59:59.999999999+23:59" */
#define MAX_TZ_OFFSET (23 * 3600 + 59 * 60)

#define PUT_LIT(d, s) (memcpy((d), (s), sizeof(s) - 1), (d) += sizeof(s) - 1)

static char *put_u64(char *d, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*d++ = tmp[--n];
	return d;
}

static char *put_2(char *d, unsigned v)
{
	d[0] = (char)('0' + v / 10);
	d[1] = (char)('0' + v % 10);
	return d + 2;
}

static int64_t floor_div64(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if (a % b != 0 && (a < 0) != (b < 0))
		q--;
	return q;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (timestamp.c's
 * conversion). */
static void civil_from_days(int64_t z, int64_t *y_out, unsigned *m_out, unsigned *d_out)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div64(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d_out = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m_out = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y_out = yoe + era * 400 + (*m_out <= 2);
}

/* t as RFC3339Nano at zone offset tz (seconds east), exactly the text of
 * cairn_time_format(), which handles the rare cases here (a nanosecond
 * field out of range, an offset beyond +-23:59, a year outside
 * 0000..9999).  At most TIME_TEXT_MAX bytes. */
static char *put_time_text(char *d, cairn_time t, int tz)
{
	int off = tz / 60 * 60;
	int64_t days, sod, y;
	unsigned m, day, ns, aoff;

	if (t.nsec < 0 || t.nsec >= 1000000000 || off > MAX_TZ_OFFSET || off < -MAX_TZ_OFFSET)
		goto slow;
	days = floor_div64(t.sec, 86400);
	sod = t.sec - days * 86400 + off;
	if (sod < 0) {
		sod += 86400;
		days--;
	} else if (sod >= 86400) {
		sod -= 86400;
		days++;
	}
	civil_from_days(days, &y, &m, &day);
	if (y < 0 || y > 9999)
		goto slow;
	d = put_2(d, (unsigned)(y / 100));
	d = put_2(d, (unsigned)(y % 100));
	*d++ = '-';
	d = put_2(d, m);
	*d++ = '-';
	d = put_2(d, day);
	*d++ = 'T';
	d = put_2(d, (unsigned)(sod / 3600));
	*d++ = ':';
	d = put_2(d, (unsigned)(sod / 60 % 60));
	*d++ = ':';
	d = put_2(d, (unsigned)(sod % 60));
	if ((ns = (unsigned)t.nsec) != 0) {
		int digits = 9;

		while (ns % 10 == 0) {
			ns /= 10;
			digits--;
		}
		*d++ = '.';
		for (int k = digits - 1; k >= 0; k--, ns /= 10)
			d[k] = (char)('0' + ns % 10);
		d += digits;
	}
	if (off == 0) {
		*d++ = 'Z';
	} else {
		aoff = (unsigned)(off < 0 ? -off : off);
		*d++ = off < 0 ? '-' : '+';
		d = put_2(d, aoff / 3600);
		*d++ = ':';
		d = put_2(d, aoff / 60 % 60);
	}
	return d;
slow: {
		char text[CAIRN_TIME_TEXT_SIZE];
		size_t n;

		cairn_time_format(text, t, tz);
		n = strlen(text);
		memcpy(d, text, n);
		return d + n;
	}
}

/* The local zone's offset at a second, remembered for the seconds seen last
 * during one encoding (files of a directory mostly share a few seconds;
 * the C library's answer takes a global lock).  Per call of
 * cairn_tree_encode, so a change of TZ between calls is seen. */
#define ZONE_SLOTS 4
typedef struct zone_cache {
	int64_t sec[ZONE_SLOTS];
	int off[ZONE_SLOTS];
	unsigned n, next;
} zone_cache;

static int zone_offset(zone_cache *z, int64_t sec)
{
	cairn_time t = { sec, 0 };
	unsigned i;

	for (i = 0; i < z->n; i++)
		if (z->sec[i] == sec)
			return z->off[i];
	i = z->next;
	z->next = (z->next + 1) % ZONE_SLOTS;
	if (z->n < ZONE_SLOTS)
		z->n++;
	z->sec[i] = sec;
	/* restic writes node times in the local zone (Go's time.Local). */
	z->off[i] = cairn_time_local_offset(t);
	return z->off[i];
}

static char *put_time(char *d, zone_cache *z, cairn_time t)
{
	*d++ = '"';
	d = put_time_text(d, t, zone_offset(z, t.sec));
	*d++ = '"';
	return d;
}

static char *put_hex_id(char *d, const cairn_id *id)
{
	for (int i = 0; i < CAIRN_ID_SIZE; i++) {
		*d++ = hexdig[id->bytes[i] >> 4];
		*d++ = hexdig[id->bytes[i] & 15];
	}
	return d;
}

/* Start writing: room for `need` bytes, *d at the end of b. */
static int wr_begin(cairn_buf *b, size_t need, char **d)
{
	int r;

	if ((r = cairn_buf_reserve(b, need)) < 0)
		return r;
	*d = (char *)b->data + b->len;
	return 0;
}

static void wr_end(cairn_buf *b, char *d)
{
	b->len = (size_t)((unsigned char *)d - b->data);
	assert(b->len < b->cap);
}

/* 1 when Go's strconv.Quote and then JSON leave every byte of s as it is:
 * printable ASCII other than '"', '\\' and JSON's HTML escapes. */
static int plain_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&')
			return 0;
	}
	return 1;
}

/* ,"key": and the JSON string value. */
static int put_key_string(cairn_buf *b, const char *key_lit, size_t key_len, const char *value)
{
	int r;

	if ((r = cairn_buf_append(b, key_lit, key_len)) < 0)
		return r;
	return cairn_json__put_string(b, value, strlen(value));
}
#define PUT_KEY_STRING(b, key, value) put_key_string((b), ",\"" key "\":", sizeof(key) + 3, (value))

/* Refuse what a reader (ours or restic's restore) would reject, so every
 * encoded tree decodes.  CAIRN_EINVAL: the caller built a bad node. */
static int check_node_for_encode(const cairn_node *n)
{
	int r;

	if ((r = cairn_node_name_check(n->name)) < 0)
		return CAIRN_EINVAL;
	if (!type_valid(n->type))
		return cairn_error_set(CAIRN_EINVAL, "node '%s' has invalid type %d", shown(n->name),
			(int)n->type);
	if (n->type == CAIRN_NODE_DIR && !n->has_subtree)
		return cairn_error_set(CAIRN_EINVAL, "dir '%s' has no subtree", shown(n->name));
	for (size_t i = 0; i < n->n_xattrs; i++)
		if (!n->xattrs[i].name || !n->xattrs[i].name[0])
			return cairn_error_set(CAIRN_EINVAL, "node '%s' has an unnamed extended attribute",
				shown(n->name));
	return 0;
}

/* One node object, keys in restic's Node struct order (Go omitempty: zero
 * numbers and empty strings left out, except uid and gid).  q is scratch. */
static int put_node(cairn_buf *b, cairn_buf *q, zone_cache *z, const cairn_node *n)
{
	size_t name_len = strlen(n->name);
	char *d;
	int r;

	/* the name, Go-quoted and then JSON-encoded */
	if (plain_ascii(n->name, name_len)) {
		if ((r = wr_begin(b, name_len + 16, &d)) < 0)
			return r;
		PUT_LIT(d, "{\"name\":\"");
		memcpy(d, n->name, name_len);
		d += name_len;
		*d++ = '"';
		wr_end(b, d);
	} else {
		cairn_buf_clear(q);
		if ((r = cairn_go_quote(q, n->name, name_len)) < 0 ||
		    (r = cairn_buf_append(b, "{\"name\":", 8)) < 0 ||
		    (r = cairn_json__put_string(b, (const char *)q->data, q->len)) < 0)
			return r;
	}

	if ((r = wr_begin(b, NODE_FIXED_MAX, &d)) < 0)
		return r;
	PUT_LIT(d, ",\"type\":\"");
	memcpy(d, type_names[n->type], strlen(type_names[n->type]));
	d += strlen(type_names[n->type]);
	*d++ = '"';
	if (n->mode) {
		PUT_LIT(d, ",\"mode\":");
		d = put_u64(d, n->mode);
	}
	PUT_LIT(d, ",\"mtime\":");
	d = put_time(d, z, n->mtime);
	PUT_LIT(d, ",\"atime\":");
	d = put_time(d, z, n->atime);
	PUT_LIT(d, ",\"ctime\":");
	d = put_time(d, z, n->ctime);
	PUT_LIT(d, ",\"uid\":");
	d = put_u64(d, n->uid);
	PUT_LIT(d, ",\"gid\":");
	d = put_u64(d, n->gid);
	wr_end(b, d);

	if (n->user && *n->user && (r = PUT_KEY_STRING(b, "user", n->user)) < 0)
		return r;
	if (n->group && *n->group && (r = PUT_KEY_STRING(b, "group", n->group)) < 0)
		return r;

	if ((r = wr_begin(b, NODE_FIXED_MAX, &d)) < 0)
		return r;
	if (n->inode) {
		PUT_LIT(d, ",\"inode\":");
		d = put_u64(d, n->inode);
	}
	if (n->device_id) {
		PUT_LIT(d, ",\"device_id\":");
		d = put_u64(d, n->device_id);
	}
	if (n->size) {
		PUT_LIT(d, ",\"size\":");
		d = put_u64(d, n->size);
	}
	if (n->links) {
		PUT_LIT(d, ",\"links\":");
		d = put_u64(d, n->links);
	}
	wr_end(b, d);

	/* 0.14 writes the target as a plain string; bytes that are not UTF-8
	 * become U+FFFD there, exactly as restic 0.14 does. */
	if (n->linktarget && *n->linktarget && (r = PUT_KEY_STRING(b, "linktarget", n->linktarget)) < 0)
		return r;
	if (n->n_xattrs > 0) {
		if ((r = cairn_buf_append(b, ",\"extended_attributes\":[", 24)) < 0)
			return r;
		for (size_t i = 0; i < n->n_xattrs; i++) {
			const cairn_xattr *x = &n->xattrs[i];
			if ((r = cairn_buf_append(b, ",{\"name\":" + !i, 9 - !i)) < 0 ||
			    (r = cairn_json__put_string(b, x->name, strlen(x->name))) < 0 ||
			    (r = cairn_buf_append(b, ",\"value\":\"", 10)) < 0 ||
			    (r = cairn_base64_encode(b, x->value, x->value_len)) < 0 ||
			    (r = cairn_buf_append(b, "\"}", 2)) < 0)
				return r;
		}
		if ((r = cairn_buf_append(b, "]", 1)) < 0)
			return r;
	}

	/* device, content (never omitted: null for anything but a file, []
	 * for an empty file), subtree */
	if (n->n_content > (CAIRN_BUF_MAX - NODE_FIXED_MAX) / (CAIRN_ID_SIZE * 2 + 3))
		return cairn_error_set(CAIRN_ENOMEM, "content list of %zu ids is too long",
			n->n_content);
	if ((r = wr_begin(b, NODE_FIXED_MAX + n->n_content * (CAIRN_ID_SIZE * 2 + 3), &d)) < 0)
		return r;
	if (n->device) {
		PUT_LIT(d, ",\"device\":");
		d = put_u64(d, n->device);
	}
	if (n->type != CAIRN_NODE_FILE) {
		PUT_LIT(d, ",\"content\":null");
	} else {
		PUT_LIT(d, ",\"content\":[");
		for (size_t i = 0; i < n->n_content; i++) {
			if (i)
				*d++ = ',';
			*d++ = '"';
			d = put_hex_id(d, &n->content[i]);
			*d++ = '"';
		}
		*d++ = ']';
	}
	if (n->type == CAIRN_NODE_DIR) {
		PUT_LIT(d, ",\"subtree\":\"");
		d = put_hex_id(d, &n->subtree);
		*d++ = '"';
	}
	wr_end(b, d);
	if (n->error && *n->error && (r = PUT_KEY_STRING(b, "error", n->error)) < 0)
		return r;
	return cairn_buf_append(b, "}", 1);
}

int cairn_tree_encode(cairn_buf *out, cairn_tree *t)
{
	cairn_buf q = CAIRN_BUF_INIT;
	zone_cache z;
	int r;

	z.n = z.next = 0;
	cairn_buf_clear(out);
	for (size_t i = 0; i < t->n; i++)
		if ((r = check_node_for_encode(&t->nodes[i])) < 0)
			goto out;
	if ((r = cairn_tree_sort(t)) < 0 || (r = cairn_buf_append(out, "{\"nodes\":[", 10)) < 0)
		goto out;
	for (size_t i = 0; i < t->n; i++)
		if ((i && (r = cairn_buf_append(out, ",", 1)) < 0) ||
		    (r = put_node(out, &q, &z, &t->nodes[i])) < 0)
			goto out;
	r = cairn_buf_append(out, "]}\n", 3);
out:
	if (r < 0)
		cairn_buf_clear(out);
	cairn_buf_release(&q);
	return r;
}

/* ---- reading -------------------------------------------------------------- */

#define MAX_DEPTH 200 /* nesting allowed inside values we skip */

struct reader {
	const unsigned char *p, *start, *end;
	cairn_buf str;   /* the string value just read, NUL-terminated */
	cairn_buf key;   /* the object key just read */
	cairn_buf tmp;   /* unquoting and base64 */
};

static int fail(struct reader *j, const char *what)
{
	return cairn_error_set(CAIRN_ECORRUPT, "tree json: %s at offset %zu", what,
		(size_t)(j->p - j->start));
}

static int field_fail(struct reader *j, const char *field, const char *what)
{
	return cairn_error_set(CAIRN_ECORRUPT, "tree json: '%s' %s at offset %zu", field, what,
		(size_t)(j->p - j->start));
}

static void skip_ws(struct reader *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Next non-blank byte, or 0 at the end (never a valid token start). */
static int peek(struct reader *j)
{
	skip_ws(j);
	return j->p < j->end ? *j->p : 0;
}

static int expect(struct reader *j, int c, const char *what)
{
	if (peek(j) != c)
		return fail(j, what);
	j->p++;
	return 0;
}

/* Consume the literal `word` if it is next; 1 if it was. */
static int take_literal(struct reader *j, const char *word)
{
	size_t n = strlen(word);

	if (peek(j) != word[0] || (size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return 0;
	j->p += n;
	return 1;
}

static int take_null(struct reader *j)
{
	return take_literal(j, "null");
}

static int read_u4(struct reader *j, const unsigned char *at, uint32_t *v)
{
	*v = 0;
	if (j->end - at < 4)
		return -1;
	for (int k = 0; k < 4; k++) {
		int h = hexval(at[k]);
		if (h < 0)
			return -1;
		*v = *v << 4 | (uint32_t)h;
	}
	return 0;
}

/* A JSON string into out (replaced, NUL-terminated; may hold NUL bytes from
 * \u0000, callers that need C strings check).  Decoded like Go: invalid
 * UTF-8 and unpaired surrogates become U+FFFD, raw control bytes are an
 * error. */
static int read_string(struct reader *j, cairn_buf *out)
{
	unsigned char u8[4];
	int r;

	if (peek(j) != '"')
		return fail(j, "expected a string");
	j->p++;
	cairn_buf_clear(out);
	for (;;) {
		const unsigned char *run = j->p;
		uint32_t v;
		int32_t rr;
		size_t w;

		while (j->p < j->end && *j->p >= 0x20 && *j->p < 0x80 && *j->p != '"' && *j->p != '\\')
			j->p++;
		if ((r = cairn_buf_append(out, run, (size_t)(j->p - run))) < 0)
			return r;
		if (j->p >= j->end)
			return fail(j, "unterminated string");
		if (*j->p == '"') {
			j->p++;
			break;
		}
		if (*j->p < 0x20)
			return fail(j, "control character in string");
		if (*j->p >= 0x80) {
			w = cairn_utf8__decode(j->p, (size_t)(j->end - j->p), &rr);
			if (rr < 0)
				r = cairn_buf_append(out, "\xef\xbf\xbd", 3);
			else
				r = cairn_buf_append(out, j->p, w);
			if (r < 0)
				return r;
			j->p += w;
			continue;
		}
		/* backslash */
		if (j->end - j->p < 2)
			return fail(j, "unterminated string");
		j->p += 2;
		switch (j->p[-1]) {
		case '"': v = '"'; break;
		case '\\': v = '\\'; break;
		case '/': v = '/'; break;
		case 'b': v = '\b'; break;
		case 'f': v = '\f'; break;
		case 'n': v = '\n'; break;
		case 'r': v = '\r'; break;
		case 't': v = '\t'; break;
		case 'u':
			if (read_u4(j, j->p, &v) < 0)
				return fail(j, "bad \\u escape");
			j->p += 4;
			if (v >= 0xd800 && v < 0xe000) {
				uint32_t lo;
				/* A high surrogate followed by an escaped low one is a
				 * pair; anything else is U+FFFD and the next escape is
				 * read on its own. */
				if (v < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' &&
				    read_u4(j, j->p + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
					v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
					j->p += 6;
				} else {
					v = 0xfffd;
				}
			}
			break;
		default:
			return fail(j, "bad escape in string");
		}
		if ((r = cairn_buf_append(out, u8, utf8_encode(u8, v))) < 0)
			return r;
	}
	return cairn_buf_cstr(out) ? 0 : cairn_error_set(CAIRN_ENOMEM, "out of memory");
}

/* A string that must not contain NUL (it becomes a C string). */
static int read_cstring(struct reader *j, cairn_buf *out, const char *field)
{
	int r = read_string(j, out);

	if (r == 0 && memchr(out->data, 0, out->len))
		return field_fail(j, field, "contains a NUL byte");
	return r;
}

/* Replace *dst with a copy of the string value, unless the value is null
 * (which leaves a Go string field unchanged). */
static int read_str_field(struct reader *j, char **dst, const char *field)
{
	int r;
	char *s;

	if (take_null(j))
		return 0;
	if ((r = read_cstring(j, &j->str, field)) < 0)
		return r;
	if (!(s = strdup((const char *)j->str.data)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	free(*dst);
	*dst = s;
	return 0;
}

/* An unsigned integer in Go's sense: plain digits only (a sign, fraction
 * or exponent is a type error for a Go uint), at most max. */
static int read_uint(struct reader *j, uint64_t max, uint64_t *v, const char *field)
{
	uint64_t x = 0;

	if (peek(j) < '0' || *j->p > '9')
		return field_fail(j, field, "is not an unsigned integer");
	if (*j->p == '0' && j->end - j->p > 1 && j->p[1] >= '0' && j->p[1] <= '9')
		return field_fail(j, field, "has a leading zero");
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		unsigned d = *j->p++ - '0';
		if (x > (UINT64_MAX - d) / 10)
			return field_fail(j, field, "is out of range");
		x = x * 10 + d;
	}
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return field_fail(j, field, "is not an unsigned integer");
	if (x > max)
		return field_fail(j, field, "is out of range");
	*v = x;
	return 0;
}

static int read_u64_field(struct reader *j, uint64_t *dst, const char *field)
{
	return take_null(j) ? 0 : read_uint(j, UINT64_MAX, dst, field);
}

static int read_u32_field(struct reader *j, uint32_t *dst, const char *field)
{
	uint64_t v;
	int r;

	if (take_null(j))
		return 0;
	if ((r = read_uint(j, UINT32_MAX, &v, field)) < 0)
		return r;
	*dst = (uint32_t)v;
	return 0;
}

static int read_time_field(struct reader *j, cairn_time *dst, const char *field)
{
	int r;

	if (take_null(j))
		return 0;
	if ((r = read_cstring(j, &j->str, field)) < 0)
		return r;
	if ((r = cairn_time_parse(dst, (const char *)j->str.data)) < 0)
		return cairn_error_wrap(CAIRN_ECORRUPT, "tree json: '%s' at offset %zu", field,
			(size_t)(j->p - j->start));
	return 0;
}

/* Hex digit values (both cases, as cairn_id_from_hex accepts); hex_value_ok
 * tells which bytes are digits. */
static const signed char hex_value[256] = {
	['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7,
	['8'] = 8, ['9'] = 9, ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14,
	['f'] = 15, ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15,
};
static int hex_value_ok(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int read_id(struct reader *j, cairn_id *dst, const char *field)
{
	const unsigned char *p;
	int r;

	/* the usual form, "<64 hex digits>", straight from the input */
	if (peek(j) == '"' && j->end - j->p >= 2 * CAIRN_ID_SIZE + 2 &&
	    j->p[2 * CAIRN_ID_SIZE + 1] == '"') {
		p = j->p + 1;
		for (int i = 0; i < CAIRN_ID_SIZE; i++) {
			if (!hex_value_ok(p[2 * i]) || !hex_value_ok(p[2 * i + 1]))
				goto slow;
			dst->bytes[i] = (unsigned char)(hex_value[p[2 * i]] << 4 | hex_value[p[2 * i + 1]]);
		}
		j->p += 2 * CAIRN_ID_SIZE + 2;
		return 0;
	}
slow:
	if ((r = read_string(j, &j->str)) < 0)
		return r;
	if (cairn_id_from_hex_n(dst, (const char *)j->str.data, j->str.len) < 0)
		return cairn_error_wrap(CAIRN_ECORRUPT, "tree json: '%s' at offset %zu", field,
			(size_t)(j->p - j->start));
	return 0;
}

/* A JSON number, validated against the grammar and thrown away. */
static int skip_number(struct reader *j)
{
	const unsigned char *p = j->p, *e = j->end;

	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (p < e && *p >= '1' && *p <= '9')
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	else
		return fail(j, "bad number");
	if (p < e && *p == '.') {
		if (++p >= e || *p < '0' || *p > '9')
			return fail(j, "bad number");
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return fail(j, "bad number");
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	j->p = p;
	return 0;
}

/* Any JSON value (an unknown key's), checked for syntax and skipped. */
static int skip_value(struct reader *j, int depth)
{
	int c = peek(j), r;

	if (depth > MAX_DEPTH)
		return fail(j, "nesting too deep");
	if (c == '"')
		return read_string(j, &j->tmp);
	if (c == '-' || (c >= '0' && c <= '9'))
		return skip_number(j);
	if (take_literal(j, "null") || take_literal(j, "true") || take_literal(j, "false"))
		return 0;
	if (c != '{' && c != '[')
		return fail(j, "expected a value");
	j->p++;
	if (peek(j) == (c == '{' ? '}' : ']')) {
		j->p++;
		return 0;
	}
	for (;;) {
		if (c == '{' && ((r = read_string(j, &j->tmp)) < 0 || (r = expect(j, ':', "expected ':'")) < 0))
			return r;
		if ((r = skip_value(j, depth + 1)) < 0)
			return r;
		if (peek(j) == ',') {
			j->p++;
			continue;
		}
		return expect(j, c == '{' ? '}' : ']', c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

/* Iterate over an object's members: call with *first = 1 after nothing was
 * read; returns 1 with the key in j->key and the reader at the value, 0 at
 * the closing brace. */
static int next_member(struct reader *j, int *first)
{
	int r;

	if (*first) {
		*first = 0;
		if ((r = expect(j, '{', "expected '{'")) < 0)
			return r;
		if (peek(j) == '}') {
			j->p++;
			return 0;
		}
	} else {
		if (peek(j) == '}') {
			j->p++;
			return 0;
		}
		if ((r = expect(j, ',', "expected ',' or '}'")) < 0)
			return r;
	}
	if ((r = read_string(j, &j->key)) < 0 || (r = expect(j, ':', "expected ':'")) < 0)
		return r;
	skip_ws(j);
	return 1;
}

/* Same for array elements: 1 with the reader at the element, 0 at ']'.
 * After a ',' an element must follow (no trailing comma). */
static int next_element(struct reader *j, int *first)
{
	int r;

	if (*first) {
		*first = 0;
		if ((r = expect(j, '[', "expected '['")) < 0)
			return r;
		if (peek(j) == ']') {
			j->p++;
			return 0;
		}
		return 1;
	}
	if (peek(j) == ']') {
		j->p++;
		return 0;
	}
	if ((r = expect(j, ',', "expected ',' or ']'")) < 0)
		return r;
	return 1;
}

static int key_is(struct reader *j, const char *k)
{
	return strcmp((const char *)j->key.data, k) == 0;
}

static void drop_xattrs(cairn_node *n)
{
	for (size_t i = 0; i < n->n_xattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	n->xattrs = NULL;
	n->n_xattrs = 0;
}

/* [{"name":..,"value":"<base64>"},...]; replaces the node's list. */
static int read_xattrs(struct reader *j, cairn_node *n)
{
	cairn_buf name = CAIRN_BUF_INIT, value = CAIRN_BUF_INIT;
	int first = 1, r;

	drop_xattrs(n);
	if (take_null(j))
		return 0;
	while ((r = next_element(j, &first)) > 0) {
		int ofirst = 1, have_name = 0;

		cairn_buf_clear(&value);
		while ((r = next_member(j, &ofirst)) > 0) {
			if (key_is(j, "name")) {
				if (take_null(j))
					continue;
				if ((r = read_cstring(j, &name, "extended_attributes.name")) < 0)
					goto out;
				have_name = 1;
			} else if (key_is(j, "value")) {
				cairn_buf_clear(&value);
				if (take_null(j))
					continue;
				if ((r = read_string(j, &j->str)) < 0)
					goto out;
				if (cairn_base64_decode(&value, (const char *)j->str.data, j->str.len) < 0) {
					r = cairn_error_wrap(CAIRN_ECORRUPT,
						"tree json: extended attribute value at offset %zu",
						(size_t)(j->p - j->start));
					goto out;
				}
			} else if ((r = skip_value(j, 0)) < 0) {
				goto out;
			}
		}
		if (r < 0)
			goto out;
		if (!have_name || name.len == 0) {
			r = fail(j, "extended attribute without a name");
			goto out;
		}
		if ((r = cairn_node_add_xattr(n, (const char *)name.data, value.data, value.len)) < 0)
			goto out;
	}
out:
	cairn_buf_release(&name);
	cairn_buf_release(&value);
	return r;
}

/* ["<hex id>",...] or null; replaces the node's list.  *present says
 * whether there was an array at all (a file needs one, even empty). */
static int read_content(struct reader *j, cairn_node *n, int *present)
{
	int first = 1, r;
	cairn_id id;

	free(n->content);
	n->content = NULL;
	n->n_content = 0;
	*present = 0;
	if (take_null(j))
		return 0;
	*present = 1;
	while ((r = next_element(j, &first)) > 0) {
		if (take_null(j))
			return fail(j, "null blob id in content");
		if ((r = read_id(j, &id, "content")) < 0 || (r = cairn_node_add_content(n, &id)) < 0)
			return r;
	}
	return r;
}

/* Everything about one node object that is known only once it is complete. */
struct node_text {
	cairn_buf qname;  /* name as stored (Go-quoted) */
	cairn_buf type;
	int have_type, have_content;
	cairn_buf raw_target; /* linktarget_raw (restic 0.17+), decoded */
	int have_raw_target;
};

/* The keys of restic's Node, told apart by length and bytes (a key with a
 * NUL from \u0000 is unknown). */
enum node_key {
	K_UNKNOWN, K_NAME, K_TYPE, K_MODE, K_MTIME, K_ATIME, K_CTIME, K_UID, K_GID, K_USER,
	K_GROUP, K_INODE, K_DEVICE_ID, K_SIZE, K_LINKS, K_LINKTARGET, K_LINKTARGET_RAW,
	K_XATTRS, K_DEVICE, K_CONTENT, K_SUBTREE, K_ERROR
};

static enum node_key node_key(const cairn_buf *k)
{
	static const struct { const char *name; enum node_key key; } keys[] = {
		{ "name", K_NAME }, { "type", K_TYPE }, { "mode", K_MODE }, { "mtime", K_MTIME },
		{ "atime", K_ATIME }, { "ctime", K_CTIME }, { "uid", K_UID }, { "gid", K_GID },
		{ "user", K_USER }, { "group", K_GROUP }, { "inode", K_INODE },
		{ "device_id", K_DEVICE_ID }, { "size", K_SIZE }, { "links", K_LINKS },
		{ "linktarget", K_LINKTARGET }, { "linktarget_raw", K_LINKTARGET_RAW },
		{ "extended_attributes", K_XATTRS }, { "device", K_DEVICE }, { "content", K_CONTENT },
		{ "subtree", K_SUBTREE }, { "error", K_ERROR },
	};

	/* in the order restic writes them, so the usual key is found first */
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (k->data[0] == (unsigned char)keys[i].name[0] && strlen(keys[i].name) == k->len &&
		    memcmp(k->data, keys[i].name, k->len) == 0)
			return keys[i].key;
	return K_UNKNOWN;
}

static int read_node_fields(struct reader *j, cairn_node *n, struct node_text *nt)
{
	int first = 1, r;

	while ((r = next_member(j, &first)) > 0) {
		switch (j->key.len ? node_key(&j->key) : K_UNKNOWN) {
		case K_NAME:
			if (!take_null(j) && (r = read_string(j, &nt->qname)) < 0)
				return r;
			break;
		case K_TYPE:
			if (!take_null(j)) {
				if ((r = read_cstring(j, &nt->type, "type")) < 0)
					return r;
				nt->have_type = 1;
			}
			break;
		case K_MODE: r = read_u32_field(j, &n->mode, "mode"); break;
		case K_MTIME: r = read_time_field(j, &n->mtime, "mtime"); break;
		case K_ATIME: r = read_time_field(j, &n->atime, "atime"); break;
		case K_CTIME: r = read_time_field(j, &n->ctime, "ctime"); break;
		case K_UID: r = read_u32_field(j, &n->uid, "uid"); break;
		case K_GID: r = read_u32_field(j, &n->gid, "gid"); break;
		case K_USER: r = read_str_field(j, &n->user, "user"); break;
		case K_GROUP: r = read_str_field(j, &n->group, "group"); break;
		case K_INODE: r = read_u64_field(j, &n->inode, "inode"); break;
		case K_DEVICE_ID: r = read_u64_field(j, &n->device_id, "device_id"); break;
		case K_SIZE: r = read_u64_field(j, &n->size, "size"); break;
		case K_LINKS: r = read_u64_field(j, &n->links, "links"); break;
		case K_LINKTARGET: r = read_str_field(j, &n->linktarget, "linktarget"); break;
		case K_LINKTARGET_RAW:
			/* restic 0.17+: the exact target bytes when they are not
			 * UTF-8; it takes precedence over linktarget. */
			nt->have_raw_target = 0;
			cairn_buf_clear(&nt->raw_target);
			if (!take_null(j)) {
				if ((r = read_string(j, &j->str)) < 0)
					return r;
				if (cairn_base64_decode(&nt->raw_target, (const char *)j->str.data, j->str.len) < 0)
					return cairn_error_wrap(CAIRN_ECORRUPT, "tree json: 'linktarget_raw' at offset %zu",
						(size_t)(j->p - j->start));
				nt->have_raw_target = 1;
			}
			break;
		case K_XATTRS: r = read_xattrs(j, n); break;
		case K_DEVICE: r = read_u64_field(j, &n->device, "device"); break;
		case K_CONTENT: r = read_content(j, n, &nt->have_content); break;
		case K_SUBTREE:
			n->has_subtree = 0;
			if (!take_null(j)) {
				if ((r = read_id(j, &n->subtree, "subtree")) < 0)
					return r;
				n->has_subtree = 1;
			}
			break;
		case K_ERROR: r = read_str_field(j, &n->error, "error"); break;
		default: r = skip_value(j, 0); break;
		}
		if (r < 0)
			return r;
	}
	return r;
}

/* Parse one node object and validate it; n is empty on entry. */
static int read_node(struct reader *j, cairn_node *n)
{
	struct node_text nt = { CAIRN_BUF_INIT, CAIRN_BUF_INIT, 0, 0, CAIRN_BUF_INIT, 0 };
	size_t at = (size_t)(j->p - j->start);
	int r;

	n->mtime.sec = n->atime.sec = n->ctime.sec = GO_ZERO_TIME_SEC;
	if ((r = read_node_fields(j, n, &nt)) < 0)
		goto out;

	if ((r = cairn_go_unquote(&j->tmp, (const char *)nt.qname.data, nt.qname.len)) < 0) {
		r = cairn_error_wrap(CAIRN_ECORRUPT, "tree json: node at offset %zu", at);
		goto out;
	}
	if ((r = cairn_node_name_check((const char *)j->tmp.data)) < 0) {
		r = cairn_error_wrap(CAIRN_ECORRUPT, "tree json: node at offset %zu", at);
		goto out;
	}
	if ((r = dup_str(&n->name, (const char *)j->tmp.data)) < 0)
		goto out;
	if (!nt.have_type || cairn_node_type_parse(&n->type, (const char *)nt.type.data) < 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "node '%s' has unknown type '%s'", shown(n->name),
			nt.have_type ? shown((const char *)nt.type.data) : "");
		goto out;
	}
	if (n->type == CAIRN_NODE_FILE && !nt.have_content) {
		r = cairn_error_set(CAIRN_ECORRUPT, "file '%s' has no content list", shown(n->name));
		goto out;
	}
	if (n->type == CAIRN_NODE_DIR && !n->has_subtree) {
		r = cairn_error_set(CAIRN_ECORRUPT, "dir '%s' has no subtree", shown(n->name));
		goto out;
	}
	if (nt.have_raw_target) {
		if (memchr(nt.raw_target.data, 0, nt.raw_target.len)) {
			r = cairn_error_set(CAIRN_ECORRUPT, "symlink '%s' has a NUL byte in its target",
				shown(n->name));
			goto out;
		}
		free(n->linktarget);
		n->linktarget = NULL;
		if (!cairn_buf_cstr(&nt.raw_target) ||
		    (r = dup_str(&n->linktarget, (const char *)nt.raw_target.data)) < 0) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	cairn_buf_release(&nt.qname);
	cairn_buf_release(&nt.type);
	cairn_buf_release(&nt.raw_target);
	return r;
}

int cairn_tree_decode(cairn_tree *out, const char *json, size_t len)
{
	struct reader j = { (const unsigned char *)json, (const unsigned char *)json,
		(const unsigned char *)json + len, CAIRN_BUF_INIT, CAIRN_BUF_INIT, CAIRN_BUF_INIT };
	cairn_tree t = CAIRN_TREE_INIT;
	cairn_node n = CAIRN_NODE_INIT;
	int first = 1, r;
	size_t dup;

	if (!json && len > 0) {
		r = cairn_error_set(CAIRN_EINVAL, "no tree json");
		goto out;
	}
	while ((r = next_member(&j, &first)) > 0) {
		int efirst = 1;

		if (!key_is(&j, "nodes")) {
			if ((r = skip_value(&j, 0)) < 0)
				goto out;
			continue;
		}
		cairn_tree_release(&t); /* a repeated key replaces the list */
		if (take_null(&j))
			continue;
		while ((r = next_element(&j, &efirst)) > 0) {
			if (take_null(&j)) {
				r = fail(&j, "null node");
				goto out;
			}
			if ((r = read_node(&j, &n)) < 0 || (r = cairn_tree_add(&t, &n)) < 0)
				goto out;
		}
		if (r < 0)
			goto out;
	}
	if (r < 0)
		goto out;
	skip_ws(&j);
	if (j.p != j.end) {
		r = fail(&j, "data after the tree");
		goto out;
	}
	/* restic writes nodes sorted; lookups rely on it, so sort a foreign
	 * tree, and refuse an ambiguous one. */
	if ((dup = sort_nodes(&t)) != 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "tree json: duplicate node name '%s'",
			shown(t.nodes[dup].name));
		goto out;
	}
	*out = t;
	t = (cairn_tree)CAIRN_TREE_INIT;
out:
	cairn_node_release(&n);
	cairn_tree_release(&t);
	cairn_buf_release(&j.str);
	cairn_buf_release(&j.key);
	cairn_buf_release(&j.tmp);
	return r;
}
