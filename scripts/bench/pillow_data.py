#!/usr/bin/env python3
"""Throughput of a Pillow data pipeline, as a baseline for the Swift one.

For every image under --data (recursive; .jpg .jpeg .png): open, convert to RGB, resize the
shorter side to --size with antialiasing (Image.resize with --filter, bilinear by default, the
filter scvae uses; bicubic costs more. Pillow widens the filter
support when downscaling, which antialiases), random crop --size x --size, random horizontal
flip, then float32 CHW in [-1, 1]. Randomness comes from a generator keyed by (seed, image index), so results do not
depend on --threads.

--threads N runs N worker processes (one thread each, so the GIL does not serialise them), each
on an interleaved share of the files. Prints images/s in total and per worker. --make-synthetic N
first writes N JPEGs of random sizes into --data (for a quick run without a dataset).
"""

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
from PIL import Image

EXTENSIONS = {".jpg", ".jpeg", ".png"}


def list_images(root: Path) -> list:
    """All image files under root, sorted."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def load(path: Path, size: int, rng: np.random.Generator, resample: int) -> np.ndarray:
    """Open, RGB, resize shorter side to size, random crop, random flip -> float32 [3, S, S]."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        scale = size / min(w, h)
        new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((new_w, new_h), resample)
        left = int(rng.integers(0, new_w - size + 1))
        top = int(rng.integers(0, new_h - size + 1))
        img = img.crop((left, top, left + size, top + size))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        array = np.asarray(img, dtype=np.float32)
    return array.transpose(2, 0, 1) / 127.5 - 1.0


def worker(args: tuple) -> tuple:
    """Process files[rank::workers]; returns (images done, failures, seconds)."""
    files, rank, workers, size, seed, resample = args
    done = failed = 0
    checksum = 0.0
    start = time.perf_counter()
    for index in range(rank, len(files), workers):
        rng = np.random.default_rng([seed, index])
        try:
            checksum += float(load(files[index], size, rng, resample)[0, 0, 0])
            done += 1
        except (OSError, ValueError):
            failed += 1
    return done, failed, time.perf_counter() - start


def make_synthetic(root: Path, count: int, seed: int) -> None:
    """Write count JPEGs with smooth random content and random sizes (200..500 px a side)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = (int(v) for v in rng.integers(200, 501, 2))
        ys, xs = np.mgrid[0:h, 0:w]
        channels = [127 + 120 * np.sin(xs / rng.uniform(5, 40) + ys / rng.uniform(5, 40) + rng.uniform(0, 6))
                    for _ in range(3)]
        image = np.stack(channels, axis=2).clip(0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / f"synthetic_{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="worker processes, one thread each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="use at most this many files (0: all)")
    parser.add_argument("--filter", choices=["bilinear", "bicubic"], default="bilinear",
                        help="resampling filter (bilinear is the one scvae uses)")
    parser.add_argument("--make-synthetic", type=int, default=0, metavar="N",
                        help="first write N synthetic JPEGs into --data")
    args = parser.parse_args()

    root = Path(args.data)
    if args.make_synthetic:
        make_synthetic(root, args.make_synthetic, args.seed)
    files = list_images(root)
    if args.limit:
        files = files[:args.limit]
    if not files:
        raise SystemExit(f"no images under {root}")

    resample = Image.BILINEAR if args.filter == "bilinear" else Image.BICUBIC
    jobs = [(files, rank, args.threads, args.size, args.seed, resample) for rank in range(args.threads)]
    start = time.perf_counter()
    if args.threads == 1:
        results = [worker(jobs[0])]
    else:
        with mp.get_context("fork").Pool(args.threads) as pool:
            results = pool.map(worker, jobs)
    wall = time.perf_counter() - start
    done = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    per_worker = [r[0] / r[2] for r in results if r[2] > 0]
    print(f"Pillow {Image.__version__}: {done} images ({failed} failed) from {root}, size {args.size}, "
          f"{args.threads} worker(s), {args.filter} filter")
    print(f"images/s total {done / wall:.1f}; per worker {sum(per_worker) / len(per_worker):.1f} "
          f"(each: {', '.join(f'{v:.1f}' for v in per_worker)})")


if __name__ == "__main__":
    main()
