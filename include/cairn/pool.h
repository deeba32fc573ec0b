/* pool.h: a fixed set of worker threads fed by two bounded FIFO queues.
 *
 * Jobs are fixed-size structs copied by value into the queue (no allocation
 * per job).  A worker takes the oldest urgent job if there is one, else the
 * oldest normal job, copies it out, and calls the pool's job function with
 * its own index (0 .. threads-1), so a caller can keep per-worker state in
 * an array.  The job function returns nothing: results and errors travel in
 * the job's own data (curl thrdpool's rule).
 *
 * Backpressure: each queue holds at most its size.  A blocking submit waits
 * for room, so a producer cannot run further ahead than the queue allows; a
 * CAIRN_POOL_TRY submit returns 1 instead of waiting.  A job function must
 * only submit with CAIRN_POOL_TRY: a worker that waits for room in a queue
 * that only workers drain can deadlock the pool.
 *
 * Threads: submit, wait and pending may be called from any thread, also
 * from inside a job.  new and free belong to one owner thread.  Workers
 * block every asynchronous signal, so signal handlers run in the owner's
 * threads.
 */
#ifndef CAIRN_POOL_H
#define CAIRN_POOL_H

#include <stddef.h>
#include "error.h"

typedef struct cairn_pool cairn_pool;

/* Runs one job: `job` points at the worker's copy (job_size bytes, valid
 * for the call), `worker` is the worker's index. */
typedef void (*cairn_pool_fn)(void *job, unsigned worker, void *payload);

typedef struct cairn_pool_options {
	int version;          /* of this struct: 1 */
	unsigned threads;     /* workers, >= 1 */
	size_t queue_size;    /* normal jobs queued at most, >= 1 */
	size_t urgent_size;   /* urgent jobs queued at most (0: no urgent queue) */
	size_t job_size;      /* bytes per job, >= 1 */
	cairn_pool_fn fn;
	void *payload;        /* passed to fn */
} cairn_pool_options;

#define CAIRN_POOL_OPTIONS_INIT { 1, 1, 16, 0, 0, NULL, NULL }

/* Submit flags. */
enum {
	CAIRN_POOL_TRY = 1,    /* do not wait for room: return 1 when the queue is full */
	CAIRN_POOL_URGENT = 2  /* into the urgent queue, taken before any normal job */
};

/* Start the workers.  CAIRN_EINVAL for bad options, CAIRN_ENOMEM or
 * CAIRN_EIO (thread creation) otherwise.  Caller frees *out with
 * cairn_pool_free. */
CAIRN_API int cairn_pool_new(cairn_pool **out, const cairn_pool_options *opts);

/* Copy job_size bytes from `job` into the queue chosen by `flags`.
 * 0 when queued; 1 when the queue is full and CAIRN_POOL_TRY was given or
 * the job is urgent (an urgent submit never waits); CAIRN_EINVAL for an
 * urgent job when there is no urgent queue. */
CAIRN_API int cairn_pool_submit(cairn_pool *p, const void *job, int flags);

/* Wait until both queues are empty and no job is running (jobs submitted
 * by running jobs are waited for too). */
CAIRN_API void cairn_pool_wait(cairn_pool *p);

/* Jobs queued or running now (a snapshot, for tests and statistics). */
CAIRN_API size_t cairn_pool_pending(cairn_pool *p);

/* Run every job still queued, then stop and join the workers and free the
 * pool.  No job is dropped, so resources a job owns are always released by
 * its function.  NULL is a no-op.  Not from inside a job. */
CAIRN_API void cairn_pool_free(cairn_pool *p);

#endif
