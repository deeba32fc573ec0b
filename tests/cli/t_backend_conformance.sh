#!/bin/bash
# t_backend_conformance.sh: the backend conformance suite
# (tests/unit/test_backend_conformance.c) against real servers: rclone serve
# restic for REST and s3rver for S3, each on a port of its own, besides the
# folder backend the suite always covers.
. "$(dirname "$0")/lib.sh"
SERVERS_STATE=$T/servers
mkdir -p "$SERVERS_STATE"
. "$TESTS_DIR/infra/servers.sh"
trap 'rest_stop; s3_stop; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT

BIN=$(dirname "$CAIRN_BIN")/build/unit/test_backend_conformance
[ -x "$BIN" ] || make -C "$(dirname "$CAIRN_BIN")" --no-print-directory build/unit/test_backend_conformance >/dev/null ||
	fail "cannot build $BIN"

# servers on free ports of their own (tests run two at a time)
for i in 1 2 3 4 5 6 7 8; do
	REST_PORT=$((20000 + RANDOM % 10000))
	ok=0; rest_start 2>/dev/null && { ok=1; break; }
done
[ "$ok" = 1 ] || fail "cannot start rclone serve restic"
# Signatures checked: tests/infra/s3rver-strict.js now answers a PUT only
# after the object's file is written, so an immediate read-back is whole.
for i in 1 2 3 4 5 6 7 8; do
	S3_PORT=$((20000 + RANDOM % 10000))
	ok=0; s3_start 2>/dev/null && { ok=1; break; }
done
[ "$ok" = 1 ] || fail "cannot start s3rver"

step "conformance: local, retry+local, REST (rclone), S3 (s3rver; save_fd also with multipart uploads)"
out=$(CAIRN_TEST_REST_URL="rest:$REST_URL/" CAIRN_TEST_S3_URL="s3:$S3_ENDPOINT/testbucket" \
	AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1 "$BIN" 2>&1)
rc=$?
echo "$out"
[ "$rc" = 0 ] || fail "conformance suite failed"
printf '%s\n' "$out" | grep -q "^  ok s3-multipart/save_fd_large$" || fail "save_fd did not run with S3 multipart uploads"
for t in local retry+local rest s3; do
	printf '%s\n' "$out" | grep -q "^  ok $t/concurrency$" || fail "the suite did not run against $t"
done
echo "t_backend_conformance: ok"
