#!/bin/bash
# The chunker cuts where restic cuts: restic backs up a 40 MiB file of
# seeded pseudo-random data into a repository restic created (with its own
# random polynomial), then cairn backs up the same file into the same
# repository, reading it again (--force), and adds no new data blob.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/src"
openssl enc -aes-128-ctr -pass pass:cairn-chunker-parity -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c 40M >"$T/src/big.bin"
[ "$(stat -c %s "$T/src/big.bin")" = 41943040 ] || fail "could not make the test file"
# and a file that is mostly long zero runs with some data in between
{ head -c 3M /dev/zero; head -c 700000 "$T/src/big.bin"; head -c 2M /dev/zero; } >"$T/src/zeros.bin"

step "restic init and backup"
restic -r "$T/repo" init >/dev/null || fail "restic init"
restic -r "$T/repo" backup "$T/src" >/dev/null || fail "restic backup"
restic -r "$T/repo" list blobs >"$T/blobs.before" || fail "restic list blobs"
before=$(grep -c '^data ' "$T/blobs.before")
[ "$before" -ge 20 ] || fail "restic made only $before data blobs"

step "cairn backup of the same files into the same repository"
cairn -r "$T/repo" --json backup --force "$T/src" >"$T/summary.json" || fail "cairn backup exited $?"
cat "$T/summary.json"
python3 - "$T/summary.json" <<'PY' || fail "cairn added data blobs: its cuts differ from restic's"
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
assert s["files_new"] == 2 and s["total_bytes_processed"] == 41943040 + 5942880, s
assert s["data_blobs"] == 0, s
PY
restic -r "$T/repo" list blobs >"$T/blobs.after" || fail "restic list blobs"
after=$(grep -c '^data ' "$T/blobs.after")
[ "$after" = "$before" ] || fail "data blobs: $before before, $after after"

step "the repository is still sound and cairn's snapshot restores"
restic -r "$T/repo" check || fail "restic check"
restic -r "$T/repo" restore latest --target "$T/out" >/dev/null || fail "restic restore"
# both snapshots keep the target's whole path, as restic lays it out
cmp "$T/src/big.bin" "$T/out$T/src/big.bin" || fail "big.bin differs"
cmp "$T/src/zeros.bin" "$T/out$T/src/zeros.bin" || fail "zeros.bin differs"
echo "ok: $before data blobs, none added"
