#!/bin/bash
# The archiver's input is an interface, not the file system: a small
# program backs up generated in-memory files (source_mem.c, as the node
# agent will do for Kubernetes manifests) through the same archiver that
# `cairn backup` uses; the real restic checks and restores the snapshot.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$TESTS_DIR/.." && pwd)
for o in source source_mem archiver; do
	[ -f "$ROOT/build/agent/$o.o" ] || fail "build/agent/$o.o missing: run make first"
done

cat >"$T/driver.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "archiver.h"

static void report(int is_error, const char *path, const char *message, void *payload)
{
	fprintf(stderr, "%s: %s: %s\n", is_error ? "error" : "warning", path, message);
}

int main(int argc, char **argv)
{
	cairn_backend *be = NULL;
	cairn_repo *repo = NULL;
	source *src = NULL;
	cairn_snapshot snap = CAIRN_SNAPSHOT_INIT;
	archiver_options ao = ARCHIVER_OPTIONS_INIT;
	archiver_stats st;
	const char *pw = getenv("CAIRN_PASSWORD");
	static unsigned char big[3 << 20];
	cairn_time t;
	int r;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)((i * 2654435761u) >> 13);
	if ((r = cairn_time_parse(&t, "2024-01-02T03:04:05.5Z")) < 0 ||
	    (r = cairn_backend_open(&be, argv[1], 1)) < 0 ||
	    (r = cairn_repo_open(&repo, be, pw, strlen(pw))) < 0 ||
	    (r = cairn_repo_load_index(repo)) < 0 ||
	    (r = source_mem_new(&src, t)) < 0 ||
	    (r = source_mem_add_file(src, "k8s/pod.json", "{\"kind\":\"Pod\"}\n", 15, 0644)) < 0 ||
	    (r = source_mem_add_file(src, "k8s/pvc.json", "{\"kind\":\"PersistentVolumeClaim\"}\n", 33, 0600)) < 0 ||
	    (r = source_mem_add_file(src, "data/big.bin", big, sizeof(big), 0640)) < 0 ||
	    (r = source_mem_add_file(src, "data/empty", "", 0, 0644)) < 0 ||
	    (r = source_mem_add_dir(src, "data/nested/dir", 0700)) < 0 ||
	    (r = source_mem_add_dir(src, "data", 0750)) < 0)
		goto out;
	if (source_mem_add_file(src, "k8s/pod.json", "x", 1, 0644) != CAIRN_EEXISTS ||
	    source_mem_add_file(src, "k8s/../x", "x", 1, 0644) != CAIRN_EINVAL) {
		fprintf(stderr, "duplicate or '..' accepted\n");
		return 1;
	}
	ao.report = report;
	if ((r = archiver_run(&snap.tree, &st, repo, src, &ao)) < 0 || (r = cairn_repo_flush(repo)) < 0)
		goto out;
	snap.time = cairn_time_now();
	if ((r = cairn_strlist_add(&snap.paths, &snap.n_paths, "/generated")) < 0 ||
	    (r = cairn_strlist_add(&snap.tags, &snap.n_tags, "manifests")) < 0 ||
	    (r = cairn_repo_save_snapshot(repo, &snap)) < 0)
		goto out;
	printf("files %llu dirs %llu errors %llu\n", (unsigned long long)st.files_new,
		(unsigned long long)st.dirs_new, (unsigned long long)st.errors);
out:
	if (r < 0)
		fprintf(stderr, "driver: %s\n", cairn_error_message());
	cairn_snapshot_release(&snap);
	source_free(src);
	cairn_repo_free(repo);
	cairn_backend_free(be);
	return r < 0;
}
C
step "build the driver against the archiver and source_mem"
cc -std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra -Wno-unused-parameter -I"$ROOT/include" \
	-I"$ROOT/agent" -o "$T/driver" "$T/driver.c" "$ROOT/build/agent/source.o" \
	"$ROOT/build/agent/source_mem.o" "$ROOT/build/agent/archiver.o" "$ROOT/build/libcairn.a" \
	$(pkg-config --libs libcrypto libzstd jansson libxxhash lmdb libcurl) -pthread -lm ||
	fail "driver does not build"

step "back up the in-memory tree"
cairn -r "$T/repo" init >/dev/null || fail "init"
"$T/driver" "$T/repo" >"$T/out.txt" || fail "driver failed"
cat "$T/out.txt"
[ "$(cat "$T/out.txt")" = "files 4 dirs 4 errors 0" ] || fail "counts"

step "restic checks and restores it"
restic -r "$T/repo" check --read-data || fail "restic check"
restic -r "$T/repo" restore latest --target "$T/r" >/dev/null || fail "restic restore"
[ "$(cat "$T/r/k8s/pod.json")" = '{"kind":"Pod"}' ] || fail "pod.json"
[ "$(stat -c %a "$T/r/k8s/pvc.json")" = 600 ] || fail "pvc.json mode"
[ "$(stat -c %a "$T/r/data")" = 750 ] || fail "data mode"
[ "$(stat -c %a "$T/r/data/nested/dir")" = 700 ] || fail "nested dir mode"
[ "$(stat -c %s "$T/r/data/empty")" = 0 ] || fail "empty file"
[ "$(stat -c %Y.%y "$T/r/k8s/pod.json" | cut -c1-10)" = 1704164645 ] || fail "mtime"
python3 - "$T/r/data/big.bin" <<'PY' || fail "big.bin content"
import sys
data = open(sys.argv[1], "rb").read()
assert len(data) == 3 << 20
assert all(data[i] == ((i * 2654435761) % (1 << 32) >> 13) & 0xff for i in range(0, len(data), 4099))
PY
echo ok
