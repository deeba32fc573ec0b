/* error.h: the one error type of cairn.
 *
 * Every fallible function returns int: 0 (or a documented non-negative count)
 * on success, a negative cairn_error code on failure.  The human-readable
 * detail (which file, which blob, the OS errno) is kept in a thread-local
 * record, set by cairn_error_set*() and read by cairn_error_message().
 * Codes are pinned: never renumber them.
 */
#ifndef CAIRN_ERROR_H
#define CAIRN_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_API __attribute__((visibility("default")))

typedef enum cairn_error {
	CAIRN_OK = 0,
	CAIRN_ENOTFOUND = -1,    /* object, file, snapshot or blob does not exist */
	CAIRN_EEXISTS = -2,      /* already exists */
	CAIRN_ECORRUPT = -3,     /* MAC, hash, size or format check failed */
	CAIRN_EIO = -4,          /* operating-system I/O failure (errno kept) */
	CAIRN_ENOMEM = -5,       /* allocation failed */
	CAIRN_EINVAL = -6,       /* invalid argument or malformed input */
	CAIRN_EUNSUPPORTED = -7, /* valid but not supported (version, feature) */
	CAIRN_ELOCKED = -8,      /* repository locked by someone else */
	CAIRN_EAUTH = -9,        /* wrong password / no key opens the repository, access denied */
	CAIRN_ETRANSIENT = -10,  /* retryable failure (network, 5xx) */
	CAIRN_ECANCELED = -11,   /* interrupted by the user (SIGINT/SIGTERM) */
	CAIRN_ENOSPC = -12       /* no space left on device */
} cairn_error;

/* Record a message for the calling thread and return `code` (so callers can
 * write `return cairn_error_set(CAIRN_EINVAL, "bad name '%s'", n);`).
 * Messages follow git style: lowercase, no final full stop. */
CAIRN_API int cairn_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Same, with the OS errno appended as ": <strerror>" and kept for callers.
 * If os_errno is ENOSPC or EDQUOT the code becomes CAIRN_ENOSPC. */
CAIRN_API int cairn_error_set_errno(int code, int os_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the current thread's message with more context: "ctx: old message".
 * Returns `code` unchanged. */
CAIRN_API int cairn_error_wrap(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The last message recorded by this thread (borrowed; valid until the next
 * cairn_error_* call on this thread).  Never NULL: "" when none. */
CAIRN_API const char *cairn_error_message(void);

/* OS errno recorded with the last error, or 0. */
CAIRN_API int cairn_error_os_errno(void);

CAIRN_API void cairn_error_clear(void);

/* Static text for a code, e.g. "data corrupted". */
CAIRN_API const char *cairn_strerror(int code);

/* Forward a negative result. */
#define CAIRN_TRY(expr) do { int cairn_try_r__ = (expr); if (cairn_try_r__ < 0) return cairn_try_r__; } while (0)

#ifdef __cplusplus
}
#endif
#endif
