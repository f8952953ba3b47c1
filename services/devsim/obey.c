/* SPDX-License-Identifier: Apache-2.0 */
/* twin-devsim's demo obeys Commands: checked on Paho's thread, handed over through a small
 * locked queue, applied by the step thread before its next step; every refusal is counted,
 * logged (rate-limited) and published as a Rejected on <root>/rejected/devsim. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsim.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

#define QUEUE_CAP  256
#define TOPIC_MAX  (256 + 64 + 32)
#define DETAIL_MAX 200

struct obey_item {
    struct devsim_command cmd;
    uint8_t head[TW_REJECTED_HEAD_BYTES]; /* the payload's first bytes, for a Rejected */
    size_t head_len;
};

/* Who touches what: `lock` guards the queue and the counts; `mqtt` is set before the client
 * starts and cleared after it is destroyed; each thread has its own log limit; `recent` is
 * the step thread's. */
struct devsim_obey {
    const struct devsim_config *cfg;
    struct devsim_metrics *m;
    struct tw_mqtt *mqtt;
    char rejected_topic[TOPIC_MAX];
    pthread_mutex_t lock;
    struct obey_item queue[QUEUE_CAP];
    size_t head, count;
    uint64_t applied, rejected, duplicate;
    struct tw_ratelimit paho_log, step_log;
    struct devsim_recent_ids recent;
};

int devsim_obey_create(const struct devsim_config *cfg, struct devsim_metrics *m,
                       struct devsim_obey **out)
{
    struct devsim_obey *o = calloc(1, sizeof(*o));
    if (!o)
        return TW_ENOMEM;
    if (pthread_mutex_init(&o->lock, NULL) != 0) {
        free(o);
        return TW_ENOMEM;
    }
    o->cfg = cfg;
    o->m = m;
    snprintf(o->rejected_topic, sizeof(o->rejected_topic), "%s/rejected/devsim",
             cfg->common.topic_root);
    o->paho_log = (struct tw_ratelimit){.burst = 10, .interval_ms = 10000};
    o->step_log = (struct tw_ratelimit){.burst = 10, .interval_ms = 10000};
    *out = o;
    return 0;
}

void devsim_obey_destroy(struct devsim_obey *o)
{
    if (!o)
        return;
    pthread_mutex_destroy(&o->lock);
    free(o);
}

void devsim_obey_attach(struct devsim_obey *o, struct tw_mqtt *mqtt)
{
    o->mqtt = mqtt;
}

void devsim_obey_counts(struct devsim_obey *o, uint64_t *applied, uint64_t *rejected,
                        uint64_t *duplicate)
{
    pthread_mutex_lock(&o->lock);
    *applied = o->applied;
    *rejected = o->rejected;
    *duplicate = o->duplicate;
    pthread_mutex_unlock(&o->lock);
}

/* Counts, logs (limited per thread) and publishes a Rejected (QoS 0) for a refused command. */
static void refuse(struct devsim_obey *o, struct tw_ratelimit *rl, const char *topic,
                   enum devsim_cmd_reject r, const char *detail, const uint8_t *payload, size_t len)
{
    uint32_t suppressed = 0;
    bool dup = r == DEVSIM_CMD_DUPLICATE;
    pthread_mutex_lock(&o->lock);
    if (dup)
        o->duplicate++;
    else
        o->rejected++;
    pthread_mutex_unlock(&o->lock);
    tw_counter_add(o->m->commands[dup ? DEVSIM_RESULT_DUPLICATE : DEVSIM_RESULT_REJECTED], 1);
    tw_counter_add(o->m->command_rejects[r], 1);
    if (tw_ratelimit_allow(rl, tw_mono_ms(), &suppressed))
        tw_log(TW_LOG_WARN, "command_rejected",
               "topic=\"%.200s\" reason=%s detail=\"%s\" suppressed=%" PRIu32, topic,
               devsim_cmd_reject_word(r), detail, suppressed);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (o->mqtt && tw_codec_encode_rejected(topic, devsim_cmd_reject_word(r), detail, payload, len,
                                            &buf, &n) == 0)
        tw_mqtt_publish(o->mqtt, o->rejected_topic, buf, n, 0, false);
    free(buf);
}

static bool model_has(void *ctx, const char *asset)
{
    return tw_model_has_asset(ctx, asset);
}

void devsim_obey_on_message(void *ctx, const struct tw_mqtt_msg *msg)
{
    struct devsim_obey *o = ctx;
    struct obey_item item;
    char detail[DETAIL_MAX];
    enum devsim_cmd_reject r = DEVSIM_CMD_RETAINED;
    snprintf(detail, sizeof(detail), "a command is never retained: it would act again");
    if (!msg->retained)
        r = devsim_command_parse(msg->topic, o->cfg->common.topic_root, msg->payload, msg->len,
                                 model_has, o->cfg->model, &item.cmd, detail, sizeof(detail));
    if (r == DEVSIM_CMD_OK) {
        item.head_len = msg->len < sizeof(item.head) ? msg->len : sizeof(item.head);
        memcpy(item.head, msg->payload, item.head_len);
        pthread_mutex_lock(&o->lock);
        if (o->count < QUEUE_CAP)
            o->queue[(o->head + o->count++) % QUEUE_CAP] = item;
        else
            r = DEVSIM_CMD_QUEUE_FULL;
        pthread_mutex_unlock(&o->lock);
        if (r != DEVSIM_CMD_OK)
            snprintf(detail, sizeof(detail), "%d commands wait to be applied", QUEUE_CAP);
    }
    if (r != DEVSIM_CMD_OK)
        refuse(o, &o->paho_log, msg->topic, r, detail, msg->payload, msg->len);
}

static struct devsim_asset *find_asset(struct devsim_asset *assets, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(assets[i].id, id) == 0)
            return &assets[i];
    return NULL;
}

static void apply_one(struct devsim_obey *o, const struct obey_item *it,
                      struct devsim_asset *assets, size_t n, int64_t now_device_ms)
{
    const struct devsim_command *c = &it->cmd;
    char detail[DETAIL_MAX] = "", topic[TOPIC_MAX];
    snprintf(topic, sizeof(topic), "%s/asset/%s/command", o->cfg->common.topic_root, c->asset);
    struct devsim_asset *a = find_asset(assets, n, c->asset);
    enum devsim_cmd_reject r = devsim_command_check_start(c, now_device_ms, detail, sizeof(detail));
    if (r == DEVSIM_CMD_OK && devsim_recent_ids_has(&o->recent, c->id)) {
        r = DEVSIM_CMD_DUPLICATE;
        snprintf(detail, sizeof(detail), "command %s was acted on already", c->id);
    } else if (r == DEVSIM_CMD_OK && !a) {
        r = DEVSIM_CMD_UNKNOWN_ASSET;
        snprintf(detail, sizeof(detail), "asset %s is not simulated", c->asset);
    }
    if (r != DEVSIM_CMD_OK) {
        refuse(o, &o->step_log, topic, r, detail, it->head, it->head_len);
        return;
    }
    devsim_recent_ids_add(&o->recent, c->id);
    if (c->kind == DEVSIM_CMD_MAINTAIN)
        devsim_asset_maintain(a, c->start_ms, c->duration_ms);
    else
        devsim_asset_slow(a, c->start_ms, c->speed, c->duration_ms);
    pthread_mutex_lock(&o->lock);
    o->applied++;
    pthread_mutex_unlock(&o->lock);
    tw_counter_add(o->m->commands[DEVSIM_RESULT_APPLIED], 1);
    tw_log(TW_LOG_INFO, "command_applied",
           "id=%s asset=%s kind=%s start_ms=%" PRId64 " duration_ms=%" PRId64
           " speed=%g device_ms=%" PRId64 " by=\"%s\"",
           c->id, c->asset, devsim_cmd_kind_word(c->kind), c->start_ms, c->duration_ms, c->speed,
           now_device_ms, c->by);
}

void devsim_obey_apply(struct devsim_obey *o, struct devsim_asset *assets, size_t n,
                       int64_t now_device_ms)
{
    for (;;) {
        struct obey_item it;
        pthread_mutex_lock(&o->lock);
        bool any = o->count > 0;
        if (any) {
            it = o->queue[o->head];
            o->head = (o->head + 1) % QUEUE_CAP;
            o->count--;
        }
        pthread_mutex_unlock(&o->lock);
        if (!any)
            return;
        apply_one(o, &it, assets, n, now_device_ms);
    }
}
