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
// next within microseconds (the layers' phases follow each other), but on a loaded machine a long
// spin only takes the core from the thread it waits for.
enum { SPINS_BEFORE_SLEEP = 2000 };

struct scvae_thread_pool {
    int threads;
    pthread_t *helpers;
    // Bumped (release) to start a job or to stop; helpers sleep on it.
    _Atomic uint32_t generation;
    // Helpers that have not finished the current job; the caller sleeps on it.
    _Atomic uint32_t working;
    _Atomic ptrdiff_t next_chunk;
    // The job, written before the generation is bumped.
    ptrdiff_t chunks;
    scvae_thread_pool_task task;
    void *context;
    bool stopping;
};

typedef struct {
    scvae_thread_pool *pool;
    int thread;
} helper_start;

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

static void run_chunks(scvae_thread_pool *pool, int thread) {
    for (;;) {
        const ptrdiff_t chunk = atomic_fetch_add_explicit(&pool->next_chunk, 1, memory_order_relaxed);
        if (chunk >= pool->chunks) return;
        pool->task(pool->context, chunk, thread);
    }
}

static void *helper_main(void *argument) {
    helper_start start = *(helper_start *)argument;
    free(argument);
    scvae_thread_pool *pool = start.pool;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_for_change(&pool->generation, seen);
        if (pool->stopping) return NULL;
        run_chunks(pool, start.thread);
        if (atomic_fetch_sub_explicit(&pool->working, 1, memory_order_acq_rel) == 1) futex_wake(&pool->working);
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
        helper_start *start = malloc(sizeof *start);
        if (start) *start = (helper_start){ pool, thread };
        if (!start || pthread_create(&pool->helpers[thread], NULL, helper_main, start) != 0) {
            free(start);
            pool->threads = thread;  // the helpers started so far are stopped and joined
            scvae_thread_pool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void scvae_thread_pool_destroy(scvae_thread_pool *pool) {
    if (!pool) return;
    pool->stopping = true;
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    futex_wake(&pool->generation);
    for (int thread = 1; thread < pool->threads; thread++) pthread_join(pool->helpers[thread], NULL);
    free(pool->helpers);
    free(pool);
}

void scvae_thread_pool_run(scvae_thread_pool *pool, ptrdiff_t chunks, scvae_thread_pool_task task, void *context) {
    if (pool->threads == 1 || chunks <= 1) {
        for (ptrdiff_t chunk = 0; chunk < chunks; chunk++) task(context, chunk, 0);
        return;
    }
    pool->chunks = chunks;
    pool->task = task;
    pool->context = context;
    atomic_store_explicit(&pool->next_chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->working, (uint32_t)(pool->threads - 1), memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    futex_wake(&pool->generation);
    run_chunks(pool, 0);
    uint32_t working;
    while ((working = atomic_load_explicit(&pool->working, memory_order_acquire)) != 0) wait_for_change(&pool->working, working);
}
