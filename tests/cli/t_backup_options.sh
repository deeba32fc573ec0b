#!/bin/bash
# backup's options: --exclude (name, absolute and relative path patterns),
# --tag/--host, --parent, --force, --one-file-system, several targets with
# the same last element, relative targets, --help and usage errors.  restic
# reads every resulting snapshot.
. "$(dirname "$0")/lib.sh"

snap_field() { # snap_field ID FIELD: a snapshot field as JSON, read by restic
	restic -r "$T/repo" cat snapshot "$1" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get(sys.argv[1])))' "$2"
}
last_id() { python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]["snapshot_id"])' "$1"; }
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
for gone in debug.log sub/deep.log sub/x.tmp skipdir; do
	grep -qx "/src/$gone" "$T/ls1" && fail "$gone not excluded"
done
for kept in a.txt keep/x.tmp sub; do
	grep -qx "/src/$kept" "$T/ls1" || fail "$kept missing"
done
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

step "several targets, clashing names, a relative target"
mkdir -p "$T/one/data" "$T/two/data"; printf 1 >"$T/one/data/f"; printf 2 >"$T/two/data/f"
cairn -r "$T/repo" --json backup "$T/one/data" "$T/two/data" "$T/src/a.txt" >"$T/s6.json" || fail "backup 6"
id6=$(last_id "$T/s6.json")
restic -r "$T/repo" ls "$id6" >"$T/ls6" || fail "restic ls"
cat "$T/ls6"
grep -qx /data/f "$T/ls6" && grep -qx /data-1/f "$T/ls6" && grep -qx /a.txt "$T/ls6" || fail "top-level names"
[ "$(snap_field "$id6" paths)" = "[\"$T/one/data\", \"$T/two/data\", \"$T/src/a.txt\"]" ] || fail "paths"
restic -r "$T/repo" restore "$id6" --target "$T/r6" >/dev/null || fail "restore 6"
[ "$(cat "$T/r6/data/f")$(cat "$T/r6/data-1/f")" = 12 ] || fail "clashing targets restored wrongly"
(cd "$T/one" && "$CAIRN_BIN" -r "$T/repo" --json backup ./data/../data >"$T/s7.json") || fail "backup 7"
[ "$(snap_field "$(last_id "$T/s7.json")" paths)" = "[\"$T/one/data\"]" ] || fail "relative path"

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
	grep -qx /src/mnt "$T/ls8" || fail "mount point not kept"
	grep -qx /src/mnt/inside "$T/ls8" && fail "-x entered another file system"
	grep -qx /src/mnt/inside "$T/ls9" || fail "without -x the mount is backed up"
else
	echo "skip: cannot mount a tmpfs here"
fi
restic -r "$T/repo" check --read-data || fail "restic check"
echo ok
