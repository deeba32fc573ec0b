#!/bin/bash
# t_lock_deferred: backup and the read-only commands take their shared lock
# deferred (include/cairn/lock.h): the second look for other locks, 200 ms
# after ours is written, comes just before the snapshot is saved (backup) or
# before the command reports success (restore, ls, ...).
#
#  - an exclusive lock that appears after the first look (as one written by
#    a prune starting at the same moment would) fails the backup with the
#    usual "already locked" message naming its holder, saves no snapshot and
#    removes our own lock; the same for restore;
#  - once the holder is gone (its lock stale) backup and restore go on, and
#    the repository checks clean with cairn and restic.
#
# The exclusive lock is a correctly encrypted restic lock document of a live
# process (a sleep) on this host, made by tests/cli/resticseal.py (scrypt
# from hashlib, AES from the openssl command, Poly1305 by hand), written
# from restic's format documentation, then moved into locks/ the moment the
# command's own lock file shows up: after its first look, 200 ms before its
# second.
. "$(dirname "$0")/lib.sh"

R=$T/repo

live=
cleanup_live() { [ -n "$live" ] && kill "$live" 2>/dev/null; live=; }
trap 'cleanup_live; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT

# An exclusive lock of a live process ($live) on this host, sealed into
# $T/side; its name in $id.
make_live_lock() {
	local host now
	host=$(python3 -c 'import socket; print(socket.gethostname())')
	now=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
	sleep 3600 >/dev/null 2>&1 </dev/null & live=$!
	id=$(printf '{"time":"%s","exclusive":true,"hostname":"%s","username":"prune","pid":%d}\n' \
		"$now" "$host" "$live" | python3 "$TESTS_DIR/cli/resticseal.py" "$R" "$T/side")
}

# plant_when_locked LOCKID: as soon as a lock file shows up in locks/, move
# $T/side/LOCKID in beside it.  Runs in the background.
plant_when_locked() {
	local i
	for i in $(seq 1 2000); do
		if [ -n "$(ls -A "$R/locks")" ]; then
			mv "$T/side/$1" "$R/locks/$1"
			return 0
		fi
		sleep 0.005
	done
	echo "plant_when_locked: no lock showed up" >&2
	return 1
}

count() { find "$R/$1" -type f | wc -l; }

step "setup: a repository with one snapshot"
mkdir -p "$T/src/sub"
printf 'hello\n' >"$T/src/hello.txt"
head -c 1000000 /dev/urandom >"$T/src/sub/one.bin"
cairn -r "$R" init >/dev/null || fail init
cairn -r "$R" backup -q "$T/src" || fail "first backup"
[ "$(count snapshots)" -eq 1 ] || fail "want 1 snapshot"

step "backup: an exclusive lock appearing after the first look stops it before the snapshot"
make_live_lock || fail "seal a lock"
head -c 24000000 /dev/urandom >"$T/src/sub/new.bin" # some work between the looks
plant_when_locked "$id" & planter=$!
got=0
out=$(cairn -r "$R" backup "$T/src" 2>&1) || got=$?
wait $planter || { cleanup_live; fail "the lock was not planted"; }
echo "$out"
[ "$got" -eq 1 ] || { cleanup_live; fail "backup exited $got next to an exclusive lock, want 1"; }
grep -qF "cannot lock repository: repository is already locked exclusively by PID $live" <<<"$out" ||
	{ cleanup_live; fail "no lock message naming the holder"; }
grep -qF "snapshot" <<<"$(grep saved <<<"$out")" && { cleanup_live; fail "a snapshot was reported saved"; }
[ "$(count snapshots)" -eq 1 ] || { cleanup_live; fail "a snapshot was saved: $(count snapshots)"; }
[ "$(ls "$R/locks")" = "$id" ] || { cleanup_live; fail "locks left: $(ls "$R/locks")"; }

step "restore: the same lock appearing after the first look fails it"
mv "$R/locks/$id" "$T/side/$id"
plant_when_locked "$id" & planter=$!
got=0
out=$(cairn -r "$R" restore latest --target "$T/r1" 2>&1) || got=$?
wait $planter || { cleanup_live; fail "the lock was not planted"; }
echo "$out"
[ "$got" -eq 1 ] || { cleanup_live; fail "restore exited $got next to an exclusive lock, want 1"; }
grep -qF "repository is already locked exclusively by PID $live" <<<"$out" ||
	{ cleanup_live; fail "no lock message naming the holder"; }
[ "$(ls "$R/locks")" = "$id" ] || { cleanup_live; fail "locks left: $(ls "$R/locks")"; }

step "the live lock there from the start: the first look refuses at once"
expect_output_contains "already locked exclusively by PID $live" cairn -r "$R" snapshots
expect_exit 1 cairn -r "$R" -q snapshots
[ "$(ls "$R/locks")" = "$id" ] || { cleanup_live; fail "locks left: $(ls "$R/locks")"; }

step "holder gone: its lock is stale, backup and restore go on"
cleanup_live
sleep 0.1
cairn -r "$R" backup -q "$T/src" || fail "backup next to a stale lock"
[ "$(count snapshots)" -eq 2 ] || fail "want 2 snapshots, have $(count snapshots)"
cairn -r "$R" restore -q latest --target "$T/r2" || fail "restore next to a stale lock"
cmp "$T/src/sub/new.bin" "$T/r2$T/src/sub/new.bin" || fail "restored file differs"
cairn -r "$R" unlock >/dev/null || fail unlock
[ -z "$(ls -A "$R/locks")" ] || fail "locks left: $(ls "$R/locks")"

step "clean afterwards"
[ -z "$(ls -A "$R/locks")" ] || fail "locks left: $(ls "$R/locks")"
cairn -r "$R" check -q || fail "cairn check"
restic -r "$R" check >/dev/null 2>&1 || fail "restic check"
echo "ok"
