/* restore_verify.c: the threads of --verify (see restore_verify.h).
 *
 * Design: the plan's files are cut into units of at most RV_UNIT_BYTES of
 * content (a contiguous run of one file's uses); workers take units through
 * one atomic counter.  Each unit opens its file by (dir fd, name) with
 * O_NOFOLLOW (restore_plan.c), checks it is a regular file of the node's
 * size, reads each blob's range with pread and compares its SHA-256 with
 * the blob id.  A file's `remaining` counts its units; the thread that
 * finishes the last one counts the file as verified unless `failed` was
 * set, and `failed` is set by atomic exchange so that each file is
 * reported once.
 *
 * Ownership: each worker owns its read buffer (one blob, <= 8 MiB with
 * restic's chunker) and its fd cache; fds are closed after each unit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore_verify.h"

typedef struct rv_unit {
	uint32_t file, start, end; /* uses [start, end) */
} rv_unit;

typedef struct rv_shared {
	rs_ctx *c;
	rp_plan *p;
	rv_unit *units;
	size_t n_units;
	atomic_size_t next;
	atomic_int stop;
	atomic_int nomem;
} rv_shared;

typedef struct rv_worker {
	rv_shared *sh;
	pthread_t thread;
	int started;
	rp_fdcache cache;
	cairn_buf buf, path;
} rv_worker;

static void fail_file(rv_worker *w, uint32_t fi, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The first failure of a file is reported; later ones are not. */
static void fail_file(rv_worker *w, uint32_t fi, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (atomic_exchange(&w->sh->p->files[fi].failed, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rp_file_path(&w->path, w->sh->p, fi) < 0) {
		atomic_store(&w->sh->nomem, 1);
		return;
	}
	rs_report(w->sh->c, (const char *)w->path.data, "%s", msg);
}

static const char *disk_path(rv_worker *w, uint32_t fi)
{
	if (rp_file_path(&w->path, w->sh->p, fi) < 0) {
		atomic_store(&w->sh->nomem, 1);
		return "?";
	}
	return (const char *)w->path.data;
}

static void verify_unit(rv_worker *w, const rv_unit *u)
{
	rv_shared *sh = w->sh;
	rp_plan *p = sh->p;
	rp_file *f = &p->files[u->file];
	struct stat st;
	int fd;

	if (atomic_load(&f->failed))
		goto done;
	if ((fd = rp_open_file_ro(&w->cache, p, u->file)) < 0) {
		int err = errno;
		const char *path = disk_path(w, u->file);
		if (err == EINVAL)
			fail_file(w, u->file, "'%.*s%s' is not a regular file", sh->c->target_len,
				sh->c->target, path);
		else if (err == ESTALE)
			fail_file(w, u->file, "cannot open '%.*s%s': its directory was replaced",
				sh->c->target_len, sh->c->target, path);
		else
			fail_file(w, u->file, "cannot open '%.*s%s': %s", sh->c->target_len,
				sh->c->target, path, strerror(err));
		goto done;
	}
	if (fstat(fd, &st) < 0) {
		int err = errno;
		const char *path = disk_path(w, u->file);
		fail_file(w, u->file, "cannot stat '%.*s%s': %s", sh->c->target_len, sh->c->target,
			path, strerror(err));
		goto close;
	}
	if ((uint64_t)st.st_size != f->size) {
		fail_file(w, u->file, "size is %lld, want %llu", (long long)st.st_size,
			(unsigned long long)f->size);
		goto close;
	}
	for (uint32_t k = u->start; k < u->end; k++) {
		const rp_use *use = &p->uses[k];
		const rp_blob *b = &p->blobs[use->blob];
		size_t len = b->ulen ? b->ulen : (size_t)b->length - 32, done = 0;
		cairn_id got;

		if (cli_interrupted()) {
			atomic_store(&sh->stop, 1);
			goto close;
		}
		if (use->off + len > f->size)
			break; /* content longer than size: restore truncated it, nothing to hash */
		cairn_buf_clear(&w->buf);
		if (cairn_buf_reserve(&w->buf, len) < 0) {
			atomic_store(&sh->nomem, 1);
			goto close;
		}
		while (done < len) {
			ssize_t n = pread(fd, w->buf.data + done, len - done, (off_t)(use->off + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int err = n < 0 ? errno : EIO;
				const char *path = disk_path(w, u->file);
				fail_file(w, u->file, "cannot read '%.*s%s': %s", sh->c->target_len,
					sh->c->target, path, strerror(err));
				goto close;
			}
			done += (size_t)n;
		}
		cairn_sha256(&got, w->buf.data, len);
		if (!cairn_id_equal(&got, &b->id)) {
			char hex[CAIRN_ID_HEX_SIZE];
			cairn_id_to_hex(hex, &b->id);
			fail_file(w, u->file, "content at offset %llu does not match blob %s",
				(unsigned long long)use->off, hex);
			goto close;
		}
	}
close:
	(void)rp_fdcache_close_file(&w->cache, u->file);
done:
	if (atomic_fetch_sub_explicit(&f->remaining, 1, memory_order_acq_rel) == 1 &&
	    !atomic_load(&f->failed) && !atomic_load(&sh->stop))
		rs_add(&sh->c->st->files_verified, 1);
}

static void *worker_main(void *arg)
{
	rv_worker *w = arg;
	rv_shared *sh = w->sh;

	while (!atomic_load(&sh->stop) && !atomic_load(&sh->nomem)) {
		size_t i = atomic_fetch_add(&sh->next, 1);
		if (i >= sh->n_units)
			break;
		verify_unit(w, &sh->units[i]);
	}
	rp_fdcache_release(&w->cache);
	return NULL;
}

/* Cut every file into units; sets each file's remaining to its count. */
static int make_units(rv_shared *sh)
{
	rp_plan *p = sh->p;
	size_t cap = p->n_files + 16, n = 0;
	rv_unit *units = malloc(cap * sizeof(*units));

	if (!units)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_files; i++) {
		rp_file *f = &p->files[i];
		uint32_t k = f->first_use, end = f->first_use + f->n_uses, count = 0;
		do {
			uint64_t bytes = 0;
			uint32_t start = k;
			while (k < end && (k == start || bytes < RV_UNIT_BYTES)) {
				const rp_blob *b = &p->blobs[p->uses[k].blob];
				bytes += b->ulen ? b->ulen : b->length - 32u;
				k++;
			}
			if (n == cap) {
				rv_unit *u = realloc(units, cap * 2 * sizeof(*units));
				if (!u) {
					free(units);
					return cairn_error_set(CAIRN_ENOMEM, "out of memory");
				}
				units = u;
				cap *= 2;
			}
			units[n].file = (uint32_t)i;
			units[n].start = start;
			units[n].end = k;
			n++;
			count++;
		} while (k < end);
		atomic_store(&f->remaining, count);
	}
	sh->units = units;
	sh->n_units = n;
	return 0;
}

int rv_run(rs_ctx *c, rp_plan *p, int threads)
{
	rv_shared sh;
	rv_worker *w = NULL;
	int n = threads < 1 ? 1 : threads, r;

	memset(&sh, 0, sizeof(sh));
	sh.c = c;
	sh.p = p;
	atomic_init(&sh.next, 0);
	atomic_init(&sh.stop, 0);
	atomic_init(&sh.nomem, 0);
	if ((r = make_units(&sh)) < 0)
		goto out;
	if ((size_t)n > sh.n_units)
		n = sh.n_units ? (int)sh.n_units : 1;
	if (!(w = calloc((size_t)n, sizeof(*w)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		w[i].sh = &sh;
		rp_fdcache_init(&w[i].cache);
		if (i > 0 && pthread_create(&w[i].thread, NULL, worker_main, &w[i]) == 0)
			w[i].started = 1;
	}
	worker_main(&w[0]); /* this thread works too; progress is counted, not drawn */
	for (int i = 1; i < n; i++)
		if (w[i].started)
			pthread_join(w[i].thread, NULL);
	rs_progress(c);
	if (atomic_load(&sh.nomem))
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
	else if (atomic_load(&sh.stop) || cli_interrupted())
		r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
out:
	if (w)
		for (int i = 0; i < n; i++) {
			rp_fdcache_release(&w[i].cache);
			cairn_buf_release(&w[i].buf);
			cairn_buf_release(&w[i].path);
		}
	free(w);
	free(sh.units);
	return r;
}
