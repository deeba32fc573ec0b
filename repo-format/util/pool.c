/* pool.c: worker threads fed by two bounded queues (include/cairn/pool.h).
 *
 * Design (zstd's POOL_create/POOL_add, curl's thrdpool): one mutex guards
 * both rings and the counters; `work` wakes workers when a job arrives or
 * the pool stops, `room` wakes blocked submitters when a normal slot frees,
 * `idle` wakes cairn_pool_wait when nothing is queued or running.  A ring
 * is an array of job_size-byte slots with a head index and a count; jobs
 * are copied in under the lock and copied out into the worker's private
 * slot before the lock is dropped, so a job function never touches the
 * ring.
 *
 * Invariants (under the mutex): 0 <= count <= size for each ring; `running`
 * counts workers inside the job function; the pool is idle exactly when
 * both counts and `running` are 0.  A worker exits only when `stopping` is
 * set and both rings are empty, so free() runs every queued job.
 *
 * Ownership: the pool owns the rings and the per-worker slots; a queued
 * job's bytes belong to the pool until a worker copies them out, then to
 * that worker for the call.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/pool.h>

typedef struct ring {
	unsigned char *slots; /* size * job_size bytes */
	size_t size, head, count;
} ring;

typedef struct worker {
	struct cairn_pool *pool;
	unsigned index;
	pthread_t thread;
	unsigned char *job;   /* job_size bytes: the copy being run */
} worker;

struct cairn_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, room, idle;
	ring normal, urgent;
	size_t job_size;
	size_t running;
	int stopping;
	cairn_pool_fn fn;
	void *payload;
	worker *workers;   /* n_workers entries, n_started of them running */
	unsigned n_workers, n_started;
};

static int ring_init(ring *r, size_t size, size_t job_size)
{
	memset(r, 0, sizeof(*r));
	if (size == 0)
		return 0;
	if (size > SIZE_MAX / job_size || !(r->slots = malloc(size * job_size)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory for a job queue");
	r->size = size;
	return 0;
}

static void ring_push(ring *r, const void *job, size_t job_size)
{
	size_t tail = (r->head + r->count) % r->size;
	memcpy(r->slots + tail * job_size, job, job_size);
	r->count++;
}

static void ring_pop(ring *r, void *job_out, size_t job_size)
{
	memcpy(job_out, r->slots + r->head * job_size, job_size);
	r->head = (r->head + 1) % r->size;
	r->count--;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	cairn_pool *p = w->pool;
	sigset_t set;

	/* signals go to the owner's threads, never to a worker */
	sigfillset(&set);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->urgent.count) {
			ring_pop(&p->urgent, w->job, p->job_size);
		} else if (p->normal.count) {
			ring_pop(&p->normal, w->job, p->job_size);
			pthread_cond_signal(&p->room);
		} else if (p->stopping) {
			break;
		} else {
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		p->running++;
		pthread_mutex_unlock(&p->mu);
		p->fn(w->job, w->index, p->payload);
		pthread_mutex_lock(&p->mu);
		p->running--;
		if (!p->running && !p->normal.count && !p->urgent.count)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int cairn_pool_new(cairn_pool **out, const cairn_pool_options *opts)
{
	cairn_pool *p = NULL;
	int r = 0;

	*out = NULL;
	if (!opts || opts->version != 1 || opts->threads < 1 || opts->queue_size < 1 ||
		opts->job_size < 1 || !opts->fn)
		return cairn_error_set(CAIRN_EINVAL, "invalid thread pool options");
	if (!(p = calloc(1, sizeof(*p))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory for a thread pool");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->room, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->job_size = opts->job_size;
	p->fn = opts->fn;
	p->payload = opts->payload;
	if ((r = ring_init(&p->normal, opts->queue_size, p->job_size)) < 0 ||
		(r = ring_init(&p->urgent, opts->urgent_size, p->job_size)) < 0)
		goto out;
	if (!(p->workers = calloc(opts->threads, sizeof(*p->workers)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory for a thread pool");
		goto out;
	}
	p->n_workers = opts->threads;
	for (unsigned i = 0; i < opts->threads; i++) {
		worker *w = &p->workers[i];
		int e;

		w->pool = p;
		w->index = i;
		if (!(w->job = malloc(p->job_size))) {
			r = cairn_error_set(CAIRN_ENOMEM, "out of memory for a thread pool");
			goto out;
		}
		if ((e = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
			r = cairn_error_set_errno(CAIRN_EIO, e, "cannot start a worker thread");
			goto out;
		}
		p->n_started++;
	}
	*out = p;
	p = NULL;
out:
	cairn_pool_free(p);
	return r;
}

int cairn_pool_submit(cairn_pool *p, const void *job, int flags)
{
	ring *q = flags & CAIRN_POOL_URGENT ? &p->urgent : &p->normal;
	int r = 0;

	if (q->size == 0)
		return cairn_error_set(CAIRN_EINVAL, "thread pool has no urgent queue");
	pthread_mutex_lock(&p->mu);
	while (q->count == q->size) {
		/* the urgent queue only ever takes TRY submits from jobs */
		if ((flags & CAIRN_POOL_TRY) || q == &p->urgent) {
			r = 1;
			goto out;
		}
		pthread_cond_wait(&p->room, &p->mu);
	}
	ring_push(q, job, p->job_size);
	pthread_cond_signal(&p->work);
out:
	pthread_mutex_unlock(&p->mu);
	return r;
}

void cairn_pool_wait(cairn_pool *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->running || p->normal.count || p->urgent.count)
		pthread_cond_wait(&p->idle, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

size_t cairn_pool_pending(cairn_pool *p)
{
	size_t n;
	pthread_mutex_lock(&p->mu);
	n = p->running + p->normal.count + p->urgent.count;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void cairn_pool_free(cairn_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_started; i++)
		pthread_join(p->workers[i].thread, NULL);
	for (unsigned i = 0; i < p->n_workers; i++)
		free(p->workers[i].job);
	free(p->workers);
	free(p->normal.slots);
	free(p->urgent.slots);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->room);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
