#!/usr/bin/env python3
"""Reads a run's TensorBoard folder with TensorBoard's own event reader and compares every scalar
with the run's --metrics JSON lines: each figure of each step must be there with the same value
(to float32 precision); each validation line's figures under validation/, and its
reconstruction grid as an image whose PNG bytes equal DIR/samples/step-NNNNNNNN.png. Also checks
each record's masked CRC-32C with TensorBoard's own.

    python3 scripts/check_tensorboard.py RUN/tensorboard METRICS.jsonl

Exit 0 when everything matches; 1 with the differences otherwise.
"""
import glob
import json
import os
import struct
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

# The metrics fields and the scalar tags the coordinator writes them under.
TAGS = {
    "loss": "train/loss", "recon": "train/recon", "latent": "train/latent", "sparsity": "train/sparsity",
    "lr": "train/lr", "epoch": "train/epoch", "images_per_s": "throughput/images_per_s",
    "step_s": "time/step_s", "data_s": "time/data_s", "compute_s": "time/compute_s",
    "allreduce_s": "time/allreduce_s", "allreduce_hidden_s": "time/allreduce_hidden_s",
}
VALIDATION_TAGS = {
    "loss": "validation/loss", "recon": "validation/recon", "latent": "validation/latent",
    "psnr": "validation/psnr", "ssim": "validation/ssim", "sparsity": "validation/sparsity",
}


def check_records(path, problems):
    """Every record's two masked CRCs, recomputed with TensorBoard's function."""
    with open(path, "rb") as f:
        data = f.read()
    offset = records = 0
    while offset < len(data):
        header = data[offset:offset + 12]
        if len(header) < 12:
            problems.append(f"{path}: truncated record header at byte {offset}")
            return 0
        length, length_crc = struct.unpack("<QI", header)
        if masked_crc32c(header[:8]) != length_crc:
            problems.append(f"{path}: bad length CRC at byte {offset}")
        body = data[offset + 12:offset + 12 + length]
        (body_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
        if masked_crc32c(body) != body_crc:
            problems.append(f"{path}: bad data CRC at byte {offset}")
        offset += 16 + length
        records += 1
    return records


def main():
    folder, metrics_path = sys.argv[1], sys.argv[2]
    problems = []
    files = sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*")))
    if not files:
        print(f"no event file in {folder}")
        return 1
    records = sum(check_records(f, problems) for f in files)
    accumulator = event_accumulator.EventAccumulator(
        folder, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    image_tags = set(accumulator.Tags()["images"])
    images = {tag: {e.step: e for e in accumulator.Images(tag)} for tag in image_tags}
    samples = os.path.join(os.path.dirname(os.path.abspath(folder)), "samples")
    scalars = {tag: {e.step: e.value for e in accumulator.Scalars(tag)} for tag in tags}
    compared = 0
    with open(metrics_path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    validations = 0
    for line in lines:
        validation = line.get("kind") == "validation"
        validations += validation
        if validation:
            grid = images.get("validation/reconstructions", {}).get(line["step"])
            path = os.path.join(samples, f"step-{line['step']:08d}.png")
            if grid is None:
                problems.append(f"validation {line['step']}: no reconstruction image")
            elif not os.path.exists(path) or open(path, "rb").read() != grid.encoded_image_string:
                problems.append(f"validation {line['step']}: the image is not {path}")
            elif (grid.width, grid.height) != struct.unpack(">II", grid.encoded_image_string[16:24]):
                problems.append(f"validation {line['step']}: the image says {grid.width}x{grid.height}, its PNG another size")
            compared += grid is not None
        for field, tag in (VALIDATION_TAGS if validation else TAGS).items():
            value = line.get(field)
            if value is None:
                continue
            got = scalars.get(tag, {}).get(line["step"])
            expected = struct.unpack("<f", struct.pack("<f", float(value)))[0]
            if got is None:
                problems.append(f"step {line['step']}: {tag} missing")
            elif got != expected:
                problems.append(f"step {line['step']}: {tag} is {got}, the metrics say {value}")
            compared += 1
    for problem in problems[:20]:
        print(f"problem: {problem}")
    print(f"{len(files)} event file(s), {records} record(s), {len(tags)} scalar tag(s); "
          f"{compared} value(s) of {len(lines) - validations} step(s) and {validations} validation(s) compared; "
          f"{len(problems)} problem(s)")
    return 1 if problems or compared == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
