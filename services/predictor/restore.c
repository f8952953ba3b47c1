/* SPDX-License-Identifier: Apache-2.0 */
/* Bringing an asset's learning back (its stored model from twin:{asset}:model and what its
 * history stream holds since, or, with none stored, a warm start from that history) and the
 * batch refits of its models from that history. Loop thread. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"
#include "twin/codec.h"
#include "twin/err.h"

static bool reply_is_str(const struct tw_reply *r)
{
    return r->type == TW_REPLY_STR;
}

static void restore_log_refusal(struct pred_service *svc, const char *asset, const char *what,
                                const char *detail)
{
    uint32_t suppressed = 0;
    if (tw_ratelimit_allow(&svc->state_log, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, what, "asset=%s %s suppressed=%" PRIu32, asset, detail, suppressed);
}

/* The signal's entry, created (and counted as refused at the limit) when it is new. */
static struct pred_sig *restore_sig(struct pred_service *svc, struct pred_asset *a,
                                    const char *name, const struct pred_config *pc)
{
    struct pred_sig *sig = pred_asset_signal(a, name);
    if (sig)
        return sig;
    int rc = pred_table_add_signal(&svc->table, a, name, pc, &sig);
    if (rc == TW_EAGAIN) {
        tw_counter_add(svc->m->refused[PRED_LIMIT_SIGNALS], 1);
        restore_log_refusal(svc, a->id, "signal_refused", "reason=max_signals");
    } else if (rc < 0) {
        restore_log_refusal(svc, a->id, "signal_init_failed", tw_strerror(rc));
    }
    return rc == 0 ? sig : NULL;
}

/* Loads one field of the model hash into its signal. A bad entry is logged and the signal
 * keeps the state it has (fresh for a new one): the next persist overwrites the entry. */
static void restore_signal(struct pred_service *svc, struct pred_asset *a,
                           const struct tw_reply *name, const struct tw_reply *value)
{
    char detail[TW_NAME_MAX + 64];
    struct pred_config pc;
    struct tw_signal_model_state ms;
    if (!reply_is_str(name) || !reply_is_str(value) || !tw_valid_signal(name->str, name->len)) {
        tw_counter_add(svc->m->bad_model_state, 1);
        restore_log_refusal(svc, a->id, "model_state_invalid", "reason=bad_field");
        return;
    }
    pred_table_signal_config(svc->cfg, a->id, name->str, &pc);
    struct pred_sig *sig = restore_sig(svc, a, name->str, &pc);
    if (!sig)
        return;
    int rc = tw_codec_decode_signal_model_state((const uint8_t *)value->str, value->len,
                                                svc->state_buf, svc->state_cap, &ms);
    if (rc == 0 && ms.format != pred_signal_state_version())
        rc = TW_EPROTO;
    if (rc == 0)
        rc = pred_signal_load(sig->st, &pc, ms.state, ms.n_state);
    if (rc == 0 && pred_signal_reconfigure(sig->st, &pc) < 0)
        rc = pred_signal_init(sig->st, &pc) < 0 ? TW_EINVAL : TW_EPROTO;
    if (rc < 0) {
        tw_counter_add(svc->m->bad_model_state, 1);
        snprintf(detail, sizeof(detail), "signal=%s error=%s", sig->name, tw_strerror(rc));
        restore_log_refusal(svc, a->id, "model_state_invalid", detail);
        return;
    }
    sig->dirty = false; /* Redis holds exactly this state */
    tw_counter_add(svc->m->restored[PRED_RESTORED_MODEL], 1);
}

/* ---- warm start from history --------------------------------------------------------------- */

struct warm_entry {
    int64_t ts_ms;
    size_t order; /* position in the stream, oldest first */
    const struct tw_reply *fields;
};

static int warm_cmp(const void *pa, const void *pb)
{
    const struct warm_entry *a = pa, *b = pb;
    if (a->ts_ms != b->ts_ms)
        return a->ts_ms < b->ts_ms ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static bool parse_text_double(const struct tw_reply *r, double *out)
{
    char *end = NULL;
    if (!reply_is_str(r) || r->len == 0)
        return false;
    errno = 0;
    *out = strtod(r->str, &end);
    return end == r->str + r->len && errno == 0 && isfinite(*out);
}

static bool parse_text_int64(const struct tw_reply *r, int64_t *out)
{
    char *end = NULL;
    if (!reply_is_str(r) || r->len == 0)
        return false;
    errno = 0;
    long long v = strtoll(r->str, &end, 10);
    *out = v;
    return end == r->str + r->len && errno == 0;
}

/* An entry is [id, [ts_ms, <t>, seq, <s>, signal, value, ...]]; NULL when it is not. */
static const struct tw_reply *warm_fields(const struct tw_reply *e, int64_t *ts_ms)
{
    if (e->type != TW_REPLY_ARRAY || e->n != 2 || e->elem[1].type != TW_REPLY_ARRAY)
        return NULL;
    const struct tw_reply *f = &e->elem[1];
    if (f->n < 2 || f->n % 2 != 0 || !reply_is_str(&f->elem[0]) ||
        strcmp(f->elem[0].str, "ts_ms") != 0 || !parse_text_int64(&f->elem[1], ts_ms))
        return NULL;
    return f;
}

/* Learns one history entry: every signal's value at its time; alerts are not published. */
static void warm_feed(struct pred_service *svc, struct pred_asset *a, const struct warm_entry *e)
{
    struct pred_event ev[PRED_MAX_EVENTS];
    struct pred_config pc;
    for (size_t j = 2; j + 1 < e->fields->n; j += 2) {
        const struct tw_reply *name = &e->fields->elem[j];
        double value;
        if (j == 2 && reply_is_str(name) && strcmp(name->str, "seq") == 0)
            continue;
        if (!reply_is_str(name) || !tw_valid_signal(name->str, name->len) ||
            !parse_text_double(&e->fields->elem[j + 1], &value))
            continue;
        struct pred_sig *sig = pred_asset_signal(a, name->str);
        if (!sig) {
            pred_table_signal_config(svc->cfg, a->id, name->str, &pc);
            sig = restore_sig(svc, a, name->str, &pc);
        }
        if (!sig)
            continue;
        int64_t basis = pred_signal_basis_ms(sig->st);
        pred_signal_observe(sig->st, e->ts_ms, value, ev);
        if (pred_signal_basis_ms(sig->st) == basis)
            continue; /* a late entry, older than what the signal has seen */
        sig->dirty = true;
        tw_counter_add(svc->m->updates, 1);
    }
}

/* History entries read newest first, page by page; the pages stay alive while their entries
 * are fed. */
struct history {
    struct tw_reply **pages;
    size_t n_pages, cap_pages;
    struct warm_entry *entries;
    size_t n, cap, read; /* valid entries; entries read in all */
};

#define HISTORY_PAGE 256

static void history_free(struct history *h)
{
    for (size_t i = 0; i < h->n_pages; i++)
        tw_store_replies_free(h->pages[i], 1);
    free(h->pages);
    free(h->entries);
}

/* Keeps page r and its entries. Returns false when out of memory (r is freed). */
static bool history_take(struct history *h, struct tw_reply *r, int64_t since_ms, bool *reached)
{
    if (h->n_pages == h->cap_pages) {
        size_t cap = h->cap_pages ? 2 * h->cap_pages : 8;
        struct tw_reply **pages = realloc(h->pages, cap * sizeof(*pages));
        if (!pages) {
            tw_store_replies_free(r, 1);
            return false;
        }
        h->pages = pages, h->cap_pages = cap;
    }
    h->pages[h->n_pages++] = r;
    if (h->n + r->n > h->cap) {
        size_t cap = 2 * (h->n + r->n);
        struct warm_entry *e = realloc(h->entries, cap * sizeof(*e));
        if (!e)
            return false;
        h->entries = e, h->cap = cap;
    }
    for (size_t i = 0; i < r->n; i++) {
        struct warm_entry *e = &h->entries[h->n];
        e->fields = warm_fields(&r->elem[i], &e->ts_ms);
        e->order = SIZE_MAX - h->read++; /* read newest first: later in the stream sorts later */
        if (e->fields && e->ts_ms <= since_ms)
            *reached = true;
        h->n += e->fields != NULL && e->ts_ms > since_ms;
    }
    return true;
}

/* Reads the history entries newer than since_ms (device time), newest first, in pages, until
 * a page reaches since_ms, the stream's start, or max entries. */
static void history_read(struct pred_service *svc, const struct pred_asset *a, int64_t since_ms,
                         size_t max, struct history *h)
{
    char key[PRED_KEY_MAX], count[24], end[80] = "+";
    bool reached = false;
    snprintf(key, sizeof(key), "twin:{%s}:history", a->id);
    while (!reached && h->read < max) {
        size_t want = max - h->read < HISTORY_PAGE ? max - h->read : HISTORY_PAGE;
        snprintf(count, sizeof(count), "%zu", want);
        const char *argv[] = {"XREVRANGE", key, end, "-", "COUNT", count};
        struct tw_reply *r = NULL;
        int rc = tw_store_command(svc->store, &r, 6, argv, NULL);
        pred_redis_result(svc, rc == TW_ENOMEM ? 0 : rc, "history_read");
        if (rc < 0 || r->type != TW_REPLY_ARRAY || r->n == 0) {
            tw_store_replies_free(r, 1);
            return;
        }
        const struct tw_reply *last = &r->elem[r->n - 1];
        bool full = r->n == want && last->type == TW_REPLY_ARRAY && last->n == 2 &&
                    reply_is_str(&last->elem[0]);
        /* The next page ends just before the oldest entry of this one (exclusive range). */
        if (full)
            snprintf(end, sizeof(end), "(%s", last->elem[0].str);
        if (!history_take(h, r, since_ms, &reached) || !full)
            return;
    }
}

/* ---- batch refits ------------------------------------------------------------------------ */

#define REFIT_ENTRIES     4096 /* history entries read for a refit, at most */
#define REFITS_PER_SECOND 20   /* fits (one signal each; up to ~15 ms for 1,024 steps) */

static int stream_cmp(const void *pa, const void *pb)
{
    const struct warm_entry *a = pa, *b = pb;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Whether the budget allows one more fit this second (take: and counts it). */
static bool refit_budget(struct pred_service *svc, bool take)
{
    int64_t now = tw_mono_ms();
    if (now - svc->refit_window_ms >= 1000) {
        svc->refit_window_ms = now;
        svc->refit_used = 0;
    }
    if (svc->refit_used >= REFITS_PER_SECOND)
        return false;
    svc->refit_used += take;
    return true;
}

/* The value of signal `name` in a history entry's fields; false when it has none. */
static bool entry_value(const struct tw_reply *f, const char *name, double *value)
{
    for (size_t j = 2; j + 1 < f->n; j += 2) {
        const struct tw_reply *k = &f->elem[j];
        if (j == 2 && reply_is_str(k) && strcmp(k->str, "seq") == 0)
            continue;
        if (reply_is_str(k) && strcmp(k->str, name) == 0)
            return parse_text_double(&f->elem[j + 1], value);
    }
    return false;
}

/* Refits from h (in stream order) the signals of a whose refit is due, or with `all` every
 * signal that can be refitted (after a warm start). One that the budget or memory does not
 * allow now stays due (sig->refit, a->refit) for the asset's next TwinState. Returns whether
 * any signal changed. */
static bool refit_from(struct pred_service *svc, struct pred_asset *a, const struct history *h,
                       bool all)
{
    bool changed = false;
    int64_t *ts = malloc((h->n ? h->n : 1) * sizeof(*ts));
    double *x = malloc((h->n ? h->n : 1) * sizeof(*x));
    for (size_t k = 0; k < a->n_sigs; k++) {
        struct pred_sig *sig = &a->sigs[k];
        if (!(all ? pred_signal_refittable(sig->st) : sig->refit))
            continue;
        int rc = TW_EAGAIN;
        if (ts && x && refit_budget(svc, true)) {
            size_t n = 0;
            for (size_t i = 0; i < h->n; i++)
                if (entry_value(h->entries[i].fields, sig->name, &x[n]))
                    ts[n++] = h->entries[i].ts_ms;
            rc = pred_signal_refit(sig->st, ts, x, n);
        }
        sig->refit = rc < 0;
        a->refit |= sig->refit;
        tw_counter_add(svc->m->refits[rc > 0    ? PRED_REFIT_CHANGED
                                      : rc == 0 ? PRED_REFIT_KEPT
                                                : PRED_REFIT_DEFERRED],
                       1);
        if (rc > 0) {
            sig->dirty = changed = true;
            tw_log(TW_LOG_DEBUG, "refit", "asset=%s signal=%s families=%d", a->id, sig->name, rc);
        }
    }
    free(ts);
    free(x);
    return changed;
}

void pred_refit_asset(struct pred_service *svc, struct pred_asset *a)
{
    size_t due = 0;
    for (size_t k = 0; k < a->n_sigs; k++)
        due += a->sigs[k].refit;
    a->refit = due > 0;
    /* Over the budget or without Redis, the refit waits for the asset's next TwinState. */
    if (due == 0 || !pred_redis_ready(svc) || !refit_budget(svc, false)) {
        tw_counter_add(svc->m->refits[PRED_REFIT_DEFERRED], due);
        return;
    }
    size_t max = (size_t)svc->cfg->warm_start_max;
    struct history h = {0};
    history_read(svc, a, INT64_MIN, max < REFIT_ENTRIES ? max : REFIT_ENTRIES, &h);
    if (!pred_redis_ready(svc)) { /* the read failed: the gate closed */
        tw_counter_add(svc->m->refits[PRED_REFIT_DEFERRED], due);
    } else {
        if (h.n > 0)
            qsort(h.entries, h.n, sizeof(*h.entries), stream_cmp);
        a->refit = false;
        if (refit_from(svc, a, &h, false) && a->loaded)
            pred_table_list(&svc->table, a, PRED_LIST_DIRTY);
    }
    history_free(&h);
}

/* ---- replays ------------------------------------------------------------------------------ */

/* Feeds the asset's history newer than since_ms, in device-time order (stream order among equal
 * times), to its signals; alerts raised on the way are not published. A signal already past an
 * entry ignores it. With `refit`, every signal that can be refitted is, from the same entries.
 * A Redis failure here only costs the replay: the asset learns from live data. Returns the
 * number of entries fed. */
static size_t history_replay(struct pred_service *svc, struct pred_asset *a, int64_t since_ms,
                             bool refit)
{
    struct history h = {0};
    history_read(svc, a, since_ms, (size_t)svc->cfg->warm_start_max, &h);
    if (h.n > 0)
        qsort(h.entries, h.n, sizeof(*h.entries), warm_cmp);
    for (size_t i = 0; i < h.n; i++)
        warm_feed(svc, a, &h.entries[i]);
    if (refit && h.n > 0) { /* a refit takes the entries as the signals met them live */
        qsort(h.entries, h.n, sizeof(*h.entries), stream_cmp);
        refit_from(svc, a, &h, true);
    }
    size_t n = h.n;
    history_free(&h);
    return n;
}

/* A fresh asset with no stored model learns from its recent history, and refits its models to
 * it. */
static void warm_start(struct pred_service *svc, struct pred_asset *a)
{
    size_t n = history_replay(svc, a, INT64_MIN, true);
    for (size_t k = 0; k < a->n_sigs; k++)
        tw_counter_add(svc->m->restored[PRED_RESTORED_HISTORY], 1);
    /* A new asset has no history yet: only a real warm start is worth a line at info. */
    tw_log(n > 0 ? TW_LOG_INFO : TW_LOG_DEBUG, "warm_start", "asset=%s entries=%zu signals=%zu",
           a->id, n, a->n_sigs);
}

/* A restored asset catches up with what was applied after its state was stored (the learning
 * of the last persist interval before a crash): every entry newer than the oldest signal's
 * basis is replayed, and each signal keeps only what is new to it. */
static void catch_up(struct pred_service *svc, struct pred_asset *a)
{
    int64_t since = INT64_MAX;
    for (size_t k = 0; k < a->n_sigs; k++) {
        int64_t b = pred_signal_basis_ms(a->sigs[k].st);
        since = b < since ? b : since;
    }
    if (a->n_sigs == 0 || svc->cfg->warm_start_max <= 0)
        return;
    size_t n = history_replay(svc, a, since, false);
    if (n > 0)
        tw_log(TW_LOG_INFO, "catch_up", "asset=%s entries=%zu since_ms=%" PRId64, a->id, n, since);
}

/* ---- the asset ----------------------------------------------------------------------------- */

static void restore_list(struct pred_service *svc, struct pred_asset *a)
{
    bool dirty = false, ready = false;
    for (size_t k = 0; k < a->n_sigs; k++) {
        dirty |= a->sigs[k].dirty;
        ready |= pred_signal_ready(a->sigs[k].st);
    }
    if (dirty)
        pred_table_list(&svc->table, a, PRED_LIST_DIRTY);
    if (ready)
        pred_table_list(&svc->table, a, PRED_LIST_PENDING);
}

int pred_restore_asset(struct pred_service *svc, struct pred_asset *a)
{
    char key[PRED_KEY_MAX];
    struct tw_reply *r = NULL;
    if (!pred_redis_ready(svc))
        return TW_EAGAIN;
    snprintf(key, sizeof(key), "twin:{%s}:model", a->id);
    const char *argv[] = {"HGETALL", key};
    int rc = tw_store_command(svc->store, &r, 2, argv, NULL);
    if (rc < 0) {
        if (rc != TW_ENOMEM)
            pred_redis_result(svc, rc, "model_read");
        return rc;
    }
    pred_redis_result(svc, 0, "model_read");
    bool fresh = a->n_sigs == 0;
    if (r->type == TW_REPLY_ARRAY && r->n > 0) {
        for (size_t i = 0; i + 1 < r->n; i += 2)
            restore_signal(svc, a, &r->elem[i], &r->elem[i + 1]);
        catch_up(svc, a);
    } else if (r->type == TW_REPLY_ERROR) {
        restore_log_refusal(svc, a->id, "model_read_refused", "reason=error_reply");
    } else if (fresh && svc->cfg->warm_start_max > 0) {
        warm_start(svc, a);
    }
    tw_store_replies_free(r, 1);
    a->loaded = true;
    restore_list(svc, a);
    return 0;
}
