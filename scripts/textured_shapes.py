#!/usr/bin/env python3
"""Textured shapes on textured backgrounds, with ground-truth masks, for `scvae segment --masks`.

    python3 scripts/textured_shapes.py OUT --count 200 --size 64 --seed 0

writes OUT/images/NNNNN.png (RGB) and OUT/masks/NNNNN.png (RGB, one colour per class):
class 0 background (black in the mask), class 1 discs (white), class 2 squares (grey 128).
Each class has its own texture family (background: fine diagonal stripes; discs: dots; squares:
a checkerboard), with a random phase, scale and colour per image, so that only texture and shape,
not a fixed colour, tell the classes apart. Needs numpy only (PNG written with zlib).
"""
import argparse
import pathlib
import struct
import zlib

import numpy as np

CLASS_COLOURS = [(0, 0, 0), (255, 255, 255), (128, 128, 128)]


def write_png(path, rgb):
    """An 8-bit RGB PNG: signature, IHDR, one IDAT (filter 0 on every row), IEND."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def texture(kind, size, rng):
    """A texture in [0, 1] of one family, with a random phase and scale."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == 0:  # fine diagonal stripes
        period = rng.uniform(3, 5)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (x + y) / period + phase)
    if kind == 1:  # dots
        period = rng.uniform(5, 7)
        return 0.5 + 0.25 * (np.cos(2 * np.pi * x / period + phase) + np.cos(2 * np.pi * y / period + phase))
    period = int(rng.integers(4, 7))  # checkerboard
    offset = int(rng.integers(0, period))
    return (((x + offset) // period + (y + offset) // period) % 2).astype(np.float64)


def colourise(values, rng):
    low, high = rng.uniform(0, 0.35, 3), rng.uniform(0.65, 1, 3)
    return low + values[..., None] * (high - low)


def sample(size, rng):
    image = colourise(texture(0, size, rng), rng)
    mask = np.zeros((size, size), dtype=np.int64)
    y, x = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(1, 3))
        radius = rng.uniform(size * 0.15, size * 0.3)
        cy, cx = rng.uniform(radius, size - radius, 2)
        if kind == 1:
            inside = (y - cy) ** 2 + (x - cx) ** 2 <= radius ** 2
        else:
            inside = (np.abs(y - cy) <= radius) & (np.abs(x - cx) <= radius)
        image[inside] = colourise(texture(kind, size, rng), rng)[inside]
        mask[inside] = kind
    noise = rng.normal(0, 0.02, image.shape)
    return np.clip((image + noise) * 255 + 0.5, 0, 255).astype(np.uint8), mask


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    (args.out / "masks").mkdir(parents=True, exist_ok=True)
    palette = np.array(CLASS_COLOURS, dtype=np.uint8)
    for i in range(args.count):
        image, mask = sample(args.size, rng)
        write_png(args.out / "images" / f"{i:05d}.png", image)
        write_png(args.out / "masks" / f"{i:05d}.png", palette[mask])
    print(f"wrote {args.count} images and masks of {args.size}x{args.size} to {args.out}")


if __name__ == "__main__":
    main()
