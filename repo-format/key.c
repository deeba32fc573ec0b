/* key.c: key files, keys/<sha256 of file> (include/cairn/repo.h,
 * restic-format.md §3).
 *
 * A key file is plain JSON:
 *   {"created":..,"username":..,"hostname":..,"kdf":"scrypt","N":..,"r":..,
 *    "p":..,"salt":"<b64 64 bytes>","data":"<b64 sealed master key JSON>"}
 * The user key is scrypt(password, salt, N, r, p) split as in crypto.h;
 * `data` seals {"mac":{"k":"<b64 16>","r":"<b64 16>"},"encrypt":"<b64 32>"}
 * under it.  A MAC failure while opening means the password is wrong
 * (CAIRN_EAUTH), which is how restic skips keys that do not match.
 *
 * Invariants: every intermediate secret we own (the user key, the master
 * key JSON and its decoded parts) lives in buffers reserved up front, so it
 * is never reallocated, and is wiped before it is freed.  The one copy we
 * cannot wipe is jansson's private parse state of the decrypted master key
 * JSON, which jansson frees without zeroing.  No secret ever goes into an
 * error message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <cairn/crypto.h>
#include <cairn/repo.h>

#define SALT_SIZE 64
/* Room for the master key JSON: ~130 bytes of text. */
#define MASTER_JSON_CAP 256

/* Current time as RFC 3339 UTC with nanoseconds, trailing zeros dropped
 * (Go's RFC3339Nano, as restic writes `created`). */
static void format_now(char out[64])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts.tv_nsec > 0) {
		long ns = ts.tv_nsec;
		int digits = 9;
		while (ns % 10 == 0) {
			ns /= 10;
			digits--;
		}
		n += (size_t)snprintf(out + n, 64 - n, ".%0*ld", digits, ns);
	}
	snprintf(out + n, 64 - n, "Z");
}

/* A new JSON string for informational text (username, hostname); bytes of
 * invalid UTF-8 become '?' rather than failing.  Caller owns the result. */
static json_t *info_string(const char *s)
{
	json_t *j;
	char *copy;

	if (!s)
		s = "";
	if ((j = json_string(s)))
		return j;
	if (!(copy = strdup(s)))
		return NULL;
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* out is replaced by the key file JSON (no trailing newline); caller owns it.
 * The key file's name is SHA-256 of exactly these bytes. */
int cairn_keyfile_create(cairn_buf *out, const cairn_key *master, const char *password,
	size_t password_len, uint64_t n, uint32_t r, uint32_t p, const char *username,
	const char *hostname)
{
	unsigned char salt[SALT_SIZE];
	cairn_key user;
	cairn_buf plain = CAIRN_BUF_INIT, sealed = CAIRN_BUF_INIT;
	cairn_buf salt64 = CAIRN_BUF_INIT, data64 = CAIRN_BUF_INIT;
	json_t *root = NULL;
	char *text = NULL;
	char created[64];
	int rc;

	memset(&user, 0, sizeof(user));
	if (!out || !master || (!password && password_len > 0)) {
		rc = cairn_error_set(CAIRN_EINVAL, "key file: missing argument");
		goto out;
	}
	if (!cairn_key_valid(master)) {
		rc = cairn_error_set(CAIRN_EINVAL, "key file: master key is invalid");
		goto out;
	}
	if (n > (uint64_t)INT64_MAX) {
		rc = cairn_error_set(CAIRN_EINVAL, "key file: scrypt N too large");
		goto out;
	}
	if ((rc = cairn_random_bytes(salt, sizeof(salt))) < 0 ||
	    (rc = cairn_kdf_scrypt(&user, password, password_len, salt, sizeof(salt), n, r, p)) < 0)
		goto out;

	/* Master key JSON, built in one buffer reserved up front so that no
	 * copy of it is left behind by a realloc. */
	if ((rc = cairn_buf_reserve(&plain, MASTER_JSON_CAP)) < 0 ||
	    (rc = cairn_buf_puts(&plain, "{\"mac\":{\"k\":\"")) < 0 ||
	    (rc = cairn_base64_encode(&plain, master->mac_k, sizeof(master->mac_k))) < 0 ||
	    (rc = cairn_buf_puts(&plain, "\",\"r\":\"")) < 0 ||
	    (rc = cairn_base64_encode(&plain, master->mac_r, sizeof(master->mac_r))) < 0 ||
	    (rc = cairn_buf_puts(&plain, "\"},\"encrypt\":\"")) < 0 ||
	    (rc = cairn_base64_encode(&plain, master->encrypt, sizeof(master->encrypt))) < 0 ||
	    (rc = cairn_buf_puts(&plain, "\"}")) < 0)
		goto out;
	if ((rc = cairn_crypto_seal_buf(&sealed, &user, plain.data, plain.len)) < 0 ||
	    (rc = cairn_base64_encode(&salt64, salt, sizeof(salt))) < 0 ||
	    (rc = cairn_base64_encode(&data64, sealed.data, sealed.len)) < 0)
		goto out;

	format_now(created);
	root = json_object();
	if (!root ||
	    json_object_set_new(root, "created", json_string(created)) < 0 ||
	    json_object_set_new(root, "username", info_string(username)) < 0 ||
	    json_object_set_new(root, "hostname", info_string(hostname)) < 0 ||
	    json_object_set_new(root, "kdf", json_string("scrypt")) < 0 ||
	    json_object_set_new(root, "N", json_integer((json_int_t)n)) < 0 ||
	    json_object_set_new(root, "r", json_integer((json_int_t)r)) < 0 ||
	    json_object_set_new(root, "p", json_integer((json_int_t)p)) < 0 ||
	    json_object_set_new(root, "salt", json_stringn((const char *)salt64.data, salt64.len)) < 0 ||
	    json_object_set_new(root, "data", json_stringn((const char *)data64.data, data64.len)) < 0 ||
	    !(text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		rc = cairn_error_set(CAIRN_ENOMEM, "key file: cannot build json");
		goto out;
	}
	out->len = 0;
	rc = cairn_buf_puts(out, text);
out:
	free(text);
	json_decref(root);
	cairn_key_wipe(&user);
	cairn_buf_wipe(&plain);
	cairn_buf_release(&sealed);
	cairn_buf_release(&salt64);
	cairn_buf_release(&data64);
	return rc;
}

/* Decode a base64 string field of exactly `want` bytes into b (cleared
 * first; b must already have room, so secrets are never reallocated). */
static int decode_fixed(cairn_buf *b, json_t *v, size_t want)
{
	size_t textlen = (want + 2) / 3 * 4;

	if (!json_is_string(v) || json_string_length(v) != textlen)
		return -1;
	b->len = 0;
	if (cairn_base64_decode(b, json_string_value(v), textlen) < 0 || b->len != want)
		return -1;
	return 0;
}

/* Parse the decrypted master key JSON into *out (written on success only). */
static int parse_master(cairn_key *out, const cairn_buf *plain)
{
	json_error_t jerr;
	json_t *root, *mac;
	cairn_buf tmp = CAIRN_BUF_INIT;
	cairn_key key;
	int rc = 0;

	memset(&key, 0, sizeof(key));
	root = json_loadb((const char *)plain->data, plain->len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: master key is not a json object");
		goto out;
	}
	if ((rc = cairn_buf_reserve(&tmp, 64)) < 0)
		goto out;
	mac = json_object_get(root, "mac");
	if (!json_is_object(mac) ||
	    decode_fixed(&tmp, json_object_get(mac, "k"), sizeof(key.mac_k)) < 0) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: master key has no valid 'mac.k'");
		goto out;
	}
	memcpy(key.mac_k, tmp.data, sizeof(key.mac_k));
	if (decode_fixed(&tmp, json_object_get(mac, "r"), sizeof(key.mac_r)) < 0) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: master key has no valid 'mac.r'");
		goto out;
	}
	memcpy(key.mac_r, tmp.data, sizeof(key.mac_r));
	if (decode_fixed(&tmp, json_object_get(root, "encrypt"), sizeof(key.encrypt)) < 0) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: master key has no valid 'encrypt'");
		goto out;
	}
	memcpy(key.encrypt, tmp.data, sizeof(key.encrypt));
	/* Poly1305 clamp; restic stores r masked already, masking again is a no-op. */
	{
		static const unsigned char mask[16] = {
			0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
			0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f,
		};
		for (int i = 0; i < 16; i++)
			key.mac_r[i] &= mask[i];
	}
	if (!cairn_key_valid(&key)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: master key has an all-zero part");
		goto out;
	}
	*out = key;
out:
	cairn_key_wipe(&key);
	cairn_buf_wipe(&tmp);
	json_decref(root);
	return rc;
}

/* Fetch a positive integer field no larger than max; -1 if absent or bad. */
static int get_uint(uint64_t *out, json_t *root, const char *name, uint64_t max)
{
	json_t *v = json_object_get(root, name);
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < 1 || (uint64_t)i > max)
		return -1;
	*out = (uint64_t)i;
	return 0;
}

/* *master_out is written on success only; the caller wipes it when done. */
int cairn_keyfile_open(cairn_key *master_out, const char *json, size_t len,
	const char *password, size_t password_len)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	cairn_buf salt = CAIRN_BUF_INIT, sealed = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;
	cairn_key user;
	uint64_t n, r, p;
	int rc = 0;

	memset(&user, 0, sizeof(user));
	if (!master_out || (!json && len > 0) || (!password && password_len > 0)) {
		rc = cairn_error_set(CAIRN_EINVAL, "key file: missing argument");
		goto out;
	}
	root = json_loadb(json, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file is not a json object");
		goto out;
	}
	v = json_object_get(root, "kdf");
	if (!json_is_string(v)) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file has no 'kdf'");
		goto out;
	}
	if (strcmp(json_string_value(v), "scrypt") != 0) {
		rc = cairn_error_set(CAIRN_EUNSUPPORTED, "key file: unknown kdf '%.40s'",
			json_string_value(v));
		goto out;
	}
	if (get_uint(&n, root, "N", (uint64_t)INT64_MAX) < 0 ||
	    get_uint(&r, root, "r", UINT32_MAX) < 0 || get_uint(&p, root, "p", UINT32_MAX) < 0) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file has invalid scrypt parameters");
		goto out;
	}
	v = json_object_get(root, "salt");
	if (!json_is_string(v) ||
	    cairn_base64_decode(&salt, json_string_value(v), json_string_length(v)) < 0 ||
	    salt.len != SALT_SIZE) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: salt is not 64 bytes of base64");
		goto out;
	}
	v = json_object_get(root, "data");
	if (!json_is_string(v) ||
	    cairn_base64_decode(&sealed, json_string_value(v), json_string_length(v)) < 0 ||
	    sealed.len < CAIRN_CRYPTO_OVERHEAD) {
		rc = cairn_error_set(CAIRN_ECORRUPT, "key file: 'data' is not sealed base64");
		goto out;
	}
	if ((rc = cairn_kdf_scrypt(&user, password, password_len, salt.data, salt.len,
			n, (uint32_t)r, (uint32_t)p)) < 0) {
		cairn_error_wrap(rc, "key file");
		goto out;
	}
	/* The plaintext is about 130 bytes; reserving before opening keeps it
	 * in one allocation that is wiped below. */
	if ((rc = cairn_buf_reserve(&plain, sealed.len)) < 0)
		goto out;
	rc = cairn_crypto_open_buf(&plain, &user, sealed.data, sealed.len);
	if (rc == CAIRN_ECORRUPT) {
		rc = cairn_error_set(CAIRN_EAUTH, "wrong password for key file");
		goto out;
	}
	if (rc < 0) {
		cairn_error_wrap(rc, "key file");
		goto out;
	}
	rc = parse_master(master_out, &plain);
out:
	cairn_key_wipe(&user);
	cairn_buf_wipe(&plain);
	cairn_buf_release(&salt);
	cairn_buf_release(&sealed);
	json_decref(root);
	return rc;
}
