/* test_backend_rest.c: the pure parts of the REST backend: location URLs
 * (request root, the password-free display form, refusals that never echo
 * a password) and its options.  The protocol itself is covered by the
 * conformance suite against rclone (tests/cli/t_backend_conformance.sh) and
 * end to end by tests/cli/t_rest.sh. */
#include <cairn/backend.h>
#include <cairn/error.h>
#include <cairn/sys/backend.h>
#include <cairn/sys/rest.h>
#include "unit.h"

static void check_url(const char *spec, const char *root, const char *display)
{
	char *r = NULL, *d = NULL;

	CHECK_OK(cairn_rest_parse_url(&r, &d, spec));
	CHECK_STR(r, root);
	CHECK_STR(d, display);
	free(r);
	free(d);
}

static void test_urls(void)
{
	check_url("http://127.0.0.1:8000/", "http://127.0.0.1:8000/", "rest:http://127.0.0.1:8000/");
	/* the protocol wants the root to end in '/' */
	check_url("http://host:8000", "http://host:8000/", "rest:http://host:8000/");
	check_url("https://host/repo/sub", "https://host/repo/sub/", "rest:https://host/repo/sub/");
	check_url("http://alice:s3cr3t@host:8000/repo/", "http://alice:s3cr3t@host:8000/repo/",
		"rest:http://alice:***@host:8000/repo/");
	/* a user without password stays; '@' and ':' inside the password too */
	check_url("http://alice@host/", "http://alice@host/", "rest:http://alice@host/");
	check_url("http://bob:p%40ss:w@rd@[::1]:9/x", "http://bob:p%40ss:w@rd@[::1]:9/x/",
		"rest:http://bob:***@[::1]:9/x/");
	/* an '@' in the path is not user information */
	check_url("http://host/a@b/", "http://host/a@b/", "rest:http://host/a@b/");
}

static void test_bad_urls(void)
{
	static const char *const bad[] = {
		"ftp://alice:hunter2@host/", "host:8000/repo", "", "http://", "http://alice:hunter2@/",
		"http://alice:hunter2@host/?x=1", "http://host/#frag",
	};
	char *r = (char *)1, *d = (char *)1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_INT(cairn_rest_parse_url(&r, &d, bad[i]), CAIRN_EINVAL);
		CHECK(r == NULL && d == NULL);
		CHECK(strstr(cairn_error_message(), "hunter2") == NULL);
	}
}

static void test_open(void)
{
	const char *opts_ok[] = { "rest.connections=8", "rest.stall-timeout=30", "s3.anything=1" };
	const char *opts_bad[] = { "rest.connection=8" };
	const char *opts_range[] = { "rest.connections=0" };
	cairn_backend_options o = { 0 };
	cairn_backend *be = NULL;

	o.extended = opts_ok;
	o.n_extended = 3;
	CHECK_OK(cairn_backend_rest_open(&be, "http://u:pw@127.0.0.1:1/r", 1, &o));
	if (be) {
		CHECK_STR(cairn_backend_location(be), "rest:http://u:***@127.0.0.1:1/r/");
		CHECK_INT(be->max_connections, 8);
		cairn_backend_free(be);
	}
	o.extended = opts_bad;
	o.n_extended = 1;
	CHECK_INT(cairn_backend_rest_open(&be, "http://127.0.0.1:1/", 1, &o), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "rest.connection") != NULL);
	o.extended = opts_range;
	CHECK_INT(cairn_backend_rest_open(&be, "http://127.0.0.1:1/", 1, &o), CAIRN_EINVAL);
	CHECK(be == NULL);
	CHECK_OK(cairn_backend_rest_open(&be, "http://127.0.0.1:1/", 1, NULL));
	if (be) {
		CHECK_INT(be->max_connections, 5);
		cairn_backend_free(be);
	}
}

/* Nobody listens on port 1: a refused connection is transient, and its
 * message names the operation and object without the password. */
static void test_refused_is_transient(void)
{
	cairn_backend *be = NULL;
	cairn_handle h;
	uint64_t size;

	CHECK_OK(cairn_backend_rest_open(&be, "http://alice:hunter2@127.0.0.1:1/repo/", 1, NULL));
	if (!be)
		return;
	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_ETRANSIENT);
	CHECK(strstr(cairn_error_message(), "stat config 'config' in rest:http://alice:***@127.0.0.1:1/repo/")
		!= NULL);
	CHECK(strstr(cairn_error_message(), "hunter2") == NULL);
	cairn_backend_free(be);
}

UNIT_MAIN(test_urls, test_bad_urls, test_open, test_refused_is_transient)
