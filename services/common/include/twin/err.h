/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes shared by every Twinloop module: 0 is success, failures are negative. */
#ifndef TWIN_ERR_H
#define TWIN_ERR_H

enum tw_err {
    TW_OK = 0,
    TW_ENOMEM = -1,    /* allocation failed */
    TW_EINVAL = -2,    /* bad argument, setting or input */
    TW_EPROTO = -3,    /* peer or payload broke the protocol */
    TW_EIO = -4,       /* connection or I/O failure; retrying may help */
    TW_ETIMEDOUT = -5, /* no answer in time; the outcome is unknown */
    TW_EAGAIN = -6,    /* not now (not connected, queue full); try again later */
    TW_ENOENT = -7,    /* no such key, file or item */
    TW_ESHUTDOWN = -8, /* the process is stopping */
};

/* Static text for an enum tw_err value; never NULL. Any thread. */
const char *tw_strerror(int err);

#include <stddef.h>

/* Writes a one-line reason into err (when err is not NULL) and returns TW_EINVAL: the usual
 * ending of a validation that failed. */
int tw_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
