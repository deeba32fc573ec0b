#!/bin/bash
# t_rest.sh: restic's REST protocol against a real server (rclone serve
# restic): cairn init/backup/restore/check --read-data through REST; restic
# check --read-data and restore on the repository cairn wrote there; cairn
# restoring and checking a repository restic wrote there; basic auth from
# the URL, right and wrong, with the password never shown.
. "$(dirname "$0")/lib.sh"
SERVERS_STATE=$T/servers
mkdir -p "$SERVERS_STATE"
. "$TESTS_DIR/infra/servers.sh"
PROXY_STATE=$T PROXY_LOG=$T/proxy.log
. "$TESTS_DIR/infra/faultproxy.sh"
trap 'proxy_stop; rest_stop; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT

# rclone on a free port of our own (tests run two at a time)
start_rest() {
	local i
	for i in 1 2 3 4 5 6 7 8; do
		REST_PORT=$((20000 + RANDOM % 10000))
		rest_start "$@" 2>/dev/null && return 0
	done
	fail "cannot start rclone serve restic"
}

make_sample_tree "$T/src"
start_rest
R=rest:$REST_URL/cairn-repo/

step "cairn init, backup, snapshots, restore, check --read-data through REST"
cairn -r "$R" init || fail "init through REST"
expect_output_contains "already exists" cairn -r "$R" init
cairn -r "$R" backup "$T/src" --host testhost || fail "backup through REST"
printf 'changed\n' >>"$T/src/hello.txt"
cairn -r "$R" backup "$T/src" --host testhost || fail "backup through REST"
[ "$(cairn -r "$R" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
	fail "want 2 snapshots"
cairn -r "$R" restore latest --target "$T/r1" || fail "cairn restore through REST"
tree_equal "$T/src" "$T/r1$T/src"
cairn -r "$R" check --read-data || fail "cairn check --read-data through REST"
# the server holds the restic layout: data/xx/<id>
ls "$SERVERS_STATE/rest/cairn-repo/data/" | grep -qE '^[0-9a-f]{2}$' || fail "no data/xx directories on the server"

step "restic check --read-data and restore on cairn's REST repository"
restic -r "$R" check --read-data || fail "restic check --read-data on cairn's REST repository"
restic -r "$R" restore latest --target "$T/r2" || fail "restic restore of cairn's REST repository"
# restic 0.14 writes sparse files densely: compare all but the allocation
python3 "$TESTS_DIR/cli/treecmp.py" "$T/src" "$T/r2$T/src" >"$T/diff" || true
cat "$T/diff"
grep -v '^sparse: not sparse' "$T/diff" | grep -q . && fail "restic's restore differs"

step "cairn restores and checks a repository restic wrote through REST"
RR=rest:$REST_URL/restic-repo/
restic -r "$RR" init || fail "restic init through REST"
restic -r "$RR" backup "$T/src" --host restichost || fail "restic backup through REST"
cairn -r "$RR" check --read-data || fail "cairn check --read-data on restic's REST repository"
cairn -r "$RR" restore latest --target "$T/r3" || fail "cairn restore of restic's REST repository"
tree_equal "$T/src" "$T/r3$T/src"
# and a cairn backup into it that restic then checks
cairn -r "$RR" backup "$T/src/sub" --host testhost || fail "cairn backup into restic's REST repository"
restic -r "$RR" check --read-data || fail "restic check --read-data after cairn's backup"

step "REST through the fault proxy: dropped connections, 503s and a stalled answer are retried"
proxy_start "$REST_PORT" --drop-every 7 --fail-every 5 --conn-max-requests 2 \
	--stall-match 'GET /faulty/data/[0-9a-f]' --stall-request 1 --stall-seconds 20 || fail "cannot start the fault proxy"
RF=rest:http://127.0.0.1:$PROXY_PORT/faulty/
F=(--retry-timeout 30s -o rest.stall-timeout=2 --pack-size 4)
cairn "${F[@]}" -r "$RF" init || fail "init through the fault proxy"
cairn "${F[@]}" -v -r "$RF" backup "$T/src/sub" --host testhost 2>&1 | tee "$T/faulty.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "backup through the fault proxy"
cairn "${F[@]}" -v -r "$RF" check --read-data 2>&1 | tee -a "$T/faulty.log"
[ "${PIPESTATUS[0]}" = 0 ] || fail "check --read-data through the fault proxy"
cat "$PROXY_LOG"
[ "$(proxy_count ' drop ')" -ge 1 ] || fail "no connection was dropped"
[ "$(proxy_count ' fail 503 ')" -ge 2 ] || fail "fewer than two 503s were injected"
[ "$(proxy_count ' stall 20s GET /faulty/data/')" = 1 ] || fail "no pack download was stalled"
grep -q "retry: load data/.*too slow" "$T/faulty.log" || fail "the stalled download was not timed out"
restic -r "rest:$REST_URL/faulty/" check --read-data || fail "restic check --read-data after the faults"
proxy_stop

step "a missing repository on the server is an error"
expect_exit 1 cairn -r "rest:$REST_URL/no-such-repo/" snapshots

step "basic auth: right user and password from the URL"
rest_stop
start_rest --user alice --pass 'pa55-w0rd'
RA="rest:http://alice:pa55-w0rd@127.0.0.1:$REST_PORT/auth/"
out=$(cairn -r "$RA" init 2>&1) || fail "init with basic auth: $out"
echo "$out"
case $out in *pa55-w0rd*) fail "init printed the REST password" ;; esac
cairn -r "$RA" backup "$T/src/sub" --host testhost || fail "backup with basic auth"
cairn -r "$RA" check --read-data || fail "cairn check --read-data with basic auth"
restic -r "$RA" check --read-data || fail "restic check --read-data with basic auth"

step "basic auth: wrong password and no password fail at once, naming the status"
for bad in "rest:http://alice:wrong-one@127.0.0.1:$REST_PORT/auth/" "rest:http://127.0.0.1:$REST_PORT/auth/"; do
	start=$(date +%s)
	out=$(cairn -r "$bad" snapshots 2>&1); rc=$?
	echo "$out"
	[ "$rc" = 1 ] || fail "wrong credentials: exit $rc, want 1"
	printf '%s' "$out" | grep -q "401" || fail "no HTTP status in: $out"
	case $out in *wrong-one*|*pa55-w0rd*) fail "a password was printed" ;; esac
	[ $(( $(date +%s) - start )) -lt 10 ] || fail "access denied was retried"
done

echo "t_rest: ok"
