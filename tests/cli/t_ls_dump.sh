#!/bin/bash
# t_ls_dump.sh: `cairn ls` prints what restic 0.14's ls prints (text, -l,
# with a DIR, --recursive, and --json as the same JSON values) for a
# restic-written repository, and `cairn dump` writes files byte for byte
# and directories as a tar whose entries match the source.
source "$(dirname "$0")/lib.sh"

repo=$T/repo
mkdir -p "$T/data"
make_sample_tree "$T/data/src"
restic -r "$repo" init -q || fail "restic init"
(cd "$T/data" && restic -r "$repo" backup -q --tag one src) || fail "restic backup"

step "ls: text, -l, a DIR, --recursive: the same bytes as restic ls"
for args in "" "-l" "/src/sub" "--recursive /src/sub" "-l --recursive /src/sub/deeper /src/empty-dir"; do
	# shellcheck disable=SC2086
	cairn -r "$repo" ls latest $args >"$T/ls.cairn" || fail "cairn ls $args"
	# shellcheck disable=SC2086
	restic -r "$repo" ls latest $args >"$T/ls.restic" || fail "restic ls $args"
	cmp "$T/ls.cairn" "$T/ls.restic" || { diff "$T/ls.cairn" "$T/ls.restic"; fail "ls $args differs from restic"; }
done
cairn -r "$repo" ls latest | grep -qxF "$(printf '/src/bad\x80name\xff')" || fail "ls does not print the raw name"

step "ls --json: the same JSON values as restic, every line valid JSON"
cairn -r "$repo" --json ls latest --tag one >"$T/ls.cairn.json" || fail "cairn ls --json"
restic -r "$repo" ls --json latest >"$T/ls.restic.json" || fail "restic ls --json"
python3 - "$T/ls.cairn.json" "$T/ls.restic.json" <<'EOF' || fail "ls --json differs from restic"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
b = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
assert len(a) == len(b) > 20, (len(a), len(b))
assert a[0]["struct_type"] == "snapshot" and a[0]["short_id"] == a[0]["id"][:8], a[0]
for x, y in zip(a, b):
    assert x == y, f"\ncairn:  {x}\nrestic: {y}"
names = {n["name"] for n in a[1:]}
assert "bad\ufffdname\ufffd" in names and "new\nline" in names and "é<&>" in names, names
EOF

step "dump: files byte for byte, errors named"
for f in hello.txt empty sparse sub/random.bin sub/text.txt "$(printf 'new\nline')"; do
	cairn -r "$repo" dump latest "/src/$f" | cmp - "$T/data/src/$f" || fail "dump of '$f' differs"
done
expect_output_contains "'/src/nope' not found" cairn -r "$repo" dump latest /src/nope
expect_exit 1 cairn -r "$repo" dump latest /src/nope
expect_output_contains "symlink" cairn -r "$repo" dump latest /src/link
expect_exit 1 cairn -r "$repo" dump latest /src/link

step "dump of a directory: a tar with the same names as restic's and the source's content"
cairn -r "$repo" dump latest /src >"$T/cairn.tar" || fail "dump /src"
restic -r "$repo" dump latest /src >"$T/restic.tar" || fail "restic dump /src"
diff <(tar tf "$T/cairn.tar" | sort) <(tar tf "$T/restic.tar" | sort) || fail "tar entry names differ from restic's"
mkdir "$T/x"
tar -C "$T/x" -xpf "$T/cairn.tar" || fail "tar cannot read the dump"
python3 - "$T/data/src" "$T/x/src" <<'EOF' || fail "the dumped tar does not match the source"
import os, stat, sys
a, b = sys.argv[1].encode(), sys.argv[2].encode()
n = 0
for dirpath, dirs, files in os.walk(a):
    for name in dirs + files:
        pa = os.path.join(dirpath, name)
        pb = os.path.join(b, os.path.relpath(pa, a))
        sa, sb = os.lstat(pa), os.lstat(pb)
        assert stat.S_IFMT(sa.st_mode) == stat.S_IFMT(sb.st_mode), pa
        assert stat.S_IMODE(sa.st_mode) == stat.S_IMODE(sb.st_mode), pa
        assert (sa.st_uid, sa.st_gid) == (sb.st_uid, sb.st_gid), pa
        if not stat.S_ISDIR(sa.st_mode):
            assert sa.st_mtime_ns == sb.st_mtime_ns, (pa, sa.st_mtime_ns, sb.st_mtime_ns)
        if stat.S_ISREG(sa.st_mode):
            assert open(pa, "rb").read() == open(pb, "rb").read(), pa
        if stat.S_ISLNK(sa.st_mode):
            assert os.readlink(pa) == os.readlink(pb), pa
        if stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
            assert sa.st_rdev == sb.st_rdev, pa
        n += 1
assert n > 20, n
EOF

step "--help"
for c in restore ls dump; do
	cairn "$c" --help | grep -q "^Usage: cairn -r REPO $c" || fail "$c --help"
done
echo "ls and dump agree with restic"
