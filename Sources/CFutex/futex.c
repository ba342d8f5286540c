#include "futex.h"

#include <errno.h>

#ifdef __linux__

#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif

int scvae_futex_wake(uint32_t *word) {
    return syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) < 0 ? -errno : 0;
}

static int outcome(long result) {
    if (result >= 0) return 0;
    switch (errno) {
    case EAGAIN: return 0;      // the word had already changed
    case EINTR: return 0;       // a signal: the caller checks its conditions again
    case ETIMEDOUT: return 1;
    default: return -errno;
    }
}

int scvae_futex_wait_either(uint32_t *first, uint32_t first_value, uint32_t *second, uint32_t second_value,
                            int64_t timeout_ns) {
    if (timeout_ns < 0) timeout_ns = 0;
    if (second == NULL) {
        struct timespec relative = { (time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000) };
        return outcome(syscall(SYS_futex, first, FUTEX_WAIT, first_value, &relative, NULL, 0));
    }
    // futex_waitv takes an absolute time on the given clock.
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(timeout_ns / 1000000000);
    deadline.tv_nsec += (long)(timeout_ns % 1000000000);
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000;
    }
    struct futex_waitv waiters[2] = {
        { .val = first_value, .uaddr = (uintptr_t)first, .flags = FUTEX2_SIZE_U32 },
        { .val = second_value, .uaddr = (uintptr_t)second, .flags = FUTEX2_SIZE_U32 },
    };
    const long result = syscall(SYS_futex_waitv, waiters, 2, 0, &deadline, CLOCK_MONOTONIC);
    if (result < 0 && errno == ENOSYS) return -ENOSYS;
    return outcome(result);
}

#else

// No futexes: the shared-memory ring (Linux only) naps instead.
int scvae_futex_wake(uint32_t *word) { (void)word; return -ENOSYS; }

int scvae_futex_wait_either(uint32_t *first, uint32_t first_value, uint32_t *second, uint32_t second_value,
                            int64_t timeout_ns) {
    (void)first; (void)first_value; (void)second; (void)second_value; (void)timeout_ns;
    return -ENOSYS;
}

#endif
