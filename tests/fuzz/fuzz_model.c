/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the plant model parser must fail cleanly or load, never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "twin/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_model *m = NULL;
    struct tw_model_errors errs = {0};
    if (tw_model_load_buffer((const char *)data, size, &m, &errs) == 0) {
        for (size_t i = 0; i < tw_model_asset_count(m); i++)
            (void)tw_model_asset_signal(m, tw_model_asset_at(m, i)->id, "temp");
    }
    tw_model_free(m);
    tw_model_errors_free(&errs);
    return 0;
}
