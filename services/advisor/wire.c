/* SPDX-License-Identifier: Apache-2.0 */
/* twin-advisor's messages to and from protobuf: Recommendation and Command out, requests and
 * approvals in, and the stored Recommendation read back and re-decided for an approval. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "twin/err.h"
#include "twin/v1/twin.pb-c.h"
#include "twin/validate.h"

static const char *kind_word(int kind)
{
    return kind < 0 ? "none" : sim_action_word((enum sim_action_kind)kind);
}

static void action_fill(Twin__V1__Action *m, const struct adv_action *a, const char *asset,
                        int64_t start_ms)
{
    twin__v1__action__init(m);
    m->kind = (char *)kind_word(a->kind);
    m->asset_id = (char *)asset;
    m->start_ms = start_ms;
    m->duration_ms = a->kind < 0 ? 0 : (int64_t)(a->duration * 1000.0 + 0.5);
    m->setpoint = a->kind == SIM_ACT_SLOW ? a->speed : 0;
    m->label = (char *)a->label;
}

static void est_fill(Twin__V1__Estimate *e, const struct scn_estimate *s)
{
    twin__v1__estimate__init(e);
    e->mean = s->mean;
    e->lo = s->lo;
    e->hi = s->hi;
    e->n = s->n;
}

/* Plant-time start of an option's action: 0 (at once) or the trigger's time plus its delay. */
static int64_t start_ms_of(const struct adv_action *a, int64_t ts_ms)
{
    return a->start > 0 ? ts_ms + (int64_t)(a->start * 1000.0 + 0.5) : 0;
}

struct rec_storage {
    Twin__V1__Action best;
    Twin__V1__Action act[ADV_MAX_OPTIONS];
    Twin__V1__ActionOption opt[ADV_MAX_OPTIONS];
    Twin__V1__ActionOption *opt_ptr[ADV_MAX_OPTIONS];
    Twin__V1__Estimate obj[ADV_MAX_OPTIONS], eff[ADV_MAX_OPTIONS];
    Twin__V1__Kpi kpi[ADV_MAX_OPTIONS][ADV_MAX_KPIS];
    Twin__V1__Kpi *kpi_ptr[ADV_MAX_OPTIONS][ADV_MAX_KPIS];
    Twin__V1__Estimate est[ADV_MAX_OPTIONS][ADV_MAX_KPIS][3];
};

static void option_fill(struct rec_storage *st, size_t i, const struct adv_option *o,
                        const char *asset, int64_t ts_ms)
{
    Twin__V1__ActionOption *m = &st->opt[i];
    twin__v1__action_option__init(m);
    action_fill(&st->act[i], &o->action, asset, start_ms_of(&o->action, ts_ms));
    m->action = &st->act[i];
    m->rank = (uint32_t)i + 1;
    est_fill(&st->obj[i], &o->objective);
    est_fill(&st->eff[i], &o->effect);
    m->objective = &st->obj[i];
    m->effect = &st->eff[i];
    for (size_t k = 0; k < o->n_kpis; k++) {
        Twin__V1__Kpi *q = &st->kpi[i][k];
        twin__v1__kpi__init(q);
        q->name = (char *)o->kpis[k].name;
        q->unit = (char *)(o->kpis[k].unit ? o->kpis[k].unit : "");
        est_fill(&st->est[i][k][0], &o->kpis[k].base);
        est_fill(&st->est[i][k][1], &o->kpis[k].scen);
        est_fill(&st->est[i][k][2], &o->kpis[k].diff);
        q->baseline = &st->est[i][k][0];
        q->scenario = &st->est[i][k][1];
        q->difference = &st->est[i][k][2];
        st->kpi_ptr[i][k] = q;
    }
    m->n_kpis = o->n_kpis;
    m->kpis = st->kpi_ptr[i];
    st->opt_ptr[i] = m;
}

static int pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *buf = malloc(*len ? *len : 1);
    if (!*buf)
        return TW_ENOMEM;
    protobuf_c_message_pack(m, *buf);
    return 0;
}

int adv_encode_recommendation(const struct adv_rec *r, uint8_t **buf, size_t *len)
{
    struct rec_storage *st = calloc(1, sizeof(*st));
    if (!st)
        return TW_ENOMEM;
    Twin__V1__Recommendation m;
    twin__v1__recommendation__init(&m);
    m.id = (char *)r->id;
    m.asset_id = (char *)r->asset;
    m.status =
        r->ok ? TWIN__V1__RECOMMENDATION__STATUS__OK : TWIN__V1__RECOMMENDATION__STATUS__ERROR;
    m.error = (char *)r->error;
    m.trigger = (char *)r->trigger;
    m.request_id = (char *)r->request_id;
    m.signal = (char *)r->signal;
    m.ts_ms = r->ts_ms;
    m.created_ms = r->created_ms;
    m.snapshot_ms = r->snapshot_ms;
    m.why = (char *)r->why;
    m.decision = (char *)r->decision;
    m.command_id = (char *)r->command_id;
    if (r->eval) {
        m.objective = (char *)r->eval->objective;
        m.maximize = r->eval->maximize;
    } else if (r->actions) {
        m.objective = (char *)r->actions->objective;
        m.maximize = r->actions->maximize;
    }
    if (r->ok && r->eval) {
        const struct adv_eval *e = r->eval;
        for (size_t i = 0; i < e->n; i++)
            option_fill(st, i, &e->opt[i], r->asset, r->ts_ms);
        m.n_options = e->n;
        m.options = st->opt_ptr;
        action_fill(&st->best, &e->opt[e->best].action, r->asset,
                    start_ms_of(&e->opt[e->best].action, r->ts_ms));
        m.action = &st->best;
        m.replications = e->replications;
        m.horizon_ms = (int64_t)(e->horizon * 1000.0 + 0.5);
    }
    int rc = pack(&m.base, buf, len);
    free(st);
    return rc;
}

int adv_encode_command(const struct adv_command *c, uint8_t **buf, size_t *len)
{
    Twin__V1__Command m;
    Twin__V1__Action a;
    twin__v1__command__init(&m);
    action_fill(&a, &c->action, c->asset, c->start_ms);
    m.id = (char *)c->id;
    m.asset_id = (char *)c->asset;
    m.action = &a;
    m.recommendation_id = (char *)c->recommendation_id;
    m.issued_ms = c->issued_ms;
    m.issued_by = (char *)c->issued_by;
    m.reason = (char *)(c->reason ? c->reason : "");
    return pack(&m.base, buf, len);
}

/* ---- decoding ------------------------------------------------------------------------------ */

static bool copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return false;
    memcpy(dst, src ? src : "", n + 1);
    return true;
}

int adv_decode_request(const uint8_t *buf, size_t len, struct adv_request *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__RecommendationRequest *m = twin__v1__recommendation_request__unpack(NULL, len, buf);
    if (!m)
        return tw_fail(err, errlen, "not a RecommendationRequest (protobuf)");
    int rc = 0;
    if (!tw_valid_id(m->id, strlen(m->id), ADV_REQ_ID_MAX))
        rc = tw_fail(err, errlen, "id must be 1-%d chars of [A-Za-z0-9._-]", ADV_REQ_ID_MAX);
    else if (!tw_valid_asset_id(m->asset_id, strlen(m->asset_id)))
        rc = tw_fail(err, errlen, "asset_id must be 1-64 chars of [A-Za-z0-9._-]");
    else if (m->signal[0] && !tw_valid_signal(m->signal, strlen(m->signal)))
        rc = tw_fail(err, errlen, "signal is not a valid signal name");
    else if (!copy_text(out->by, sizeof(out->by), m->requested_by))
        rc = tw_fail(err, errlen, "requested_by is longer than %zu bytes", sizeof(out->by) - 1);
    if (rc == 0) {
        copy_text(out->id, sizeof(out->id), m->id);
        copy_text(out->asset, sizeof(out->asset), m->asset_id);
        copy_text(out->signal, sizeof(out->signal), m->signal);
    }
    twin__v1__recommendation_request__free_unpacked(m, NULL);
    return rc;
}

int adv_decode_approval(const uint8_t *buf, size_t len, struct adv_approval *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__Approval *m = twin__v1__approval__unpack(NULL, len, buf);
    if (!m)
        return tw_fail(err, errlen, "not an Approval (protobuf)");
    int rc = 0;
    if (!tw_valid_id(m->recommendation_id, strlen(m->recommendation_id), ADV_ID_MAX - 1))
        rc = tw_fail(err, errlen, "recommendation_id must be 1-%d chars of [A-Za-z0-9._-]",
                     ADV_ID_MAX - 1);
    else if (m->asset_id[0] && !tw_valid_asset_id(m->asset_id, strlen(m->asset_id)))
        rc = tw_fail(err, errlen, "asset_id must be 1-64 chars of [A-Za-z0-9._-]");
    else if (!m->approved_by[0] || !copy_text(out->by, sizeof(out->by), m->approved_by))
        rc = tw_fail(err, errlen, "approved_by must name the person, in at most %zu bytes",
                     sizeof(out->by) - 1);
    if (rc == 0) {
        copy_text(out->recommendation_id, sizeof(out->recommendation_id), m->recommendation_id);
        copy_text(out->asset, sizeof(out->asset), m->asset_id);
        out->reject = m->reject;
    }
    twin__v1__approval__free_unpacked(m, NULL);
    return rc;
}

int adv_decode_stored(const uint8_t *buf, size_t len, struct adv_stored *out)
{
    memset(out, 0, sizeof(*out));
    Twin__V1__Recommendation *m = twin__v1__recommendation__unpack(NULL, len, buf);
    if (!m)
        return TW_EINVAL;
    int rc = 0;
    copy_text(out->id, sizeof(out->id), m->id);
    copy_text(out->decision, sizeof(out->decision), m->decision);
    out->created_ms = m->created_ms;
    out->ts_ms = m->ts_ms;
    const Twin__V1__Action *a = m->action;
    out->action.kind = -1;
    if (a && strcmp(a->kind, "none") != 0) {
        out->action.kind = sim_action_find(a->kind);
        if (out->action.kind < 0)
            rc = TW_EINVAL;
        out->action.duration = (double)a->duration_ms / 1000.0;
        out->action.speed = a->setpoint;
        out->start_ms = a->start_ms;
        copy_text(out->action.label, sizeof(out->action.label), a->label);
    }
    twin__v1__recommendation__free_unpacked(m, NULL);
    return rc;
}

int adv_redecide(const uint8_t *buf, size_t len, const char *decision, const char *command_id,
                 uint8_t **out, size_t *out_len)
{
    Twin__V1__Recommendation *m = twin__v1__recommendation__unpack(NULL, len, buf);
    if (!m)
        return TW_EINVAL;
    char *old_decision = m->decision, *old_command = m->command_id;
    m->decision = (char *)decision;
    m->command_id = (char *)(command_id ? command_id : old_command);
    int rc = pack(&m->base, out, out_len);
    m->decision = old_decision;
    m->command_id = old_command;
    twin__v1__recommendation__free_unpacked(m, NULL);
    return rc;
}
