#!/bin/bash
# Entries that cannot be read are left out, named on stderr, and the backup
# still saves its snapshot, with exit code 3.  Tests run as root, who can
# read everything, so the backup runs as nobody (setpriv) over a tree with
# a 0600 root file and a 0700 root directory.  A target that does not exist
# is only a warning (as in restic); when no target exists it is fatal.  A file
# that changes while it is read is stored as read, with a warning.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "skip: needs root to switch to nobody"; exit 0; }
command -v setpriv >/dev/null || { echo "skip: no setpriv"; exit 0; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

chmod 755 "$T"
mkdir -p "$T/src/sub" "$T/src/private" "$T/cache"
printf 'readable\n' >"$T/src/ok.txt"
head -c 1500000 /dev/urandom >"$T/src/sub/data.bin"
printf 'top secret\n' >"$T/src/secret"; chmod 600 "$T/src/secret"
printf 'hidden\n' >"$T/src/private/inside"; chmod 700 "$T/src/private"
chmod 644 "$T/src/ok.txt" "$T/src/sub/data.bin"
chown 65534:65534 "$T/cache"
export XDG_CACHE_HOME=$T/cache

cairn -r "$T/repo" init >/dev/null || fail "init"
chown -R 65534:65534 "$T/repo"

step "backup as nobody: two entries unreadable"
code=0
as_nobody "$CAIRN_BIN" -r "$T/repo" backup "$T/src" >"$T/out.txt" 2>"$T/err.txt" || code=$?
cat "$T/out.txt" "$T/err.txt"
[ "$code" = 3 ] || fail "exit code $code, want 3"
grep -qF "cannot read '$T/src/secret': Permission denied" "$T/err.txt" || fail "secret not named"
grep -qF "cannot read '$T/src/private': Permission denied" "$T/err.txt" || fail "private not named"
grep -q '^snapshot [0-9a-f]\{8\} saved' "$T/out.txt" || fail "no snapshot saved"
[ -z "$(ls "$T/repo/locks")" ] || fail "lock left behind"

step "restic checks the repository and restores the rest"
restic -r "$T/repo" check --read-data || fail "restic check"
restic -r "$T/repo" restore latest --target "$T/restored" || fail "restic restore"
# the target keeps its whole path in the snapshot, as in restic
[ -d "$T/restored$T/src" ] || fail "the target is not at its full path"
[ ! -e "$T/restored$T/src/secret" ] || fail "unreadable file was stored"
[ ! -e "$T/restored$T/src/private" ] || fail "unreadable directory was stored"
cp -a "$T/src" "$T/expected"
rm -rf "$T/expected/secret" "$T/expected/private"
tree_equal "$T/expected" "$T/restored$T/src" --no-dir-mtime

step "a missing target is a warning, all missing is fatal"
code=0
cairn -r "$T/repo" backup "$T/src" "$T/does-not-exist" >"$T/out2.txt" 2>"$T/err2.txt" || code=$?
cat "$T/err2.txt"
[ "$code" = 0 ] || fail "exit code $code with one missing target, want 0"
grep -qF "'$T/does-not-exist': does not exist, skipping" "$T/err2.txt" || fail "missing target not named"
expect_exit 1 cairn -r "$T/repo" backup "$T/does-not-exist"
[ -z "$(ls "$T/repo/locks")" ] || fail "lock left behind"

step "a file that changes while read: a warning, stored as read"
# /proc files stat as empty but read as text: the listed size never matches.
# (/proc/$$, not /proc/self: the target keeps its whole path in the snapshot
# and /proc/self is a symlink)
mi=/proc/$$/mountinfo
code=0
cairn -r "$T/repo" backup "$mi" >"$T/out3.txt" 2>"$T/err3.txt" || code=$?
cat "$T/err3.txt"
[ "$code" = 0 ] || fail "exit code $code for a changing file, want 0"
grep -qF "'$mi': file changed while it was read" "$T/err3.txt" || fail "no warning"
restic -r "$T/repo" restore latest --target "$T/r3" >/dev/null || fail "restore"
[ -s "$T/r3$mi" ] || fail "the bytes read were not stored"
grep -q ' / ' "$T/r3$mi" || fail "mountinfo content"
restic -r "$T/repo" check --read-data >/dev/null || fail "restic check"

restic -r "$T/repo" snapshots --json --path "$T/src" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert len(s) == 2, s
assert all(x["paths"] == [sys.argv[1]] for x in s), s' "$T/src" || fail "snapshot paths"
echo ok
