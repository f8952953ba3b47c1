/* SPDX-License-Identifier: Apache-2.0 */
/* Builds the apply script's arguments and reads its answer; pure, so it is unit-tested. */
#include "apply.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/err.h"

const char *ingest_outcome_word(enum ingest_outcome o)
{
    switch (o) {
    case INGEST_APPLIED:
        return "applied";
    case INGEST_LATE:
        return "late";
    case INGEST_DUPLICATE:
        return "duplicate";
    case INGEST_STALE:
        return "stale";
    }
    return "unknown";
}

int ingest_cmd_init(struct ingest_cmd *c, size_t max_samples)
{
    memset(c, 0, sizeof(*c));
    size_t n = 1 + INGEST_KEYS + INGEST_FIXED_ARGS + 2 * max_samples;
    c->max_samples = max_samples;
    c->argv = calloc(n, sizeof(*c->argv));
    c->argvlen = calloc(n, sizeof(*c->argvlen));
    c->values = calloc(max_samples + 1, sizeof(*c->values));
    if (!c->argv || !c->argvlen || !c->values) {
        ingest_cmd_free(c);
        return TW_ENOMEM;
    }
    return 0;
}

void ingest_cmd_free(struct ingest_cmd *c)
{
    free(c->argv);
    free(c->argvlen);
    free(c->values);
    memset(c, 0, sizeof(*c));
}

static void cmd_push(struct ingest_cmd *c, const char *s, int len)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc] = len >= 0 ? (size_t)len : strlen(s);
    c->argc++;
}

void ingest_cmd_build(struct ingest_cmd *c, const struct tw_telemetry *t, int64_t ingest_ms,
                      const struct ingest_apply_params *p, const struct tw_model_kind *kind)
{
    static const char *const suffix[INGEST_KEYS] = {"state", "history", "replay", "derived"};
    bool derived = kind && kind->n_derived > 0;
    int keys = derived ? INGEST_KEYS : INGEST_KEYS - 1;
    c->argc = 0;
    c->numkeys[0] = (char)('0' + keys);
    c->numkeys[1] = '\0';
    cmd_push(c, c->numkeys, 1);
    for (int k = 0; k < keys; k++) {
        /* {asset} is the Redis Cluster hash tag: all the keys share one slot. */
        int n = snprintf(c->keys[k], sizeof(c->keys[k]), "twin:{%s}:%s", t->asset_id, suffix[k]);
        if (n >= (int)sizeof(c->keys[k])) /* callers pass validated ids; never read past */
            n = (int)sizeof(c->keys[k]) - 1;
        cmd_push(c, c->keys[k], n);
    }
    int n0 = snprintf(c->fixed[0], sizeof(c->fixed[0]), "%" PRIu64, t->seq);
    int n1 = snprintf(c->fixed[1], sizeof(c->fixed[1]), "%" PRId64, t->ts_ms);
    int n2 = snprintf(c->fixed[2], sizeof(c->fixed[2]), "%" PRId64, ingest_ms);
    int n3 = snprintf(c->fixed[3], sizeof(c->fixed[3]), "%" PRIu64, p->window);
    int n4 = snprintf(c->fixed[4], sizeof(c->fixed[4]), "%" PRIu64, p->history_maxlen);
    cmd_push(c, c->fixed[0], n0);
    cmd_push(c, c->fixed[1], n1);
    cmd_push(c, c->fixed[2], n2);
    cmd_push(c, c->fixed[3], n3);
    cmd_push(c, c->fixed[4], n4);
    cmd_push(c, derived ? kind->name : "", -1);
    for (size_t i = 0; i < t->n_samples && i < c->max_samples; i++) {
        int n = snprintf(c->values[i], INGEST_VALUE_TEXT, "%.17g", t->samples[i].value);
        cmd_push(c, t->samples[i].signal, -1);
        cmd_push(c, c->values[i], n);
    }
}

int ingest_state_init(struct ingest_state *st, size_t cap)
{
    memset(st, 0, sizeof(*st));
    st->samples = calloc(cap + 1, sizeof(*st->samples));
    st->cap = st->samples ? cap : 0;
    return st->samples ? 0 : TW_ENOMEM;
}

void ingest_state_free(struct ingest_state *st)
{
    free(st->samples);
    free(st->changed);
    free(st->changed_buf);
    memset(st, 0, sizeof(*st));
}

/* Splits "a,b,c" into st->changed. A malformed list only loses the list, not the state. */
static int parse_changed(struct ingest_state *st, const char *text)
{
    size_t len = strlen(text), n = len ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == ',';
    char *buf = malloc(len + 1);
    const char **list = calloc(n + 1, sizeof(*list));
    if (!buf || !list) {
        free(buf);
        free(list);
        return TW_ENOMEM;
    }
    memcpy(buf, text, len + 1);
    free(st->changed);
    free(st->changed_buf);
    st->changed = list;
    st->changed_buf = buf;
    st->n_changed = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        list[st->n_changed++] = tok;
    return 0;
}

/* Grows the samples array: an asset's state can hold more signals than one message. */
static int state_reserve(struct ingest_state *st, size_t n)
{
    if (n <= st->cap)
        return 0;
    struct tw_sample *grown = realloc(st->samples, (n + 1) * sizeof(*grown));
    if (!grown)
        return TW_ENOMEM;
    st->samples = grown;
    st->cap = n;
    return 0;
}

/* strtoll/strtoull skip blanks and take a sign (strtoull wraps "-1" silently), so the first
 * character is checked by hand: meta fields are written by the script as plain digits. */
static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return TW_EPROTO;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return TW_EPROTO;
    *out = v;
    return 0;
}

static int parse_meta(struct ingest_state *st, const char *name, const char *value)
{
    if (strcmp(name, "_seq") == 0) {
        char *end;
        errno = 0;
        if (value[0] < '0' || value[0] > '9')
            return TW_EPROTO;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end)
            return TW_EPROTO;
        st->seq = v;
        return 0;
    }
    if (strcmp(name, "_ts_ms") == 0)
        return parse_i64(value, &st->ts_ms);
    if (strcmp(name, "_ingest_ms") == 0)
        return parse_i64(value, &st->ingest_ms);
    if (strcmp(name, "_changed") == 0)
        return parse_changed(st, value) == TW_ENOMEM ? TW_ENOMEM : 0;
    return 0; /* a meta field of a later version: not ours to publish */
}

int ingest_parse_state(const struct tw_reply *h, struct ingest_state *st)
{
    if (h->type != TW_REPLY_ARRAY || h->n % 2)
        return TW_EPROTO;
    st->n_samples = st->n_bad = st->n_changed = 0;
    st->seq = 0;
    st->ts_ms = st->ingest_ms = st->previous_ingest_ms = 0;
    if (state_reserve(st, h->n / 2) < 0)
        return TW_ENOMEM;
    for (size_t i = 0; i < h->n; i += 2) {
        const struct tw_reply *k = &h->elem[i], *v = &h->elem[i + 1];
        if (k->type != TW_REPLY_STR || v->type != TW_REPLY_STR)
            return TW_EPROTO;
        if (k->len == 0 || strlen(k->str) != k->len || strlen(v->str) != v->len) {
            st->n_bad++; /* only a hand-edited hash holds such fields */
            continue;
        }
        if (k->str[0] == '_') {
            if (parse_meta(st, k->str, v->str) < 0)
                return TW_EPROTO;
            continue;
        }
        char *end;
        double d = strtod(v->str, &end);
        if (end == v->str || *end || !isfinite(d)) {
            st->n_bad++;
            continue;
        }
        st->samples[st->n_samples].signal = k->str;
        st->samples[st->n_samples].value = d;
        st->n_samples++;
    }
    return 0;
}

int ingest_parse_reply(const struct tw_reply *r, enum ingest_outcome *outcome,
                       struct ingest_state *st)
{
    if (r->type != TW_REPLY_ARRAY || r->n < 1 || r->elem[0].type != TW_REPLY_INT)
        return TW_EPROTO;
    long long code = r->elem[0].integer;
    if (code < INGEST_APPLIED || code > INGEST_STALE)
        return TW_EPROTO;
    if (code == INGEST_APPLIED) {
        if (r->n != 3 || r->elem[2].type != TW_REPLY_STR)
            return TW_EPROTO;
        int rc = ingest_parse_state(&r->elem[1], st);
        if (rc == 0)
            rc = parse_i64(r->elem[2].str, &st->previous_ingest_ms);
        if (rc < 0)
            return rc;
    } else if (r->n != 1) {
        return TW_EPROTO;
    }
    *outcome = (enum ingest_outcome)code;
    return 0;
}
