/* restore_plan.c: the data of one restore batch (see restore_plan.h) and
 * the safe reopening of its directories and files by worker threads.
 *
 * Design: flat arrays that grow by doubling, indexed by uint32 (a batch is
 * cut long before 4 G entries), two open-addressing maps (blob id -> blob,
 * pack id -> pack) keyed by the ids' first bytes, which are SHA-256 output
 * and so already uniform.  rp_finalize sorts the uses by blob (so each
 * blob's destinations are one slice) and the blobs by (pack, offset) (so a
 * worker reads a pack front to back); packs keep the order in which the
 * walk first needed them, which lets early files complete early.
 *
 * Creating and reopening: a planned file is created by the first worker
 * that needs it, relative to its dir's verified fd, after removing what
 * is in the way (never following it), with O_EXCL | O_NOFOLLOW, and its
 * (st_dev, st_ino) recorded.  A worker never trusts a name alone.  Directories are reopened
 * from the nearest ancestor the walk holds open (at least the target) with
 * O_DIRECTORY | O_NOFOLLOW per component, files with O_NOFOLLOW, and each
 * reopened inode must be the one the walk created or opened (st_dev,
 * st_ino); a symlink, or a hard link to a file outside the target, planted
 * in between is refused (ESTALE), never written through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "restore_plan.h"

/* Make room for one more element in *arr (capacity *cap, n in use). */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *a;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > SIZE_MAX / elem || ncap > (size_t)RP_NONE)
		return cairn_error_set(CAIRN_ENOMEM, "restore plan too large");
	if (!(a = realloc(*arr, ncap * elem)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	*arr = a;
	*cap = ncap;
	return 0;
}

static int add_string(uint32_t *off_out, rp_plan *p, const char *s)
{
	size_t len = strlen(s) + 1;
	int r;

	if (p->strings.len + len > (size_t)RP_NONE)
		return cairn_error_set(CAIRN_ENOMEM, "restore plan too large");
	*off_out = (uint32_t)p->strings.len;
	if ((r = cairn_buf_append(&p->strings, s, len)) < 0)
		return r;
	return 0;
}

void rp_init(rp_plan *p)
{
	memset(p, 0, sizeof(*p));
}

void rp_release(rp_plan *p)
{
	for (size_t i = 0; i < p->n_files; i++)
		rs_meta_release(&p->files[i].meta);
	for (size_t i = 0; i < p->n_dirmeta; i++)
		rs_meta_release(&p->dirmeta[i].meta);
	cairn_buf_release(&p->strings);
	free(p->dirs);
	free(p->files);
	free(p->blobs);
	free(p->blob_map);
	free(p->packs);
	free(p->pack_map);
	free(p->uses);
	free(p->blob_order);
	free(p->links);
	free(p->dirmeta);
	rp_init(p);
}

void rp_reset(rp_plan *p)
{
	rp_release(p);
}

size_t rp_bytes(const rp_plan *p)
{
	return p->strings.cap + p->cap_dirs * sizeof(rp_dir) + p->cap_files * sizeof(rp_file) +
		p->cap_blobs * sizeof(rp_blob) + p->blob_map_cap * sizeof(uint32_t) +
		p->cap_packs * sizeof(rp_pack) + p->pack_map_cap * sizeof(uint32_t) +
		p->cap_uses * sizeof(rp_use) + p->cap_links * sizeof(rp_link) +
		p->cap_dirmeta * sizeof(rp_dirmeta) + p->xattr_bytes;
}

static size_t meta_bytes(const rs_meta *m)
{
	size_t b = m->n_xattrs * sizeof(cairn_xattr);
	for (size_t i = 0; i < m->n_xattrs; i++)
		b += strlen(m->xattrs[i].name) + 1 + m->xattrs[i].value_len;
	return b;
}

int rp_add_dir(uint32_t *idx_out, rp_plan *p, uint32_t parent, const char *path, int fd,
	uint64_t dev, uint64_t ino)
{
	const char *slash = strrchr(path, '/');
	rp_dir *d;
	int r;

	if ((r = grow((void **)&p->dirs, &p->cap_dirs, p->n_dirs, sizeof(*p->dirs))) < 0)
		return r;
	d = &p->dirs[p->n_dirs];
	d->parent = parent;
	if ((r = add_string(&d->path, p, path)) < 0)
		return r;
	d->name = d->path + (uint32_t)(slash ? (size_t)(slash + 1 - path) : 0);
	d->fd = fd;
	d->dev = dev;
	d->ino = ino;
	*idx_out = (uint32_t)p->n_dirs++;
	return 0;
}

int rp_add_file(uint32_t *idx_out, rp_plan *p, uint32_t dir, const char *name, uint64_t size,
	rs_meta *meta)
{
	rp_file *f;
	uint32_t name_off = 0;
	int r;

	if ((r = grow((void **)&p->files, &p->cap_files, p->n_files, sizeof(*p->files))) < 0 ||
	    (r = add_string(&name_off, p, name)) < 0)
		return r;
	f = &p->files[p->n_files];
	memset(f, 0, sizeof(*f));
	f->meta = *meta;
	memset(meta, 0, sizeof(*meta));
	p->xattr_bytes += meta_bytes(&f->meta);
	f->size = size;
	f->dir = dir;
	f->name = name_off;
	f->state = RP_FILE_PENDING;
	atomic_init(&f->remaining, 0);
	f->first_use = (uint32_t)p->n_uses;
	atomic_init(&f->failed, 0);
	atomic_init(&f->created, 0);
	atomic_init(&f->tail_written, 0);
	*idx_out = (uint32_t)p->n_files++;
	return 0;
}

static size_t id_hash(const cairn_id *id)
{
	uint64_t h;
	memcpy(&h, id->bytes, sizeof(h));
	return (size_t)h;
}

/* Grow an index map (values are index + 1) to hold one more, rehashing
 * with the ids found through get_id. */
static int map_grow(uint32_t **map, size_t *cap, size_t n, const void *arr, size_t elem)
{
	size_t ncap;
	uint32_t *m;

	if ((n + 1) * 2 <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 256;
	if (!(m = calloc(ncap, sizeof(*m))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (size_t i = 0; i < *cap; i++) {
		uint32_t v = (*map)[i];
		const cairn_id *id;
		size_t j;
		if (!v)
			continue;
		/* rp_blob and rp_pack both start with their id */
		id = (const cairn_id *)((const unsigned char *)arr + (size_t)(v - 1) * elem);
		for (j = id_hash(id) & (ncap - 1); m[j]; j = (j + 1) & (ncap - 1))
			;
		m[j] = v;
	}
	free(*map);
	*map = m;
	*cap = ncap;
	return 0;
}

/* The slot where id is or would go. */
static size_t map_find(const uint32_t *map, size_t cap, const void *arr, size_t elem,
	const cairn_id *id)
{
	size_t j = id_hash(id) & (cap - 1);
	for (; map[j]; j = (j + 1) & (cap - 1)) {
		const cairn_id *k = (const cairn_id *)((const unsigned char *)arr + (size_t)(map[j] - 1) * elem);
		if (cairn_id_equal(k, id))
			break;
	}
	return j;
}

static int add_pack(uint32_t *idx_out, rp_plan *p, const cairn_id *id)
{
	size_t j;
	int r;

	if ((r = map_grow(&p->pack_map, &p->pack_map_cap, p->n_packs, p->packs, sizeof(*p->packs))) < 0)
		return r;
	j = map_find(p->pack_map, p->pack_map_cap, p->packs, sizeof(*p->packs), id);
	if (p->pack_map[j]) {
		*idx_out = p->pack_map[j] - 1;
		return 0;
	}
	if ((r = grow((void **)&p->packs, &p->cap_packs, p->n_packs, sizeof(*p->packs))) < 0)
		return r;
	memset(&p->packs[p->n_packs], 0, sizeof(*p->packs));
	p->packs[p->n_packs].id = *id;
	p->pack_map[j] = (uint32_t)p->n_packs + 1;
	*idx_out = (uint32_t)p->n_packs++;
	return 0;
}

int rp_add_blob(uint32_t *idx_out, rp_plan *p, const cairn_id *id, const cairn_blob_location *loc)
{
	rp_blob *b;
	uint32_t pack;
	size_t j;
	int r;

	if ((r = map_grow(&p->blob_map, &p->blob_map_cap, p->n_blobs, p->blobs, sizeof(*p->blobs))) < 0)
		return r;
	j = map_find(p->blob_map, p->blob_map_cap, p->blobs, sizeof(*p->blobs), id);
	if (p->blob_map[j]) {
		*idx_out = p->blob_map[j] - 1;
		return 0;
	}
	if ((r = add_pack(&pack, p, &loc->pack)) < 0 ||
	    (r = grow((void **)&p->blobs, &p->cap_blobs, p->n_blobs, sizeof(*p->blobs))) < 0)
		return r;
	b = &p->blobs[p->n_blobs];
	memset(b, 0, sizeof(*b));
	b->id = *id;
	b->pack = pack;
	b->offset = loc->offset;
	b->length = loc->length;
	b->ulen = loc->uncompressed_length;
	p->packs[pack].need += loc->length;
	p->blob_map[j] = (uint32_t)p->n_blobs + 1;
	*idx_out = (uint32_t)p->n_blobs++;
	return 0;
}

int rp_add_use(rp_plan *p, uint32_t blob, uint32_t file, uint64_t off)
{
	int r;
	if ((r = grow((void **)&p->uses, &p->cap_uses, p->n_uses, sizeof(*p->uses))) < 0)
		return r;
	p->uses[p->n_uses].blob = blob;
	p->uses[p->n_uses].file = file;
	p->uses[p->n_uses].off = off;
	p->n_uses++;
	p->files[file].n_uses++;
	atomic_fetch_add_explicit(&p->files[file].remaining, 1, memory_order_relaxed);
	return 0;
}

int rp_add_link(rp_plan *p, uint32_t dir, const char *name, uint32_t first, uint64_t size)
{
	rp_link *l;
	uint32_t name_off = 0;
	int r;

	if ((r = grow((void **)&p->links, &p->cap_links, p->n_links, sizeof(*p->links))) < 0 ||
	    (r = add_string(&name_off, p, name)) < 0)
		return r;
	l = &p->links[p->n_links++];
	l->dir = dir;
	l->name = name_off;
	l->first = first;
	l->size = size;
	return 0;
}

int rp_add_dirmeta(rp_plan *p, uint32_t dir, rs_meta *meta)
{
	int r;
	if ((r = grow((void **)&p->dirmeta, &p->cap_dirmeta, p->n_dirmeta, sizeof(*p->dirmeta))) < 0)
		return r;
	p->dirmeta[p->n_dirmeta].dir = dir;
	p->dirmeta[p->n_dirmeta].meta = *meta;
	memset(meta, 0, sizeof(*meta));
	p->xattr_bytes += meta_bytes(&p->dirmeta[p->n_dirmeta].meta);
	p->n_dirmeta++;
	return 0;
}

static int cmp_use(const void *a, const void *b)
{
	const rp_use *x = a, *y = b;
	if (x->blob != y->blob)
		return x->blob < y->blob ? -1 : 1;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

typedef struct order_key {
	uint32_t pack, offset, blob;
} order_key;

static int cmp_order(const void *a, const void *b)
{
	const order_key *x = a, *y = b;
	if (x->pack != y->pack)
		return x->pack < y->pack ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->blob < y->blob ? -1 : x->blob > y->blob;
}

int rp_finalize(rp_plan *p)
{
	order_key *keys = NULL;
	int r = 0;

	if (p->n_uses)
		qsort(p->uses, p->n_uses, sizeof(*p->uses), cmp_use);
	for (size_t i = 0; i < p->n_uses; ) {
		size_t j = i;
		while (j < p->n_uses && p->uses[j].blob == p->uses[i].blob)
			j++;
		p->blobs[p->uses[i].blob].use_start = (uint32_t)i;
		p->blobs[p->uses[i].blob].n_uses = (uint32_t)(j - i);
		i = j;
	}
	free(p->blob_order);
	p->blob_order = NULL;
	if (!p->n_blobs)
		goto out;
	if (!(keys = malloc(p->n_blobs * sizeof(*keys))) ||
	    !(p->blob_order = malloc(p->n_blobs * sizeof(*p->blob_order)))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < p->n_blobs; i++) {
		keys[i].pack = p->blobs[i].pack;
		keys[i].offset = p->blobs[i].offset;
		keys[i].blob = (uint32_t)i;
	}
	qsort(keys, p->n_blobs, sizeof(*keys), cmp_order);
	for (size_t i = 0; i < p->n_blobs; i++) {
		rp_pack *pk = &p->packs[keys[i].pack];
		p->blob_order[i] = keys[i].blob;
		if (i == 0 || keys[i - 1].pack != keys[i].pack)
			pk->first = (uint32_t)i;
		pk->n++;
	}
out:
	free(keys);
	return r;
}

int rp_dir_child_path(cairn_buf *out, const rp_plan *p, uint32_t dir, const char *name)
{
	cairn_buf_clear(out);
	if (cairn_buf_puts(out, rp_str(p, p->dirs[dir].path)) < 0 || cairn_buf_append(out, "/", 1) < 0 ||
	    cairn_buf_puts(out, name) < 0 || !cairn_buf_cstr(out))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	return 0;
}

int rp_file_path(cairn_buf *out, const rp_plan *p, uint32_t file)
{
	return rp_dir_child_path(out, p, p->files[file].dir, rp_str(p, p->files[file].name));
}

/* ---- reopening, per-thread fd cache ---- */

void rp_fdcache_init(rp_fdcache *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < RP_CACHE_DIRS; i++)
		c->dirs[i].key = RP_NONE;
	for (size_t i = 0; i < RP_CACHE_FILES; i++)
		c->files[i].key = RP_NONE;
}

void rp_fdcache_release(rp_fdcache *c)
{
	for (size_t i = 0; i < RP_CACHE_DIRS; i++)
		if (c->dirs[i].key != RP_NONE)
			close(c->dirs[i].fd);
	for (size_t i = 0; i < RP_CACHE_FILES; i++)
		if (c->files[i].key != RP_NONE)
			close(c->files[i].fd);
	rp_fdcache_init(c);
}

static int slot_get(rp_fdcache *c, rp_fdslot *slots, size_t n, uint32_t key)
{
	for (size_t i = 0; i < n; i++)
		if (slots[i].key == key) {
			slots[i].tick = ++c->tick;
			return slots[i].fd;
		}
	return -1;
}

/* Put fd in the least recently used slot, closing what was there. */
static void slot_put(rp_fdcache *c, rp_fdslot *slots, size_t n, uint32_t key, int fd)
{
	size_t lru = 0;
	for (size_t i = 0; i < n; i++) {
		if (slots[i].key == RP_NONE) {
			lru = i;
			break;
		}
		if (slots[i].tick < slots[lru].tick)
			lru = i;
	}
	if (slots[lru].key != RP_NONE)
		close(slots[lru].fd);
	slots[lru].key = key;
	slots[lru].fd = fd;
	slots[lru].tick = ++c->tick;
}

int rp_fdcache_close_file(rp_fdcache *c, uint32_t file)
{
	for (size_t i = 0; i < RP_CACHE_FILES; i++)
		if (c->files[i].key == file) {
			int r = close(c->files[i].fd);
			c->files[i].key = RP_NONE;
			return r;
		}
	return 0;
}

/* fd must be (dev, ino); else it is closed and errno is ESTALE. */
static int check_identity(int fd, uint64_t dev, uint64_t ino, mode_t type)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino || (st.st_mode & S_IFMT) != type) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

int rp_open_dir(rp_fdcache *c, const rp_plan *p, uint32_t dir)
{
	const rp_dir *d = &p->dirs[dir];
	int pfd, fd;

	if (d->fd >= 0)
		return d->fd;
	if ((fd = slot_get(c, c->dirs, RP_CACHE_DIRS, dir)) >= 0)
		return fd;
	if (d->parent == RP_NONE) {
		errno = EBADF; /* the target is always open: a bug */
		return -1;
	}
	if ((pfd = rp_open_dir(c, p, d->parent)) < 0)
		return -1;
	fd = openat(pfd, rp_str(p, d->name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			errno = ESTALE;
		return -1;
	}
	if ((fd = check_identity(fd, d->dev, d->ino, S_IFDIR)) < 0)
		return -1;
	slot_put(c, c->dirs, RP_CACHE_DIRS, dir, fd);
	return fd;
}

int rp_open_file_ro(rp_fdcache *c, const rp_plan *p, uint32_t file)
{
	const rp_file *f = &p->files[file];
	struct stat st;
	int dfd, fd;

	if ((fd = slot_get(c, c->files, RP_CACHE_FILES, file)) >= 0)
		return fd;
	if ((dfd = rp_open_dir(c, p, f->dir)) < 0)
		return -1;
	fd = openat(dfd, rp_str(p, f->name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL; /* not a regular file */
		return -1;
	}
	slot_put(c, c->files, RP_CACHE_FILES, file, fd);
	return fd;
}

int rp_open_file(rp_fdcache *c, const rp_plan *p, uint32_t file)
{
	const rp_file *f = &p->files[file];
	int dfd, fd;

	if ((fd = slot_get(c, c->files, RP_CACHE_FILES, file)) >= 0)
		return fd;
	if ((dfd = rp_open_dir(c, p, f->dir)) < 0)
		return -1;
	fd = openat(dfd, rp_str(p, f->name), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			errno = ESTALE;
		return -1;
	}
	if ((fd = check_identity(fd, f->dev, f->ino, S_IFREG)) < 0)
		return -1;
	slot_put(c, c->files, RP_CACHE_FILES, file, fd);
	return fd;
}

/* The permission bits to create a file with.  Normally 0600, so nobody
 * else can use it before it is finished.  When its final bits give group
 * and others the same access, and others nothing the owner lacks (0644,
 * 0755, 0600, 0444, ...), the final bits without group/other write and
 * with owner write (a worker may reopen it for writing) do no harm
 * earlier: whatever user is not the owner gets the same access now as
 * later, whoever the final group is.  Then the finished file usually has
 * its mode already (the umask permitting), and rs_metadata skips the
 * fchmod: one syscall less per file (3% of the CPU time of restoring
 * 100,000 small files).  Special bits always wait for the fchmod. */
static mode_t create_mode(const rs_meta *m)
{
	mode_t mode = cairn_mode_to_posix(m->mode) & 0777;
	mode_t u = (mode >> 6) & 7, g = (mode >> 3) & 7, o = mode & 7;

	if (g != o || (o & ~u))
		return 0600;
	return (mode & 0755) | 0200;
}

int rp_create_file(rp_fdcache *c, rs_ctx *ctx, rp_plan *p, uint32_t file, const char *path,
	int *reported)
{
	rp_file *f = &p->files[file];
	mode_t mode = create_mode(&f->meta);
	struct stat st;
	int dfd, fd;

	*reported = 0;
	if ((dfd = rp_open_dir(c, p, f->dir)) < 0)
		return -1;
	/* Usually nothing is there: try first, clear the way only on EEXIST
	 * (O_CREAT | O_EXCL fails on any entry, a symlink included). */
	fd = openat(dfd, rp_str(p, f->name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0 && errno == EEXIST) {
		if (rs_clear_entry(ctx, dfd, rp_str(p, f->name), path) < 0) {
			*reported = 1;
			return -1;
		}
		fd = openat(dfd, rp_str(p, f->name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			mode);
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		int err = errno;
		close(fd);
		(void)unlinkat(dfd, rp_str(p, f->name), 0);
		errno = err;
		return -1;
	}
	f->dev = (uint64_t)st.st_dev;
	f->ino = (uint64_t)st.st_ino;
	f->have.uid = (uint32_t)st.st_uid;
	f->have.gid = (uint32_t)st.st_gid;
	f->have.mode = (uint32_t)(st.st_mode & 07777);
	slot_put(c, c->files, RP_CACHE_FILES, file, fd);
	return fd;
}
