/* checker.h: verify a repository the way `restic check` does.
 *
 * The checker loads every index file and snapshot by name (a damaged one is
 * reported and skipped), compares the pack files in the backend with what
 * the index says about them (existence, size), walks every snapshot's trees
 * (each tree blob verified, each referenced blob looked up in the index)
 * and, on request, reads every pack in full: its SHA-256 against its name,
 * its header against the index, every blob decrypted and hashed.
 *
 * It prints nothing itself: steps, progress, errors and hints go to a
 * callback, so the CLI decides how they look.  Errors are what makes
 * restic's check fail ("repository contains errors"); hints are the
 * non-critical findings (a pack in no index, a pack in several indexes, a
 * pack mixing data and tree blobs).
 */
#ifndef CAIRN_AGENT_CHECKER_H
#define CAIRN_AGENT_CHECKER_H

#include <stddef.h>
#include <stdint.h>
#include <cairn/cairn.h>

typedef enum checker_event {
	CHECKER_STEP = 0,     /* a new phase starts: "load indexes", "check all packs", ... */
	CHECKER_PROGRESS = 1, /* done/total within the phase; message names the unit ("packs") */
	CHECKER_ERROR = 2,    /* a fatal finding; the message names the file/blob */
	CHECKER_HINT = 3      /* a non-critical finding */
} checker_event;

/* `message` is borrowed for the call only.  Calls are serialised (never
 * concurrent), even when the data is read by several threads. */
typedef void (*checker_report_cb)(checker_event event, const char *message, uint64_t done,
	uint64_t total, void *payload);

typedef struct checker_options {
	int read_data;              /* read and verify packs in full (all, or a subset:) */
	unsigned subset_n, subset_t; /* when subset_t > 0: only packs whose first id byte
	                              * modulo subset_t is subset_n - 1 (1 <= n <= t <= 256) */
	double subset_fraction;     /* when > 0: only this fraction (0..1] of the packs, at random */
	unsigned threads;           /* readers for read_data; 0 = a default */
	checker_report_cb report;   /* may be NULL */
	void *payload;
	int (*interrupted)(void);   /* may be NULL; non-zero stops the check (CAIRN_ECANCELED) */
} checker_options;

#define CHECKER_OPTIONS_INIT { 0, 0, 0, 0.0, 0, NULL, NULL, NULL }

typedef struct checker_result {
	size_t errors, hints;
	size_t index_files, packs, snapshots, trees;
	uint64_t data_blobs;        /* content references checked against the index */
	size_t packs_read;          /* with read_data */
	uint64_t bytes_read;
} checker_result;

/* Check the repository.  The repository must be open; its own index is not
 * used (the checker builds its own from every readable index file), so it
 * need not be loaded.  Returns 0 when the check ran to the end, whatever it
 * found (out->errors says whether the repository is sound), or a negative
 * cairn_error when it could not go on (out of memory, the backend cannot be
 * listed, interrupted); the cairn error record then says why. */
int checker_run(checker_result *out, cairn_repo *repo, const checker_options *opts);

#endif
