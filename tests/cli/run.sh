#!/bin/bash
# Run every integration test tests/cli/t_*.sh (or those named on the command
# line) against ./cairn and the real restic; print ok/FAIL per test with the
# tail of a failing test's log.
cd "$(dirname "$0")/../.." || exit 1
export CAIRN_BIN=$PWD/cairn TESTS_DIR=$PWD/tests
mkdir -p build/cli
failed=0
tests=("$@")
[ ${#tests[@]} -eq 0 ] && tests=(tests/cli/t_*.sh)
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	start=$(date +%s)
	if bash "$t" >"build/cli/$name.log" 2>&1; then
		echo "ok   $name ($(( $(date +%s) - start ))s)"
	else
		echo "FAIL $name (log: build/cli/$name.log)"
		tail -30 "build/cli/$name.log" | sed 's/^/    /'
		failed=1
	fi
done
exit $failed
