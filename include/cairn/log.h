/* log.h: the library never prints; it reports through a callback that the
 * program installs (the CLI writes stderr, the agent structured lines). */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

#include "error.h"

typedef enum cairn_log_level {
	CAIRN_LOG_ERROR = 0,
	CAIRN_LOG_WARN = 1,
	CAIRN_LOG_INFO = 2,
	CAIRN_LOG_DEBUG = 3
} cairn_log_level;

typedef void (*cairn_log_cb)(cairn_log_level level, const char *component, const char *message,
	void *payload);

/* Install the sink (NULL to silence) and the highest level passed to it. */
CAIRN_API void cairn_log_set(cairn_log_level max_level, cairn_log_cb cb, void *payload);
CAIRN_API int cairn_log_enabled(cairn_log_level level);
CAIRN_API void cairn_log_write(cairn_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Checks the level before formatting the arguments. */
#define cairn_log(level, component, ...) \
	do { if (cairn_log_enabled(level)) cairn_log_write(level, component, __VA_ARGS__); } while (0)

#endif
