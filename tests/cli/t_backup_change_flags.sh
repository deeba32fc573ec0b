#!/bin/bash
# --ignore-ctime and --ignore-inode decide, as in restic 0.14, which files of
# the parent snapshot count as unchanged and are not read: a ctime-only
# change (chmod and back) is read again unless --ignore-ctime; a file
# replaced by a copy with the same size and mtime (new inode and ctime) is
# read again unless --ignore-inode, which implies --ignore-ctime; an mtime
# change is read whatever the flags; --force reads everything.  Each step
# runs cairn and restic on the same files and checks, with strace, that
# both opened exactly the files expected.
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || { echo "skip: no strace"; exit 0; }

mkdir -p "$T/src"
head -c 300000 /dev/urandom >"$T/src/a.bin"
head -c 200000 /dev/urandom >"$T/src/b.bin"
printf 'untouched\n' >"$T/src/c.txt"
cairn -r "$T/crepo" init >/dev/null || fail "cairn init"
restic -r "$T/rrepo" init >/dev/null || fail "restic init"

# run NAME WANT_OPENED [OPTION...]: back up with cairn and restic; both must
# open exactly the files in WANT_OPENED (space-separated names)
run() {
	local name=$1 want=$2 tool got
	shift 2
	step "$name"
	for tool in cairn restic; do
		if [ "$tool" = cairn ]; then
			strace -f -o "$T/trace" -e trace=open,openat "$CAIRN_BIN" -r "$T/crepo" \
				--json backup "$@" "$T/src" >"$T/out.json" || fail "$name: cairn backup"
			tail -1 "$T/out.json"
		else
			strace -f -o "$T/trace" -e trace=open,openat restic -r "$T/rrepo" \
				backup -q "$@" "$T/src" || fail "$name: restic backup"
		fi
		got=$(grep -o "$T/src/[a-z]*\.[a-z]*\"" "$T/trace" | tr -d '"' | sed "s|$T/src/||" |
			sort -u | tr '\n' ' ' | sed 's/ $//')
		[ "$got" = "$want" ] || fail "$name: $tool opened '$got', want '$want'"
	done
}

# chmod and back: only the ctime changes
touch_ctime() { chmod 600 "$1" && chmod 644 "$1"; }
# a copy with the same content, size and mtime: a new inode and ctime
replace() { cp -p "$1" "$1.new" && mv "$1.new" "$1"; }
counts() { python3 -c 'import json,sys; s=[json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]; print(s["files_new"], s["files_changed"], s["files_unmodified"])' "$T/out.json"; }

chmod 644 "$T/src/"*
run "first backup reads everything" "a.bin b.bin c.txt"
[ "$(counts)" = "3 0 0" ] || fail "counts $(counts)"

touch_ctime "$T/src/a.bin"
run "a ctime change is read again" "a.bin"
[ "$(counts)" = "0 1 2" ] || fail "counts $(counts)"

touch_ctime "$T/src/a.bin"
run "--ignore-ctime: a ctime change is not read" "" --ignore-ctime
[ "$(counts)" = "0 0 3" ] || fail "counts $(counts)"

replace "$T/src/b.bin"
run "--ignore-ctime: a new inode is still read" "b.bin" --ignore-ctime
[ "$(counts)" = "0 1 2" ] || fail "counts $(counts)"

replace "$T/src/b.bin"
run "--ignore-inode: a new inode (and ctime) is not read" "" --ignore-inode
[ "$(counts)" = "0 0 3" ] || fail "counts $(counts)"

touch -d '2030-01-01 00:00:00' "$T/src/a.bin"
run "--ignore-inode: an mtime change is still read" "a.bin" --ignore-inode --ignore-ctime

run "--force reads everything, whatever else is ignored" "a.bin b.bin c.txt" --force --ignore-inode

step "the snapshots restore the current content"
cairn -r "$T/crepo" restore latest --target "$T/out" >/dev/null || fail "restore"
for f in a.bin b.bin c.txt; do
	cmp "$T/src/$f" "$T/out$T/src/$f" || fail "$f differs"
done
restic -r "$T/crepo" check --read-data >/dev/null || fail "restic check"
echo ok
