/* cmd_dump.c: `cairn dump SNAPSHOT FILE`: write one file of a snapshot to
 * stdout, blob by blob, each blob verified (MAC and SHA-256) before any of
 * its bytes are written.  Like restore, node.size decides the length: the
 * content is cut at size, and a size larger than the content is padded
 * with zeros.  A directory is written as a tar archive (ustar, with pax
 * records for long names, large numbers and sub-second times) of everything
 * below it (not the directory itself, as restic does), each entry named by
 * its path inside the snapshot without the leading "/".
 *
 * Memory: one blob buffer, reused; one decoded tree per directory level.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"
#include "tree_walk.h"

const char cmd_dump_usage[] =
	"Usage: cairn -r REPO dump [options] SNAPSHOT PATH\n\n"
	"Write the file at PATH in the snapshot (\"latest\" is the newest one matching\n"
	"--host/--tag/--path) to stdout.  A directory is written as a tar archive.\n"
	"Every blob is verified before it is written.\n\n"
	"Options:\n"
	"  -H, --host H          with \"latest\": only snapshots of host H (repeatable)\n"
	"      --tag T[,T]       with \"latest\": only snapshots with these tags (repeatable)\n"
	"      --path P          with \"latest\": only snapshots of path P (repeatable)\n";

typedef struct dumper {
	cairn_repo *repo;
	int fd;              /* output */
	cairn_buf blob;      /* the one blob buffer */
	cairn_buf header;    /* scratch for tar headers */
	cairn_buf scratch;   /* scratch for pax records */
	uint64_t written;    /* bytes written to fd (tar: for the 512 alignment) */
	int failed;          /* an entry could not be dumped (reported) */
} dumper;

static int write_all(dumper *d, const void *data, size_t len)
{
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t w = write(d->fd, p, len);
		if (w < 0) {
			if (errno == EINTR && !cli_interrupted())
				continue;
			return cairn_error_set_errno(CAIRN_EIO, errno, "cannot write to stdout");
		}
		p += w;
		len -= (size_t)w;
		d->written += (uint64_t)w;
	}
	return 0;
}

static int write_zeros(dumper *d, uint64_t n)
{
	static const unsigned char zeros[4096];
	int r;
	while (n > 0) {
		size_t k = n > sizeof(zeros) ? sizeof(zeros) : (size_t)n;
		if ((r = write_all(d, zeros, k)) < 0)
			return r;
		n -= k;
	}
	return 0;
}

/* Stream the content of file node n: exactly n->size bytes.  A blob that
 * does not load stops with the error (nothing unverified is written). */
static int dump_content(dumper *d, const char *path, const cairn_node *n)
{
	uint64_t off = 0;
	int r;

	for (size_t i = 0; off < n->size && i < n->n_content; i++) {
		size_t len;
		if (cli_interrupted())
			return cairn_error_set(CAIRN_ECANCELED, "interrupted");
		if ((r = cairn_repo_load_blob(&d->blob, d->repo, CAIRN_BLOB_DATA, &n->content[i])) < 0)
			return cairn_error_wrap(r, "cannot dump '%s'", path);
		len = d->blob.len;
		if (len > n->size - off)
			len = (size_t)(n->size - off);
		if ((r = write_all(d, d->blob.data, len)) < 0)
			return r;
		off += len;
	}
	return off < n->size ? write_zeros(d, n->size - off) : 0;
}

/* ---- tar ---- */

static void octal(char *field, size_t width, uint64_t v)
{
	/* width-1 digits and a NUL, as ustar wants */
	snprintf(field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
}

/* Append one pax record "LEN key=value\n" (LEN counts the whole record). */
static int pax_record(cairn_buf *b, const char *key, const char *value)
{
	size_t body = 1 + strlen(key) + 1 + strlen(value) + 1, len = body + 1;
	char digits[24];
	/* The length includes its own digits: grow until it is stable. */
	for (;;) {
		size_t total = body + (size_t)snprintf(digits, sizeof(digits), "%zu", len);
		if (total == len)
			break;
		len = total;
	}
	return cairn_buf_printf(b, "%zu %s=%s\n", len, key, value);
}

/* Build a 512-byte ustar header into d->header (replaced). */
static int ustar_header(dumper *d, const char *name, char type, uint64_t size, const cairn_node *n,
	const char *linkname)
{
	char *h;
	unsigned sum = 0;
	int r;

	cairn_buf_clear(&d->header);
	if ((r = cairn_buf_reserve(&d->header, 512)) < 0)
		return r;
	h = (char *)d->header.data;
	memset(h, 0, 512);
	d->header.len = 512;
	strncpy(h, name, 100);
	octal(h + 100, 8, n ? cairn_mode_to_posix(n->mode) & 07777 : 0644);
	octal(h + 108, 8, n && n->uid <= 07777777 ? n->uid : 0);
	octal(h + 116, 8, n && n->gid <= 07777777 ? n->gid : 0);
	octal(h + 124, 12, size <= 077777777777ull ? size : 0);
	octal(h + 136, 12, n && n->mtime.sec > 0 && n->mtime.sec <= 077777777777ll
		? (uint64_t)n->mtime.sec : 0);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (linkname)
		strncpy(h + 157, linkname, 100);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	if (n && n->user)
		strncpy(h + 265, n->user, 32);
	if (n && n->group)
		strncpy(h + 297, n->group, 32);
	if (n && (n->type == CAIRN_NODE_DEV || n->type == CAIRN_NODE_CHARDEV)) {
		dev_t dev = (dev_t)n->device;
		octal(h + 329, 8, major(dev) & 07777777);
		octal(h + 337, 8, minor(dev) & 07777777);
	}
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum & 0777777);
	h[155] = ' ';
	return 0;
}

/* Write the headers of one entry: a pax 'x' header when a field does not
 * fit ustar, then the ustar header. */
static int tar_entry(dumper *d, const char *name, char type, uint64_t size, const cairn_node *n,
	const char *linkname)
{
	char num[32];
	int r;

	cairn_buf_clear(&d->scratch);
	if (strlen(name) >= 100 && (r = pax_record(&d->scratch, "path", name)) < 0)
		return r;
	if (linkname && strlen(linkname) >= 100 && (r = pax_record(&d->scratch, "linkpath", linkname)) < 0)
		return r;
	if (size > 077777777777ull) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		if ((r = pax_record(&d->scratch, "size", num)) < 0)
			return r;
	}
	if (n && (n->uid > 07777777 || n->gid > 07777777)) {
		snprintf(num, sizeof(num), "%u", n->uid);
		if ((r = pax_record(&d->scratch, "uid", num)) < 0)
			return r;
		snprintf(num, sizeof(num), "%u", n->gid);
		if ((r = pax_record(&d->scratch, "gid", num)) < 0)
			return r;
	}
	if (n && (n->mtime.nsec || n->mtime.sec < 0)) {
		snprintf(num, sizeof(num), "%lld.%09d", (long long)n->mtime.sec, (int)n->mtime.nsec);
		if ((r = pax_record(&d->scratch, "mtime", num)) < 0)
			return r;
	}
	if (d->scratch.len) {
		size_t len = d->scratch.len;
		if ((r = ustar_header(d, "././@PaxHeader", 'x', len, NULL, NULL)) < 0 ||
			(r = write_all(d, d->header.data, 512)) < 0 ||
			(r = write_all(d, d->scratch.data, len)) < 0 ||
			(r = write_zeros(d, (512 - len % 512) % 512)) < 0)
			return r;
	}
	if ((r = ustar_header(d, name, type, size, n, linkname)) < 0)
		return r;
	return write_all(d, d->header.data, 512);
}

static int tar_enter(const char *path, const cairn_node *n, void *payload)
{
	dumper *d = payload;
	const char *name = path + 1; /* no leading "/" */
	cairn_buf dirname = CAIRN_BUF_INIT;
	int r = 0;

	if (cli_interrupted())
		return cairn_error_set(CAIRN_ECANCELED, "interrupted");
	switch (n->type) {
	case CAIRN_NODE_DIR:
		if ((r = cairn_buf_puts(&dirname, name)) < 0 || (r = cairn_buf_puts(&dirname, "/")) < 0 ||
			!cairn_buf_cstr(&dirname)) {
			r = r < 0 ? r : cairn_error_set(CAIRN_ENOMEM, "out of memory");
			break;
		}
		r = tar_entry(d, (const char *)dirname.data, '5', 0, n, NULL);
		break;
	case CAIRN_NODE_FILE:
		if ((r = tar_entry(d, name, '0', n->size, n, NULL)) < 0)
			break;
		if ((r = dump_content(d, path, n)) < 0)
			break;
		r = write_zeros(d, (512 - n->size % 512) % 512);
		break;
	case CAIRN_NODE_SYMLINK:
		r = tar_entry(d, name, '2', 0, n, n->linktarget ? n->linktarget : "");
		break;
	case CAIRN_NODE_CHARDEV:
		r = tar_entry(d, name, '3', 0, n, NULL);
		break;
	case CAIRN_NODE_DEV:
		r = tar_entry(d, name, '4', 0, n, NULL);
		break;
	case CAIRN_NODE_FIFO:
		r = tar_entry(d, name, '6', 0, n, NULL);
		break;
	case CAIRN_NODE_SOCKET:
		break; /* tar has no sockets */
	}
	cairn_buf_release(&dirname);
	return r < 0 ? r : TW_DESCEND;
}

static int tar_tree_error(const char *path, const cairn_node *n, int code, void *payload)
{
	/* A tar with a silently missing subtree would look complete: stop. */
	return cairn_error_wrap(code, "cannot dump '%s'", path);
}

int cmd_dump(const cli_globals *g, int argc, char **argv)
{
	static const struct option options[] = {
		CLI_FILTER_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	cli_snapshot_filter filter = { 0 };
	cli_repo cr = CLI_REPO_INIT;
	cairn_snapshot snap = CAIRN_SNAPSHOT_INIT;
	cairn_node node = CAIRN_NODE_INIT;
	cairn_buf norm = CAIRN_BUF_INIT;
	dumper d;
	int c, r = 0, rc = CLI_EXIT_FATAL;

	memset(&d, 0, sizeof(d));
	d.fd = STDOUT_FILENO;
	while ((c = getopt_long(argc, argv, "H:h", options, NULL)) != -1) {
		switch (c) {
		case 'H': case 'T': case 'P': r = cli_filter_option(&filter, c, optarg); break;
		case 'h':
			fputs(cmd_dump_usage, stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			fputs(cmd_dump_usage, stderr);
			goto out;
		}
		if (r < 0) {
			cli_fail("cannot parse options");
			goto out;
		}
	}
	if (argc - optind != 2) {
		cli_error("dump needs a snapshot and a path, see 'cairn help dump'");
		goto out;
	}
	if (tw_path_normalize(&norm, argv[optind + 1]) < 0) {
		cli_fail("invalid path '%s'", argv[optind + 1]);
		goto out;
	}
	if (cli_repo_open(&cr, g, CLI_LOCK_SHARED_DEFERRED, 1) != 0)
		goto out;
	d.repo = cr.repo;
	if (cli_find_snapshot(&snap, cr.repo, argv[optind], &filter) != 0)
		goto out;
	if (tw_resolve(&node, cr.repo, &snap.tree, (const char *)norm.data) < 0) {
		cli_fail("cannot dump");
		goto out;
	}
	switch (node.type) {
	case CAIRN_NODE_FILE:
		r = dump_content(&d, (const char *)norm.data, &node);
		break;
	case CAIRN_NODE_DIR: {
		const char *p = (const char *)norm.data;
		tw_visitor v = { tar_enter, NULL, tar_tree_error, &d };
		if (isatty(d.fd)) {
			cli_error("'%s' is a directory: its tar archive is not written to a terminal", p);
			goto out;
		}
		/* What is below the dir, not the dir itself (as restic does). */
		if ((r = tw_walk(cr.repo, &node.subtree, p, &v)) < 0)
			break;
		r = write_zeros(&d, 1024); /* end of archive */
		break;
	}
	default:
		cli_error("cannot dump '%s': it is a %s, not a file or directory", (const char *)norm.data,
			cairn_node_type_name(node.type));
		goto out;
	}
	if (r == CAIRN_ECANCELED || cli_interrupted()) {
		cli_error("interrupted");
		rc = CLI_EXIT_INTERRUPTED;
		goto out;
	}
	if (r < 0) {
		cli_fail("dump failed");
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	cairn_buf_release(&d.blob);
	cairn_buf_release(&d.header);
	cairn_buf_release(&d.scratch);
	cairn_buf_release(&norm);
	cairn_node_release(&node);
	cairn_snapshot_release(&snap);
	rc = cli_repo_finish(&cr, rc);
	cli_filter_release(&filter);
	return rc;
}
