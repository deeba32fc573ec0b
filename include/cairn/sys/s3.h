/* sys/s3.h: the pure parts of the S3 backend, for unit tests: location
 * strings, AWS credentials files, and the XML answers S3 sends.
 */
#ifndef CAIRN_SYS_S3_H
#define CAIRN_SYS_S3_H

#include <stddef.h>
#include <stdint.h>

/* A parsed "s3:" location.  Forms (after "s3:"), as restic spells them:
 *   http[s]://HOST[:PORT]/BUCKET[/PREFIX]   an endpoint URL
 *   HOST[:PORT]/BUCKET[/PREFIX]             an https endpoint, when the first
 *                                           part has a '.' or ':'
 *                                           ("s3.amazonaws.com/bucket")
 *   BUCKET[/PREFIX]                         AWS; the endpoint follows the region
 *   //...                                   ("s3://...") same as without "//"
 * PREFIX is cleaned like restic's path.Clean: empty and "." parts dropped;
 * ".." is refused.  User information in a URL (user:pass@) is dropped. */
typedef struct cairn_s3_location {
	char *scheme;  /* "https" or "http" */
	char *host;    /* "host[:port]" ("[v6]:port"), or NULL when it follows the region */
	char *bucket;
	char *prefix;  /* "" or "a/b" (no leading or trailing '/') */
} cairn_s3_location;

/* Parse; the caller releases with cairn_s3_location_release (also after
 * failure).  CAIRN_EINVAL names what is wrong. */
int cairn_s3_parse_location(cairn_s3_location *out, const char *spec);
void cairn_s3_location_release(cairn_s3_location *loc);

/* The region an AWS endpoint host names ("s3.eu-west-1.amazonaws.com",
 * "s3-eu-west-1.amazonaws.com", "bucket.s3.eu-west-1.amazonaws.com") into
 * out, or 0 when it names none. */
int cairn_s3_region_from_host(char *out, size_t size, const char *host);

/* Read one profile of an AWS shared credentials file (INI:
 * [profile] / aws_access_key_id / aws_secret_access_key / aws_session_token).
 * *access and *secret are set (malloc'ed), *token too or NULL; the caller
 * frees them (wipe the secret).  CAIRN_ENOTFOUND when the file or the
 * profile does not exist, CAIRN_EINVAL when the profile lacks a key.
 * Messages name the file and profile, never a value. */
int cairn_s3_read_credentials(char **access, char **secret, char **token, const char *path,
	const char *profile);

/* A ListObjectsV2 answer: cb(key, size) per <Contents>, in order; then
 * *truncated and *next_token (malloc'ed, or NULL when absent).  A Contents
 * without Key or with an invalid Size, or a root that is not
 * ListBucketResult, is CAIRN_EINVAL; so is malformed XML.  A non-zero
 * return of cb stops the parse and is returned. */
typedef int (*cairn_s3_list_cb)(const char *key, uint64_t size, void *payload);
int cairn_s3_parse_list(const char *xml, size_t len, cairn_s3_list_cb cb, void *payload,
	int *truncated, char **next_token);

/* An <Error> document: its Code and Message (cut to fit, "" when absent).
 * Returns 1 if the document is an S3 error, 0 if it is not (other root, or
 * not XML at all: S3 error bodies are advisory). */
int cairn_s3_parse_error(const char *xml, size_t len, char *code, size_t code_size,
	char *message, size_t message_size);

#endif
