/* SPDX-License-Identifier: Apache-2.0 */
/* CHECK() for fuzz targets: a broken invariant aborts, so libFuzzer keeps the input. */
#ifndef TWIN_FUZZ_CHECK_H
#define TWIN_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
