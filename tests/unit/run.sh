#!/bin/sh
# Run each unit-test binary given on the command line; fail if any fails.
failed=0
for t in "$@"; do
	if "$t" >"$t.log" 2>&1; then
		echo "ok   $t ($(grep -c '^ok ' "$t.log") cases)"
	else
		echo "FAIL $t"; sed 's/^/    /' "$t.log" | tail -40
		failed=1
	fi
done
exit $failed
