#ifndef SCVAE_FUTEX_H
#define SCVAE_FUTEX_H

#include <stdint.h>

/// Blocking waits on 32-bit words in memory shared between processes (Linux futexes), for the
/// shared-memory ring: a rank sleeps until a neighbour changes a word and wakes it, instead of
/// spinning or napping. The words are not private to a process (no FUTEX_PRIVATE_FLAG).

/// Wakes every waiter on `word`. Returns 0, or -errno.
int scvae_futex_wake(uint32_t *word);

/// Sleeps until `*first != first_value` or, when `second` is not NULL, `*second != second_value`,
/// a wake on either word, or `timeout_ns` nanoseconds. Returns 0 when woken or a word already
/// differed, 1 at the timeout, -ENOSYS where the kernel cannot wait on two words (before Linux
/// 5.16: the caller then naps instead), or another -errno.
int scvae_futex_wait_either(uint32_t *first, uint32_t first_value, uint32_t *second, uint32_t second_value,
                            int64_t timeout_ns);

#endif
