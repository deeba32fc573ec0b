/* archiver.c: the backup walk.  It takes entries from a source (source.h),
 * cuts file contents with restic's chunker, stores data and tree blobs with
 * cairn_repo_save_blob, and returns the root tree id (see archiver.h).
 *
 * Order: depth-first in name order.  A directory's tree blob is saved after
 * all of its children, so a tree never names a blob that was not saved
 * before it; the caller flushes and only then writes the snapshot.
 *
 * Files: read in READ_SIZE blocks into one read buffer; the current chunk
 * accumulates in one chunk buffer of at most CAIRN_CHUNKER_MAX_SIZE bytes,
 * so memory stays the same whatever the file size.  A file node's size is
 * the number of bytes actually read, which is always the sum of its chunk
 * lengths (restore relies on this).  Zero runs need no special case: they
 * chunk into identical blobs that dedupe.
 *
 * Incremental: the parent snapshot's tree is walked beside the source, one
 * directory at a time (the parent's tree blob for that directory is loaded
 * when the directory is entered and dropped when it is left).  A regular
 * file whose type, size, mtime, ctime and inode equal the parent's node,
 * and all of whose blobs are in the index, takes the parent's content list
 * without being read (unless `force`).
 *
 * Errors: an entry the source cannot list or read is reported and left out
 * of its tree (restic stores nothing for it either); a repository failure
 * ends the run.  Counters follow restic's backup summary.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "archiver.h"

#define READ_SIZE ((size_t)1 << 20)

typedef struct archiver {
	cairn_repo *repo;
	source *src;
	const archiver_options *opts;
	archiver_stats *st;
	cairn_chunker_tables tables;
	unsigned char *rbuf;  /* READ_SIZE */
	unsigned char *chunk; /* CAIRN_CHUNKER_MAX_SIZE */
	cairn_buf scratch;    /* tree encode / parent tree load */
} archiver;

/* The report callback installed on the source during a run: count, then
 * pass on to the caller's callback. */
static void count_report(int is_error, const char *path, const char *message, void *payload)
{
	archiver *a = payload;
	if (is_error)
		a->st->errors++;
	else
		a->st->warnings++;
	if (a->opts->report)
		a->opts->report(is_error, path, message, a->opts->payload);
}

static int interrupted(const archiver *a)
{
	return a->opts->interrupted && a->opts->interrupted(a->opts->payload);
}

static void progress(const archiver *a, const char *path)
{
	if (a->opts->progress)
		a->opts->progress(a->st, path, a->opts->payload);
}

/* Store the current chunk and append its id to the node. */
static int save_chunk(archiver *a, cairn_node *node, size_t len)
{
	cairn_id id;
	int added = 0;

	CAIRN_TRY(cairn_repo_save_blob(&id, &added, a->repo, CAIRN_BLOB_DATA, a->chunk, len, NULL));
	if (added) {
		a->st->data_blobs++;
		a->st->data_added += len;
	}
	return cairn_node_add_content(node, &id);
}

/* 1 if the parent's node describes this file unchanged and its blobs are
 * all still in the repository. */
static int unchanged(archiver *a, const cairn_node *prev, const cairn_node *n)
{
	if (a->opts->force || !prev || prev->type != CAIRN_NODE_FILE)
		return 0;
	if (prev->size != n->size || prev->inode != n->inode ||
		cairn_time_compare(prev->mtime, n->mtime) != 0 ||
		cairn_time_compare(prev->ctime, n->ctime) != 0)
		return 0;
	if (prev->size > 0 && prev->n_content == 0)
		return 0;
	for (size_t i = 0; i < prev->n_content; i++)
		if (cairn_repo_has_blob(a->repo, CAIRN_BLOB_DATA, &prev->content[i]) != 1)
			return 0;
	return 1;
}

/* Fill the file node in e (content, size).  1 when stored, 0 when the file
 * could not be read (reported), negative on a repository failure or
 * CAIRN_ECANCELED. */
static int save_file(archiver *a, source_entry *e, const cairn_node *prev)
{
	cairn_node *n = &e->node;
	source_reader *rd = NULL;
	cairn_chunker ch;
	size_t chunk_len = 0;
	uint64_t total = 0;
	int r;

	if (unchanged(a, prev, n)) {
		for (size_t i = 0; i < prev->n_content; i++)
			if ((r = cairn_node_add_content(n, &prev->content[i])) < 0)
				return r;
		a->st->files_unmodified++;
		a->st->total_files_processed++;
		a->st->total_bytes_processed += n->size;
		progress(a, e->path);
		return 1;
	}

	if ((r = source_open(a->src, e, &rd)) < 0) {
		source_report(a->src, 1, e->path, "%s", cairn_error_message());
		return 0;
	}
	cairn_chunker_reset(&ch, &a->tables);
	for (;;) {
		ssize_t got;
		size_t off = 0;

		if (interrupted(a)) {
			r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
			goto out;
		}
		got = source_read(rd, a->rbuf, READ_SIZE);
		if (got < 0) {
			source_report(a->src, 1, e->path, "%s", cairn_error_message());
			r = 0;
			goto out;
		}
		if (got == 0)
			break;
		total += (uint64_t)got;
		a->st->total_bytes_processed += (uint64_t)got;
		while (off < (size_t)got) {
			size_t rest = (size_t)got - off;
			int cut = 0;
			size_t k = cairn_chunker_scan(&ch, a->rbuf + off, rest, &cut);

			assert(k > 0 && k <= rest);
			assert(chunk_len + k <= CAIRN_CHUNKER_MAX_SIZE);
			memcpy(a->chunk + chunk_len, a->rbuf + off, k);
			chunk_len += k;
			off += k;
			if (k < rest || cut) {
				if ((r = save_chunk(a, n, chunk_len)) < 0)
					goto out;
				chunk_len = 0;
			}
		}
		progress(a, e->path);
	}
	if (chunk_len > 0 && (r = save_chunk(a, n, chunk_len)) < 0)
		goto out;
	n->size = total;
	if (prev)
		a->st->files_changed++;
	else
		a->st->files_new++;
	a->st->total_files_processed++;
	r = 1;
out:
	source_reader_close(rd);
	if (r <= 0) {
		/* the node is not stored: bytes read so far are not "processed" */
		a->st->total_bytes_processed -= total;
		free(n->content);
		n->content = NULL;
		n->n_content = 0;
	}
	return r;
}

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

/* Load the parent's tree for a directory; a failure is a warning and means
 * "no parent" for this directory (its files are read again). */
static void load_parent(archiver *a, cairn_tree *out, const cairn_id *id, const char *path)
{
	char hex[CAIRN_ID_HEX_SIZE];

	if (!id)
		return;
	if (cairn_repo_load_blob(&a->scratch, a->repo, CAIRN_BLOB_TREE, id) < 0 ||
		cairn_tree_decode(out, (const char *)a->scratch.data, a->scratch.len) < 0) {
		cairn_id_to_hex(hex, id);
		source_report(a->src, 0, path, "cannot load the parent's tree %.8s, reading all files: %s",
			hex, cairn_error_message());
		cairn_tree_release(out);
	}
}

/* Store directory `dir` (NULL: the root) and put its tree id in *tree_out.
 * 1 when stored, 0 when it could not be listed (reported), negative on a
 * repository failure or CAIRN_ECANCELED. */
static int save_dir(archiver *a, const source_entry *dir, const cairn_id *parent_tree,
	cairn_id *tree_out)
{
	const char *dpath = dir ? dir->path : "/";
	source_entry *entries = NULL;
	size_t n = 0;
	cairn_tree prev = CAIRN_TREE_INIT, tree = CAIRN_TREE_INIT;
	int added = 0, r;

	if ((r = source_list(a->src, dir, &entries, &n)) < 0) {
		if (!dir)
			goto out; /* the root listing failing is fatal */
		source_report(a->src, 1, dpath, "%s", cairn_error_message());
		r = 0;
		goto out;
	}
	load_parent(a, &prev, parent_tree, dpath);
	for (size_t i = 0; i < n; i++) {
		source_entry *e = &entries[i];
		const cairn_node *p = cairn_tree_find(&prev, e->node.name);

		if (interrupted(a)) {
			r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
			goto out;
		}
		if (e->node.type == CAIRN_NODE_FILE) {
			if ((r = save_file(a, e, p)) < 0)
				goto out;
			if (r == 0)
				continue;
		} else if (e->node.type == CAIRN_NODE_DIR) {
			const cairn_id *psub = p && p->type == CAIRN_NODE_DIR && p->has_subtree
				? &p->subtree : NULL;
			if ((r = save_dir(a, e, psub, &e->node.subtree)) < 0)
				goto out;
			if (r == 0)
				continue;
			e->node.has_subtree = 1;
			if (!p)
				a->st->dirs_new++;
			else if (dir_unmodified(p, &e->node))
				a->st->dirs_unmodified++;
			else
				a->st->dirs_changed++;
		}
		if ((r = cairn_tree_add(&tree, &e->node)) < 0)
			goto out;
	}
	if ((r = cairn_tree_encode(&a->scratch, &tree)) < 0 ||
		(r = cairn_repo_save_blob(tree_out, &added, a->repo, CAIRN_BLOB_TREE,
			a->scratch.data, a->scratch.len, NULL)) < 0)
		goto out;
	if (added) {
		a->st->tree_blobs++;
		a->st->data_added += a->scratch.len;
	}
	r = 1;
out:
	source_entries_free(entries, n);
	cairn_tree_release(&prev);
	cairn_tree_release(&tree);
	return r;
}

int archiver_run(cairn_id *tree_out, archiver_stats *stats_out, cairn_repo *repo, source *src,
	const archiver_options *opts)
{
	archiver a;
	source_report_fn saved_report = src->report;
	void *saved_payload = src->report_payload;
	int r;

	memset(stats_out, 0, sizeof(*stats_out));
	memset(&a, 0, sizeof(a));
	a.repo = repo;
	a.src = src;
	a.opts = opts;
	a.st = stats_out;
	src->report = count_report;
	src->report_payload = &a;
	if ((r = cairn_chunker_tables_init(&a.tables,
		cairn_repo_config(repo)->chunker_polynomial)) < 0)
		goto out;
	if (!(a.rbuf = malloc(READ_SIZE)) || !(a.chunk = malloc(CAIRN_CHUNKER_MAX_SIZE))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	r = save_dir(&a, NULL, opts->parent_tree, tree_out);
	if (r > 0)
		r = 0;
out:
	src->report = saved_report;
	src->report_payload = saved_payload;
	free(a.rbuf);
	free(a.chunk);
	cairn_buf_release(&a.scratch);
	return r;
}
