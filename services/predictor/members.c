/* SPDX-License-Identifier: Apache-2.0 */
/* Which twin-predictor instance owns which asset: the live instances from their retained status
 * topics, and a rendezvous hash of the asset id over them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predictor.h"

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME  1099511628211ULL

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * FNV_PRIME;
    return h;
}

/* splitmix64's finaliser: FNV-1a alone leaves the high bits of similar ids correlated. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Rendezvous (highest random weight) hashing: each member's weight for the asset is a hash of
 * (member, asset); the heaviest owns it. A member joining takes about 1/n of the assets, all
 * from the others; one leaving hands only its own over. Ties (never in practice) go to the
 * first in the view's order, which is sorted, so every instance decides alike. */
size_t pred_owner_index(const struct pred_view *v, const char *asset)
{
    size_t best = 0;
    uint64_t best_w = 0;
    for (size_t i = 0; i < v->n; i++) {
        uint64_t w = mix64(fnv1a(v->seed[i], asset));
        if (i == 0 || w > best_w) {
            best = i;
            best_w = w;
        }
    }
    return best;
}

bool pred_view_owns(const struct pred_view *v, const char *asset)
{
    return v->n <= 1 || pred_owner_index(v, asset) == v->self;
}

/* ---- the members, kept by the MQTT thread ------------------------------------------------- */

void pred_members_init(struct pred_members *m, const char *self)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    snprintf(m->self, sizeof(m->self), "%s", self);
    snprintf(m->names[0], sizeof(m->names[0]), "%s", self);
    m->n = 1;
    m->version = 1;
}

void pred_members_destroy(struct pred_members *m)
{
    pthread_mutex_destroy(&m->lock);
}

int pred_status_instance(const char *topic, const char *root, char *out, size_t cap)
{
    static const char mid[] = "/service/predictor/", tail[] = "/status";
    size_t rl = strlen(root), tl = strlen(topic);
    if (tl <= rl + sizeof(mid) - 1 + sizeof(tail) - 1 || strncmp(topic, root, rl) != 0 ||
        strncmp(topic + rl, mid, sizeof(mid) - 1) != 0 ||
        strcmp(topic + tl - (sizeof(tail) - 1), tail) != 0)
        return -1;
    const char *name = topic + rl + sizeof(mid) - 1;
    size_t len = (size_t)(topic + tl - (sizeof(tail) - 1) - name);
    if (len >= cap || len > TW_NAME_MAX || !tw_valid_asset_id(name, len))
        return -1;
    memcpy(out, name, len);
    out[len] = '\0';
    return 0;
}

static size_t members_find(const struct pred_members *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0)
            return i;
    return m->n;
}

enum pred_member_change pred_members_update(struct pred_members *m, const char *instance,
                                            const void *payload, size_t len, bool retained)
{
    bool online = len == 6 && memcmp(payload, "online", 6) == 0;
    enum pred_member_change change = PRED_MEMBER_SAME;
    pthread_mutex_lock(&m->lock);
    if (strcmp(instance, m->self) == 0) {
        /* Its own status, sent live (not a retained copy from an earlier run): everything the
         * broker retained under the status filter came before it, so the view is complete. */
        if (online && !retained && !m->settled) {
            m->settled = true;
            change = PRED_MEMBER_SETTLED;
        }
        pthread_mutex_unlock(&m->lock);
        return change;
    }
    size_t i = members_find(m, instance);
    if (online && i == m->n) {
        if (m->n < PRED_MEMBERS_MAX) {
            snprintf(m->names[m->n++], sizeof(m->names[0]), "%s", instance);
            change = PRED_MEMBER_JOINED;
        } else {
            m->overflow++;
            change = PRED_MEMBER_REFUSED;
        }
    } else if (!online && i < m->n) { /* "offline", the Will, or a cleared retained status */
        if (i != m->n - 1)
            memcpy(m->names[i], m->names[m->n - 1], sizeof(m->names[0]));
        m->n--;
        change = PRED_MEMBER_LEFT;
    }
    if (change == PRED_MEMBER_JOINED || change == PRED_MEMBER_LEFT)
        m->version++;
    pthread_mutex_unlock(&m->lock);
    return change;
}

bool pred_members_settled(struct pred_members *m)
{
    pthread_mutex_lock(&m->lock);
    bool s = m->settled;
    pthread_mutex_unlock(&m->lock);
    return s;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

bool pred_members_snapshot(struct pred_members *m, struct pred_view *v)
{
    pthread_mutex_lock(&m->lock);
    if (v->version == m->version) {
        pthread_mutex_unlock(&m->lock);
        return false;
    }
    v->version = m->version;
    v->n = m->n;
    memcpy(v->names, m->names, m->n * sizeof(m->names[0]));
    pthread_mutex_unlock(&m->lock);
    qsort(v->names, v->n, sizeof(v->names[0]), name_cmp);
    for (size_t i = 0; i < v->n; i++) {
        v->seed[i] = fnv1a(FNV_OFFSET, v->names[i]);
        v->seed[i] = (v->seed[i] ^ 0xffu) * FNV_PRIME; /* a separator no name contains */
        if (strcmp(v->names[i], m->self) == 0)
            v->self = i;
    }
    return true;
}

int pred_view_format(const struct pred_view *v, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < v->n; i++) {
        int w = snprintf(out + at, cap - at, "%s%s", i ? "," : "", v->names[i]);
        if (w < 0 || (size_t)w >= cap - at)
            return -1;
        at += (size_t)w;
    }
    return 0;
}
