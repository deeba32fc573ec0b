/* tree.h: tree blobs (directory listings) and their nodes, as restic's JSON.
 *
 * Encoding: {"nodes":[...]}\n, nodes sorted by name bytes, names Go-quoted
 * before JSON encoding (restic-format §7).  Decoding validates what restore
 * relies on: names non-empty, not "." or "..", no '/' and no NUL; known types;
 * a file has a content array, a dir has a subtree.
 */
#ifndef CAIRN_TREE_H
#define CAIRN_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "error.h"
#include "buf.h"
#include "id.h"
#include "timestamp.h"

typedef enum cairn_node_type {
	CAIRN_NODE_FILE = 0,
	CAIRN_NODE_DIR,
	CAIRN_NODE_SYMLINK,
	CAIRN_NODE_DEV,      /* block device, "dev" */
	CAIRN_NODE_CHARDEV,
	CAIRN_NODE_FIFO,
	CAIRN_NODE_SOCKET
} cairn_node_type;

/* "file", "dir", ... */
CAIRN_API const char *cairn_node_type_name(cairn_node_type t);
CAIRN_API int cairn_node_type_parse(cairn_node_type *out, const char *name);

/* Go os.FileMode bits used in node "mode". */
#define CAIRN_GOMODE_DIR        0x80000000u
#define CAIRN_GOMODE_SYMLINK    0x08000000u
#define CAIRN_GOMODE_DEVICE     0x04000000u
#define CAIRN_GOMODE_NAMEDPIPE  0x02000000u
#define CAIRN_GOMODE_SOCKET     0x01000000u
#define CAIRN_GOMODE_SETUID     0x00800000u
#define CAIRN_GOMODE_SETGID     0x00400000u
#define CAIRN_GOMODE_CHARDEVICE 0x00200000u
#define CAIRN_GOMODE_STICKY     0x00100000u

/* POSIX st_mode -> Go FileMode and back (type bits included both ways). */
CAIRN_API uint32_t cairn_mode_from_posix(mode_t m);
CAIRN_API mode_t cairn_mode_to_posix(uint32_t gomode);

typedef struct cairn_xattr {
	char *name;           /* owned */
	unsigned char *value; /* owned, may be NULL when value_len == 0 */
	size_t value_len;
} cairn_xattr;

/* One directory entry.  All pointers are owned by the node and freed by
 * cairn_node_release(); CAIRN_NODE_INIT is an empty node. */
typedef struct cairn_node {
	char *name;          /* raw bytes as on disk, NUL-terminated, never contains NUL or '/' */
	cairn_node_type type;
	uint32_t mode;       /* Go FileMode */
	cairn_time mtime, atime, ctime;
	uint32_t uid, gid;
	char *user, *group;  /* NULL when unknown */
	uint64_t inode, device_id, size, links;
	char *linktarget;    /* symlinks */
	cairn_xattr *xattrs;
	size_t n_xattrs;
	uint64_t device;     /* st_rdev for devices */
	cairn_id *content;   /* data blob ids of a file, in order */
	size_t n_content;
	int has_subtree;
	cairn_id subtree;    /* dirs */
	char *error;
} cairn_node;

#define CAIRN_NODE_INIT { 0 }

CAIRN_API void cairn_node_release(cairn_node *n);
/* Deep copy; dst must be released by the caller. */
CAIRN_API int cairn_node_copy(cairn_node *dst, const cairn_node *src);
/* Append a blob id to a file's content list. */
CAIRN_API int cairn_node_add_content(cairn_node *n, const cairn_id *id);
CAIRN_API int cairn_node_add_xattr(cairn_node *n, const char *name, const void *value, size_t len);
/* 0 if the name is acceptable in a tree, else CAIRN_ECORRUPT with a message naming it. */
CAIRN_API int cairn_node_name_check(const char *name);

/* A directory: an array of nodes. */
typedef struct cairn_tree {
	cairn_node *nodes;
	size_t n, cap;
} cairn_tree;

#define CAIRN_TREE_INIT { NULL, 0, 0 }

/* Move a node into the tree (the tree owns it; *node is reset to empty). */
CAIRN_API int cairn_tree_add(cairn_tree *t, cairn_node *node);
CAIRN_API void cairn_tree_release(cairn_tree *t);
/* Sort by name bytes (strcmp order).  CAIRN_EINVAL on duplicate names. */
CAIRN_API int cairn_tree_sort(cairn_tree *t);
/* Binary search by name in a sorted tree; NULL when absent. Borrowed. */
CAIRN_API const cairn_node *cairn_tree_find(const cairn_tree *t, const char *name);

/* Sorts, then encodes restic's JSON with the trailing newline; out replaced. */
CAIRN_API int cairn_tree_encode(cairn_buf *out, cairn_tree *t);
/* Parse and validate; *out must be CAIRN_TREE_INIT, caller releases. */
CAIRN_API int cairn_tree_decode(cairn_tree *out, const char *json, size_t len);

/* Go strconv.Quote without the outer quotes, appended to out. */
CAIRN_API int cairn_go_quote(cairn_buf *out, const char *s, size_t len);
/* Go strconv.Unquote of text without outer quotes, into out (replaced,
 * NUL-terminated).  CAIRN_EINVAL for bad escapes or raw '"'/newline. */
CAIRN_API int cairn_go_unquote(cairn_buf *out, const char *s, size_t len);

#endif
