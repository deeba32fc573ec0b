#!/bin/bash
# SIGINT and SIGTERM end a backup cleanly: exit 130, no snapshot, the lock
# removed, what was stored so far complete and indexed (restic check passes
# without a prior unlock), and the next backup reuses it and completes.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/src"
openssl enc -aes-128-ctr -pass pass:cairn-interrupt -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c 160M >"$T/src/big.bin"
cairn -r "$T/repo" init >/dev/null || fail "init"

# Start a backup and send `sig` once it has stored a pack of its own (packs
# of an earlier round do not count: the signal must not come before cairn
# has installed its handlers).
interrupt_backup() {
	local sig=$1 code=0 before
	before=$(find "$T/repo/data" -type f 2>/dev/null | wc -l)
	"$CAIRN_BIN" -r "$T/repo" backup "$T/src" >"$T/out.txt" 2>"$T/err.txt" &
	local pid=$!
	for _ in $(seq 1 300); do
		[ "$(find "$T/repo/data" -type f 2>/dev/null | wc -l)" -gt "$before" ] && break
		sleep 0.05
	done
	kill -"$sig" "$pid" 2>/dev/null || fail "backup ended before it could be interrupted"
	wait "$pid" || code=$?
	cat "$T/out.txt" "$T/err.txt"
	[ "$code" = 130 ] || fail "SIG$sig: exit code $code, want 130"
	grep -q 'interrupted, no snapshot saved' "$T/err.txt" || fail "SIG$sig: no message"
	[ -z "$(ls "$T/repo/locks")" ] || fail "SIG$sig: lock left behind"
	[ -z "$(ls "$T/repo/snapshots")" ] || fail "SIG$sig: a snapshot was saved"
}

step "SIGINT"
interrupt_backup INT
[ -n "$(ls "$T/repo/index")" ] || fail "the packs stored before the interrupt were not indexed"
restic -r "$T/repo" check || fail "restic check after SIGINT"

step "SIGTERM"
interrupt_backup TERM
restic -r "$T/repo" check || fail "restic check after SIGTERM"

step "the next backup completes and reuses the stored data"
cairn -r "$T/repo" --json backup "$T/src" >"$T/summary.json" || fail "backup after interrupts"
python3 - "$T/summary.json" <<'PY' || fail "summary"
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
assert s["files_new"] == 1 and s["total_bytes_processed"] == 160 << 20, s
assert s["data_added"] < 150 << 20, s   # some chunks came from the interrupted runs
PY
restic -r "$T/repo" check --read-data || fail "restic check"
restic -r "$T/repo" restore latest --target "$T/out" >/dev/null || fail "restic restore"
cmp "$T/src/big.bin" "$T/out$T/src/big.bin" || fail "restored file differs"
echo ok
