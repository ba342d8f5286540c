#!/usr/bin/env python3
"""Detection and recovery time after kill -9 of a worker (issue 7's figures).

Starts scvae-coordinator and N scvae-worker processes (separately, as on a cluster; tiny
configuration, one BLAS thread each) on 127.0.0.1, then R times: waits until the run is
healthy with N workers, kills a random worker with SIGKILL, and reads the coordinator's
events file for the moment the worker was declared down (detection) and the next completed
step (recovery). The killed worker is restarted (as a supervisor would) before the next round.

    python3 scripts/bench/recovery.py [--workers 2] [--rounds 10] [--bin .build/release]

Prints every round and the medians. Needs a release build.
"""
import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def read_lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise SystemExit(f"timed out after {seconds} s waiting for {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--liveness-deadline", type=float, default=2.5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)

    folder = tempfile.mkdtemp(prefix="scvae-recovery-")
    run = os.path.join(folder, "run")
    events = os.path.join(run, "events.jsonl")
    metrics = os.path.join(folder, "metrics.jsonl")
    endpoint_file = os.path.join(folder, "endpoint")
    coordinator_log = open(os.path.join(folder, "coordinator.log"), "w")
    coordinator = subprocess.Popen(
        [os.path.join(args.bin, "scvae-coordinator"), "--workers", str(args.workers), "--min-workers", str(max(1, args.workers - 1)),
         "--config", "tiny", "--global-batch", "12", "--steps", "1000000", "--checkpoint-every", "0",
         "--listen", "tcp://127.0.0.1:0", "--endpoint-file", endpoint_file, "--checkpoint-dir", run,
         "--metrics", metrics, "--log-every", "1000", "--liveness-deadline", str(args.liveness_deadline)],
        stdout=coordinator_log, stderr=subprocess.STDOUT)
    endpoint = wait_for(lambda: os.path.exists(endpoint_file) and open(endpoint_file).read().strip(), 60, "the endpoint")
    workers = {}

    def start(worker_id):
        log = open(os.path.join(folder, f"{worker_id}.log"), "a")
        workers[worker_id] = subprocess.Popen(
            [os.path.join(args.bin, "scvae-worker"), "--coordinator", endpoint, "--worker-id", worker_id, "--threads", "1"],
            stdout=log, stderr=subprocess.STDOUT)

    def generations_of_full_world():
        with open(os.path.join(folder, "coordinator.log")) as f:
            return len(re.findall(rf"generation \d+: {args.workers} ranks", f.read()))

    def steps_done():
        return max((line.get("step", 0) for line in read_lines(metrics)), default=0)

    ids = [f"w{i}" for i in range(args.workers)]
    for worker_id in ids:
        start(worker_id)
    rows = []
    try:
        for round_number in range(1, args.rounds + 1):
            wait_for(lambda: generations_of_full_world() >= 1, 120, "a generation of every worker")
            base = steps_done()
            wait_for(lambda: steps_done() >= base + 3, 120, "three steps with every worker")
            victim = random.choice(ids)
            seen = len(read_lines(events))
            killed_at = time.time()
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()

            def new_event(name):
                for event in read_lines(events)[seen:]:
                    if event.get("event") == name:
                        return event
                return None

            down = wait_for(lambda: new_event("worker_down"), 60, "the worker to be declared down")
            recovered = wait_for(lambda: new_event("recovery"), 120, "the next completed step")
            detection = down["time"] - killed_at
            recovery = recovered["time"] - killed_at
            rows.append((detection, recovery))
            print(f"round {round_number:2d}: killed {victim} at step {base + 3}+; declared down after {detection:.2f} s, "
                  f"next step completed after {recovery:.2f} s (with {recovered['workers']} workers)", flush=True)
            before = generations_of_full_world()
            start(victim)
            wait_for(lambda: generations_of_full_world() > before, 120, f"{victim} to rejoin")
    finally:
        coordinator.send_signal(signal.SIGKILL)
        for process in workers.values():
            process.send_signal(signal.SIGKILL)
    detections = [d for d, _ in rows]
    recoveries = [r for _, r in rows]
    print(f"\nN={args.workers} tiny, liveness deadline {args.liveness_deadline} s, heartbeats every 0.5 s, {len(rows)} kills:")
    print(f"  detection (kill -9 -> declared down): median {statistics.median(detections):.2f} s, max {max(detections):.2f} s")
    print(f"  recovery  (kill -9 -> next completed step): median {statistics.median(recoveries):.2f} s, max {max(recoveries):.2f} s")
    print(f"  logs in {folder}")


if __name__ == "__main__":
    sys.exit(main())
