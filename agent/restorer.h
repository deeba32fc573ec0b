/* restorer.h: recreate a snapshot's tree (or a subtree) under a target
 * directory, with restic's semantics (restic-format §11), and optionally
 * verify the written files against the blob hashes afterwards.
 *
 * Everything is created relative to open directory descriptors with
 * O_NOFOLLOW, so nothing is ever written through a symlink found inside the
 * target; only verified blob plaintext is written.
 */
#ifndef CAIRN_AGENT_RESTORER_H
#define CAIRN_AGENT_RESTORER_H

#include <stddef.h>
#include <stdint.h>
#include <cairn/cairn.h>

#include "cli.h"

typedef struct restorer_options {
	const char *target;                 /* created (like mkdir -p) if missing */
	const char *const *includes;        /* restic patterns on the path inside the snapshot */
	size_t n_includes;
	const char *const *excludes;
	size_t n_excludes;
	int verify;                         /* re-read every restored file afterwards */
} restorer_options;

typedef struct restorer_stats {
	uint64_t total_files;     /* file nodes selected for restore */
	uint64_t files_restored;  /* written completely (or hard-linked) */
	uint64_t total_bytes;     /* sum of the sizes of selected files */
	uint64_t bytes_restored;  /* sum of the sizes of files restored */
	uint64_t other_restored;  /* dirs, symlinks, fifos, devices created */
	uint64_t errors;          /* entries that could not be restored (each reported) */
	uint64_t files_verified;  /* --verify: files re-read and matching */
	uint64_t verify_errors;   /* --verify: mismatches (each reported) */
} restorer_stats;

/* Restore tree `tree` into opts->target: its entries become the target's
 * entries.  Per-entry problems are reported on stderr ("cairn: cannot
 * restore '/path': ...") and counted in stats->errors; the walk goes on.
 * Returns 0 when the walk finished (look at the stats), CAIRN_ECANCELED
 * after SIGINT/SIGTERM, another negative code when the target cannot be
 * opened or memory runs out (the error record says why).  `stats` is
 * filled in every case.  g is borrowed for progress output. */
int restorer_run(restorer_stats *stats, cairn_repo *repo, const cairn_id *tree,
	const restorer_options *opts, const cli_globals *g);

/* restic's filter semantics for a list of patterns against a snapshot path
 * ("/src/sub/x"): components are matched with fnmatch, "**" spans any
 * number of components, a pattern starting with "/" is anchored at the
 * root, others match anywhere; a pattern also matches everything below
 * what it matches; "!pattern" takes a match back.  *matched: the path is
 * selected.  *child_may_match (may be NULL): something below it can be. */
void restorer_pattern_list(int *matched, int *child_may_match, const char *const *patterns,
	size_t n, const char *path);

#endif
