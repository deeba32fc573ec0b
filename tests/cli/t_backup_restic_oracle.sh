#!/bin/bash
# cairn backs up the sample tree (every kind of file, odd names, sparse,
# hard links, xattrs, devices); the real restic checks the repository with
# --read-data and restores the snapshot exactly.  A second backup uses the
# first as parent, reads no unchanged file and adds no data; restic lists
# both snapshots with the right parent.
. "$(dirname "$0")/lib.sh"

make_sample_tree "$T/src"
# a file larger than the chunker's maximum chunk, so files span several blobs
head -c 20000000 /dev/urandom >"$T/src/sub/multi-chunk.bin"

step "init and first backup"
cairn -r "$T/repo" init >/dev/null || fail "init"
cairn -r "$T/repo" --json backup "$T/src" --tag first --host oracle-host >"$T/b1.json" ||
	fail "first backup exited $?"
cat "$T/b1.json"
python3 - "$T/b1.json" <<'EOF' || fail "first summary"
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
assert s["message_type"] == "summary", s
assert s["files_new"] == 15 and s["files_unmodified"] == 0, s
assert s["dirs_new"] == 5, s        # src, sub, sub/deeper, empty-dir, sticky
# root, src, sub and one blob for the three identical empty directories
assert s["data_blobs"] > 10 and s["tree_blobs"] == 4, s
assert len(s["snapshot_id"]) == 64, s
EOF
[ -z "$(ls "$T/repo/locks")" ] || fail "a lock was left behind"

step "restic check --read-data"
restic -r "$T/repo" check --read-data || fail "restic check failed"

step "restic restore reproduces the source"
restic -r "$T/repo" restore latest --target "$T/out" || fail "restic restore failed"
# restic 0.14 has no 'restore --sparse': it writes sparse files densely.  The
# content and size of 'sparse' are still compared; only its allocation is not.
python3 "$TESTS_DIR/cli/treecmp.py" "$T/src" "$T/out/src" >"$T/diff" || true
cat "$T/diff"
grep -v '^sparse: not sparse' "$T/diff" | grep -q . && fail "restored tree differs"
[ "$(stat -c %s "$T/out/src/sparse")" = 20971520 ] || fail "sparse file size"

step "cairn restore reproduces it too, sparse file included"
cairn -r "$T/repo" restore latest --target "$T/out-cairn" >/dev/null || fail "cairn restore failed"
tree_equal "$T/src" "$T/out-cairn/src"

step "snapshot metadata as restic reads it"
restic -r "$T/repo" snapshots --json >"$T/snaps.json" || fail "restic snapshots"
python3 - "$T/snaps.json" "$T/src" <<'EOF' || fail "snapshot fields"
import json, sys
snaps = json.load(open(sys.argv[1]))
assert len(snaps) == 1, snaps
s = snaps[0]
assert s["paths"] == [sys.argv[2]], s
assert s["hostname"] == "oracle-host" and s["tags"] == ["first"], s
EOF

step "second backup: parent used, nothing read, nothing added"
if command -v strace >/dev/null; then
	strace -f -o "$T/trace" -e trace=open,openat "$CAIRN_BIN" -r "$T/repo" --json backup "$T/src" \
		--tag second --host oracle-host >"$T/b2.json" || fail "second backup exited $?"
	grep -q "open.*$T/src/sub\"" "$T/trace" || fail "strace saw no directory being opened"
	grep -q 'multi-chunk.bin' "$T/trace" && fail "an unchanged file was opened"
else
	cairn -r "$T/repo" --json backup "$T/src" --tag second --host oracle-host >"$T/b2.json" ||
		fail "second backup exited $?"
fi
cat "$T/b2.json"
python3 - "$T/b2.json" <<'EOF' || fail "second summary"
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
assert s["files_new"] == 0 and s["files_changed"] == 0 and s["files_unmodified"] == 15, s
assert s["data_blobs"] == 0, s
EOF

step "a changed file is read again, the others are not"
printf 'changed\n' >>"$T/src/sub/text.txt"
cairn -r "$T/repo" --json backup "$T/src" --host oracle-host >"$T/b3.json" || fail "third backup"
python3 - "$T/b3.json" <<'EOF' || fail "third summary"
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
assert s["files_changed"] == 1 and s["files_unmodified"] == 14, s
assert s["data_blobs"] >= 1, s
EOF

step "restic sees all snapshots, each with its parent"
restic -r "$T/repo" snapshots --json >"$T/snaps.json" || fail "restic snapshots"
python3 - "$T/snaps.json" <<'EOF' || fail "snapshot chain"
import json, sys
snaps = sorted(json.load(open(sys.argv[1])), key=lambda s: s["time"])
assert len(snaps) == 3, snaps
assert "parent" not in snaps[0], snaps[0]
assert snaps[1]["parent"] == snaps[0]["id"] and snaps[2]["parent"] == snaps[1]["id"], snaps
EOF
restic -r "$T/repo" check --read-data || fail "restic check after three backups"
rm -rf "$T/out"
restic -r "$T/repo" restore latest --target "$T/out" || fail "restic restore latest"
cmp "$T/src/sub/text.txt" "$T/out/src/sub/text.txt" || fail "changed file not restored"
echo "ok"
