#!/bin/bash
# backup's options: --exclude (name, absolute and relative path patterns),
# --tag/--host, --parent, --force, --one-file-system, several targets with
# the same last element (each kept under its full path, as restic does), a
# real clash of two targets at one place, relative targets (cleaned, leading
# ".." dropped, "." at the root), --help and usage errors.  restic reads
# every resulting snapshot.
. "$(dirname "$0")/lib.sh"

snap_field() { # snap_field ID FIELD: a snapshot field as JSON, read by restic
	restic -r "$T/repo" cat snapshot "$1" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get(sys.argv[1])))' "$2"
}
last_id() { python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]["snapshot_id"])' "$1"; }
entries() { grep -v '^snapshot [0-9a-f]\{8\} of ' "$1"; } # restic ls output without its header
summary() { python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1][sys.argv[2]])' "$1" "$2"; }

mkdir -p "$T/src/sub" "$T/src/skipdir" "$T/src/keep"
printf a >"$T/src/a.txt"; printf l >"$T/src/debug.log"; printf l >"$T/src/sub/deep.log"
printf t >"$T/src/sub/x.tmp"; printf t >"$T/src/keep/x.tmp"; printf s >"$T/src/skipdir/f"
cairn -r "$T/repo" init >/dev/null || fail "init"

step "--help and usage errors"
cairn backup --help | grep -q -- '--one-file-system' || fail "backup --help"
expect_exit 1 cairn -r "$T/repo" backup
expect_exit 1 cairn -r "$T/repo" backup --no-such-option "$T/src"

step "excludes, tags, host"
cairn -r "$T/repo" --json backup "$T/src" --exclude '*.log' --exclude "$T/src/skipdir" \
	--exclude 'sub/*.tmp' --tag a,b --tag c --host h1 >"$T/s1.json" || fail "backup 1"
id1=$(last_id "$T/s1.json")
restic -r "$T/repo" ls "$id1" >"$T/ls1" || fail "restic ls"
cat "$T/ls1"
# an absolute target keeps its whole path, with the directories above it
for up in /tmp "$T" "$T/src"; do
	grep -qx "$up" "$T/ls1" || fail "$up missing above the target"
done
for gone in debug.log sub/deep.log sub/x.tmp skipdir; do
	grep -qx "$T/src/$gone" "$T/ls1" && fail "$gone not excluded"
done
for kept in a.txt keep/x.tmp sub; do
	grep -qx "$T/src/$kept" "$T/ls1" || fail "$kept missing"
done
[ "$(entries "$T/ls1" | wc -l)" = 7 ] || fail "unexpected entries in the snapshot"
[ "$(snap_field "$id1" tags)" = '["a", "b", "c"]' ] || fail "tags $(snap_field "$id1" tags)"
[ "$(snap_field "$id1" hostname)" = '"h1"' ] || fail "hostname"
[ "$(snap_field "$id1" excludes)" = "[\"*.log\", \"$T/src/skipdir\", \"sub/*.tmp\"]" ] || fail "excludes"

step "parent: same host and paths only; --parent; --force"
cairn -r "$T/repo" --json backup "$T/src" --host h2 >"$T/s2.json" || fail "backup 2"
[ "$(snap_field "$(last_id "$T/s2.json")" parent)" = null ] || fail "parent from another host"
[ "$(summary "$T/s2.json" files_new)" = 6 ] || fail "host h2 files_new"
cairn -r "$T/repo" --json backup "$T/src" --host h2 >"$T/s3.json" || fail "backup 3"
[ "$(snap_field "$(last_id "$T/s3.json")" parent)" = "\"$(last_id "$T/s2.json")\"" ] || fail "parent of 3"
[ "$(summary "$T/s3.json" files_unmodified)" = 6 ] || fail "unmodified with parent"
cairn -r "$T/repo" --json backup "$T/src" --host h2 --parent "${id1:0:8}" >"$T/s4.json" || fail "backup 4"
[ "$(snap_field "$(last_id "$T/s4.json")" parent)" = "\"$id1\"" ] || fail "--parent not used"
[ "$(summary "$T/s4.json" files_unmodified)" = 2 ] || fail "files unmodified against --parent"
cairn -r "$T/repo" --json backup "$T/src" --host h2 --force >"$T/s5.json" || fail "backup 5"
[ "$(summary "$T/s5.json" files_unmodified)" = 0 ] || fail "--force still reused files"
[ "$(summary "$T/s5.json" data_blobs)" = 0 ] || fail "--force added data"
expect_exit 1 cairn -r "$T/repo" backup "$T/src" --parent ffffffff

step "several targets with the same last element, each under its full path"
mkdir -p "$T/one/data" "$T/two/data"; printf 1 >"$T/one/data/f"; printf 2 >"$T/two/data/f"
cairn -r "$T/repo" --json backup "$T/one/data" "$T/two/data" "$T/src/a.txt" >"$T/s6.json" || fail "backup 6"
id6=$(last_id "$T/s6.json")
restic -r "$T/repo" ls "$id6" >"$T/ls6" || fail "restic ls"
cat "$T/ls6"
for p in "$T/one/data/f" "$T/two/data/f" "$T/src/a.txt"; do
	grep -qx "$p" "$T/ls6" || fail "$p missing"
done
grep -q -- '/data-1' "$T/ls6" && fail "a name was given a suffix"
[ "$(entries "$T/ls6" | wc -l)" = 10 ] || fail "unexpected entries"  # /tmp, $T, 2 x (one, one/data, one/data/f), src, src/a.txt
[ "$(snap_field "$id6" paths)" = "[\"$T/one/data\", \"$T/two/data\", \"$T/src/a.txt\"]" ] || fail "paths"
restic -r "$T/repo" restore "$id6" --target "$T/r6" >/dev/null || fail "restore 6"
[ "$(cat "$T/r6$T/one/data/f")$(cat "$T/r6$T/two/data/f")$(cat "$T/r6$T/src/a.txt")" = 12a ] ||
	fail "targets with the same last element restored wrongly"

step "relative targets: cleaned, leading '..' dropped, '.' at the root"
(cd "$T/one" && "$CAIRN_BIN" -r "$T/repo" --json backup ./data/../data >"$T/s7.json") || fail "backup 7"
id7=$(last_id "$T/s7.json")
[ "$(snap_field "$id7" paths)" = "[\"$T/one/data\"]" ] || fail "relative path"
restic -r "$T/repo" ls "$id7" >"$T/ls7" || fail "restic ls 7"
[ "$(entries "$T/ls7" | tr '\n' ' ')" = "/data /data/f " ] || fail "layout of ./data/../data: $(cat "$T/ls7")"
(cd "$T/two" && "$CAIRN_BIN" -r "$T/repo" --json backup ../one/data >"$T/s7b.json") || fail "backup 7b"
restic -r "$T/repo" ls "$(last_id "$T/s7b.json")" >"$T/ls7b" || fail "restic ls 7b"
[ "$(entries "$T/ls7b" | tr '\n' ' ')" = "/one /one/data /one/data/f " ] ||
	fail "layout of ../one/data: $(cat "$T/ls7b")"
(cd "$T/one/data" && "$CAIRN_BIN" -r "$T/repo" --json backup . >"$T/s7c.json") || fail "backup 7c"
restic -r "$T/repo" ls "$(last_id "$T/s7c.json")" >"$T/ls7c" || fail "restic ls 7c"
[ "$(entries "$T/ls7c" | tr '\n' ' ')" = "/f " ] || fail "layout of .: $(cat "$T/ls7c")"

step "two targets at the same place from different real paths: both kept, the second renamed as restic does"
# From $T/two the relative ${T#/}/one/data (a copy below $T/two) maps to the
# same place in the snapshot as the absolute $T/one/data.  As restic 0.14
# does, both are kept and the newcomer's element at the clashing level is
# renamed "tmp-1" (for ../one/data and one/data: "one-1"); exit 0.
mkdir -p "$T/two$T/one/data"; printf X >"$T/two$T/one/data/f"
(cd "$T/two" && "$CAIRN_BIN" -r "$T/repo" --json backup "$T/one/data" "${T#/}/one/data") >"$T/s10.json" ||
	fail "clashing targets: exit $?"
id10=$(last_id "$T/s10.json")
restic -r "$T/repo" restore "$id10" --target "$T/r10" >/dev/null || fail "restore 10"
[ "$(cat "$T/r10$T/one/data/f")" = 1 ] || fail "the first of the clashing targets was not kept intact"
[ "$(cat "$T/r10/tmp-1${T#/tmp}/one/data/f")" = X ] ||
	{ find "$T/r10" | head -30; fail "the second clashing target is not under /tmp-1"; }
# the same with two relative targets: ../one/data and one/data both map to /one/data
mkdir -p "$T/two/one/data"; printf Y >"$T/two/one/data/f"
(cd "$T/two" && "$CAIRN_BIN" -r "$T/repo" --json backup ../one/data one/data) >"$T/s11.json" ||
	fail "clashing relative targets: exit $?"
restic -r "$T/repo" dump "$(last_id "$T/s11.json")" /one/data/f >"$T/f11" || fail "dump 11"
[ "$(cat "$T/f11")" = 1 ] || fail "relative clash: /one/data is not the first target's"
restic -r "$T/repo" dump "$(last_id "$T/s11.json")" /one-1/data/f >"$T/f11b" || fail "dump 11 /one-1"
[ "$(cat "$T/f11b")" = Y ] || fail "relative clash: the second target is not under /one-1"
# the same directory named twice (once with a "./") is no clash
code=0
(cd "$T/one" && "$CAIRN_BIN" -r "$T/repo" --json backup "$T/one/data" "$T/one/./data" data/..) >"$T/s12.json" 2>"$T/err12" || code=$?
cat "$T/err12"
[ "$code" = 0 ] || fail "the same target twice: exit $code"
grep -q "already in the snapshot" "$T/err12" && fail "the same target twice reported as a clash"
restic -r "$T/repo" ls "$(last_id "$T/s12.json")" >"$T/ls12" || fail "restic ls 12"
entries "$T/ls12" | grep -qx "$T/one/data/f" && entries "$T/ls12" | grep -qx "/data/f" ||
	fail "the same target twice: $(cat "$T/ls12")"

step "--one-file-system"
mkdir -p "$T/src/mnt"
if mount -t tmpfs tmpfs "$T/src/mnt" 2>/dev/null; then
	printf m >"$T/src/mnt/inside"
	cairn -r "$T/repo" --json backup "$T/src" --one-file-system >"$T/s8.json"; code=$?
	cairn -r "$T/repo" --json backup "$T/src" >"$T/s9.json" || code=$?
	umount "$T/src/mnt"
	[ "$code" = 0 ] || fail "backup with a mount"
	restic -r "$T/repo" ls "$(last_id "$T/s8.json")" >"$T/ls8"
	restic -r "$T/repo" ls "$(last_id "$T/s9.json")" >"$T/ls9"
	grep -qx "$T/src/mnt" "$T/ls8" || fail "mount point not kept"
	grep -qx "$T/src/mnt/inside" "$T/ls8" && fail "-x entered another file system"
	grep -qx "$T/src/mnt/inside" "$T/ls9" || fail "without -x the mount is backed up"
else
	echo "skip: cannot mount a tmpfs here"
fi
restic -r "$T/repo" check --read-data || fail "restic check"
echo ok
