/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the broker plugin's client-id rules; any text parses or fails with one line, and a client id accepted for one user is never accepted for another. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidrules.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as lines: every line but the last two is a rule; then a user, then a client id. */
#define MAX_LINES 80

static void check_err(const char *err, size_t errlen)
{
    CHECK(memchr(err, '\0', errlen) != NULL);
    CHECK(err[0] != '\0');
    CHECK(strchr(err, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    char *lines[MAX_LINES];
    int n = 0;
    for (char *p = text; n < MAX_LINES;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    struct cid_rules *r = malloc(sizeof(*r));
    CHECK(r);
    cid_rules_init(r);
    char err[256];
    for (int i = 0; i + 2 < n; i++) {
        int before = r->nrule;
        memset(err, 'x', sizeof(err));
        if (cid_rules_add(r, lines[i], err, sizeof(err)) != 0) {
            check_err(err, sizeof(err));
            CHECK(r->nrule == before);
        } else {
            CHECK(r->nrule == before + 1);
        }
    }
    memset(err, 'x', sizeof(err));
    bool finished = cid_rules_finish(r, err, sizeof(err)) == 0;
    if (!finished)
        check_err(err, sizeof(err));
    if (n >= 2 && finished) {
        const char *user = lines[n - 2], *id = lines[n - 1];
        enum cid_verdict v = cid_rules_check(r, user, id);
        CHECK(v >= CID_OK && v <= CID_RESERVED);
        CHECK(cid_verdict_name(v)[0] != '?');
        if (v == CID_OK) {
            /* The property the plugin exists for: nobody else gets this id. */
            for (int i = 0; i < r->nrule; i++) {
                if (!r->rule[i].any_user && strcmp(r->rule[i].user, user) != 0)
                    CHECK(cid_rules_check(r, r->rule[i].user, id) != CID_OK);
            }
        }
        for (int i = 0; i < r->nrule; i++) {
            if (!r->rule[i].any_user && strcmp(r->rule[i].user, user) == 0)
                CHECK(v != CID_NO_RULE);
        }
    }
    free(r);
    free(text);
    return 0;
}
