/* test_s3.c: the S3 backend's pure parts (locations, credentials files, the
 * XML reader and S3's answers, extended options), and, when
 * CAIRN_TEST_S3_URL names a server ("s3:http://127.0.0.1:PORT/bucket", with
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set), what only a real server
 * shows: a listing of more than 1,000 objects under one prefix (several
 * ListObjectsV2 pages), multipart uploads, virtual-hosted requests, and a
 * wrong secret.  tests/cli/t_s3.sh starts the strict s3rver and runs this
 * binary with the variable set; `make unit` runs the pure part only.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <unistd.h>

#include <cairn/backend.h>
#include <cairn/error.h>
#include <cairn/id.h>
#include <cairn/log.h>
#include <cairn/sys/backend.h>
#include <cairn/sys/s3.h>
#include <cairn/sys/xml.h>
#include "unit.h"

/* ---- locations ---- */

static void test_locations(void)
{
	static const struct {
		const char *spec, *scheme, *host, *bucket, *prefix;
	} ok[] = {
		{ "http://127.0.0.1:4568/testbucket/repo", "http", "127.0.0.1:4568", "testbucket", "repo" },
		{ "https://s3.amazonaws.com/bucket", "https", "s3.amazonaws.com", "bucket", "" },
		{ "https://s3.amazonaws.com/bucket/", "https", "s3.amazonaws.com", "bucket", "" },
		{ "https://user:pw@minio:9000/b/a//b/./c/", "https", "minio:9000", "b", "a/b/c" },
		{ "http://[::1]:9000/b/p", "http", "[::1]:9000", "b", "p" },
		{ "s3.amazonaws.com/bucket/prefix", "https", "s3.amazonaws.com", "bucket", "prefix" },
		{ "//s3.eu-west-1.amazonaws.com/b/x/y", "https", "s3.eu-west-1.amazonaws.com", "b", "x/y" },
		{ "minio:9000/b", "https", "minio:9000", "b", "" },
		{ "mybucket", "https", NULL, "mybucket", "" },
		{ "mybucket/some/prefix", "https", NULL, "mybucket", "some/prefix" },
		{ "my_Old.bucket-1", "https", "my_Old.bucket-1", NULL, NULL }, /* a dot: an endpoint */
	};
	static const char *const bad[] = {
		"", "http://host", "http://host/", "http://host/b?x=1", "bucket/../x", "http://ho st/b",
		"bad*bucket", "http://h/b#frag", "https:///b", "b/a\x01",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cairn_s3_location loc;
		int r = cairn_s3_parse_location(&loc, ok[i].spec);
		if (!ok[i].bucket) {
			/* "HOST" alone: an endpoint without a bucket */
			CHECK_INT(r, CAIRN_EINVAL);
			cairn_s3_location_release(&loc);
			continue;
		}
		CHECK_OK(r);
		if (r == 0) {
			CHECK_STR(loc.scheme, ok[i].scheme);
			if (ok[i].host)
				CHECK_STR(loc.host, ok[i].host);
			else
				CHECK(loc.host == NULL);
			CHECK_STR(loc.bucket, ok[i].bucket);
			CHECK_STR(loc.prefix, ok[i].prefix);
		}
		cairn_s3_location_release(&loc);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_s3_location loc;
		int r = cairn_s3_parse_location(&loc, bad[i]);
		if (r != CAIRN_EINVAL)
			fprintf(stderr, "location '%s' was accepted\n", bad[i]);
		CHECK_INT(r, CAIRN_EINVAL);
		cairn_s3_location_release(&loc);
	}
}

static void test_region_from_host(void)
{
	static const struct { const char *host, *region; } cases[] = {
		{ "s3.eu-west-1.amazonaws.com", "eu-west-1" },
		{ "s3-eu-west-1.amazonaws.com", "eu-west-1" },
		{ "bucket.s3.ap-south-1.amazonaws.com:443", "ap-south-1" },
		{ "s3.dualstack.us-west-2.amazonaws.com", "us-west-2" },
		{ "s3.cn-north-1.amazonaws.com.cn", "cn-north-1" },
		{ "s3.amazonaws.com", NULL },
		{ "s3-external-1.amazonaws.com", NULL },
		{ "minio.local:9000", NULL },
		{ "127.0.0.1:4568", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char r[64];
		int found = cairn_s3_region_from_host(r, sizeof(r), cases[i].host);
		CHECK_INT(found, cases[i].region != NULL);
		if (cases[i].region)
			CHECK_STR(r, cases[i].region);
	}
}

/* ---- credentials files ---- */

static void test_credentials_file(void)
{
	char path[] = "/tmp/cairn-test-creds-XXXXXX";
	char *a, *s, *t;
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!f) {
		CHECK(0);
		return;
	}
	fputs("# comment\n[default]\naws_access_key_id = AKDEFAULT\n"
		"aws_secret_access_key=topsecret-default  \n\n"
		"[other]\r\n ; another comment\r\n AWS_ACCESS_KEY_ID = AKOTHER \r\n"
		"aws_secret_access_key = s3cr3t/other+key\r\naws_session_token = TOKEN==\r\n"
		"[broken]\naws_access_key_id = AKBROKEN\n", f);
	fclose(f);

	CHECK_OK(cairn_s3_read_credentials(&a, &s, &t, path, "default"));
	CHECK_STR(a, "AKDEFAULT");
	CHECK_STR(s, "topsecret-default");
	CHECK(t == NULL);
	free(a); free(s); free(t);
	CHECK_OK(cairn_s3_read_credentials(&a, &s, &t, path, "other"));
	CHECK_STR(a, "AKOTHER");
	CHECK_STR(s, "s3cr3t/other+key");
	CHECK_STR(t, "TOKEN==");
	free(a); free(s); free(t);
	CHECK_INT(cairn_s3_read_credentials(&a, &s, &t, path, "missing"), CAIRN_ENOTFOUND);
	CHECK(strstr(cairn_error_message(), "missing") != NULL);
	CHECK_INT(cairn_s3_read_credentials(&a, &s, &t, path, "broken"), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "AKBROKEN") == NULL);
	CHECK(a == NULL && s == NULL && t == NULL);
	unlink(path);
	CHECK_INT(cairn_s3_read_credentials(&a, &s, &t, path, "default"), CAIRN_ENOTFOUND);
}

/* ---- the XML reader ---- */

typedef struct leaves {
	char text[2048];
	size_t len;
} leaves;

static int record_cb(const char *path, const char *text, size_t len, void *payload)
{
	leaves *l = payload;
	int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s=%s|", path,
		text ? text : "<end>");
	(void)len;
	if (n > 0)
		l->len += (size_t)n < sizeof(l->text) - l->len ? (size_t)n : 0;
	return 0;
}

static void test_xml_reader(void)
{
	static const struct { const char *doc, *want; } ok[] = {
		{ "<a>x</a>", "a=x|" },
		{ "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a\n xmlns=\"u\" b='1'>\n"
		  "<!-- c -->\n <s3:b>1 &lt; 2 &amp;&amp; &quot;q&quot; &apos;&#65;&#x42;&#xe9;</s3:b>"
		  "<c/><d><![CDATA[<raw> & ]]>tail</d>\n</a>\n",
		  "a/b=1 < 2 && \"q\" 'AB\xc3\xa9|a/c=|a/d=<raw> & tail|a=<end>|" },
		{ "<r><e><k>1</k></e><e><k>2</k></e></r>", "r/e/k=1|r/e=<end>|r/e/k=2|r/e=<end>|r=<end>|" },
		{ "<r>text<x>1</x>more</r>", "r/x=1|r=<end>|" },
	};
	static const char *const bad[] = {
		"", "   ", "<a>", "<a></b>", "<a>x</a><b/>", "x<a/>", "<a/>x", "<!DOCTYPE a><a/>",
		"<a>&unknown;</a>", "<a>&#0;</a>", "<a>&#x110000;</a>", "<a>&#xd800;</a>", "<a>&amp</a>",
		"<a b=1/>", "<a b=\"1\"c=\"2\"/>", "<a b=\"x</a>", "<a><!-- x </a>", "<a><![CDATA[x</a>",
		"<?xml version=\"1.0\"", "</a>", "<1a/>", "<a>\0</a>", "<a b=\"<\"/>",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		leaves l = { "", 0 };
		CHECK_OK(cairn_xml_parse(ok[i].doc, strlen(ok[i].doc), record_cb, &l));
		CHECK_STR(l.text, ok[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		leaves l = { "", 0 };
		size_t len = strlen(bad[i]);
		if (bad[i][0] == '<' && bad[i][1] == 'a' && bad[i][2] == '>' && bad[i][3] == '\0')
			len = 8; /* "<a>\0</a>": the embedded NUL */
		int r = cairn_xml_parse(bad[i], len, record_cb, &l);
		if (r != CAIRN_EINVAL)
			fprintf(stderr, "bad XML %zu '%s' gave %d\n", i, bad[i], r);
		CHECK_INT(r, CAIRN_EINVAL);
		CHECK(strstr(cairn_error_message(), "malformed XML") != NULL);
	}
}

static void test_xml_limits(void)
{
	cairn_buf deep = CAIRN_BUF_INIT, wide = CAIRN_BUF_INIT;
	leaves l = { "", 0 };

	for (int i = 0; i < 40; i++)
		CHECK_OK(cairn_buf_puts(&deep, "<a>"));
	for (int i = 0; i < 40; i++)
		CHECK_OK(cairn_buf_puts(&deep, "</a>"));
	CHECK_INT(cairn_xml_parse((char *)deep.data, deep.len, record_cb, &l), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "deep") != NULL);

	CHECK_OK(cairn_buf_puts(&wide, "<a>"));
	for (int i = 0; i < (1 << 20) / 4 + 1; i++)
		CHECK_OK(cairn_buf_puts(&wide, "&amp;xyz"));
	CHECK_OK(cairn_buf_puts(&wide, "</a>"));
	CHECK_INT(cairn_xml_parse((char *)wide.data, wide.len, record_cb, &l), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "too long") != NULL);
	cairn_buf_release(&deep);
	cairn_buf_release(&wide);
}

/* A listing as s3rver writes it (its namespace differs from AWS's). */
static const char listing[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/2006-03-01/\">"
	"<IsTruncated>true</IsTruncated>"
	"<Contents><Key>repo/keys/aa</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
	"<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
	"<StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Size>18446744073709551615</Size><Key>repo/keys/a&amp;b</Key></Contents>"
	"<Contents><Key>repo/keys/c</Key><Size> 42 </Size></Contents>"
	"<Name>testbucket</Name><Prefix>repo/keys/</Prefix><MaxKeys>1000</MaxKeys><KeyCount>3</KeyCount>"
	"<NextContinuationToken>ab+c/d=&amp;</NextContinuationToken>"
	"</ListBucketResult>";

typedef struct listed {
	char keys[8][64];
	uint64_t sizes[8];
	int n;
	int stop_after;
} listed;

static int listed_cb(const char *key, uint64_t size, void *payload)
{
	listed *l = payload;
	if (l->n < 8) {
		snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
		l->sizes[l->n] = size;
	}
	l->n++;
	return l->stop_after && l->n >= l->stop_after ? 7 : 0;
}

static void test_list_answers(void)
{
	listed l;
	int truncated;
	char *token;

	memset(&l, 0, sizeof(l));
	CHECK_OK(cairn_s3_parse_list(listing, strlen(listing), listed_cb, &l, &truncated, &token));
	CHECK_INT(l.n, 3);
	CHECK_STR(l.keys[0], "repo/keys/aa");
	CHECK_STR(l.keys[1], "repo/keys/a&b");
	CHECK_STR(l.keys[2], "repo/keys/c");
	CHECK(l.sizes[0] == 0 && l.sizes[1] == UINT64_MAX && l.sizes[2] == 42);
	CHECK_INT(truncated, 1);
	CHECK_STR(token, "ab+c/d=&");
	free(token);

	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	CHECK_INT(cairn_s3_parse_list(listing, strlen(listing), listed_cb, &l, &truncated, &token), 7);
	CHECK_INT(l.n, 2);
	CHECK(token == NULL);

	static const char *const bad[] = {
		"<Error><Code>AccessDenied</Code></Error>",
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>18446744073709551616</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents>",
		"<html>Gateway Timeout</html>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&l, 0, sizeof(l));
		CHECK_INT(cairn_s3_parse_list(bad[i], strlen(bad[i]), listed_cb, &l, &truncated, &token),
			CAIRN_EINVAL);
		CHECK(token == NULL);
	}
	/* an empty, final page */
	memset(&l, 0, sizeof(l));
	{
		const char *last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
		CHECK_OK(cairn_s3_parse_list(last, strlen(last), listed_cb, &l, &truncated, &token));
	}
	CHECK_INT(l.n, 0);
	CHECK_INT(truncated, 0);
	CHECK(token == NULL);
}

static void test_error_answers(void)
{
	char code[32], msg[40];
	const char *aws = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
		"<Message>The request signature we calculated does not match the signature you provided."
		"</Message><StringToSign>AWS4-HMAC-SHA256...</StringToSign><RequestId>1</RequestId></Error>";

	CHECK_INT(cairn_s3_parse_error(aws, strlen(aws), code, sizeof(code), msg, sizeof(msg)), 1);
	CHECK_STR(code, "SignatureDoesNotMatch");
	CHECK_STR(msg, "The request signature we calculated doe"); /* cut to fit */
	CHECK_INT(cairn_s3_parse_error("<html>503</html>", 16, code, sizeof(code), msg, sizeof(msg)), 0);
	CHECK_STR(code, "");
	CHECK_INT(cairn_s3_parse_error("Service Unavailable", 19, code, sizeof(code), msg, sizeof(msg)), 0);
	CHECK_INT(cairn_s3_parse_error(NULL, 0, code, sizeof(code), msg, sizeof(msg)), 0);
	/* a truncated error still tells its code */
	CHECK_INT(cairn_s3_parse_error("<Error><Code>SlowDown</Code><Mess", 33, code, sizeof(code), msg,
		sizeof(msg)), 1);
	CHECK_STR(code, "SlowDown");
}

/* Seeded mutations of real answers: the reader and the S3 parsers must
 * return (0 or an error), never crash or read out of bounds (ASan). */
static void test_mutations(void)
{
	const char *seeds[] = { listing, "<Error><Code>NoSuchKey</Code><Message>m</Message></Error>",
		"<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>u&#x41;</UploadId>"
		"</InitiateMultipartUploadResult>" };
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
		size_t n = strlen(seeds[s]);
		char *buf = malloc(n);
		for (int round = 0; round < 4000 && buf; round++) {
			memcpy(buf, seeds[s], n);
			for (int k = 0; k < 1 + round % 4; k++) {
				x ^= x << 13; x ^= x >> 7; x ^= x << 17;
				buf[x % n] = (char)(x >> 32);
			}
			size_t len = round % 5 == 0 ? (size_t)(x >> 40) % (n + 1) : n;
			listed l;
			int truncated;
			char *token = NULL, code[16], msg[16];
			leaves lv = { "", 0 };
			memset(&l, 0, sizeof(l));
			(void)cairn_xml_parse(buf, len, record_cb, &lv);
			(void)cairn_s3_parse_list(buf, len, listed_cb, &l, &truncated, &token);
			free(token);
			(void)cairn_s3_parse_error(buf, len, code, sizeof(code), msg, sizeof(msg));
		}
		free(buf);
	}
}

/* ---- extended options ---- */

static void test_options(void)
{
	const char *list[] = { "s3.connections=3", "rest.connections=9", "s3.connections=8", "s3.region=" };
	cairn_backend_options o = { list, 4, NULL, 0, NULL };
	static const char *const known[] = { "s3.connections", "s3.region", NULL };
	const char *typo[] = { "s3.conections=3" }, *bare[] = { "connections=3" }, *noeq[] = { "s3.x" };
	cairn_backend_options t = { typo, 1, NULL, 0, NULL };
	uint64_t size;
	long n;

	CHECK_STR(cairn_backend_option(&o, "s3.connections"), "8");
	CHECK_STR(cairn_backend_option(&o, "s3.region"), "");
	CHECK(cairn_backend_option(&o, "s3.part-size") == NULL);
	CHECK(cairn_backend_option(NULL, "s3.region") == NULL);
	CHECK_OK(cairn_backend_options_check(&o, "s3", known));
	CHECK_OK(cairn_backend_options_check(&o, NULL, NULL));
	CHECK_INT(cairn_backend_options_check(&t, "s3", known), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "s3.conections") != NULL);
	CHECK_OK(cairn_backend_options_check(&t, "rest", known));
	t.extended = bare;
	CHECK_INT(cairn_backend_options_check(&t, NULL, NULL), CAIRN_EINVAL);
	t.extended = noeq;
	CHECK_INT(cairn_backend_options_check(&t, NULL, NULL), CAIRN_EINVAL);

	CHECK_OK(cairn_backend_option_long(&n, "k", "17", 1, 128));
	CHECK_INT(n, 17);
	CHECK_INT(cairn_backend_option_long(&n, "k", "0", 1, 128), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_option_long(&n, "k", "12x", 1, 128), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_option_long(&n, "k", "", 1, 128), CAIRN_EINVAL);
	static const struct { const char *v; uint64_t want; } sizes[] = {
		{ "5M", 5u << 20 }, { "5MiB", 5u << 20 }, { "64m", 64u << 20 }, { "1G", 1u << 30 },
		{ "6291456", 6291456 }, { "8KB", 8192 },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CHECK_OK(cairn_backend_option_size(&size, "k", sizes[i].v, 1, (uint64_t)1 << 40));
		CHECK(size == sizes[i].want);
	}
	static const char *const bad_sizes[] = { "5X", "-1", "", "M", "5MM", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
		CHECK_INT(cairn_backend_option_size(&size, "k", bad_sizes[i], 1, (uint64_t)1 << 40), CAIRN_EINVAL);
	CHECK_INT(cairn_backend_option_size(&size, "k", "4M", 5u << 20, 1u << 30), CAIRN_EINVAL);
}

/* Opening refuses bad options and missing credentials before any request. */
static void test_open_refusals(void)
{
	cairn_backend *be = NULL;
	const char *typo[] = { "s3.conections=3" }, *lookup[] = { "s3.bucket-lookup=dns" };
	const char *conn[] = { "s3.connections=0" }, *part[] = { "s3.part-size=1M" };
	cairn_backend_options o = { typo, 1, NULL, 0, NULL };
	char *ak = getenv("AWS_ACCESS_KEY_ID") ? strdup(getenv("AWS_ACCESS_KEY_ID")) : NULL;
	char *sk = getenv("AWS_SECRET_ACCESS_KEY") ? strdup(getenv("AWS_SECRET_ACCESS_KEY")) : NULL;

	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "topsecret", 1);
	CHECK_INT(cairn_backend_open_ex(&be, "s3:http://127.0.0.1:1/b", 0, &o), CAIRN_EINVAL);
	o.extended = lookup;
	CHECK_INT(cairn_backend_open_ex(&be, "s3:http://127.0.0.1:1/bucket", 0, &o), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "address") != NULL);
	o.extended = conn;
	CHECK_INT(cairn_backend_open_ex(&be, "s3:http://127.0.0.1:1/b", 0, &o), CAIRN_EINVAL);
	o.extended = part;
	CHECK_INT(cairn_backend_open_ex(&be, "s3:http://127.0.0.1:1/b", 0, &o), CAIRN_EINVAL);
	CHECK(be == NULL);

	/* a server that is not there: a transient failure (the S3 backend
	 * alone, without the retry wrapper around it) */
	{
		cairn_backend *inner = NULL;
		cairn_handle h;
		uint64_t size;
		CHECK_OK(cairn_backend_s3_open(&inner, "http://127.0.0.1:1/b/p", 0, NULL));
		if (inner) {
			cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
			CHECK_INT(cairn_backend_stat(&size, inner, &h), CAIRN_ETRANSIENT);
			CHECK(strstr(cairn_error_message(), "stat config 'config' in 's3:http://127.0.0.1:1/b/p'") != NULL);
			CHECK(strstr(cairn_error_message(), "topsecret") == NULL);
			CHECK_STR(cairn_backend_location(inner), "s3:http://127.0.0.1:1/b/p");
			CHECK_INT(inner->max_connections, 5);
			cairn_backend_free(inner);
		}
	}

	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_INT(cairn_backend_s3_open(&be, "http://127.0.0.1:1/b", 0, NULL), CAIRN_EAUTH);
	CHECK(strstr(cairn_error_message(), "AWS_SECRET_ACCESS_KEY") != NULL);
	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	CHECK_INT(cairn_backend_s3_open(&be, "http://127.0.0.1:1/b", 0, NULL), CAIRN_EAUTH);
	CHECK(strstr(cairn_error_message(), "/nonexistent/credentials") != NULL);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	if (ak)
		setenv("AWS_ACCESS_KEY_ID", ak, 1);
	else
		unsetenv("AWS_ACCESS_KEY_ID");
	if (sk)
		setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
	else
		unsetenv("AWS_SECRET_ACCESS_KEY");
	free(ak);
	free(sk);
}

/* Where requests would go, from the backend's debug record at open (no
 * request is made). */
static char last_log[1024];

static void capture_log(cairn_log_level level, const char *component, const char *message,
	void *payload)
{
	(void)level; (void)payload;
	if (strcmp(component, "s3") == 0)
		snprintf(last_log, sizeof(last_log), "%s", message);
}

static void test_open_forms(void)
{
	static const struct {
		const char *spec, *region_env, *lookup, *location, *log;
	} cases[] = {
		{ "mybucket/some/prefix", NULL, NULL, "s3:https://s3.amazonaws.com/mybucket/some/prefix",
		  "region us-east-1, virtual-hosted-style requests to https://mybucket.s3.amazonaws.com," },
		{ "mybucket", "eu-west-1", NULL, "s3:https://s3.eu-west-1.amazonaws.com/mybucket",
		  "region eu-west-1, virtual-hosted-style requests to https://mybucket.s3.eu-west-1.amazonaws.com," },
		{ "s3.amazonaws.com/my.dotted.bucket/p", NULL, NULL,
		  "s3:https://s3.amazonaws.com/my.dotted.bucket/p",
		  "region us-east-1, path-style requests to https://s3.amazonaws.com," },
		{ "https://s3.ap-south-1.amazonaws.com/b-1/x", "us-east-2", NULL,
		  "s3:https://s3.ap-south-1.amazonaws.com/b-1/x",
		  "region ap-south-1, virtual-hosted-style requests to https://b-1.s3.ap-south-1.amazonaws.com," },
		{ "https://s3.amazonaws.com/bucket1", NULL, "s3.bucket-lookup=path",
		  "s3:https://s3.amazonaws.com/bucket1", "region us-east-1, path-style requests to https://s3.amazonaws.com," },
		{ "http://minio.example:9000/bucket1/r", NULL, NULL, "s3:http://minio.example:9000/bucket1/r",
		  "region us-east-1, path-style requests to http://minio.example:9000," },
		{ "http://minio.example:9000/bucket1/r", "cn-north-1", "s3.bucket-lookup=dns",
		  "s3:http://minio.example:9000/bucket1/r",
		  "region cn-north-1, virtual-hosted-style requests to http://bucket1.minio.example:9000," },
		{ "cnbucket", "cn-north-1", NULL, "s3:https://s3.cn-north-1.amazonaws.com.cn/cnbucket",
		  "virtual-hosted-style requests to https://cnbucket.s3.cn-north-1.amazonaws.com.cn," },
	};
	char *saved = getenv("AWS_DEFAULT_REGION") ? strdup(getenv("AWS_DEFAULT_REGION")) : NULL;
	char *ak = getenv("AWS_ACCESS_KEY_ID") ? strdup(getenv("AWS_ACCESS_KEY_ID")) : NULL;
	char *sk = getenv("AWS_SECRET_ACCESS_KEY") ? strdup(getenv("AWS_SECRET_ACCESS_KEY")) : NULL;

	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "topsecret", 1);
	unsetenv("AWS_REGION");
	cairn_log_set(CAIRN_LOG_DEBUG, capture_log, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_backend *be = NULL;
		const char *opt[1] = { cases[i].lookup };
		cairn_backend_options o = { opt, cases[i].lookup ? 1 : 0, NULL, 0, NULL };
		if (cases[i].region_env)
			setenv("AWS_DEFAULT_REGION", cases[i].region_env, 1);
		else
			unsetenv("AWS_DEFAULT_REGION");
		last_log[0] = '\0';
		CHECK_OK(cairn_backend_s3_open(&be, cases[i].spec, 0, &o));
		if (!be)
			continue;
		CHECK_STR(cairn_backend_location(be), cases[i].location);
		if (!strstr(last_log, cases[i].log)) {
			fprintf(stderr, "%s: log '%s' lacks '%s'\n", cases[i].spec, last_log, cases[i].log);
			CHECK(0);
		}
		cairn_backend_free(be);
	}
	cairn_log_set(CAIRN_LOG_WARN, NULL, NULL);
	if (saved)
		setenv("AWS_DEFAULT_REGION", saved, 1);
	else
		unsetenv("AWS_DEFAULT_REGION");
	free(saved);
	if (ak)
		setenv("AWS_ACCESS_KEY_ID", ak, 1);
	else
		unsetenv("AWS_ACCESS_KEY_ID");
	if (sk)
		setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
	else
		unsetenv("AWS_SECRET_ACCESS_KEY");
	free(ak);
	free(sk);
}

/* ---- against a server (CAIRN_TEST_S3_URL) ---- */

static char server_base[512];

static int server(void)
{
	const char *u = getenv("CAIRN_TEST_S3_URL");
	if (!u || !*u) {
		printf("  skipped: CAIRN_TEST_S3_URL is not set\n");
		return 0;
	}
	snprintf(server_base, sizeof(server_base), "%s", u);
	return 1;
}

static void random_hex(char *out, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char r[64];
	if (getrandom(r, n / 2 + 1, 0) < 0)
		memset(r, 0x5a, sizeof(r));
	for (size_t i = 0; i < n; i++)
		out[i] = digits[(r[i / 2] >> (i % 2 ? 0 : 4)) & 15];
	out[n] = '\0';
}

static int open_at(cairn_backend **be, const char *suffix, const char *const *opts, size_t n_opts)
{
	char loc[1024];
	cairn_backend_options o = { opts, n_opts, NULL, 0, NULL };
	snprintf(loc, sizeof(loc), "%s/%s", server_base, suffix);
	return cairn_backend_open_ex(be, loc, 0, &o);
}

typedef struct saver {
	cairn_backend *be;
	int first, count;
	atomic_int *failures;
} saver;

static void name_of(char out[CAIRN_ID_HEX_SIZE], int i)
{
	char text[32];
	cairn_id id;
	snprintf(text, sizeof(text), "object %d", i);
	cairn_sha256(&id, text, strlen(text));
	cairn_id_to_hex(out, &id);
}

static void *save_range(void *arg)
{
	saver *s = arg;
	for (int i = s->first; i < s->first + s->count; i++) {
		char name[CAIRN_ID_HEX_SIZE], body[16];
		cairn_handle h;
		name_of(name, i);
		cairn_handle_set(&h, CAIRN_FILE_INDEX, name);
		snprintf(body, sizeof(body), "%d", i);
		if (cairn_backend_save(s->be, &h, body, strlen(body)) < 0) {
			fprintf(stderr, "save %d: %s\n", i, cairn_error_message());
			atomic_fetch_add(s->failures, 1);
		}
	}
	return NULL;
}

#define MANY 1100
#define SAVERS 8

typedef struct tally {
	unsigned char seen[MANY];
	int n, dup, unknown, bad_size;
} tally;

static int tally_cb(const char *name, uint64_t size, void *payload)
{
	tally *t = payload;
	char want[CAIRN_ID_HEX_SIZE];
	char body[16];
	/* names are few enough to look up by recomputing */
	for (int i = 0; i < MANY; i++) {
		name_of(want, i);
		if (strcmp(want, name) == 0) {
			snprintf(body, sizeof(body), "%d", i);
			if (t->seen[i])
				t->dup++;
			t->seen[i] = 1;
			t->bad_size += size != strlen(body);
			t->n++;
			return 0;
		}
	}
	t->unknown++;
	return 0;
}

static int count_cb(const char *name, uint64_t size, void *payload)
{
	int *n = payload;
	(void)name; (void)size;
	++*n;
	return 0;
}

static int stop_cb(const char *name, uint64_t size, void *payload)
{
	int *n = payload;
	(void)name; (void)size;
	return ++*n == 1050 ? 5 : 0;
}

/* More than 1,000 objects under one prefix: the listing must follow the
 * continuation tokens (s3rver, like S3, answers 1,000 keys per page).
 * The prefix is left for t_s3.sh to count with restic. */
static void test_server_many_objects(void)
{
	cairn_backend *be = NULL;
	const char *name = getenv("CAIRN_TEST_S3_MANY");
	pthread_t t[SAVERS];
	saver s[SAVERS];
	atomic_int failures = 0;
	tally *ty = calloc(1, sizeof(*ty));
	int stopped = 0;

	if (!server() || !ty) {
		free(ty);
		return;
	}
	CHECK_OK(open_at(&be, name && *name ? name : "many", NULL, 0));
	if (!be) {
		free(ty);
		return;
	}
	CHECK_INT(be->max_connections, 5);
	for (int i = 0; i < SAVERS; i++) {
		s[i] = (saver){ be, i * (MANY / SAVERS), i == SAVERS - 1 ? MANY - i * (MANY / SAVERS) : MANY / SAVERS,
			&failures };
		pthread_create(&t[i], NULL, save_range, &s[i]);
	}
	for (int i = 0; i < SAVERS; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(atomic_load(&failures), 0);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_INDEX, tally_cb, ty));
	CHECK_INT(ty->n, MANY);
	CHECK_INT(ty->dup, 0);
	CHECK_INT(ty->unknown, 0);
	CHECK_INT(ty->bad_size, 0);
	/* a callback's non-zero answer stops the walk, also in a later page */
	CHECK_INT(cairn_backend_list(be, CAIRN_FILE_INDEX, stop_cb, &stopped), 5);
	CHECK_INT(stopped, 1050);
	free(ty);
	cairn_backend_free(be);
}

static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; p && i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* Objects at and above the multipart threshold, made small here. */
static void test_server_multipart(void)
{
	static const char *const opts[] = { "s3.multipart-threshold=6M", "s3.part-size=5MiB",
		"s3.connections=2" };
	size_t sizes[] = { (6u << 20) - 1, 6u << 20, (12u << 20) + 7 };
	cairn_backend *be = NULL;
	char dir[40] = "mp-";
	cairn_buf out = CAIRN_BUF_INIT;

	if (!server())
		return;
	random_hex(dir + 3, 16);
	CHECK_OK(open_at(&be, dir, opts, 3));
	if (!be)
		return;
	CHECK_INT(be->max_connections, 2);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *data = pattern(sizes[i], (unsigned)i + 1);
		char name[CAIRN_ID_HEX_SIZE];
		cairn_handle h;
		uint64_t size = 0;
		cairn_id id;

		cairn_sha256(&id, data, sizes[i]);
		cairn_id_to_hex(name, &id);
		cairn_handle_set(&h, CAIRN_FILE_PACK, name);
		CHECK_OK(cairn_backend_save(be, &h, data, sizes[i]));
		/* s3rver answers before its file is flushed: give it a moment */
		for (int k = 0; k < 50 && (cairn_backend_stat(&size, be, &h) < 0 || size != sizes[i]); k++)
			usleep(20000);
		CHECK_INT(size, sizes[i]);
		CHECK_OK(cairn_backend_load(&out, be, &h, 0, 0));
		CHECK(out.len == sizes[i] && memcmp(out.data, data, sizes[i]) == 0);
		CHECK_OK(cairn_backend_load(&out, be, &h, (5u << 20) - 3, 10));
		CHECK(out.len == 10 && memcmp(out.data, data + (5u << 20) - 3, 10) == 0);
		free(data);
	}
	cairn_buf_release(&out);
	cairn_backend_free(be);
}

/* Virtual-hosted requests: the bucket in the Host header.  Against s3rver on
 * "localhost" (curl resolves *.localhost itself), bucket B is served as the
 * bucket "B.localhost", which create() makes. */
static void test_server_virtual_hosted(void)
{
	static const char *const opts[] = { "s3.bucket-lookup=dns" };
	cairn_backend *be = NULL;
	char loc[600], bucket[40] = "vh-", name[CAIRN_ID_HEX_SIZE];
	const char *port;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_backend_options o = { opts, 1, NULL, 0, NULL };
	cairn_handle h;
	int n = 0;

	if (!server())
		return;
	port = strstr(server_base, "127.0.0.1:");
	if (!port) {
		printf("  skipped: virtual-hosted test needs a 127.0.0.1 server\n");
		return;
	}
	random_hex(bucket + 3, 12);
	snprintf(loc, sizeof(loc), "s3:http://localhost:%d/%s/repo", atoi(port + 10), bucket);
	CHECK_OK(cairn_backend_open_ex(&be, loc, 0, &o));
	if (!be)
		return;
	CHECK_OK(cairn_backend_create(be));
	name_of(name, 1);
	cairn_handle_set(&h, CAIRN_FILE_SNAPSHOT, name);
	CHECK_OK(cairn_backend_save(be, &h, "virtual", 7));
	CHECK_OK(cairn_backend_load(&out, be, &h, 1, 3));
	CHECK(out.len == 3 && memcmp(out.data, "irt", 3) == 0);
	CHECK_OK(cairn_backend_list(be, CAIRN_FILE_SNAPSHOT, count_cb, &n));
	CHECK_INT(n, 1);
	CHECK_OK(cairn_backend_remove(be, &h));
	CHECK_INT(cairn_backend_remove(be, &h), CAIRN_ENOTFOUND);
	cairn_buf_release(&out);
	cairn_backend_free(be);
}

/* A missing object or bucket: CAIRN_ENOTFOUND whose message names the
 * operation, the object, the status and S3's code -- also for a HEAD, whose
 * 404 has no body to carry the code. */
static void test_server_missing(void)
{
	cairn_backend *be = NULL;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	char name[CAIRN_ID_HEX_SIZE], want[200], bucket_loc[600];
	const char *slash;
	uint64_t size;

	if (!server())
		return;
	CHECK_OK(open_at(&be, "missing", NULL, 0));
	if (!be)
		return;
	name_of(name, 404);
	cairn_handle_set(&h, CAIRN_FILE_PACK, name);
	snprintf(want, sizeof(want), "pack 'data/%.2s/%s'", name, name);
	CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_ENOTFOUND);
	CHECK(strstr(cairn_error_message(), "cannot stat ") != NULL);
	CHECK(strstr(cairn_error_message(), want) != NULL);
	CHECK(strstr(cairn_error_message(), "does not exist (HTTP 404 NoSuchKey)") != NULL);
	CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_ENOTFOUND);
	CHECK(strstr(cairn_error_message(), "cannot read ") != NULL);
	CHECK(strstr(cairn_error_message(), want) != NULL);
	CHECK(strstr(cairn_error_message(), "(HTTP 404 NoSuchKey: ") != NULL);
	CHECK_INT(cairn_backend_load(&out, be, &h, 5, 10), CAIRN_ENOTFOUND);
	CHECK(strstr(cairn_error_message(), "NoSuchKey") != NULL);
	CHECK_INT(cairn_backend_remove(be, &h), CAIRN_ENOTFOUND);
	CHECK(strstr(cairn_error_message(), want) != NULL);
	CHECK(strstr(cairn_error_message(), "NoSuchKey") != NULL);
	cairn_backend_free(be);

	/* a bucket that does not exist */
	be = NULL;
	slash = strrchr(server_base, '/');
	snprintf(bucket_loc, sizeof(bucket_loc), "%.*s/no-such-bucket-%d/repo",
		slash ? (int)(slash - server_base) : 0, server_base, (int)getpid());
	CHECK_OK(cairn_backend_open(&be, bucket_loc, 0));
	if (be) {
		cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
		CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_ENOTFOUND);
		CHECK(strstr(cairn_error_message(), "cannot read config 'config'") != NULL);
		CHECK(strstr(cairn_error_message(), "NoSuchBucket") != NULL);
		CHECK(cairn_backend_save(be, &h, "x", 1) < 0);
		CHECK(strstr(cairn_error_message(), "cannot store config 'config'") != NULL);
		CHECK(strstr(cairn_error_message(), "NoSuchBucket") != NULL);
		cairn_backend_free(be);
	}
	cairn_buf_release(&out);
}

/* A wrong secret: CAIRN_EAUTH at once (not retried), naming the operation,
 * the object and the server's code, never the secret. */
static void test_server_wrong_secret(void)
{
	cairn_backend *be = NULL;
	cairn_buf out = CAIRN_BUF_INIT;
	cairn_handle h;
	uint64_t size;
	char *sk = getenv("AWS_SECRET_ACCESS_KEY") ? strdup(getenv("AWS_SECRET_ACCESS_KEY")) : NULL;

	if (!server()) {
		free(sk);
		return;
	}
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-123", 1);
	CHECK_OK(open_at(&be, "wrong", NULL, 0));
	if (be) {
		cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
		CHECK_INT(cairn_backend_stat(&size, be, &h), CAIRN_EAUTH);
		CHECK(strstr(cairn_error_message(), "access denied: cannot stat config 'config'") != NULL);
		CHECK(strstr(cairn_error_message(), "SignatureDoesNotMatch") != NULL);
		CHECK(strstr(cairn_error_message(), "wrong-secret-123") == NULL);
		CHECK_INT(cairn_backend_load(&out, be, &h, 0, 0), CAIRN_EAUTH);
		CHECK(strstr(cairn_error_message(), "read config 'config'") != NULL);
		CHECK_INT(cairn_backend_save(be, &h, "x", 1), CAIRN_EAUTH);
		CHECK(strstr(cairn_error_message(), "store config 'config'") != NULL);
		CHECK(strstr(cairn_error_message(), "wrong-secret-123") == NULL);
		cairn_backend_free(be);
	}
	if (sk)
		setenv("AWS_SECRET_ACCESS_KEY", sk, 1);
	free(sk);
	cairn_buf_release(&out);
}

UNIT_MAIN(test_locations, test_region_from_host, test_credentials_file, test_xml_reader,
	test_xml_limits, test_list_answers, test_error_answers, test_mutations, test_options,
	test_open_refusals, test_open_forms, test_server_many_objects, test_server_multipart,
	test_server_virtual_hosted, test_server_missing, test_server_wrong_secret)
