/* fuzz_s3_xml.c: libFuzzer harness for the S3 backend's XML reading
 * (cairn_xml_parse, cairn_s3_parse_list, cairn_s3_parse_error).
 *
 * Every answer of an S3 server -- listings, error documents, multipart
 * replies -- is untrusted input: a hostile or broken server, or anything in
 * between.  The input is parsed three ways; promises checked: a failure of
 * the reader is CAIRN_EINVAL with a "malformed XML" message; every reported
 * path is non-empty, has no empty component and at most 32 of them; a
 * leaf's text has the reported length; a listing either fails with
 * CAIRN_EINVAL or reports a continuation token only when it succeeded; an
 * error document's code and message are NUL-terminated within their
 * buffers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/error.h>
#include <cairn/sys/s3.h>
#include <cairn/sys/xml.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_s3_xml: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int leaf_cb(const char *path, const char *text, size_t len, void *payload)
{
	int parts = 1;
	(void)payload;
	REQUIRE(path[0] != '\0' && path[0] != '/');
	for (const char *p = path; *p; p++) {
		if (*p == '/') {
			REQUIRE(p[1] != '\0' && p[1] != '/');
			parts++;
		}
	}
	REQUIRE(parts <= 32);
	if (text)
		REQUIRE(strlen(text) <= len && text[len] == '\0');
	return 0;
}

static int list_cb(const char *key, uint64_t size, void *payload)
{
	size_t *n = payload;
	(void)size;
	REQUIRE(key != NULL);
	++*n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	char code[32], message[64];
	char *token = NULL;
	size_t n = 0;
	int truncated = -1, r;

	cairn_error_clear();
	r = cairn_xml_parse(doc, size, leaf_cb, NULL);
	REQUIRE(r == 0 || r == CAIRN_EINVAL || r == CAIRN_ENOMEM);
	if (r == CAIRN_EINVAL)
		REQUIRE(strstr(cairn_error_message(), "malformed XML") != NULL);

	r = cairn_s3_parse_list(doc, size, list_cb, &n, &truncated, &token);
	REQUIRE(r == 0 || r == CAIRN_EINVAL || r == CAIRN_ENOMEM);
	if (r != 0)
		REQUIRE(token == NULL && cairn_error_message()[0] != '\0');
	else
		REQUIRE(truncated == 0 || truncated == 1);
	free(token);

	memset(code, 'x', sizeof(code));
	memset(message, 'x', sizeof(message));
	r = cairn_s3_parse_error(doc, size, code, sizeof(code), message, sizeof(message));
	REQUIRE(r == 0 || r == 1);
	REQUIRE(memchr(code, '\0', sizeof(code)) != NULL);
	REQUIRE(memchr(message, '\0', sizeof(message)) != NULL);
	if (r == 0)
		REQUIRE(code[0] == '\0');
	return 0;
}
