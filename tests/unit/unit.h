/* unit.h: a minimal test harness for the unit tests.
 *
 * A test file defines `static void test_x(void)` functions and lists them
 * with UNIT_MAIN(test_a, test_b, ...).  CHECK* record a failure (with file
 * and line) and continue; the binary exits 1 if any check failed.
 */
#ifndef CAIRN_UNIT_H
#define CAIRN_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int unit_failures;
extern const char *unit_current;

#define CHECK(cond) do { if (!(cond)) { unit_failures++; \
	fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, unit_current, #cond); } } while (0)
#define CHECK_INT(a, b) do { long long a__ = (long long)(a), b__ = (long long)(b); if (a__ != b__) { unit_failures++; \
	fprintf(stderr, "%s:%d: %s: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, unit_current, #a, a__, #b, b__); } } while (0)
#define CHECK_STR(a, b) do { const char *a__ = (a), *b__ = (b); if (!a__ || !b__ || strcmp(a__, b__)) { unit_failures++; \
	fprintf(stderr, "%s:%d: %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__, unit_current, a__ ? a__ : "(null)", b__ ? b__ : "(null)"); } } while (0)
#define CHECK_MEM(a, b, n) do { if (memcmp((a), (b), (n))) { unit_failures++; \
	fprintf(stderr, "%s:%d: %s: memory differs: %s vs %s\n", __FILE__, __LINE__, unit_current, #a, #b); } } while (0)
/* Assert a cairn call succeeded (returns >= 0), printing the error message otherwise. */
#define CHECK_OK(expr) do { int r__ = (expr); if (r__ < 0) { unit_failures++; \
	fprintf(stderr, "%s:%d: %s: %s failed: %d %s\n", __FILE__, __LINE__, unit_current, #expr, r__, cairn_error_message()); } } while (0)

typedef void (*unit_fn)(void);
int unit_run(const char *const *names, const unit_fn *fns, size_t n);

#define UNIT_STR_(x) #x
#define UNIT_MAIN(...) \
	int main(void) { \
		static const unit_fn fns[] = { __VA_ARGS__ }; \
		static const char names[] = #__VA_ARGS__; \
		static const char *list[sizeof(fns) / sizeof(fns[0])]; \
		static char copy[sizeof(names)]; \
		memcpy(copy, names, sizeof(names)); \
		size_t k = 0; char *save = NULL; \
		for (char *tok = strtok_r(copy, ", \t\n", &save); tok && k < sizeof(fns) / sizeof(fns[0]); tok = strtok_r(NULL, ", \t\n", &save)) list[k++] = tok; \
		return unit_run(list, fns, sizeof(fns) / sizeof(fns[0])); \
	}

#endif
