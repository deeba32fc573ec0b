/* lock.h: repository locks (locks/<id>), compatible with restic's.
 *
 * Non-exclusive locks (backup, restore) coexist; an exclusive lock (check,
 * restic's prune) excludes all others.  A held lock is refreshed every 5 minutes by a
 * background thread and removed by cairn_lock_release().
 *
 * Taking a lock is restic's protocol: look for conflicting locks, write
 * ours, wait 200 ms so that a lock written at the same moment by another
 * process becomes visible, look again.  Whoever sees the other on either
 * look backs out, so two processes cannot both go on.
 *
 * A deferred lock moves the second look out of acquisition, so that the wait
 * overlaps the command's work instead of preceding it:
 * cairn_lock_acquire_deferred() looks and writes, and cairn_lock_confirm()
 * waits out what is left of the 200 ms (counted from when our file was
 * written) and looks again.  Only shared locks can be deferred.  The rule:
 *
 *   A command holding a deferred lock calls cairn_lock_confirm() before its
 *   first irreversible change to the repository, and in any case before it
 *   reports success; when the confirmation fails it does neither.
 *
 * For backup the irreversible change is saving the snapshot: packs and
 * index files written before it are harmless (nothing references them yet,
 * and a concurrent prune aborts at its own second look, which sees our
 * lock).  A read-only command (snapshots, ls, dump, restore) changes
 * nothing, and what it reads needs no lock to be right: every blob is
 * verified, and a pack removed under it makes the read fail.  So it
 * confirms just before it exits successfully, after its output; the check
 * then only decides whether it may report success, as restic's reader
 * would have failed next to an exclusive lock.  Exclusive locks are never
 * deferred: what they protect starts right away.
 */
#ifndef CAIRN_LOCK_H
#define CAIRN_LOCK_H

#include "repo.h"

typedef struct cairn_lock cairn_lock;

/* Check for conflicting locks, write ours, wait 200 ms, check again.
 * CAIRN_ELOCKED with a message naming the holder (host, pid, time) on conflict;
 * our file is then removed again.  Stale locks (older than 30 min, or of a
 * dead pid on this host) do not conflict.  The lock is confirmed:
 * cairn_lock_confirm() on it returns 0 at once. */
CAIRN_API int cairn_lock_acquire(cairn_lock **out, cairn_repo *repo, int exclusive);

/* A shared lock whose second look is deferred to cairn_lock_confirm():
 * check for conflicting (exclusive) locks and write ours, without waiting.
 * CAIRN_ELOCKED as cairn_lock_acquire.  The lock is held (and refreshed)
 * from here on; see the rule above for when it must be confirmed. */
CAIRN_API int cairn_lock_acquire_deferred(cairn_lock **out, cairn_repo *repo);

/* The second look of a deferred lock: sleep until 200 ms after our file was
 * written (not at all when that is past), then check again for conflicting
 * locks.  0 when there is none (later calls then return 0 at once);
 * CAIRN_ELOCKED naming the holder otherwise, or another error when the
 * locks cannot be listed.  On failure the lock stays held until
 * cairn_lock_release(), and the caller must not go on.  0 for a lock taken
 * with cairn_lock_acquire() and for NULL (--no-lock).  Call it from the
 * thread that uses the repository, not concurrently with release. */
CAIRN_API int cairn_lock_confirm(cairn_lock *lock);

/* Stop refreshing and delete the lock file; NULL is a no-op. */
CAIRN_API int cairn_lock_release(cairn_lock *lock);

/* Remove stale locks (or all locks when remove_all); *removed_out counts them. */
CAIRN_API int cairn_lock_remove(size_t *removed_out, cairn_repo *repo, int remove_all);

#endif
