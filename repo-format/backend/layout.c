/* layout.c: where each kind of repository file lives, restic's "default"
 * layout, shared by every backend that stores plain paths (local, s3, rest).
 *
 *   config                 the config (no id)
 *   keys/<id>  locks/<id>  snapshots/<id>  index/<id>
 *   data/<id[0:2]>/<id>    packs, fanned out over 256 sub-directories
 *
 * Invariants: the functions are pure (no state, thread-safe) and never fail;
 * a path that does not fit the caller's buffer is cut, NUL-terminated.
 * Names are used as given: validating them (64 hex) is the caller's job
 * (backend.c does it before any backend operation).
 */
#include <stdio.h>

#include <cairn/sys/backend.h>

const char *cairn_layout_dir(cairn_file_type type)
{
	switch (type) {
	case CAIRN_FILE_CONFIG: return "";
	case CAIRN_FILE_KEY: return "keys";
	case CAIRN_FILE_LOCK: return "locks";
	case CAIRN_FILE_SNAPSHOT: return "snapshots";
	case CAIRN_FILE_INDEX: return "index";
	case CAIRN_FILE_PACK: return "data";
	}
	return "";
}

void cairn_layout_path(char *out, size_t size, const cairn_handle *h)
{
	if (size == 0)
		return;
	switch (h->type) {
	case CAIRN_FILE_CONFIG:
		snprintf(out, size, "config");
		break;
	case CAIRN_FILE_PACK:
		snprintf(out, size, "data/%.2s/%s", h->name, h->name);
		break;
	default:
		snprintf(out, size, "%s/%s", cairn_layout_dir(h->type), h->name);
		break;
	}
}
