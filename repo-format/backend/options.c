/* options.c: the extended backend options ("-o s3.connections=8") shared by
 * the network backends (include/cairn/sys/backend.h).
 *
 * Options are "namespace.key=value" strings owned by the caller.  Each
 * backend looks up its own keys and calls cairn_backend_options_check with
 * the list it knows, so a typo in its namespace is an error rather than
 * silently ignored, while options for other backends pass (one command
 * line can serve several repositories, as with restic).
 *
 * Pure functions over borrowed data: no state, thread-safe.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/sys/backend.h>

/* Length of the key of "key=value", or 0 when there is no '=' or no key. */
static size_t key_length(const char *opt)
{
	const char *eq = strchr(opt, '=');
	return eq ? (size_t)(eq - opt) : 0;
}

const char *cairn_backend_option(const cairn_backend_options *opts, const char *key)
{
	const char *found = NULL;
	size_t n = strlen(key);

	if (!opts)
		return NULL;
	for (size_t i = 0; i < opts->n_extended; i++) {
		const char *o = opts->extended[i];
		if (o && key_length(o) == n && strncmp(o, key, n) == 0)
			found = o + n + 1;
	}
	return found;
}

int cairn_backend_options_check(const cairn_backend_options *opts, const char *ns,
	const char *const *known)
{
	size_t ns_len = ns ? strlen(ns) : 0;

	if (!opts)
		return 0;
	for (size_t i = 0; i < opts->n_extended; i++) {
		const char *o = opts->extended[i], *dot;
		size_t k = o ? key_length(o) : 0;
		int ok = 0;

		if (k == 0 || !(dot = memchr(o, '.', k)) || dot == o || dot == o + k - 1)
			return cairn_error_set(CAIRN_EINVAL, "invalid option '%s': want namespace.key=value "
				"(e.g. s3.connections=8)", o ? o : "");
		if (!ns || (size_t)(dot - o) != ns_len || strncmp(o, ns, ns_len) != 0)
			continue;
		for (size_t j = 0; known && known[j] && !ok; j++)
			ok = strlen(known[j]) == k && strncmp(o, known[j], k) == 0;
		if (!ok) {
			char list[512] = "";
			size_t used = 0;
			for (size_t j = 0; known && known[j] && used + strlen(known[j]) + 3 < sizeof(list); j++)
				used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "",
					known[j]);
			return cairn_error_set(CAIRN_EINVAL, "unknown option '%.*s' (known: %s)", (int)k, o,
				list[0] ? list : "none");
		}
	}
	return 0;
}

int cairn_backend_option_long(long *out, const char *key, const char *value, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (!*value || *end || errno || v < min || v > max)
		return cairn_error_set(CAIRN_EINVAL, "invalid value '%s' for option '%s': want a number "
			"from %ld to %ld", value, key, min, max);
	*out = v;
	return 0;
}

int cairn_backend_option_size(uint64_t *out, const char *key, const char *value, uint64_t min,
	uint64_t max)
{
	char *end;
	unsigned long long v;
	uint64_t unit = 1;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (end != value && *end) {
		switch (*end) {
		case 'k': case 'K': unit = (uint64_t)1 << 10; break;
		case 'm': case 'M': unit = (uint64_t)1 << 20; break;
		case 'g': case 'G': unit = (uint64_t)1 << 30; break;
		default: unit = 0; break;
		}
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	}
	if (end == value || *end || errno || unit == 0 || value[0] == '-' || v > max / unit
		|| v * unit < min)
		return cairn_error_set(CAIRN_EINVAL, "invalid value '%s' for option '%s': want a size "
			"from %llu to %llu bytes (K, M, G suffixes allowed)", value, key,
			(unsigned long long)min, (unsigned long long)max);
	*out = v * unit;
	return 0;
}
