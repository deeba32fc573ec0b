/* compress.h: zstd as the restic v2 format uses it.
 *
 * Blobs are one zstd frame each (decoded into a known size, ulen), and
 * "unpacked" files (index, snapshot, lock) are 0x02 || zstd frame decoded by
 * streaming because their plaintext size is not recorded.
 */
#ifndef CAIRN_COMPRESS_H
#define CAIRN_COMPRESS_H

#include <stddef.h>
#include "error.h"
#include "buf.h"

/* restic's --compression names. */
typedef enum cairn_compression {
	CAIRN_COMPRESSION_AUTO = 0,    /* zstd level 3; keep raw when it does not shrink */
	CAIRN_COMPRESSION_OFF = 1,
	CAIRN_COMPRESSION_FASTEST = 2, /* zstd level 1 */
	CAIRN_COMPRESSION_BETTER = 3,  /* zstd level 7 */
	CAIRN_COMPRESSION_MAX = 4      /* zstd level 19 */
} cairn_compression;

/* Parse "auto|off|fastest|better|max"; CAIRN_EINVAL otherwise. */
CAIRN_API int cairn_compression_parse(cairn_compression *out, const char *name);
CAIRN_API int cairn_compression_level(cairn_compression mode);

/* Compress `len` bytes into out (replacing its contents) as one zstd frame
 * at `level`, with the content size in the frame header. */
CAIRN_API int cairn_zstd_compress(cairn_buf *out, const void *in, size_t len, int level);

/* Decompress one or more frames into exactly `ulen` bytes at out.
 * CAIRN_ECORRUPT if the data is bad or does not decode to exactly ulen bytes. */
CAIRN_API int cairn_zstd_decompress_exact(void *out, size_t ulen, const void *in, size_t len);

/* Streaming decompression of frames whose size is unknown, appended to out,
 * failing with CAIRN_ECORRUPT past `max_len` output bytes. */
CAIRN_API int cairn_zstd_decompress_stream(cairn_buf *out, const void *in, size_t len, size_t max_len);

#endif
