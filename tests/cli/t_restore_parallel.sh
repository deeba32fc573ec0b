#!/bin/bash
# t_restore_parallel.sh: the pack-ordered, multi-threaded restore.
#  1. a snapshot (written by the real restic, 4 MiB packs) with many files
#     sharing blobs (copies of one file, a small file copied 40 times), a
#     file whose blobs lie in several packs, a sparse file, two hard-link
#     groups with the same content and members in several dirs, a
#     read-only dir, hundreds of small files: restored with --threads 1
#     and --threads 4, both trees equal to the source (content, sparseness,
#     modes, owners, times of files and dirs, links);
#  2. each needed byte is read once: the --json summary's packs_read is the
#     number of packs holding the snapshot's data blobs, bytes_loaded at
#     most their size, and strace sees every such pack file opened, as
#     many times in all as there were pack_loads (a range per open; two
#     ranges of one pack may be loaded by two threads);
#  3. a plan cut into many small batches (CAIRN_RESTORE_PLAN_LIMIT) gives
#     the same tree, and --verify in batches checks every file;
#  4. with one file per batch, members of hard-link groups are linked to
#     first members finished in earlier batches;
#  5. --verify with 4 threads checks every file;
#  6. a byte flipped inside a blob that 40 files share: exit 1, each of the
#     40 files named with the blob and the pack, none left in the target,
#     every other entry restored exactly;
#  7. a byte flipped in the content of two hard-link groups (same content):
#     both first members named with blob and pack, the other three members
#     named as not linked, none of the five left, the rest exact;
#  8. a pack cut short inside its last blob: the load of its last range
#     fails, the range is read again blob by blob, so only the files of the
#     lost blob (and members of their hard-link groups) fail, named, and
#     the blobs that shared the range with it are restored.
source "$(dirname "$0")/lib.sh"

repo=$T/repo
src=$T/data/src
mkdir -p "$src/dups" "$src/small" "$src/links/a" "$src/links/b" "$src/ro"

step "make the source"
head -c 3000000 /dev/urandom >"$src/dups/one"
for i in 2 3 4 5; do cp "$src/dups/one" "$src/dups/copy$i"; done
head -c 5000 /dev/urandom >"$T/shared-small"
for i in $(seq 1 40); do cp "$T/shared-small" "$src/dups/small$i"; done
head -c 24000000 /dev/urandom >"$src/big.bin"         # several 4 MiB packs
truncate -s 30M "$src/sparse"
head -c 70000 /dev/urandom | dd of="$src/sparse" bs=1 seek=12000000 conv=notrunc 2>/dev/null
printf 'end' | dd of="$src/sparse" bs=1 seek=31457277 conv=notrunc 2>/dev/null
head -c 1500000 /dev/urandom >"$src/links/a/group1"
ln "$src/links/a/group1" "$src/links/b/group1-b"
ln "$src/links/a/group1" "$src/links/group1-c"
cp "$src/links/a/group1" "$src/links/b/group2"       # same content, another group
ln "$src/links/b/group2" "$src/links/a/group2-b"
for d in $(seq 1 8); do
	mkdir -p "$src/small/d$d"
	for f in $(seq 1 60); do
		head -c $(( (d * 977 + f * 131) % 20000 + 1 )) /dev/urandom >"$src/small/d$d/f$f"
	done
	touch -d "2019-0$d-01 10:00:00.$d" "$src/small/d$d"
done
: >"$src/small/empty"
printf 'read-only\n' >"$src/ro/inside"
chmod 0555 "$src/ro"
touch -d '2005-05-05 05:05:05.5' "$src/big.bin"

restic -r "$repo" init -q || fail "restic init"
(cd "$T/data" && restic -r "$repo" backup -q --pack-size 4 src) || fail "restic backup"

# The data packs the snapshot needs (the repository holds only this
# snapshot, so: every pack with a data blob), their total size, and the
# pack + offset of the blob of dups/small* (for step 5).
python3 - "$repo" "$src" >"$T/packs.txt" <<'EOF' || fail "cannot read restic's index"
import hashlib, json, os, subprocess, sys
repo, src = sys.argv[1], sys.argv[2]
def restic(*a):
    return subprocess.run(["restic", "-r", repo, *a], check=True, capture_output=True).stdout
packs = {}
for idx in restic("list", "index").split():
    for p in json.loads(restic("cat", "index", idx.decode()))["packs"]:
        for b in p["blobs"]:
            if b["type"] == "data":
                packs.setdefault(p["id"], []).append(b)
size = sum(os.path.getsize(os.path.join(repo, "data", p[:2], p)) for p in packs)
small = hashlib.sha256(open(os.path.join(src, "dups", "small1"), "rb").read()).hexdigest()
where = [(p, b) for p, bl in packs.items() for b in bl if b["id"] == small]
assert len(where) == 1, where
p, b = where[0]
# big.bin's content, from the snapshot's trees: its blobs lie in several packs
tree = json.loads(restic("snapshots", "--json"))[0]["tree"]
for name in ("src", "big.bin"):
    node = [n for n in json.loads(restic("cat", "blob", tree))["nodes"] if n["name"] == name][0]
    tree = node.get("subtree")
in_pack = {x["id"]: q for q, bl in packs.items() for x in bl}
assert len({in_pack[c] for c in node["content"]}) >= 3, "big.bin is not spread over packs"
# the first blob of links/a/group1 (and of links/b/group2, same content)
tree = json.loads(restic("snapshots", "--json"))[0]["tree"]
for name in ("src", "links", "a", "group1"):
    node = [n for n in json.loads(restic("cat", "blob", tree))["nodes"] if n["name"] == name][0]
    tree = node.get("subtree")
g1blob = node["content"][0]
g1b = [b for b in packs[in_pack[g1blob]] if b["id"] == g1blob][0]
open(os.path.join(os.path.dirname(repo), "data-packs"), "w").write("\n".join(packs) + "\n")
print(len(packs), size, p, b["offset"], b["length"], small, in_pack[g1blob], g1b["offset"],
    g1b["length"], g1blob)
EOF
read -r n_packs packs_size small_pack small_off small_len small_blob g1_pack g1_off g1_len g1_blob \
	<"$T/packs.txt"
echo "data packs: $n_packs ($packs_size bytes); small blob $small_blob in $small_pack"
[ "$n_packs" -ge 5 ] || fail "expected the snapshot to span several packs, got $n_packs"

# Summary checks: every file restored, each needed pack read once, by the
# counters; $3 = minimum number of batches.
check_summary() {
	python3 - "$1" "$n_packs" "$packs_size" "$2" <<-'EOF' || fail "bad --json summary: $1"
		import json, sys
		s = json.loads(sys.argv[1].strip().splitlines()[-1])
		n_packs, size, min_batches = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
		assert s["message_type"] == "summary", s
		assert s["total_files"] == s["files_restored"] > 500, s
		assert s["total_bytes"] == s["bytes_restored"], s
		assert s["batches"] >= min_batches, s
		if min_batches == 1:
		    assert s["packs_read"] == n_packs, ("packs_read", s, n_packs)
		    assert s["bytes_loaded"] <= size, ("bytes_loaded", s, size)
		    assert s["pack_loads"] >= s["packs_read"], s
		# holes are not written: far fewer bytes written than restored
		assert s["bytes_written"] <= s["bytes_restored"] - 29 * 1024 * 1024, s
		EOF
}

for threads in 1 4; do
	step "restore with --threads $threads, traced"
	out=$T/out$threads
	strace -f -qq -e trace=openat -o "$T/trace$threads" \
		"$CAIRN_BIN" -r "$repo" --json restore latest --target "$out" --threads "$threads" \
		>"$T/summary$threads" || fail "restore --threads $threads"
	cat "$T/summary$threads"
	check_summary "$(cat "$T/summary$threads")" 1
	tree_equal "$src" "$out/src"
	# Every open of a data pack file, by thread: all of them, and as many
	# opens as loads.  (The walk reads the tree packs, which hold no data
	# blob.)
	python3 - "$T/trace$threads" "$T/data-packs" "$(cat "$T/summary$threads")" <<-'EOF' || fail "packs were not read once"
		import json, re, sys
		data = set(open(sys.argv[2]).read().split())
		opens, by = 0, {}
		for line in open(sys.argv[1]):
		    m = re.match(r'(\d+)\s+openat\(.*"[^"]*/data/[0-9a-f]{2}/([0-9a-f]{64})"', line)
		    if m and m.group(2) in data:
		        opens += 1
		        by.setdefault(m.group(2), set()).add(m.group(1))
		s = json.loads(sys.argv[3].strip().splitlines()[-1])
		assert set(by) == data, ("packs opened", len(by), len(data))
		assert opens == s["pack_loads"], (opens, s["pack_loads"])
		print(f"{len(by)} packs, {opens} loads, {len(set().union(*by.values()))} threads")
	EOF
done
tree_equal "$T/out1" "$T/out4"
[ "$(stat -c %i "$T/out4/src/links/a/group1")" = "$(stat -c %i "$T/out4/src/links/group1-c")" ] &&
	[ "$(stat -c %i "$T/out4/src/links/a/group1")" != "$(stat -c %i "$T/out4/src/links/b/group2")" ] ||
	fail "hard-link groups not kept apart"
[ "$(stat -c %b "$T/out4/src/sparse")" -lt 4096 ] || fail "the sparse file was filled in"

step "a plan cut into many batches, and --verify in batches too"
summary=$(CAIRN_RESTORE_PLAN_LIMIT=20000 cairn -r "$repo" --json restore latest --target "$T/batched" \
	--threads 3 --verify) || fail "restore in batches"
echo "$summary"
check_summary "$summary" 10
python3 -c 'import json, sys; s = json.loads(sys.argv[1].strip().splitlines()[-1]); assert s["files_verified"] == s["total_files"], s' \
	"$summary" || fail "--verify in batches did not check every file"
tree_equal "$src" "$T/batched/src"

step "each file in a batch of its own: hard links to members of earlier batches"
summary=$(CAIRN_RESTORE_PLAN_LIMIT=1 cairn -r "$repo" --json restore latest:/src/links \
	--target "$T/links1" --threads 2) || fail "restore of links/ in one-file batches"
echo "$summary"
python3 -c 'import json, sys; s = json.loads(sys.argv[1].strip().splitlines()[-1]); assert s["batches"] == 2 and s["files_restored"] == 5, s' \
	"$summary" || fail "links/ was not restored in one batch per first member"
cp -a "$src/links" "$T/links-expect"
tree_equal "$T/links-expect" "$T/links1"

step "--verify with 4 threads, over the restored tree"
summary=$(cairn -r "$repo" --json restore latest --target "$T/out4" --threads 4 --verify) ||
	fail "restore --verify"
echo "$summary"
python3 -c 'import json, sys; s = json.loads(sys.argv[1].strip().splitlines()[-1]); assert s["files_verified"] == s["total_files"], s' \
	"$summary" || fail "--verify did not check every file"
tree_equal "$src" "$T/out4/src"

# flip_byte REPO PACK OFFSET LENGTH: damage the middle of one blob.
flip_byte() {
	local pack=$1/data/${2:0:2}/$2
	chmod u+w "$pack"
	python3 - "$pack" "$3" "$4" <<-'EOF'
		import sys
		p, off, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		with open(p, "r+b") as f:
		    f.seek(off + length // 2); b = f.read(1); f.seek(off + length // 2); f.write(bytes([b[0] ^ 0x55]))
		EOF
}

step "a byte flipped in the blob that 40 small files share"
cp -a "$repo" "$T/bad"
flip_byte "$T/bad" "$small_pack" "$small_off" "$small_len"
rc=0
cairn -r "$T/bad" restore latest --target "$T/t5" --threads 4 >"$T/log5" 2>&1 || rc=$?
cat "$T/log5"
[ "$rc" -eq 1 ] || fail "restore from a damaged pack exited $rc, want 1"
for i in $(seq 1 40); do
	grep -F "cannot restore '/src/dups/small$i': blob $small_blob in pack $small_pack" "$T/log5" >/dev/null ||
		fail "dups/small$i is not named with its blob and pack"
	[ ! -e "$T/t5/src/dups/small$i" ] || fail "damaged dups/small$i was left in the target"
done
[ "$(grep -c "^cairn: cannot restore" "$T/log5")" -eq 40 ] || fail "other entries were reported"
grep -q "there were 40 errors" "$T/log5" || fail "no error count"
diffs=$(python3 "$TESTS_DIR/cli/treecmp.py" "$src" "$T/t5/src")
others=$(echo "$diffs" | grep -v '^dups/small[0-9]*: only in A$' | grep -v '^$' || true)
[ -z "$others" ] || fail "more than the damaged files differ: $others"
step "a byte flipped in the first blob of two hard-link groups' content"
cp -a "$repo" "$T/bad2"
flip_byte "$T/bad2" "$g1_pack" "$g1_off" "$g1_len"
rc=0
cairn -r "$T/bad2" restore latest --target "$T/t6" --threads 2 >"$T/log6" 2>&1 || rc=$?
cat "$T/log6"
[ "$rc" -eq 1 ] || fail "restore from a damaged pack exited $rc, want 1"
for f in links/a/group1 links/a/group2-b; do
	grep -F "cannot restore '/src/$f': blob $g1_blob in pack $g1_pack" "$T/log6" >/dev/null ||
		fail "$f is not named with its blob and pack"
done
for f in links/b/group1-b links/group1-c links/b/group2; do
	grep -F "cannot restore '/src/$f': cannot link to" "$T/log6" | grep -q "could not be restored" ||
		fail "$f is not named as a member that could not be linked"
done
[ "$(grep -c "^cairn: cannot restore" "$T/log6")" -eq 5 ] || fail "other entries were reported"
diffs=$(python3 "$TESTS_DIR/cli/treecmp.py" "$src" "$T/t6/src")
others=$(echo "$diffs" | grep -vE '^links/(a/group1|b/group1-b|group1-c|b/group2|a/group2-b): only in A$' |
	grep -vF "hard-link groups differ: [[b'links/a/group1', b'links/b/group1-b', b'links/group1-c'], [b'links/a/group2-b', b'links/b/group2']] vs []" |
	grep -v '^$' || true)
[ -z "$others" ] || fail "more than the damaged groups differ: $others"
step "a pack cut short inside its last blob: the blobs loaded with it in one range survive"
# Parallel packing interleaves files, so whether some pack ends in a range
# of several small blobs varies from run to run; so the 480 small files of
# src/small are backed up first on their own (their packs hold nothing
# else), then the whole of src, whose snapshot (latest) reuses those blobs.
cairn -r "$T/cut" init >/dev/null || fail "init of the cut repository"
(cd "$T/data" && "$CAIRN_BIN" -r "$T/cut" --pack-size 4 backup --threads 1 src/small >/dev/null &&
	"$CAIRN_BIN" -r "$T/cut" --pack-size 4 backup src >/dev/null) ||
	fail "backups for the cut"
# Pick a pack whose last blob shares its load range (4 MiB, gaps <= 256 KiB,
# as restore_exec.h) with other blobs; print its id, the cut offset, and
# the files whose content holds the lost blob.
python3 - "$T/cut" >"$T/cut.txt" <<-'EOF' || fail "no pack fit for the cut"
	import json, subprocess, sys
	repo = sys.argv[1]
	def restic(*a):
	    return subprocess.run(["restic", "-r", repo, *a], check=True, capture_output=True).stdout
	packs = {}
	for idx in restic("list", "index").split():
	    for p in json.loads(restic("cat", "index", idx.decode()))["packs"]:
	        if any(b["type"] == "data" for b in p["blobs"]):
	            packs[p["id"]] = sorted(p["blobs"], key=lambda b: b["offset"])
	def last_range(blobs):
	    ranges, cur = [], [blobs[0]]
	    for b in blobs[1:]:
	        end = max(x["offset"] + x["length"] for x in cur)
	        if (b["offset"] > end and b["offset"] - end > 256 << 10) or \
	           (b["offset"] + b["length"] - cur[0]["offset"] > 4 << 20):
	            ranges.append(cur); cur = [b]
	        else:
	            cur.append(b)
	    return cur
	pick = [p for p, bl in sorted(packs.items()) if len(last_range(bl)) >= 3]
	assert pick, "no pack has three blobs in its last range"
	p = pick[0]; last = packs[p][-1]
	files = []
	def walk(tree, path):
	    for n in json.loads(restic("cat", "blob", tree))["nodes"]:
	        if n["type"] == "dir":
	            walk(n["subtree"], path + "/" + n["name"])
	        elif n["type"] == "file" and last["id"] in (n.get("content") or []):
	            files.append(path + "/" + n["name"])
	snaps = sorted(json.loads(restic("snapshots", "--json")), key=lambda s: s["time"])
	walk(snaps[-1]["tree"], "")  # the latest: the whole of src
	print(p, last["offset"] + last["length"] // 2, " ".join(files))
	EOF
read -r cut_pack cut_at cut_files <"$T/cut.txt"
echo "cut $cut_pack at $cut_at; files of its last blob: $cut_files"
truncate -s "$cut_at" "$T/cut/data/${cut_pack:0:2}/$cut_pack"
rc=0
summary=$(cairn -r "$T/cut" --json restore latest --target "$T/t7" --threads 2 2>"$T/log7") || rc=$?
cat "$T/log7"
echo "$summary"
[ "$rc" -eq 1 ] || fail "restore from a cut pack exited $rc, want 1"
failed=$(sed -n "s/^cairn: cannot restore '\([^']*\)': .*/\1/p" "$T/log7" | sort)
[ -n "$failed" ] || fail "nothing was reported"
for f in $cut_files; do
	echo "$failed" | grep -qxF "$f" || fail "$f (its last blob is cut off) is not named"
done
for f in $failed; do
	echo " $cut_files " | grep -qF " $f " || grep -F "cannot restore '$f': cannot link to" "$T/log7" >/dev/null ||
		fail "$f is named but has no blob in the lost part"
	[ ! -e "$T/t7$f" ] || fail "$f was left in the target"
done
grep -F "$cut_pack" "$T/log7" | grep -q "truncated" || fail "the message does not say the pack is truncated"
python3 -c 'import json, sys; s = json.loads(sys.argv[1].strip().splitlines()[-1]); assert s["pack_loads"] > s["packs_read"] + 2, s' \
	"$summary" || fail "the cut range was not read again blob by blob"
diffs=$(python3 "$TESTS_DIR/cli/treecmp.py" "$src" "$T/t7/src")
others=$(echo "$diffs" | while IFS= read -r line; do
	[ -z "$line" ] && continue
	f=/src/${line%%: *}
	echo "$failed" | grep -qxF "$f" && [ "${line#*: }" = "only in A" ] && continue
	case $line in "hard-link groups differ"*) continue ;; esac
	echo "$line"
done)
[ -z "$others" ] || fail "more than the files of the lost blob differ: $others"

echo "parallel restore: every pack read once, trees exact"
