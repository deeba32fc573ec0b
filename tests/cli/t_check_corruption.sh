#!/bin/bash
# t_check_corruption: `cairn check` finds every kind of damage and names the
# damaged file, on a repository restic wrote and on one cairn wrote.
#
# For each repository: a sound copy passes `cairn check --read-data` and
# `restic check --read-data`.  Then, each on a fresh copy: one flipped byte
# in the middle of a data pack (found by --read-data only), in an index file,
# in a snapshot file and in a tree-only pack; a deleted pack; a truncated
# pack; a pack that no index names (a hint, not an error).  Every damaged
# case must make cairn exit 1 naming the file, and restic must agree that the
# repository is damaged (so the test damages what it means to).  check takes
# an exclusive lock and must leave no lock behind.
. "$(dirname "$0")/lib.sh"

# make_source DIR: a few MB in several files and directories, so that the
# repository has several data blobs, several trees and at least one data
# pack and one tree pack.
make_source() {
	local d=$1
	mkdir -p "$d/a/b/c" "$d/empty"
	head -c 2500000 /dev/urandom >"$d/a/random.bin"
	yes 'a line of text that compresses well' | head -c 1500000 >"$d/a/b/text.txt"
	printf 'small\n' >"$d/a/b/c/small"
	: >"$d/a/empty-file"
	ln -s b/text.txt "$d/a/link"
	for i in 1 2 3 4 5; do printf 'file %s\n' "$i" >"$d/a/b/c/f$i"; done
}

# packs_of_type REPO TYPE: ids of the packs whose blobs are all of TYPE
# (data|tree), read from the index with restic (the oracle).
packs_of_type() {
	local repo=$1 type=$2 id
	for id in $(ls "$repo/index"); do
		restic -r "$repo" --no-lock cat index "$id"
	done | python3 -c '
import json, sys
want = sys.argv[1]
dec = json.JSONDecoder()
text = sys.stdin.read()
pos, types = 0, {}
while True:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos >= len(text):
        break
    doc, pos = dec.raw_decode(text, pos)
    for p in doc["packs"]:
        types.setdefault(p["id"], set()).update(b["type"] for b in p["blobs"])
for pid, ts in sorted(types.items()):
    if ts == {want}:
        print(pid)
' "$type"
}

pack_path() { echo "$1/data/${2:0:2}/$2"; }

# flip FILE OFFSET: invert one byte in place.
flip() {
	chmod u+w "$1"
	python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xff]))
EOF
}

fresh_copy() {
	rm -rf "$T/work"
	cp -a "$1" "$T/work"
	chmod -R u+w "$T/work"
}

# expect_check_fails NAME TEXT [ARGS...]: cairn check on $T/work exits 1, says
# "Fatal: repository contains errors" and names TEXT.
expect_check_fails() {
	local name=$1 text=$2 out got=0
	shift 2
	out=$(cairn -r "$T/work" check "$@" 2>&1) || got=$?
	echo "$out"
	[ "$got" -eq 1 ] || fail "$name: cairn check $* exited $got, want 1"
	grep -qF -- "$text" <<<"$out" || fail "$name: cairn check output does not name '$text'"
	grep -qF 'Fatal: repository contains errors' <<<"$out" || fail "$name: no final verdict"
	[ -z "$(ls "$T/work/locks")" ] || fail "$name: cairn check left a lock"
}

# restic_agrees NAME [ARGS...]: restic also finds the damage.
restic_agrees() {
	local name=$1 got=0
	shift
	restic -r "$T/work" check "$@" >"$T/restic.out" 2>&1 || got=$?
	[ "$got" -ne 0 ] || { cat "$T/restic.out"; fail "$name: restic check $* found no damage"; }
}

run_battery() {
	local label=$1 repo=$2 out data tree pack size idx snap

	step "$label: a sound repository passes"
	out=$(cairn -r "$repo" check --read-data 2>&1) || { echo "$out"; fail "$label: check failed on a sound repository"; }
	echo "$out"
	for phase in "load indexes" "check all packs" "check snapshots, trees and blobs" "read all data" "no errors were found"; do
		grep -qF "$phase" <<<"$out" || fail "$label: check output lacks '$phase'"
	done
	[ -z "$(ls "$repo/locks")" ] || fail "$label: check left a lock"
	restic -r "$repo" check --read-data >/dev/null || fail "$label: restic check --read-data fails on the sound repository"

	data=$(packs_of_type "$repo" data | head -1)
	tree=$(packs_of_type "$repo" tree | head -1)
	[ -n "$data" ] && [ -n "$tree" ] || fail "$label: need a data pack and a tree pack (data='$data' tree='$tree')"

	step "$label: one byte flipped in the middle of data pack $data"
	fresh_copy "$repo"
	pack=$(pack_path "$T/work" "$data")
	size=$(stat -c %s "$pack")
	flip "$pack" $((size / 2))
	expect_exit 0 cairn -r "$T/work" check     # sizes and trees are intact: only reading finds it
	expect_check_fails "$label data pack" "data/${data:0:2}/$data" --read-data
	restic_agrees "$label data pack" --read-data
	# two halves by --read-data-subset: exactly the half holding the pack fails
	fails=0
	for n in 1 2; do
		cairn -r "$T/work" check --read-data-subset "$n/2" >"$T/sub.out" 2>&1 || {
			fails=$((fails + 1))
			grep -qF "data/${data:0:2}/$data" "$T/sub.out" || fail "$label: subset $n/2 failed without naming the pack"
		}
	done
	[ "$fails" -eq 1 ] || fail "$label: $fails of the 2 subsets failed, want 1"

	step "$label: one byte flipped in an index file"
	fresh_copy "$repo"
	idx=$(ls "$T/work/index" | head -1)
	size=$(stat -c %s "$T/work/index/$idx")
	flip "$T/work/index/$idx" $((size / 2))
	expect_check_fails "$label index" "$idx"
	restic_agrees "$label index"

	step "$label: one byte flipped in a snapshot file"
	fresh_copy "$repo"
	snap=$(ls "$T/work/snapshots" | head -1)
	flip "$T/work/snapshots/$snap" 40
	expect_check_fails "$label snapshot" "$snap"
	restic_agrees "$label snapshot"

	step "$label: one byte flipped in tree pack $tree (inside its first blob)"
	fresh_copy "$repo"
	flip "$(pack_path "$T/work" "$tree")" 20
	expect_check_fails "$label tree pack" "data/${tree:0:2}/$tree"
	expect_check_fails "$label tree pack, read-data" "data/${tree:0:2}/$tree" --read-data
	restic_agrees "$label tree pack"

	step "$label: a deleted pack"
	fresh_copy "$repo"
	rm -f "$(pack_path "$T/work" "$data")"
	expect_check_fails "$label missing pack" "data/${data:0:2}/$data"
	out=$(cairn -r "$T/work" check 2>&1 || true)
	grep -qF "does not exist" <<<"$out" || fail "$label: missing pack not called missing"
	restic_agrees "$label missing pack"

	step "$label: a truncated pack"
	fresh_copy "$repo"
	pack=$(pack_path "$T/work" "$data")
	chmod u+w "$pack"
	truncate -s -100 "$pack"
	expect_check_fails "$label truncated pack" "data/${data:0:2}/$data"
	expect_check_fails "$label truncated pack, read-data" "data/${data:0:2}/$data" --read-data
	restic_agrees "$label truncated pack"

	step "$label: a pack in no index is only a hint"
	fresh_copy "$repo"
	mkdir -p "$T/work/data/00"
	cp "$(pack_path "$T/work" "$data")" "$T/work/data/00/00$(printf '%062d' 0)"
	out=$(cairn -r "$T/work" check --read-data 2>&1) || { echo "$out"; fail "$label: an unreferenced pack made check fail"; }
	grep -qF "not referenced in any index" <<<"$out" || fail "$label: unreferenced pack not mentioned"
	grep -qF "no errors were found" <<<"$out" || fail "$label: verdict missing"
}

make_source "$T/src"

step "restic writes a repository"
restic -r "$T/restic-repo" init >/dev/null || fail "restic init"
restic -r "$T/restic-repo" backup "$T/src" >/dev/null || fail "restic backup"
restic -r "$T/restic-repo" backup --tag second "$T/src/a" >/dev/null || fail "restic backup 2"
run_battery restic "$T/restic-repo"

step "cairn writes a repository"
cairn -r "$T/cairn-repo" init >/dev/null || fail "cairn init"
cairn -r "$T/cairn-repo" backup "$T/src" >/dev/null || fail "cairn backup"
cairn -r "$T/cairn-repo" backup --tag second "$T/src/a" >/dev/null || fail "cairn backup 2"
run_battery cairn "$T/cairn-repo"

echo "ok"
