/* SPDX-License-Identifier: Apache-2.0 */
/* ScenarioResult to and from plain C (struct scen_outcome around a struct scn_result),
 * trimmed to fit the broker's message size when a sweep returns many variants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/err.h"
#include "twin/v1/twin.pb-c.h"
#include "wire.h"

/* ---- encode ------------------------------------------------------------------------------- */

/* The protobuf-c structs of one message; `kpis` holds every Kpi of the result and its
 * variants. */
struct res_storage {
    Twin__V1__ScenarioResult m;
    Twin__V1__Kpi *kpis;
    Twin__V1__Kpi **kpi_ptr;
    Twin__V1__Estimate *est;
    Twin__V1__Variant *var;
    Twin__V1__Variant **var_ptr;
    size_t used; /* entries of kpis used */
};

static void est_fill(Twin__V1__Estimate *e, const struct scn_estimate *s)
{
    twin__v1__estimate__init(e);
    e->mean = s->mean;
    e->lo = s->lo;
    e->hi = s->hi;
    e->n = s->n;
}

/* Appends n KPIs to the storage; returns the pointer array for them. */
static Twin__V1__Kpi **kpis_fill(struct res_storage *st, const struct scn_kpi *src, size_t n)
{
    Twin__V1__Kpi **first = st->kpi_ptr + st->used;
    for (size_t i = 0; i < n; i++) {
        size_t k = st->used++;
        Twin__V1__Kpi *d = &st->kpis[k];
        Twin__V1__Estimate *e = &st->est[3 * k];
        twin__v1__kpi__init(d);
        d->name = (char *)src[i].name;
        d->unit = (char *)(src[i].unit ? src[i].unit : "");
        est_fill(&e[0], &src[i].base);
        est_fill(&e[1], &src[i].scen);
        est_fill(&e[2], &src[i].diff);
        d->baseline = &e[0];
        d->scenario = &e[1];
        d->difference = &e[2];
        st->kpi_ptr[k] = d;
    }
    return first;
}

static int storage_alloc(struct res_storage *st, const struct scn_result *r)
{
    size_t total = r ? r->n_kpis : 0, nv = r ? r->n_variants : 0;
    for (size_t i = 0; i < nv; i++)
        total += r->variants[i].n_kpis;
    st->kpis = calloc(total + 1, sizeof(*st->kpis));
    st->kpi_ptr = calloc(total + 1, sizeof(*st->kpi_ptr));
    st->est = calloc(3 * total + 1, sizeof(*st->est));
    st->var = calloc(nv + 1, sizeof(*st->var));
    st->var_ptr = calloc(nv + 1, sizeof(*st->var_ptr));
    return st->kpis && st->kpi_ptr && st->est && st->var && st->var_ptr ? 0 : TW_ENOMEM;
}

static void storage_free(struct res_storage *st)
{
    free(st->kpis);
    free(st->kpi_ptr);
    free(st->est);
    free(st->var);
    free(st->var_ptr);
}

/* Fills the message with the first n_var variants; those from index kpis_until on carry no
 * KPIs. */
static void result_fill(struct res_storage *st, const struct scen_outcome *o, size_t n_var,
                        size_t kpis_until, const char *error)
{
    Twin__V1__ScenarioResult *m = &st->m;
    const struct scn_result *r = o->r;
    twin__v1__scenario_result__init(m);
    st->used = 0;
    m->id = (char *)o->id;
    m->name = (char *)(o->name ? o->name : "");
    m->status = (Twin__V1__ScenarioResult__Status)o->status;
    m->error = (char *)(error ? error : "");
    m->n_sweep_parameters = o->n_sweep_params;
    m->sweep_parameters = (char **)o->sweep_params;
    m->replications = o->replications;
    m->horizon_ms = o->horizon_ms;
    m->warmup_ms = o->warmup_ms;
    m->seed = o->seed;
    m->snapshot_ms = o->snapshot_ms;
    m->wall_ms = o->wall_ms;
    m->finished_ms = o->finished_ms;
    if (!r)
        return;
    m->n_kpis = r->n_kpis;
    m->kpis = kpis_fill(st, r->kpis, r->n_kpis);
    for (size_t i = 0; i < n_var; i++) {
        const struct scn_variant *v = &r->variants[i];
        Twin__V1__Variant *d = &st->var[i];
        twin__v1__variant__init(d);
        d->rank = (uint32_t)(i + 1);
        d->n_values = o->n_sweep_params;
        d->values = (double *)v->values;
        d->objective = v->objective;
        d->cost = v->cost;
        d->feasible = v->feasible;
        if (i < kpis_until) {
            d->n_kpis = v->n_kpis;
            d->kpis = kpis_fill(st, v->kpis, v->n_kpis);
        }
        st->var_ptr[i] = d;
    }
    m->n_variants = n_var;
    m->variants = st->var_ptr;
    m->variants_total = r->variants_total;
    m->variants_feasible = r->variants_feasible;
    m->events = r->events;
}

int scen_outcome_encode(const struct scen_outcome *o, size_t max_len, uint8_t **buf, size_t *len)
{
    struct res_storage st = {0};
    char note[256];
    size_t nv = o->r ? o->r->n_variants : 0, kpis_until = nv;
    const char *error = o->error;
    int rc = storage_alloc(&st, o->r);
    if (rc < 0)
        goto out;
    result_fill(&st, o, nv, kpis_until, error);
    *len = twin__v1__scenario_result__get_packed_size(&st.m);
    /* Too large for the broker: the recommendation keeps its KPIs, the others only their
     * objective and cost; then fewer variants, halving until it fits. */
    while (max_len > 0 && *len > max_len && (kpis_until > 1 || nv > 1)) {
        if (kpis_until > 1)
            kpis_until = 1;
        else
            nv /= 2;
        if (kpis_until > nv)
            kpis_until = nv;
        snprintf(note, sizeof(note),
                 "note: result trimmed to %zu bytes: variants after the first carry no KPIs%s",
                 max_len, nv < (o->r ? o->r->n_variants : 0) ? ", fewer variants returned" : "");
        error = note;
        result_fill(&st, o, nv, kpis_until, error);
        *len = twin__v1__scenario_result__get_packed_size(&st.m);
    }
    if (max_len > 0 && *len > max_len) {
        rc = TW_EINVAL;
        goto out;
    }
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        rc = TW_ENOMEM;
        goto out;
    }
    twin__v1__scenario_result__pack(&st.m, *buf);
out:
    storage_free(&st);
    return rc;
}

/* ---- decode ------------------------------------------------------------------------------- */

static void est_copy(struct scn_estimate *d, const Twin__V1__Estimate *e)
{
    if (e)
        *d = (struct scn_estimate){.mean = e->mean, .lo = e->lo, .hi = e->hi, .n = e->n};
}

static struct scn_kpi *kpis_copy(Twin__V1__Kpi *const *src, size_t n)
{
    struct scn_kpi *k = calloc(n + 1, sizeof(*k));
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        snprintf(k[i].name, sizeof(k[i].name), "%s", src[i]->name);
        k[i].unit = src[i]->unit; /* lives as long as the unpacked message */
        est_copy(&k[i].base, src[i]->baseline);
        est_copy(&k[i].scen, src[i]->scenario);
        est_copy(&k[i].diff, src[i]->difference);
    }
    return k;
}

static int variants_copy(struct scn_result *r, const Twin__V1__ScenarioResult *m)
{
    r->variants = calloc(m->n_variants + 1, sizeof(*r->variants));
    if (!r->variants)
        return TW_ENOMEM;
    r->n_variants = m->n_variants;
    for (size_t i = 0; i < m->n_variants; i++) {
        const Twin__V1__Variant *v = m->variants[i];
        struct scn_variant *d = &r->variants[i];
        for (size_t j = 0; j < v->n_values && j < SCN_MAX_SWEEP_PARAMS; j++)
            d->values[j] = v->values[j];
        d->objective = v->objective;
        d->cost = v->cost;
        d->feasible = v->feasible;
        d->kpis = kpis_copy(v->kpis, v->n_kpis);
        if (!d->kpis)
            return TW_ENOMEM;
        d->n_kpis = v->n_kpis;
    }
    return 0;
}

static int result_copy(struct scen_outcome *out, const Twin__V1__ScenarioResult *m)
{
    struct scn_result *r = calloc(1, sizeof(*r));
    if (!r)
        return TW_ENOMEM;
    out->r = r;
    r->kpis = kpis_copy(m->kpis, m->n_kpis);
    if (!r->kpis)
        return TW_ENOMEM;
    r->n_kpis = m->n_kpis;
    r->variants_total = m->variants_total;
    r->variants_feasible = m->variants_feasible;
    r->events = m->events;
    return variants_copy(r, m);
}

int scen_outcome_decode(const uint8_t *buf, size_t len, struct scen_outcome *out)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__ScenarioResult *m = twin__v1__scenario_result__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    out->impl_ = m;
    snprintf(out->id, sizeof(out->id), "%s", m->id);
    out->name = m->name;
    out->status = (int)m->status;
    out->error = m->error;
    out->n_sweep_params =
        m->n_sweep_parameters < SCN_MAX_SWEEP_PARAMS ? m->n_sweep_parameters : SCN_MAX_SWEEP_PARAMS;
    for (size_t i = 0; i < out->n_sweep_params; i++)
        out->sweep_params[i] = m->sweep_parameters[i];
    out->replications = m->replications;
    out->horizon_ms = m->horizon_ms;
    out->warmup_ms = m->warmup_ms;
    out->seed = m->seed;
    out->snapshot_ms = m->snapshot_ms;
    out->wall_ms = m->wall_ms;
    out->finished_ms = m->finished_ms;
    int rc = result_copy(out, m);
    if (rc < 0)
        scen_outcome_free(out);
    return rc;
}

void scen_outcome_free(struct scen_outcome *o)
{
    if (!o || !o->impl_)
        return;
    struct scn_result *r = o->r;
    if (r) {
        for (size_t i = 0; r->variants && i < r->n_variants; i++)
            free(r->variants[i].kpis);
        free(r->variants);
        free(r->kpis);
        free(r);
    }
    twin__v1__scenario_result__free_unpacked(o->impl_, NULL);
    memset(o, 0, sizeof(*o));
}
