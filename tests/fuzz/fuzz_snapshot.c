/* fuzz_snapshot.c: libFuzzer harness for cairn_snapshot_decode.
 *
 * Snapshot files are read by `snapshots`, `restore latest` and `check`;
 * their JSON comes from a repository cairn does not control.  The input is
 * the snapshot JSON.  A failure must be CAIRN_ECORRUPT with a message; an
 * accepted snapshot must re-encode (restic 0.14's byte layout) and decode to
 * the very same values, zone offset included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_snapshot: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

static int same_str(const char *a, const char *b)
{
	/* An empty string is not written, so it comes back absent. */
	if (!a || !*a)
		return !b || !*b;
	return b && strcmp(a, b) == 0;
}

static void require_same_list(char **a, size_t na, char **b, size_t nb)
{
	REQUIRE(na == nb);
	for (size_t i = 0; i < na; i++)
		REQUIRE(strcmp(a[i], b[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_snapshot s = CAIRN_SNAPSHOT_INIT, s2 = CAIRN_SNAPSHOT_INIT;
	cairn_buf enc = CAIRN_BUF_INIT;
	int r;

	cairn_error_clear();
	r = cairn_snapshot_decode(&s, (const char *)data, size);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
		return 0;
	}
	REQUIRE(s.time.nsec >= 0 && s.time.nsec <= 999999999);
	REQUIRE(cairn_snapshot_encode(&enc, &s) == 0);
	REQUIRE(cairn_snapshot_decode(&s2, (const char *)enc.data, enc.len) == 0);
	REQUIRE(cairn_time_compare(s.time, s2.time) == 0);
	REQUIRE(s.time_offset_sec == s2.time_offset_sec);
	REQUIRE(cairn_id_equal(&s.tree, &s2.tree));
	REQUIRE(s.has_parent == s2.has_parent && (!s.has_parent || cairn_id_equal(&s.parent, &s2.parent)));
	REQUIRE(s.has_original == s2.has_original &&
		(!s.has_original || cairn_id_equal(&s.original, &s2.original)));
	REQUIRE(same_str(s.hostname, s2.hostname) && same_str(s.username, s2.username));
	REQUIRE(s.uid == s2.uid && s.gid == s2.gid);
	require_same_list(s.paths, s.n_paths, s2.paths, s2.n_paths);
	require_same_list(s.excludes, s.n_excludes, s2.excludes, s2.n_excludes);
	require_same_list(s.tags, s.n_tags, s2.tags, s2.n_tags);
	cairn_snapshot_release(&s);
	cairn_snapshot_release(&s2);
	cairn_buf_release(&enc);
	return 0;
}
