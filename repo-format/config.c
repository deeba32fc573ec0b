/* config.c: the repository config JSON (include/cairn/repo.h,
 * restic-format.md §4).
 *
 * {"version":2,"id":"<64 hex>","chunker_polynomial":"<hex>"}.  The config
 * file is sealed with the master key but its plaintext is always raw JSON,
 * even in v2 (no 0x02 marker, no zstd); sealing and storing it is repo.c's
 * job, this module only converts between the JSON and cairn_config.
 *
 * Invariants: encode writes exactly the three fields in restic's order, the
 * polynomial as unpadded lowercase hex (Go's strconv.AppendUint(.., 16)).
 * Decode accepts any whitespace, key order and unknown keys (as Go does),
 * requires version 1 or 2, a 64-hex id and a hex polynomial that fits in 64
 * bits.  Whether the polynomial is irreducible is checked by the caller
 * (cairn_polynomial_irreducible), not here.
 */
#include <inttypes.h>
#include <string.h>

#include <jansson.h>

#include <cairn/repo.h>

/* out is replaced by the JSON text (no trailing newline); caller owns out. */
int cairn_config_encode(cairn_buf *out, const cairn_config *cfg)
{
	char hex[CAIRN_ID_HEX_SIZE];

	if (!out || !cfg)
		return cairn_error_set(CAIRN_EINVAL, "config: missing argument");
	if (cfg->version != 1 && cfg->version != 2)
		return cairn_error_set(CAIRN_EINVAL, "config: invalid repository version %u",
			cfg->version);
	cairn_id_to_hex(hex, &cfg->id);
	out->len = 0;
	return cairn_buf_printf(out, "{\"version\":%u,\"id\":\"%s\",\"chunker_polynomial\":\"%" PRIx64 "\"}",
		cfg->version, hex, cfg->chunker_polynomial);
}

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Parse 1+ hex digits (either case, leading zeros allowed) into a uint64. */
static int parse_polynomial(uint64_t *out, const char *s, size_t len)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int d = hex_digit((unsigned char)s[i]);
		if (d < 0 || v > (UINT64_MAX >> 4))
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* Fill *out from the JSON; *out is only written on success. */
int cairn_config_decode(cairn_config *out, const char *json, size_t len)
{
	json_error_t jerr;
	json_t *root = NULL, *v;
	cairn_config cfg;
	json_int_t version;
	int r = 0;

	if (!out || (!json && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "config: missing argument");
	memset(&cfg, 0, sizeof(cfg));
	root = json_loadb(json, len, 0, &jerr);
	if (!root) {
		r = cairn_error_set(CAIRN_ECORRUPT, "config is not valid json: %s (line %d)",
			jerr.text, jerr.line);
		goto out;
	}
	if (!json_is_object(root)) {
		r = cairn_error_set(CAIRN_ECORRUPT, "config is not a json object");
		goto out;
	}

	v = json_object_get(root, "version");
	if (!json_is_integer(v)) {
		r = cairn_error_set(CAIRN_ECORRUPT, "config has no integer 'version'");
		goto out;
	}
	version = json_integer_value(v);
	if (version != 1 && version != 2) {
		r = cairn_error_set(CAIRN_EUNSUPPORTED, "unsupported repository version %lld",
			(long long)version);
		goto out;
	}
	cfg.version = (unsigned)version;

	v = json_object_get(root, "id");
	if (!json_is_string(v) ||
	    cairn_id_from_hex_n(&cfg.id, json_string_value(v), json_string_length(v)) < 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "config 'id' is not 64 hex characters");
		goto out;
	}

	v = json_object_get(root, "chunker_polynomial");
	if (!json_is_string(v) ||
	    parse_polynomial(&cfg.chunker_polynomial, json_string_value(v), json_string_length(v)) < 0) {
		r = cairn_error_set(CAIRN_ECORRUPT, "config 'chunker_polynomial' is not 64-bit hex");
		goto out;
	}
	*out = cfg;
out:
	json_decref(root);
	return r;
}
