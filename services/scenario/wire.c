/* SPDX-License-Identifier: Apache-2.0 */
/* The one file of the scenario runner and twinctl that includes the generated protobuf-c code:
 * ScenarioRequest, ScenarioProgress and Rejected to and from plain C structs. */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "twin/err.h"
#include "twin/v1/twin.pb-c.h"

const char *scen_status_word(int status)
{
    switch (status) {
    case SCEN_OK:
        return "ok";
    case SCEN_ERROR:
        return "error";
    case SCEN_CANCELLED:
        return "cancelled";
    default:
        return "unspecified";
    }
}

bool scen_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SCEN_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- the raw id --------------------------------------------------------------------------- */

static bool raw_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = buf[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Length on the wire of the last field 1 (the id; the last one wins, as protobuf says), so an
 * id the decoder cut at an embedded NUL is noticed. SIZE_MAX when the wire is malformed. */
static size_t raw_id_len(const uint8_t *buf, size_t len)
{
    size_t pos = 0, id_len = 0;
    while (pos < len) {
        uint64_t key, v;
        if (!raw_varint(buf, len, &pos, &key))
            return SIZE_MAX;
        switch (key & 7) {
        case 0:
            if (!raw_varint(buf, len, &pos, &v))
                return SIZE_MAX;
            break;
        case 1:
            pos += 8;
            break;
        case 5:
            pos += 4;
            break;
        case 2:
            if (!raw_varint(buf, len, &pos, &v) || v > len - pos)
                return SIZE_MAX;
            if (key >> 3 == 1)
                id_len = (size_t)v;
            pos += (size_t)v;
            break;
        default:
            return SIZE_MAX;
        }
    }
    return pos == len ? id_len : SIZE_MAX;
}

/* ---- request: decode ---------------------------------------------------------------------- */

static int copy_text(char *dst, size_t cap, const char *src, const char *what, size_t index,
                     char *why, size_t whylen)
{
    size_t n = strlen(src);
    if (n >= cap) {
        if (index == SIZE_MAX)
            return tw_fail(why, whylen, "%s is longer than %zu bytes", what, cap - 1);
        return tw_fail(why, whylen, "%s[%zu] is longer than %zu bytes", what, index, cap - 1);
    }
    memcpy(dst, src, n + 1);
    return 0;
}

/* A perturbation's kind crosses as its number: enum scen_perturb_kind is the proto's. */
_Static_assert((int)SCEN_P_MACHINE_DOWN == (int)TWIN__V1__PERTURBATION__KIND__MACHINE_DOWN &&
                   (int)SCEN_P_SUPPLIER_LATE == (int)TWIN__V1__PERTURBATION__KIND__SUPPLIER_LATE &&
                   (int)SCEN_P_DEMAND_FACTOR == (int)TWIN__V1__PERTURBATION__KIND__DEMAND_FACTOR &&
                   (int)SCEN_P_SET_PARAMETER == (int)TWIN__V1__PERTURBATION__KIND__SET_PARAMETER &&
                   (int)SCEN_P_MAINTAIN == (int)TWIN__V1__PERTURBATION__KIND__MAINTAIN &&
                   (int)SCEN_P_SLOW == (int)TWIN__V1__PERTURBATION__KIND__SLOW,
               "enum scen_perturb_kind must match twin.v1 Perturbation.Kind");

static int copy_perturbations(const Twin__V1__ScenarioRequest *m, struct scen_request *out,
                              char *why, size_t whylen)
{
    if (m->n_perturbations > SCEN_WIRE_MAX_PERTURB)
        return tw_fail(why, whylen, "too many perturbations (%zu, at most %u)", m->n_perturbations,
                       SCEN_WIRE_MAX_PERTURB);
    for (size_t i = 0; i < m->n_perturbations; i++) {
        const Twin__V1__Perturbation *p = m->perturbations[i];
        struct scen_perturbation *d = &out->perturb[i];
        if (copy_text(d->target, sizeof(d->target), p->target, "perturbations.target", i, why,
                      whylen) < 0)
            return TW_EINVAL;
        d->kind = (int)p->kind;
        d->start_ms = p->start_ms;
        d->duration_ms = p->duration_ms;
        d->delay_ms = p->delay_ms;
        d->count = p->count;
        d->factor = p->factor;
        d->value = p->value;
    }
    out->n_perturb = m->n_perturbations;
    return 0;
}

static int copy_range(const Twin__V1__SweepParameter *sp, size_t i, struct scn_range *r, char *why,
                      size_t whylen)
{
    if (copy_text(r->path, sizeof(r->path), sp->path, "sweep.parameters.path", i, why, whylen) < 0)
        return TW_EINVAL;
    if (sp->n_values > SCN_MAX_VALUES)
        return tw_fail(why, whylen, "sweep.parameters[%zu] lists %zu values (at most %u)", i,
                       sp->n_values, SCN_MAX_VALUES);
    if (sp->n_values > 0) {
        r->values = malloc(sp->n_values * sizeof(*r->values));
        if (!r->values)
            return tw_fail(why, whylen, "out of memory");
        memcpy(r->values, sp->values, sp->n_values * sizeof(*r->values));
        r->n_values = sp->n_values;
    }
    r->min = sp->min;
    r->max = sp->max;
    r->step = sp->step;
    r->cost = sp->cost;
    return 0;
}

static int copy_sweep(const Twin__V1__Sweep *s, struct scn_sweep *out, char *why, size_t whylen)
{
    if (s->n_parameters == 0)
        return tw_fail(why, whylen, "sweep has no parameters");
    if (s->n_parameters > SCN_MAX_SWEEP_PARAMS)
        return tw_fail(why, whylen, "sweep has %zu parameters (at most %u)", s->n_parameters,
                       SCN_MAX_SWEEP_PARAMS);
    if (s->n_constraints > SCN_MAX_CONSTRAINTS)
        return tw_fail(why, whylen, "sweep has %zu constraints (at most %u)", s->n_constraints,
                       SCN_MAX_CONSTRAINTS);
    switch (s->method) {
    case TWIN__V1__SWEEP__METHOD__GRID:
        out->method = SCN_SWEEP_GRID;
        break;
    case TWIN__V1__SWEEP__METHOD__RANDOM:
        out->method = SCN_SWEEP_RANDOM;
        break;
    case TWIN__V1__SWEEP__METHOD__LATIN_HYPERCUBE:
        out->method = SCN_SWEEP_LHS;
        break;
    default:
        return tw_fail(why, whylen, "sweep.method %d is not GRID, RANDOM or LATIN_HYPERCUBE",
                       (int)s->method);
    }
    for (size_t i = 0; i < s->n_parameters; i++) {
        out->n_params = i + 1; /* so scen_request_free releases what was copied */
        if (copy_range(s->parameters[i], i, &out->params[i], why, whylen) < 0)
            return TW_EINVAL;
    }
    for (size_t i = 0; i < s->n_constraints; i++) {
        const Twin__V1__Constraint *c = s->constraints[i];
        struct scn_constraint *d = &out->constraints[i];
        if (copy_text(d->kpi, sizeof(d->kpi), c->kpi, "sweep.constraints.kpi", i, why, whylen) < 0)
            return TW_EINVAL;
        d->has_min = c->has_min;
        d->min = c->min;
        d->has_max = c->has_max;
        d->max = c->max;
    }
    out->n_constraints = s->n_constraints;
    out->samples = s->samples;
    out->maximize = s->maximize;
    out->top = s->top;
    return copy_text(out->objective, sizeof(out->objective), s->objective, "sweep.objective",
                     SIZE_MAX, why, whylen);
}

enum scen_fault scen_request_decode(const uint8_t *buf, size_t len, struct scen_request *out,
                                    char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__ScenarioRequest *m = twin__v1__scenario_request__unpack(NULL, len, buf);
    if (!m) {
        snprintf(why, whylen, "not a twin.v1.ScenarioRequest");
        return SCEN_FAULT_UNDECODABLE;
    }
    enum scen_fault fault = SCEN_FAULT_NONE;
    if (!scen_valid_id(m->id) || raw_id_len(buf, len) != strlen(m->id)) {
        snprintf(why, whylen, "id must be 1-%u characters of [A-Za-z0-9._-]", SCEN_ID_MAX);
        fault = SCEN_FAULT_BAD_ID;
        goto out;
    }
    memcpy(out->id, m->id, strlen(m->id) + 1);
    out->horizon_ms = m->horizon_ms;
    out->warmup_ms = m->warmup_ms;
    out->replications = m->replications;
    out->seed = m->seed;
    out->ignore_live = m->ignore_live;
    out->cancel = m->cancel;
    if (copy_text(out->name, sizeof(out->name), m->name, "name", SIZE_MAX, why, whylen) < 0 ||
        copy_perturbations(m, out, why, whylen) < 0) {
        fault = SCEN_FAULT_BAD_REQUEST;
        goto out;
    }
    if (m->sweep) {
        out->has_sweep = true;
        if (copy_sweep(m->sweep, &out->sweep, why, whylen) < 0)
            fault = SCEN_FAULT_BAD_REQUEST;
    }
out:
    twin__v1__scenario_request__free_unpacked(m, NULL);
    return fault;
}

void scen_request_free(struct scen_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->sweep.n_params && i < SCN_MAX_SWEEP_PARAMS; i++) {
        free(r->sweep.params[i].values);
        r->sweep.params[i].values = NULL;
        r->sweep.params[i].n_values = 0;
    }
}

/* ---- request: encode ---------------------------------------------------------------------- */

struct req_storage {
    Twin__V1__Perturbation pert[SCEN_WIRE_MAX_PERTURB];
    Twin__V1__Perturbation *pert_ptr[SCEN_WIRE_MAX_PERTURB];
    Twin__V1__Sweep sweep;
    Twin__V1__SweepParameter params[SCN_MAX_SWEEP_PARAMS];
    Twin__V1__SweepParameter *param_ptr[SCN_MAX_SWEEP_PARAMS];
    Twin__V1__Constraint cons[SCN_MAX_CONSTRAINTS];
    Twin__V1__Constraint *cons_ptr[SCN_MAX_CONSTRAINTS];
};

static void encode_sweep(const struct scn_sweep *s, struct req_storage *st)
{
    static const Twin__V1__Sweep__Method methods[] = {
        [SCN_SWEEP_GRID] = TWIN__V1__SWEEP__METHOD__GRID,
        [SCN_SWEEP_RANDOM] = TWIN__V1__SWEEP__METHOD__RANDOM,
        [SCN_SWEEP_LHS] = TWIN__V1__SWEEP__METHOD__LATIN_HYPERCUBE,
    };
    size_t np = s->n_params < SCN_MAX_SWEEP_PARAMS ? s->n_params : SCN_MAX_SWEEP_PARAMS;
    size_t nc = s->n_constraints < SCN_MAX_CONSTRAINTS ? s->n_constraints : SCN_MAX_CONSTRAINTS;
    twin__v1__sweep__init(&st->sweep);
    st->sweep.method = methods[s->method <= SCN_SWEEP_LHS ? s->method : SCN_SWEEP_GRID];
    for (size_t i = 0; i < np; i++) {
        const struct scn_range *r = &s->params[i];
        Twin__V1__SweepParameter *p = &st->params[i];
        twin__v1__sweep_parameter__init(p);
        p->path = (char *)r->path;
        p->n_values = r->n_values;
        p->values = r->values;
        p->min = r->min;
        p->max = r->max;
        p->step = r->step;
        p->cost = r->cost;
        st->param_ptr[i] = p;
    }
    for (size_t i = 0; i < nc; i++) {
        const struct scn_constraint *c = &s->constraints[i];
        twin__v1__constraint__init(&st->cons[i]);
        st->cons[i].kpi = (char *)c->kpi;
        st->cons[i].has_min = c->has_min;
        st->cons[i].min = c->min;
        st->cons[i].has_max = c->has_max;
        st->cons[i].max = c->max;
        st->cons_ptr[i] = &st->cons[i];
    }
    st->sweep.n_parameters = np;
    st->sweep.parameters = st->param_ptr;
    st->sweep.n_constraints = nc;
    st->sweep.constraints = st->cons_ptr;
    st->sweep.samples = s->samples;
    st->sweep.objective = (char *)s->objective;
    st->sweep.maximize = s->maximize;
    st->sweep.top = s->top;
}

int scen_request_encode(const struct scen_request *r, uint8_t **buf, size_t *len)
{
    Twin__V1__ScenarioRequest m = TWIN__V1__SCENARIO_REQUEST__INIT;
    struct req_storage *st = calloc(1, sizeof(*st));
    if (!st)
        return TW_ENOMEM;
    size_t n = r->n_perturb < SCEN_WIRE_MAX_PERTURB ? r->n_perturb : SCEN_WIRE_MAX_PERTURB;
    for (size_t i = 0; i < n; i++) {
        const struct scen_perturbation *p = &r->perturb[i];
        Twin__V1__Perturbation *d = &st->pert[i];
        twin__v1__perturbation__init(d);
        d->kind = (Twin__V1__Perturbation__Kind)p->kind;
        d->target = (char *)p->target;
        d->start_ms = p->start_ms;
        d->duration_ms = p->duration_ms;
        d->delay_ms = p->delay_ms;
        d->count = p->count;
        d->factor = p->factor;
        d->value = p->value;
        st->pert_ptr[i] = d;
    }
    m.id = (char *)r->id;
    m.name = (char *)r->name;
    m.n_perturbations = n;
    m.perturbations = st->pert_ptr;
    m.horizon_ms = r->horizon_ms;
    m.warmup_ms = r->warmup_ms;
    m.replications = r->replications;
    m.seed = r->seed;
    m.ignore_live = r->ignore_live;
    m.cancel = r->cancel;
    if (r->has_sweep) {
        encode_sweep(&r->sweep, st);
        m.sweep = &st->sweep;
    }
    *len = twin__v1__scenario_request__get_packed_size(&m);
    *buf = malloc(*len ? *len : 1);
    if (*buf)
        twin__v1__scenario_request__pack(&m, *buf);
    free(st);
    return *buf ? 0 : TW_ENOMEM;
}

/* ---- progress ----------------------------------------------------------------------------- */

int scen_progress_encode(const struct scen_progress *p, uint8_t *buf, size_t cap, size_t *len)
{
    Twin__V1__ScenarioProgress m = TWIN__V1__SCENARIO_PROGRESS__INIT;
    m.id = (char *)p->id;
    m.state = (Twin__V1__ScenarioProgress__State)p->state;
    m.percent = p->percent;
    m.eta_ms = p->eta_ms;
    m.replications_done = p->replications_done;
    m.replications_total = p->replications_total;
    m.queue_position = p->queue_position;
    *len = twin__v1__scenario_progress__get_packed_size(&m);
    if (*len > cap)
        return TW_ENOMEM;
    twin__v1__scenario_progress__pack(&m, buf);
    return 0;
}

int scen_progress_decode(const uint8_t *buf, size_t len, struct scen_progress *out)
{
    Twin__V1__ScenarioProgress *m = twin__v1__scenario_progress__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", m->id);
    out->state = (int)m->state;
    out->percent = m->percent;
    out->eta_ms = m->eta_ms;
    out->replications_done = m->replications_done;
    out->replications_total = m->replications_total;
    out->queue_position = m->queue_position;
    twin__v1__scenario_progress__free_unpacked(m, NULL);
    return 0;
}

/* ---- Rejected ----------------------------------------------------------------------------- */

int scen_rejected_decode(const uint8_t *buf, size_t len, struct scen_rejected *out)
{
    Twin__V1__Rejected *m = twin__v1__rejected__unpack(NULL, len, buf);
    if (!m)
        return TW_EPROTO;
    memset(out, 0, sizeof(*out));
    snprintf(out->reason, sizeof(out->reason), "%s", m->reason);
    snprintf(out->detail, sizeof(out->detail), "%s", m->detail);
    out->head_len =
        m->payload_head.len < sizeof(out->head) ? m->payload_head.len : sizeof(out->head);
    if (out->head_len)
        memcpy(out->head, m->payload_head.data, out->head_len);
    twin__v1__rejected__free_unpacked(m, NULL);
    return 0;
}
