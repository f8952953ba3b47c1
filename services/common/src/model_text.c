/* SPDX-License-Identifier: Apache-2.0 */
/* Reading and parsing a plant-model file, shared by every loader of its parts (model.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/err.h"
#include "twin/model.h"

/* One problem with the whole file, at "$", unless the list holds it already. */
static int fail_whole(struct tw_model_errors *errs, int code, const char *message)
{
    if (errs && tw_model_errors_has(errs, "$", message))
        return code;
    return tw_model_errors_add(errs, "$", message) == 0 ? code : TW_ENOMEM;
}

/* Reports a JSON syntax error at its line and column. */
static int syntax_error(const char *text, size_t len, const char *at, struct tw_model_errors *errs,
                        const char *what)
{
    size_t pos = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos; i++, col++)
        if (text[i] == '\n') {
            line++;
            col = 0;
        }
    char msg[128];
    snprintf(msg, sizeof msg, "%s at line %zu, column %zu", what, line, col);
    return fail_whole(errs, TW_EINVAL, msg);
}

/* cJSON writes its global error pointer on failure: a benign race we do not read from. */
int tw_model_parse_text(const char *buf, size_t len, struct cJSON **root,
                        struct tw_model_errors *errs)
{
    char msg[96];
    *root = NULL;
    if (len > TW_MODEL_MAX_FILE_BYTES) {
        snprintf(msg, sizeof msg, "too large (%zu bytes, at most %u)", len,
                 TW_MODEL_MAX_FILE_BYTES);
        return fail_whole(errs, TW_EINVAL, msg);
    }
    if (!buf || len == 0)
        return fail_whole(errs, TW_EINVAL, "empty: expected a JSON object");
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        snprintf(msg, sizeof msg, "contains a NUL byte at offset %zu", (size_t)(nul - buf));
        return fail_whole(errs, TW_EINVAL, msg);
    }
    char *text = malloc(len + 1); /* cJSON reads strings up to a NUL: a terminated copy */
    if (!text)
        return TW_ENOMEM;
    memcpy(text, buf, len);
    text[len] = '\0';
    const char *end = NULL;
    int rc = 0;
    *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!*root) {
        rc = syntax_error(text, len, end, errs, "invalid JSON");
    } else {
        while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
            end++;
        if (end != text + len) {
            cJSON_Delete(*root);
            *root = NULL;
            rc = syntax_error(text, len, end, errs, "unexpected text after the JSON value");
        }
    }
    free(text);
    return rc;
}

/* Reads at most TW_MODEL_MAX_FILE_BYTES + 1 bytes, so an oversized file is noticed without
 * reading it all. */
static int read_capped(FILE *f, char **buf, size_t *len)
{
    size_t cap = 64 * 1024, n = 0;
    char *data = NULL;
    for (;;) {
        char *grown = realloc(data, cap);
        if (!grown) {
            free(data);
            return TW_ENOMEM;
        }
        data = grown;
        n += fread(data + n, 1, cap - n, f);
        if (n < cap || n > TW_MODEL_MAX_FILE_BYTES)
            break;
        cap *= 2;
    }
    if (ferror(f)) {
        free(data);
        return TW_EIO;
    }
    *buf = data;
    *len = n;
    return 0;
}

int tw_model_read_file(const char *path, char **buf, size_t *len, struct tw_model_errors *errs)
{
    char msg[192], ebuf[96];
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(msg, sizeof msg, "cannot open %s: %s", path, strerror_r(e, ebuf, sizeof ebuf));
        return fail_whole(errs, e == ENOENT ? TW_ENOENT : TW_EIO, msg);
    }
    errno = 0;
    int rc = read_capped(f, buf, len);
    int e = errno;
    fclose(f);
    if (rc == TW_EIO) {
        snprintf(msg, sizeof msg, "cannot read %s: %s", path,
                 strerror_r(e ? e : EIO, ebuf, sizeof ebuf));
        return fail_whole(errs, TW_EIO, msg);
    }
    return rc;
}
