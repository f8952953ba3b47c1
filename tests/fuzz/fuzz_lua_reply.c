/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: reply trees of any shape (bounded) through ingest_parse_reply. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "fuzz_check.h"
#include "twin/err.h"
#include "twin/store.h"

/* Input grammar, one node after another, depth first:
 *   type byte (mod 6): 0 nil, 1 integer, 2 bulk string, 3 status, 4 error, 5 array
 *   integer: one byte read as int8, or 0x80 then 8 bytes big-endian int64
 *   string/status/error: a length byte, then that many bytes (fewer if the input ends)
 *   array: a count byte, then that many nodes
 * When the input runs out, the remaining nodes are nil. Depth and node count are capped so
 * one input stays cheap. */
#define FUZZ_MAX_DEPTH 4
#define FUZZ_MAX_NODES 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


struct builder {
    const uint8_t *p, *end;
    struct tw_reply *nodes;
    size_t used;
    char *text; /* every string, each NUL-terminated */
    size_t text_used;
};

static uint8_t next_byte(struct builder *b)
{
    return b->p < b->end ? *b->p++ : 0;
}

static void build_node(struct builder *b, struct tw_reply *r, int depth);

static void build_string(struct builder *b, struct tw_reply *r)
{
    size_t want = next_byte(b);
    size_t have = (size_t)(b->end - b->p);
    size_t n = want < have ? want : have;
    char *s = b->text + b->text_used;
    memcpy(s, b->p, n);
    s[n] = '\0';
    b->p += n;
    b->text_used += n + 1;
    r->str = s;
    r->len = n;
}

static void build_array(struct builder *b, struct tw_reply *r, int depth)
{
    size_t n = next_byte(b);
    if (depth >= FUZZ_MAX_DEPTH)
        n = 0;
    if (n > FUZZ_MAX_NODES - b->used)
        n = FUZZ_MAX_NODES - b->used;
    /* The children are contiguous, as a client library hands them over. */
    struct tw_reply *elem = b->nodes + b->used;
    b->used += n;
    for (size_t i = 0; i < n; i++)
        build_node(b, &elem[i], depth + 1);
    r->elem = n ? elem : NULL;
    r->n = n;
}

static void build_node(struct builder *b, struct tw_reply *r, int depth)
{
    memset(r, 0, sizeof(*r));
    if (b->p >= b->end) {
        r->type = TW_REPLY_NIL;
        return;
    }
    switch (next_byte(b) % 6) {
    case 0:
        r->type = TW_REPLY_NIL;
        break;
    case 1: {
        r->type = TW_REPLY_INT;
        uint8_t v = next_byte(b);
        if (v != 0x80) {
            r->integer = (int8_t)v;
            break;
        }
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = u << 8 | next_byte(b);
        memcpy(&r->integer, &u, sizeof(u) < sizeof(r->integer) ? sizeof(u) : sizeof(r->integer));
        break;
    }
    case 2:
        r->type = TW_REPLY_STR;
        build_string(b, r);
        break;
    case 3:
        r->type = TW_REPLY_STATUS;
        build_string(b, r);
        break;
    case 4:
        r->type = TW_REPLY_ERROR;
        build_string(b, r);
        break;
    default:
        r->type = TW_REPLY_ARRAY;
        build_array(b, r, depth);
        break;
    }
}

/* What the parser said must agree with the tree it was given. */
static void check_outcome(const struct tw_reply *top, enum ingest_outcome outcome,
                          const struct ingest_state *st)
{
    CHECK(top->type == TW_REPLY_ARRAY && top->n >= 1);
    CHECK(top->elem[0].type == TW_REPLY_INT && top->elem[0].integer == (long long)outcome);
    CHECK(outcome >= INGEST_APPLIED && outcome <= INGEST_STALE);
    if (outcome != INGEST_APPLIED) {
        CHECK(top->n == 1);
        return;
    }
    CHECK(top->n == 3 && top->elem[2].type == TW_REPLY_STR);
    const struct tw_reply *h = &top->elem[1];
    CHECK(h->type == TW_REPLY_ARRAY && h->n % 2 == 0);
    size_t meta = 0;
    for (size_t i = 0; i < h->n; i += 2) {
        const struct tw_reply *k = &h->elem[i], *v = &h->elem[i + 1];
        CHECK(k->type == TW_REPLY_STR && v->type == TW_REPLY_STR);
        bool whole = k->len > 0 && strlen(k->str) == k->len && strlen(v->str) == v->len;
        meta += whole && k->str[0] == '_';
    }
    CHECK(st->n_samples <= st->cap);
    CHECK(st->n_samples + st->n_bad + meta == h->n / 2);
    for (size_t i = 0; i < st->n_samples; i++) {
        CHECK(st->samples[i].signal != NULL && st->samples[i].signal[0] != '_');
        CHECK(isfinite(st->samples[i].value));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct builder b = {.p = data, .end = data + size};
    b.nodes = calloc(FUZZ_MAX_NODES + 1, sizeof(*b.nodes));
    b.text = malloc(size + FUZZ_MAX_NODES + 2);
    CHECK(b.nodes && b.text);
    struct tw_reply top;
    build_node(&b, &top, 0);
    CHECK(b.used <= FUZZ_MAX_NODES && b.text_used <= size + FUZZ_MAX_NODES + 1);

    struct ingest_state st;
    CHECK(ingest_state_init(&st, 2) == 0);
    enum ingest_outcome outcome = 0;
    int rc = ingest_parse_reply(&top, &outcome, &st);
    CHECK(rc == 0 || rc == TW_EPROTO || rc == TW_ENOMEM);
    if (rc == 0)
        check_outcome(&top, outcome, &st);
    ingest_state_free(&st);
    free(b.text);
    free(b.nodes);
    return 0;
}
