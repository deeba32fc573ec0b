/* tree_walk.h: reading a snapshot's directory trees for restore, ls and
 * dump: load a tree blob, resolve a path inside a snapshot, and walk a tree
 * depth-first in name order with enter/leave callbacks.  Also the small
 * output helpers those commands share (snapshot description, JSON-safe
 * strings of raw name bytes).
 *
 * Paths inside a snapshot are "/"-separated and absolute ("/src/sub/x");
 * the snapshot's root tree is "/".
 */
#ifndef CAIRN_AGENT_TREE_WALK_H
#define CAIRN_AGENT_TREE_WALK_H

#include <stddef.h>
#include <cairn/cairn.h>

/* Load tree blob `id` (verified) and decode it.  *out must be
 * CAIRN_TREE_INIT; the caller releases it.  On failure the error message
 * names the tree. */
int tw_load_tree(cairn_tree *out, cairn_repo *repo, const cairn_id *id);

/* Normalise a user path into an absolute snapshot path: empty components
 * and "." are dropped, a leading "/" is added ("src//sub/" -> "/src/sub",
 * "" -> "/").  ".." is refused (CAIRN_EINVAL).  out is replaced. */
int tw_path_normalize(cairn_buf *out, const char *path);

/* Find the node at `path` below root tree `root`.  "/" yields a synthetic
 * dir node named "/" whose subtree is `root`.  *out must be CAIRN_NODE_INIT;
 * the caller releases it.  CAIRN_ENOTFOUND "path '/a/b' not found in
 * snapshot", CAIRN_EINVAL when a component below a non-directory is asked
 * for. */
int tw_resolve(cairn_node *out, cairn_repo *repo, const cairn_id *root, const char *path);

/* Return values of tw_visitor.enter. */
enum { TW_DESCEND = 0, TW_SKIP = 1 };

/* Callbacks of tw_walk.  `path` and `node` are borrowed for the call.
 *   enter: every node, in name order.  TW_DESCEND walks into a dir (for
 *          other types it means the same as TW_SKIP), TW_SKIP does not, a
 *          negative value stops the walk and is returned by tw_walk.
 *   leave: (may be NULL) after a dir's children, called exactly once for
 *          each dir whose enter returned TW_DESCEND, also when its tree
 *          could not be loaded.  Negative stops the walk.
 *   tree_error: (may be NULL) a subtree failed to load or decode (the
 *          cairn error record says why); 0 continues with the next entry,
 *          negative stops.  NULL means stop with the error. */
typedef struct tw_visitor {
	int (*enter)(const char *path, const cairn_node *node, void *payload);
	int (*leave)(const char *path, const cairn_node *node, void *payload);
	int (*tree_error)(const char *path, const cairn_node *node, int code, void *payload);
	void *payload;
} tw_visitor;

/* Walk tree `tree` whose own path is `prefix` ("/" or "" for a root; its
 * children are then "/name"; with prefix "/src" they are "/src/name").  One
 * decoded tree is held per directory level.  Every name is checked with
 * cairn_node_name_check before a path is built from it. */
int tw_walk(cairn_repo *repo, const cairn_id *tree, const char *prefix, const tw_visitor *v);

/* Join a snapshot path and a child name into out (replaced): "/" + "a" ->
 * "/a", "/a" + "b" -> "/a/b". */
int tw_path_join(cairn_buf *out, const char *dir, const char *name);

/* Go's time.Time String() layout in the local zone:
 * "2006-01-02 15:04:05.123456789 +0100 CET" (fraction zeros dropped). */
#define TW_TIME_TEXT_SIZE 80
void tw_time_string(char out[TW_TIME_TEXT_SIZE], cairn_time t);
/* "2006-01-02 15:04:05" in the local zone (restic's ls -l column). */
void tw_time_short(char out[TW_TIME_TEXT_SIZE], cairn_time t);

/* "<8 hex> of [/a /b] at <time string> by user@host", restic's wording,
 * into out (replaced). */
int tw_snapshot_describe(cairn_buf *out, const cairn_snapshot *s);

/* Copy raw bytes into out (replaced, NUL-terminated) as valid UTF-8: every
 * byte that is not part of a valid UTF-8 sequence becomes U+FFFD, as Go's
 * JSON encoder does.  For jansson, which only takes valid UTF-8. */
int tw_utf8_sanitize(cairn_buf *out, const char *s);

/* Go os.FileMode.String() of a node's mode ("drwxr-xr-x", "Lrwxrwxrwx",
 * "ugtrwxr-xr-x"); out needs 32 bytes. */
void tw_mode_string(char out[32], uint32_t gomode);

#endif
