/* timestamp.c: nanosecond times and their RFC 3339 text (include/cairn/timestamp.h).
 *
 * restic stores every time as Go's time.Time JSON form, which is RFC3339Nano:
 * "2006-01-02T15:04:05.999999999Z07:00", the fraction written only when it
 * is not zero and with its trailing zeros dropped, "Z" for a zero offset.
 * Before writing, restic clamps the (local) year into 0000..9999 by moving
 * the date by whole years and letting the calendar normalise (29 February
 * of a leap year outside the range becomes 1 March); this file does the
 * same.
 *
 * All calendar arithmetic is done here on the proleptic Gregorian calendar
 * with a days-from-civil conversion, so neither timegm() nor the TZ
 * environment variable influences formatting or parsing; only
 * cairn_time_local_offset() asks the C library about the local zone.
 *
 * Invariants: a formatted text always parses back to the same instant and
 * offset (offsets are whole minutes: RFC 3339 cannot express seconds, so a
 * seconds part of an offset is dropped before the wall clock is computed),
 * and the text always fits CAIRN_TIME_TEXT_SIZE.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cairn/timestamp.h>

#define SECS_PER_DAY 86400
#define MAX_OFFSET (23 * 3600 + 59 * 60)

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12; a day
 * past the month's end simply counts on into the next month). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;                                   /* 0..399 */
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;  /* 0..365 */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y_out, int *m_out, int *d_out)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = floor_div(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d_out = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m_out = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y_out = yoe + era * 400 + (*m_out <= 2);
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int len[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

void cairn_time_format(char out[CAIRN_TIME_TEXT_SIZE], cairn_time t, int tz_offset_sec)
{
	int64_t days, sod, y;
	int m, d, n, off, nsec;
	char frac[11];

	/* Carry a denormal nsec into the seconds (saturating) rather than
	 * print garbage. */
	days = floor_div(t.nsec, 1000000000);
	nsec = (int)(t.nsec - days * 1000000000);
	if (days > 0 && t.sec > INT64_MAX - days)
		t.sec = INT64_MAX;
	else if (days < 0 && t.sec < INT64_MIN - days)
		t.sec = INT64_MIN;
	else
		t.sec += days;

	off = tz_offset_sec / 60 * 60;
	if (off > MAX_OFFSET)
		off = MAX_OFFSET;
	if (off < -MAX_OFFSET)
		off = -MAX_OFFSET;

	/* Split before adding the offset so nothing can overflow int64. */
	days = floor_div(t.sec, SECS_PER_DAY);
	sod = t.sec % SECS_PER_DAY;
	if (sod < 0)
		sod += SECS_PER_DAY;
	sod += off;
	if (sod < 0) {
		sod += SECS_PER_DAY;
		days--;
	} else if (sod >= SECS_PER_DAY) {
		sod -= SECS_PER_DAY;
		days++;
	}
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		/* Same rule as restic's FixTime: shift by whole years, then let
		 * the calendar normalise the day. */
		y = y < 0 ? 0 : 9999;
		civil_from_days(days_from_civil(y, m, d), &y, &m, &d);
	}

	frac[0] = '\0';
	if (nsec != 0) {
		snprintf(frac, sizeof(frac), ".%09d", nsec);
		for (n = 9; frac[n] == '0'; n--)
			frac[n] = '\0';
	}

	n = snprintf(out, CAIRN_TIME_TEXT_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d%s", (int)y, m, d,
		(int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), frac);
	if (off == 0)
		snprintf(out + n, CAIRN_TIME_TEXT_SIZE - (size_t)n, "Z");
	else
		snprintf(out + n, CAIRN_TIME_TEXT_SIZE - (size_t)n, "%c%02d:%02d", off < 0 ? '-' : '+',
			(off < 0 ? -off : off) / 3600, (off < 0 ? -off : off) / 60 % 60);
}

int cairn_time_local_offset(cairn_time t)
{
	struct tm tm;
	time_t tt = (time_t)t.sec;

	if ((int64_t)tt != t.sec || !localtime_r(&tt, &tm))
		return 0;
	return (int)tm.tm_gmtoff;
}

/* Read exactly n decimal digits; never moves past the terminating NUL. */
static int read_digits(const char **p, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -1;
		x = x * 10 + (c - '0');
	}
	*p += n;
	*v = x;
	return 0;
}

/* Consume one of the characters in `set` (a NUL never matches). */
static int read_char(const char **p, const char *set)
{
	if (**p == '\0' || !strchr(set, **p))
		return -1;
	(*p)++;
	return 0;
}

int cairn_time_parse_offset(cairn_time *out, int *tz_offset_sec_out, const char *text)
{
	const char *p = text;
	const char *what = "malformed";
	int y, mo, d, h, mi, s, nsec = 0, off = 0, oh, om, scale;

	if (!text)
		return cairn_error_set(CAIRN_EINVAL, "invalid time: no text");
	if (read_digits(&p, 4, &y) || read_char(&p, "-") || read_digits(&p, 2, &mo) ||
	    read_char(&p, "-") || read_digits(&p, 2, &d) || read_char(&p, "Tt") ||
	    read_digits(&p, 2, &h) || read_char(&p, ":") || read_digits(&p, 2, &mi) ||
	    read_char(&p, ":") || read_digits(&p, 2, &s))
		goto bad;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9') {
			what = "empty fraction";
			goto bad;
		}
		/* Any number of digits; those past nanoseconds are dropped. */
		for (scale = 100000000; *p >= '0' && *p <= '9'; p++, scale /= 10)
			nsec += (*p - '0') * scale;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int neg = *p++ == '-';
		if (read_digits(&p, 2, &oh) || read_char(&p, ":") || read_digits(&p, 2, &om))
			goto bad;
		if (oh > 23 || om > 59) {
			what = "zone offset out of range";
			goto bad;
		}
		off = (oh * 3600 + om * 60) * (neg ? -1 : 1);
	} else {
		what = "no zone";
		goto bad;
	}
	if (*p != '\0') {
		what = "trailing characters";
		goto bad;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59) {
		what = "field out of range";
		goto bad;
	}
	out->sec = days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s - off;
	out->nsec = nsec;
	if (tz_offset_sec_out)
		*tz_offset_sec_out = off;
	return 0;
bad:
	return cairn_error_set(CAIRN_EINVAL, "invalid time '%.64s': %s", text, what);
}

int cairn_time_parse(cairn_time *out, const char *text)
{
	return cairn_time_parse_offset(out, NULL, text);
}

cairn_time cairn_time_now(void)
{
	struct timespec ts;
	cairn_time t = { 0, 0 };

	if (clock_gettime(CLOCK_REALTIME, &ts) == 0) {
		t.sec = (int64_t)ts.tv_sec;
		t.nsec = (int32_t)ts.tv_nsec;
	}
	return t;
}
