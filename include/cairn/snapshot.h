/* snapshot.h: snapshot documents (snapshots/<id>) and finding them. */
#ifndef CAIRN_SNAPSHOT_H
#define CAIRN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "buf.h"
#include "id.h"
#include "timestamp.h"

typedef struct cairn_snapshot {
	cairn_id id;          /* the file name (set by load/save, not in the JSON) */
	cairn_time time;
	int time_offset_sec;  /* zone offset the time was written with */
	cairn_id tree;
	int has_parent;
	cairn_id parent;
	int has_original;
	cairn_id original;
	char **paths;  size_t n_paths;
	char *hostname, *username; /* NULL when absent */
	uint32_t uid, gid;
	char **excludes; size_t n_excludes;
	char **tags;   size_t n_tags;
} cairn_snapshot;

#define CAIRN_SNAPSHOT_INIT { 0 }

CAIRN_API void cairn_snapshot_release(cairn_snapshot *s);
/* Append to a string list field (copied). */
CAIRN_API int cairn_strlist_add(char ***list, size_t *n, const char *s);
CAIRN_API void cairn_strlist_free(char **list, size_t n);

/* JSON as restic 0.14 writes it (compact, no trailing newline: restic stores
 * json.Marshal's output as is); out replaced. */
CAIRN_API int cairn_snapshot_encode(cairn_buf *out, const cairn_snapshot *s);
/* Parse; `tree` and `time` are required (CAIRN_ECORRUPT otherwise).
 * *out must be CAIRN_SNAPSHOT_INIT; caller releases. id is left zero. */
CAIRN_API int cairn_snapshot_decode(cairn_snapshot *out, const char *json, size_t len);

/* 1 if the snapshot has the tag / host / path (exact match). */
CAIRN_API int cairn_snapshot_has_tag(const cairn_snapshot *s, const char *tag);
CAIRN_API int cairn_snapshot_has_path(const cairn_snapshot *s, const char *path);

#endif
