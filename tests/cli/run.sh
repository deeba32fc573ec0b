#!/bin/bash
# Run every integration test tests/cli/t_*.sh (or those named on the command
# line) against ./cairn and the real restic, CAIRN_TEST_JOBS at a time
# (default: the number of cores); print ok/FAIL per test, in order, with the
# tail of a failing test's log.  Tests share nothing but the machine: each
# works in its own temp dir, and none starts a server on a fixed port yet.
cd "$(dirname "$0")/../.." || exit 1
export CAIRN_BIN=$PWD/cairn TESTS_DIR=$PWD/tests
mkdir -p build/cli
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/cli/t_*.sh)
jobs=${CAIRN_TEST_JOBS:-$(nproc)}

# Install the S3 test server (npm) once, before tests that start it run side
# by side: two first-time installs into one folder would collide.
if grep -lq 's3_start' "${tests[@]}" 2>/dev/null; then
	(SERVERS_STATE=$(mktemp -d) && . tests/infra/servers.sh && s3_install && rm -rf "$SERVERS_STATE") ||
		echo "warning: cannot install s3rver; the S3 tests will fail" >&2
fi

run_one() {
	local t=$1 name start
	name=$(basename "$t" .sh)
	start=$(date +%s)
	if bash "$t" >"build/cli/$name.log" 2>&1; then
		echo "ok   $name ($(( $(date +%s) - start ))s)" >"build/cli/$name.result"
	else
		{ echo "FAIL $name (log: build/cli/$name.log)"
		  tail -30 "build/cli/$name.log" | sed 's/^/    /'; } >"build/cli/$name.result"
	fi
}

running=0
for t in "${tests[@]}"; do
	rm -f "build/cli/$(basename "$t" .sh).result"
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

failed=0
for t in "${tests[@]}"; do
	r=build/cli/$(basename "$t" .sh).result
	cat "$r"
	grep -q '^FAIL' "$r" && failed=1
done
exit $failed
