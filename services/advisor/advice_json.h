/* SPDX-License-Identifier: Apache-2.0 */
/* A Recommendation as JSON, the one shape twinctl --json and twin-mcp's recommend tool give. */
#ifndef ADVISOR_ADVICE_JSON_H
#define ADVISOR_ADVICE_JSON_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* Decodes a Recommendation (protobuf bytes) into a new JSON object (the caller deletes it), or
 * NULL when the bytes are not one (or memory ran out). */
struct cJSON *adv_recommendation_json(const uint8_t *buf, size_t len);

#endif
