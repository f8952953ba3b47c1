/* SPDX-License-Identifier: Apache-2.0 */
/* How the JSON loaders report problems: the JSON path of the value being read, and the list of
 * errors (a path and a message each) that the caller owns and prints. */
#ifndef TWIN_JSONPATH_H
#define TWIN_JSONPATH_H

/*
 * Both parsers of the plant model file (the common loader, twin/model.h, and the scenario
 * runner's production part) walk the parsed document depth-first and keep the path of the value
 * they look at in a struct tw_jsonpath: push a key or an index before looking into a member, pop
 * back to the length the push returned after. Each problem becomes one entry of a
 * struct tw_model_errors, so one list can collect what both parsers found in the same file.
 *
 * Paths are JSONPath as people read it: "$" is the whole document, ".key" a member whose key is
 * a plain word (1-64 bytes of [A-Za-z0-9_-]), "['key']" any other member, "[3]" an array
 * element. Inside ['...'] a quote or backslash is written \' or \\, any byte outside printable
 * ASCII \xNN, and a key longer than 64 bytes is cut there and marked "...". A path that would
 * not fit in TW_JSONPATH_MAX bytes is cut: it still locates the value well enough.
 *
 * Pure; a path or an error list is used by one thread at a time.
 */

#include <stdbool.h>
#include <stddef.h>

#define TW_JSONPATH_MAX      320u /* bytes of a path, its NUL included */
#define TW_MODEL_MESSAGE_MAX 192u /* bytes of an error's message, its NUL included */
#define TW_MODEL_MAX_ERRORS  200u /* errors stored in a list; more are only counted */

/* The path of the value being read; grows and shrinks like a stack. */
struct tw_jsonpath {
    size_t len;                 /* strlen(text) */
    char text[TW_JSONPATH_MAX]; /* always NUL-terminated */
};

/* Sets the path to "$", the whole document. */
void tw_jsonpath_init(struct tw_jsonpath *p);

/* Appends a member's key as .key or ['key'] (see above). Returns the length before, for
 * tw_jsonpath_pop. */
size_t tw_jsonpath_push(struct tw_jsonpath *p, const char *key);

/* Appends an array index as [i]. Returns the length before, for tw_jsonpath_pop. */
size_t tw_jsonpath_push_index(struct tw_jsonpath *p, int i);

/* Goes back to the path a push returned the length of. */
void tw_jsonpath_pop(struct tw_jsonpath *p, size_t saved);

/* One problem found in a model file: `path` is a JSONPath such as
 * "$.asset_kinds.press.signals.temp.warn.above", `message` says what is wrong ("must be a
 * number"). */
struct tw_model_error {
    char path[TW_JSONPATH_MAX];
    char message[TW_MODEL_MESSAGE_MAX];
};

/* Every problem found by one or more loads, in the order found. Owned by the caller: initialise
 * with {0} (or tw_model_errors_init), release with tw_model_errors_free. */
struct tw_model_errors {
    size_t count; /* entries in items, at most TW_MODEL_MAX_ERRORS */
    size_t total; /* problems found, including those not stored */
    struct tw_model_error *items;
};

void tw_model_errors_init(struct tw_model_errors *errs);
void tw_model_errors_free(struct tw_model_errors *errs);

/* Counts one problem in errs->total and stores it while fewer than TW_MODEL_MAX_ERRORS are
 * stored; path and message are cut to fit. errs may be NULL (nothing is recorded). Returns 0,
 * or TW_ENOMEM when the list could not grow (the problem is then counted but not stored). */
int tw_model_errors_add(struct tw_model_errors *errs, const char *path, const char *message);

/* Whether errs (may be NULL) already stores an error with this path and message. O(count). */
bool tw_model_errors_has(const struct tw_model_errors *errs, const char *path, const char *message);

/* Writes error e as "path: message" into buf (always NUL-terminated when buflen > 0). */
void tw_model_error_format(const struct tw_model_error *e, char *buf, size_t buflen);

#endif
