/* test_id.c: hex ids, SHA-256 known answers, buffers and error records. */
#include <cairn/buf.h>
#include <cairn/error.h>
#include <cairn/id.h>
#include "unit.h"

static void test_sha256_known_answers(void)
{
	cairn_id id;
	char hex[CAIRN_ID_HEX_SIZE];
	cairn_sha256(&id, "", 0);
	cairn_id_to_hex(hex, &id);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	cairn_sha256(&id, "abc", 3);
	cairn_id_to_hex(hex, &id);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	cairn_sha256_ctx *ctx = NULL;
	CHECK_OK(cairn_sha256_new(&ctx));
	cairn_sha256_update(ctx, "a", 1);
	cairn_sha256_update(ctx, "bc", 2);
	cairn_id id2;
	cairn_sha256_final(&id2, ctx);
	CHECK(cairn_id_equal(&id, &id2));
	cairn_sha256_free(ctx);
}

static void test_hex_round_trip_and_rejects(void)
{
	cairn_id id, back;
	char hex[CAIRN_ID_HEX_SIZE];
	for (int i = 0; i < 32; i++)
		id.bytes[i] = (unsigned char)(i * 37 + 5);
	cairn_id_to_hex(hex, &id);
	CHECK_OK(cairn_id_from_hex(&back, hex));
	CHECK(cairn_id_equal(&id, &back));
	CHECK(cairn_id_is_hex(hex));
	hex[10] = 'g';
	CHECK_INT(cairn_id_from_hex(&back, hex), CAIRN_EINVAL);
	CHECK(!cairn_id_is_hex(hex));
	CHECK_INT(cairn_id_from_hex(&back, "abcd"), CAIRN_EINVAL);
	CHECK(!cairn_id_is_hex("abcd"));
}

static void test_buf_grows_and_caps(void)
{
	cairn_buf b = CAIRN_BUF_INIT;
	for (int i = 0; i < 1000; i++)
		CHECK_OK(cairn_buf_printf(&b, "%d,", i));
	CHECK(b.len > 1000);
	CHECK(strncmp(cairn_buf_cstr(&b), "0,1,2,", 6) == 0);
	CHECK_INT(cairn_buf_reserve(&b, CAIRN_BUF_MAX), CAIRN_ENOMEM);
	cairn_buf_release(&b);
	CHECK(b.data == NULL && b.len == 0);
}

static void test_error_messages_wrap(void)
{
	CHECK_INT(cairn_error_set(CAIRN_ECORRUPT, "bad blob %s", "ab"), CAIRN_ECORRUPT);
	CHECK_INT(cairn_error_wrap(CAIRN_ECORRUPT, "pack '%s'", "cd"), CAIRN_ECORRUPT);
	CHECK_STR(cairn_error_message(), "pack 'cd': bad blob ab");
	CHECK_INT(cairn_error_set_errno(CAIRN_EIO, 28, "write"), CAIRN_ENOSPC);
	CHECK_STR(cairn_strerror(CAIRN_EAUTH), "authentication failed");
}

UNIT_MAIN(test_sha256_known_answers, test_hex_round_trip_and_rejects, test_buf_grows_and_caps,
	test_error_messages_wrap)
