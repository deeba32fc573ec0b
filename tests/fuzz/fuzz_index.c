/* fuzz_index.c: libFuzzer harness for cairn_index_parse_json.
 *
 * Index files tell restore and check where every blob lives.  The input is
 * the index JSON (v2 object or legacy array).  A failure must be
 * CAIRN_ECORRUPT with a message and must come before any blob is reported
 * (a damaged index adds nothing to the in-memory index); every reported
 * blob has a known type and a stored length of at least 32 bytes; and
 * cairn_index_add_json agrees with the parse (same outcome, and no more
 * distinct blobs than were reported).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_index: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

static int seen(const cairn_id *pack, const cairn_pack_entry *e, void *payload)
{
	(void)pack;
	REQUIRE(e->length >= 32);
	REQUIRE(e->type == CAIRN_BLOB_DATA || e->type == CAIRN_BLOB_TREE);
	++*(size_t *)payload;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t calls = 0;
	cairn_index *idx = NULL;
	int r, r2;

	cairn_error_clear();
	r = cairn_index_parse_json((const char *)data, size, seen, &calls);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
		REQUIRE(calls == 0);
	}
	REQUIRE(cairn_index_new(&idx) == 0);
	r2 = cairn_index_add_json(idx, (const char *)data, size);
	REQUIRE((r < 0) == (r2 < 0));
	REQUIRE(r2 < 0 ? cairn_index_count(idx) == 0 : cairn_index_count(idx) <= calls);
	cairn_index_free(idx);
	return 0;
}
