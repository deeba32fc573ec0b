/* source.c: helpers shared by every source implementation (see source.h):
 * releasing and sorting listings and formatting reports.
 *
 * Invariant kept by source_entries_sort: a listing handed to the archiver is
 * in strictly increasing strcmp order of names, which is restic's tree order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"

void source_entry_release(source_entry *e)
{
	cairn_node_release(&e->node);
	free(e->path);
	e->path = NULL;
	e->priv = 0;
}

void source_entries_free(source_entry *entries, size_t n)
{
	if (!entries)
		return;
	for (size_t i = 0; i < n; i++)
		source_entry_release(&entries[i]);
	free(entries);
}

static int by_name(const void *a, const void *b)
{
	const source_entry *x = a, *y = b;
	return strcmp(x->node.name, y->node.name);
}

int source_entries_sort(source_entry *entries, size_t n)
{
	if (n < 2)
		return 0;
	qsort(entries, n, sizeof(*entries), by_name);
	for (size_t i = 1; i < n; i++)
		if (strcmp(entries[i - 1].node.name, entries[i].node.name) == 0)
			return cairn_error_set(CAIRN_EINVAL, "duplicate name '%s' in '%s'",
				entries[i].node.name, entries[i].path ? entries[i].path : "");
	return 0;
}

void source_report(source *s, int is_error, const char *path, const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	if (!s->report)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	s->report(is_error, path, message, s->report_payload);
}
