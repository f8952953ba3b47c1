/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks: wall time for timestamps, monotonic time for timeouts and latency. */
#ifndef TWIN_CLOCK_H
#define TWIN_CLOCK_H

#include <pthread.h>
#include <stdint.h>

/* Unix time in milliseconds (CLOCK_REALTIME). */
int64_t tw_now_ms(void);

/* Monotonic nanoseconds, for durations only. */
int64_t tw_mono_ns(void);

/* Monotonic milliseconds. */
int64_t tw_mono_ms(void);

/* Sleeps for ms milliseconds (restarts on EINTR unless *stop becomes nonzero; stop may be
 * NULL). */
void tw_sleep_ms(int64_t ms, const volatile int *stop);

/* A condition variable whose timed waits run on the monotonic clock, so a wall-clock jump
 * can neither stretch nor cut a timeout. 0 or the pthread error. */
int tw_cond_init_monotonic(pthread_cond_t *cond);

/* Waits on a tw_cond_init_monotonic condition (lock held) for at most ms milliseconds;
 * spurious and early wake-ups are the caller's to handle. */
void tw_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms);

/* Capped exponential backoff: 0 → initial_ms, then doubles up to max_ms, with up to 25 %
 * random jitter subtracted so many clients do not retry in lockstep. */
struct tw_backoff {
    int64_t initial_ms;
    int64_t max_ms;
    int64_t current_ms;
};
int64_t tw_backoff_next(struct tw_backoff *b);
void tw_backoff_reset(struct tw_backoff *b);

#endif
