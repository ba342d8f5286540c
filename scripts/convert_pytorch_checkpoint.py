#!/usr/bin/env python3
"""Convert a PyTorch checkpoint of the authors' SC-VAE into scvae's safetensors weights.

The authors' trainer saves `{'epoch', 'state_dict', 'discriminator', 'optimizer', 'scheduler'
[, 'state_dict_ema']}` with the model wrapped in DistributedDataParallel (every key starts with
`module.`); their single-process script saves the bare `state_dict`. Both are read. Inside, the
encoder, decoder, `Dict` and `c` already carry the names scvae uses (docs/model.md, "Checkpoint
tensor names"); the converter strips the wrapper prefix, checks every tensor against the layout
of --config, converts to float32 and writes only the tensors scvae uses.

Refused, naming the key: a tensor the layout needs that is missing, a tensor whose shape differs,
and a key that is neither in the layout nor one of the authors' own extra tensors (`el1.*`,
`el2.*`, `GAT.*`, `SGC.*`, `w`: the learned latent weightings scvae does not implement; they are
dropped and listed).

    python3 scripts/convert_pytorch_checkpoint.py --config im256-scvae16x16 epoch9_model.pt model.safetensors

Needs torch (`pip install 'torch==2.13.0+cpu'`) and numpy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
import scvae_reference as reference  # noqa: E402

WRAPPER_PREFIXES = ("module.", "model.")
"""Prefixes that wrap every key: DistributedDataParallel's `module.`, a Lightning-style `model.`."""

AUTHORS_EXTRAS = ("el1.", "el2.", "GAT.", "SGC.")
AUTHORS_EXTRA_NAMES = ("w",)


class ConversionError(Exception):
    """A checkpoint that cannot become scvae weights; the message names the key."""


def load_checkpoint(path: Path, ema: bool, trust_pickle: bool) -> dict:
    """The state_dict inside a checkpoint file (a training checkpoint or a bare state_dict)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as error:  # torch raises pickle errors of several types
        hint = "" if trust_pickle else " (if you trust the file, --trust-pickle loads arbitrary pickled objects)"
        raise ConversionError(f"{path}: cannot load: {error}{hint}") from error
    if not isinstance(obj, dict):
        raise ConversionError(f"{path}: expected a dict, found {type(obj).__name__}")
    key = "state_dict_ema" if ema else "state_dict"
    if key in obj and isinstance(obj[key], dict):
        return obj[key]
    if ema:
        raise ConversionError(f"{path}: no 'state_dict_ema' in the checkpoint (keys: {', '.join(sorted(map(str, obj)))})")
    if obj and all(isinstance(value, torch.Tensor) for value in obj.values()):
        return obj
    raise ConversionError(f"{path}: neither a 'state_dict' entry nor a dict of tensors "
                          f"(keys: {', '.join(sorted(map(str, obj))[:10])})")


def strip_wrappers(state: dict) -> dict:
    """Removes `module.` / `model.` while every key starts with it."""
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(str(k).startswith(p) for k in state)), None)
        if prefix is None:
            break
        state = {str(k)[len(prefix):]: v for k, v in state.items()}
    return state


def is_authors_extra(name: str) -> bool:
    return name in AUTHORS_EXTRA_NAMES or name.startswith(AUTHORS_EXTRAS)


def convert(state: dict, cfg: reference.Config) -> tuple[dict, list]:
    """({name: float32 tensor} in scvae's layout, [dropped authors' extras]); raises
    ConversionError naming the first problem keys."""
    expected = reference.parameter_shapes(cfg)
    state = strip_wrappers(state)
    unknown = sorted(k for k in state if k not in expected and not is_authors_extra(k))
    if unknown:
        raise ConversionError(f"unknown tensors (not in {cfg.name}'s layout nor the authors' extras): "
                              f"{', '.join(unknown)}")
    missing = [k for k in expected if k not in state]
    if missing:
        raise ConversionError(f"missing tensors for {cfg.name}: {', '.join(missing)}")
    out = {}
    for name, shape in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{name}: not a tensor ({type(value).__name__})")
        if name == "c" and tuple(value.shape) == ():
            value = value.reshape(1)
        if tuple(value.shape) != shape:
            raise ConversionError(f"{name}: shape {list(value.shape)}, {cfg.name} needs {list(shape)}")
        if not value.is_floating_point():
            raise ConversionError(f"{name}: dtype {value.dtype} is not a floating-point type")
        out[name] = value.detach().to(torch.float32).contiguous()
    dropped = sorted(k for k in state if k not in expected)
    return out, dropped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="the authors' .pt (a training checkpoint or a bare state_dict)")
    parser.add_argument("out", help="the safetensors file to write")
    parser.add_argument("--config", required=True, choices=list(reference.CONFIGS),
                        help="the scvae configuration the weights are for")
    parser.add_argument("--ema", action="store_true", help="take 'state_dict_ema' instead of 'state_dict'")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="unpickle arbitrary objects (only for files you trust; default: tensors and plain data only)")
    args = parser.parse_args(argv)
    cfg = reference.CONFIGS[args.config]
    try:
        state = load_checkpoint(Path(args.checkpoint), args.ema, args.trust_pickle)
        tensors, dropped = convert(state, cfg)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metadata = {"format": "pt", "config": cfg.name, "source": Path(args.checkpoint).name}
    reference.save_safetensors(tensors, Path(args.out), metadata)
    if dropped:
        print(f"dropped {len(dropped)} tensors of the authors' latent weightings: {', '.join(dropped)}")
    total = sum(t.numel() for t in tensors.values())
    print(f"wrote {len(tensors)} tensors ({total:,} parameters) for {cfg.name} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
