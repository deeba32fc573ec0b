/* archiver.c: the backup pipeline.  It takes entries from a source
 * (source.h), cuts file contents with restic's chunker, stores data and tree
 * blobs with cairn_repo_save_blob, and returns the root tree id (see
 * archiver.h).
 *
 * Threads and stages.  The calling thread is the walker: it lists
 * directories depth-first in name order, decides which files are unchanged
 * since the parent snapshot (those take the parent's content list and are
 * never read), and puts the others into batches of up to BATCH_FILES files
 * or BATCH_BYTES bytes (by listed size), which it submits to a pool of
 * `threads` workers (include/cairn/pool.h).  The pool's normal queue holds
 * QUEUE_PER_THREAD batches per worker and the walker blocks when it is full,
 * so the walk never runs further ahead than that (backpressure).  A batch,
 * not a file, is the unit of handoff, so a tree of tiny files costs one
 * queue operation per 32 files, not per file.
 *
 * Walking is shared too: a subdirectory is listed and walked as a job of
 * its own (JOB_DIR) when the normal queue has room, else right where it was
 * met.  So when there is little to read (an incremental run over unchanged
 * files, where listing, the parent's trees, index lookups and tree encoding
 * are all the work) every worker walks, and when the queue is full of
 * batches (an initial run) the walker keeps walking as before.  A worker
 * walking a directory fills a batch of its own, which it submits with
 * CAIRN_POOL_TRY (a worker must never wait for room) or else reads itself,
 * always before its job ends.  Which thread walks a directory changes
 * nothing in its tree.
 *
 * A worker reads a file of its batch straight into its chunk buffer (no
 * separate read buffer: the first read of a chunk asks for the chunker's
 * MinSize, later ones for READ_STEP) and scans it with the chunker.  At each
 * cut the chunk gets the next slot of the file's content list, so content
 * order is the file's order by construction; hashing it (SHA-256) into that
 * slot and storing it (dedup lookup, zstd, seal, pack, upload:
 * cairn_repo_save_blob) is then either done by the reader itself, or, for a
 * chunk of at least HANDOFF_MIN bytes, handed to another worker as an
 * urgent job: the reader takes a spare chunk buffer, moves the bytes
 * already read past the cut into it and goes on cutting, while the job owns
 * the full buffer until the chunk is hashed and stored and then returns it
 * to the spares.  Handing off the hash too means a big file whose chunks
 * are all known (an incremental run after a small change) still shares its
 * work: cutting, hashing and the lookup each take a similar share.  Slots
 * are filled under content_mu, which the reader also takes to grow the
 * list.  There are two spare buffers per other worker (none with one
 * thread): one chunk being handled and one queued behind it, so a helper
 * never waits while the reader cuts the next chunk, a big file keeps every
 * core busy, and at most 3 x threads - 2 chunk buffers exist.  When no
 * spare is free, or the urgent queue is full, or the chunks handed off and
 * not done yet would pass HANDOFF_PER_SPARE bytes per spare with this one
 * (unless none is), the reader hashes and stores the chunk itself (so the
 * work balances itself: a reader whose helpers are busy compresses too).
 * No chunk byte is copied by the archiver except the tail of the last read
 * after a cut.
 *
 * Memory.  Chunk buffers are mappings of CAIRN_CHUNKER_MAX_SIZE (8 MiB)
 * whose pages are only resident once touched.  A buffer returning to the
 * spares, and a reader's buffer at the end of each file or after a chunk
 * that made more than BUF_TRIM_AT resident, gives the pages beyond BUF_KEEP
 * back.  So chunk memory is about the chunks being cut (one per reader, at
 * most BUF_TRIM_AT kept between chunks) plus the handed-off bytes (bounded
 * above) plus BUF_KEEP per idle buffer, not the largest chunk ever seen per
 * buffer (a reader used to keep that until the end of its file).  Trimming
 * after every chunk would keep less, but pages given back are faulted in
 * again by the next chunk's reads: measured 14% of an incremental run's
 * cycles in page faults with BUF_KEEP at 1 MiB and a trim per chunk.
 * Restic's chunks are 512 KiB to 8 MiB, mostly 0.5-2 MiB.
 *
 * Completion.  Each directory being archived has a dir_state holding its
 * listing (entries, which become the tree's nodes) and a reference count:
 * one for the walker while it iterates the directory, one per file of it in
 * a queued or running batch, one per handed-off chunk of its files, one per
 * subdirectory not yet finished.  Whoever drops the count to zero (walker or
 * worker) encodes and saves the directory's tree blob, writes the tree id
 * into the parent's entry and drops the parent's reference, and so on up.
 * A tree is therefore saved only after every blob it names was saved, and
 * the tree of a directory is the one the sequential walk produced: the same
 * nodes from the same listing, in the same order, with content lists in file
 * order; only the moment it is saved differs.  Memory: a dir_state lives
 * while its directory is on the walker's path or has work in flight, and
 * work in flight is bounded by the queues, so memory does not grow with the
 * number of files or directories (a directory's own listing is in memory
 * while it is archived, as before).
 *
 * Ownership.  The walker owns a dir_state's listing until it drops its
 * reference; each entry is then only touched by the one job that reads that
 * file (its node) or by the finishing of that subdirectory (its subtree id),
 * and the last reference's release orders all of those writes before the
 * tree is encoded.  Per-worker state (chunk buffer, tree scratch, the batch
 * being filled) is indexed by the pool's worker number; the walker has its
 * own slot after them.
 * Statistics, reports, progress and the first fatal error are under `mu`;
 * no source or repository call is made with `mu` held.
 *
 * Errors: an entry the source cannot list or read is reported and left out
 * of its tree (restic stores nothing for it either); a repository failure
 * or an interrupt is fatal: the first one is recorded with its message,
 * every thread stops taking on new work, queued work is drained without
 * being done, and archiver_run returns that error in the calling thread.
 *
 * Incremental: the parent snapshot's tree is walked beside the source, one
 * directory at a time (its tree blob is loaded when the walker enters the
 * directory and dropped when the walker leaves it).  A regular file whose
 * type, size, mtime, ctime and inode equal the parent's node (ctime and
 * inode unless ignored), and all of whose blobs are in the index, takes the
 * parent's content list without being read (unless `force`).
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cairn/pool.h>

#include "archiver.h"

#define CHUNK_MAX ((size_t)CAIRN_CHUNKER_MAX_SIZE)
#define CHUNK_MIN ((size_t)CAIRN_CHUNKER_MIN_SIZE)
#define READ_STEP ((size_t)256 << 10)   /* reads after a chunk's first MinSize bytes */
#define HANDOFF_MIN ((size_t)64 << 10)  /* smaller chunks are stored by their reader */
#define BUF_KEEP ((size_t)2 << 20)      /* resident bytes an idle chunk buffer keeps */
#define BUF_TRIM_AT ((size_t)4 << 20)   /* a reader's buffer is trimmed to BUF_KEEP above this */
#define HANDOFF_PER_SPARE ((size_t)2 << 20) /* handed-off bytes in flight, per spare buffer */
#define BATCH_FILES 32
#define BATCH_BYTES ((uint64_t)1 << 20)
#define QUEUE_PER_THREAD 2
#define PROGRESS_NS 100000000ull        /* 100 ms between progress calls */
#define THREADS_MAX 256

enum { F_SKIP = 1, F_HAS_PREV = 2 };    /* dir_state.flags[i] */

typedef struct dir_state dir_state;
struct dir_state {
	dir_state *parent;      /* NULL: the root; holds one reference on it */
	size_t index;           /* of this directory in parent->entries */
	source_entry *entries;  /* the listing, n entries, sorted by name */
	size_t n;
	unsigned char *flags;   /* per entry: F_SKIP left out, F_HAS_PREV the parent had it */
	atomic_size_t refs;
	int has_prev;           /* prev is the parent snapshot's node of this directory */
	cairn_node prev;
};

typedef struct file_ref {
	dir_state *dir;         /* holds one reference */
	size_t index;
} file_ref;

enum { JOB_FILES = 1, JOB_BLOB = 2, JOB_DIR = 3 };

typedef struct job {
	int kind;
	union {
		struct {
			unsigned n;
			file_ref f[BATCH_FILES];
		} files;
		struct {
			unsigned char *buf;  /* owned by the job: a chunk buffer, back to the spares */
			size_t used;         /* bytes of buf ever written (for buf_trim) */
			size_t len;
			size_t slot;         /* its place in the file's content list, to fill */
			file_ref f;          /* the file it belongs to (reference held) */
		} blob;
		struct {
			dir_state *parent;   /* holds one reference */
			size_t index;        /* the directory to list and walk: parent->entries[index] */
			cairn_node *prev;    /* owned copy of the parent snapshot's node, or NULL */
			int has_psub;
			cairn_id psub;       /* the parent snapshot's tree for it */
		} dir;
	} u;
} job;

typedef struct wctx {
	unsigned char *buf;     /* the current chunk buffer (CHUNK_MAX), NULL until needed */
	size_t used;            /* bytes of buf written since it was last trimmed */
	cairn_buf scratch;      /* tree encoding, parent tree loading */
	int is_worker;          /* a pool worker (submits only with CAIRN_POOL_TRY) */
	job batch;              /* walking: the file batch being filled */
	uint64_t batch_bytes;
} wctx;

typedef struct archiver {
	cairn_repo *repo;
	source *src;
	const archiver_options *opts;
	cairn_chunker_tables tables;
	unsigned threads;
	cairn_pool *pool;
	wctx *w;                /* threads + 1: the workers, then the walker */

	pthread_mutex_t content_mu; /* a reader growing a content list vs helpers filling slots */
	pthread_mutex_t spare_mu;
	unsigned char **spare;  /* free chunk buffers */
	size_t n_spare, n_spare_made, spare_max;
	size_t handoff_bytes;   /* chunk bytes handed off and not stored yet */
	size_t handoff_max;     /* their bound (a chunk is stored by its reader beyond it) */

	pthread_mutex_t mu;     /* guards what follows */
	archiver_stats *st;
	int fatal;              /* first fatal error code, 0 while none */
	char *fatal_msg;
	uint64_t last_progress;
	atomic_int stop;        /* set with fatal; read without mu */

	int root_done;          /* the root tree is saved: root is its id */
	cairn_id root;
} archiver;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The report callback installed on the source during a run: count, then
 * pass on to the caller's callback, one report at a time. */
static void count_report(int is_error, const char *path, const char *message, void *payload)
{
	archiver *a = payload;
	pthread_mutex_lock(&a->mu);
	if (is_error)
		a->st->errors++;
	else
		a->st->warnings++;
	if (a->opts->report)
		a->opts->report(is_error, path, message, a->opts->payload);
	pthread_mutex_unlock(&a->mu);
}

/* Record the first fatal error (code r, message from this thread's error
 * record) and tell every thread to stop. */
static void set_fatal(archiver *a, int r)
{
	pthread_mutex_lock(&a->mu);
	if (!a->fatal) {
		a->fatal = r;
		a->fatal_msg = strdup(cairn_error_message());
		atomic_store(&a->stop, 1);
	}
	pthread_mutex_unlock(&a->mu);
}

/* 1 when the run is to stop (a fatal error, or the user interrupted: that
 * is recorded as the fatal error here). */
static int stopped(archiver *a)
{
	if (atomic_load_explicit(&a->stop, memory_order_relaxed))
		return 1;
	if (a->opts->interrupted && a->opts->interrupted(a->opts->payload)) {
		set_fatal(a, cairn_error_set(CAIRN_ECANCELED, "interrupted"));
		return 1;
	}
	return 0;
}

/* Call the progress callback if PROGRESS_NS passed since the last call;
 * mu held. */
static void progress_locked(archiver *a, const char *path)
{
	uint64_t t;

	if (!a->opts->progress)
		return;
	t = now_ns();
	if (t - a->last_progress < PROGRESS_NS)
		return;
	a->last_progress = t;
	a->opts->progress(a->st, path, a->opts->payload);
}

/* Count bytes read (negative: bytes of a file that is left out after all). */
static void add_bytes(archiver *a, int64_t delta, const char *path)
{
	pthread_mutex_lock(&a->mu);
	a->st->total_bytes_processed += (uint64_t)delta;
	progress_locked(a, path);
	pthread_mutex_unlock(&a->mu);
}

/* --- chunk buffers ------------------------------------------------------- */

/* A chunk buffer of CHUNK_MAX bytes (pages resident once touched), or NULL. */
static unsigned char *buf_new(void)
{
	void *p = mmap(NULL, CHUNK_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* NULL is a no-op. */
static void buf_free(unsigned char *b)
{
	if (b)
		munmap(b, CHUNK_MAX);
}

/* Give the pages beyond BUF_KEEP of a buffer whose first `used` bytes were
 * written back to the system (they read as zeros afterwards, which no one
 * relies on: a buffer is always written before it is read). */
static void buf_trim(unsigned char *b, size_t used)
{
	if (used > BUF_KEEP)
		madvise(b + BUF_KEEP, used - BUF_KEEP, MADV_DONTNEED);
}

/* A spare chunk buffer (made on demand, up to spare_max) for handing off a
 * chunk of `len` bytes, or NULL when none is free or the chunks handed off
 * and not stored yet would exceed handoff_max bytes with it (one chunk of
 * any size may always be in flight, so big chunks are shared too).  The caller
 * owns the buffer until put_spare, which also ends the `len` bytes'
 * reservation. */
static unsigned char *take_spare(archiver *a, size_t len)
{
	unsigned char *b = NULL;

	pthread_mutex_lock(&a->spare_mu);
	if (a->handoff_bytes > 0 && a->handoff_bytes + len > a->handoff_max)
		b = NULL;
	else if (a->n_spare)
		b = a->spare[--a->n_spare];
	else if (a->n_spare_made < a->spare_max && (b = buf_new()))
		a->n_spare_made++;
	if (b)
		a->handoff_bytes += len;
	pthread_mutex_unlock(&a->spare_mu);
	return b;
}

/* Give back a chunk buffer whose first `used` bytes were written, ending
 * the reservation of `len` handed-off bytes (there is always room: spare
 * holds spare_max plus one per thread). */
static void put_spare(archiver *a, unsigned char *b, size_t used, size_t len)
{
	buf_trim(b, used);
	pthread_mutex_lock(&a->spare_mu);
	a->spare[a->n_spare++] = b;
	assert(a->handoff_bytes >= len);
	a->handoff_bytes -= len;
	pthread_mutex_unlock(&a->spare_mu);
}

/* --- directories -------------------------------------------------------- */

/* Same metadata and subtree: the directory is unmodified. */
static int dir_unmodified(const cairn_node *prev, const cairn_node *n)
{
	return prev->type == CAIRN_NODE_DIR && prev->has_subtree && n->has_subtree &&
		cairn_id_equal(&prev->subtree, &n->subtree) && prev->mode == n->mode &&
		prev->uid == n->uid && prev->gid == n->gid && prev->inode == n->inode &&
		cairn_time_compare(prev->mtime, n->mtime) == 0 &&
		cairn_time_compare(prev->ctime, n->ctime) == 0 &&
		cairn_time_compare(prev->atime, n->atime) == 0 &&
		prev->n_xattrs == n->n_xattrs;
}

static const char *dir_path(const dir_state *d)
{
	return d->parent ? d->parent->entries[d->index].path : "/";
}

static void dir_free(dir_state *d)
{
	if (!d)
		return;
	source_entries_free(d->entries, d->n);
	free(d->flags);
	cairn_node_release(&d->prev);
	free(d);
}

/* The last reference to `d` is gone: unless the run stops, save its tree
 * and put the id into the parent's entry (or the archiver's root).  Frees d
 * in every case.  `scratch` is the calling thread's. */
static void finish_dir(archiver *a, dir_state *d, cairn_buf *scratch)
{
	cairn_tree tree = CAIRN_TREE_INIT;
	cairn_id id;
	int added = 0, r = 0;

	if (atomic_load(&a->stop))
		goto out;
	for (size_t i = 0; i < d->n && r == 0; i++)
		if (!(d->flags[i] & F_SKIP))
			r = cairn_tree_add(&tree, &d->entries[i].node);
	if (r < 0 || (r = cairn_tree_encode(scratch, &tree)) < 0 ||
		(r = cairn_repo_save_blob(&id, &added, a->repo, CAIRN_BLOB_TREE, scratch->data,
			scratch->len, NULL)) < 0) {
		set_fatal(a, cairn_error_wrap(r, "cannot save the tree of '%s'", dir_path(d)));
		goto out;
	}
	pthread_mutex_lock(&a->mu);
	if (added) {
		a->st->tree_blobs++;
		a->st->data_added += scratch->len;
	}
	if (d->parent) {
		cairn_node *n = &d->parent->entries[d->index].node;
		n->subtree = id;
		n->has_subtree = 1;
		if (!d->has_prev)
			a->st->dirs_new++;
		else if (dir_unmodified(&d->prev, n))
			a->st->dirs_unmodified++;
		else
			a->st->dirs_changed++;
	} else {
		a->root = id;
		a->root_done = 1;
	}
	pthread_mutex_unlock(&a->mu);
out:
	cairn_tree_release(&tree);
	dir_free(d);
}

/* Drop one reference to d; the last one finishes it, and then drops the
 * reference it held on its parent, and so on up. */
static void dir_unref(archiver *a, dir_state *d, cairn_buf *scratch)
{
	while (d && atomic_fetch_sub(&d->refs, 1) == 1) {
		dir_state *parent = d->parent;
		finish_dir(a, d, scratch);
		d = parent;
	}
}

/* --- files -------------------------------------------------------------- */

/* Store one chunk (data blob with known id); counts it when new. */
static int store_chunk(archiver *a, const unsigned char *data, size_t len, const cairn_id *id,
	const file_ref *f)
{
	int added = 0, r;

	if ((r = cairn_repo_save_blob(NULL, &added, a->repo, CAIRN_BLOB_DATA, data, len, id)) < 0)
		return cairn_error_wrap(r, "cannot store data of '%s'", f->dir->entries[f->index].path);
	if (added) {
		pthread_mutex_lock(&a->mu);
		a->st->data_blobs++;
		a->st->data_added += len;
		pthread_mutex_unlock(&a->mu);
	}
	return 0;
}

/* Append a placeholder for a chunk's id to the file's content list (under
 * content_mu: a helper may be filling an earlier slot of the same list);
 * its index in *slot. */
static int add_slot(archiver *a, cairn_node *node, size_t *slot)
{
	static const cairn_id zero;
	int r;

	pthread_mutex_lock(&a->content_mu);
	*slot = node->n_content;
	r = cairn_node_add_content(node, &zero);
	pthread_mutex_unlock(&a->content_mu);
	return r;
}

/* Hash a chunk and put its id into its slot of the file's content list. */
static void fill_slot(archiver *a, const file_ref *f, size_t slot, const unsigned char *data,
	size_t len, cairn_id *id_out)
{
	cairn_node *node = &f->dir->entries[f->index].node;

	cairn_sha256(id_out, data, len);
	pthread_mutex_lock(&a->content_mu);
	node->content[slot] = *id_out;
	pthread_mutex_unlock(&a->content_mu);
}

/* The chunk is w->buf[0, len); w->buf[len, len + rest) already belongs to
 * the next chunk.  Give it a slot in the file's content list, then hash and
 * store it here, or hand both to another worker (for a chunk of at least
 * HANDOFF_MIN bytes when a spare buffer is free: the helper hashes it too,
 * so a file whose chunks are all known already, as in an incremental run,
 * still shares its work).  Afterwards w->buf (maybe another buffer) starts
 * with those `rest` bytes. */
static int emit_chunk(archiver *a, wctx *w, const file_ref *f, size_t len, size_t rest)
{
	cairn_node *node = &f->dir->entries[f->index].node;
	unsigned char *nb = NULL;
	size_t slot;
	cairn_id id;
	int r;

	if ((r = add_slot(a, node, &slot)) < 0)
		return r;
	if (len >= HANDOFF_MIN && a->spare_max && (nb = take_spare(a, len))) {
		job j;

		/* the tail first: once queued, the buffer is the job's */
		memcpy(nb, w->buf + len, rest);
		memset(&j, 0, sizeof(j));
		j.kind = JOB_BLOB;
		j.u.blob.buf = w->buf;
		j.u.blob.used = w->used;
		j.u.blob.len = len;
		j.u.blob.slot = slot;
		j.u.blob.f = *f;
		atomic_fetch_add(&f->dir->refs, 1);
		if (cairn_pool_submit(a->pool, &j, CAIRN_POOL_URGENT | CAIRN_POOL_TRY) == 0) {
			w->buf = nb;
			w->used = rest;
			return 0;
		}
		/* urgent queue full: store it here; never the last reference,
		 * the reader's file holds one */
		atomic_fetch_sub(&f->dir->refs, 1);
		fill_slot(a, f, slot, w->buf, len, &id);
		r = store_chunk(a, w->buf, len, &id, f);
		put_spare(a, w->buf, w->used, len);
		w->buf = nb;
		w->used = rest;
		return r;
	}
	fill_slot(a, f, slot, w->buf, len, &id);
	r = store_chunk(a, w->buf, len, &id, f);
	memmove(w->buf, w->buf + len, rest);
	/* the buffer now holds `rest` (< READ_STEP <= BUF_KEEP) bytes: give
	 * back what a big chunk made resident (not after every chunk: pages
	 * given back are faulted in again by the next chunk's reads) */
	if (w->used > BUF_TRIM_AT) {
		buf_trim(w->buf, w->used);
		w->used = BUF_KEEP;
	}
	return r;
}

/* Read, chunk and store one file, filling its node (content, size).  1 when
 * stored, 0 when the file could not be read (reported), negative when the
 * run stops (repository failure, interrupt). */
static int save_file(archiver *a, wctx *w, const file_ref *f)
{
	source_entry *e = &f->dir->entries[f->index];
	cairn_node *n = &e->node;
	source_reader *rd = NULL;
	cairn_chunker ch;
	size_t len = 0, scanned = 0;
	uint64_t total = 0;
	int r;

	if (!w->buf && !(w->buf = buf_new()))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory for a chunk buffer");
	if ((r = source_open(a->src, e, &rd)) < 0) {
		source_report(a->src, 1, e->path, "%s", cairn_error_message());
		return 0;
	}
	cairn_chunker_reset(&ch, &a->tables);
	for (;;) {
		size_t want = len < CHUNK_MIN ? CHUNK_MIN - len : READ_STEP;
		ssize_t got;

		if (stopped(a)) {
			r = CAIRN_ECANCELED;
			goto out;
		}
		if (want > CHUNK_MAX - len)
			want = CHUNK_MAX - len;
		got = source_read(rd, w->buf + len, want);
		if (got < 0) {
			source_report(a->src, 1, e->path, "%s", cairn_error_message());
			r = 0;
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		total += (uint64_t)got;
		if (len > w->used)
			w->used = len;
		add_bytes(a, got, e->path);
		while (scanned < len) {
			size_t rest = len - scanned;
			int cut = 0;
			size_t k = cairn_chunker_scan(&ch, w->buf + scanned, rest, &cut);

			assert(k > 0 && k <= rest);
			scanned += k;
			if (k < rest || cut) {
				if ((r = emit_chunk(a, w, f, scanned, len - scanned)) < 0)
					goto out;
				len -= scanned;
				scanned = 0;
			}
		}
		/* a chunk of CHUNK_MAX bytes is always cut */
		assert(len < CHUNK_MAX);
	}
	if (len > 0 && (r = emit_chunk(a, w, f, len, 0)) < 0)
		goto out;
	n->size = total;
	pthread_mutex_lock(&a->mu);
	if (f->dir->flags[f->index] & F_HAS_PREV)
		a->st->files_changed++;
	else
		a->st->files_new++;
	a->st->total_files_processed++;
	progress_locked(a, e->path);
	pthread_mutex_unlock(&a->mu);
	r = 1;
out:
	source_reader_close(rd);
	buf_trim(w->buf, w->used);
	if (w->used > BUF_KEEP)
		w->used = BUF_KEEP;
	if (r <= 0) {
		/* the node is not stored (its entry is left out of the tree): bytes
		 * read so far are not "processed".  Its content list stays until
		 * the directory is freed, after every helper filling a slot of it
		 * is done (each holds a reference on the directory). */
		if (total)
			add_bytes(a, -(int64_t)total, e->path);
	}
	return r;
}

/* Read and store the files of a batch, dropping their references. */
static void run_files(archiver *a, wctx *w, job *j)
{
	int r;

	for (unsigned k = 0; k < j->u.files.n; k++) {
		file_ref *f = &j->u.files.f[k];
		if (!stopped(a)) {
			r = save_file(a, w, f);
			if (r == 0)
				f->dir->flags[f->index] |= F_SKIP;
			else if (r < 0)
				set_fatal(a, r);
		}
		dir_unref(a, f->dir, &w->scratch);
	}
}

static void walk_dir_job(archiver *a, wctx *w, job *j);

/* The pool's job function.  Every reference a job holds is dropped here,
 * also when the run stops (then the work itself is skipped). */
static void run_job(void *jp, unsigned worker, void *payload)
{
	archiver *a = payload;
	job *j = jp;
	wctx *w = &a->w[worker];
	int r;

	if (j->kind == JOB_FILES) {
		run_files(a, w, j);
	} else if (j->kind == JOB_DIR) {
		walk_dir_job(a, w, j);
	} else {
		cairn_id id;

		if (!atomic_load(&a->stop)) {
			fill_slot(a, &j->u.blob.f, j->u.blob.slot, j->u.blob.buf, j->u.blob.len, &id);
			if ((r = store_chunk(a, j->u.blob.buf, j->u.blob.len, &id, &j->u.blob.f)) < 0)
				set_fatal(a, r);
		}
		put_spare(a, j->u.blob.buf, j->u.blob.used, j->u.blob.len);
		dir_unref(a, j->u.blob.f.dir, &w->scratch);
	}
}

/* --- the walk ----------------------------------------------------------- */

/* 1 if the parent's node describes this file unchanged and its blobs are
 * all still in the repository. */
static int unchanged(archiver *a, const cairn_node *prev, const cairn_node *n)
{
	unsigned ignore = a->opts->change_ignore;

	if (a->opts->force || !prev || prev->type != CAIRN_NODE_FILE)
		return 0;
	if (prev->size != n->size || cairn_time_compare(prev->mtime, n->mtime) != 0)
		return 0;
	if (!(ignore & ARCHIVER_IGNORE_INODE) && prev->inode != n->inode)
		return 0;
	if (!(ignore & ARCHIVER_IGNORE_CTIME) && cairn_time_compare(prev->ctime, n->ctime) != 0)
		return 0;
	if (prev->size > 0 && prev->n_content == 0)
		return 0;
	for (size_t i = 0; i < prev->n_content; i++)
		if (cairn_repo_has_blob(a->repo, CAIRN_BLOB_DATA, &prev->content[i]) != 1)
			return 0;
	return 1;
}

/* Submit the batch this thread is filling: the calling thread waits while
 * the queue is full; a worker, which must not wait for room, reads the
 * files itself then. */
static void flush_batch(archiver *a, wctx *w)
{
	if (w->batch.u.files.n == 0)
		return;
	if (cairn_pool_submit(a->pool, &w->batch, w->is_worker ? CAIRN_POOL_TRY : 0) != 0)
		run_files(a, w, &w->batch);
	memset(&w->batch, 0, sizeof(w->batch));
	w->batch.kind = JOB_FILES;
	w->batch_bytes = 0;
}

/* Put file `index` of d into this thread's batch (it takes a reference on d). */
static void queue_file(archiver *a, wctx *w, dir_state *d, size_t index)
{
	file_ref *f = &w->batch.u.files.f[w->batch.u.files.n++];

	atomic_fetch_add(&d->refs, 1);
	f->dir = d;
	f->index = index;
	w->batch_bytes += d->entries[index].node.size;
	if (w->batch.u.files.n == BATCH_FILES || w->batch_bytes >= BATCH_BYTES)
		flush_batch(a, w);
}

/* Load the parent's tree for a directory; a failure is a warning and means
 * "no parent" for this directory (its files are read again). */
static void load_parent(archiver *a, wctx *w, cairn_tree *out, const cairn_id *id,
	const char *path)
{
	cairn_buf *scratch = &w->scratch;
	char hex[CAIRN_ID_HEX_SIZE];

	if (!id)
		return;
	if (cairn_repo_load_blob(scratch, a->repo, CAIRN_BLOB_TREE, id) < 0 ||
		cairn_tree_decode(out, (const char *)scratch->data, scratch->len) < 0) {
		cairn_id_to_hex(hex, id);
		source_report(a->src, 0, path, "cannot load the parent's tree %.8s, reading all files: %s",
			hex, cairn_error_message());
		cairn_tree_release(out);
	}
}

/* List directory `index` of `parent` (parent NULL: the root) into a new
 * dir_state with the walker's reference (and one on the parent).  `prev` is
 * the parent snapshot's node for it (copied), or NULL.  1 and *out set; 0
 * when it cannot be listed (reported; fatal for the root: negative). */
static int list_dir(dir_state **out, archiver *a, dir_state *parent, size_t index,
	const cairn_node *prev)
{
	const source_entry *dir = parent ? &parent->entries[index] : NULL;
	dir_state *d = NULL;
	int r;

	*out = NULL;
	if (!(d = calloc(1, sizeof(*d))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if ((r = source_list(a->src, dir, &d->entries, &d->n)) < 0) {
		d->entries = NULL;
		d->n = 0;
		if (parent) {
			source_report(a->src, 1, dir->path, "%s", cairn_error_message());
			r = 0;
		}
		goto out;
	}
	if (!(d->flags = calloc(d->n ? d->n : 1, 1))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	if (prev) {
		if ((r = cairn_node_copy(&d->prev, prev)) < 0)
			goto out;
		d->has_prev = 1;
	}
	d->parent = parent;
	d->index = index;
	atomic_init(&d->refs, 1);
	if (parent)
		atomic_fetch_add(&parent->refs, 1);
	*out = d;
	d = NULL;
	r = 1;
out:
	dir_free(d);
	return r;
}

static void walk_dir(archiver *a, wctx *w, dir_state *d, const cairn_id *parent_tree);

/* List and walk subdirectory `index` of d (p: the parent snapshot's node
 * for it, psub its tree): as a job of its own when the queue has room (it
 * holds a reference on d and a copy of p), else right here. */
static void walk_subdir(archiver *a, wctx *w, dir_state *d, size_t index, const cairn_node *p,
	const cairn_id *psub)
{
	dir_state *child = NULL;
	job j;
	int r;

	memset(&j, 0, sizeof(j));
	j.kind = JOB_DIR;
	j.u.dir.parent = d;
	j.u.dir.index = index;
	if (psub) {
		j.u.dir.has_psub = 1;
		j.u.dir.psub = *psub;
	}
	if (!p || (j.u.dir.prev = calloc(1, sizeof(*j.u.dir.prev))) != NULL) {
		if (p && cairn_node_copy(j.u.dir.prev, p) < 0) {
			free(j.u.dir.prev);
			j.u.dir.prev = NULL;
		} else {
			atomic_fetch_add(&d->refs, 1);
			if (cairn_pool_submit(a->pool, &j, CAIRN_POOL_TRY) == 0)
				return;
			atomic_fetch_sub(&d->refs, 1); /* never the last: the caller holds one */
			if (j.u.dir.prev)
				cairn_node_release(j.u.dir.prev);
			free(j.u.dir.prev);
		}
	}
	if ((r = list_dir(&child, a, d, index, p)) < 0) {
		set_fatal(a, r);
		return;
	}
	if (!child) {
		d->flags[index] |= F_SKIP;
		return;
	}
	walk_dir(a, w, child, psub);
}

/* A JOB_DIR: list the directory and walk it; the files it queues are in
 * this worker's batch, submitted (or read here) before the job ends, so no
 * work waits in a worker that goes idle. */
static void walk_dir_job(archiver *a, wctx *w, job *j)
{
	dir_state *d = j->u.dir.parent, *child = NULL;
	int r;

	if (!stopped(a)) {
		if ((r = list_dir(&child, a, d, j->u.dir.index, j->u.dir.prev)) < 0)
			set_fatal(a, r);
		else if (!child)
			d->flags[j->u.dir.index] |= F_SKIP;
		else
			walk_dir(a, w, child, j->u.dir.has_psub ? &j->u.dir.psub : NULL);
		flush_batch(a, w);
	}
	if (j->u.dir.prev)
		cairn_node_release(j->u.dir.prev);
	free(j->u.dir.prev);
	dir_unref(a, d, &w->scratch);
}

/* Walk the listed directory d (whose parent snapshot tree is parent_tree)
 * in the calling thread (w is its state): unchanged files take the
 * parent's content, other files go into batches, subdirectories are walked
 * (walk_subdir).  Drops the walker's reference on d at the end.  Errors
 * are recorded with set_fatal. */
static void walk_dir(archiver *a, wctx *w, dir_state *d, const cairn_id *parent_tree)
{
	cairn_tree prev = CAIRN_TREE_INIT;
	int r;

	load_parent(a, w, &prev, parent_tree, dir_path(d));
	for (size_t i = 0; i < d->n && !stopped(a); i++) {
		source_entry *e = &d->entries[i];
		const cairn_node *p = cairn_tree_find(&prev, e->node.name);

		if (e->node.type == CAIRN_NODE_FILE) {
			if (unchanged(a, p, &e->node)) {
				for (size_t k = 0; k < p->n_content; k++)
					if ((r = cairn_node_add_content(&e->node, &p->content[k])) < 0) {
						set_fatal(a, r);
						goto out;
					}
				pthread_mutex_lock(&a->mu);
				a->st->files_unmodified++;
				a->st->total_files_processed++;
				a->st->total_bytes_processed += e->node.size;
				progress_locked(a, e->path);
				pthread_mutex_unlock(&a->mu);
				continue;
			}
			if (p)
				d->flags[i] |= F_HAS_PREV;
			queue_file(a, w, d, i);
		} else if (e->node.type == CAIRN_NODE_DIR) {
			const cairn_id *psub = p && p->type == CAIRN_NODE_DIR && p->has_subtree
				? &p->subtree : NULL;

			walk_subdir(a, w, d, i, p, psub);
		}
	}
out:
	cairn_tree_release(&prev);
	dir_unref(a, d, &w->scratch);
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > THREADS_MAX ? THREADS_MAX : (unsigned)n;
}

int archiver_run(cairn_id *tree_out, archiver_stats *stats_out, cairn_repo *repo, source *src,
	const archiver_options *opts)
{
	archiver a;
	cairn_pool_options po = CAIRN_POOL_OPTIONS_INIT;
	source_report_fn saved_report = src->report;
	void *saved_payload = src->report_payload;
	dir_state *root = NULL;
	int r;

	memset(stats_out, 0, sizeof(*stats_out));
	memset(&a, 0, sizeof(a));
	a.repo = repo;
	a.src = src;
	a.opts = opts;
	a.st = stats_out;
	a.threads = opts->threads ? opts->threads : default_threads();
	if (a.threads > THREADS_MAX)
		a.threads = THREADS_MAX;
	a.spare_max = 2 * (a.threads - 1);
	a.handoff_max = a.spare_max * HANDOFF_PER_SPARE;
	pthread_mutex_init(&a.mu, NULL);
	pthread_mutex_init(&a.spare_mu, NULL);
	pthread_mutex_init(&a.content_mu, NULL);
	atomic_init(&a.stop, 0);
	src->report = count_report;
	src->report_payload = &a;
	if ((r = cairn_chunker_tables_init(&a.tables,
		cairn_repo_config(repo)->chunker_polynomial)) < 0)
		goto out;
	if ((a.w = calloc(a.threads + 1, sizeof(*a.w))) != NULL)
		for (unsigned i = 0; i <= a.threads; i++) {
			a.w[i].is_worker = i < a.threads;
			a.w[i].batch.kind = JOB_FILES;
		}
	if (!a.w ||
		!(a.spare = calloc(a.spare_max + a.threads + 1, sizeof(*a.spare)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	po.threads = a.threads;
	po.queue_size = QUEUE_PER_THREAD * a.threads;
	po.urgent_size = a.spare_max;
	po.job_size = sizeof(job);
	po.fn = run_job;
	po.payload = &a;
	if ((r = cairn_pool_new(&a.pool, &po)) < 0)
		goto out;

	if ((r = list_dir(&root, &a, NULL, 0, NULL)) < 0)
		goto out; /* the root listing failing is fatal */
	walk_dir(&a, &a.w[a.threads], root, opts->parent_tree);
	flush_batch(&a, &a.w[a.threads]);
	cairn_pool_wait(a.pool);

	r = 0;
	if (a.fatal)
		r = cairn_error_set(a.fatal, "%s", a.fatal_msg ? a.fatal_msg : cairn_strerror(a.fatal));
	else if (!a.root_done)
		r = cairn_error_set(CAIRN_EIO, "the root tree was not saved");
	else
		*tree_out = a.root;
out:
	cairn_pool_free(a.pool);
	src->report = saved_report;
	src->report_payload = saved_payload;
	if (a.w)
		for (unsigned i = 0; i <= a.threads; i++) {
			buf_free(a.w[i].buf);
			cairn_buf_release(&a.w[i].scratch);
		}
	free(a.w);
	for (size_t i = 0; i < a.n_spare; i++)
		buf_free(a.spare[i]);
	free(a.spare);
	free(a.fatal_msg);
	pthread_mutex_destroy(&a.mu);
	pthread_mutex_destroy(&a.spare_mu);
	pthread_mutex_destroy(&a.content_mu);
	return r;
}
