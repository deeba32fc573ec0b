/* restore_exec.c: the worker threads of a restore (see restore_exec.h).
 *
 * Design: the plan is read-only while workers run.  Before they start,
 * each pack's needed blobs (by offset) are coalesced into ranges: loads of
 * at most range_max bytes that skip no more than gap_max unneeded bytes, so
 * each needed byte is read once.  Work is handed out a range at a time
 * through one atomic counter, packs in the order the walk first needed
 * them.  A range, not a pack, is the unit so that the threads share the
 * work evenly to the end: with 16 MiB packs a restore of a dozen packs
 * left one thread idle for most of a pack's time at the tail (and a
 * restore of one pack ran on one thread); two ranges of one pack may be
 * loaded by two threads, each still once.
 *
 * Creation: a planned file is created by the first worker that needs it
 * (rp_create_file, under one of RX_STRIPES mutexes chosen by file index,
 * so two workers never both create it), which spreads the cost of
 * creating many small files over the threads.
 *
 * Ownership and threads: each worker owns its buffers (raw range, decoded
 * blob, path scratch) and its fd cache (restore_plan.h), so no fd is
 * shared between threads.  A file's `remaining` counts the uses not yet
 * handled; a worker decrements it after its write, so the thread that
 * brings it to zero knows every write to the file is done and finishes it
 * (ftruncate, metadata, times last, close) or, if `failed` was set by
 * anyone, removes it.  `failed` is set with an atomic exchange and only
 * the thread that sets it reports, so each file is reported once.
 *
 * Memory: per worker one range buffer (<= range_max, or one blob when a
 * single blob is bigger) and one decoded blob (plaintext plus, while a
 * compressed blob is decoded, its compressed form); with the defaults and
 * restic's chunker (blobs <= 8 MiB) that is at most about 8 + 16 MiB per
 * worker, typically 4 + 2 MiB.  Buffers grown past twice range_max for one
 * big blob are released after its range.  The batch's list of ranges
 * takes 32 bytes per range, at most one per needed blob.
 *
 * Stop: SIGINT/SIGTERM (cli_interrupted) or a fatal error sets `stop`;
 * workers check it between blobs and exit; the calling thread then removes
 * every file that is not finished.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "restore_exec.h"

#define RX_STRIPES 64

/* One load: blobs blob_order[first..end) of pack `pack`, stored bytes
 * [start, start + len) of it. */
typedef struct rx_range {
	uint32_t pack;
	uint32_t first, end;
	int pack_first;          /* the pack's first range (counts packs_read) */
	uint64_t start, len;
} rx_range;

typedef struct rx_shared {
	pthread_mutex_t create_mu[RX_STRIPES]; /* file i is created under create_mu[i % RX_STRIPES] */
	rs_ctx *c;
	rp_plan *p;
	cairn_backend *be;
	const cairn_key *key;
	const rx_options *o;
	struct rx_range *ranges;  /* every load of the batch, packs in plan order */
	size_t n_ranges;
	atomic_size_t next_range;
	atomic_int stop;
	atomic_int fatal;       /* first fatal error code, 0 when none */
	pthread_mutex_t mu;     /* running, cv */
	pthread_cond_t cv;
	int running;
} rx_shared;

typedef struct rx_worker {
	rx_shared *sh;
	pthread_t thread;
	int started;
	rp_fdcache cache;
	cairn_buf raw, plain, path;
} rx_worker;

static void set_fatal(rx_shared *sh, int code)
{
	int zero = 0;
	atomic_compare_exchange_strong(&sh->fatal, &zero, code);
	atomic_store(&sh->stop, 1);
}

/* The path of file fi for messages, in w->path (borrowed until next call). */
static const char *file_path(rx_worker *w, uint32_t fi)
{
	if (rp_file_path(&w->path, w->sh->p, fi) < 0) {
		set_fatal(w->sh, CAIRN_ENOMEM);
		return "?";
	}
	return (const char *)w->path.data;
}

static void fail_file(rx_worker *w, uint32_t fi, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Mark file fi failed; the first caller reports it (and remembers its path
 * for --verify).  The file is removed when its last use is handled. */
static void fail_file(rx_worker *w, uint32_t fi, const char *fmt, ...)
{
	rp_file *f = &w->sh->p->files[fi];
	char msg[1024];
	const char *path;
	va_list ap;

	if (atomic_exchange(&f->failed, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	path = file_path(w, fi);
	rs_report(w->sh->c, path, "%s", msg);
	rs_mark_failed(w->sh->c, path);
}

/* Message text for a failed reopen. */
static const char *open_error(int err)
{
	return err == ESTALE ? "it was replaced in the target during the restore; not writing to it"
		: strerror(err);
}

/* Remove a planned file: the one its creator made, if the name still
 * refers to it; when it was never created, whatever non-directory an
 * earlier restore left at its name, so nothing there looks restored. */
static void remove_file(rs_ctx *c, rp_fdcache *cache, rp_plan *p, uint32_t fi, cairn_buf *path,
	int clear_uncreated)
{
	rp_file *f = &p->files[fi];
	int created = atomic_load(&f->created);
	struct stat st;
	int dfd, err;

	(void)rp_fdcache_close_file(cache, fi);
	if (created < 0 || (created == 0 && !clear_uncreated))
		return; /* reported when its creation failed, or never touched */
	if ((dfd = rp_open_dir(cache, p, f->dir)) < 0)
		goto failed;
	if (created == 0) {
		if (rp_file_path(path, p, fi) == 0)
			(void)rs_clear_entry(c, dfd, rp_str(p, f->name), (const char *)path->data);
		return;
	}
	if (fstatat(dfd, rp_str(p, f->name), &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return;
		goto failed;
	}
	if ((uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino)
		return; /* not ours any more: leave it alone */
	if (unlinkat(dfd, rp_str(p, f->name), 0) == 0 || errno == ENOENT)
		return;
failed:
	err = errno;
	if (err == ESTALE)
		return; /* its directory was replaced: nothing of ours to remove */
	if (rp_file_path(path, p, fi) == 0)
		rs_report_errno(c, (const char *)path->data, "cannot remove the incomplete file", err);
}

/* An fd for file fi, creating the file if no thread has yet: the first
 * thread to need a file creates it under its stripe lock.  -1 when it
 * cannot be created or opened (the file is then failed and reported). */
static int file_fd(rx_worker *w, uint32_t fi)
{
	rx_shared *sh = w->sh;
	rp_file *f = &sh->p->files[fi];
	int created = atomic_load_explicit(&f->created, memory_order_acquire), fd;

	if (created == 0) {
		pthread_mutex_t *mu = &sh->create_mu[fi % RX_STRIPES];
		pthread_mutex_lock(mu);
		if ((created = atomic_load(&f->created)) == 0) {
			const char *path = file_path(w, fi);
			int reported, err;
			fd = rp_create_file(&w->cache, sh->c, sh->p, fi, path, &reported);
			err = errno;
			if (fd >= 0) {
				atomic_store_explicit(&f->created, 1, memory_order_release);
			} else {
				/* failed before created, so the finisher sees both */
				if (reported) {
					if (!atomic_exchange(&f->failed, 1))
						rs_mark_failed(sh->c, path);
				} else {
					fail_file(w, fi, "cannot create '%.*s%s': %s", sh->c->target_len,
						sh->c->target, path, open_error(err));
				}
				atomic_store(&f->created, -1);
			}
			pthread_mutex_unlock(mu);
			return fd;
		}
		pthread_mutex_unlock(mu);
	}
	if (created < 0)
		return -1;
	if ((fd = rp_open_file(&w->cache, sh->p, fi)) < 0) {
		int err = errno;
		const char *path = file_path(w, fi);
		fail_file(w, fi, "cannot open '%.*s%s': %s", sh->c->target_len, sh->c->target, path,
			open_error(err));
	}
	return fd;
}

/* All writes to fi are done: complete it, or remove it if it failed. */
static void finish_file(rx_worker *w, uint32_t fi)
{
	rx_shared *sh = w->sh;
	rp_file *f = &sh->p->files[fi];
	int fd;

	if (!atomic_load(&f->failed)) {
		if ((fd = file_fd(w, fi)) < 0) {
			/* failed and reported */
		} else if (!atomic_load(&f->tail_written) && ftruncate(fd, (off_t)f->size) < 0) {
			int err = errno;
			const char *path = file_path(w, fi);
			fail_file(w, fi, "cannot set the size of '%.*s%s': %s", sh->c->target_len,
				sh->c->target, path, strerror(err));
		} else {
			rs_metadata(sh->c, fd, -1, NULL, file_path(w, fi), CAIRN_NODE_FILE, &f->meta,
				&f->have);
			if (rp_fdcache_close_file(&w->cache, fi) < 0) {
				int err = errno;
				const char *path = file_path(w, fi);
				fail_file(w, fi, "cannot write '%.*s%s': %s", sh->c->target_len,
					sh->c->target, path, strerror(err));
			}
		}
	}
	if (atomic_load(&f->failed)) {
		remove_file(sh->c, &w->cache, sh->p, fi, &w->path, 1);
		f->state = RP_FILE_FAILED;
		return;
	}
	f->state = RP_FILE_DONE;
	rs_add(&sh->c->st->files_restored, 1);
	rs_add(&sh->c->st->bytes_restored, f->size);
}

/* One use of a blob handled: write it (unless zero or the file failed),
 * then count it down. */
static void handle_use(rx_worker *w, const rp_use *u, const unsigned char *data, size_t len,
	int zero)
{
	rx_shared *sh = w->sh;
	rp_file *f = &sh->p->files[u->file];
	size_t written;
	int tail;

	if (!atomic_load_explicit(&f->failed, memory_order_relaxed)) {
		/* also for a zero blob: the file must exist, even if all holes */
		int fd = file_fd(w, u->file);
		size_t n = u->off + len > f->size ? (size_t)(f->size - u->off) : len;
		if (fd < 0 || zero) {
			/* failed and reported, or a hole */
		} else if (rs_pwrite_sparse(&written, &tail, fd, data, n, u->off) < 0) {
			int err = errno;
			const char *path = file_path(w, u->file);
			fail_file(w, u->file, "cannot write '%.*s%s': %s", sh->c->target_len,
				sh->c->target, path, strerror(err));
		} else {
			rs_add(&sh->c->st->bytes_written, written);
			if (tail && u->off + n == f->size)
				atomic_store(&f->tail_written, 1); /* the size is right: no ftruncate */
		}
	}
	if (atomic_fetch_sub_explicit(&f->remaining, 1, memory_order_acq_rel) == 1)
		finish_file(w, u->file);
}

/* Every use of blob bi fails with msg. */
static void fail_blob(rx_worker *w, uint32_t bi, const char *msg)
{
	rx_shared *sh = w->sh;
	const rp_blob *b = &sh->p->blobs[bi];
	char bhex[CAIRN_ID_HEX_SIZE], phex[CAIRN_ID_HEX_SIZE];

	cairn_id_to_hex(bhex, &b->id);
	cairn_id_to_hex(phex, &sh->p->packs[b->pack].id);
	for (uint32_t k = 0; k < b->n_uses; k++) {
		const rp_use *u = &sh->p->uses[b->use_start + k];
		rp_file *f = &sh->p->files[u->file];
		fail_file(w, u->file, "blob %s in pack %s: %s", bhex, phex, msg);
		if (atomic_fetch_sub_explicit(&f->remaining, 1, memory_order_acq_rel) == 1)
			finish_file(w, u->file);
	}
}

/* Decode one blob from its sealed bytes and hand it to every use. */
static void handle_blob(rx_worker *w, uint32_t bi, const unsigned char *sealed)
{
	rx_shared *sh = w->sh;
	const rp_blob *b = &sh->p->blobs[bi];
	size_t want = b->ulen ? b->ulen : (size_t)b->length - 32;
	int zero;

	if (cairn_blob_decode(&w->plain, sh->key, sealed, b->length, b->ulen, &b->id) < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", cairn_error_message());
		fail_blob(w, bi, msg);
		return;
	}
	if (w->plain.len != want) {
		fail_blob(w, bi, "its length does not match the index");
		return;
	}
	zero = rs_all_zero(w->plain.data, w->plain.len);
	for (uint32_t k = 0; k < b->n_uses; k++)
		handle_use(w, &sh->p->uses[b->use_start + k], w->plain.data, w->plain.len, zero);
}

/* Load len bytes at off of the pack into w->raw (counted). */
static int load_range(rx_worker *w, const cairn_handle *h, const char *phex, uint64_t off,
	uint64_t len)
{
	int r = cairn_backend_load(&w->raw, w->sh->be, h, off, (size_t)len);
	rs_add(&w->sh->c->st->pack_loads, 1);
	if (r >= 0 && w->raw.len != len)
		r = cairn_error_set(CAIRN_ECORRUPT, "pack '%s' is truncated", phex);
	if (r >= 0)
		rs_add(&w->sh->c->st->bytes_loaded, w->raw.len);
	return r;
}

/* Blob bi could not be loaded: fail its uses with this thread's error. */
static void fail_blob_msg(rx_worker *w, uint32_t bi)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", cairn_error_message());
	fail_blob(w, bi, msg);
}

/* Cut every pack's needed blobs into loads (see the design note).  The
 * ranges are kept in sh->ranges; at most one per needed blob. */
static int build_ranges(rx_shared *sh)
{
	const rp_plan *p = sh->p;
	size_t n = 0;

	sh->ranges = NULL;
	sh->n_ranges = 0;
	if (!p->n_blobs)
		return 0;
	if (!(sh->ranges = malloc(p->n_blobs * sizeof(*sh->ranges))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t pi = 0; pi < p->n_packs; pi++) {
		const rp_pack *pk = &p->packs[pi];
		size_t i = pk->first, end = (size_t)pk->first + pk->n;
		while (i < end) {
			const rp_blob *b = &p->blobs[p->blob_order[i]];
			uint64_t start = b->offset, rend = (uint64_t)b->offset + b->length;
			size_t j = i + 1;
			rx_range *rg = &sh->ranges[n++];
			for (; j < end; j++) {
				const rp_blob *nb = &p->blobs[p->blob_order[j]];
				uint64_t nend = (uint64_t)nb->offset + nb->length;
				if (nb->offset > rend && nb->offset - rend > sh->o->gap_max)
					break;
				if (nend > rend && nend - start > sh->o->range_max)
					break;
				if (nend > rend)
					rend = nend;
			}
			rg->pack = (uint32_t)pi;
			rg->first = (uint32_t)i;
			rg->end = (uint32_t)j;
			rg->pack_first = i == pk->first;
			rg->start = start;
			rg->len = rend - start;
			i = j;
		}
	}
	sh->n_ranges = n;
	return 0;
}

/* Load one range and handle its blobs. */
static void handle_range(rx_worker *w, const rx_range *rg)
{
	rx_shared *sh = w->sh;
	rp_plan *p = sh->p;
	char phex[CAIRN_ID_HEX_SIZE];
	cairn_handle h;
	size_t i = rg->first, j = rg->end;
	int r;

	cairn_id_to_hex(phex, &p->packs[rg->pack].id);
	cairn_handle_set(&h, CAIRN_FILE_PACK, phex);
	if (rg->pack_first)
		rs_add(&sh->c->st->packs_read, 1);
	r = load_range(w, &h, phex, rg->start, rg->len);
	if (r < 0 && r != CAIRN_ENOMEM && j - i > 1) {
		/* A truncated pack or one wrong index entry must not fail the
		 * good blobs around it: read this range blob by blob. */
		for (; i < j && !atomic_load(&sh->stop) && !cli_interrupted(); i++) {
			const rp_blob *x = &p->blobs[p->blob_order[i]];
			if ((r = load_range(w, &h, phex, x->offset, x->length)) == CAIRN_ENOMEM)
				break;
			if (r < 0)
				fail_blob_msg(w, p->blob_order[i]);
			else
				handle_blob(w, p->blob_order[i], w->raw.data);
		}
		if (r == CAIRN_ENOMEM)
			set_fatal(sh, r);
		if (i < j)
			atomic_store(&sh->stop, 1); /* interrupted (the blobs left are not failed) */
	} else if (r == CAIRN_ENOMEM) {
		set_fatal(sh, r);
		return;
	} else if (r < 0) {
		for (; i < j; i++)
			fail_blob_msg(w, p->blob_order[i]);
	} else {
		for (; i < j; i++) {
			const rp_blob *x = &p->blobs[p->blob_order[i]];
			if (cli_interrupted()) {
				atomic_store(&sh->stop, 1);
				return;
			}
			handle_blob(w, p->blob_order[i], w->raw.data + (x->offset - rg->start));
		}
	}
	/* Do not keep a buffer grown for one huge blob. */
	if (w->raw.cap > 2 * sh->o->range_max)
		cairn_buf_release(&w->raw);
	if (w->plain.cap > 2 * sh->o->range_max)
		cairn_buf_release(&w->plain);
}

static void *worker_main(void *arg)
{
	rx_worker *w = arg;
	rx_shared *sh = w->sh;

	while (!atomic_load(&sh->stop)) {
		size_t ri = atomic_fetch_add(&sh->next_range, 1);
		if (ri >= sh->n_ranges)
			break;
		handle_range(w, &sh->ranges[ri]);
	}
	rp_fdcache_release(&w->cache);
	pthread_mutex_lock(&sh->mu);
	sh->running--;
	pthread_cond_signal(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	return NULL;
}

void rx_remove_pending(rs_ctx *c, rp_plan *p)
{
	rp_fdcache cache;
	cairn_buf path = CAIRN_BUF_INIT;

	rp_fdcache_init(&cache);
	for (size_t i = 0; i < p->n_files; i++) {
		if (p->files[i].state != RP_FILE_PENDING)
			continue;
		remove_file(c, &cache, p, (uint32_t)i, &path, 0);
		p->files[i].state = RP_FILE_FAILED;
	}
	rp_fdcache_release(&cache);
	cairn_buf_release(&path);
}

int rx_run(rs_ctx *c, rp_plan *p, cairn_repo *repo, const rx_options *o)
{
	rx_shared sh;
	rx_worker *w = NULL;
	int n = o->threads < 1 ? 1 : o->threads, r = 0;

	memset(&sh, 0, sizeof(sh));
	sh.c = c;
	sh.p = p;
	sh.be = cairn_repo_backend(repo);
	sh.key = cairn_repo_key(repo);
	sh.o = o;
	atomic_init(&sh.next_range, 0);
	atomic_init(&sh.stop, 0);
	atomic_init(&sh.fatal, 0);
	for (int i = 0; i < RX_STRIPES; i++)
		pthread_mutex_init(&sh.create_mu[i], NULL); /* default attributes: cannot fail on Linux */
	pthread_mutex_init(&sh.mu, NULL);
	pthread_cond_init(&sh.cv, NULL);
	if ((r = build_ranges(&sh)) < 0)
		goto out;
	if ((size_t)n > sh.n_ranges)
		n = sh.n_ranges ? (int)sh.n_ranges : 1;
	if (!(w = calloc((size_t)n, sizeof(*w)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		w[i].sh = &sh;
		rp_fdcache_init(&w[i].cache);
	}
	pthread_mutex_lock(&sh.mu);
	for (int i = 0; i < n; i++) {
		sh.running++;
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
			sh.running--;
			break;
		}
		w[i].started = 1;
	}
	if (!w[0].started) {
		/* No thread at all: work in this one (no progress line). */
		pthread_mutex_unlock(&sh.mu);
		sh.running++;
		worker_main(&w[0]);
		pthread_mutex_lock(&sh.mu);
	}
	while (sh.running > 0) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 200 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&sh.cv, &sh.mu, &until);
		pthread_mutex_unlock(&sh.mu);
		if (cli_interrupted())
			atomic_store(&sh.stop, 1);
		rs_progress(c);
		pthread_mutex_lock(&sh.mu);
	}
	pthread_mutex_unlock(&sh.mu);
	for (int i = 0; i < n; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
	if (atomic_load(&sh.fatal))
		r = cairn_error_set(atomic_load(&sh.fatal), "out of memory");
	else if (atomic_load(&sh.stop) || cli_interrupted())
		r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
out:
	if (r < 0)
		rx_remove_pending(c, p);
	if (w)
		for (int i = 0; i < n; i++) {
			rp_fdcache_release(&w[i].cache);
			cairn_buf_release(&w[i].raw);
			cairn_buf_release(&w[i].plain);
			cairn_buf_release(&w[i].path);
		}
	free(w);
	free(sh.ranges);
	pthread_cond_destroy(&sh.cv);
	pthread_mutex_destroy(&sh.mu);
	for (int i = 0; i < RX_STRIPES; i++)
		pthread_mutex_destroy(&sh.create_mu[i]);
	return r;
}
