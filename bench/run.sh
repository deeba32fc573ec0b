#!/bin/bash
# run.sh quick|full: cairn beside restic (and borg) on the same generated
# data, in the same run, scenario by scenario (issue 3, item 7).
#
# Measures, for each tool, wall time (date, ns), CPU time and peak RSS
# (/usr/bin/time -f '%e %U %S %M'), repository size (du -sb) and MB/s
# (1 MB = 10^6 bytes of source or restored data per wall second), then
# prints one table per scenario, a summary of the ratios and
# bench/out/results.json (also results-MODE.json) for later comparison.
#
# Corpora (bench/gencorpus.c, every byte from a seed), generated under
# $BENCH_DIR (default /tmp/cairn-bench)/corpus (mix-quick, mix-full, ...)
# and reused while their stamp (generator source hash, parameters, file
# count and bytes) still matches:
#   mix   three files of random, text-like and mixed data (300 MiB each in
#         the full run, 24 MiB in the quick one) and 20,000 files of
#         1-64 KiB (quick: 1,500);
#   tree  100,000 small files of 64 B-16 KiB, log-uniform (quick: 10,000);
#   small 300 files of 1-16 KiB, for the start-up scenario.
# Each corpus is copied (cp -a) to $BENCH_DIR/work and backed up from there,
# so the "1% changed" step (gencorpus mutate: 1% of each big file rewritten,
# 1% of the small files appended to, 0.1% deleted, 0.1% added) never
# touches the generated copy.
#
# Scenarios, for mix and for tree, all three tools one after the other:
#   initial   backup into a new repository with a new, empty cache;
#   nochange  the same backup again (cache kept, as real users run it);
#   changed   after the 1% change;
#   restore   the latest snapshot into a new folder (restic restore, borg
#             extract), then checked against the source with diff -r.
# Also "open": `cat config` (borg: `borg info`), the fixed cost of opening
# a repository (mostly key derivation), on the mix repositories.
# "open" and "nochange" can be repeated without changing what they measure:
# they run BENCH_REPEAT times (default 1 in quick, 3 in full) and the
# fastest run is reported (all are kept in the JSON).
# And "big-index": start-up and peak RSS of a backup of the small folder
# into a repository holding 2,000,000 blobs (bench/fill_repo.c: real packs
# and index files written by cairn's library; the same repository serves
# cairn and restic) and into an empty copy of it (same config and key, no
# data), with a new cache and then again with the cache kept.  borg has no
# reader for that repository and is left out of this one.
#
# Fairness: every repository is encrypted with a password from the
# environment; compression is each tool's default (auto = zstd for cairn
# and restic, lz4 for borg); caches are per tool and per corpus
# (XDG_CACHE_HOME, RESTIC_CACHE_DIR, BORG_BASE_DIR).  Page caches cannot be
# dropped in a container: the corpus is synced and read once before the
# first measurement so that every tool reads it from memory, and each tool
# runs once (`version`) before, so its binary is loaded.  The machine is
# shared with other work: single runs, noisy; CPU seconds are shown beside
# wall time and the load average is recorded per measurement.
#
# Setting up and cleaning between measurements (copying the corpus,
# diff -r, deleting restored trees) is not measured but takes time: on a
# file system mounted with `discard` and a busy machine, deleting 100,000
# files can take minutes.
#
# Environment: BENCH_DIR, BENCH_RESTORE_DIR (default $BENCH_DIR/restore), BENCH_REPEAT, BENCH_TOOLS (default "cairn restic borg"; borg is
# skipped when not installed), BENCH_BLOBS (default 2000000),
# BENCH_OUT (default bench/out), BENCH_CAIRN (the cairn binary, default ./cairn).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-quick}
case $MODE in
quick) BIG=$((24 << 20)) NSMALL=1500 NTREE=10000 REPEAT=${BENCH_REPEAT:-1} ;;
full) BIG=$((300 << 20)) NSMALL=20000 NTREE=100000 REPEAT=${BENCH_REPEAT:-3} ;;
*) echo "usage: bench/run.sh quick|full" >&2; exit 2 ;;
esac
NBLOBS=${BENCH_BLOBS:-2000000}
BENCH_DIR=$(realpath -m "${BENCH_DIR:-/tmp/cairn-bench}")
# Where restores go.  On ext4 without a journal, creating files right after
# many were deleted scans past the deleted inodes (minutes of extra kernel
# time that hits every tool alike and swings single runs 2-3x), so a tmpfs
# such as /dev/shm/cairn-bench-restore measures the tools themselves.
RESTORE_DIR=$(realpath -m "${BENCH_RESTORE_DIR:-$BENCH_DIR/restore}")
OUT=$(realpath -m "${BENCH_OUT:-bench/out}")
GEN=$ROOT/build/bench/gencorpus
FILL=$ROOT/build/bench/fill_repo
CAIRN=$(realpath -m "${BENCH_CAIRN:-$ROOT/cairn}")
for f in "$GEN" "$FILL" "$CAIRN"; do
	[ -x "$f" ] || { echo "bench: $f missing: run 'make bench-quick' or 'make bench'" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time missing: make bench-deps" >&2; exit 1; }
TOOLS=${BENCH_TOOLS:-cairn restic borg}
if ! command -v borg >/dev/null; then
	echo "bench: borg not installed (make bench-deps): without borg" >&2
	TOOLS=${TOOLS//borg/}
fi
read -r -a tool_list <<<"$TOOLS"
TOOLS="${tool_list[*]}"
command -v restic >/dev/null || { echo "bench: restic missing (make deps)" >&2; exit 1; }

mkdir -p "$BENCH_DIR" "$OUT"
exec 9>"$BENCH_DIR/.lock"
flock -n 9 || { echo "bench: another run holds $BENCH_DIR/.lock" >&2; exit 1; }
START=$(date +%s)
RUN=$BENCH_DIR/run
rm -rf "$RUN" "$BENCH_DIR/work" "$BENCH_DIR/repos" "$BENCH_DIR/cache" "$RESTORE_DIR"
mkdir -p "$RUN" "$BENCH_DIR/work" "$BENCH_DIR/repos" "$BENCH_DIR/cache" "$RESTORE_DIR"
RESULTS=$RUN/results.tsv
META=$RUN/meta.tsv
: >"$RESULTS"
: >"$META"
export CAIRN_PASSWORD=cairn-bench RESTIC_PASSWORD=cairn-bench BORG_PASSPHRASE=cairn-bench
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO
unset RESTIC_REPOSITORY CAIRN_REPOSITORY BORG_REPO

log() { printf '[%4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
src_hash() { sha256sum "$ROOT/bench/gencorpus.c" | cut -c1-16; }
# count and bytes of the regular files under $1
census() { find "$1" -type f -printf '%s\n' | awk '{ n++; b += $1 } END { printf "%d %d\n", n, b }'; }

# ensure_corpus NAME CMD...: generate $BENCH_DIR/corpus/NAME with CMD (run
# with the target folder as last argument) unless its stamp matches.
ensure_corpus() {
	local name=$1; shift
	local dir=$BENCH_DIR/corpus/$name stamp=$BENCH_DIR/corpus/$name.stamp
	local want
	want="gencorpus $(src_hash): $*"
	if [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$want" ] &&
		[ "$(sed -n 2p "$stamp")" = "$(census "$dir")" ]; then
		log "corpus $name: reused ($dir)"
		return
	fi
	log "corpus $name: generating ($*)"
	rm -rf "$dir" "$stamp"
	mkdir -p "$dir"
	"$@" "$dir"
	printf '%s\n%s\n' "$want" "$(census "$dir")" >"$stamp"
}
gen_mix() { # BIG NSMALL DIR
	"$GEN" file random mix-random "$1" "$3/random.bin"
	"$GEN" file text mix-text "$1" "$3/text.txt"
	"$GEN" file mixed mix-mixed "$1" "$3/mixed.img"
	"$GEN" files "$3/small" mix-small "$2" 1024 65536 uniform 50 25
}
gen_tree() { "$GEN" files "$2" tree "$1" 64 16384 log 70 15; } # NFILES DIR
gen_small() { "$GEN" files "$1" small 300 1024 16384 uniform 60 20; }

# ensure_repo2m: a repository of NBLOBS blobs, reused while its stamp matches.
ensure_repo2m() {
	R2M=$BENCH_DIR/corpus/repo-blobs-$NBLOBS
	local stamp=$R2M.stamp want
	want="fill_repo $(sha256sum "$ROOT/bench/fill_repo.c" | cut -c1-16) $NBLOBS"
	if [ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$want" ] &&
		[ "$(sed -n 2p "$stamp")" = "$(census "$R2M")" ]; then
		log "repository of $NBLOBS blobs: reused ($R2M)"
		return
	fi
	log "repository of $NBLOBS blobs: generating"
	rm -rf "$R2M" "$stamp"
	"$FILL" "$R2M" "$NBLOBS" >&2
	printf '%s\n%s\n' "$want" "$(census "$R2M")" >"$stamp"
}

# --- the tools: init, backup, restore for each ---
repo_of() { echo "$BENCH_DIR/repos/$1-$2"; } # TOOL CORPUS
cache_env() { # TOOL KEY: the environment pointing the tool at its own cache
	local c=$BENCH_DIR/cache/$1-$2
	case $1 in
	cairn) echo "XDG_CACHE_HOME=$c" ;;
	restic) echo "RESTIC_CACHE_DIR=$c" ;;
	borg) echo "BORG_BASE_DIR=$c" ;;
	esac
}
tool_init() { # TOOL REPO KEY
	local r=$2
	rm -rf "$r" "$BENCH_DIR/cache/$1-$3"
	case $1 in
	cairn) env "$(cache_env cairn "$3")" "$CAIRN" -r "$r" init -q ;;
	restic) env "$(cache_env restic "$3")" restic -r "$r" init -q ;;
	borg) env "$(cache_env borg "$3")" borg init -e repokey "$r" 2>/dev/null ;;
	esac >/dev/null
}
backup_cmd() { # TOOL REPO KEY ARCHIVE PATH: the command line, one word per line
	local e
	e=$(cache_env "$1" "$3")
	case $1 in
	cairn) printf '%s\n' env "$e" "$CAIRN" -r "$2" backup -q "$5" ;;
	restic) printf '%s\n' env "$e" restic -r "$2" backup -q "$5" ;;
	borg) printf '%s\n' env "$e" borg create "$2::$4" "$5" ;;
	esac
}
restore_cmd() { # TOOL REPO KEY ARCHIVE TARGET
	local e
	e=$(cache_env "$1" "$3")
	case $1 in
	cairn) printf '%s\n' env "$e" "$CAIRN" -r "$2" restore -q latest --target "$5" ;;
	restic) printf '%s\n' env "$e" restic -r "$2" restore -q latest --target "$5" ;;
	borg) printf '%s\n' env -C "$5" "$e" borg extract "$2::$4" ;;
	esac
}

# measure SCENARIO CORPUS TOOL VARIANT BYTES REPO CMD...: run CMD once,
# append a line to $RESULTS ($ROUND: which run of a repeated measurement).
ROUND=1
measure() {
	local scen=$1 corpus=$2 tool=$3 variant=$4 bytes=$5 repo=$6; shift 6
	local t0 t1 rc=0 load e u s kib size
	load=$(cut -d' ' -f1 /proc/loadavg)
	t0=$(date +%s%N)
	/usr/bin/time -f '%e %U %S %M' -o "$RUN/time" "$@" >"$RUN/cmd.out" 2>&1 || rc=$?
	t1=$(date +%s%N)
	if [ "$rc" != 0 ]; then
		echo "bench: $tool $scen $corpus failed (exit $rc): $*" >&2
		tail -20 "$RUN/cmd.out" >&2
		exit 1
	fi
	read -r e u s kib <"$RUN/time"
	size=$(du -sb "$repo" | cut -f1)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$corpus" "$tool" "$variant" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" \
		"$(awk -v a="$u" -v b="$s" 'BEGIN { printf "%.2f", a + b }')" \
		"$kib" "$size" "$bytes" "$load" "$ROUND" >>"$RESULTS"
	log "  $scen $corpus $tool $variant: $(tail -1 "$RESULTS" | cut -f5) s, $((kib / 1024)) MiB"
}

warm() { # DIR: sync, then read every file once (page cache)
	sync
	find "$1" -type f -print0 | xargs -0 cat >/dev/null
}

# run_corpus NAME: the four scenarios on $BENCH_DIR/work/NAME
run_corpus() {
	local name=$1 src=$BENCH_DIR/work/$1 n bytes t repo tgt
	local -a cmd
	rm -rf "$src"
	cp -a "$BENCH_DIR/corpus/$name-$MODE" "$src"
	read -r n bytes < <(census "$src")
	meta "corpus.$name.files" "$n"
	meta "corpus.$name.bytes" "$bytes"
	warm "$src"
	log "$name: $n files, $bytes bytes: initial backup"
	for t in $TOOLS; do
		repo=$(repo_of "$t" "$name")
		tool_init "$t" "$repo" "$name"
		mapfile -t cmd < <(backup_cmd "$t" "$repo" "$name" initial "$src")
		measure initial "$name" "$t" - "$bytes" "$repo" "${cmd[@]}"
	done
	if [ "$name" = mix ]; then # the fixed cost of opening a repository (key derivation)
		for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
			for t in $TOOLS; do
				repo=$(repo_of "$t" "$name")
				case $t in
				cairn) cmd=(env "$(cache_env cairn "$name")" "$CAIRN" -r "$repo" cat config) ;;
				restic) cmd=(env "$(cache_env restic "$name")" restic -r "$repo" cat config) ;;
				borg) cmd=(env "$(cache_env borg "$name")" borg info "$repo") ;;
				esac
				measure open "$name" "$t" - 0 "$repo" "${cmd[@]}"
			done
		done
		ROUND=1
	fi
	log "$name: no-change re-run"
	for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do # rounds interleave the tools
		for t in $TOOLS; do
			repo=$(repo_of "$t" "$name")
			mapfile -t cmd < <(backup_cmd "$t" "$repo" "$name" "nochange$ROUND" "$src")
			measure nochange "$name" "$t" - "$bytes" "$repo" "${cmd[@]}"
		done
	done
	ROUND=1
	"$GEN" mutate "$src" "$name-change" | tee -a "$RUN/mutate.txt" >&2
	meta "mutate.$name" "$(tail -1 "$RUN/mutate.txt")"
	read -r n bytes < <(census "$src")
	meta "corpus.$name.changed.files" "$n"
	meta "corpus.$name.changed.bytes" "$bytes"
	warm "$src"
	log "$name: 1%-changed re-run"
	for t in $TOOLS; do
		repo=$(repo_of "$t" "$name")
		mapfile -t cmd < <(backup_cmd "$t" "$repo" "$name" changed "$src")
		measure changed "$name" "$t" - "$bytes" "$repo" "${cmd[@]}"
	done
	log "$name: full restore"
	for t in $TOOLS; do
		repo=$(repo_of "$t" "$name")
		tgt=$RESTORE_DIR/$t
		rm -rf "$tgt"
		mkdir -p "$tgt"
		sync
		mapfile -t cmd < <(restore_cmd "$t" "$repo" "$name" changed "$tgt")
		measure restore "$name" "$t" - "$bytes" "$repo" "${cmd[@]}"
		if ! diff -r --no-dereference -q "$src" "$tgt$src" >"$RUN/diff.out" 2>&1; then
			echo "bench: $t restored $name differently:" >&2
			head "$RUN/diff.out" >&2
			exit 1
		fi
		rm -rf "$tgt"
	done
}

# big-index: backup of work/small into the NBLOBS repository and into an
# empty copy of it (same config and key), new cache then kept cache.
run_big_index() {
	local small=$BENCH_DIR/work/small n bytes t base repo
	local -a cmd
	rm -rf "$small"
	cp -a "$BENCH_DIR/corpus/small" "$small"
	read -r n bytes < <(census "$small")
	meta "corpus.small.files" "$n"
	meta "corpus.small.bytes" "$bytes"
	meta "repo_blobs" "$NBLOBS"
	meta "repo_blobs.bytes" "$(du -sb "$R2M" | cut -f1)"
	meta "repo_blobs.index_files" "$(find "$R2M/index" -type f | wc -l)"
	meta "repo_blobs.packs" "$(find "$R2M/data" -type f | wc -l)"
	warm "$small"
	warm "$R2M"
	log "big-index: backup of $n files into $NBLOBS blobs vs empty"
	for t in cairn restic; do
		case " $TOOLS " in *" $t "*) ;; *) continue ;; esac
		for base in empty blobs; do
			repo=$BENCH_DIR/repos/$t-$base
			rm -rf "$repo" "$BENCH_DIR/cache/$t-$base"
			if [ $base = blobs ]; then
				cp -al "$R2M" "$repo" # packs and index files are never rewritten
			else
				(cd "$R2M" && find . -type d) | (cd "$BENCH_DIR/repos" && mkdir -p "$repo" &&
					cd "$repo" && xargs mkdir -p)
				cp -a "$R2M/config" "$repo/"
				cp -a "$R2M/keys/." "$repo/keys/"
			fi
			mapfile -t cmd < <(backup_cmd "$t" "$repo" "$base" x "$small")
			measure big-index small "$t" "$base-newcache" "$bytes" "$repo" "${cmd[@]}"
			measure big-index small "$t" "$base-keptcache" "$bytes" "$repo" "${cmd[@]}"
		done
	done
}

# --- machine and versions ---
meta mode "$MODE"
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta nproc "$(nproc)"
meta cpu "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta cpu_flags_sha_ni "$(grep -m1 -ow sha_ni /proc/cpuinfo || echo no)"
meta mem_total_kib "$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
meta kernel "$(uname -r)"
meta bench_dir "$BENCH_DIR"
meta restore_dir "$RESTORE_DIR"
meta git_commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta git_dirty "$(git status --porcelain 2>/dev/null | grep -c . || true)"
meta tools "$TOOLS"
meta version.cairn "$("$CAIRN" version 2>&1 | head -1)"
meta cairn_binary "$CAIRN (sha256 $(sha256sum "$CAIRN" | cut -c1-12))"
meta version.restic "$(restic version 2>&1 | head -1)"
case " $TOOLS " in *" borg "*) meta version.borg "$(borg --version 2>&1 | head -1)" ;; esac
meta repeat "$REPEAT"
meta params "big files $BIG bytes x3, $NSMALL mix files of 1-64 KiB, $NTREE tree files of 64 B-16 KiB, 300 small files, $NBLOBS blobs"

log "bench $MODE: $TOOLS; data under $BENCH_DIR"
ensure_corpus "mix-$MODE" gen_mix "$BIG" "$NSMALL"
ensure_corpus "tree-$MODE" gen_tree "$NTREE"
ensure_corpus small gen_small
case " $TOOLS " in *" cairn "* | *" restic "*) ensure_repo2m ;; esac

run_corpus mix
run_corpus tree
case " $TOOLS " in *" cairn "* | *" restic "*) run_big_index ;; esac

# key derivation settings of each tool's own repositories (part of every run)
for t in cairn restic; do
	k=$(find "$(repo_of "$t" mix)/keys" -type f 2>/dev/null | head -1)
	[ -n "$k" ] && meta "kdf.$t" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("scrypt N=%d r=%d p=%d" % (d["N"], d["r"], d["p"]))' "$k")"
done
meta elapsed_s $(($(date +%s) - START))
python3 "$ROOT/bench/report.py" "$META" "$RESULTS" "$OUT/results-$MODE.json"
cp "$OUT/results-$MODE.json" "$OUT/results.json"
log "done: $OUT/results.json"
rm -rf "$BENCH_DIR/work" "$BENCH_DIR/repos" "$BENCH_DIR/cache" "$RESTORE_DIR"
