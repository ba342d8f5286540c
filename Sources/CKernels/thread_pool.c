#include "thread_pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

// Polls of a word before sleeping on it: a helper that has just finished a job usually gets the
// next within microseconds (the layers' jobs follow each other), but on a loaded machine a long
// spin only takes the core from the thread it waits for.
enum { SPINS_BEFORE_SLEEP = 1000 };

// Chunks are claimed from one 64-bit word: the job's number in the high half, the next chunk in
// the low half. A helper that wakes late, after its job has finished, finds another number there
// and claims nothing, so the caller waits for the job's chunks, never for every helper to show up
// (on a loaded machine a helper may not run for milliseconds; the caller then does its share).
struct scvae_thread_pool {
    int threads;
    pthread_t *helpers;
    // The current job's number; helpers sleep on it. Bumped (release) to start a job or to stop.
    _Atomic uint32_t job;
    _Atomic uint64_t claim;
    // Chunks of the current job that have finished; the caller sleeps on it.
    _Atomic uint32_t finished;
    // Threads that have claimed a chunk of the current job: each takes the next number as its
    // slot on its first claim, so slots stay under min(threads, chunks).
    _Atomic int slots;
    // The job, written after the claim word has its number and before the number is published.
    // A thread reads them after the claim word and uses them only if it then claims a chunk of
    // its job: if it saw the next job's chunks (acquire), it sees that job's number in the claim
    // word too, and the claim fails.
    _Atomic ptrdiff_t chunks;
    _Atomic(scvae_thread_pool_task) task;
    _Atomic(void *) context;
    _Atomic bool stopping;
};

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

// Waits until *word differs from `value` and returns the new value (acquire).
static uint32_t wait_for_change(_Atomic uint32_t *word, uint32_t value) {
    for (int spin = 0; spin < SPINS_BEFORE_SLEEP; spin++) {
        const uint32_t now = atomic_load_explicit(word, memory_order_acquire);
        if (now != value) return now;
        __builtin_ia32_pause();
    }
    uint32_t now;
    while ((now = atomic_load_explicit(word, memory_order_acquire)) == value) futex_wait(word, value);
    return now;
}

// Claims and runs chunks of job `job` until none is left or another job has started.
static void run_chunks(scvae_thread_pool *pool, uint32_t job) {
    int slot = -1;
    uint64_t claim = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(claim >> 32) != job) return;
        const ptrdiff_t chunk = (ptrdiff_t)(uint32_t)claim;
        const ptrdiff_t chunks = atomic_load_explicit(&pool->chunks, memory_order_acquire);
        const scvae_thread_pool_task task = atomic_load_explicit(&pool->task, memory_order_relaxed);
        void *context = atomic_load_explicit(&pool->context, memory_order_relaxed);
        if (chunk >= chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool->claim, &claim, claim + 1, memory_order_acquire,
                                                   memory_order_acquire)) {
            continue;  // `claim` now holds the word's current value
        }
        if (slot < 0) slot = atomic_fetch_add_explicit(&pool->slots, 1, memory_order_relaxed);
        task(context, chunk, slot);
        if (atomic_fetch_add_explicit(&pool->finished, 1, memory_order_release) + 1 == (uint32_t)chunks) {
            futex_wake(&pool->finished);
        }
        claim = atomic_load_explicit(&pool->claim, memory_order_acquire);
    }
}

static void *helper_main(void *argument) {
    scvae_thread_pool *pool = argument;
    uint32_t job = 0;
    for (;;) {
        job = wait_for_change(&pool->job, job);
        if (atomic_load_explicit(&pool->stopping, memory_order_acquire)) return NULL;
        run_chunks(pool, job);
    }
}

scvae_thread_pool *scvae_thread_pool_create(int threads) {
    scvae_thread_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads < 1 ? 1 : threads;
    pool->helpers = calloc((size_t)pool->threads, sizeof(pthread_t));
    if (!pool->helpers) {
        free(pool);
        return NULL;
    }
    for (int thread = 1; thread < pool->threads; thread++) {
        if (pthread_create(&pool->helpers[thread], NULL, helper_main, pool) != 0) {
            pool->threads = thread;  // the helpers started so far are stopped and joined
            scvae_thread_pool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void scvae_thread_pool_destroy(scvae_thread_pool *pool) {
    if (!pool) return;
    atomic_store_explicit(&pool->stopping, true, memory_order_release);
    atomic_fetch_add_explicit(&pool->job, 1, memory_order_release);
    futex_wake(&pool->job);
    for (int thread = 1; thread < pool->threads; thread++) pthread_join(pool->helpers[thread], NULL);
    free(pool->helpers);
    free(pool);
}

void scvae_thread_pool_run(scvae_thread_pool *pool, ptrdiff_t chunks, scvae_thread_pool_task task, void *context) {
    if (pool->threads == 1 || chunks <= 1 || chunks > INT32_MAX) {
        for (ptrdiff_t chunk = 0; chunk < chunks; chunk++) task(context, chunk, 0);
        return;
    }
    // The previous job has finished, so no thread claims anything until the new number is out.
    const uint32_t job = atomic_load_explicit(&pool->job, memory_order_relaxed) + 1;
    atomic_store_explicit(&pool->claim, (uint64_t)job << 32, memory_order_relaxed);
    atomic_store_explicit(&pool->task, task, memory_order_relaxed);
    atomic_store_explicit(&pool->context, context, memory_order_relaxed);
    atomic_store_explicit(&pool->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->slots, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->chunks, chunks, memory_order_release);
    atomic_store_explicit(&pool->job, job, memory_order_release);
    futex_wake(&pool->job);
    run_chunks(pool, job);
    uint32_t finished;
    while ((finished = atomic_load_explicit(&pool->finished, memory_order_acquire)) != (uint32_t)chunks) {
        wait_for_change(&pool->finished, finished);
    }
}
