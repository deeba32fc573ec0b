/* archiver.h: turn a source (source.h) into tree and data blobs in a
 * repository, incrementally against a parent snapshot's tree.
 *
 * The archiver writes blobs only; the caller flushes the repository
 * (cairn_repo_flush) and then saves the snapshot naming the returned tree.
 */
#ifndef CAIRN_AGENT_ARCHIVER_H
#define CAIRN_AGENT_ARCHIVER_H

#include <stdint.h>
#include <cairn/cairn.h>

#include "source.h"

/* Counters with restic's meanings (its backup summary). */
typedef struct archiver_stats {
	uint64_t files_new, files_changed, files_unmodified;
	uint64_t dirs_new, dirs_changed, dirs_unmodified;
	uint64_t data_blobs, tree_blobs;      /* blobs this run added to the repository */
	uint64_t data_added;                  /* plaintext bytes of those blobs (data and tree) */
	uint64_t total_files_processed;       /* files stored, new or not */
	uint64_t total_bytes_processed;       /* their sizes */
	uint64_t errors, warnings;            /* entries left out / reported problems */
} archiver_stats;

typedef struct archiver_options {
	int version;                 /* of this struct: 1 */
	const cairn_id *parent_tree; /* root tree of the parent snapshot, NULL for none */
	int force;                   /* read every file even when the parent has it unchanged */
	/* Polled between reads; non-zero stops the run with CAIRN_ECANCELED. */
	int (*interrupted)(void *payload);
	/* Called after each file and about every MiB read; `path` is borrowed. */
	void (*progress)(const archiver_stats *stats, const char *path, void *payload);
	/* Receives every report of the source and of the archiver (unreadable
	 * entries, files that changed while read), after they are counted. */
	source_report_fn report;
	void *payload;               /* for interrupted, progress and report */
} archiver_options;

#define ARCHIVER_OPTIONS_INIT { 1, NULL, 0, NULL, NULL, NULL, NULL }

/* Walk `src` depth-first and store everything it yields in `repo`, whose
 * index must be loaded.  *tree_out gets the root tree's id.  Entries that
 * cannot be read are reported and left out (stats->errors counts them);
 * the run still succeeds.  Negative cairn_error on a repository failure or
 * CAIRN_ECANCELED when interrupted; blobs saved before that stay in the
 * repository's open packs for the caller to flush or drop.  The source's
 * report callback is replaced during the run and restored afterwards.
 * stats_out is filled in every case. */
int archiver_run(cairn_id *tree_out, archiver_stats *stats_out, cairn_repo *repo, source *src,
	const archiver_options *opts);

#endif
