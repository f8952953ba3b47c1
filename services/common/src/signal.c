/* SPDX-License-Identifier: Apache-2.0 */
/* The clean-stop request every service honours: SIGTERM and SIGINT set one flag. */
#include "twin/signal.h"

#include <stddef.h>

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

volatile sig_atomic_t *tw_signal_stop_flag(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return &stop_requested;
}
