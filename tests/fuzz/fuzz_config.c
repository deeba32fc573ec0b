/* fuzz_config.c: libFuzzer harness for cairn_config_decode.
 *
 * The config is the first file every command reads.  The input is its
 * (decrypted) JSON.  A failure must be CAIRN_ECORRUPT or
 * CAIRN_EUNSUPPORTED with a message; an accepted config has version 1 or 2
 * and re-encodes to a config that decodes to the same values.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_config: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_config cfg, back;
	cairn_buf enc = CAIRN_BUF_INIT;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	cairn_error_clear();
	r = cairn_config_decode(&cfg, (const char *)data, size);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT || r == CAIRN_EUNSUPPORTED);
		REQUIRE(cairn_error_message()[0] != '\0');
		return 0;
	}
	REQUIRE(cfg.version == 1 || cfg.version == 2);
	REQUIRE(cairn_config_encode(&enc, &cfg) == 0);
	REQUIRE(cairn_config_decode(&back, (const char *)enc.data, enc.len) == 0);
	REQUIRE(back.version == cfg.version && cairn_id_equal(&back.id, &cfg.id) &&
		back.chunker_polynomial == cfg.chunker_polynomial);
	cairn_buf_release(&enc);
	return 0;
}
