#!/bin/bash
# t_restore_interrupt.sh: SIGINT stops a restore cleanly: exit 130 with
# "interrupted", the repository lock removed, and no partly written file
# left looking restored.
source "$(dirname "$0")/lib.sh"

repo=$T/repo
mkdir -p "$T/data/src"
for i in 1 2 3 4; do head -c 64M /dev/urandom >"$T/data/src/big$i.bin"; done
restic -r "$repo" init -q || fail "restic init"
(cd "$T/data" && restic -r "$repo" backup -q src) || fail "restic backup"

step "SIGINT while restoring"
# The binary itself, not the cairn() function: a backgrounded function is a
# subshell that would get the signal instead.
"$CAIRN_BIN" -r "$repo" restore latest --target "$T/out" --verify >"$T/log" 2>&1 &
pid=$!
# Wait until cairn holds its lock: its signal handlers are installed by then.
for _ in $(seq 1 20000); do
	[ -n "$(ls -A "$repo/locks" 2>/dev/null)" ] && break
	kill -0 "$pid" 2>/dev/null || break
done
[ -n "$(ls -A "$repo/locks")" ] || fail "cairn never took its lock"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
cat "$T/log"
[ "$rc" -eq 130 ] || fail "interrupted restore exited $rc, want 130"
grep -q "interrupted" "$T/log" || fail "no 'interrupted' message"
[ -z "$(ls -A "$repo/locks")" ] || fail "the lock was left behind"
for f in "$T"/out/src/*; do
	[ -e "$f" ] || continue
	cmp "$f" "$T/data/src/$(basename "$f")" || fail "a partly written file was left: $f"
done
[ "$(ls "$T/out/src" 2>/dev/null | wc -l)" -lt 4 ] || fail "the restore was not interrupted"

step "the next restore completes"
expect_exit 0 cairn -r "$repo" restore latest --target "$T/out"
tree_equal "$T/data/src" "$T/out/src"
echo "interrupted cleanly"
