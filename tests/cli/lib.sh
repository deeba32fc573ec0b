# lib.sh: helpers for the integration tests (source it first thing).
#   T            a fresh temp dir for this test, removed on exit
#   cairn ...    runs ./cairn
#   restic ...   runs the real restic with a private cache
#   fail MSG     ends the test
#   expect_exit CODE CMD...   runs CMD, fails unless it exits with CODE
#   expect_output_contains TEXT CMD...   stderr+stdout must contain TEXT
#   tree_equal A B [--no-atime]   compares two trees exactly (tests/cli/treecmp.py)
#   make_sample_tree DIR   a tree with every kind of file cairn must keep
set -u
set -o pipefail
: "${CAIRN_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/cairn}"
: "${TESTS_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
T=$(mktemp -d /tmp/cairn-test.XXXXXX)
trap 'chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT
export CAIRN_PASSWORD=correct-horse RESTIC_PASSWORD=correct-horse
export RESTIC_CACHE_DIR=$T/restic-cache XDG_CACHE_HOME=$T/cache
unset CAIRN_REPOSITORY RESTIC_REPOSITORY CAIRN_PASSWORD_FILE RESTIC_PASSWORD_FILE

cairn() { "$CAIRN_BIN" "$@"; }
restic() { command restic "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

expect_exit() {
	local want=$1; shift
	local got=0
	"$@" || got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, want $want"
}

expect_output_contains() {
	local text=$1; shift
	local out
	out=$("$@" 2>&1) || true
	echo "$out"
	printf '%s' "$out" | grep -qF -- "$text" || fail "output of '$*' lacks '$text'"
}

tree_equal() { python3 "$TESTS_DIR/cli/treecmp.py" "$@" || fail "trees differ: $*"; }

# A tree with regular files (empty, small, multi-chunk, sparse), nested dirs,
# symlinks (also dangling), hard links, a fifo, device nodes (as root), xattrs,
# setuid/setgid/sticky bits, odd owners and non-UTF-8 names.
make_sample_tree() {
	local d=$1
	mkdir -p "$d/sub/deeper" "$d/empty-dir"
	printf 'hello\n' >"$d/hello.txt"
	: >"$d/empty"
	head -c 3000000 /dev/urandom >"$d/sub/random.bin"
	yes 'compressible line of text' | head -c 2000000 >"$d/sub/text.txt"
	truncate -s 20M "$d/sparse"; printf 'tail' | dd of="$d/sparse" bs=1 seek=10000000 conv=notrunc 2>/dev/null
	ln -s hello.txt "$d/link"
	ln -s /nonexistent/target "$d/dangling"
	ln "$d/hello.txt" "$d/sub/hardlink"
	mkfifo "$d/fifo"
	printf 'x' >"$d/setuid"; chmod 4755 "$d/setuid"
	printf 'y' >"$d/setgid"; chmod 2750 "$d/setgid"
	mkdir "$d/sticky"; chmod 1777 "$d/sticky"
	printf 'z' >"$d/owned"; chown 1234:5678 "$d/owned" 2>/dev/null || true
	setfattr -n user.note -v "some value" "$d/hello.txt" 2>/dev/null || true
	setfattr -n user.bin -v 0x00ff10 "$d/sub/text.txt" 2>/dev/null || true
	printf 'n' >"$d/$(printf 'bad\x80name\xff')"
	printf 'n' >"$d/$(printf 'new\nline')"
	printf 'n' >"$d/$(printf 'tab\tquote"back\\slash')"
	printf 'n' >"$d/é<&>"
	printf 'n' >"$d/-dash"
	if [ "$(id -u)" = 0 ]; then
		mknod "$d/null-dev" c 1 3
		mknod "$d/loop-dev" b 7 200
	fi
	touch -h -d '2001-02-03 04:05:06.123456789' "$d/link"
	touch -d '1999-12-31 23:59:59.5' "$d/hello.txt"
	touch -d '2020-06-01 12:00:00.000000001' "$d/sub/deeper"
}
