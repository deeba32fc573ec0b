#!/bin/bash
# s3_vs_local.sh [MiB]: the same backup to S3 over loopback and to a local
# folder, side by side (issue #4 point 3: S3 at >= 80% of the local speed).
#
# Corpus (bench/gencorpus, deterministic, kept in $BENCH_S3_DIR/corpus): of
# MiB (default 500) in total, 40% one "mixed" file, 30% random, 20% text,
# and 10% small files of 1-64 KiB.  The S3 server is s3rver behind the
# strict SigV4 checker (tests/infra), on 127.0.0.1, its data under the same
# /tmp as the local repository; -o s3.connections stays at its default (5)
# unless BENCH_S3_OPTS says otherwise.  Each round backs up into a new
# repository with a new cache, local first, then S3; ROUNDS rounds (default
# 3); the best time of each side counts (other load on the machine only
# ever slows a run down), and, for a busy machine, the median of the
# rounds' ratios (each round's two runs see about the same load).  Also
# reported: the server's CPU time during the S3 runs (it shares this
# machine's cores with cairn), and the load average.
#
# Environment: BENCH_S3_DIR (default /tmp/cairn-bench-s3), ROUNDS, BENCH_S3_PIN
# (1: the server alone on the last core, cairn on the others),
# BENCH_S3_OPTS (extra global options for the S3 runs, e.g.
# "-o s3.connections=8"), BENCH_BACKUP_OPTS (backup options for both sides,
# e.g. "--threads 4"), BENCH_CAIRN (default ./cairn),
# S3RVER_STRICT_SIGV4 (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MIB=${1:-500}
ROUNDS=${ROUNDS:-3}
DIR=$(realpath -m "${BENCH_S3_DIR:-/tmp/cairn-bench-s3}")
GEN=$ROOT/build/bench/gencorpus
CAIRN=$(realpath -m "${BENCH_CAIRN:-$ROOT/cairn}")
read -r -a EXTRA <<<"${BENCH_S3_OPTS:-}"
read -r -a BOPTS <<<"${BENCH_BACKUP_OPTS:-}"
for f in "$GEN" "$CAIRN"; do
	[ -x "$f" ] || { echo "bench-s3: $f missing: run 'make bench-s3'" >&2; exit 1; }
done

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -n 9 || { echo "bench-s3: another run holds $DIR/.lock" >&2; exit 1; }
SERVERS_STATE=$DIR/server
rm -rf "$SERVERS_STATE" "$DIR/repos" "$DIR/cache"
mkdir -p "$SERVERS_STATE" "$DIR/repos"
. "$ROOT/tests/infra/servers.sh"
trap 'set +e; s3_stop' EXIT  # wait's 143 for the killed server must not become the exit status
for i in 1 2 3 4 5 6 7 8; do
	S3_PORT=$((20000 + RANDOM % 10000))
	s3_start 2>/dev/null && break
done
[ -n "${S3_PID:-}" ] || { echo "bench-s3: cannot start s3rver" >&2; exit 1; }
# BENCH_S3_PIN=1: the server on the last core, cairn (both sides) on the
# others, so that the comparison shows cairn's own cost of talking S3
# rather than the server's CPU taken from cairn's cores.
PIN=()
if [ "${BENCH_S3_PIN:-0}" = 1 ]; then
	last=$(($(nproc) - 1))
	[ "$last" -ge 1 ] || { echo "bench-s3: BENCH_S3_PIN needs two cores" >&2; exit 1; }
	taskset -a -pc "$last" "$S3_PID" >/dev/null
	PIN=(taskset -c "0-$((last - 1))")
fi

export CAIRN_PASSWORD=cairn-bench AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
unset CAIRN_REPOSITORY RESTIC_REPOSITORY AWS_SESSION_TOKEN AWS_PROFILE

# the corpus, generated once per size
C=$DIR/corpus-$MIB
if [ ! -f "$C.done" ]; then
	echo "bench-s3: generating $MIB MiB of mixed data in $C" >&2
	rm -rf "$C"
	mkdir -p "$C"
	B=$((MIB << 20))
	"$GEN" file mixed s3bench-mixed $((B * 40 / 100)) "$C/mixed.bin" >/dev/null
	"$GEN" file random s3bench-random $((B * 30 / 100)) "$C/random.bin" >/dev/null
	"$GEN" file text s3bench-text $((B * 20 / 100)) "$C/text.txt" >/dev/null
	# log-uniform 1..64 KiB: about 15 KiB on average
	"$GEN" files "$C/small" s3bench-small $((B / 10 / 15400)) 1024 65536 log 40 40 >/dev/null
	touch "$C.done"
fi
BYTES=$(du -sb "$C" | cut -f1)
cat "$C"/*.* >/dev/null # page cache warm for both sides
find "$C/small" -type f -exec cat {} + >/dev/null

now() { date +%s.%N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ratios=()
best_local=
best_s3=
server_cpu=
local_cpu=
s3_cpu=
for round in $(seq 1 "$ROUNDS"); do
	repo=$DIR/repos/local-$round
	"$CAIRN" -r "$repo" init -q
	rm -rf "$DIR/cache"
	t0=$(now)
	XDG_CACHE_HOME=$DIR/cache /usr/bin/time -f '%U %S' -o "$DIR/cpu" ${PIN[@]+"${PIN[@]}"} \
		"$CAIRN" -r "$repo" backup -q "${BOPTS[@]}" "$C"
	t1=$(now)
	tl=$(echo "$t1 - $t0" | bc)
	cl=$(awk '{ print $1 + $2 }' "$DIR/cpu")
	rm -rf "$repo"

	repo=s3:$S3_ENDPOINT/testbucket/round-$round
	"$CAIRN" -r "$repo" "${EXTRA[@]}" init -q
	rm -rf "$DIR/cache"
	c0=$(cpu_ticks "$S3_PID")
	t0=$(now)
	XDG_CACHE_HOME=$DIR/cache /usr/bin/time -f '%U %S' -o "$DIR/cpu" ${PIN[@]+"${PIN[@]}"} \
		"$CAIRN" -r "$repo" "${EXTRA[@]}" backup -q "${BOPTS[@]}" "$C"
	t1=$(now)
	c1=$(cpu_ticks "$S3_PID")
	ts=$(echo "$t1 - $t0" | bc)
	cs=$(awk '{ print $1 + $2 }' "$DIR/cpu")
	rm -rf "$SERVERS_STATE/s3data/testbucket/round-$round"
	printf 'round %d: local %.2f s (cairn CPU %.2f s), s3 %.2f s (cairn CPU %.2f s, server CPU %.2f s)\n' \
		"$round" "$tl" "$cl" "$ts" "$cs" "$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)"
	ratios+=("$(echo "100 * $tl / $ts" | bc -l)")
	if [ -z "$best_local" ] || [ "$(echo "$tl < $best_local" | bc)" = 1 ]; then
		best_local=$tl
		local_cpu=$cl
	fi
	if [ -z "$best_s3" ] || [ "$(echo "$ts < $best_s3" | bc)" = 1 ]; then
		best_s3=$ts
		s3_cpu=$cs
		server_cpu=$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)
	fi
done
rm -rf "$DIR/cache" "$DIR/repos"

printf '\nbackup of %d MB (%s), best of %d, %s cores, load average %s\n' "$((BYTES / 1000000))" \
	"$(basename "$C")" "$ROUNDS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  options: s3 %s; backup %s%s\n' "${BENCH_S3_OPTS:-(defaults)}" "${BENCH_BACKUP_OPTS:-(defaults)}" \
	"$([ ${#PIN[@]} -gt 0 ] && echo "; pinned: server on core $last, cairn on ${PIN[2]}")"
if [ "${S3RVER_STRICT_SIGV4:-1}" = 1 ]; then label="s3 (s3rver, strict SigV4, loopback)"
else label="s3 (s3rver, loopback)"; fi
printf '  %-34s %8.2f s %8.1f MB/s  (cairn CPU %.2f s)\n' "local folder" "$best_local" \
	"$(echo "$BYTES / $best_local / 1000000" | bc -l)" "$local_cpu"
printf '  %-34s %8.2f s %8.1f MB/s  (cairn CPU %.2f s, server CPU %.2f s)\n' "$label" \
	"$best_s3" "$(echo "$BYTES / $best_s3 / 1000000" | bc -l)" "$s3_cpu" "$server_cpu"
printf '  S3 speed / local speed: %.0f%% (best times), %.0f%% (median of the rounds)\n' \
	"$(echo "100 * $best_local / $best_s3" | bc -l)" \
	"$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"
