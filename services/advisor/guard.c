/* SPDX-License-Identifier: Apache-2.0 */
/* The guardrails that need memory, kept in Redis so every advisor instance and restart sees
 * them (one Lua call checks and records a command), and the audit stream twin:audit. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "advisor.h"
#include "twin/clock.h"
#include "twin/err.h"
#include "twin/log.h"

/*
 * twin:autonomy is a sorted set of the commands sent: member "<asset>|<kind>|<command id>",
 * score its plant time in ms. KEYS[1] = twin:autonomy; ARGV: plant ms, asset, kind, command id,
 * max per hour (0 = no cap), least ms between two commands to the asset, least ms between two
 * of this kind to it. Entries older than the longest window go. A command with a later plant
 * time than this one (another machine's clock runs ahead) counts as recent: refusing is the
 * safe side. Returns {"ok"} or {"refused", reason, detail}.
 */
static const char limit_lua[] =
    "local key, now = KEYS[1], tonumber(ARGV[1])\n"
    "local asset, kind, id = ARGV[2], ARGV[3], ARGV[4]\n"
    "local cap, gap_any, gap_kind = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local keep = math.max(3600000, gap_any, gap_kind)\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - keep))\n"
    "local recent = redis.call('ZRANGEBYSCORE', key, now - keep, '+inf', 'WITHSCORES')\n"
    "local hour = 0\n"
    "for i = 1, #recent, 2 do\n"
    "  local a, k = string.match(recent[i], '^(.*)|([^|]*)|[^|]*$')\n"
    "  local t = tonumber(recent[i + 1])\n"
    "  if t > now - 3600000 then hour = hour + 1 end\n"
    "  if a == asset and t > now - gap_any then\n"
    "    return {'refused', 'min_interval', 'the machine had a command ' .. "
    "math.floor((now - t) / 60000) .. ' min ago (least interval ' .. "
    "math.floor(gap_any / 60000) .. ' min)'}\n"
    "  end\n"
    "  if a == asset and k == kind and t > now - gap_kind then\n"
    "    return {'refused', 'kind_interval', 'the machine had a ' .. kind .. ' command ' .. "
    "math.floor((now - t) / 60000) .. ' min ago (least interval ' .. "
    "math.floor(gap_kind / 60000) .. ' min)'}\n"
    "  end\n"
    "end\n"
    "if cap > 0 and hour >= cap then\n"
    "  return {'refused', 'max_per_hour', hour .. ' autonomous commands in the last hour of "
    "plant time (at most ' .. cap .. ')'}\n"
    "end\n"
    "redis.call('ZADD', key, now, asset .. '|' .. kind .. '|' .. id)\n"
    "return {'ok'}\n";

struct tw_script adv_limit_script = {.name = "advisor_limit", .source = limit_lua};

int adv_limit(struct tw_store *store, const struct sim_actions *a, int kind, const char *asset,
              const char *command_id, int64_t plant_ms, bool count_hourly, const char **why,
              char *detail, size_t detail_len)
{
    char now[24], cap[16], gap_any[24], gap_kind[24];
    snprintf(now, sizeof(now), "%" PRId64, plant_ms);
    snprintf(cap, sizeof(cap), "%u", count_hourly ? a->max_per_hour : 0u);
    snprintf(gap_any, sizeof(gap_any), "%.0f", a->min_interval * 1000.0);
    snprintf(gap_kind, sizeof(gap_kind), "%.0f", a->rule[kind].min_interval * 1000.0);
    const char *argv[] = {"1", ADV_LIMITS_KEY, now,     asset, sim_action_word(kind), command_id,
                          cap, gap_any,        gap_kind};
    struct tw_cmd cmd = {.script = &adv_limit_script, .argc = 9, .argv = argv};
    struct tw_reply *r = NULL;
    int rc = tw_store_pipeline(store, &cmd, 1, &r);
    if (rc < 0)
        return rc;
    const struct tw_reply *x = &r[0];
    if (x->type == TW_REPLY_ARRAY && x->n >= 1 && x->elem[0].type == TW_REPLY_STR &&
        strcmp(x->elem[0].str, "ok") == 0) {
        rc = 0;
    } else if (x->type == TW_REPLY_ARRAY && x->n == 3 && x->elem[1].type == TW_REPLY_STR) {
        static const char *const reasons[] = {"min_interval", "kind_interval", "max_per_hour"};
        *why = "limit";
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
            if (strcmp(x->elem[1].str, reasons[i]) == 0)
                *why = reasons[i];
        snprintf(detail, detail_len, "%s", x->elem[2].type == TW_REPLY_STR ? x->elem[2].str : "");
        rc = 1;
    } else {
        tw_log(TW_LOG_ERROR, "limit_failed", "error=\"%.200s\"",
               x->type == TW_REPLY_ERROR ? x->str : "unexpected answer");
        rc = TW_EIO;
    }
    tw_store_replies_free(r, 1);
    return rc;
}

int adv_audit(struct tw_store *store, int64_t maxlen, const struct adv_audit *a)
{
    char ts[24], wall[24], cap[24];
    snprintf(ts, sizeof(ts), "%" PRId64, a->ts_ms);
    snprintf(wall, sizeof(wall), "%" PRId64, tw_now_ms());
    snprintf(cap, sizeof(cap), "%" PRId64, maxlen);
    const char *argv[32] = {"XADD",   ADV_AUDIT_KEY, "MAXLEN", "~",     cap, "*",       "event",
                            a->event, "asset",       a->asset, "ts_ms", ts,  "wall_ms", wall};
    int argc = 14;
    const char *const opt[][2] = {{"recommendation", a->recommendation},
                                  {"command", a->command},
                                  {"action", a->action},
                                  {"reason", a->reason},
                                  {"by", a->by}};
    for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
        if (opt[i][1] && opt[i][1][0]) {
            argv[argc++] = opt[i][0];
            argv[argc++] = opt[i][1];
        }
    struct tw_reply *r = NULL;
    int rc = tw_store_command(store, &r, argc, argv, NULL);
    if (rc < 0)
        return rc;
    if (r->type != TW_REPLY_STR) {
        tw_log(TW_LOG_ERROR, "audit_failed", "event=%s asset=%s error=\"%.200s\"", a->event,
               a->asset, r->type == TW_REPLY_ERROR ? r->str : "unexpected answer");
        rc = TW_EIO;
    }
    tw_store_replies_free(r, 1);
    return rc;
}
