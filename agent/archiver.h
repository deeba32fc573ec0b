/* archiver.h: turn a source (source.h) into tree and data blobs in a
 * repository, incrementally against a parent snapshot's tree.
 *
 * The archiver writes blobs only; the caller flushes the repository
 * (cairn_repo_flush) and then saves the snapshot naming the returned tree.
 *
 * Threads: archiver_run lists directories in the calling thread and in
 * `threads` worker threads, which also read, chunk and store files
 * (archiver.c).  It therefore needs what source.h asks of a source: list of
 * different directories and open/read/close of different files may run at
 * the same time in different threads, and the source's report callback may
 * be called from any of them.  Both sources in agent/ meet this (the memory
 * source is immutable while it is read; the file-system walk guards its
 * user/group name cache with a mutex; readers share nothing but the report
 * callback, which the archiver replaces by a serialised one during the run).  The option
 * callbacks are called one at a time, from any of these threads.
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

/* Bits of archiver_options.change_ignore, restic's --ignore-ctime and
 * --ignore-inode: leave that field out when deciding a file is unchanged. */
enum { ARCHIVER_IGNORE_CTIME = 1, ARCHIVER_IGNORE_INODE = 2 };

typedef struct archiver_options {
	int version;                 /* of this struct: 1 */
	const cairn_id *parent_tree; /* root tree of the parent snapshot, NULL for none */
	int force;                   /* read every file even when the parent has it unchanged */
	/* Polled between reads (from every thread, so it must be thread-safe);
	 * non-zero stops the run with CAIRN_ECANCELED. */
	int (*interrupted)(void *payload);
	/* Called about every 100 ms while files are read or skipped,
	 * never concurrently; `stats` and `path` are borrowed for the call. */
	void (*progress)(const archiver_stats *stats, const char *path, void *payload);
	/* Receives every report of the source and of the archiver (unreadable
	 * entries, files that changed while read), after they are counted;
	 * never concurrently. */
	source_report_fn report;
	void *payload;               /* for interrupted, progress and report */
	unsigned threads;            /* worker threads; 0: one per online core */
	unsigned change_ignore;      /* ARCHIVER_IGNORE_* bits */
} archiver_options;

#define ARCHIVER_OPTIONS_INIT { 1, NULL, 0, NULL, NULL, NULL, NULL, 0, 0 }

/* Walk `src` depth-first and store everything it yields in `repo`, whose
 * index must be loaded.  *tree_out gets the root tree's id; it and every
 * tree below it are the same whatever the number of threads.  Entries that
 * cannot be read are reported and left out (stats->errors counts them);
 * the run still succeeds.  Negative cairn_error on a repository failure or
 * CAIRN_ECANCELED when interrupted (the first failure's message is in the
 * calling thread's error record); blobs saved before that stay in the
 * repository's open packs for the caller to flush or drop.  Every worker
 * has finished when this returns.  The source's report callback is
 * replaced during the run and restored afterwards.  stats_out is filled in
 * every case. */
int archiver_run(cairn_id *tree_out, archiver_stats *stats_out, cairn_repo *repo, source *src,
	const archiver_options *opts);

#endif
