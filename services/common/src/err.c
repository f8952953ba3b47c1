/* SPDX-License-Identifier: Apache-2.0 */
/* Text for the shared error codes of enum tw_err, and the one-line failure helper. */
#include "twin/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *tw_strerror(int err)
{
    switch (err) {
    case TW_OK:
        return "success";
    case TW_ENOMEM:
        return "out of memory";
    case TW_EINVAL:
        return "invalid argument or setting";
    case TW_EPROTO:
        return "protocol error";
    case TW_EIO:
        return "connection or I/O failure";
    case TW_ETIMEDOUT:
        return "timed out";
    case TW_EAGAIN:
        return "temporarily unavailable, try again";
    case TW_ENOENT:
        return "not found";
    case TW_ESHUTDOWN:
        return "shutting down";
    default:
        return "unknown error";
    }
}

int tw_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return TW_EINVAL;
}
