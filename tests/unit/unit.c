/* unit.c: the runner behind unit.h. */
#include "unit.h"

int unit_failures;
const char *unit_current = "";

int unit_run(const char *const *names, const unit_fn *fns, size_t n)
{
	int total_failures = 0;
	for (size_t i = 0; i < n; i++) {
		unit_current = names[i];
		unit_failures = 0;
		fns[i]();
		printf("%s %s\n", unit_failures ? "FAIL" : "ok", names[i]);
		total_failures += unit_failures;
	}
	return total_failures ? 1 : 0;
}
