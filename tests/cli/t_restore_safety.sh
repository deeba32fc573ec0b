#!/bin/bash
# t_restore_safety.sh: restore never writes outside its target and never
# writes unverified content.
#  1. symlinks planted in the target (where a dir goes: refused and named;
#     where a file goes: replaced, not followed) and a planted hard link to
#     a file outside: nothing outside the target changes;
#  2. a byte flipped in a data pack: exit 1, the message names the file, the
#     blob and the pack, the damaged file is not left behind, the rest is
#     restored exactly;
#  3. crafted trees with a node named ".." and one named "../escaped2"
#     (written through the library's public API, as restic cannot make
#     them): refused with a message naming the node, nothing escapes;
#  4. --verify re-reads what was written: a hard-link group whose members
#     list different content restores (restic semantics) but fails --verify.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)   # the checkout: include/ and build/libcairn.a

repo=$T/repo
mkdir -p "$T/data"
make_sample_tree "$T/data/src"
restic -r "$repo" init -q || fail "restic init"
(cd "$T/data" && restic -r "$repo" backup -q src) || fail "restic backup"

step "1a: a symlink in the target where a directory goes"
mkdir -p "$T/outside" "$T/t1"
ln -s "$T/outside" "$T/t1/src"
out=$(cairn -r "$repo" restore latest --target "$T/t1" 2>&1) && fail "restore through a symlink succeeded"
echo "$out"
echo "$out" | grep -F "'$T/t1/src'" | grep -q "symbolic link" || fail "the message does not name the symlink"
[ -z "$(ls -A "$T/outside")" ] || fail "something was written outside the target: $(ls -A "$T/outside")"
[ -L "$T/t1/src" ] || fail "the symlink itself was changed"

step "1b: symlinks and a hard link in the target where files go, a symlink deeper where a dir goes"
printf 'secret\n' >"$T/outside/victim"
cp -a "$T/outside/victim" "$T/victim.orig"
mkdir -p "$T/t2/src/sub"
ln -s "$T/outside/victim" "$T/t2/src/hello.txt"
ln -s "$T/outside/victim" "$T/t2/src/fifo"
ln "$T/outside/victim" "$T/t2/src/setuid"
ln -s "$T/outside" "$T/t2/src/sub/deeper"
out=$(cairn -r "$repo" restore latest --target "$T/t2" 2>&1) && fail "restore past a symlinked dir succeeded"
echo "$out"
echo "$out" | grep -F "'$T/t2/src/sub/deeper'" | grep -q "symbolic link" || fail "the message does not name sub/deeper"
cmp "$T/outside/victim" "$T/victim.orig" || fail "the file outside the target was written"
[ "$(stat -c '%a %h' "$T/outside/victim")" = "644 1" ] || fail "the file outside changed mode or kept the planted link"
[ "$(ls -A "$T/outside")" = victim ] || fail "something was created outside the target: $(ls -A "$T/outside")"
[ -f "$T/t2/src/hello.txt" ] && [ ! -L "$T/t2/src/hello.txt" ] && [ -p "$T/t2/src/fifo" ] ||
	fail "the planted symlinks were not replaced"
cmp "$T/t2/src/hello.txt" "$T/data/src/hello.txt" && cmp "$T/t2/src/setuid" "$T/data/src/setuid" ||
	fail "files at planted links have the wrong content"
rm "$T/t2/src/sub/deeper"
expect_exit 0 cairn -r "$repo" restore latest --target "$T/t2"
tree_equal "$T/data/src" "$T/t2/src"
cmp "$T/outside/victim" "$T/victim.orig" || fail "the file outside the target was written"

step "2: a flipped byte in the middle of a data pack"
cp -a "$repo" "$T/bad"
pack=$(ls -S "$T"/bad/data/*/* | head -1)     # the largest pack holds data blobs
chmod u+w "$pack"
python3 - "$pack" <<'EOF'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    off = os.path.getsize(p) // 2
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x55]))
EOF
out=$(cairn -r "$T/bad" restore latest --target "$T/t3" 2>&1)
rc=$?
echo "$out"
[ "$rc" -eq 1 ] || fail "restore from a damaged pack exited $rc, want 1"
damaged=$(echo "$out" | sed -n "s/^cairn: cannot restore '\([^']*\)': .*blob.*/\1/p" | head -1)
[ -n "$damaged" ] || fail "no message names the damaged file"
echo "$out" | grep -F "cannot restore '$damaged'" | grep -qF "$(basename "$pack")" ||
	fail "the message does not name the pack"
echo "$out" | grep -F "cannot restore '$damaged'" | grep -qE "[0-9a-f]{64}.*[0-9a-f]{64}" ||
	fail "the message does not name the blob"
[ ! -e "$T/t3$damaged" ] || fail "the damaged file '$damaged' was left in the target"
rel=${damaged#/src/}
diffs=$(python3 "$TESTS_DIR/cli/treecmp.py" "$T/data/src" "$T/t3/src")
echo "$diffs"
others=$(echo "$diffs" | grep -vF -- "$rel" | grep -v '^$' || true)
[ -z "$others" ] || fail "more than the damaged file differs: $others"
expect_exit 1 cairn -r "$T/bad" dump latest "$damaged" >/dev/null

step "3: crafted trees with nodes named '..' and '../escaped2'"
cat >"$T/craft.c" <<'EOF'
/* craft: add a snapshot whose root tree holds one node with the name given
 * on the command line (a dir holding the file "escaped", or a file), the
 * way a hostile or broken writer could; or ("hardlinks") two members of a
 * hard-link group with different content. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cairn/cairn.h>

#define TIMES "\"mtime\":\"2020-01-01T00:00:00Z\",\"atime\":\"2020-01-01T00:00:00Z\"," \
	"\"ctime\":\"2020-01-01T00:00:00Z\",\"uid\":0,\"gid\":0"

static void die(const char *what)
{
	fprintf(stderr, "craft: %s: %s\n", what, cairn_error_message());
	exit(1);
}

int main(int argc, char **argv)
{
	const char *pw = getenv("CAIRN_PASSWORD");
	cairn_backend *be;
	cairn_repo *repo;
	cairn_id data, inner, root;
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
	char dhex[65], ihex[65], json[4096];

	if (argc != 4)
		return 2;
	if (cairn_backend_open(&be, argv[1], 1) < 0) die("open backend");
	if (cairn_repo_open(&repo, be, pw, strlen(pw)) < 0) die("open repo");
	if (cairn_repo_load_index(repo) < 0) die("load index");
	if (cairn_repo_save_blob(&data, NULL, repo, CAIRN_BLOB_DATA, "escaped\n", 8, NULL) < 0) die("data");
	cairn_id_to_hex(dhex, &data);
	snprintf(json, sizeof(json), "{\"nodes\":[{\"name\":\"escaped\",\"type\":\"file\",\"mode\":420,"
		TIMES ",\"size\":8,\"content\":[\"%s\"]}]}\n", dhex);
	if (cairn_repo_save_blob(&inner, NULL, repo, CAIRN_BLOB_TREE, json, strlen(json), NULL) < 0) die("tree");
	cairn_id_to_hex(ihex, &inner);
	if (strcmp(argv[3], "hardlinks") == 0) {
		/* Two members of one hard-link group whose content lists differ:
		 * restore writes the first and links the second to it. */
		cairn_id other;
		char ohex[65];
		if (cairn_repo_save_blob(&other, NULL, repo, CAIRN_BLOB_DATA, "another\n", 8, NULL) < 0)
			die("data");
		cairn_id_to_hex(ohex, &other);
		snprintf(json, sizeof(json), "{\"nodes\":["
			"{\"name\":\"a\",\"type\":\"file\",\"mode\":420," TIMES ",\"inode\":42,"
			"\"device_id\":7,\"size\":8,\"links\":2,\"content\":[\"%s\"]},"
			"{\"name\":\"b\",\"type\":\"file\",\"mode\":420," TIMES ",\"inode\":42,"
			"\"device_id\":7,\"size\":8,\"links\":2,\"content\":[\"%s\"]}]}\n", dhex, ohex);
	} else if (strcmp(argv[3], "dir") == 0)
		snprintf(json, sizeof(json), "{\"nodes\":[{\"name\":\"%s\",\"type\":\"dir\",\"mode\":2147484141,"
			TIMES ",\"content\":null,\"subtree\":\"%s\"}]}\n", argv[2], ihex);
	else
		snprintf(json, sizeof(json), "{\"nodes\":[{\"name\":\"%s\",\"type\":\"file\",\"mode\":420,"
			TIMES ",\"size\":8,\"content\":[\"%s\"]}]}\n", argv[2], dhex);
	if (cairn_repo_save_blob(&root, NULL, repo, CAIRN_BLOB_TREE, json, strlen(json), NULL) < 0) die("root");
	if (cairn_repo_flush(repo) < 0) die("flush");
	s.time = cairn_time_now();
	s.tree = root;
	if (cairn_strlist_add(&s.paths, &s.n_paths, "/crafted") < 0) die("paths");
	if (cairn_repo_save_snapshot(repo, &s) < 0) die("snapshot");
	cairn_id_to_hex(dhex, &s.id);
	printf("%s\n", dhex);
	cairn_snapshot_release(&s);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	return 0;
}
EOF
# shellcheck disable=SC2046
cc -std=c11 -D_GNU_SOURCE -I"$ROOT/include" -o "$T/craft" "$T/craft.c" "$ROOT/build/libcairn.a" \
	$(pkg-config --libs libcrypto libzstd jansson libxxhash lmdb libcurl) -pthread -lm ||
	fail "cannot build the crafting helper"
mkdir -p "$T/crafted/t"
for spec in "..:dir" "../escaped2:file"; do
	name=${spec%:*} type=${spec##*:}
	id=$("$T/craft" "$repo" "$name" "$type") || fail "crafting a tree with '$name'"
	out=$(cairn -r "$repo" restore "$id" --target "$T/crafted/t" 2>&1) && fail "restore of a node named '$name' succeeded"
	echo "$out"
	echo "$out" | grep -qF "'$name'" || fail "the message does not name the node '$name'"
	[ ! -e "$T/crafted/escaped" ] && [ ! -e "$T/crafted/escaped2" ] && [ ! -e "$T/escaped" ] ||
		fail "a crafted node escaped the target"
	[ -z "$(ls -A "$T/crafted/t")" ] || fail "the crafted snapshot left entries: $(ls -A "$T/crafted/t")"
	expect_exit 1 cairn -r "$repo" ls "$id" >/dev/null
done
step "4: --verify catches a restored file whose content is not what its node lists"
id=$("$T/craft" "$repo" unused hardlinks) || fail "crafting a lying hard-link group"
expect_exit 0 cairn -r "$repo" restore "$id" --target "$T/hl"
[ "$(cat "$T/hl/b")" = escaped ] || fail "b is not a hard link to a"
out=$(cairn -r "$repo" restore "$id" --target "$T/hl2" --verify 2>&1) && fail "--verify passed a mismatch"
echo "$out"
echo "$out" | grep -q "verify failed for '/b'" || fail "--verify does not name '/b'"
echo "$out" | grep "verify failed for '/a'" && fail "--verify blames '/a'"
echo "restore stayed inside its target and wrote only verified data"
