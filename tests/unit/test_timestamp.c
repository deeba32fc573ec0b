/* test_timestamp.c: RFC 3339 times as restic (Go's RFC3339Nano) writes them.
 *
 * The texts marked "restic" were written by restic 0.14.0 itself into the
 * snapshots and trees used by test_tree.c and test_snapshot.c; the epoch
 * values were computed independently (Python datetime). */
#include <stdlib.h>
#include <time.h>

#include <cairn/timestamp.h>
#include "unit.h"

struct time_case {
	const char *text;
	int64_t sec;
	int32_t nsec;
	int offset;
};

/* Text that both parses to (sec, nsec, offset) and is formatted back
 * byte for byte. */
static const struct time_case canonical[] = {
	{ "1970-01-01T00:00:00Z", 0, 0, 0 },
	{ "2024-01-02T03:04:05.5+01:00", 1704161045, 500000000, 3600 },
	{ "2026-11-30T20:58:46.10127361+01:00", 1796068726, 101273610, 3600 },      /* restic */
	{ "2019-12-31T23:59:59.000000001+01:00", 1577833199, 1, 3600 },             /* restic */
	{ "2020-01-01T00:00:00+01:00", 1577833200, 0, 3600 },                       /* restic */
	{ "2022-07-08T09:10:11.5+02:00", 1657264211, 500000000, 7200 },             /* restic */
	{ "2026-11-30T19:59:06.061602355Z", 1796068746, 61602355, 0 },              /* restic */
	{ "1969-12-31T23:59:59.999999999Z", -1, 999999999, 0 },
	{ "2000-02-29T12:00:00.12-09:30", 951859800, 120000000, -34200 },
	{ "2024-06-15T12:00:00.000001+05:45", 1718432100, 1000, 20700 },
	{ "9999-12-31T23:59:59.999999999Z", 253402300799, 999999999, 0 },
	{ "0001-01-01T00:00:00Z", -62135596800, 0, 0 },                            /* Go's zero time */
	{ "0000-01-01T00:00:00Z", -62167219200, 0, 0 },
};

static void test_format_and_parse_canonical(void)
{
	for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		const struct time_case *c = &canonical[i];
		char text[CAIRN_TIME_TEXT_SIZE];
		cairn_time t = { c->sec, c->nsec }, back;
		int off = 12345;

		cairn_time_format(text, t, c->offset);
		CHECK_STR(text, c->text);
		CHECK_OK(cairn_time_parse_offset(&back, &off, c->text));
		CHECK_INT(back.sec, c->sec);
		CHECK_INT(back.nsec, c->nsec);
		CHECK_INT(off, c->offset);
		CHECK_OK(cairn_time_parse(&back, c->text));
		CHECK_INT(back.sec, c->sec);
	}
}

/* Accepted, but not how we (or Go) write them. */
static void test_parse_lenient_forms(void)
{
	static const struct time_case cases[] = {
		{ "2024-01-02T03:04:05.500+01:00", 1704161045, 500000000, 3600 },
		{ "2024-01-02t03:04:05z", 1704164645, 0, 0 },
		{ "2024-01-02T03:04:05+00:00", 1704164645, 0, 0 },
		{ "2024-01-02T03:04:05-00:00", 1704164645, 0, 0 },
		{ "2024-01-02T03:04:05.1234567891234Z", 1704164645, 123456789, 0 }, /* digits past ns dropped */
		{ "2024-02-29T00:00:00Z", 1709164800, 0, 0 },
		{ "2000-02-29T23:59:59.9-23:59", 951955139, 900000000, -86340 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cairn_time t;
		int off = -1;
		CHECK_OK(cairn_time_parse_offset(&t, &off, cases[i].text));
		CHECK_INT(t.sec, cases[i].sec);
		CHECK_INT(t.nsec, cases[i].nsec);
		CHECK_INT(off, cases[i].offset);
	}
}

static void test_parse_rejects(void)
{
	static const char *const bad[] = {
		"", "2024", "2024-01-02", "2024-01-02T03:04:05", "2024-01-02T03:04Z",
		"2024-01-02 03:04:05Z", "24-01-02T03:04:05Z", "2024-1-02T03:04:05Z",
		"2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z",
		"2023-02-29T00:00:00Z", "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z",
		"2024-01-02T24:00:00Z", "2024-01-02T23:60:00Z", "2024-01-02T23:59:60Z",
		"2024-01-02T03:04:05.Z", "2024-01-02T03:04:05,5Z", "2024-01-02T03:04:05+24:00",
		"2024-01-02T03:04:05+01:60", "2024-01-02T03:04:05+0100", "2024-01-02T03:04:05+01",
		"2024-01-02T03:04:05Zjunk", "2024-01-02T03:04:05Z ", " 2024-01-02T03:04:05Z",
		"2024-01-02T03:04:05.5", "+2024-01-02T03:04:05Z", "2024-01-02T03:04:05UTC",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cairn_time t;
		int r = cairn_time_parse(&t, bad[i]);
		if (r != CAIRN_EINVAL)
			fprintf(stderr, "accepted bad time '%s'\n", bad[i]);
		CHECK_INT(r, CAIRN_EINVAL);
	}
	cairn_time t;
	CHECK_INT(cairn_time_parse(&t, NULL), CAIRN_EINVAL);
	CHECK_INT(cairn_time_parse(&t, "2024-02-30T00:00:00Z"), CAIRN_EINVAL);
	CHECK(strstr(cairn_error_message(), "2024-02-30T00:00:00Z") != NULL);
}

/* Years outside 0000..9999 cannot be written; like restic's FixTime the
 * year is moved into range and the calendar normalises the day. */
static void test_format_clamps_years(void)
{
	char text[CAIRN_TIME_TEXT_SIZE];

	/* 10000-02-29T12:00:00Z (10000 is a leap year, 9999 is not) */
	cairn_time_format(text, (cairn_time){ 253407441600, 0 }, 0);
	CHECK_STR(text, "9999-03-01T12:00:00Z");
	/* -0001-06-15T00:00:00Z */
	cairn_time_format(text, (cairn_time){ -62184499200, 7 }, 0);
	CHECK_STR(text, "0000-06-15T00:00:00.000000007Z");
	/* The clamp applies to the local year, as in Go. */
	cairn_time_format(text, (cairn_time){ 253402300799, 0 }, 3600);
	CHECK_STR(text, "9999-01-01T00:59:59+01:00"); /* local 10000-01-01T00:59:59, a year back */
	cairn_time_format(text, (cairn_time){ INT64_MAX, 999999999 }, 0);
	CHECK(strncmp(text, "9999-", 5) == 0);
	cairn_time_format(text, (cairn_time){ INT64_MIN, 0 }, -3600);
	CHECK(strncmp(text, "0000-", 5) == 0);
}

/* Offsets are whole minutes in RFC 3339: seconds are dropped before the
 * wall clock is computed, so the text still names the exact instant. */
static void test_format_offsets(void)
{
	char text[CAIRN_TIME_TEXT_SIZE];
	cairn_time t = { 1704161045, 0 }, back;
	int off;

	cairn_time_format(text, t, 3600 + 59);
	CHECK_STR(text, "2024-01-02T03:04:05+01:00");
	cairn_time_format(text, t, -(5 * 3600 + 30 * 60));
	CHECK_STR(text, "2024-01-01T20:34:05-05:30");
	CHECK_OK(cairn_time_parse_offset(&back, &off, text));
	CHECK_INT(back.sec, t.sec);
	CHECK_INT(off, -(5 * 3600 + 30 * 60));
	cairn_time_format(text, t, 30); /* under a minute: UTC */
	CHECK_STR(text, "2024-01-02T02:04:05Z");
	cairn_time_format(text, t, 48 * 3600); /* out of range: clamped to +23:59 */
	CHECK_STR(text, "2024-01-03T02:03:05+23:59");
	/* A denormal nsec is carried into the seconds. */
	cairn_time_format(text, (cairn_time){ 0, 1500000000 }, 0);
	CHECK_STR(text, "1970-01-01T00:00:01.5Z");
	cairn_time_format(text, (cairn_time){ 0, -1 }, 0);
	CHECK_STR(text, "1969-12-31T23:59:59.999999999Z");
}

/* Calendar arithmetic against the C library's timegm over 600 years, and
 * format/parse round trips over a wide pseudo-random range of instants,
 * fractions and offsets. */
static void test_round_trips(void)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int y = 1700; y <= 2300; y++) {
		for (int m = 1; m <= 12; m += 1) {
			struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 28, .tm_hour = 13,
				.tm_min = 14, .tm_sec = 15 };
			char text[CAIRN_TIME_TEXT_SIZE];
			cairn_time t;
			snprintf(text, sizeof(text), "%04d-%02d-28T13:14:15Z", y, m);
			CHECK_OK(cairn_time_parse(&t, text));
			CHECK_INT(t.sec, (int64_t)timegm(&tm));
		}
	}
	for (int i = 0; i < 20000; i++) {
		char text[CAIRN_TIME_TEXT_SIZE];
		cairn_time t, back;
		int off, back_off;

		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		t.sec = (int64_t)(x % 315537897600u) - 62135596800; /* years 1..9999 UTC */
		t.nsec = (int32_t)((x >> 20) % 1000000000u);
		if (i % 3 == 0)
			t.nsec = (t.nsec / 1000000) * 1000000;
		off = (int)((x >> 40) % (2 * 1439 + 1)) * 60 - 1439 * 60;
		if (i % 5 == 0)
			off = 0;
		/* keep the local year inside 0000..9999 */
		if (t.sec + off < -62135596800 || t.sec + off > 253402300799)
			off = 0;
		cairn_time_format(text, t, off);
		CHECK(strlen(text) < CAIRN_TIME_TEXT_SIZE);
		CHECK_OK(cairn_time_parse_offset(&back, &back_off, text));
		if (back.sec != t.sec || back.nsec != t.nsec || back_off != off) {
			fprintf(stderr, "round trip failed: %s\n", text);
			CHECK(0);
			break;
		}
		/* no trailing zeros in the fraction */
		const char *dot = strchr(text, '.');
		if (dot) {
			size_t k = strspn(dot + 1, "0123456789");
			CHECK(k >= 1 && k <= 9 && dot[k] != '0');
		} else {
			CHECK_INT(t.nsec, 0);
		}
	}
}

static void test_local_offset_follows_tz(void)
{
	const char *saved = getenv("TZ");
	char *copy = saved ? strdup(saved) : NULL;

	setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1); /* Europe/Berlin rules, no tzdata needed */
	tzset();
	CHECK_INT(cairn_time_local_offset((cairn_time){ 1579089600, 0 }), 3600);  /* 2020-01-15 */
	CHECK_INT(cairn_time_local_offset((cairn_time){ 1591012800, 0 }), 7200);  /* 2020-06-01 */
	setenv("TZ", "UTC0", 1);
	tzset();
	CHECK_INT(cairn_time_local_offset((cairn_time){ 1591012800, 0 }), 0);
	setenv("TZ", "IST-5:30", 1);
	tzset();
	CHECK_INT(cairn_time_local_offset((cairn_time){ 1591012800, 0 }), 19800);
	if (copy)
		setenv("TZ", copy, 1);
	else
		unsetenv("TZ");
	tzset();
	free(copy);
}

static void test_now_and_compare(void)
{
	cairn_time a = cairn_time_now(), b;
	CHECK(a.sec > 1700000000);
	CHECK(a.nsec >= 0 && a.nsec < 1000000000);
	b = cairn_time_now();
	CHECK(cairn_time_compare(a, b) <= 0);
	CHECK_INT(cairn_time_compare((cairn_time){ 5, 1 }, (cairn_time){ 5, 2 }), -1);
	CHECK_INT(cairn_time_compare((cairn_time){ 6, 0 }, (cairn_time){ 5, 999999999 }), 1);
	CHECK_INT(cairn_time_compare((cairn_time){ 5, 3 }, (cairn_time){ 5, 3 }), 0);
}

UNIT_MAIN(test_format_and_parse_canonical, test_parse_lenient_forms, test_parse_rejects,
	test_format_clamps_years, test_format_offsets, test_round_trips, test_local_offset_follows_tz,
	test_now_and_compare)
