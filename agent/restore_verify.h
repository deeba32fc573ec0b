/* restore_verify.h: --verify with worker threads: re-read the files of a
 * plan (built by the restorer's verify walk: each file's blobs in order,
 * with their plaintext lengths) and check the SHA-256 of every blob's range
 * against its id.  Large files are split into units so that several
 * threads share them.
 */
#ifndef CAIRN_AGENT_RESTORE_VERIFY_H
#define CAIRN_AGENT_RESTORE_VERIFY_H

#include "restore_fs.h"
#include "restore_plan.h"

/* Bytes of content one unit of work hashes at most (a file smaller than
 * this is one unit). */
#define RV_UNIT_BYTES ((uint64_t)16 << 20)

/* Verify every file of the plan (not rp_finalize'd: each file's uses are
 * contiguous and in offset order) with `threads` threads.  A mismatch, a
 * wrong size or an unreadable file is reported once per file (as "verify
 * failed for", c->phase_verify set); c->st->files_verified counts the
 * files that match.  Returns 0, CAIRN_ECANCELED after SIGINT/SIGTERM, or
 * CAIRN_ENOMEM. */
int rv_run(rs_ctx *c, rp_plan *p, int threads);

#endif
