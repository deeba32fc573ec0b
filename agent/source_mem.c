/* source_mem.c: a source (source.h) whose files are generated in memory,
 * such as the Kubernetes manifests the node agent renders next to a
 * volume's data.
 *
 * The tree is built with source_mem_add_file/_add_dir before the archiver
 * runs and is immutable afterwards.  Every entry gets the source's time as
 * mtime/atime/ctime and the process's uid/gid; there are no inodes, link
 * counts or xattrs.  A file's bytes are a private copy, so callers may free
 * theirs.  Listings are sorted by name like any other source's.
 *
 * Invariants: names are non-empty, never "." or "..", contain no '/'; a
 * directory's children are unique by name; entry.priv points at the
 * mem_node the entry was made from (valid while the source lives) and
 * entry.path is the node's '/'-joined path from the root.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"

typedef struct mem_node {
	char *name;
	int is_dir;
	mode_t mode;           /* permission bits */
	unsigned char *data;   /* files */
	size_t len;
	struct mem_node **kids; /* dirs */
	size_t n_kids;
} mem_node;

typedef struct mem_source {
	source base; /* first member */
	mem_node root;
	cairn_time time;
} mem_source;

typedef struct mem_reader {
	source_reader base; /* first member */
	const mem_node *node;
	size_t off;
} mem_reader;

static const source_ops mem_ops;
static const source_reader_ops mem_reader_ops;

static mem_source *mem_downcast(source *s)
{
	return s && s->ops == &mem_ops ? (mem_source *)s : NULL;
}

static void node_free(mem_node *n)
{
	for (size_t i = 0; i < n->n_kids; i++) {
		node_free(n->kids[i]);
		free(n->kids[i]);
	}
	free(n->kids);
	free(n->name);
	free(n->data);
}

static mem_node *find_kid(const mem_node *dir, const char *name, size_t len)
{
	for (size_t i = 0; i < dir->n_kids; i++)
		if (strlen(dir->kids[i]->name) == len && memcmp(dir->kids[i]->name, name, len) == 0)
			return dir->kids[i];
	return NULL;
}

static int add_kid(mem_node **out, mem_node *dir, const char *name, size_t len, int is_dir,
	mode_t mode)
{
	mem_node *n = NULL, **kids;
	int r = 0;

	if (len == 0 || (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return cairn_error_set(CAIRN_EINVAL, "invalid name '%.*s'", (int)len, name);
	kids = realloc(dir->kids, (dir->n_kids + 1) * sizeof(*kids));
	if (!kids)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	dir->kids = kids;
	if (!(n = calloc(1, sizeof(*n))) || !(n->name = strndup(name, len))) {
		r = cairn_error_set(CAIRN_ENOMEM, "out of memory");
		goto out;
	}
	n->is_dir = is_dir;
	n->mode = mode & 07777;
	dir->kids[dir->n_kids++] = n;
	*out = n;
	n = NULL;
out:
	if (n) {
		free(n->name);
		free(n);
	}
	return r;
}

/* The directory that holds the last element of `path` (created as needed);
 * *last and *last_len get that element. */
static int walk_to_parent(mem_node **dir_out, const char **last, size_t *last_len,
	mem_source *ms, const char *path)
{
	mem_node *dir = &ms->root;
	const char *p = path;

	for (;;) {
		const char *slash;
		size_t len;
		mem_node *kid;

		while (*p == '/')
			p++;
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (!slash || slash[strspn(slash, "/")] == '\0') {
			*dir_out = dir;
			*last = p;
			*last_len = len;
			return len ? 0 : cairn_error_set(CAIRN_EINVAL, "invalid path '%s'", path);
		}
		if (!(kid = find_kid(dir, p, len)))
			CAIRN_TRY(add_kid(&kid, dir, p, len, 1, 0755));
		else if (!kid->is_dir)
			return cairn_error_set(CAIRN_EINVAL, "'%.*s' in '%s' is a file", (int)len, p, path);
		dir = kid;
		p = slash;
	}
}

int source_mem_new(source **out, cairn_time time)
{
	mem_source *ms = calloc(1, sizeof(*ms));

	*out = NULL;
	if (!ms)
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	ms->base.ops = &mem_ops;
	ms->root.is_dir = 1;
	ms->root.mode = 0755;
	ms->time = time;
	*out = &ms->base;
	return 0;
}

int source_mem_add_file(source *s, const char *path, const void *data, size_t len, mode_t mode)
{
	mem_source *ms = mem_downcast(s);
	mem_node *dir, *n;
	const char *last;
	size_t last_len;
	unsigned char *copy = NULL;
	int r;

	if (!ms)
		return cairn_error_set(CAIRN_EINVAL, "not an in-memory source");
	CAIRN_TRY(walk_to_parent(&dir, &last, &last_len, ms, path));
	if (find_kid(dir, last, last_len))
		return cairn_error_set(CAIRN_EEXISTS, "'%s' already exists", path);
	if (len && !(copy = malloc(len)))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	if (len)
		memcpy(copy, data, len);
	if ((r = add_kid(&n, dir, last, last_len, 0, mode)) < 0) {
		free(copy);
		return r;
	}
	n->data = copy;
	n->len = len;
	return 0;
}

int source_mem_add_dir(source *s, const char *path, mode_t mode)
{
	mem_source *ms = mem_downcast(s);
	mem_node *dir, *n;
	const char *last;
	size_t last_len;

	if (!ms)
		return cairn_error_set(CAIRN_EINVAL, "not an in-memory source");
	CAIRN_TRY(walk_to_parent(&dir, &last, &last_len, ms, path));
	if ((n = find_kid(dir, last, last_len))) {
		if (!n->is_dir)
			return cairn_error_set(CAIRN_EEXISTS, "'%s' already exists as a file", path);
		n->mode = mode & 07777;
		return 0;
	}
	return add_kid(&n, dir, last, last_len, 1, mode);
}

/* Fill an entry for node n whose parent path is `dir_path` ("" at the root). */
static int make_entry(source_entry *e, const mem_source *ms, const mem_node *n,
	const char *dir_path)
{
	cairn_node *c = &e->node;
	size_t dl = strlen(dir_path), nl = strlen(n->name);

	memset(e, 0, sizeof(*e));
	if (!(c->name = strdup(n->name)) || !(e->path = malloc(dl + nl + 2))) {
		source_entry_release(e);
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	}
	memcpy(e->path, dir_path, dl);
	e->path[dl] = '/';
	memcpy(e->path + dl + 1, n->name, nl + 1);
	if (dl == 0)
		memmove(e->path, e->path + 1, nl + 1); /* no leading slash at the root */
	e->priv = (uint64_t)(uintptr_t)n;
	c->type = n->is_dir ? CAIRN_NODE_DIR : CAIRN_NODE_FILE;
	c->mode = cairn_mode_from_posix((n->is_dir ? S_IFDIR : S_IFREG) | n->mode);
	c->mtime = c->atime = c->ctime = ms->time;
	c->uid = (uint32_t)geteuid();
	c->gid = (uint32_t)getegid();
	c->size = n->is_dir ? 0 : (uint64_t)n->len;
	return 0;
}

static int mem_list(source *s, const source_entry *dir, source_entry **out, size_t *n_out)
{
	mem_source *ms = mem_downcast(s);
	const mem_node *d = dir ? (const mem_node *)(uintptr_t)dir->priv : &ms->root;
	source_entry *v = NULL;
	size_t n = 0;
	int r = 0;

	*out = NULL;
	*n_out = 0;
	if (!d->is_dir)
		return cairn_error_set(CAIRN_EINVAL, "not a directory");
	if (d->n_kids == 0)
		return 0;
	if (!(v = calloc(d->n_kids, sizeof(*v))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	for (; n < d->n_kids; n++)
		if ((r = make_entry(&v[n], ms, d->kids[n], dir ? dir->path : "")) < 0)
			goto out;
	if ((r = source_entries_sort(v, n)) < 0)
		goto out;
	*out = v;
	*n_out = n;
	v = NULL;
out:
	source_entries_free(v, n);
	return r;
}

static int mem_open(source *s, const source_entry *file, source_reader **out)
{
	mem_reader *rd;
	const mem_node *n = (const mem_node *)(uintptr_t)file->priv;

	*out = NULL;
	if (!n || n->is_dir)
		return cairn_error_set(CAIRN_EINVAL, "'%s' is not a file", file->path);
	if (!(rd = calloc(1, sizeof(*rd))))
		return cairn_error_set(CAIRN_ENOMEM, "out of memory");
	rd->base.ops = &mem_reader_ops;
	rd->node = n;
	*out = &rd->base;
	return 0;
}

static ssize_t mem_read(source_reader *r, void *buf, size_t len)
{
	mem_reader *rd = (mem_reader *)r;
	size_t left = rd->node->len - rd->off;

	if (len > left)
		len = left;
	if (len)
		memcpy(buf, rd->node->data + rd->off, len);
	rd->off += len;
	return (ssize_t)len;
}

static void mem_close(source_reader *r)
{
	free(r);
}

static void mem_free(source *s)
{
	mem_source *ms = mem_downcast(s);
	if (!ms)
		return;
	node_free(&ms->root);
	free(ms);
}

static const source_ops mem_ops = { "mem", mem_list, mem_open, mem_free };
static const source_reader_ops mem_reader_ops = { mem_read, mem_close };
