/* timestamp.h: nanosecond time values and RFC 3339 text as restic writes it. */
#ifndef CAIRN_TIMESTAMP_H
#define CAIRN_TIMESTAMP_H

#include <stdint.h>
#include "error.h"

typedef struct cairn_time {
	int64_t sec;   /* seconds since the Unix epoch, UTC */
	int32_t nsec;  /* 0..999999999 */
} cairn_time;

#define CAIRN_TIME_TEXT_SIZE 48

/* RFC 3339 with nanoseconds, trailing fraction zeros dropped (Go's
 * RFC3339Nano), in UTC ("...Z") when tz_offset_sec is 0, otherwise with the
 * given offset ("+01:00").  Years outside 0000..9999 are clamped. */
CAIRN_API void cairn_time_format(char out[CAIRN_TIME_TEXT_SIZE], cairn_time t, int tz_offset_sec);

/* The local time zone offset at t (for writing times as restic does). */
CAIRN_API int cairn_time_local_offset(cairn_time t);

/* Parse RFC 3339 with optional fraction (any number of digits) and Z or
 * +hh:mm/-hh:mm.  CAIRN_EINVAL if malformed. */
CAIRN_API int cairn_time_parse(cairn_time *out, const char *text);
/* Same, also returning the zone offset the text was written with, in
 * seconds east of UTC (0 for "Z"), so it can be written back unchanged. */
CAIRN_API int cairn_time_parse_offset(cairn_time *out, int *tz_offset_sec_out, const char *text);

CAIRN_API cairn_time cairn_time_now(void);

/* <0, 0, >0 */
static inline int cairn_time_compare(cairn_time a, cairn_time b)
{
	if (a.sec != b.sec) return a.sec < b.sec ? -1 : 1;
	return (a.nsec > b.nsec) - (a.nsec < b.nsec);
}

#endif
