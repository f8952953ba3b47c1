/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: Redis Cluster routing input from the network (MOVED/ASK replies, CLUSTER SLOTS maps, command keys) never crashes, and every result stays in range. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "twin/cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A byte reader over the input. */
struct in {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct in *in, unsigned bits)
{
    unsigned v = 0;
    for (unsigned i = 0; i < bits / 8; i++) {
        v = (v << 8) | (in->n ? *in->p : 0);
        if (in->n) {
            in->p++;
            in->n--;
        }
    }
    return v;
}

static int n_added;
static int add(void *ctx, const struct tw_cluster_addr *a)
{
    (void)ctx;
    CHECK(a->port >= 1 && a->port <= 65535);
    CHECK(memchr(a->host, '\0', sizeof(a->host)) != NULL);
    return n_added < 8 ? n_added++ : 7;
}

/* Builds a CLUSTER SLOTS-like reply from the bytes (well- or ill-formed) and parses it. */
static void fuzz_slots(struct in *in)
{
    enum { RANGES = 6 };
    struct tw_reply master[RANGES][3], range[RANGES][3], ranges[RANGES];
    char host[RANGES][40];
    static int16_t map[TW_CLUSTER_SLOTS];
    size_t nr = take(in, 8) % (RANGES + 1);
    for (size_t i = 0; i < nr; i++) {
        unsigned shape = take(in, 8);
        size_t hl = take(in, 8) % sizeof(host[i]);
        for (size_t k = 0; k < hl; k++)
            host[i][k] = (char)take(in, 8);
        host[i][hl] = '\0';
        master[i][0] = (struct tw_reply){.type = (shape & 1) ? TW_REPLY_INT : TW_REPLY_STR,
                                         .str = host[i], .len = strlen(host[i])};
        master[i][1] = (struct tw_reply){.type = (shape & 2) ? TW_REPLY_STR : TW_REPLY_INT,
                                         .integer = (long long)take(in, 32) - 1000, .str = "x",
                                         .len = 1};
        master[i][2] = (struct tw_reply){.type = TW_REPLY_STR, .str = "id", .len = 2};
        range[i][0] = (struct tw_reply){.type = TW_REPLY_INT,
                                        .integer = (long long)take(in, 16) - 100};
        range[i][1] = (struct tw_reply){.type = (shape & 4) ? TW_REPLY_NIL : TW_REPLY_INT,
                                        .integer = (long long)take(in, 16) - 100};
        range[i][2] = (struct tw_reply){.type = (shape & 8) ? TW_REPLY_STR : TW_REPLY_ARRAY,
                                        .n = 1 + (shape >> 4) % 3, .elem = master[i],
                                        .str = "s", .len = 1};
        ranges[i] = (struct tw_reply){.type = TW_REPLY_ARRAY, .n = 1 + (shape >> 6) % 3,
                                      .elem = range[i]};
    }
    struct tw_reply r = {.type = TW_REPLY_ARRAY, .n = nr, .elem = ranges};
    for (int i = 0; i < TW_CLUSTER_SLOTS; i++)
        map[i] = -1;
    n_added = 0;
    int covered = tw_cluster_parse_slots(&r, "seed", add, NULL, map);
    CHECK(covered >= -1);
    if (covered >= 0) {
        int set = 0;
        for (int i = 0; i < TW_CLUSTER_SLOTS; i++) {
            CHECK(map[i] >= -1 && map[i] < 8);
            set += map[i] >= 0;
        }
        CHECK(set <= covered); /* overlapping ranges count twice */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The whole input as an error reply (MOVED/ASK) and as a key. */
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    struct tw_reply err = {.type = TW_REPLY_ERROR, .str = text, .len = strlen(text)};
    struct tw_cluster_redirect rd;
    if (tw_cluster_parse_redirect(&err, &rd)) {
        CHECK(rd.slot >= 0 && rd.slot < TW_CLUSTER_SLOTS);
        CHECK(rd.port >= 1 && rd.port <= 65535);
        CHECK(memchr(rd.host, '\0', sizeof(rd.host)) != NULL);
    }
    CHECK(tw_cluster_key_slot((const char *)data, size) < TW_CLUSTER_SLOTS);
    /* A command: the first byte splits the text into a name and a key. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    const char *argv[2] = {text, text + cut};
    const size_t lens[2] = {cut, size - cut};
    struct tw_script script = {.name = "s", .source = ""};
    struct tw_cmd cmd = {.argc = 2, .argv = argv, .argvlen = lens};
    int slot = tw_cluster_cmd_slot(&cmd);
    CHECK(slot >= -1 && slot < TW_CLUSTER_SLOTS);
    cmd.script = &script;
    slot = tw_cluster_cmd_slot(&cmd);
    CHECK(slot >= -1 && slot < TW_CLUSTER_SLOTS);
    struct in in = {data, size};
    fuzz_slots(&in);
    free(text);
    return 0;
}
