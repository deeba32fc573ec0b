/* restorer.h: recreate a snapshot's tree (or a subtree) under a target
 * directory, with restic's semantics (restic-format §11), and optionally
 * verify the written files against the blob hashes afterwards.
 *
 * Everything is created relative to open directory descriptors with
 * O_NOFOLLOW, so nothing is ever written through a symlink found inside the
 * target; only verified blob plaintext is written.  File content is
 * restored pack by pack by worker threads: each needed pack is read once
 * per batch (see restorer.c for the batches and their memory bound).
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
	int threads;                        /* worker threads for file content (>= 1) */
	size_t plan_limit;                  /* bytes of plan per batch; 0 = the default */
} restorer_options;

/* One batch's plan holds about 150 bytes per file plus its name, and 72
 * per distinct content blob; measured with the arrays' growth slack, a
 * one-blob file takes 260-350 bytes: 64 MiB is some 200,000 small files. */
#define RESTORER_PLAN_LIMIT_DEFAULT ((size_t)64 << 20)

typedef struct restorer_stats {
	uint64_t total_files;     /* file nodes selected for restore */
	uint64_t files_restored;  /* written completely (or hard-linked) */
	uint64_t total_bytes;     /* sum of the sizes of selected files */
	uint64_t bytes_restored;  /* sum of the sizes of files restored */
	uint64_t other_restored;  /* dirs, symlinks, fifos, devices created */
	uint64_t errors;          /* entries that could not be restored (each reported) */
	uint64_t files_verified;  /* --verify: files re-read and matching */
	uint64_t verify_errors;   /* --verify: mismatches (each reported) */
	uint64_t packs_read;      /* packs handled by the workers (a pack once per batch) */
	uint64_t pack_loads;      /* backend loads of pack ranges (>= packs_read) */
	uint64_t bytes_loaded;    /* stored bytes those loads returned */
	uint64_t bytes_written;   /* plaintext written to files (holes not counted) */
	uint64_t batches;         /* batches that had file content to write */
} restorer_stats;

/* Restore tree `tree` into opts->target: its entries become the target's
 * entries.  Fields of stats may be updated by worker threads while this
 * runs; read them after it returns.  Per-entry problems are reported on stderr ("cairn: cannot
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
