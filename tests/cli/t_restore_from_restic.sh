#!/bin/bash
# t_restore_from_restic.sh: repositories written by the real restic 0.14 --
# v2 with compression auto, v2 with --compression off, and v1 -- are
# restored by cairn exactly: the latest snapshot and the first one (before a
# change), a SUBPATH, --include (against restic's own restore with the same
# pattern), --exclude, --verify, a restore over an existing target, and
# --json's summary.
source "$(dirname "$0")/lib.sh"

# The first snapshot's id (restic lists oldest first).
first_snapshot() {
	restic -r "$1" snapshots --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'
}

run_case() {
	local name=$1 init_args=$2 backup_args=$3
	local repo=$T/$name/repo src=$T/$name/src
	local top first out

	step "$name: restic init $init_args, backup $backup_args (twice)"
	mkdir -p "$T/$name"
	# shellcheck disable=SC2086
	restic -r "$repo" init -q $init_args || fail "restic init"
	make_sample_tree "$src"
	# Backed up as the relative path "src", so the snapshot's root holds one
	# entry "src" (an absolute path keeps all its components in restic 0.14).
	# shellcheck disable=SC2086
	(cd "$T/$name" && restic -r "$repo" backup -q $backup_args src) || fail "first restic backup"
	first=$(first_snapshot "$repo")
	cp -a "$src" "$T/$name/first-state"
	# Change it: content and mtime of a hard-linked file, a file gone, a new one.
	printf 'changed\n' >>"$src/hello.txt"
	touch -d '2011-01-01 00:00:00.25' "$src/hello.txt"
	rm "$src/sub/random.bin"
	head -c 700000 /dev/urandom >"$src/sub/new.bin"
	chmod 600 "$src/sub/new.bin"
	# shellcheck disable=SC2086
	(cd "$T/$name" && restic -r "$repo" backup -q $backup_args src) || fail "second restic backup"
	top=/src

	step "$name: restore latest"
	out=$T/$name/latest
	expect_exit 0 cairn -r "$repo" restore latest --target "$out"
	tree_equal "$src" "$out/src"

	step "$name: restore the first snapshot by id"
	expect_exit 0 cairn -r "$repo" restore "${first:0:12}" --target "$T/$name/first"
	tree_equal "$T/$name/first-state" "$T/$name/first/src"

	step "$name: restore latest again over the restored tree, with --verify"
	printf 'stale\n' >"$out/src/sub/text.txt"
	chmod 000 "$out/src/empty"
	local summary
	summary=$(cairn -r "$repo" --json restore latest --target "$out" --verify) || fail "restore over target"
	echo "$summary"
	tree_equal "$src" "$out/src"
	python3 - "$summary" <<-'EOF' || fail "bad --json summary"
		import json, sys
		s = json.loads(sys.argv[1].strip().splitlines()[-1])
		assert s["message_type"] == "summary", s
		assert s["total_files"] == s["files_restored"] == s["files_verified"] > 10, s
		assert s["total_bytes"] == s["bytes_restored"] > 20 * 1024 * 1024, s
	EOF

	step "$name: restore SNAPSHOT:SUBPATH"
	cp -a "$src/sub" "$T/$name/expect-sub"   # its hardlink has no partner here either
	expect_exit 0 cairn -r "$repo" restore "latest:$top/sub" --target "$T/$name/sub"
	tree_equal "$T/$name/expect-sub" "$T/$name/sub"

	step "$name: --include, compared with restic's own restore"
	restic -r "$repo" restore latest --target "$T/$name/inc-restic" \
		--include "$top/sub/deeper" --include '*.txt' --include "$top/sub/new.bin" >/dev/null ||
		fail "restic restore --include"
	expect_exit 0 cairn -r "$repo" restore latest --target "$T/$name/inc" \
		--include "$top/sub/deeper" --include '*.txt' --include "$top/sub/new.bin"
	tree_equal "$T/$name/inc-restic" "$T/$name/inc"
	[ -f "$T/$name/inc/src/sub/text.txt" ] && [ -f "$T/$name/inc/src/sub/new.bin" ] &&
		[ ! -e "$T/$name/inc/src/sparse" ] && [ ! -e "$T/$name/inc/src/empty-dir" ] ||
		fail "--include restored the wrong set"

	step "$name: --exclude, compared with restic's own restore"
	restic -r "$repo" restore latest --target "$T/$name/exc-restic" \
		--exclude "$top/sub" --exclude 'sparse' >/dev/null || fail "restic restore --exclude"
	expect_exit 0 cairn -r "$repo" restore latest --target "$T/$name/exc" \
		--exclude "$top/sub" --exclude 'sparse'
	tree_equal "$T/$name/exc-restic" "$T/$name/exc"
	[ ! -e "$T/$name/exc/src/sub" ] && [ ! -e "$T/$name/exc/src/sparse" ] &&
		[ -f "$T/$name/exc/src/hello.txt" ] || fail "--exclude restored the wrong set"

	step "$name: dump and ls"
	cairn -r "$repo" dump latest "$top/sub/text.txt" | cmp - "$src/sub/text.txt" || fail "dump text.txt"
	cairn -r "$repo" dump latest "$top/sparse" | cmp - "$src/sparse" || fail "dump sparse"
	cairn -r "$repo" dump "${first:0:8}" "$top/sub/random.bin" | cmp - "$T/$name/first-state/sub/random.bin" ||
		fail "dump random.bin of the first snapshot"
	cairn -r "$repo" ls latest >"$T/$name/ls.txt" || fail "ls"
	for odd in "$(printf 'bad\x80name\xff')" "$(printf 'new\nline')" "$(printf 'tab\tquote"back\\slash')" \
		'é<&>' '-dash'; do
		grep -qF -- "$top/$odd" "$T/$name/ls.txt" || fail "ls lacks '$odd'"
	done
	restic -r "$repo" ls latest >"$T/$name/ls-restic.txt"
	cmp "$T/$name/ls.txt" "$T/$name/ls-restic.txt" || fail "ls differs from restic ls"
}

run_case v2-auto "" ""
run_case v2-off "" "--compression off"
run_case v1 "--repository-version 1" ""
echo "all restored exactly"
