#!/bin/bash
# t_faults.sh: cairn against an S3 server (the strict-SigV4 s3rver) behind a
# fault-injecting proxy of our own (tests/infra/faultproxy.py):
#  1. every 7th connection dropped, every 5th request answered 503
#     SlowDown, one pack upload stalled past the per-request stall timeout:
#     the backup completes, cairn check --read-data and restic check
#     --read-data pass, and the restore equals the source;
#  2. a bad signature, an injected 403 and a 404 on a pack a restore needs
#     fail at once (well inside --retry-timeout), naming the operation, the
#     object and the server's error code, and never the secret;
#  3. a backup cut off by a server that went away exits non-zero; once the
#     server is back the next backup completes and both checks pass.
. "$(dirname "$0")/lib.sh"
SERVERS_STATE=$T/servers
mkdir -p "$SERVERS_STATE"
. "$TESTS_DIR/infra/servers.sh"
PROXY_STATE=$T PROXY_LOG=$T/proxy.log
. "$TESTS_DIR/infra/faultproxy.sh"
trap 'proxy_stop; s3_stop; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT

for i in 1 2 3 4 5 6 7 8; do
	S3_PORT=$((20000 + RANDOM % 10000))
	ok=0; s3_start 2>/dev/null && { ok=1; break; }
done
[ "$ok" = 1 ] || fail "cannot start s3rver"
start_proxy() { proxy_start "$S3_PORT" "$@" || fail "cannot start the fault proxy"; }
count() { proxy_count "$@"; }

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
make_sample_tree "$T/src"
head -c 6000000 /dev/urandom >"$T/src/more.bin"

step "(${SECONDS}s) 1. drops, 503s and a stall: the backup completes and nothing is lost"
start_proxy --drop-every 7 --fail-every 5 --conn-max-requests 2 \
	--stall-match 'PUT /testbucket/faults/data/' --stall-request 2 --stall-seconds 25
R=s3:http://127.0.0.1:$PROXY_PORT/testbucket/faults
DIRECT=s3:$S3_ENDPOINT/testbucket/faults
# faults heal within seconds.  The stall outlasts the 2 s stall timeout
# (curl measures speed over a few seconds, so an upload's answer that never
# comes is noticed some 5-8 s after the last byte went out)
C=(--retry-timeout 40s -o s3.stall-timeout=2 --pack-size 4)
cairn "${C[@]}" -r "$R" init || fail "init through the faulty proxy"
cairn "${C[@]}" -v -r "$R" backup "$T/src" --host faulty 2>&1 | tee "$T/backup.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "backup through the faulty proxy failed"
cat "$T/proxy.log"
[ "$(count ' drop ')" -ge 1 ] || fail "no connection was dropped"
[ "$(count ' fail 503 ')" -ge 2 ] || fail "fewer than two 503s were injected"
[ "$(count ' stall 25s PUT /testbucket/faults/data/')" = 1 ] || fail "no pack upload was stalled"
grep -q "retry: save data/" "$T/backup.log" || fail "no retried pack upload in the log"
grep -q "retry: save data/.*too slow" "$T/backup.log" || fail "the stalled upload was not timed out by cairn"
cairn "${C[@]}" -r "$R" check --read-data || fail "cairn check --read-data through the faulty proxy"
restic -r "$DIRECT" check --read-data || fail "restic check --read-data after the faulty backup"
cairn "${C[@]}" -r "$R" restore latest --target "$T/r1" || fail "restore through the faulty proxy"
tree_equal "$T/src" "$T/r1$T/src"
proxy_stop

step "(${SECONDS}s) 2. permanent errors fail at once and name the operation, object and error code"
# a wrong secret: the strict server answers 403 SignatureDoesNotMatch
start=$(date +%s)
out=$(AWS_SECRET_ACCESS_KEY=not-the-secret cairn --retry-timeout 60s -r "$DIRECT" snapshots 2>&1); rc=$?
echo "$out"
[ "$rc" = 1 ] || fail "wrong secret: exit $rc, want 1"
printf '%s' "$out" | grep -qE "cannot (stat|read) config 'config' in 's3:[^']*': SignatureDoesNotMatch: .*\(HTTP 403" ||
	fail "a bad signature is not reported with the operation, the object, the code and the status"
case $out in *not-the-secret*) fail "the secret was printed" ;; esac
[ $(( $(date +%s) - start )) -lt 10 ] || fail "a bad signature was retried"

# 403 AccessDenied on the index files
start_proxy --inject 'GET:/testbucket/faults/index/:403:AccessDenied'
start=$(date +%s)
out=$(cairn --retry-timeout 60s --no-cache -r "$R" check 2>&1); rc=$?
echo "$out"
[ "$rc" = 1 ] || fail "403: exit $rc, want 1"
printf '%s' "$out" | grep -qE "cannot read index 'index/[0-9a-f]{64}' in 's3:[^']*': AccessDenied: .*\(HTTP 403\)" ||
	fail "a 403 is not reported with the operation, the index file, the code and the status"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "a 403 was retried"
proxy_stop

# 404 on a pack the restore needs: take one away on the server
pack=$(find "$SERVERS_STATE/s3data/testbucket/faults/data" -name '*._S3rver_object' | head -1)
id=$(basename "$pack" ._S3rver_object)
mkdir -p "$T/hidden"
mv "$(dirname "$pack")/$id"._S3rver_* "$T/hidden/"
start=$(date +%s)
out=$(cairn --retry-timeout 60s -r "$DIRECT" restore latest --target "$T/r-missing" 2>&1); rc=$?
echo "$out" | tail -5
[ "$rc" = 1 ] || fail "missing pack: exit $rc, want 1"
# the operation and the object, then the status and S3's code (a GET's
# NoSuchKey; a HEAD's 404 has no body, and the backend names NoSuchKey)
printf '%s' "$out" | grep -qE "cannot (read|stat) pack 'data/${id:0:2}/$id' in 's3:[^']*': it does not exist \(HTTP 404 NoSuchKey[:)]" ||
	fail "the missing pack is not reported with the operation, the object and NoSuchKey"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "a missing pack was retried"
mv "$T/hidden/$id"._S3rver_* "$(dirname "$pack")/"

step "(${SECONDS}s) 3. a server that goes away mid-backup; the next backup completes"
head -c 9000000 /dev/urandom >"$T/src/new.bin"
# two more pack uploads get through, then every request is refused
start_proxy --refuse-after 2 --refuse-match 'PUT /testbucket/faults/data/'
start=$(date +%s)
cairn --retry-timeout 1s --pack-size 4 -r "$R" backup "$T/src" --host faulty && fail "backup against a vanished server succeeded"
took=$(( $(date +%s) - start ))
echo "the cut-off backup failed after ${took}s"
[ "$took" -lt 30 ] || fail "the cut-off backup took ${took}s despite --retry-timeout 1s"
[ "$(count ' refuse ')" -ge 1 ] || fail "the proxy refused nothing"
proxy_stop
start_proxy
cairn --retry-timeout 30s --pack-size 4 -r "$R" backup "$T/src" --host faulty || fail "the backup after the server came back failed"
cairn -r "$R" check --read-data || fail "cairn check --read-data after the cut-off"
# the cut-off backup could not remove its lock; restic's exclusive lock
# wants it gone, as a user would: cairn unlock removes it (its process is gone)
cairn -r "$R" unlock || fail "unlock"
[ -z "$(ls "$SERVERS_STATE/s3data/testbucket/faults/locks" 2>/dev/null)" ] || fail "a stale lock is left"
restic -r "$DIRECT" check --read-data || fail "restic check --read-data after the cut-off"
cairn -r "$R" restore latest --target "$T/r2" || fail "restore after the cut-off"
tree_equal "$T/src" "$T/r2$T/src"
echo "t_faults: ok (${SECONDS}s)"
