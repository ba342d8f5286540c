#ifndef SCVAE_THREAD_POOL_H
#define SCVAE_THREAD_POOL_H

#include <stddef.h>

/// A fixed set of helper threads, created once and parked on a futex between jobs, that runs the
/// chunks of a job beside the calling thread (Sources/Model/ThreadPool.swift).
///
/// A job is `chunks` calls of `task(context, chunk, slot)`, chunk in 0 ..< chunks, each exactly
/// once, on whichever thread claims it next. `slot` numbers the threads taking part in this job
/// (0 ..< min(threads, chunks), in the order of their first claim; a thread keeps its slot for the
/// whole job) and only picks per-thread scratch, so a job of few chunks needs little of it.
/// Results are deterministic when each chunk's output depends on the chunk alone, never on the
/// slot or on the order chunks ran in.
typedef struct scvae_thread_pool scvae_thread_pool;

typedef void (*scvae_thread_pool_task)(void *context, ptrdiff_t chunk, int slot);

/// A pool of `threads` threads in all (the caller and threads - 1 helpers; at least 1), or NULL
/// if a helper thread could not be started.
scvae_thread_pool *scvae_thread_pool_create(int threads);

/// Stops and joins the helpers and frees the pool. No job may be running.
void scvae_thread_pool_destroy(scvae_thread_pool *pool);

/// Runs every chunk and returns when all have finished. One job at a time per pool; not reentrant
/// (a task must not run a job on the same pool).
void scvae_thread_pool_run(scvae_thread_pool *pool, ptrdiff_t chunks, scvae_thread_pool_task task, void *context);

#endif
