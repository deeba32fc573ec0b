/* restore_exec.h: carry out a finalized restore plan with worker threads:
 * the needed parts of every pack are cut into a few large ranges (never a
 * blob at a time); each worker takes the next range, loads it, decodes and
 * verifies every blob (MAC, zstd, SHA-256) and writes it to every (file,
 * offset) that needs it; all-zero blobs are not written, nor whole 4 KiB
 * pages of zeros inside other blobs, so holes stay sparse.  The thread
 * that handles a file's last blob finishes the file: size, owner,
 * xattrs, mode, times (after the last write), close.
 */
#ifndef CAIRN_AGENT_RESTORE_EXEC_H
#define CAIRN_AGENT_RESTORE_EXEC_H

#include <stddef.h>
#include <cairn/cairn.h>

#include "restore_fs.h"
#include "restore_plan.h"

typedef struct rx_options {
	int threads;       /* worker threads, >= 1 */
	size_t range_max;  /* largest backend load in bytes (a bigger single blob is read alone) */
	size_t gap_max;    /* unneeded bytes one load may span between two needed blobs */
} rx_options;

/* 4 MiB: a 16 MiB pack is four loads, each byte read once.  Larger loads
 * save nothing measurable on a local repository and cost RSS: with two
 * workers, 16 MiB ranges peaked at 69 MB, 4 MiB ones at 48 MB, near the
 * 43 MB that opening the key (scrypt, N=32768, r=8) takes anyway. */
#define RX_RANGE_MAX_DEFAULT ((size_t)4 << 20)
#define RX_GAP_MAX_DEFAULT ((size_t)256 << 10)

/* Run the plan (rp_finalize'd) against repo.  A damaged or unreadable blob
 * fails the files that need it (each reported once, naming file, blob and
 * pack, and removed); other files complete.  Returns 0 when every pack was
 * handled, CAIRN_ECANCELED after SIGINT/SIGTERM, CAIRN_ENOMEM; after a
 * negative return every file of the plan that was not finished has been
 * removed again, so nothing partly written is left.  Progress is drawn by
 * the calling thread while the workers run.  Counters go to c->st. */
int rx_run(rs_ctx *c, rp_plan *p, cairn_repo *repo, const rx_options *o);

/* Remove every file of the plan still pending that a worker has created
 * (used after a stopped walk).  Runs in the calling thread. */
void rx_remove_pending(rs_ctx *c, rp_plan *p);

#endif
