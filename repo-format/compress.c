/* compress.c: zstd as restic's repository format v2 uses it
 * (include/cairn/compress.h, restic-format.md §5-§6).
 *
 * Writing: one frame per call, content size in the header, no checksum, at
 * the level of the chosen --compression mode.  Reading must accept what
 * restic's Go encoder writes: frames without a content size, and (as its
 * decoder does) several concatenated frames.  Blobs are decoded in one pass
 * into exactly their recorded plaintext size; unpacked files, whose size is
 * recorded nowhere, are decoded by streaming under a caller-given cap.
 *
 * Invariants and performance:
 * - Each thread keeps one ZSTD_CCtx and one ZSTD_DCtx, created on first use
 *   and freed by a pthread key destructor when the thread exits.  They are
 *   never shared between threads, so no locks are taken; their working
 *   memory (several MiB at high levels) is reused across calls.
 * - Every call resets its context's session first, so a failed call leaves
 *   nothing behind for the next one.
 * - Output never exceeds what the caller allowed: decompress_exact writes at
 *   most ulen bytes, decompress_stream at most max_len (plus nothing on
 *   error: the appended part is dropped).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include <cairn/compress.h>

/* ---- per-thread contexts ---- */

struct zctx {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
};

static pthread_once_t zkey_once = PTHREAD_ONCE_INIT;
static pthread_key_t zkey;
static int zkey_ok;
/* Fast path to this thread's contexts; the pthread key owns them. */
static _Thread_local struct zctx *zcached;

/* Free a thread's contexts; runs at thread exit (pthread key destructor). */
static void zctx_free(void *p)
{
	struct zctx *z = p;
	if (!z)
		return;
	if (zcached == z)
		zcached = NULL;
	ZSTD_freeCCtx(z->cctx);
	ZSTD_freeDCtx(z->dctx);
	free(z);
}

static void zkey_init(void)
{
	zkey_ok = pthread_key_create(&zkey, zctx_free) == 0;
}

/* Borrow this thread's context holder (owned by the thread). */
static int thread_zctx(struct zctx **out)
{
	struct zctx *z = NULL;

	if (zcached) {
		*out = zcached;
		return 0;
	}
	pthread_once(&zkey_once, zkey_init);
	if (!zkey_ok)
		return cairn_error_set(CAIRN_ENOMEM, "cannot create zstd thread key");
	z = calloc(1, sizeof(*z));
	if (!z || pthread_setspecific(zkey, z) != 0) {
		free(z);
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate zstd context");
	}
	zcached = z;
	*out = z;
	return 0;
}

static int get_cctx(ZSTD_CCtx **out)
{
	struct zctx *z = NULL;
	CAIRN_TRY(thread_zctx(&z));
	if (!z->cctx && !(z->cctx = ZSTD_createCCtx()))
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate zstd compression context");
	*out = z->cctx;
	return 0;
}

static int get_dctx(ZSTD_DCtx **out)
{
	struct zctx *z = NULL;
	CAIRN_TRY(thread_zctx(&z));
	if (!z->dctx && !(z->dctx = ZSTD_createDCtx()))
		return cairn_error_set(CAIRN_ENOMEM, "cannot allocate zstd decompression context");
	*out = z->dctx;
	return 0;
}

/* ---- modes ---- */

int cairn_compression_parse(cairn_compression *out, const char *name)
{
	static const struct { const char *name; cairn_compression mode; } modes[] = {
		{ "auto", CAIRN_COMPRESSION_AUTO },
		{ "off", CAIRN_COMPRESSION_OFF },
		{ "fastest", CAIRN_COMPRESSION_FASTEST },
		{ "better", CAIRN_COMPRESSION_BETTER },
		{ "max", CAIRN_COMPRESSION_MAX },
	};

	if (!out || !name)
		return cairn_error_set(CAIRN_EINVAL, "compression mode missing");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(name, modes[i].name) == 0) {
			*out = modes[i].mode;
			return 0;
		}
	}
	return cairn_error_set(CAIRN_EINVAL,
		"invalid compression mode '%s' (want auto, off, fastest, better or max)", name);
}

/* The zstd level of a mode; 0 for CAIRN_COMPRESSION_OFF (store raw: do not
 * pass 0 to cairn_zstd_compress, zstd reads it as its default level). */
int cairn_compression_level(cairn_compression mode)
{
	switch (mode) {
	case CAIRN_COMPRESSION_AUTO: return 3;
	case CAIRN_COMPRESSION_OFF: return 0;
	case CAIRN_COMPRESSION_FASTEST: return 1;
	case CAIRN_COMPRESSION_BETTER: return 7;
	case CAIRN_COMPRESSION_MAX: return 19;
	}
	return 3;
}

/* ---- compression ---- */

/* out is replaced by one frame (caller owns out, as always). */
int cairn_zstd_compress(cairn_buf *out, const void *in, size_t len, int level)
{
	ZSTD_CCtx *cctx = NULL;
	size_t bound, n;
	int r;

	if (!out || (!in && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "zstd compress: missing argument");
	if ((r = get_cctx(&cctx)) < 0)
		return r;
	bound = ZSTD_compressBound(len);
	if (ZSTD_isError(bound))
		return cairn_error_set(CAIRN_ENOMEM, "zstd compress: %zu bytes too large", len);
	out->len = 0;
	if ((r = cairn_buf_reserve(out, bound)) < 0)
		return r;
	/* ZSTD_compressCCtx resets the session and ignores leftover advanced
	 * parameters: plain frame, content size on, checksum off. */
	n = ZSTD_compressCCtx(cctx, out->data, bound, in, len, level);
	if (ZSTD_isError(n))
		return cairn_error_set(CAIRN_EIO, "zstd compress failed: %s", ZSTD_getErrorName(n));
	out->len = n;
	return 0;
}

/* ---- decompression ---- */

/* Writes exactly ulen bytes into the caller's out or fails. */
int cairn_zstd_decompress_exact(void *out, size_t ulen, const void *in, size_t len)
{
	ZSTD_DCtx *dctx = NULL;
	size_t n;
	int r;

	if ((!out && ulen > 0) || (!in && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "zstd decompress: missing argument");
	if (len == 0)
		return cairn_error_set(CAIRN_ECORRUPT, "zstd data is empty");
	if ((r = get_dctx(&dctx)) < 0)
		return r;
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	/* One pass over all frames; works whether or not a frame records its
	 * content size, and fails if the output would exceed ulen. */
	n = ZSTD_decompressDCtx(dctx, out, ulen, in, len);
	if (ZSTD_isError(n)) {
		if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
			return cairn_error_set(CAIRN_ECORRUPT,
				"zstd data decodes to more than %zu bytes", ulen);
		return cairn_error_set(CAIRN_ECORRUPT, "zstd data is invalid: %s",
			ZSTD_getErrorName(n));
	}
	if (n != ulen)
		return cairn_error_set(CAIRN_ECORRUPT, "zstd data decodes to %zu bytes, want %zu",
			n, ulen);
	return 0;
}

/* Output grain of the streaming decoder (the decoder's own block size). */
#define STREAM_GRAIN ((size_t)128 * 1024)

/* Appends the decoded bytes to the caller's out; on error out->len is left
 * as it was. */
int cairn_zstd_decompress_stream(cairn_buf *out, const void *in, size_t len, size_t max_len)
{
	ZSTD_DCtx *dctx = NULL;
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t start, produced = 0, ret;
	int r;

	if (!out || (!in && len > 0))
		return cairn_error_set(CAIRN_EINVAL, "zstd decompress: missing argument");
	if ((r = get_dctx(&dctx)) < 0)
		return r;
	start = out->len;
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	for (;;) {
		/* Offer at most one byte beyond the cap, so that exceeding it
		 * is seen without decoding (or allocating) any further. */
		size_t room = max_len - produced < STREAM_GRAIN ? max_len - produced + 1 : STREAM_GRAIN;
		ZSTD_outBuffer ob;

		if ((r = cairn_buf_reserve(out, room)) < 0)
			goto out;
		ob.dst = out->data + out->len;
		ob.size = room;
		ob.pos = 0;
		ret = ZSTD_decompressStream(dctx, &ob, &ib);
		if (ZSTD_isError(ret)) {
			r = cairn_error_set(CAIRN_ECORRUPT, "zstd stream is invalid: %s",
				ZSTD_getErrorName(ret));
			goto out;
		}
		out->len += ob.pos;
		produced += ob.pos;
		if (produced > max_len) {
			r = cairn_error_set(CAIRN_ECORRUPT, "zstd stream decodes to more than %zu bytes",
				max_len);
			goto out;
		}
		/* 0 means the current frame is decoded and fully flushed; with
		 * all input consumed, that is the end of the last frame.  (Calling
		 * again would only ask for the header of a next frame.) */
		if (ret == 0 && ib.pos == ib.size)
			break;
		/* Input used up, yet the decoder neither filled the room it had
		 * nor finished its frame: the input stops mid-frame. */
		if (ib.pos == ib.size && ob.pos < ob.size) {
			r = cairn_error_set(CAIRN_ECORRUPT, "zstd stream is truncated");
			goto out;
		}
	}
out:
	if (r < 0) {
		out->len = start;
		ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	}
	return r;
}
