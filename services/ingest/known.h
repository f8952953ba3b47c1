/* SPDX-License-Identifier: Apache-2.0 */
/* Assets a worker has recently added to twin:assets, so that set is not written with every message. */
#ifndef INGEST_KNOWN_H
#define INGEST_KNOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DESIGN.md keeps every asset ever applied in the set twin:assets, updated by an idempotent
 * SADD sent with the apply. Sending it with every message costs Redis a command per message
 * and, on a Redis Cluster, a second node per message (the set lives in one slot): the whole
 * cluster's traffic would meet on that node. A worker therefore remembers the assets it has
 * added (64-bit hashes of their ids) and sends the SADD again only after it forgot them: the
 * whole memory is dropped every `ttl_ms` and whenever the worker reconnects to Redis (a
 * restarted Redis may have lost the set), so the set is repaired within ttl_ms. */
struct ingest_known;

int ingest_known_create(size_t max_entries, int64_t ttl_ms, struct ingest_known **out);
void ingest_known_destroy(struct ingest_known *k);

/* True when asset was added within the ttl; starts a new period when the ttl has passed. */
bool ingest_known_has(struct ingest_known *k, const char *asset, int64_t now_ms);

/* Remembers asset (after its SADD succeeded). A full table is emptied first. */
void ingest_known_add(struct ingest_known *k, const char *asset, int64_t now_ms);

/* Forgets everything (e.g. after a Redis reconnect). */
void ingest_known_clear(struct ingest_known *k, int64_t now_ms);

size_t ingest_known_count(const struct ingest_known *k);

#endif
