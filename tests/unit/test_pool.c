/* test_pool.c: the bounded thread pool: every job runs once, on a valid
 * worker index; a full queue blocks a submitter (or refuses a TRY submit)
 * until a worker frees a slot; urgent jobs overtake normal ones; jobs that
 * submit jobs are waited for; free runs what is still queued. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <cairn/error.h>
#include <cairn/pool.h>
#include "unit.h"

/* A gate that jobs can wait at until the test opens it. */
typedef struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open, waiting;
} gate;

static void gate_init(gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->open = g->waiting = 0;
}

static void gate_pass(gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->waiting++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	g->waiting--;
	pthread_mutex_unlock(&g->mu);
}

/* Wait until `n` jobs wait at the gate. */
static void gate_wait_for(gate *g, int n)
{
	pthread_mutex_lock(&g->mu);
	while (g->waiting < n)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g)
{
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
}

/* --- every job exactly once ------------------------------------------- */

#define MANY 20000
#define THREADS 4

typedef struct count_ctx {
	atomic_int runs[MANY];
	atomic_int bad_worker;
} count_ctx;

typedef struct count_job {
	unsigned i;
	unsigned pad[7]; /* a job bigger than a pointer */
} count_job;

static void count_fn(void *job, unsigned worker, void *payload)
{
	count_job *j = job;
	count_ctx *c = payload;
	if (worker >= THREADS)
		atomic_fetch_add(&c->bad_worker, 1);
	atomic_fetch_add(&c->runs[j->i], 1);
}

static void test_every_job_runs_once(void)
{
	static count_ctx c;
	cairn_pool_options o = CAIRN_POOL_OPTIONS_INIT;
	cairn_pool *p = NULL;
	int wrong = 0;

	o.threads = THREADS;
	o.queue_size = 3;
	o.job_size = sizeof(count_job);
	o.fn = count_fn;
	o.payload = &c;
	CHECK_OK(cairn_pool_new(&p, &o));
	if (!p)
		return;
	for (unsigned i = 0; i < MANY; i++) {
		count_job j = { i, { 0 } };
		CHECK_INT(cairn_pool_submit(p, &j, 0), 0);
	}
	cairn_pool_wait(p);
	CHECK_INT(cairn_pool_pending(p), 0);
	for (unsigned i = 0; i < MANY; i++)
		wrong += atomic_load(&c.runs[i]) != 1;
	CHECK_INT(wrong, 0);
	CHECK_INT(atomic_load(&c.bad_worker), 0);
	cairn_pool_free(p);
}

/* --- backpressure and order ------------------------------------------- */

typedef struct order_ctx {
	gate g;
	pthread_mutex_t mu;
	char seen[16];
	size_t n_seen;
} order_ctx;

typedef struct order_job {
	char tag;   /* 'G': wait at the gate first */
} order_job;

static void order_fn(void *job, unsigned worker, void *payload)
{
	order_job *j = job;
	order_ctx *c = payload;
	if (j->tag == 'G')
		gate_pass(&c->g);
	pthread_mutex_lock(&c->mu);
	if (c->n_seen < sizeof(c->seen) - 1)
		c->seen[c->n_seen++] = j->tag;
	pthread_mutex_unlock(&c->mu);
}

typedef struct submitter {
	cairn_pool *p;
	atomic_int done;
} submitter;

static void *submit_blocking(void *arg)
{
	submitter *s = arg;
	order_job j = { 'C' };
	cairn_pool_submit(s->p, &j, 0);
	atomic_store(&s->done, 1);
	return NULL;
}

static void test_full_queue_blocks_and_urgent_first(void)
{
	order_ctx c;
	cairn_pool_options o = CAIRN_POOL_OPTIONS_INIT;
	cairn_pool *p = NULL;
	order_job gj = { 'G' }, a = { 'A' }, b = { 'B' }, u = { 'U' };
	submitter s;
	pthread_t th;
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	memset(&c, 0, sizeof(c));
	gate_init(&c.g);
	pthread_mutex_init(&c.mu, NULL);
	o.threads = 1;
	o.queue_size = 2;
	o.urgent_size = 1;
	o.job_size = sizeof(order_job);
	o.fn = order_fn;
	o.payload = &c;
	CHECK_OK(cairn_pool_new(&p, &o));
	if (!p)
		return;
	/* the only worker is held at the gate; A and B fill the queue */
	CHECK_INT(cairn_pool_submit(p, &gj, 0), 0);
	gate_wait_for(&c.g, 1);
	CHECK_INT(cairn_pool_submit(p, &a, 0), 0);
	CHECK_INT(cairn_pool_submit(p, &b, CAIRN_POOL_TRY), 0);
	CHECK_INT(cairn_pool_submit(p, &b, CAIRN_POOL_TRY), 1);     /* full */
	CHECK_INT(cairn_pool_submit(p, &u, CAIRN_POOL_URGENT | CAIRN_POOL_TRY), 0);
	CHECK_INT(cairn_pool_submit(p, &u, CAIRN_POOL_URGENT | CAIRN_POOL_TRY), 1);
	CHECK_INT(cairn_pool_pending(p), 4);
	/* a blocking submit waits while the queue is full */
	s.p = p;
	atomic_store(&s.done, 0);
	CHECK_INT(pthread_create(&th, NULL, submit_blocking, &s), 0);
	nanosleep(&pause, NULL);
	CHECK_INT(atomic_load(&s.done), 0);
	gate_open(&c.g);
	pthread_join(th, NULL);
	CHECK_INT(atomic_load(&s.done), 1);
	cairn_pool_wait(p);
	CHECK_STR(c.seen, "GUABC");
	cairn_pool_free(p);
	gate_destroy(&c.g);
	pthread_mutex_destroy(&c.mu);
}

/* --- jobs that submit jobs; free runs the queue ----------------------- */

typedef struct spawn_ctx {
	cairn_pool *pool;
	atomic_int children, parents, refused;
} spawn_ctx;

typedef struct spawn_job {
	int depth;
} spawn_job;

static void spawn_fn(void *job, unsigned worker, void *payload)
{
	spawn_job *j = job;
	spawn_ctx *c = payload;
	struct timespec pause = { 0, 200 * 1000 };

	if (j->depth == 0) {
		spawn_job child = { 1 };
		atomic_fetch_add(&c->parents, 1);
		if (cairn_pool_submit(c->pool, &child, CAIRN_POOL_URGENT | CAIRN_POOL_TRY) != 0)
			atomic_fetch_add(&c->refused, 1);
	} else {
		nanosleep(&pause, NULL);
		atomic_fetch_add(&c->children, 1);
	}
}

static void test_jobs_submitting_jobs_are_waited_for(void)
{
	static spawn_ctx c;
	cairn_pool_options o = CAIRN_POOL_OPTIONS_INIT;
	spawn_job top = { 0 };

	o.threads = 3;
	o.queue_size = 4;
	o.urgent_size = 2;
	o.job_size = sizeof(spawn_job);
	o.fn = spawn_fn;
	o.payload = &c;
	CHECK_OK(cairn_pool_new(&c.pool, &o));
	if (!c.pool)
		return;
	for (int i = 0; i < 200; i++)
		CHECK_INT(cairn_pool_submit(c.pool, &top, 0), 0);
	cairn_pool_wait(c.pool);
	CHECK_INT(atomic_load(&c.parents), 200);
	CHECK_INT(atomic_load(&c.children) + atomic_load(&c.refused), 200);
	CHECK(atomic_load(&c.children) > 0);
	CHECK_INT(cairn_pool_pending(c.pool), 0);

	/* free without wait: the queued jobs still run */
	atomic_store(&c.parents, 0);
	atomic_store(&c.children, 0);
	atomic_store(&c.refused, 0);
	for (int i = 0; i < 50; i++)
		CHECK_INT(cairn_pool_submit(c.pool, &top, 0), 0);
	cairn_pool_free(c.pool);
	CHECK_INT(atomic_load(&c.parents), 50);
	CHECK_INT(atomic_load(&c.children) + atomic_load(&c.refused), 50);
}

static void noop_fn(void *job, unsigned worker, void *payload)
{
}

static void test_invalid_options(void)
{
	cairn_pool_options o = CAIRN_POOL_OPTIONS_INIT;
	cairn_pool *p = (cairn_pool *)&o;
	int one = 1;

	o.job_size = sizeof(int);
	CHECK_INT(cairn_pool_new(&p, &o), CAIRN_EINVAL);     /* no function */
	CHECK(p == NULL);
	o.fn = noop_fn;
	o.threads = 0;
	CHECK_INT(cairn_pool_new(&p, &o), CAIRN_EINVAL);
	o.threads = 2;
	o.queue_size = 0;
	CHECK_INT(cairn_pool_new(&p, &o), CAIRN_EINVAL);
	o.queue_size = 1;
	o.job_size = 0;
	CHECK_INT(cairn_pool_new(&p, &o), CAIRN_EINVAL);
	o.job_size = sizeof(int);
	CHECK_OK(cairn_pool_new(&p, &o));
	if (!p)
		return;
	CHECK_INT(cairn_pool_submit(p, &one, CAIRN_POOL_URGENT), CAIRN_EINVAL); /* no urgent queue */
	CHECK_INT(cairn_pool_submit(p, &one, 0), 0);
	cairn_pool_wait(p);
	cairn_pool_free(p);
	cairn_pool_free(NULL);
}

UNIT_MAIN(test_every_job_runs_once, test_full_queue_blocks_and_urgent_first,
	test_jobs_submitting_jobs_are_waited_for, test_invalid_options)
