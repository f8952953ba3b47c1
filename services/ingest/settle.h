/* SPDX-License-Identifier: Apache-2.0 */
/* Assets whose retained TwinState may have raced another session's, to republish once the
 * burst is over. */
#ifndef INGEST_SETTLE_H
#define INGEST_SETTLE_H

#include <stddef.h>
#include <stdint.h>

#include "twin/validate.h"

/* When one asset is updated by two sessions within a few milliseconds, their TwinStates
 * travel over two connections and may reach the broker in either order, so the retained one
 * can be older than Redis. The session that applied the later update therefore republishes
 * the asset's current state from Redis a little later (settle delay), over its own
 * connection: whatever stale state was still on its way has arrived by then. */
struct ingest_settle;

int ingest_settle_create(size_t capacity, struct ingest_settle **out);
void ingest_settle_destroy(struct ingest_settle *s);

/* Marks asset for a republish at due_ms (a later call for the same asset moves it later, so
 * a busy asset is republished once, after its burst). Any thread. When the table is full the
 * asset is not marked and 0 is returned; otherwise 1. */
int ingest_settle_note(struct ingest_settle *s, const char *asset, int64_t due_ms);

/* Moves up to max assets whose time has come into out and forgets them. Any thread. */
size_t ingest_settle_take_due(struct ingest_settle *s, int64_t now_ms, char (*out)[TW_NAME_MAX + 1],
                              size_t max);

#endif
