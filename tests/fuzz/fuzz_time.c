/* fuzz_time.c: libFuzzer harness for cairn_time_parse_offset.
 *
 * Node and snapshot times are RFC 3339 text from the repository.  The input
 * (cut at its first NUL) is parsed; a failure must be CAIRN_EINVAL with a
 * message; an accepted time has nanoseconds in 0..999999999 and a zone
 * offset under a day, and formats back (with that offset) to text that
 * parses to the same instant and offset.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_time: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), back[CAIRN_TIME_TEXT_SIZE];
	cairn_time t, t2;
	int off = 0, off2 = 0, r;

	REQUIRE(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	cairn_error_clear();
	r = cairn_time_parse_offset(&t, &off, text);
	if (r < 0) {
		REQUIRE(r == CAIRN_EINVAL);
		REQUIRE(cairn_error_message()[0] != '\0');
	} else {
		REQUIRE(t.nsec >= 0 && t.nsec <= 999999999);
		REQUIRE(off > -86400 && off < 86400);
		cairn_time_format(back, t, off);
		REQUIRE(cairn_time_parse_offset(&t2, &off2, back) == 0);
		REQUIRE(cairn_time_compare(t, t2) == 0 && off2 == off);
	}
	free(text);
	return 0;
}
