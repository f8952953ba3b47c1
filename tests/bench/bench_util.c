/* SPDX-License-Identifier: Apache-2.0 */
/* The machine, command and clock helpers shared by the C benchmarks (bench_util.h). */
#include "bench_util.h"

#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_print_machine(FILE *f, int argc, char **argv)
{
    struct utsname u;
    char line[256], model[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    while (ci && fgets(line, sizeof(line), ci))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            snprintf(model, sizeof(model), "%s", c ? c + 2 : line);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (ci)
        fclose(ci);
    uname(&u);
    fprintf(f, "command:");
    for (int i = 0; i < argc; i++)
        fprintf(f, " %s", argv[i]);
    fprintf(f, "\nmachine: %s %s, %s, %ld cores online\n", u.sysname, u.release, model,
            sysconf(_SC_NPROCESSORS_ONLN));
}
