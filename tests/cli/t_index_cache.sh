#!/bin/bash
# t_index_cache: the blob index cached in $XDG_CACHE_HOME/cairn/<repo id>/
# index.lmdb, with restic writing to the same repository.
#  - the first backup creates the cache; the next command merges the index
#    file that backup wrote, the one after reads none (-vv says when index
#    files are read);
#  - a snapshot restic adds brings a new index file: cairn merges it and
#    deduplicates against restic's blobs;
#  - `restic forget --prune` of the snapshots of one folder deletes packs and
#    rewrites the index files: cairn notices a merged file is gone, rebuilds
#    the cache (-v says so) and restores everything right;
#  - a deleted cache loses nothing; a cache overwritten with garbage is
#    rebuilt; --no-cache creates none; --cache-dir is used; a cache folder
#    that cannot be made gives a warning and the backup still works;
#  - restic check passes at the end.
. "$(dirname "$0")/lib.sh"

R=$T/repo
CACHE=$T/cache/cairn
mkdir -p "$T/a" "$T/b"
head -c 3000000 /dev/urandom >"$T/a/one.bin"
yes 'some text for the index cache test' | head -c 500000 >"$T/a/two.txt"
head -c 2000000 /dev/urandom >"$T/b/three.bin"

cairn init -r "$R" >/dev/null || fail "init"
id=$(cairn -r "$R" cat config | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
db=$CACHE/$id/index.lmdb

step "the first backup creates the cache"
cairn -r "$R" backup -q "$T/a" || fail "backup a"
[ -f "$db/data.mdb" ] || fail "no cache at $db"
[ -f "$CACHE/CACHEDIR.TAG" ] || fail "no CACHEDIR.TAG"

step "the backup's own index file is merged by the next command, then nothing is read"
out=$(cairn -r "$R" -vv ls latest 2>&1) || { echo "$out"; fail "ls"; }
grep -q "index: 1 of 1 index files read" <<<"$out" || { echo "$out"; fail "the backup's index file was not merged"; }
out=$(cairn -r "$R" -vv ls latest 2>&1) || { echo "$out"; fail "ls again"; }
grep -q "index files read" <<<"$out" && { echo "$out"; fail "a warm start read index files"; }

step "restic adds a snapshot: cairn merges its index file and deduplicates"
restic -r "$R" backup -q "$T/b" || fail "restic backup b"
before=$(du -sb "$R/data" | cut -f1)
out=$(cairn -r "$R" -vv backup "$T/b" 2>&1) || { echo "$out"; fail "cairn backup b"; }
grep -q "index: 1 of [0-9]* index files read" <<<"$out" || { echo "$out"; fail "restic's index file was not merged alone"; }
after=$(du -sb "$R/data" | cut -f1)
[ $((after - before)) -lt 200000 ] || fail "cairn stored restic's data again ($((after - before)) bytes)"

step "restic prunes: the cache is rebuilt and restores are right"
ids=$(restic -r "$R" snapshots --json --path "$T/a" \
	| python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))')
[ -n "$ids" ] || fail "no snapshot of $T/a"
restic -r "$R" forget -q $ids --prune >/dev/null || fail "restic prune"
out=$(cairn -r "$R" -v restore latest --target "$T/out" 2>&1) || { echo "$out"; fail "restore after prune"; }
grep -q "rebuilding" <<<"$out" || { echo "$out"; fail "no rebuild after prune"; }
tree_equal "$T/b" "$T/out$T/b" --no-atime
rm -rf "$T/out"

step "a deleted cache loses nothing"
rm -rf "$CACHE"
cairn -r "$R" backup -q "$T/a" || fail "backup without cache"
[ -f "$db/data.mdb" ] || fail "cache not recreated"
cairn -r "$R" restore latest --target "$T/out" >/dev/null || fail "restore a"
tree_equal "$T/a" "$T/out$T/a" --no-atime
rm -rf "$T/out"

step "a cache overwritten with garbage is rebuilt"
head -c 100000 /dev/urandom | dd of="$db/data.mdb" conv=notrunc 2>/dev/null
out=$(cairn -r "$R" -v backup "$T/a" 2>&1) || { echo "$out"; fail "backup over a damaged cache"; }
grep -q "rebuilding it" <<<"$out" || { echo "$out"; fail "damaged cache not rebuilt"; }
cairn -r "$R" restore latest --target "$T/out" >/dev/null || fail "restore after rebuild"
tree_equal "$T/a" "$T/out$T/a" --no-atime
rm -rf "$T/out"

step "--no-cache and --cache-dir"
rm -rf "$CACHE"
cairn -r "$R" --no-cache backup -q "$T/a" || fail "backup --no-cache"
[ -e "$CACHE" ] && fail "--no-cache created a cache"
cairn -r "$R" --cache-dir "$T/elsewhere" backup -q "$T/a" || fail "backup --cache-dir"
[ -f "$T/elsewhere/$id/index.lmdb/data.mdb" ] || fail "--cache-dir not used"
: >"$T/a-file"
out=$(cairn -r "$R" --cache-dir "$T/a-file/sub" backup "$T/a" 2>&1) || { echo "$out"; fail "backup with an unusable cache folder"; }
grep -q "keeping the index in memory" <<<"$out" || { echo "$out"; fail "no warning for an unusable cache folder"; }

step "restic check"
restic -r "$R" check -q || fail "restic check"
cairn -r "$R" check >/dev/null || fail "cairn check"
echo "t_index_cache: ok"
