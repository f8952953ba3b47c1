/* SPDX-License-Identifier: Apache-2.0 */
/* Wall and monotonic clocks, interruptible sleeps and jittered exponential backoff. */
#include "twin/clock.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS  1000000LL
#define NS_PER_SEC 1000000000LL

static int64_t clock_read_ns(clockid_t id)
{
    struct timespec ts;

    /* Cannot fail for CLOCK_REALTIME or CLOCK_MONOTONIC with a valid pointer. */
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

int64_t tw_now_ms(void)
{
    return clock_read_ns(CLOCK_REALTIME) / NS_PER_MS;
}

int64_t tw_mono_ns(void)
{
    return clock_read_ns(CLOCK_MONOTONIC);
}

int64_t tw_mono_ms(void)
{
    return tw_mono_ns() / NS_PER_MS;
}

void tw_sleep_ms(int64_t ms, const volatile int *stop)
{
    struct timespec deadline;
    int rc;

    if (ms <= 0 || (stop && __atomic_load_n(stop, __ATOMIC_RELAXED)))
        return;
    /* An absolute deadline keeps the total sleep exact however often signals interrupt it. */
    int64_t end_ns = tw_mono_ns() + ms * NS_PER_MS;
    deadline.tv_sec = (time_t)(end_ns / NS_PER_SEC);
    deadline.tv_nsec = (long)(end_ns % NS_PER_SEC);
    do {
        rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
    } while (rc == EINTR && !(stop && __atomic_load_n(stop, __ATOMIC_RELAXED)));
}

/* splitmix64: turns a weak seed (time, thread id) into a well-mixed 64-bit state. */
static uint64_t clock_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* xorshift64* with one state per thread, so no lock and no shared rand() state. */
static uint64_t clock_random(void)
{
    static _Thread_local uint64_t state;

    if (state == 0) {
        uint64_t seed = (uint64_t)tw_mono_ns() ^ ((uint64_t)tw_now_ms() << 20) ^
                        ((uint64_t)gettid() << 40) ^ (uint64_t)(uintptr_t)&state;
        state = clock_mix64(seed);
        if (state == 0)
            state = 0x2545F4914F6CDD1DULL;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
}

int64_t tw_backoff_next(struct tw_backoff *b)
{
    int64_t initial = b->initial_ms > 0 ? b->initial_ms : 1;
    int64_t max = b->max_ms > initial ? b->max_ms : initial;

    if (b->current_ms <= 0)
        b->current_ms = initial;
    else if (b->current_ms > max / 2)
        b->current_ms = max;
    else
        b->current_ms *= 2;
    /* Subtract up to 25 % so that clients which failed together do not retry together. */
    int64_t jitter_span = b->current_ms / 4;
    int64_t jitter = jitter_span > 0 ? (int64_t)(clock_random() % (uint64_t)(jitter_span + 1)) : 0;
    return b->current_ms - jitter;
}

void tw_backoff_reset(struct tw_backoff *b)
{
    b->current_ms = 0;
}

int tw_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0)
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

void tw_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(cond, lock, &ts);
}
