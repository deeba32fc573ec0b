/* log.c: the library's log sink (include/cairn/log.h).
 *
 * The sink is process configuration, set once by the program before any
 * worker thread starts; records are formatted only when their level passes.
 */
#include <stdarg.h>
#include <stdio.h>

#include <cairn/log.h>

static cairn_log_level configured_level = CAIRN_LOG_WARN;
static cairn_log_cb configured_cb;
static void *configured_payload;

void cairn_log_set(cairn_log_level max_level, cairn_log_cb cb, void *payload)
{
	configured_level = max_level;
	configured_cb = cb;
	configured_payload = payload;
}

int cairn_log_enabled(cairn_log_level level)
{
	return configured_cb != NULL && level <= configured_level;
}

void cairn_log_write(cairn_log_level level, const char *component, const char *fmt, ...)
{
	char message[2048];
	va_list ap;

	if (!cairn_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	configured_cb(level, component, message, configured_payload);
}
