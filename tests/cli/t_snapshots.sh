#!/bin/bash
# t_snapshots: `cairn snapshots` prints what `restic snapshots` prints (table
# byte for byte, --json as the same JSON values) with and without filters,
# on a repository restic wrote and on one cairn wrote; snapshot ids and
# prefixes select; `cairn cat` prints the same config, snapshot, index, key
# and blob documents as `restic cat`; none of it leaves a lock.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/A/sub" "$T/B"
printf 'alpha\n' >"$T/A/a.txt"
printf 'deeper\n' >"$T/A/sub/d.txt"
head -c 300000 /dev/urandom >"$T/B/b.bin"

json_equal() { # FILE1 FILE2
	python3 - "$1" "$2" <<'EOF' || fail "JSON differs: $1 $2"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    print("cairn: ", json.dumps(a, indent=1))
    print("restic:", json.dumps(b, indent=1))
    sys.exit(1)
EOF
}

# compare REPO ARGS...: cairn's table is restic's, byte for byte.
compare() {
	local repo=$1
	shift
	cairn -r "$repo" snapshots "$@" >"$T/c.txt" || fail "cairn snapshots $* failed"
	restic -r "$repo" --no-lock snapshots "$@" >"$T/r.txt" || fail "restic snapshots $* failed"
	diff -u "$T/r.txt" "$T/c.txt" || fail "table differs for: snapshots $*"
}

# compare_json REPO ARGS...: cairn's --json is restic's (as JSON values).
compare_json() {
	local repo=$1
	shift
	cairn -r "$repo" snapshots --json "$@" >"$T/c.json" || fail "cairn snapshots --json $* failed"
	restic -r "$repo" --no-lock snapshots --json "$@" >"$T/r.json" || fail "restic snapshots --json $*"
	json_equal "$T/c.json" "$T/r.json"
}

count() { # REPO ARGS...: number of snapshots cairn lists as JSON
	local repo=$1
	shift
	cairn -r "$repo" snapshots --json "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# run_battery LABEL REPO [quick]: "quick" (for restic's repository, whose
# calibrated scrypt key makes every command cost ~0.5 s) skips the cat
# checks of keys, blobs and packs, which do not depend on who wrote the repo.
run_battery() {
	local label=$1 repo=$2 quick=${3:-} ids newest tree short data

	step "$label: tables and JSON agree with restic"
	compare "$repo"
	compare "$repo" --host h1 --host h2
	compare "$repo" --tag a,b
	compare "$repo" --path "$T/A" --path "$T/B"
	compare "$repo" --host nomatch
	compare_json "$repo"
	compare_json "$repo" --tag c --tag a
	[ "$(count "$repo" --host h1)" = 2 ] || fail "$label: --host h1 wants 2"
	[ "$(count "$repo" --tag b)" = 2 ] || fail "$label: --tag b wants 2"
	[ "$(count "$repo" --path "$T/B")" = 2 ] || fail "$label: --path B wants 2"
	[ "$(cairn -r "$repo" snapshots --host nomatch --json)" = "[]" ] || fail "$label: empty JSON is not []"
	cairn -r "$repo" snapshots >"$T/c.txt"
	grep -q '^3 snapshots$' "$T/c.txt" || fail "$label: footer"

	# ids, oldest first, and the JSON document's fields
	ids=$(cairn -r "$repo" snapshots --json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    assert s["short_id"] == s["id"][:8] and len(s["id"]) == 64
    for k in ("time", "tree", "paths", "hostname"):
        assert k in s, k
    assert "parent" not in s or len(s["parent"]) == 64
    print(s["id"])
') || fail "$label: JSON fields"
	newest=$(tail -1 <<<"$ids")
	short=${newest:0:8}

	step "$label: ids, prefixes and latest select"
	[ "$(count "$repo" "$short")" = 1 ] || fail "$label: snapshots SHORTID"
	[ "$(cairn -r "$repo" snapshots --json latest | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" = "$newest" ] \
		|| fail "$label: latest is not the newest"
	expect_exit 1 cairn -r "$repo" snapshots ffffffffffffffff0

	step "$label: cat agrees with restic"
	cairn -r "$repo" cat snapshot "$short" >"$T/c.json" || fail "cairn cat snapshot prefix"
	restic -r "$repo" --no-lock cat snapshot "$newest" >"$T/r.json"
	json_equal "$T/c.json" "$T/r.json"
	cairn -r "$repo" cat snapshot latest >"$T/c2.json" || fail "cairn cat snapshot latest"
	json_equal "$T/c2.json" "$T/r.json"
	expect_exit 1 cairn -r "$repo" cat snapshot 0000000000000000000000000000000000000000000000000000000000000000
	cairn -r "$repo" cat config >"$T/c.json" || fail "cat config"
	restic -r "$repo" --no-lock cat config >"$T/r.json"
	json_equal "$T/c.json" "$T/r.json"
	for idx in $(ls "$repo/index"); do
		cairn -r "$repo" cat index "${idx:0:10}" >"$T/c.json" || fail "cat index"
		restic -r "$repo" --no-lock cat index "$idx" >"$T/r.json"
		json_equal "$T/c.json" "$T/r.json"
	done
	if [ -n "$quick" ]; then
		[ -z "$(ls "$repo/locks")" ] || fail "$label: a lock was left behind"
		return
	fi
	key=$(ls "$repo/keys" | head -1)
	cairn -r "$repo" cat key "$key" >"$T/c.json" || fail "cat key"
	restic -r "$repo" --no-lock cat key "$key" >"$T/r.json"
	json_equal "$T/c.json" "$T/r.json"
	expect_exit 1 cairn -r "$repo" cat masterkey
	tree=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tree"])' "$T/c2.json")
	cairn -r "$repo" cat tree "$tree" >"$T/c.bin" || fail "cat tree"
	restic -r "$repo" --no-lock cat blob "$tree" >"$T/r.bin"
	cmp "$T/c.bin" "$T/r.bin" || fail "cat tree differs from restic cat blob"
	cairn -r "$repo" cat blob "$tree" >"$T/c.bin" || fail "cat blob (tree)"
	cmp "$T/c.bin" "$T/r.bin" || fail "cat blob of a tree differs"
	# a data blob: the content of B/b.bin (one chunk, 300 kB)
	data=$(for idx in $(ls "$repo/index"); do cairn -r "$repo" cat index "$idx"; done | python3 -c '
import json, sys
dec, text, pos = json.JSONDecoder(), sys.stdin.read(), 0
while pos < len(text):
    if text[pos].isspace():
        pos += 1
        continue
    doc, pos = dec.raw_decode(text, pos)
    for p in doc["packs"]:
        for b in p["blobs"]:
            if b["type"] == "data" and b.get("uncompressed_length", b["length"] - 32) == 300000:
                print(b["id"])
' | head -1)
	[ -n "$data" ] || fail "$label: no 300000-byte data blob in the index"
	cairn -r "$repo" cat blob "$data" >"$T/c.bin" || fail "cat blob"
	cmp "$T/c.bin" "$T/B/b.bin" || fail "cat blob is not the file content"
	pack=$(ls "$repo"/data/*/* | head -1)
	cairn -r "$repo" cat pack "$(basename "$pack")" >"$T/c.bin" || fail "cat pack"
	cmp "$T/c.bin" "$pack" || fail "cat pack is not the pack file"

	[ -z "$(ls "$repo/locks")" ] || fail "$label: a lock was left behind"
}

step "restic writes three snapshots"
R=$T/restic-repo
restic -r "$R" init >/dev/null || fail "restic init"
restic -r "$R" backup --host h1 --tag a,b "$T/A" >/dev/null || fail "backup 1"
restic -r "$R" backup --host h2 --tag c "$T/B" >/dev/null || fail "backup 2"
restic -r "$R" backup --host h1 --tag b "$T/B" "$T/A" >/dev/null || fail "backup 3"
run_battery restic "$R" quick

step "cairn writes three snapshots"
C=$T/cairn-repo
cairn -r "$C" init >/dev/null || fail "cairn init"
cairn -r "$C" backup --host h1 --tag a --tag b "$T/A" >/dev/null || fail "cairn backup 1"
cairn -r "$C" backup --host h2 --tag c "$T/B" >/dev/null || fail "cairn backup 2"
cairn -r "$C" backup --host h1 --tag b "$T/B" "$T/A" >/dev/null || fail "cairn backup 3"
run_battery cairn "$C"

step "help"
cairn snapshots --help | grep -q 'Usage: cairn snapshots' || fail "snapshots --help"
cairn cat --help | grep -q 'Usage: cairn cat' || fail "cat --help"
cairn unlock --help | grep -q 'Usage: cairn unlock' || fail "unlock --help"
cairn check --help | grep -q 'Usage: cairn check' || fail "check --help"
echo ok
