/* checker.c: the repository checker behind `cairn check` (see checker.h).
 *
 * Phases, in restic's order:
 *  1. "load indexes": every file in index/ is loaded by name through
 *     cairn_repo_load_unpacked (SHA-256 of the stored bytes = name, MAC,
 *     decoding) and parsed.  A file that fails is an error naming it; its
 *     entries are not used (a file is parsed completely before any of its
 *     entries is taken).  The entries of the others go into a private
 *     cairn_index (blob lookups) and into a per-pack entry list (sizes,
 *     header comparison).
 *  2. "check all packs": every pack the backend lists is matched with the
 *     index: a pack in no index is a hint; a pack the index names that is not
 *     there is an error; a pack whose size differs from the size its index
 *     entries imply (cairn_pack_expected_size) is an error.
 *  3. "check snapshots, trees and blobs": every snapshot file is loaded by
 *     name; from each root tree the trees are walked depth first, each tree
 *     visited once (a set of seen tree ids).  A tree must be in the index as
 *     a tree blob, load and verify (MAC, decompression, SHA-256) and decode;
 *     every content blob of a file must be in the index as data, every
 *     subtree as tree.
 *  4. "read all data" (read_data only): every pack that the index names and
 *     the backend has (or the chosen subset of them) is read whole by a few
 *     threads; its SHA-256 must equal
 *     its name, its header must parse and match the index entries exactly
 *     (type, id, offset, length, uncompressed length) in both directions,
 *     and every blob must decode.
 *
 * Invariants: a pack_info exists for every pack named by a readable index
 * file, with its entries sorted by offset and exact duplicates (a pack
 * listed by several index files) removed; the reporting callback is only
 * ever called with c->mu held, so calls never overlap; worker threads share
 * only the job counter and the result counts, both under c->mu.  Messages
 * name packs by their path in the repository ("data/ab/ab12..."), index and
 * snapshot files by "index/<id>" and "snapshots/<id>", blobs by full id.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checker.h"

/* ---- a map from ids to numbers (open addressing, linear probing) ---- */

typedef struct idmap {
	cairn_id *keys;
	size_t *vals;   /* value + 1; 0 marks an empty slot */
	size_t cap, n;  /* cap is 0 or a power of two */
} idmap;

static size_t idmap_slot(const idmap *m, const cairn_id *id)
{
	uint64_t h;
	memcpy(&h, id->bytes, sizeof(h));
	return (size_t)h & (m->cap - 1);
}

/* 1 and *val_out set when present, else 0. */
static int idmap_get(const idmap *m, const cairn_id *id, size_t *val_out)
{
	if (m->cap == 0)
		return 0;
	for (size_t i = idmap_slot(m, id);; i = (i + 1) & (m->cap - 1)) {
		if (m->vals[i] == 0)
			return 0;
		if (cairn_id_equal(&m->keys[i], id)) {
			if (val_out)
				*val_out = m->vals[i] - 1;
			return 1;
		}
	}
}

static int idmap_grow(idmap *m)
{
	idmap bigger = { NULL, NULL, m->cap ? m->cap * 2 : 1024, 0 };

	bigger.keys = malloc(bigger.cap * sizeof(*bigger.keys));
	bigger.vals = calloc(bigger.cap, sizeof(*bigger.vals));
	if (!bigger.keys || !bigger.vals) {
		free(bigger.keys);
		free(bigger.vals);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory for a set of %zu ids", bigger.cap);
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;
		if (m->vals[i] == 0)
			continue;
		for (j = idmap_slot(&bigger, &m->keys[i]); bigger.vals[j]; j = (j + 1) & (bigger.cap - 1))
			;
		bigger.keys[j] = m->keys[i];
		bigger.vals[j] = m->vals[i];
	}
	bigger.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = bigger;
	return 0;
}

/* Insert id -> val unless present.  1 when inserted, 0 when it was there
 * (the old value kept), <0 on allocation failure. */
static int idmap_put(idmap *m, const cairn_id *id, size_t val)
{
	size_t i;

	if (idmap_get(m, id, NULL))
		return 0;
	if ((m->n + 1) * 10 > m->cap * 7)
		CAIRN_TRY(idmap_grow(m));
	for (i = idmap_slot(m, id); m->vals[i]; i = (i + 1) & (m->cap - 1))
		;
	m->keys[i] = *id;
	m->vals[i] = val + 1;
	m->n++;
	return 1;
}

static void idmap_release(idmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- growable arrays ---- */

/* Make room for one more element of `size` bytes in *arr (n used, *cap allocated). */
static int grow_array(void **arr, size_t *cap, size_t n, size_t size)
{
	void *bigger;
	size_t new_cap;

	if (n < *cap)
		return 0;
	new_cap = *cap ? *cap * 2 : 16;
	bigger = realloc(*arr, new_cap * size);
	if (!bigger)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	*arr = bigger;
	*cap = new_cap;
	return 0;
}

/* ---- state ---- */

typedef struct pack_info {
	cairn_id id;
	cairn_pack_entry *entries;  /* owned; sorted by offset after phase 1 */
	size_t n, cap;
	size_t n_index_files;       /* index files that list it */
	size_t last_index_file;     /* number of the index file that added entries last, + 1 */
	int listed;                 /* the backend has it */
	uint64_t size;              /* its size in the backend when listed */
} pack_info;

typedef struct tree_job {
	cairn_id tree;
	size_t snapshot;            /* position in c->snapshot_ids */
} tree_job;

typedef struct checker {
	cairn_repo *repo;
	cairn_backend *be;
	const cairn_key *key;
	const checker_options *opts;
	checker_result *res;

	pthread_mutex_t mu;         /* guards the callback, res counts and the read job counter */
	char msg[1024];

	cairn_index *index;         /* (type, blob) -> first location, from readable index files */
	pack_info *packs;
	size_t n_packs, packs_cap;
	idmap pack_map;             /* pack id -> position in packs */

	cairn_id *snapshot_ids;
	size_t n_snapshot_ids;

	/* read_data */
	size_t *read_list;          /* positions in packs of the packs to read */
	size_t n_read, next_read, done_read;
	atomic_int stop;            /* set once interrupted; read by every thread */
} checker;

/* Report an event; takes c->mu. */
static void report_v(checker *c, checker_event ev, uint64_t done, uint64_t total,
	const char *fmt, va_list ap)
{
	pthread_mutex_lock(&c->mu);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	if (ev == CHECKER_ERROR)
		c->res->errors++;
	else if (ev == CHECKER_HINT)
		c->res->hints++;
	if (c->opts->report)
		c->opts->report(ev, c->msg, done, total, c->opts->payload);
	pthread_mutex_unlock(&c->mu);
}

static void __attribute__((format(printf, 3, 4)))
report(checker *c, checker_event ev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report_v(c, ev, 0, 0, fmt, ap);
	va_end(ap);
}

static void progress(checker *c, uint64_t done, uint64_t total, const char *unit)
{
	pthread_mutex_lock(&c->mu);
	if (c->opts->report)
		c->opts->report(CHECKER_PROGRESS, unit, done, total, c->opts->payload);
	pthread_mutex_unlock(&c->mu);
}

static int interrupted(checker *c)
{
	if (c->opts->interrupted && c->opts->interrupted()) {
		c->stop = 1;
		return 1;
	}
	return 0;
}

/* "data/ab/ab12..." into out (at least 8 + 64 + 1 bytes). */
static void pack_path(char *out, size_t size, const cairn_id *id)
{
	char hex[CAIRN_ID_HEX_SIZE];
	cairn_id_to_hex(hex, id);
	snprintf(out, size, "data/%.2s/%s", hex, hex);
}

#define PACK_PATH_SIZE (8 + CAIRN_ID_HEX_SIZE)

/* ---- listing ---- */

typedef struct id_list {
	cairn_id *ids;
	size_t n, cap;
	uint64_t *sizes;            /* parallel to ids when wanted */
	int error;
} id_list;

static int collect_cb(const char *name, uint64_t size, void *payload)
{
	id_list *l = payload;
	cairn_id id;
	size_t cap = l->cap;

	if (cairn_id_from_hex(&id, name) < 0)
		return 0; /* not an object name; the backend should not list it */
	if ((l->error = grow_array((void **)&l->ids, &l->cap, l->n, sizeof(*l->ids))) < 0)
		return 1;
	if (l->cap != cap) {
		uint64_t *s = realloc(l->sizes, l->cap * sizeof(*s));
		if (!s) {
			l->error = cairn_error_set(CAIRN_ENOMEM, "out of memory listing files");
			return 1;
		}
		l->sizes = s;
	}
	l->ids[l->n] = id;
	l->sizes[l->n] = size;
	l->n++;
	return 0;
}

static int id_compare(const void *a, const void *b)
{
	return memcmp(a, b, CAIRN_ID_SIZE);
}

/* List the objects of a type, sorted by id when no sizes are wanted. */
static int list_type(id_list *out, cairn_backend *be, cairn_file_type type, int sort)
{
	int r = cairn_backend_list(be, type, collect_cb, out);

	if (out->error < 0)
		return out->error;
	if (r < 0)
		return cairn_error_wrap(r, "cannot list the %s files", cairn_file_type_name(type));
	if (sort && out->n > 1)
		qsort(out->ids, out->n, sizeof(*out->ids), id_compare);
	return 0;
}

static void id_list_release(id_list *l)
{
	free(l->ids);
	free(l->sizes);
	memset(l, 0, sizeof(*l));
}

/* ---- phase 1: index files ---- */

typedef struct pending_entry {
	cairn_id pack;
	cairn_pack_entry entry;
} pending_entry;

typedef struct pending {
	pending_entry *items;
	size_t n, cap;
} pending;

static int pending_cb(const cairn_id *pack, const cairn_pack_entry *entry, void *payload)
{
	pending *p = payload;
	int r;

	if ((r = grow_array((void **)&p->items, &p->cap, p->n, sizeof(*p->items))) < 0)
		return r;
	p->items[p->n].pack = *pack;
	p->items[p->n].entry = *entry;
	p->n++;
	return 0;
}

/* Take the entries of index file number `file_no` (0-based). */
static int take_entries(checker *c, const pending *p, size_t file_no)
{
	int r;

	for (size_t i = 0; i < p->n; i++) {
		const pending_entry *e = &p->items[i];
		cairn_blob_location loc;
		pack_info *pi;
		size_t pos;

		if (!idmap_get(&c->pack_map, &e->pack, &pos)) {
			if ((r = grow_array((void **)&c->packs, &c->packs_cap, c->n_packs,
					sizeof(*c->packs))) < 0)
				return r;
			pos = c->n_packs;
			memset(&c->packs[pos], 0, sizeof(c->packs[pos]));
			c->packs[pos].id = e->pack;
			if ((r = idmap_put(&c->pack_map, &e->pack, pos)) < 0)
				return r;
			c->n_packs++;
		}
		pi = &c->packs[pos];
		if (pi->last_index_file != file_no + 1) {
			pi->last_index_file = file_no + 1;
			pi->n_index_files++;
		}
		if ((r = grow_array((void **)&pi->entries, &pi->cap, pi->n, sizeof(*pi->entries))) < 0)
			return r;
		pi->entries[pi->n++] = e->entry;

		loc.pack = e->pack;
		loc.offset = e->entry.offset;
		loc.length = e->entry.length;
		loc.uncompressed_length = e->entry.uncompressed_length;
		if ((r = cairn_index_add(c->index, e->entry.type, &e->entry.id, &loc)) < 0)
			return r;
	}
	return 0;
}

static int entry_compare(const void *pa, const void *pb)
{
	const cairn_pack_entry *a = pa, *b = pb;
	int d;

	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if ((d = memcmp(a->id.bytes, b->id.bytes, CAIRN_ID_SIZE)) != 0)
		return d;
	if (a->length != b->length)
		return a->length < b->length ? -1 : 1;
	if (a->uncompressed_length != b->uncompressed_length)
		return a->uncompressed_length < b->uncompressed_length ? -1 : 1;
	return 0;
}

/* Sort each pack's entries by offset and drop exact duplicates. */
static void normalise_packs(checker *c)
{
	for (size_t i = 0; i < c->n_packs; i++) {
		pack_info *pi = &c->packs[i];
		size_t w = 0;

		qsort(pi->entries, pi->n, sizeof(*pi->entries), entry_compare);
		for (size_t k = 0; k < pi->n; k++)
			if (w == 0 || entry_compare(&pi->entries[w - 1], &pi->entries[k]) != 0)
				pi->entries[w++] = pi->entries[k];
		pi->n = w;
	}
}

static int load_indexes(checker *c)
{
	id_list files = { 0 };
	pending p = { 0 };
	cairn_buf json = CAIRN_BUF_INIT;
	char hex[CAIRN_ID_HEX_SIZE];
	int r;

	report(c, CHECKER_STEP, "load indexes");
	if ((r = list_type(&files, c->be, CAIRN_FILE_INDEX, 1)) < 0)
		goto out;
	for (size_t i = 0; i < files.n; i++) {
		if (interrupted(c)) {
			r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
			goto out;
		}
		cairn_id_to_hex(hex, &files.ids[i]);
		if ((r = cairn_repo_load_unpacked(&json, c->repo, CAIRN_FILE_INDEX, &files.ids[i])) < 0) {
			if (r == CAIRN_ENOMEM)
				goto out;
			report(c, CHECKER_ERROR, "index file 'index/%s' cannot be loaded: %s", hex,
				cairn_error_message());
			continue;
		}
		p.n = 0;
		r = cairn_index_parse_json((const char *)json.data, json.len, pending_cb, &p);
		if (r < 0) {
			if (r == CAIRN_ENOMEM)
				goto out;
			report(c, CHECKER_ERROR, "index file 'index/%s' is invalid: %s", hex,
				cairn_error_message());
			continue;
		}
		if ((r = take_entries(c, &p, i)) < 0)
			goto out;
		c->res->index_files++;
	}
	normalise_packs(c);
	for (size_t i = 0; i < c->n_packs; i++)
		if (c->packs[i].n_index_files > 1) {
			cairn_id_to_hex(hex, &c->packs[i].id);
			report(c, CHECKER_HINT, "pack '%s' is contained in %zu index files", hex,
				c->packs[i].n_index_files);
		}
	r = 0;
out:
	id_list_release(&files);
	free(p.items);
	cairn_buf_release(&json);
	return r;
}

/* ---- phase 2: pack files ---- */

static int check_packs(checker *c)
{
	id_list files = { 0 };
	char path[PACK_PATH_SIZE];
	size_t unreferenced = 0;
	int r;

	report(c, CHECKER_STEP, "check all packs");
	if ((r = list_type(&files, c->be, CAIRN_FILE_PACK, 0)) < 0)
		goto out;
	for (size_t i = 0; i < files.n; i++) {
		size_t pos;
		if (!idmap_get(&c->pack_map, &files.ids[i], &pos)) {
			pack_path(path, sizeof(path), &files.ids[i]);
			report(c, CHECKER_HINT, "pack '%s' is not referenced in any index", path);
			unreferenced++;
			continue;
		}
		c->packs[pos].listed = 1;
		c->packs[pos].size = files.sizes[i];
	}
	if (unreferenced)
		report(c, CHECKER_HINT, "%zu additional files were found in the repository, which "
			"likely contain duplicate data; this is non-critical", unreferenced);

	for (size_t i = 0; i < c->n_packs; i++) {
		const pack_info *pi = &c->packs[i];
		uint64_t want;
		int types = 0;

		pack_path(path, sizeof(path), &pi->id);
		if (!pi->listed) {
			report(c, CHECKER_ERROR, "pack '%s' does not exist (named by the index)", path);
			continue;
		}
		c->res->packs++;
		want = cairn_pack_expected_size(pi->entries, pi->n);
		if (want != pi->size)
			report(c, CHECKER_ERROR, "pack '%s' has an unexpected size: %llu bytes, the index "
				"implies %llu", path, (unsigned long long)pi->size,
				(unsigned long long)want);
		for (size_t k = 0; k < pi->n; k++)
			types |= 1 << (pi->entries[k].type == CAIRN_BLOB_TREE);
		if (types == 3)
			report(c, CHECKER_HINT, "pack '%s' contains both data and tree blobs", path);
	}
	r = 0;
out:
	id_list_release(&files);
	return r;
}

/* ---- phase 3: snapshots and trees ---- */

/* Load and verify one tree blob from its pack into plain. 0 or an error
 * already reported (returned as CAIRN_ECORRUPT/ENOTFOUND), or ENOMEM. */
static int load_tree(cairn_buf *plain, cairn_buf *stored, checker *c, const tree_job *job)
{
	cairn_blob_location loc;
	cairn_handle h;
	char tree[CAIRN_ID_HEX_SIZE], snap[CAIRN_ID_HEX_SIZE], pack[CAIRN_ID_HEX_SIZE];
	char path[PACK_PATH_SIZE];
	int r;

	cairn_id_to_hex(tree, &job->tree);
	cairn_id_to_hex(snap, &c->snapshot_ids[job->snapshot]);
	if (cairn_index_lookup(&loc, c->index, CAIRN_BLOB_TREE, &job->tree) != 1) {
		report(c, CHECKER_ERROR, "tree '%s' (snapshot '%s') is not in the index", tree, snap);
		return CAIRN_ENOTFOUND;
	}
	cairn_id_to_hex(pack, &loc.pack);
	pack_path(path, sizeof(path), &loc.pack);
	cairn_handle_set(&h, CAIRN_FILE_PACK, pack);
	if ((r = cairn_backend_load(stored, c->be, &h, loc.offset, loc.length)) < 0) {
		if (r == CAIRN_ENOMEM)
			return r;
		report(c, CHECKER_ERROR, "tree '%s' (snapshot '%s') cannot be read from pack '%s': %s",
			tree, snap, path, cairn_error_message());
		return CAIRN_ECORRUPT;
	}
	if (stored->len != loc.length) {
		report(c, CHECKER_ERROR, "tree '%s' (snapshot '%s'): pack '%s' is truncated", tree,
			snap, path);
		return CAIRN_ECORRUPT;
	}
	if ((r = cairn_blob_decode(plain, c->key, stored->data, stored->len,
			loc.uncompressed_length, &job->tree)) < 0) {
		if (r == CAIRN_ENOMEM)
			return r;
		report(c, CHECKER_ERROR, "tree '%s' in pack '%s' (snapshot '%s') is damaged: %s",
			tree, path, snap, cairn_error_message());
		return CAIRN_ECORRUPT;
	}
	return 0;
}

/* Check one tree's nodes; push unseen subtrees. */
static int check_tree_nodes(checker *c, const cairn_tree *t, const tree_job *job, idmap *seen,
	tree_job **stack, size_t *n_stack, size_t *stack_cap)
{
	char tree[CAIRN_ID_HEX_SIZE], blob[CAIRN_ID_HEX_SIZE];
	int r;

	cairn_id_to_hex(tree, &job->tree);
	for (size_t i = 0; i < t->n; i++) {
		const cairn_node *node = &t->nodes[i];

		if (node->type == CAIRN_NODE_FILE) {
			for (size_t k = 0; k < node->n_content; k++) {
				c->res->data_blobs++;
				if (cairn_index_lookup(NULL, c->index, CAIRN_BLOB_DATA, &node->content[k]) == 1)
					continue;
				cairn_id_to_hex(blob, &node->content[k]);
				report(c, CHECKER_ERROR, "tree '%s': file '%s': data blob '%s' is not in the index",
					tree, node->name, blob);
			}
		} else if (node->type == CAIRN_NODE_DIR) {
			if (!node->has_subtree) {
				report(c, CHECKER_ERROR, "tree '%s': dir '%s' has no subtree", tree, node->name);
				continue;
			}
			if (idmap_get(seen, &node->subtree, NULL))
				continue;
			if ((r = grow_array((void **)stack, stack_cap, *n_stack, sizeof(**stack))) < 0)
				return r;
			(*stack)[*n_stack].tree = node->subtree;
			(*stack)[*n_stack].snapshot = job->snapshot;
			(*n_stack)++;
		}
	}
	return 0;
}

static int check_snapshots(checker *c)
{
	id_list files = { 0 };
	idmap seen = { 0 };
	tree_job *stack = NULL;
	size_t n_stack = 0, stack_cap = 0;
	cairn_buf plain = CAIRN_BUF_INIT, stored = CAIRN_BUF_INIT;
	char hex[CAIRN_ID_HEX_SIZE];
	int r;

	report(c, CHECKER_STEP, "check snapshots, trees and blobs");
	r = list_type(&files, c->be, CAIRN_FILE_SNAPSHOT, 1);
	c->snapshot_ids = files.ids; /* freed by checker_run */
	c->n_snapshot_ids = files.n;
	files.ids = NULL;
	if (r < 0)
		goto out;

	for (size_t i = 0; i < c->n_snapshot_ids; i++) {
		cairn_snapshot snap = CAIRN_SNAPSHOT_INIT;

		cairn_id_to_hex(hex, &c->snapshot_ids[i]);
		if ((r = cairn_repo_load_snapshot(&snap, c->repo, &c->snapshot_ids[i])) < 0) {
			cairn_snapshot_release(&snap);
			if (r == CAIRN_ENOMEM)
				goto out;
			report(c, CHECKER_ERROR, "snapshot file 'snapshots/%s' cannot be loaded: %s", hex,
				cairn_error_message());
			progress(c, i + 1, c->n_snapshot_ids, "snapshots");
			continue;
		}
		c->res->snapshots++;
		n_stack = 0;
		if ((r = grow_array((void **)&stack, &stack_cap, n_stack, sizeof(*stack))) < 0) {
			cairn_snapshot_release(&snap);
			goto out;
		}
		stack[n_stack].tree = snap.tree;
		stack[n_stack].snapshot = i;
		n_stack++;
		cairn_snapshot_release(&snap);

		while (n_stack > 0) {
			tree_job job = stack[--n_stack];
			cairn_tree t = CAIRN_TREE_INIT;

			if (interrupted(c)) {
				r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
				goto out;
			}
			if ((r = idmap_put(&seen, &job.tree, 0)) < 0)
				goto out;
			if (r == 0)
				continue; /* visited from another snapshot or directory */
			c->res->trees++;
			if ((r = load_tree(&plain, &stored, c, &job)) < 0) {
				if (r == CAIRN_ENOMEM)
					goto out;
				continue;
			}
			if ((r = cairn_tree_decode(&t, (const char *)plain.data, plain.len)) < 0) {
				char tree[CAIRN_ID_HEX_SIZE];
				cairn_tree_release(&t);
				if (r == CAIRN_ENOMEM)
					goto out;
				cairn_id_to_hex(tree, &job.tree);
				report(c, CHECKER_ERROR, "tree '%s' (snapshot '%s') is invalid: %s", tree, hex,
					cairn_error_message());
				continue;
			}
			r = check_tree_nodes(c, &t, &job, &seen, &stack, &n_stack, &stack_cap);
			cairn_tree_release(&t);
			if (r < 0)
				goto out;
		}
		progress(c, i + 1, c->n_snapshot_ids, "snapshots");
	}
	r = 0;
out:
	id_list_release(&files);
	idmap_release(&seen);
	free(stack);
	cairn_buf_release(&plain);
	cairn_buf_release(&stored);
	return r;
}

/* ---- phase 4: read all data ---- */

/* Compare the parsed header with the index entries (both sorted by offset
 * for the index; the header is in file order, which is offset order). */
static void compare_header(checker *c, const pack_info *pi, const char *path,
	const cairn_pack_entry *hdr, size_t n_hdr)
{
	unsigned char *matched = calloc(pi->n ? pi->n : 1, 1);
	char blob[CAIRN_ID_HEX_SIZE];

	if (!matched) {
		report(c, CHECKER_ERROR, "pack '%s': out of memory comparing the header", path);
		return;
	}
	for (size_t i = 0; i < n_hdr; i++) {
		const cairn_pack_entry *h = &hdr[i];
		size_t lo = 0, hi = pi->n;
		int found = 0;

		while (lo < hi) { /* first index entry with offset >= h->offset */
			size_t mid = lo + (hi - lo) / 2;
			if (pi->entries[mid].offset < h->offset)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t k = lo; k < pi->n && pi->entries[k].offset == h->offset; k++) {
			const cairn_pack_entry *e = &pi->entries[k];
			if (e->type == h->type && e->length == h->length &&
				e->uncompressed_length == h->uncompressed_length &&
				cairn_id_equal(&e->id, &h->id)) {
				matched[k] = 1;
				found = 1;
				break;
			}
		}
		if (!found) {
			cairn_id_to_hex(blob, &h->id);
			report(c, CHECKER_ERROR, "pack '%s': %s blob '%s' (offset %u, length %u) is not "
				"contained in the index or its position is incorrect", path,
				cairn_blob_type_name(h->type), blob, h->offset, h->length);
		}
	}
	for (size_t k = 0; k < pi->n; k++) {
		if (matched[k])
			continue;
		cairn_id_to_hex(blob, &pi->entries[k].id);
		report(c, CHECKER_ERROR, "pack '%s': the index lists %s blob '%s' at offset %u "
			"(length %u) but the pack header does not", path,
			cairn_blob_type_name(pi->entries[k].type), blob, pi->entries[k].offset,
			pi->entries[k].length);
	}
	free(matched);
}

/* Read one pack whole and verify everything in it. */
static void check_pack_data(checker *c, const pack_info *pi, cairn_buf *data, cairn_buf *plain)
{
	cairn_pack_entry *hdr = NULL;
	const cairn_pack_entry *blobs;
	size_t n_hdr = 0, n_blobs;
	cairn_handle h;
	cairn_id actual;
	char hex[CAIRN_ID_HEX_SIZE], path[PACK_PATH_SIZE], blob[CAIRN_ID_HEX_SIZE];
	int r;

	cairn_id_to_hex(hex, &pi->id);
	pack_path(path, sizeof(path), &pi->id);
	cairn_handle_set(&h, CAIRN_FILE_PACK, hex);
	if ((r = cairn_backend_load(data, c->be, &h, 0, 0)) < 0) {
		report(c, CHECKER_ERROR, "pack '%s' cannot be read: %s", path, cairn_error_message());
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->res->bytes_read += data->len;
	pthread_mutex_unlock(&c->mu);

	cairn_sha256(&actual, data->data, data->len);
	if (!cairn_id_equal(&actual, &pi->id)) {
		char got[CAIRN_ID_HEX_SIZE];
		cairn_id_to_hex(got, &actual);
		report(c, CHECKER_ERROR, "pack '%s' is damaged: its SHA-256 is %s, not its name", path,
			got);
	}

	r = cairn_pack_parse_header(&hdr, &n_hdr, c->key, data->data, data->len, data->len);
	if (r != 0) {
		report(c, CHECKER_ERROR, "pack '%s' has a damaged header: %s", path,
			r > 0 ? "its length field points before the start of the file"
			: cairn_error_message());
		hdr = NULL;
		n_hdr = 0;
		blobs = pi->entries; /* still name the blobs that fail, using the index */
		n_blobs = pi->n;
	} else {
		compare_header(c, pi, path, hdr, n_hdr);
		blobs = hdr;
		n_blobs = n_hdr;
	}

	for (size_t i = 0; i < n_blobs; i++) {
		const cairn_pack_entry *e = &blobs[i];

		if (c->stop)
			break;
		cairn_id_to_hex(blob, &e->id);
		if ((uint64_t)e->offset + e->length > data->len) {
			report(c, CHECKER_ERROR, "pack '%s': %s blob '%s' (offset %u, length %u) lies "
				"beyond the end of the file (%zu bytes)", path,
				cairn_blob_type_name(e->type), blob, e->offset, e->length, data->len);
			continue;
		}
		if ((r = cairn_blob_decode(plain, c->key, data->data + e->offset, e->length,
				e->uncompressed_length, &e->id)) < 0)
			report(c, CHECKER_ERROR, "pack '%s': %s blob '%s' at offset %u is damaged: %s",
				path, cairn_blob_type_name(e->type), blob, e->offset, cairn_error_message());
	}
	free(hdr);
}

static void *reader_main(void *arg)
{
	checker *c = arg;
	cairn_buf data = CAIRN_BUF_INIT, plain = CAIRN_BUF_INIT;

	for (;;) {
		size_t pos, done;

		pthread_mutex_lock(&c->mu);
		if (c->stop || c->next_read >= c->n_read) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		pos = c->read_list[c->next_read++];
		pthread_mutex_unlock(&c->mu);

		if (interrupted(c))
			break;
		check_pack_data(c, &c->packs[pos], &data, &plain);
		/* a pack may be large; do not keep its memory while idle */
		cairn_buf_release(&data);

		pthread_mutex_lock(&c->mu);
		done = ++c->done_read;
		c->res->packs_read++;
		pthread_mutex_unlock(&c->mu);
		progress(c, done, c->n_read, "packs");
	}
	cairn_buf_release(&data);
	cairn_buf_release(&plain);
	return NULL;
}

static int read_all_data(checker *c)
{
	pthread_t threads[16];
	unsigned n_threads = c->opts->threads, started = 0;
	int r = 0;

	if (c->opts->subset_t)
		report(c, CHECKER_STEP, "read group #%u of %u of the data packs", c->opts->subset_n,
			c->opts->subset_t);
	else if (c->opts->subset_fraction > 0 && c->opts->subset_fraction < 1)
		report(c, CHECKER_STEP, "read %g%% of the data packs", c->opts->subset_fraction * 100);
	else
		report(c, CHECKER_STEP, "read all data");
	c->read_list = malloc((c->n_packs ? c->n_packs : 1) * sizeof(*c->read_list));
	if (!c->read_list)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_packs; i++) {
		const checker_options *o = c->opts;
		if (!c->packs[i].listed) /* a missing pack was reported already */
			continue;
		if (o->subset_t && c->packs[i].id.bytes[0] % o->subset_t != o->subset_n - 1)
			continue;
		c->read_list[c->n_read++] = i;
	}
	if (c->opts->subset_fraction > 0 && c->opts->subset_fraction < 1 && c->n_read > 0) {
		/* a random sample of exactly ceil(fraction * n) packs: partial Fisher-Yates */
		size_t want = (size_t)(c->opts->subset_fraction * (double)c->n_read + 0.999999);
		for (size_t i = 0; i < want && i + 1 < c->n_read; i++) {
			uint64_t rnd = 0;
			size_t j, tmp;
			cairn_random_bytes(&rnd, sizeof(rnd));
			j = i + (size_t)(rnd % (c->n_read - i));
			tmp = c->read_list[i];
			c->read_list[i] = c->read_list[j];
			c->read_list[j] = tmp;
		}
		c->n_read = want ? want : 1;
	}

	if (n_threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n_threads = cpus > 4 ? 4 : cpus > 0 ? (unsigned)cpus : 1;
	}
	if (n_threads > sizeof(threads) / sizeof(threads[0]))
		n_threads = sizeof(threads) / sizeof(threads[0]);
	if (n_threads > c->n_read)
		n_threads = c->n_read ? (unsigned)c->n_read : 1;

	for (; started < n_threads; started++)
		if (pthread_create(&threads[started], NULL, reader_main, c) != 0)
			break;
	if (started == 0)
		reader_main(c); /* no thread could be made: read in this one */
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (c->stop)
		r = cairn_error_set(CAIRN_ECANCELED, "interrupted");
	return r;
}

/* ---- entry ---- */

int checker_run(checker_result *out, cairn_repo *repo, const checker_options *opts)
{
	static const checker_options defaults = CHECKER_OPTIONS_INIT;
	checker c;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.repo = repo;
	c.be = cairn_repo_backend(repo);
	c.key = cairn_repo_key(repo);
	c.opts = opts ? opts : &defaults;
	c.res = out;
	if (pthread_mutex_init(&c.mu, NULL) != 0)
		return cairn_error_set(CAIRN_ENOMEM, "cannot create a mutex");
	if ((r = cairn_index_new(&c.index)) < 0)
		goto out;

	if ((r = load_indexes(&c)) < 0)
		goto out;
	if ((r = check_packs(&c)) < 0)
		goto out;
	if ((r = check_snapshots(&c)) < 0)
		goto out;
	if (c.opts->read_data && (r = read_all_data(&c)) < 0)
		goto out;
	r = 0;
out:
	for (size_t i = 0; i < c.n_packs; i++)
		free(c.packs[i].entries);
	free(c.packs);
	idmap_release(&c.pack_map);
	free(c.snapshot_ids);
	free(c.read_list);
	cairn_index_free(c.index);
	pthread_mutex_destroy(&c.mu);
	return r;
}
