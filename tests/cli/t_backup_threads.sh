#!/bin/bash
# The parallel backup pipeline (--threads).  One source (the sample tree,
# big random, text and zero files whose chunks are handed between workers,
# 1,200 small files in 40 directories, a 40-level directory chain) is backed
# up with 1, 2, 3 and 8 threads and with the default, each into a fresh copy
# of one empty repository (same chunker polynomial): the root tree ids and
# the summaries must be equal, and equal to the root tree restic writes for
# the same source.  The 8-thread repository passes restic check --read-data
# and restores byte for byte with restic and with cairn.  An incremental run
# with threads reads nothing and writes the same tree; a changed big file is
# read again.  Unreadable entries are still named with exit 3, a repository
# failure in a worker ends the run with exit 1 and a message naming the file
# and the pack, SIGINT still ends a multi-threaded backup with 130 and no
# snapshot, and --threads is checked.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/o"
make_sample_tree "$T/src"
openssl enc -aes-128-ctr -pass pass:cairn-threads -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c 48M >"$T/src/big-random.bin"
head -c 12M /dev/urandom | base64 >"$T/src/sub/big-text.txt"
head -c 30M /dev/zero >"$T/src/zeros.bin"
head -c 2M /dev/urandom >"$T/src/exactly-2MiB.bin"
python3 - "$T/src" <<'EOF'
import os, random, sys
rnd = random.Random(7)
root = os.path.join(sys.argv[1], "many")
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
         for _ in range(500)]
for d in range(40):
    dd = os.path.join(root, "d%02d" % d)
    os.makedirs(dd)
    for f in range(30):
        n = rnd.choice([0, 1, 100, 4096, rnd.randint(1, 70000)])
        if f % 2:
            data = b" ".join(rnd.choice(words) for _ in range(n // 5 + 1))[:n]
        else:
            data = rnd.randbytes(n)
        with open(os.path.join(dd, "f%02d.dat" % f), "wb") as fh:
            fh.write(data)
deep = os.path.join(sys.argv[1], "deep")
for level in range(40):
    deep = os.path.join(deep, "level%02d" % level)
    os.makedirs(deep)
    if level % 5 == 0:
        with open(os.path.join(deep, "here.txt"), "wb") as fh:
            fh.write(b"level %d\n" % level)
EOF

# summary FILE FIELD: a field of the last JSON line
summary() { python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1][sys.argv[2]])' "$1" "$2"; }
# snap_tree TOOL REPO [CACHE]: the root tree of the latest snapshot
snap_tree() {
	if [ "$1" = cairn ]; then
		cairn -r "$2" --cache-dir "$3" cat snapshot latest |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["tree"])'
	else
		restic -r "$2" snapshots --json |
			python3 -c 'import json,sys; print(sorted(json.load(sys.stdin), key=lambda s: s["time"])[-1]["tree"])'
	fi
}

step "the same tree and summary with 1, 2, 3, 8 and the default number of threads"
cairn -r "$T/template" init >/dev/null || fail "init"
# each copy gets its own cache: the copies share the repository id
fields="files_new dirs_new data_blobs tree_blobs data_added total_files_processed total_bytes_processed"
for t in 1 2 3 8 default; do
	cp -a "$T/template" "$T/repo-$t"
	opt=(--threads "$t"); [ "$t" = default ] && opt=()
	(cd "$T" && "$CAIRN_BIN" -r "$T/repo-$t" --cache-dir "$T/cache-$t" --json backup "${opt[@]}" src) \
		>"$T/o/b-$t.json" || fail "backup with $t threads exited $?"
	tail -1 "$T/o/b-$t.json"
	tree=$(snap_tree cairn "$T/repo-$t" "$T/cache-$t") || fail "snapshot of $t threads"
	echo "threads $t: root tree $tree"
	if [ "$t" = 1 ]; then
		tree1=$tree
	else
		[ "$tree" = "$tree1" ] || fail "$t threads wrote root tree $tree, 1 thread $tree1"
		for f in $fields; do
			[ "$(summary "$T/o/b-$t.json" "$f")" = "$(summary "$T/o/b-1.json" "$f")" ] ||
				fail "$f differs between 1 and $t threads"
		done
	fi
done
[ "$(summary "$T/o/b-1.json" files_new)" -ge 1220 ] || fail "not all files were stored"

step "restic writes the same root tree for the same source"
cp -a "$T/template" "$T/repo-restic"
(cd "$T" && TMPDIR=$T/o command restic -r "$T/repo-restic" backup src >/dev/null) || fail "restic backup"
rtree=$(snap_tree restic "$T/repo-restic") || fail "restic snapshot"
[ "$rtree" = "$tree1" ] || fail "restic's root tree $rtree, cairn's $tree1"

step "restic check --read-data and restores of the 8-thread backup"
restic -r "$T/repo-8" check --read-data || fail "restic check"
restic -r "$T/repo-8" restore latest --target "$T/r-restic" >/dev/null || fail "restic restore"
python3 "$TESTS_DIR/cli/treecmp.py" "$T/src" "$T/r-restic/src" >"$T/o/diff" || true
cat "$T/o/diff"
# restic 0.14 writes sparse files densely; everything else must match
grep -v '^sparse: not sparse' "$T/o/diff" | grep -q . && fail "restic's restore differs"
cairn -r "$T/repo-8" --cache-dir "$T/cache-8" restore latest --target "$T/r-cairn" >/dev/null ||
	fail "cairn restore"
tree_equal "$T/src" "$T/r-cairn/src"
for f in big-random.bin sub/big-text.txt zeros.bin exactly-2MiB.bin; do
	cmp "$T/src/$f" "$T/r-cairn/src/$f" || fail "$f differs"
done

step "incremental with 8 threads: nothing read, the same tree"
(cd "$T" && "$CAIRN_BIN" -r "$T/repo-8" --cache-dir "$T/cache-8" --json backup --threads 8 src) \
	>"$T/o/inc.json" || fail "incremental backup"
tail -1 "$T/o/inc.json"
[ "$(summary "$T/o/inc.json" files_new)" = 0 ] && [ "$(summary "$T/o/inc.json" files_changed)" = 0 ] &&
	[ "$(summary "$T/o/inc.json" data_blobs)" = 0 ] || fail "the incremental run read files"
[ "$(snap_tree cairn "$T/repo-8" "$T/cache-8")" = "$tree1" ] || fail "the incremental tree differs"

step "a changed big file is read again, with 3 threads"
printf 'changed in the middle' | dd of="$T/src/big-random.bin" bs=1 seek=20000000 conv=notrunc 2>/dev/null
(cd "$T" && "$CAIRN_BIN" -r "$T/repo-8" --cache-dir "$T/cache-8" --json backup --threads 3 src) \
	>"$T/o/chg.json" || fail "backup after a change"
tail -1 "$T/o/chg.json"
[ "$(summary "$T/o/chg.json" files_changed)" = 1 ] || fail "the changed file was not read"
cairn -r "$T/repo-8" --cache-dir "$T/cache-8" restore latest --target "$T/r-chg" \
	--include /src/big-random.bin >/dev/null || fail "restore of the changed file"
cmp "$T/src/big-random.bin" "$T/r-chg/src/big-random.bin" || fail "the changed file differs"
restic -r "$T/repo-8" check || fail "restic check after the change"

step "--threads is checked"
expect_output_contains "invalid --threads '0'" cairn -r "$T/repo-8" backup --threads 0 "$T/src"
expect_exit 1 cairn -r "$T/repo-8" backup --threads 0 "$T/src"
expect_exit 1 cairn -r "$T/repo-8" backup --threads 2x "$T/src"
expect_exit 1 cairn -r "$T/repo-8" backup --threads 257 "$T/src"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	step "unreadable entries with 4 threads: named, left out, exit 3"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
	chmod 755 "$T" && chmod -R a+rX "$T/src"
	chmod 600 "$T/src/many/d07/f03.dat" "$T/src/big-random.bin"
	chmod 700 "$T/src/many/d21"
	cp -a "$T/template" "$T/repo-nobody"
	mkdir -p "$T/cache-nobody"
	chown -R 65534:65534 "$T/repo-nobody" "$T/cache-nobody"
	code=0
	(cd "$T" && as_nobody "$CAIRN_BIN" -r "$T/repo-nobody" --cache-dir "$T/cache-nobody" backup \
		--threads 4 src) >"$T/o/nobody.out" 2>"$T/o/nobody.err" || code=$?
	cat "$T/o/nobody.out" "$T/o/nobody.err"
	[ "$code" = 3 ] || fail "exit code $code, want 3"
	for p in src/many/d07/f03.dat src/big-random.bin src/many/d21; do
		grep -qF "cannot read '$T/$p': Permission denied" "$T/o/nobody.err" || fail "'$p' not named"
	done
	grep -q '^snapshot [0-9a-f]\{8\} saved' "$T/o/nobody.out" || fail "no snapshot saved"
	restic -r "$T/repo-nobody" check --read-data >/dev/null || fail "restic check"
	restic -r "$T/repo-nobody" ls latest >"$T/o/ls.txt" || fail "restic ls"
	grep -q '^/src/many/d07/f02.dat$' "$T/o/ls.txt" || fail "a readable file is missing"
	grep -q -e '^/src/many/d07/f03.dat$' -e '^/src/big-random.bin$' -e '^/src/many/d21' "$T/o/ls.txt" &&
		fail "an unreadable entry was stored"
	chmod 644 "$T/src/many/d07/f03.dat" "$T/src/big-random.bin"
	chmod 755 "$T/src/many/d21"

	step "a repository failure with 4 threads: exit 1, the file and the pack named, no snapshot"
	cp -a "$T/template" "$T/repo-ro"
	# everything writable for nobody except the pack folders
	chmod -R a+rwX "$T/repo-ro" && chmod 755 "$T/repo-ro/data" "$T/repo-ro/data/"*
	mkdir -p "$T/cache-ro" && chmod 777 "$T/cache-ro"
	code=0
	(cd "$T" && as_nobody "$CAIRN_BIN" -r "$T/repo-ro" --cache-dir "$T/cache-ro" backup \
		--threads 4 src) >"$T/o/ro.out" 2>"$T/o/ro.err" || code=$?
	cat "$T/o/ro.out" "$T/o/ro.err"
	[ "$code" = 1 ] || fail "exit code $code, want 1"
	grep -q "backup failed: cannot store data of '$T/src/[^']*': .*cannot store pack '[0-9a-f]\{64\}'" \
		"$T/o/ro.err" || fail "the failure does not name the file and the pack"
	[ -z "$(ls "$T/repo-ro/snapshots")" ] || fail "a snapshot was saved"
	[ -z "$(ls "$T/repo-ro/locks")" ] || fail "lock left behind"
fi

step "SIGINT during a backup with 4 threads: 130, no snapshot, a sound repository"
cp -a "$T/template" "$T/repo-int"
openssl enc -aes-128-ctr -pass pass:cairn-int -nosalt -pbkdf2 </dev/zero 2>/dev/null |
	head -c 400M >"$T/o/huge.bin"
"$CAIRN_BIN" -r "$T/repo-int" --cache-dir "$T/cache-int" backup --threads 4 "$T/o/huge.bin" \
	"$T/src" >"$T/o/int.out" 2>"$T/o/int.err" &
pid=$!
for _ in $(seq 1 400); do
	[ -n "$(find "$T/repo-int/data" -type f 2>/dev/null | head -1)" ] && break
	sleep 0.05
done
kill -INT "$pid" 2>/dev/null || fail "the backup ended before it could be interrupted"
code=0
wait "$pid" || code=$?
cat "$T/o/int.out" "$T/o/int.err"
[ "$code" = 130 ] || fail "exit code $code, want 130"
grep -q 'interrupted, no snapshot saved' "$T/o/int.err" || fail "no message"
[ -z "$(ls "$T/repo-int/snapshots")" ] || fail "a snapshot was saved"
[ -z "$(ls "$T/repo-int/locks")" ] || fail "lock left behind"
restic -r "$T/repo-int" check || fail "restic check after SIGINT"
echo ok
