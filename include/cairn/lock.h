/* lock.h: repository locks (locks/<id>), compatible with restic's.
 *
 * Non-exclusive locks (backup, restore) coexist; an exclusive lock (check
 * with repair, prune) excludes all others.  A held lock is refreshed every
 * 5 minutes by a background thread and removed by cairn_lock_release().
 */
#ifndef CAIRN_LOCK_H
#define CAIRN_LOCK_H

#include "repo.h"

typedef struct cairn_lock cairn_lock;

/* Check for conflicting locks, write ours, wait 200 ms, check again.
 * CAIRN_ELOCKED with a message naming the holder (host, pid, time) on conflict.
 * Stale locks (older than 30 min, or of a dead pid on this host) do not
 * conflict. */
CAIRN_API int cairn_lock_acquire(cairn_lock **out, cairn_repo *repo, int exclusive);

/* Stop refreshing and delete the lock file; NULL is a no-op. */
CAIRN_API int cairn_lock_release(cairn_lock *lock);

/* Remove stale locks (or all locks when remove_all); *removed_out counts them. */
CAIRN_API int cairn_lock_remove(size_t *removed_out, cairn_repo *repo, int remove_all);

#endif
