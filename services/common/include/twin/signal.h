/* SPDX-License-Identifier: Apache-2.0 */
/* The clean-stop request every service honours: SIGTERM and SIGINT set one flag. */
#ifndef TWIN_SIGNAL_H
#define TWIN_SIGNAL_H

#include <signal.h>

/* Makes SIGTERM and SIGINT set the returned flag (the process's one stop request; the loops
 * poll it) and ignores SIGPIPE, so a peer closing a socket cannot kill the process. Returns the
 * same flag on every call; the caller may reset it (a forked child starting afresh). Main
 * thread, before other threads start. */
volatile sig_atomic_t *tw_signal_stop_flag(void);

#endif
