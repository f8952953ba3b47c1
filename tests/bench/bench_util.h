/* SPDX-License-Identifier: Apache-2.0 */
/* What every C benchmark prints and measures the same way: the machine and command, and time. */
#ifndef TWIN_BENCH_UTIL_H
#define TWIN_BENCH_UTIL_H

#include <stdio.h>

/* Monotonic wall time in seconds (nanosecond resolution). */
double bench_now_s(void);

/* Writes "command: <argv…>" and "machine: <kernel>, <CPU model>, <n> cores online" to f. */
void bench_print_machine(FILE *f, int argc, char **argv);

#endif
