/* error.c: the thread-local error record behind include/cairn/error.h.
 *
 * Each thread keeps its last message and OS errno in a fixed buffer, so
 * recording an error never allocates (it must work when memory is short).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cairn/error.h>

/* Messages longer than the record are cut on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define MESSAGE_MAX 1024

static _Thread_local char last_message[MESSAGE_MAX];
static _Thread_local int last_os_errno;

__attribute__((format(printf, 1, 0)))
static void vrecord(const char *fmt, va_list ap)
{
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
}

int cairn_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vrecord(fmt, ap);
	va_end(ap);
	last_os_errno = 0;
	return code;
}

int cairn_error_set_errno(int code, int os_errno, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	va_start(ap, fmt);
	vrecord(fmt, ap);
	va_end(ap);
	used = strlen(last_message);
	if (os_errno && used < sizeof(last_message))
		snprintf(last_message + used, sizeof(last_message) - used, ": %s", strerror(os_errno));
	last_os_errno = os_errno;
	if (os_errno == ENOSPC || os_errno == EDQUOT)
		code = CAIRN_ENOSPC;
	return code;
}

int cairn_error_wrap(int code, const char *fmt, ...)
{
	char prefix[MESSAGE_MAX];
	char old[MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, last_message, sizeof(old));
	if (old[0])
		snprintf(last_message, sizeof(last_message), "%s: %s", prefix, old);
	else
		snprintf(last_message, sizeof(last_message), "%s: %s", prefix, cairn_strerror(code));
	return code;
}

const char *cairn_error_message(void)
{
	return last_message;
}

int cairn_error_os_errno(void)
{
	return last_os_errno;
}

void cairn_error_clear(void)
{
	last_message[0] = '\0';
	last_os_errno = 0;
}

const char *cairn_strerror(int code)
{
	switch (code) {
	case CAIRN_OK: return "success";
	case CAIRN_ENOTFOUND: return "not found";
	case CAIRN_EEXISTS: return "already exists";
	case CAIRN_ECORRUPT: return "data corrupted";
	case CAIRN_EIO: return "input/output error";
	case CAIRN_ENOMEM: return "out of memory";
	case CAIRN_EINVAL: return "invalid argument";
	case CAIRN_EUNSUPPORTED: return "not supported";
	case CAIRN_ELOCKED: return "repository is locked";
	case CAIRN_EAUTH: return "authentication failed";
	case CAIRN_ETRANSIENT: return "temporary failure";
	case CAIRN_ECANCELED: return "canceled";
	case CAIRN_ENOSPC: return "no space left on device";
	default: return "unknown error";
	}
}
