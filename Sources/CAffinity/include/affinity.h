#ifndef SCVAE_AFFINITY_H
#define SCVAE_AFFINITY_H

/// The CPUs a thread may run on (Linux sched_getaffinity / sched_setaffinity). Swift cannot call
/// these itself: glibc declares them only under _GNU_SOURCE and CPU_SET is a macro. A thread's
/// mask is inherited by the threads and processes it creates.

/// Writes the CPU numbers of the calling thread's affinity mask, ascending, to `cpus` (at most
/// `capacity`). Returns how many there are, or -errno.
int scvae_affinity_cpus(int *cpus, int capacity);

/// Restricts the calling thread to the `count` CPUs in `cpus`. Returns 0, or -errno (-EINVAL when
/// none of them is allowed).
int scvae_affinity_pin(const int *cpus, int count);

#endif
