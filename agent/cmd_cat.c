/* cmd_cat.c: `cairn cat TYPE [ID]`: print one repository object decoded.
 *
 *   config               the decrypted config JSON
 *   snapshot ID|latest   a snapshot file's JSON (ID may be a unique prefix)
 *   index ID, lock ID    an index / lock file's JSON (unique prefix)
 *   key ID               a key file as stored (plain JSON; it holds the
 *                        master key only encrypted under the password)
 *   pack ID              the raw pack file bytes
 *   blob ID, tree ID     a blob's verified plaintext (full id; "blob" tries
 *                        data first, then tree)
 *
 * Every file is verified on the way (its name is the SHA-256 of its bytes,
 * the MAC holds; blobs hash to their id), so what is printed is what the
 * repository really says.  The master key itself is never printed.  As
 * restic does, config, snapshot, lock and key documents are printed indented
 * (two spaces, keys in stored order) and index files as stored; a document
 * that does not parse as JSON is printed as stored.  A shared lock is held;
 * blob and tree load the index.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include <jansson.h>

#include "cli.h"

const char cmd_cat_usage[] =
	"Usage: cairn cat config|snapshot ID|index ID|key ID|lock ID|pack ID|blob ID|tree ID\n"
	"\n"
	"Print an object of the repository, decrypted and verified: the config,\n"
	"a snapshot, index, lock or key file (JSON), a pack file (raw bytes) or a\n"
	"blob's content.  IDs of files may be unique prefixes; blob and tree IDs\n"
	"must be complete.  \"snapshot latest\" is the newest snapshot.\n"
	"\n"
	"Options:\n"
	"  -h, --help   show this help\n";

typedef struct prefix_match {
	const char *prefix;
	size_t prefix_len;
	char name[CAIRN_ID_HEX_SIZE];
	size_t count;
} prefix_match;

static int prefix_cb(const char *name, uint64_t size, void *payload)
{
	prefix_match *m = payload;

	if (strncmp(name, m->prefix, m->prefix_len) != 0)
		return 0;
	if (m->count++ == 0)
		snprintf(m->name, sizeof(m->name), "%s", name);
	return 0;
}

/* Resolve a unique prefix of a file name of `type` into *out. */
static int resolve_prefix(cairn_id *out, cairn_backend *be, cairn_file_type type, const char *arg)
{
	char lower[CAIRN_ID_HEX_SIZE];
	prefix_match m;
	size_t len = strlen(arg);
	int r;

	if (len == 0 || len > 64)
		return cairn_error_set(CAIRN_EINVAL, "invalid %s id '%s'", cairn_file_type_name(type), arg);
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)arg[i]))
			return cairn_error_set(CAIRN_EINVAL, "invalid %s id '%s'",
				cairn_file_type_name(type), arg);
		lower[i] = (char)tolower((unsigned char)arg[i]);
	}
	lower[len] = '\0';
	memset(&m, 0, sizeof(m));
	m.prefix = lower;
	m.prefix_len = len;
	if ((r = cairn_backend_list(be, type, prefix_cb, &m)) < 0)
		return cairn_error_wrap(r, "cannot list the %s files", cairn_file_type_name(type));
	if (m.count == 0)
		return cairn_error_set(CAIRN_ENOTFOUND, "no %s file matches '%s'",
			cairn_file_type_name(type), arg);
	if (m.count > 1)
		return cairn_error_set(CAIRN_EINVAL, "prefix '%s' matches %zu %s files", arg, m.count,
			cairn_file_type_name(type));
	return cairn_id_from_hex(out, m.name);
}

/* Write bytes to stdout; `text` adds a final newline when missing. */
static int emit(const cairn_buf *b, int text)
{
	if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
		return cairn_error_set_errno(CAIRN_EIO, errno, "cannot write to stdout");
	if (text && (b->len == 0 || b->data[b->len - 1] != '\n'))
		putchar('\n');
	if (fflush(stdout) != 0)
		return cairn_error_set(CAIRN_EIO, "cannot write to stdout");
	return 0;
}

/* Print a JSON document: indented when `pretty` and it parses, else as stored. */
static int emit_json(const cairn_buf *b, int pretty)
{
	json_t *doc;
	char *text;
	int r;

	if (!pretty || !(doc = json_loadb((const char *)b->data, b->len, 0, NULL)))
		return emit(b, 1);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return emit(b, 1);
	r = puts(text) < 0 || fflush(stdout) != 0
		? cairn_error_set_errno(CAIRN_EIO, errno, "cannot write to stdout") : 0;
	free(text);
	return r;
}

static int cat_config(cli_repo *r)
{
	cairn_buf stored = CAIRN_BUF_INIT, json = CAIRN_BUF_INIT;
	cairn_handle h;
	int rc;

	cairn_handle_set(&h, CAIRN_FILE_CONFIG, NULL);
	if (cairn_backend_load(&stored, r->backend, &h, 0, 0) < 0 ||
		cairn_repo_decode_unpacked(&json, r->repo, stored.data, stored.len) < 0) {
		rc = cli_fail("cannot load the config");
		goto out;
	}
	rc = emit_json(&json, 1) < 0 ? cli_fail("cat config") : CLI_EXIT_OK;
out:
	cairn_buf_release(&stored);
	cairn_buf_release(&json);
	return rc;
}

/* snapshot/index/lock: an unpacked file, verified and decoded. */
static int cat_unpacked(cli_repo *r, cairn_file_type type, const char *arg)
{
	cairn_buf json = CAIRN_BUF_INIT;
	cairn_id id;
	int rc;

	if (type == CAIRN_FILE_SNAPSHOT && strcmp(arg, "latest") == 0) {
		cairn_snapshot s = CAIRN_SNAPSHOT_INIT;
		if ((rc = cli_find_snapshot(&s, r->repo, arg, NULL)) != 0)
			goto out;
		id = s.id;
		cairn_snapshot_release(&s);
	} else if (type == CAIRN_FILE_SNAPSHOT) {
		/* by name only, so that a snapshot whose JSON is bad can still be shown */
		if (cairn_repo_find_snapshot(&id, r->repo, arg) < 0) {
			rc = cli_fail("cannot find snapshot '%s'", arg);
			goto out;
		}
	} else if (resolve_prefix(&id, r->backend, type, arg) < 0) {
		rc = cli_fail("cannot find %s '%s'", cairn_file_type_name(type), arg);
		goto out;
	}
	if (cairn_repo_load_unpacked(&json, r->repo, type, &id) < 0) {
		rc = cli_fail("cannot load %s '%s'", cairn_file_type_name(type), arg);
		goto out;
	}
	rc = emit_json(&json, type != CAIRN_FILE_INDEX) < 0
		? cli_fail("cat %s", cairn_file_type_name(type)) : CLI_EXIT_OK;
out:
	cairn_buf_release(&json);
	return rc;
}

/* key/pack: the stored bytes, checked against the name. */
static int cat_raw(cli_repo *r, cairn_file_type type, const char *arg)
{
	cairn_buf stored = CAIRN_BUF_INIT;
	cairn_handle h;
	cairn_id id, actual;
	char hex[CAIRN_ID_HEX_SIZE];
	int rc;

	if (resolve_prefix(&id, r->backend, type, arg) < 0) {
		rc = cli_fail("cannot find %s '%s'", cairn_file_type_name(type), arg);
		goto out;
	}
	cairn_id_to_hex(hex, &id);
	cairn_handle_set(&h, type, hex);
	if (cairn_backend_load(&stored, r->backend, &h, 0, 0) < 0) {
		rc = cli_fail("cannot load %s '%s'", cairn_file_type_name(type), hex);
		goto out;
	}
	cairn_sha256(&actual, stored.data, stored.len);
	if (!cairn_id_equal(&actual, &id)) {
		cli_error("%s file '%s' is damaged: content does not match its name",
			cairn_file_type_name(type), hex);
		rc = CLI_EXIT_FATAL;
		goto out;
	}
	rc = (type == CAIRN_FILE_KEY ? emit_json(&stored, 1) : emit(&stored, 0)) < 0
		? cli_fail("cat %s", cairn_file_type_name(type)) : CLI_EXIT_OK;
out:
	cairn_buf_release(&stored);
	return rc;
}

/* blob/tree: plaintext of a blob through the index. */
static int cat_blob(cli_repo *r, const char *what, const char *arg)
{
	cairn_buf plain = CAIRN_BUF_INIT;
	cairn_id id;
	int rc, tree_only = strcmp(what, "tree") == 0;

	if (cairn_id_from_hex(&id, arg) < 0) {
		cli_error("invalid %s id '%s': want 64 hex characters", what, arg);
		rc = CLI_EXIT_FATAL;
		goto out;
	}
	if (!tree_only && cairn_repo_has_blob(r->repo, CAIRN_BLOB_DATA, &id) == 1)
		rc = cairn_repo_load_blob(&plain, r->repo, CAIRN_BLOB_DATA, &id);
	else
		rc = cairn_repo_load_blob(&plain, r->repo, CAIRN_BLOB_TREE, &id);
	if (rc < 0) {
		rc = cli_fail("cannot load %s '%s'", what, arg);
		goto out;
	}
	rc = emit(&plain, 0) < 0 ? cli_fail("cat %s", what) : CLI_EXIT_OK;
out:
	cairn_buf_release(&plain);
	return rc;
}

int cmd_cat(const cli_globals *g, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct { const char *name; cairn_file_type type; } files[] = {
		{ "snapshot", CAIRN_FILE_SNAPSHOT }, { "index", CAIRN_FILE_INDEX },
		{ "lock", CAIRN_FILE_LOCK }, { "key", CAIRN_FILE_KEY }, { "pack", CAIRN_FILE_PACK },
	};
	cli_repo r = CLI_REPO_INIT;
	const char *what, *arg;
	int c, rc, is_blob;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(cmd_cat_usage, stdout);
			return CLI_EXIT_OK;
		default:
			fputs(cmd_cat_usage, stderr);
			return CLI_EXIT_FATAL;
		}
	}
	if (optind >= argc) {
		fputs(cmd_cat_usage, stderr);
		return CLI_EXIT_FATAL;
	}
	what = argv[optind];
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (strcmp(what, "masterkey") == 0) {
		cli_error("cat masterkey is not supported: cairn never prints the master key");
		return CLI_EXIT_FATAL;
	}
	is_blob = strcmp(what, "blob") == 0 || strcmp(what, "tree") == 0;
	if (strcmp(what, "config") == 0) {
		if (arg) {
			cli_error("cat config takes no id");
			return CLI_EXIT_FATAL;
		}
	} else {
		size_t i;
		for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
			if (strcmp(what, files[i].name) == 0)
				break;
		if (i == sizeof(files) / sizeof(files[0]) && !is_blob) {
			cli_error("unknown type '%s': want config, snapshot, index, key, lock, pack, "
				"blob or tree", what);
			return CLI_EXIT_FATAL;
		}
		if (!arg) {
			cli_error("cat %s needs an id", what);
			return CLI_EXIT_FATAL;
		}
	}
	if (optind + 2 < argc && arg) {
		cli_error("cat takes one id (got '%s' too)", argv[optind + 2]);
		return CLI_EXIT_FATAL;
	}

	if ((rc = cli_repo_open(&r, g, CLI_LOCK_SHARED_DEFERRED, is_blob)) != 0)
		goto out;
	if (strcmp(what, "config") == 0)
		rc = cat_config(&r);
	else if (is_blob)
		rc = cat_blob(&r, what, arg);
	else if (strcmp(what, "key") == 0 || strcmp(what, "pack") == 0)
		rc = cat_raw(&r, strcmp(what, "key") == 0 ? CAIRN_FILE_KEY : CAIRN_FILE_PACK, arg);
	else
		rc = cat_unpacked(&r, strcmp(what, "snapshot") == 0 ? CAIRN_FILE_SNAPSHOT
			: strcmp(what, "index") == 0 ? CAIRN_FILE_INDEX : CAIRN_FILE_LOCK, arg);
out:
	return cli_repo_finish(&r, rc);
}
