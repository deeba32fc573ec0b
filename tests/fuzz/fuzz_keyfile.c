/* fuzz_keyfile.c: libFuzzer harness for cairn_keyfile_open.
 *
 * Key files are plain JSON in keys/ and the first thing `open` parses.  The
 * first input byte picks what the rest is:
 *   even: a whole key file, opened with the password "pw";
 *   odd:  the master-key JSON *inside* a key file, sealed here under the
 *         user key of a fixed salt (N=16, r=1, p=1), so the parser behind
 *         the MAC sees hostile plaintext too.
 * Key files asking for a costly scrypt (N > 1024, r > 8 or p > 4) are
 * skipped: cairn caps scrypt at 1 GiB on purpose (cairn_kdf_scrypt), and
 * spending seconds per input on it would only slow the fuzzer down.
 * A failure must be a documented code with a message; the wrapped-key form
 * can never be "wrong password" (its MAC is right) and whatever opens is a
 * usable key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_keyfile: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

static unsigned char salt[64];
static cairn_key user;

static void init_user_key(void)
{
	static int done;

	if (done)
		return;
	for (int i = 0; i < 64; i++)
		salt[i] = (unsigned char)(i * 3 + 1);
	REQUIRE(cairn_kdf_scrypt(&user, "pw", 2, salt, 64, 16, 1, 1) == 0);
	done = 1;
}

/* 1 when the scrypt parameters (if they are integers at all) are cheap. */
static int cheap(const char *json, size_t len)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_int_t n, r, p;
	int ok = 1;

	if (!root)
		return 1;
	n = json_integer_value(json_object_get(root, "N"));
	r = json_integer_value(json_object_get(root, "r"));
	p = json_integer_value(json_object_get(root, "p"));
	if (n > 1024 || r > 8 || p > 4)
		ok = 0;
	json_decref(root);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_buf kf = CAIRN_BUF_INIT, sealed = CAIRN_BUF_INIT;
	cairn_key got;
	int r;

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		if (!cheap((const char *)data + 1, size - 1))
			return 0;
		cairn_error_clear();
		r = cairn_keyfile_open(&got, (const char *)data + 1, size - 1, "pw", 2);
		if (r < 0) {
			REQUIRE(r == CAIRN_ECORRUPT || r == CAIRN_EINVAL || r == CAIRN_EUNSUPPORTED ||
				r == CAIRN_EAUTH);
			REQUIRE(cairn_error_message()[0] != '\0');
		} else {
			REQUIRE(cairn_key_valid(&got));
		}
		return 0;
	}
	init_user_key();
	REQUIRE(cairn_crypto_seal_buf(&sealed, &user, data + 1, size - 1) == 0);
	REQUIRE(cairn_buf_puts(&kf, "{\"kdf\":\"scrypt\",\"N\":16,\"r\":1,\"p\":1,\"salt\":\"") == 0);
	REQUIRE(cairn_base64_encode(&kf, salt, sizeof(salt)) == 0);
	REQUIRE(cairn_buf_puts(&kf, "\",\"data\":\"") == 0);
	REQUIRE(cairn_base64_encode(&kf, sealed.data, sealed.len) == 0);
	REQUIRE(cairn_buf_puts(&kf, "\"}") == 0);
	cairn_error_clear();
	r = cairn_keyfile_open(&got, (const char *)kf.data, kf.len, "pw", 2);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
	} else {
		REQUIRE(cairn_key_valid(&got));
	}
	cairn_buf_release(&kf);
	cairn_buf_release(&sealed);
	return 0;
}
