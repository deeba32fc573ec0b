#!/bin/bash
# backup_rss.sh [SIZE_MIB]: peak memory of a backup of ONE large file (default
# 4096 MiB of incompressible data), cairn beside restic, same file, same run.
# Prints wall time, MB/s, peak RSS and repository size for both, and the ratios.
# The file is generated deterministically (AES-CTR keystream) under $BENCH_DIR
# (default /tmp/cairn-bench) and kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-4096}
BENCH_DIR=${BENCH_DIR:-/tmp/cairn-bench}
mkdir -p "$BENCH_DIR"
src=$BENCH_DIR/big-$SIZE_MIB
if [ ! -f "$src/file.bin" ] || [ "$(stat -c %s "$src/file.bin")" -ne $((SIZE_MIB << 20)) ]; then
	mkdir -p "$src"
	# head closes the pipe when done: openssl's SIGPIPE is expected
	{ openssl enc -aes-128-ctr -pass pass:cairn-bench -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
		head -c $((SIZE_MIB << 20)) >"$src/file.bin"
fi
export CAIRN_PASSWORD=bench RESTIC_PASSWORD=bench
export RESTIC_CACHE_DIR=$BENCH_DIR/restic-cache XDG_CACHE_HOME=$BENCH_DIR/cairn-cache

measure() { # name, repo, command...: prints "seconds maxrss_kib"
	local name=$1 repo=$2; shift 2
	rm -rf "$repo"
	"$@" init -r "$repo" >/dev/null 2>&1 || "$@" -r "$repo" init >/dev/null
	/usr/bin/time -f '%e %M' -o "$BENCH_DIR/$name.time" "$@" -r "$repo" backup -q "$src" >/dev/null
	cat "$BENCH_DIR/$name.time"
}

read -r c_sec c_kib < <(measure cairn "$BENCH_DIR/repo-cairn" ./cairn)
read -r r_sec r_kib < <(measure restic "$BENCH_DIR/repo-restic" restic)
c_size=$(du -sb "$BENCH_DIR/repo-cairn" | cut -f1)
r_size=$(du -sb "$BENCH_DIR/repo-restic" | cut -f1)

python3 - "$SIZE_MIB" "$c_sec" "$c_kib" "$c_size" "$r_sec" "$r_kib" "$r_size" <<'PY'
import sys
mib, cs, ck, cz, rs, rk, rz = sys.argv[1:]
mib = int(mib); cs, rs = float(cs), float(rs); ck, rk, cz, rz = int(ck), int(rk), int(cz), int(rz)
mb = mib * 1048576 / 1e6
print(f"backup of one {mib} MiB file (incompressible)")
print(f"{'':8} {'wall s':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'repo MiB':>9}")
print(f"{'cairn':8} {cs:8.2f} {mb/cs:8.1f} {ck/1024:13.1f} {cz/1048576:9.1f}")
print(f"{'restic':8} {rs:8.2f} {mb/rs:8.1f} {rk/1024:13.1f} {rz/1048576:9.1f}")
print(f"{'ratio':8} {rs/cs:7.2f}x {'':8} {ck/rk:12.2f}x {cz/rz:8.3f}x   (speed: restic/cairn time; RSS, size: cairn/restic)")
PY
