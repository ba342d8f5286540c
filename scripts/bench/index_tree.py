#!/usr/bin/env python3
"""Makes a folder of ImageNet's shape for `scvae bench index`: CLASSES folders named like WordNet
ids, FILES files in each named like ImageNet's (n01440764_10026.JPEG), each a few bytes (the index
reads names and sizes only, never contents). 1,000 x 1,281 by default: 1,281,000 files.

    python3 scripts/bench/index_tree.py /tmp/imagenet-shape [--classes 1000] [--files 1281]
"""
import argparse
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--files", type=int, default=1281)
    arguments = parser.parse_args()
    if arguments.classes < 1 or arguments.files < 1:
        parser.error("--classes and --files must be at least 1")
    made = 0
    for c in range(arguments.classes):
        wnid = f"n{1440764 + 7 * c:08d}"
        folder = os.path.join(arguments.root, wnid)
        os.makedirs(folder, exist_ok=True)
        for f in range(arguments.files):
            path = os.path.join(folder, f"{wnid}_{10026 + 13 * f}.JPEG")
            if not os.path.exists(path):
                with open(path, "wb") as out:
                    out.write(bytes([0xFF, 0xD8, c % 256, f % 256]))
            made += 1
        if (c + 1) % 100 == 0:
            print(f"{c + 1}/{arguments.classes} classes, {made} files", file=sys.stderr)
    print(f"{made} files in {arguments.classes} classes under {arguments.root}")


if __name__ == "__main__":
    main()
