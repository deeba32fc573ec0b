/* sys/xml.h: a small, strict XML reader for S3 answers (listings, errors,
 * multipart replies).
 *
 * It reports leaf elements by path, which is all the S3 API needs:
 *   <ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>
 * calls cb("ListBucketResult/Contents/Key", "k"), then, at the end of each
 * element that had children, cb("ListBucketResult/Contents", NULL), and
 * cb("ListBucketResult", NULL).  Names are local (a "ns:" prefix is
 * dropped), attributes are checked for form and ignored, entities
 * (&lt; &gt; &amp; &quot; &apos; &#N; &#xN;) and CDATA are decoded,
 * comments and processing instructions skipped.  A DOCTYPE is refused (no
 * entity expansion), as are mismatched tags, a second root, text outside the
 * root, depth above 32, a path above 512 bytes or one text above 1 MiB.
 */
#ifndef CAIRN_SYS_XML_H
#define CAIRN_SYS_XML_H

#include <stddef.h>

/* `text` is NUL-terminated, text_len bytes long, borrowed for the call; NULL
 * at the end of an element with children.  Return non-zero to stop. */
typedef int (*cairn_xml_cb)(const char *path, const char *text, size_t text_len, void *payload);

/* Parse doc[0..len).  Returns 0, the callback's non-zero result, or
 * CAIRN_EINVAL "malformed XML: <why> at byte N" (CAIRN_ENOMEM). */
int cairn_xml_parse(const char *doc, size_t len, cairn_xml_cb cb, void *payload);

#endif
