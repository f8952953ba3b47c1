/* SPDX-License-Identifier: Apache-2.0 */
/* Client-id rules of the broker plugin: parsing, the overlap checks, and the per-connection check. */
#include "cidrules.h"

#include <stdio.h>
#include <string.h>

#define CID_EXPANDED_MAX (CID_PATTERN_MAX + CID_USER_MAX) /* one "%u" expanded */

void cid_rules_init(struct cid_rules *r)
{
    memset(r, 0, sizeof(*r));
}

/* Next space-separated word of *s: its start and length, *s moved past it. */
static size_t cid_word(const char **s, const char **word)
{
    const char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *start = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    *word = start;
    *s = p;
    return (size_t)(p - start);
}

/* Printable ASCII or any byte of a UTF-8 sequence; no control characters. */
static bool cid_char_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static int cid_parse_pattern(struct cid_pattern *pat, const char *w, size_t len, char *err,
                             size_t errlen)
{
    if (len > CID_PATTERN_MAX) {
        snprintf(err, errlen, "a pattern is longer than %d bytes", CID_PATTERN_MAX);
        return -1;
    }
    int users = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)w[i];
        if (!cid_char_ok(c)) {
            snprintf(err, errlen, "pattern '%.*s': control character", (int)len, w);
            return -1;
        }
        if (c == '*' && i + 1 != len) {
            snprintf(err, errlen, "pattern '%.*s': '*' only at the end", (int)len, w);
            return -1;
        }
        if (c == '%') {
            if (i + 1 >= len || w[i + 1] != 'u') {
                snprintf(err, errlen, "pattern '%.*s': '%%' only as %%u", (int)len, w);
                return -1;
            }
            users++;
            i++;
        }
    }
    if (users > 1) {
        snprintf(err, errlen, "pattern '%.*s': %%u more than once", (int)len, w);
        return -1;
    }
    pat->prefix = len > 0 && w[len - 1] == '*';
    size_t n = pat->prefix ? len - 1 : len;
    if (n == 0) {
        snprintf(err, errlen, "pattern '%.*s' matches every client id", (int)len, w);
        return -1;
    }
    memcpy(pat->text, w, n);
    pat->text[n] = '\0';
    return 0;
}

int cid_rules_add(struct cid_rules *r, const char *text, char *err, size_t errlen)
{
    const char *s = text, *w;
    size_t len = cid_word(&s, &w);
    if (len == 0) {
        snprintf(err, errlen, "empty rule: want 'USER PATTERN ...'");
        return -1;
    }
    if (len > CID_USER_MAX) {
        snprintf(err, errlen, "a user name is longer than %d bytes", CID_USER_MAX);
        return -1;
    }
    if (r->nrule >= CID_RULES) {
        snprintf(err, errlen, "more than %d rules", CID_RULES);
        return -1;
    }
    struct cid_rule *rule = &r->rule[r->nrule];
    memset(rule, 0, sizeof(*rule));
    memcpy(rule->user, w, len);
    rule->any_user = len == 1 && w[0] == '*';
    for (size_t i = 0; i < len; i++) {
        if (!cid_char_ok((unsigned char)w[i])) {
            snprintf(err, errlen, "user '%.*s': control character", (int)len, w);
            return -1;
        }
    }
    for (int i = 0; i < r->nrule; i++) {
        if (strcmp(r->rule[i].user, rule->user) == 0) {
            snprintf(err, errlen, "user '%s' has two rules", rule->user);
            return -1;
        }
    }
    while ((len = cid_word(&s, &w)) > 0) {
        if (rule->npat >= CID_PATTERNS) {
            snprintf(err, errlen, "user '%s': more than %d patterns", rule->user, CID_PATTERNS);
            return -1;
        }
        if (cid_parse_pattern(&rule->pat[rule->npat], w, len, err, errlen) != 0)
            return -1;
        rule->npat++;
    }
    if (rule->npat == 0) {
        snprintf(err, errlen, "user '%s': no pattern", rule->user);
        return -1;
    }
    r->nrule++;
    return 0;
}

/* The pattern's text with "%u" replaced by user. */
static void cid_expand(const struct cid_pattern *pat, const char *user, char *out)
{
    const char *u = strstr(pat->text, "%u");
    if (!u) {
        strcpy(out, pat->text);
        return;
    }
    size_t head = (size_t)(u - pat->text);
    memcpy(out, pat->text, head);
    strcpy(out + head, user);
    strcat(out, u + 2);
}

static bool cid_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Is there a client id that both (expanded) patterns match? */
static bool cid_overlap(const char *a, bool a_prefix, const char *b, bool b_prefix)
{
    if (a_prefix && b_prefix)
        return cid_starts_with(a, b) || cid_starts_with(b, a);
    if (a_prefix)
        return cid_starts_with(b, a);
    if (b_prefix)
        return cid_starts_with(a, b);
    return strcmp(a, b) == 0;
}

int cid_rules_finish(const struct cid_rules *r, char *err, size_t errlen)
{
    char a[CID_EXPANDED_MAX + 1], b[CID_EXPANDED_MAX + 1];
    for (int i = 0; i < r->nrule; i++) {
        const struct cid_rule *ri = &r->rule[i];
        if (ri->any_user) {
            for (int p = 0; p < ri->npat; p++) {
                if (!strstr(ri->pat[p].text, "%u") || ri->pat[p].prefix) {
                    snprintf(err, errlen,
                             "rule '*': pattern '%s%s' must contain %%u and not end with '*' "
                             "(one user could take another's client id)",
                             ri->pat[p].text, ri->pat[p].prefix ? "*" : "");
                    return -1;
                }
            }
            continue;
        }
        for (int j = i + 1; j < r->nrule; j++) {
            const struct cid_rule *rj = &r->rule[j];
            if (rj->any_user)
                continue;
            for (int p = 0; p < ri->npat; p++) {
                cid_expand(&ri->pat[p], ri->user, a);
                for (int q = 0; q < rj->npat; q++) {
                    cid_expand(&rj->pat[q], rj->user, b);
                    if (cid_overlap(a, ri->pat[p].prefix, b, rj->pat[q].prefix)) {
                        snprintf(err, errlen,
                                 "users '%s' and '%s' have overlapping client id patterns "
                                 "('%s%s', '%s%s')",
                                 ri->user, rj->user, a, ri->pat[p].prefix ? "*" : "", b,
                                 rj->pat[q].prefix ? "*" : "");
                        return -1;
                    }
                }
            }
        }
    }
    return 0;
}

/* Does id match the pattern with "%u" = user? No copy: id is compared piece by piece. */
static bool cid_match(const struct cid_pattern *pat, const char *user, const char *id)
{
    const char *u = strstr(pat->text, "%u");
    size_t head = u ? (size_t)(u - pat->text) : strlen(pat->text);
    if (strncmp(id, pat->text, head) != 0)
        return false;
    id += head;
    if (u) {
        size_t ulen = strlen(user);
        if (strncmp(id, user, ulen) != 0)
            return false;
        id += ulen;
        const char *tail = u + 2;
        size_t tlen = strlen(tail);
        if (strncmp(id, tail, tlen) != 0)
            return false;
        id += tlen;
    }
    return pat->prefix || *id == '\0';
}

static const struct cid_rule *cid_rule_of(const struct cid_rules *r, const char *user)
{
    const struct cid_rule *any = NULL;
    for (int i = 0; i < r->nrule; i++) {
        if (r->rule[i].any_user)
            any = &r->rule[i];
        else if (strcmp(r->rule[i].user, user) == 0)
            return &r->rule[i];
    }
    return any;
}

enum cid_verdict cid_rules_check(const struct cid_rules *r, const char *user, const char *id)
{
    const struct cid_rule *own = cid_rule_of(r, user);
    if (!own)
        return CID_NO_RULE;
    bool matched = false;
    for (int p = 0; p < own->npat && !matched; p++)
        matched = cid_match(&own->pat[p], user, id);
    if (!matched)
        return CID_NO_MATCH;
    for (int i = 0; i < r->nrule; i++) {
        const struct cid_rule *other = &r->rule[i];
        if (other == own || other->any_user)
            continue;
        for (int p = 0; p < other->npat; p++) {
            if (cid_match(&other->pat[p], other->user, id))
                return CID_RESERVED;
        }
    }
    return CID_OK;
}

const char *cid_verdict_name(enum cid_verdict v)
{
    switch (v) {
    case CID_OK:
        return "ok";
    case CID_NO_RULE:
        return "user has no client id rule";
    case CID_NO_MATCH:
        return "client id not allowed for this user";
    case CID_RESERVED:
        return "client id reserved for another user";
    }
    return "?";
}
