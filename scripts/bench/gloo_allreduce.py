#!/usr/bin/env python3
"""Bandwidth of torch.distributed's Gloo all_reduce between N local processes.

Spawns --workers processes that rendezvous at tcp://127.0.0.1:PORT (a free port), each with a
float32 tensor of --mib MiB and one intra-op thread. After --warmup untimed all_reduce calls
(sum), --iters calls are timed between barriers. Rank 0 prints, from the median call time t:
  algbw = bytes / t
  busbw = algbw * 2 (N - 1) / N      (the bytes each rank sends in a ring all-reduce, per second)
in GB/s (1e9 bytes/s), like nccl-tests. Gloo picks its own algorithm (ring or halving-doubling
depending on size); the busbw convention is the same either way.
"""

import argparse
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(rank: int, workers: int, port: int, mib: float, warmup: int, iters: int) -> None:
    """One rank: init Gloo, warm up, time all_reduce, report from rank 0."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=workers)
    count = int(mib * 1024 * 1024) // 4
    tensor = torch.full((count,), float(rank + 1), dtype=torch.float32)
    for _ in range(warmup):
        dist.all_reduce(tensor)
    times = []
    for _ in range(iters):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(tensor)
        times.append(time.perf_counter() - start)
    # Every rank's time counts: the call is done when the slowest rank is done.
    slowest = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    if rank == 0:
        nbytes = count * 4
        t = statistics.median(slowest.tolist())
        algbw = nbytes / t / 1e9
        busbw = algbw * 2 * (workers - 1) / workers
        print(f"torch {torch.__version__} gloo: N={workers}, {nbytes / 2**20:.1f} MiB float32, "
              f"warm-up {warmup}, iters {iters}, transport TCP loopback (127.0.0.1)")
        print(f"time median {t * 1e3:.1f} ms (min {min(slowest.tolist()) * 1e3:.1f}, "
              f"max {max(slowest.tolist()) * 1e3:.1f}); algbw {algbw:.3f} GB/s; busbw {busbw:.3f} GB/s")
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="number of processes N")
    parser.add_argument("--mib", type=float, default=64, help="tensor size per rank in MiB")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    port = free_port()
    mp.spawn(run, args=(args.workers, port, args.mib, args.warmup, args.iters), nprocs=args.workers, join=True)


if __name__ == "__main__":
    main()
