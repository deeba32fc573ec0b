#!/bin/bash
# t_restore_modes.sh: file modes come back exact whatever the umask, now
# that a file may be created with its final permission bits (when group
# and others get the same access and others nothing the owner lacks):
#  1. files of every kind of mode (0644, 0755, 0600, 0444, 0000, 0200,
#     0604, 0640, 0660, 0666, 0777, 0707, setuid, setgid, sticky), small
#     ones and ones of several blobs in several packs (reopened for writing
#     by other threads), restored with umask 022, 077 and 000: modes,
#     owners, times and content equal the source's;
#  2. the same files restored by a user who is not root (when the test
#     runs as root and `setpriv` is there): read-only files of several
#     blobs are reopened for writing and still end up read-only.
#  3. a blob with whole 4 KiB pages of zeros inside it leaves them as holes.
source "$(dirname "$0")/lib.sh"

repo=$T/repo
src=$T/data/src
mkdir -p "$src"

step "make the source"
modes="0644 0755 0600 0444 0000 0200 0604 0640 0660 0666 0777 0707 4755 2755 1644 0400 0044"
for m in $modes; do
	head -c 3000 /dev/urandom >"$src/small-$m"
	# several blobs, several 4 MiB packs
	head -c 9000000 /dev/urandom >"$src/big-$m"
	chmod "$m" "$src/small-$m" "$src/big-$m"
	touch -d '2020-02-02 02:02:02.5' "$src/small-$m" "$src/big-$m"
done
# a file whose blob has a run of zero pages inside it
{ head -c 100000 /dev/urandom; head -c 200000 /dev/zero; head -c 5000 /dev/urandom; } >"$src/zeros"
cairn -r "$repo" init -q || fail "init"
cairn -r "$repo" --pack-size 4 backup -q "$src" || fail "backup"

for mask in 022 077 000; do
	step "restore with umask $mask"
	(umask $mask && cairn -r "$repo" restore latest --target "$T/out$mask" --threads 4 -q) ||
		fail "restore with umask $mask"
	tree_equal "$src" "$T/out$mask$src"
	for m in $modes; do
		for f in small big; do
			got=$(stat -c %a "$T/out$mask$src/$f-$m")
			[ "$((8#$got))" = "$((8#$m))" ] || fail "$f-$m restored with mode $got (umask $mask)"
		done
	done
done

step "holes inside a blob"
cmp "$src/zeros" "$T/out022$src/zeros" || fail "zeros: content"
blocks=$(stat -c %b "$T/out022$src/zeros")
[ "$blocks" -le $(((305000 - 196608) / 512 + 64)) ] ||
	fail "zeros: $blocks blocks allocated, the zero pages were written"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	step "restore as a user who is not root"
	chmod a+x "$T" && chmod -R a+rX "$repo"
	mkdir -p "$T/user" && chown nobody "$T/user"
	setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$T/user" XDG_CACHE_HOME="$T/user/cache" \
		"$CAIRN_BIN" -r "$repo" --no-lock restore latest --target "$T/user/out" --threads 4 -q ||
		fail "restore as nobody"
	for m in $modes; do
		for f in small big; do
			want=$((8#$m & 8#777))
			got=$(stat -c %a "$T/user/out$src/$f-$m")
			# setuid/setgid/sticky are the owner's to keep; a user restoring
			# files of another owner keeps the permission bits
			[ "$(($((8#$got)) & 8#777))" = "$want" ] || fail "$f-$m restored by nobody with mode $got"
			cmp -s "$src/$f-$m" "$T/user/out$src/$f-$m" || fail "$f-$m: content (as nobody)"
		done
	done
fi
echo "ok"
