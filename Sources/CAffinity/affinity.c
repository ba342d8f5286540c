#define _GNU_SOURCE
#include "affinity.h"

#include <errno.h>
#include <sched.h>

int scvae_affinity_cpus(int *cpus, int capacity) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -errno;
    int found = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (found < capacity) cpus[found] = cpu;
        found++;
    }
    return found;
#else
    (void)cpus; (void)capacity;
    return -ENOSYS;
#endif
}

int scvae_affinity_pin(const int *cpus, int count) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &set);
    }
    if (sched_setaffinity(0, sizeof set, &set) != 0) return -errno;
    return 0;
#else
    (void)cpus; (void)count;
    return -ENOSYS;
#endif
}
