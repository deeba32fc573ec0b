#!/bin/bash
# t_s3.sh: S3 against a real server (s3rver behind the strict SigV4 checker
# of tests/infra): cairn init/backup/snapshots/restore/check --read-data
# through S3; restic check --read-data and restore on the repository cairn
# wrote there; cairn restoring and checking a repository restic wrote there;
# the object names on the server are restic's; a wrong secret or access key
# is a clear "access denied" with exit code 1 and no secret shown;
# credentials from a shared credentials file; multipart uploads and
# virtual-hosted requests end to end; and, through the unit binary
# test_s3, more than 1,000 objects under one prefix listed page by page
# (counted again by restic).
. "$(dirname "$0")/lib.sh"
SERVERS_STATE=$T/servers
mkdir -p "$SERVERS_STATE"
. "$TESTS_DIR/infra/servers.sh"
trap 's3_stop; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT

UNIT=$(dirname "$CAIRN_BIN")/build/unit/test_s3
[ -x "$UNIT" ] || make -C "$(dirname "$CAIRN_BIN")" --no-print-directory build/unit/test_s3 >/dev/null ||
	fail "cannot build $UNIT"

# s3rver on a free port of our own (tests run two at a time)
for i in 1 2 3 4 5 6 7 8; do
	S3_PORT=$((20000 + RANDOM % 10000))
	s3_start 2>/dev/null && break
done
[ -n "${S3_PID:-}" ] || fail "cannot start s3rver"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_DEFAULT_REGION AWS_REGION
DATA=$SERVERS_STATE/s3data/testbucket
count_snapshots() {
	"$@" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

make_sample_tree "$T/src"
R=s3:$S3_ENDPOINT/testbucket/cairn/repo

step "cairn init, backup (twice), snapshots, restore, check --read-data through S3"
expect_output_contains "created restic repository" cairn -r "$R" init
expect_output_contains "already exists" cairn -r "$R" init
cairn -r "$R" backup "$T/src" --host testhost || fail "backup through S3"
printf 'changed\n' >>"$T/src/hello.txt"
cairn -r "$R" backup "$T/src" --host testhost || fail "second backup through S3"
[ "$(count_snapshots cairn -r "$R")" = 2 ] || fail "want 2 snapshots"
cairn -r "$R" snapshots | grep -q testhost || fail "snapshots does not show the host"
cairn -r "$R" restore latest --target "$T/r1" || fail "cairn restore through S3"
tree_equal "$T/src" "$T/r1$T/src"
cairn -r "$R" check --read-data || fail "cairn check --read-data through S3"

step "the bucket holds restic's layout below the prefix"
for f in config keys index snapshots data; do
	ls -d "$DATA/cairn/repo/$f"* >/dev/null 2>&1 || fail "no '$f' under the prefix on the server"
done
ls "$DATA/cairn/repo/data/" | grep -qE '^[0-9a-f]{2}$' || fail "no data/xx fan-out on the server"
ls "$DATA/cairn/repo/data/"*/ | grep -qE '^[0-9a-f]{64}\._S3rver_object$' || fail "no data/xx/<id> objects"

step "restic check --read-data, snapshots and restore on the repository cairn wrote"
restic -r "$R" check --read-data || fail "restic check --read-data on cairn's S3 repository"
[ "$(count_snapshots restic -r "$R")" = 2 ] || fail "restic sees the wrong number of snapshots"
restic -r "$R" restore latest --target "$T/r2" || fail "restic restore of cairn's S3 repository"
# restic 0.14 writes sparse files densely: compare all but the allocation
python3 "$TESTS_DIR/cli/treecmp.py" "$T/src" "$T/r2$T/src" >"$T/diff" || true
cat "$T/diff"
grep -v '^sparse: not sparse' "$T/diff" | grep -q . && fail "restic's restore differs"

step "cairn reads a repository that restic wrote to S3"
RR=s3:$S3_ENDPOINT/testbucket/restic-repo
restic -r "$RR" init || fail "restic init on S3"
restic -r "$RR" backup -q "$T/src" --host restichost || fail "restic backup to S3"
[ "$(count_snapshots cairn -r "$RR")" = 1 ] || fail "cairn does not list restic's snapshot"
cairn -r "$RR" restore latest --target "$T/r3" || fail "cairn restore of restic's S3 repository"
tree_equal "$T/src" "$T/r3$T/src"
cairn -r "$RR" check --read-data || fail "cairn check --read-data of restic's S3 repository"
# and a backup into it that restic then checks
cairn -r "$RR" backup "$T/src/sub" --host testhost || fail "cairn backup into restic's S3 repository"
restic -r "$RR" check --read-data || fail "restic check after cairn's backup into its repository"

step "init makes a missing bucket, as restic does; a repository at the bucket's root"
RB=s3:$S3_ENDPOINT/newbucket
cairn -r "$RB" init -q || fail "init into a new bucket"
[ -d "$SERVERS_STATE/s3data/newbucket/keys" ] || fail "no keys/ at the new bucket's root"
cairn -r "$RB" backup -q "$T/src/sub" || fail "backup into the new bucket"
restic -r "$RB" check --read-data || fail "restic check of the repository at the bucket's root"

step "a wrong secret key or access key: access denied, exit 1, no secret shown"
out=$(AWS_SECRET_ACCESS_KEY=not-the-secret-42 cairn -r "$R" snapshots 2>&1)
code=$?
echo "$out"
[ "$code" = 1 ] || fail "wrong secret key: exit code $code, want 1"
for want in "access denied" "SignatureDoesNotMatch" "config" "$R" "AWS_SECRET_ACCESS_KEY"; do
	printf '%s' "$out" | grep -qF -- "$want" || fail "wrong secret key: the message lacks '$want'"
done
printf '%s' "$out" | grep -qF "not-the-secret-42" && fail "the message shows the secret"
out=$(AWS_ACCESS_KEY_ID=NOBODY cairn -r "$R" backup "$T/src" 2>&1)
code=$?
echo "$out"
[ "$code" = 1 ] || fail "wrong access key: exit code $code, want 1"
printf '%s' "$out" | grep -qF "access denied" || fail "wrong access key: no 'access denied'"
printf '%s' "$out" | grep -qF "InvalidAccessKeyId" || fail "wrong access key: no server code"
printf '%s' "$out" | grep -qF "S3RVER" && fail "the message shows the secret"
out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME=$T "$CAIRN_BIN" -r "$R" snapshots 2>&1)
code=$?
echo "$out"
[ "$code" = 1 ] || fail "no credentials: exit code $code, want 1"
printf '%s' "$out" | grep -qF "no S3 credentials" || fail "no credentials: unclear message"

step "credentials from a shared credentials file (--s3-credentials-file, AWS_PROFILE)"
printf '[default]\naws_access_key_id = NOBODY\naws_secret_access_key = nothing\n\n[test]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n' \
	>"$T/credentials"
[ "$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=test \
	"$CAIRN_BIN" -r "$R" --s3-credentials-file "$T/credentials" snapshots --json |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
	fail "--s3-credentials-file with AWS_PROFILE=test"
[ "$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_PROFILE=test AWS_SHARED_CREDENTIALS_FILE=$T/credentials \
	"$CAIRN_BIN" -r "$R" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
	fail "AWS_SHARED_CREDENTIALS_FILE with AWS_PROFILE=test"
out=$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$CAIRN_BIN" -r "$R" --s3-credentials-file "$T/credentials" snapshots 2>&1)
[ $? = 1 ] || fail "the default profile's wrong keys were accepted"
printf '%s' "$out" | grep -qF "access denied" || fail "default profile: no 'access denied'"

step "a session token (AWS_SESSION_TOKEN) is sent and signed"
[ "$(AWS_SESSION_TOKEN='FwoGZXIvYXdzEN//////////session+token/=' count_snapshots cairn -r "$R")" = 2 ] ||
	fail "a signed session token broke the requests"

step "TLS: the system CAs by default, --cacert FILE, --insecure-tls only when asked"
# a TLS front of our own for the server: certificates for 127.0.0.1 from
# servers.sh, bytes relayed untouched (the signed Host header stays valid)
etcd_tls_certs "$T/tls"
TLS_PORT=
for i in 1 2 3 4 5 6 7 8; do
	p=$((20000 + RANDOM % 10000))
	_port_busy "$p" || { TLS_PORT=$p; break; }
done
[ -n "$TLS_PORT" ] || fail "no free port for the TLS front"
python3 - "$T/tls/server.crt" "$T/tls/server.key" "$TLS_PORT" "$S3_PORT" >"$T/tls.log" 2>&1 <<-'EOF' &
	import asyncio, ssl, sys
	cert, key, port, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
	ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
	ctx.load_cert_chain(cert, key)
	async def pipe(r, w):
	    try:
	        while True:
	            d = await r.read(1 << 16)
	            if not d:
	                break
	            w.write(d)
	            await w.drain()
	    except Exception:
	        pass
	    finally:
	        w.close()
	async def handle(cr, cw):
	    ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
	    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))
	async def main():
	    srv = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
	    async with srv:
	        await srv.serve_forever()
	asyncio.run(main())
	EOF
TLS_PID=$!
trap 'kill $TLS_PID 2>/dev/null; s3_stop; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 50); do _port_busy "$TLS_PORT" && break; sleep 0.1; done
RT=s3:https://127.0.0.1:$TLS_PORT/testbucket/cairn/repo
out=$(cairn -r "$RT" --retry-timeout 0 snapshots 2>&1)
code=$?
echo "$out"
[ "$code" = 1 ] || fail "an unknown CA was trusted (exit $code)"
printf '%s' "$out" | grep -qF -- "--cacert" || fail "the TLS failure does not point at --cacert"
[ "$(count_snapshots cairn -r "$RT" --cacert "$T/tls/ca.crt")" = 2 ] || fail "--cacert"
[ "$(count_snapshots cairn -r "$RT" --insecure-tls)" = 2 ] || fail "--insecure-tls"
cairn -r "$RT" --cacert "$T/tls/ca.crt" check --read-data || fail "check --read-data over TLS"
restic -r "$RT" --cacert "$T/tls/ca.crt" check || fail "restic check over the same TLS front"

step "bad options are refused before any request"
expect_output_contains "unknown option 's3.conections'" cairn -r "$R" -o s3.conections=3 snapshots
expect_exit 1 cairn -r "$R" -o s3.connections=0 snapshots
expect_output_contains "want auto, dns or path" cairn -r "$R" -o s3.bucket-lookup=sideways snapshots

step "multipart uploads (threshold lowered to 6 MiB, 5 MiB parts) and 8 connections"
RM=s3:$S3_ENDPOINT/testbucket/multipart
MP=(-o s3.multipart-threshold=6M -o s3.part-size=5M -o s3.connections=8)
mkdir -p "$T/big"
head -c 30000000 /dev/urandom >"$T/big/random.bin"
cairn -r "$RM" "${MP[@]}" init -q || fail "init (multipart)"
out=$(cairn -r "$RM" "${MP[@]}" -vv backup "$T/big" 2>&1) || { echo "$out"; fail "backup with multipart uploads"; }
printf '%s\n' "$out" | grep -q "complete the multipart upload of pack" || fail "no multipart upload happened"
restic -r "$RM" check --read-data || fail "restic check --read-data after multipart uploads"
cairn -r "$RM" restore latest --target "$T/r4" || fail "restore after multipart uploads"
cmp "$T/big/random.bin" "$T/r4$T/big/random.bin" || fail "multipart restore differs"

step "a failed multipart upload is aborted; a server that cannot abort (s3rver) only earns a warning"
# the fault proxy answers every CompleteMultipartUpload with 400 InvalidPart
python3 "$TESTS_DIR/infra/faultproxy.py" --upstream "127.0.0.1:$S3_PORT" --port-file "$T/proxy.port" \
	--inject 'POST:uploadId=:400:InvalidPart' --log "$T/proxy.log" &
PROXY_PID=$!
trap 'kill $PROXY_PID 2>/dev/null; kill $TLS_PID 2>/dev/null; s3_stop; chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 50); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
[ -s "$T/proxy.port" ] || fail "the fault proxy did not start"
RP=s3:http://127.0.0.1:$(cat "$T/proxy.port")/testbucket/multipart-fail
cairn -r "$RP" init -q || fail "init through the fault proxy"
out=$(cairn -r "$RP" "${MP[@]}" backup "$T/big" 2>&1)
code=$?
echo "$out" | tail -5
[ "$code" = 1 ] || fail "a backup whose multipart uploads fail exited $code, want 1"
printf '%s' "$out" | grep -q "cannot complete the multipart upload of pack 'data/.*InvalidPart" ||
	fail "the failure does not name the operation, the pack and the server's code"
printf '%s' "$out" | grep -q "warning: .*cannot abort the multipart upload of pack .*MethodNotAllowed" ||
	fail "no warning about the abort that s3rver cannot do"
grep -q "inject 400 InvalidPart POST" "$T/proxy.log" || fail "the proxy injected nothing"
kill $PROXY_PID 2>/dev/null
# no pack whose upload failed became an object (packs uploaded in parallel by
# other uploader threads may have been stored: no index names them), no
# snapshot was written: the repository is still whole
for p in $(printf '%s' "$out" | grep -o "cannot complete the multipart upload of pack 'data/[0-9a-f/]*'" |
		grep -o '[0-9a-f]\{64\}' | sort -u); do
	ls "$DATA/multipart-fail/data/${p:0:2}/$p"* >/dev/null 2>&1 && fail "the failed multipart upload of $p left a pack"
done
[ -z "$(ls "$DATA/multipart-fail/snapshots/" 2>/dev/null | grep _S3rver_object)" ] || fail "a snapshot was written"
restic -r "s3:$S3_ENDPOINT/testbucket/multipart-fail" check --read-data || fail "restic check after the failed multipart uploads"

step "virtual-hosted requests (-o s3.bucket-lookup=dns): bucket in the Host header"
# curl resolves *.localhost itself; s3rver serves bucket B as "B.localhost"
RV=s3:http://localhost:$S3_PORT/vhbucket/repo
cairn -r "$RV" -o s3.bucket-lookup=dns init -q || fail "init (virtual-hosted)"
[ -d "$SERVERS_STATE/s3data/vhbucket.localhost" ] || fail "the virtual-hosted bucket was not created"
cairn -r "$RV" -o s3.bucket-lookup=dns backup -q "$T/src/sub" || fail "backup (virtual-hosted)"
cairn -r "$RV" -o s3.bucket-lookup=dns check --read-data || fail "check (virtual-hosted)"

step "the backend against the server: >1,000 objects listed page by page, multipart, virtual-hosted, wrong secret"
cairn -r "s3:$S3_ENDPOINT/testbucket/many" init -q || fail "init (many)"
CAIRN_TEST_S3_URL=s3:$S3_ENDPOINT/testbucket CAIRN_TEST_S3_MANY=many "$UNIT" || fail "test_s3 against the server"
n=$(ls "$DATA/many/index/" | grep -c '\._S3rver_object$')
[ "$n" = 1100 ] || fail "the server holds $n index objects, want 1100"
n=$(restic -r "s3:$S3_ENDPOINT/testbucket/many" list index | wc -l)
[ "$n" = 1100 ] || fail "restic lists $n index objects, want 1100"

echo "t_s3: ok"
