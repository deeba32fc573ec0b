/* sys/rest.h: the REST backend (restic's REST protocol v2, rest.c). */
#ifndef CAIRN_SYS_REST_H
#define CAIRN_SYS_REST_H

#include "backend.h"

/* Open the REST backend; `spec` is the location after "rest:"
 * ("http[s]://[USER:PASS@]HOST[:PORT]/[PATH]"), opts may be NULL (options
 * rest.connections, rest.stall-timeout; cacert, insecure_tls).  Asks the
 * server nothing.  The caller frees *out with cairn_backend_free. */
int cairn_backend_rest_open(cairn_backend **out, const char *spec, int must_exist,
	const cairn_backend_options *opts);

/* Split a REST URL (after "rest:") into the request root (the URL ending in
 * '/', password kept: wipe before freeing) and the display location
 * ("rest:http://user:***@host/path/").  Both malloc'ed, owned by the caller.
 * CAIRN_EINVAL for anything but http(s) with a host, or with a query or
 * fragment; the message never repeats the URL (it may hold a password). */
int cairn_rest_parse_url(char **root_out, char **display_out, const char *spec);

#endif
