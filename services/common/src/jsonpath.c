/* SPDX-License-Identifier: Apache-2.0 */
/* JSON paths of the values a loader reads, and the error list it fills (twin/jsonpath.h). */
#include "twin/jsonpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/err.h"
#include "twin/validate.h"

void tw_jsonpath_init(struct tw_jsonpath *p)
{
    p->text[0] = '$';
    p->text[1] = '\0';
    p->len = 1;
}

static void path_put(struct tw_jsonpath *p, const char *s, size_t n)
{
    size_t room = TW_JSONPATH_MAX - 1 - p->len;
    if (n > room)
        n = room; /* a truncated path still locates the value well enough */
    memcpy(p->text + p->len, s, n);
    p->len += n;
    p->text[p->len] = '\0';
}

static bool plain_key(const char *k)
{
    if (k[0] == '\0')
        return false;
    for (const char *s = k; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

size_t tw_jsonpath_push(struct tw_jsonpath *p, const char *key)
{
    size_t saved = p->len;
    if (plain_key(key) && strlen(key) <= TW_NAME_MAX) {
        path_put(p, ".", 1);
        path_put(p, key, strlen(key));
        return saved;
    }
    path_put(p, "['", 2);
    size_t i = 0;
    for (; key[i] && i < TW_NAME_MAX; i++) {
        unsigned char ch = (unsigned char)key[i];
        char esc[8];
        if (ch == '\'' || ch == '\\')
            snprintf(esc, sizeof esc, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", ch);
        else
            snprintf(esc, sizeof esc, "%c", ch);
        path_put(p, esc, strlen(esc));
    }
    if (key[i])
        path_put(p, "...", 3);
    path_put(p, "']", 2);
    return saved;
}

size_t tw_jsonpath_push_index(struct tw_jsonpath *p, int i)
{
    size_t saved = p->len;
    char buf[24];
    snprintf(buf, sizeof buf, "[%d]", i);
    path_put(p, buf, strlen(buf));
    return saved;
}

void tw_jsonpath_pop(struct tw_jsonpath *p, size_t saved)
{
    p->len = saved;
    p->text[saved] = '\0';
}

void tw_model_errors_init(struct tw_model_errors *errs)
{
    memset(errs, 0, sizeof *errs);
}

void tw_model_errors_free(struct tw_model_errors *errs)
{
    if (!errs)
        return;
    free(errs->items);
    memset(errs, 0, sizeof *errs);
}

int tw_model_errors_add(struct tw_model_errors *errs, const char *path, const char *message)
{
    if (!errs)
        return 0;
    errs->total++;
    if (errs->count >= TW_MODEL_MAX_ERRORS)
        return 0;
    /* Grow by doubling whenever the count is 0 or a power of two, so the array always has room
     * for the next entry; TW_MODEL_MAX_ERRORS caps it. */
    if ((errs->count & (errs->count - 1)) == 0) {
        size_t cap = errs->count ? 2 * errs->count : 1;
        struct tw_model_error *items = realloc(errs->items, cap * sizeof *items);
        if (!items)
            return TW_ENOMEM;
        errs->items = items;
    }
    struct tw_model_error *e = &errs->items[errs->count++];
    snprintf(e->path, sizeof e->path, "%s", path);
    snprintf(e->message, sizeof e->message, "%s", message);
    return 0;
}

bool tw_model_errors_has(const struct tw_model_errors *errs, const char *path, const char *message)
{
    for (size_t i = 0; errs && i < errs->count; i++)
        if (strcmp(errs->items[i].path, path) == 0 && strcmp(errs->items[i].message, message) == 0)
            return true;
    return false;
}

void tw_model_error_format(const struct tw_model_error *e, char *buf, size_t buflen)
{
    if (buflen > 0)
        snprintf(buf, buflen, "%s: %s", e->path, e->message);
}
