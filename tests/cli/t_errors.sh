#!/bin/bash
# t_errors: bad input gets a clear error, exit 1, no crash, and the password
# never shows.
#
#  - a wrong password says "wrong password"; a repository that is not there
#    says so, differently; an empty folder is "no repository";
#  - the password appears in no output or error of any command;
#  - garbage under snapshots/ (wrong name, or right name but no valid MAC),
#    a correctly encrypted snapshot or index that is malformed JSON, a
#    snapshot without a tree or naming a tree that does not exist: snapshots
#    and check name the file and fail cleanly;
#  - a correctly encrypted tree with a node named ".." or "a/b": check names
#    it, restore refuses it and writes nothing outside the target;
#  - locks: a live exclusive lock stops other commands with a message naming
#    its holder; unlock removes stale locks (dead pid, old), --remove-all all.
#
# Correctly encrypted bad documents are made by tests/cli/resticseal.py
# (scrypt from hashlib, AES from the openssl command, Poly1305 by hand),
# written from restic-format.md, not from cairn's code.
. "$(dirname "$0")/lib.sh"

PASSWORD=$CAIRN_PASSWORD

seal() { SEAL_PASSWORD=$PASSWORD python3 "$TESTS_DIR/cli/resticseal.py" "$@"; }

# run_all CMD...: run, append stdout+stderr to $T/all.out, return its status
: >"$T/all.out"
run_all() {
	local got=0
	"$@" >>"$T/all.out" 2>&1 || got=$?
	return $got
}

fresh_copy() {
	rm -rf "$T/work"
	cp -a "$R" "$T/work"
}

# expect_fail_naming TEXT CMD...: exit 1 (not a crash), output names TEXT.
expect_fail_naming() {
	local text=$1 out got=0
	shift
	out=$("$@" 2>&1) || got=$?
	echo "$out"
	echo "$out" >>"$T/all.out"
	[ "$got" -eq 1 ] || fail "'$*' exited $got, want 1"
	grep -qF -- "$text" <<<"$out" || fail "'$*' does not name '$text'"
}

mkdir -p "$T/src/d"
printf 'hello\n' >"$T/src/hello.txt"
printf 'x\n' >"$T/src/d/x"
R=$T/repo
run_all cairn -r "$R" init || fail "init"
run_all cairn -r "$R" backup "$T/src" || fail "backup"
SNAP=$(ls "$R/snapshots")
ROOT=$(cairn -r "$R" cat snapshot "$SNAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tree"])')

step "a wrong password is called that"
for cmd in snapshots check "cat config"; do
	out=$(CAIRN_PASSWORD=wrong-Secret-9f3 cairn -r "$R" $cmd 2>&1) && fail "$cmd accepted a wrong password"
	echo "$out"
	grep -qi "wrong password" <<<"$out" || fail "$cmd: no 'wrong password' in: $out"
	! grep -qF "wrong-Secret-9f3" <<<"$out" || fail "$cmd printed the wrong password"
done
printf 'wrong-Secret-9f3\n' >"$T/pw"
out=$(env -u CAIRN_PASSWORD -u RESTIC_PASSWORD "$CAIRN_BIN" -r "$R" --password-file "$T/pw" snapshots 2>&1) \
	&& fail "a wrong password file was accepted"
grep -qi "wrong password" <<<"$out" || fail "password file: $out"
! grep -qF "wrong-Secret-9f3" <<<"$out" || fail "the password from the file was printed"
expect_exit 1 env CAIRN_PASSWORD=wrong-Secret-9f3 "$CAIRN_BIN" -r "$R" snapshots

step "a missing repository is not a wrong password"
out=$(cairn -r "$T/does-not-exist" snapshots 2>&1) && fail "a missing repository was opened"
echo "$out"
grep -Eqi "does not exist|no repository|no such file" <<<"$out" || fail "missing repo message: $out"
! grep -qi "wrong password" <<<"$out" || fail "a missing repository was called a wrong password"
expect_exit 1 cairn -r "$T/does-not-exist" check
mkdir "$T/empty"
out=$(cairn -r "$T/empty" snapshots 2>&1) && fail "an empty folder was opened"
echo "$out"
grep -Eqi "no repository|does not exist" <<<"$out" || fail "empty folder message: $out"
! grep -qi "wrong password" <<<"$out" || fail "an empty folder was called a wrong password"

step "commands that work print no password"
run_all cairn -r "$R" snapshots || fail snapshots
run_all cairn -r "$R" snapshots --json || fail "snapshots --json"
run_all cairn -r "$R" check --read-data || fail check
run_all cairn -r "$R" -v check || fail "check -v"
run_all cairn -r "$R" cat config || fail "cat config"
run_all cairn -r "$R" cat key "$(ls "$R/keys")" || fail "cat key"
run_all cairn -r "$R" cat snapshot latest || fail "cat snapshot"
run_all cairn -r "$R" -v backup "$T/src" || fail "backup -v"
run_all cairn -r "$R" unlock || fail unlock
SNAP=$(cairn -r "$R" snapshots --json latest | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

step "garbage under snapshots/"
fresh_copy
head -c 200 /dev/urandom >"$T/work/snapshots/$(printf '%064d' 7)"
expect_fail_naming "$(printf '%064d' 7)" cairn -r "$T/work" snapshots
expect_fail_naming "$(printf '%064d' 7)" cairn -r "$T/work" check
fresh_copy
head -c 200 /dev/urandom >"$T/g"
g=$(sha256sum "$T/g" | cut -c1-64)
cp "$T/g" "$T/work/snapshots/$g"   # its name is right, its MAC is not
expect_fail_naming "$g" cairn -r "$T/work" snapshots
expect_fail_naming "$g" cairn -r "$T/work" check
expect_exit 1 restic -r "$T/work" check

step "a correctly encrypted snapshot that is malformed JSON"
fresh_copy
bad=$(printf '{"time":"2024-01-01T00:00:00Z","tree":"%s","paths":["/x"' "$ROOT" | seal "$T/work" unpacked snapshots)
[ -n "$bad" ] || fail "seal"
expect_fail_naming "$bad" cairn -r "$T/work" snapshots
expect_fail_naming "$bad" cairn -r "$T/work" check
expect_exit 1 restic -r "$T/work" check   # the oracle agrees the file is bad
out=$(cairn -r "$T/work" cat snapshot "$bad") || fail "cat cannot show the malformed snapshot"
grep -qF '"paths":["/x"' <<<"$out" || fail "cat snapshot did not print the stored JSON: $out"

step "a snapshot without a tree, and one whose tree does not exist"
fresh_copy
notree=$(printf '{"time":"2024-01-01T00:00:00Z","paths":["/x"],"hostname":"h"}' | seal "$T/work" unpacked snapshots)
expect_fail_naming "$notree" cairn -r "$T/work" check
fresh_copy
ghost=$(printf '%064d' 42)
lost=$(printf '{"time":"2024-01-01T00:00:00Z","tree":"%s","paths":["/x"],"hostname":"h"}\n' "$ghost" \
	| seal "$T/work" unpacked snapshots)
expect_fail_naming "$ghost" cairn -r "$T/work" check
out=$(cairn -r "$T/work" check 2>&1 || true)
grep -F "$ghost" <<<"$out" | grep -qF "$lost" || fail "the snapshot of the lost tree is not named"
expect_exit 1 restic -r "$T/work" check
run_all cairn -r "$T/work" snapshots || fail "snapshots must still list a snapshot whose tree is lost"

step "a correctly encrypted index that is malformed JSON"
fresh_copy
badidx=$(printf '{"packs":[{"id":"%s","blobs":[{"id":' "$ROOT" | seal "$T/work" unpacked index)
expect_fail_naming "$badidx" cairn -r "$T/work" check
expect_exit 1 restic -r "$T/work" check

step "tree nodes named '..' and 'a/b'"
node() { # NAME: a dir node pointing at the real root tree
	printf '{"name":"%s","type":"dir","mode":2147484141,"mtime":"2024-01-01T00:00:00Z","atime":"2024-01-01T00:00:00Z","ctime":"2024-01-01T00:00:00Z","uid":0,"gid":0,"subtree":"%s"}' "$1" "$ROOT"
}
for evil in '..' 'a/b'; do
	fresh_copy
	tree=$(printf '{"nodes":[%s]}\n' "$(node "$evil")" | seal "$T/work" treepack)
	[ -n "$tree" ] || fail "seal treepack"
	snap=$(printf '{"time":"2030-01-01T00:00:00Z","tree":"%s","paths":["/evil"],"hostname":"h"}\n' "$tree" \
		| seal "$T/work" unpacked snapshots)
	out=$(cairn -r "$T/work" check 2>&1) && { echo "$out"; fail "check accepted a node named '$evil'"; }
	echo "$out"
	grep -qF "$tree" <<<"$out" || fail "check does not name the tree with '$evil'"
	grep -qF "'$evil'" <<<"$out" || fail "check does not name the node '$evil'"
	mkdir -p "$T/out/target"
	out=$(cairn -r "$T/work" restore "$snap" --target "$T/out/target" 2>&1) \
		&& { echo "$out"; fail "restore accepted a node named '$evil'"; }
	echo "$out"
	grep -qF -- "$evil" <<<"$out" || fail "restore does not name '$evil'"
	[ "$(ls -A "$T/out")" = target ] || fail "restore wrote outside the target: $(ls -A "$T/out")"
	rm -rf "$T/out"
done

step "locks: a live exclusive lock blocks, unlock removes only stale ones"
fresh_copy
host=$(python3 -c 'import socket; print(socket.gethostname())')
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
sleep 3600 & live=$!
live_lock=$(printf '{"time":"%s","exclusive":true,"hostname":"%s","username":"root","pid":%d}\n' "$now" "$host" "$live" \
	| seal "$T/work" unpacked locks)
out=$(cairn -r "$T/work" snapshots 2>&1) && { kill $live; fail "snapshots ran next to an exclusive lock"; }
echo "$out"
grep -qi "lock" <<<"$out" || { kill $live; fail "no lock message: $out"; }
grep -qF "$live" <<<"$out" || { kill $live; fail "the lock holder's pid is not named: $out"; }
expect_exit 1 cairn -r "$T/work" check
out=$(cairn -r "$T/work" unlock 2>&1) || fail "unlock"
grep -qF "successfully removed 0 locks" <<<"$out" || fail "unlock removed a live lock: $out"
[ -f "$T/work/locks/$live_lock" ] || fail "the live lock is gone"
kill $live
wait $live 2>/dev/null
# now the holder is dead: stale; add an old one from another host too
old=$(printf '{"time":"2020-01-01T00:00:00Z","exclusive":false,"hostname":"elsewhere","username":"u","pid":1}\n' \
	| seal "$T/work" unpacked locks)
[ -n "$old" ] || fail "seal lock"
out=$(cairn -r "$T/work" unlock 2>&1) || fail "unlock"
echo "$out"
grep -qF "successfully removed 2 locks" <<<"$out" || fail "unlock did not remove the 2 stale locks: $out"
[ -z "$(ls "$T/work/locks")" ] || fail "locks left: $(ls "$T/work/locks")"
sleep 3600 & live=$!
printf '{"time":"%s","exclusive":false,"hostname":"%s","username":"root","pid":%d}\n' "$now" "$host" "$live" \
	| seal "$T/work" unpacked locks >/dev/null
run_all cairn -r "$T/work" snapshots || { kill $live; fail "a shared lock blocked snapshots"; }
out=$(cairn -r "$T/work" unlock --remove-all 2>&1) || { kill $live; fail "unlock --remove-all"; }
kill $live
wait $live 2>/dev/null
grep -qF "successfully removed 1 locks" <<<"$out" || fail "unlock --remove-all: $out"
run_all cairn -r "$T/work" check || fail "check after unlock"
run_all restic -r "$T/work" check || fail "restic check after unlock"

step "the password appears nowhere"
if grep -qF -- "$PASSWORD" "$T/all.out"; then
	grep -nF -- "$PASSWORD" "$T/all.out" | head
	fail "the password was printed"
fi
echo ok
