#!/usr/bin/env python3
"""PyTorch reference implementation of SC-VAE (see docs/model.md) and fixture generator.

The model is written from the project's spec: a VQGAN-style convolutional encoder, a learned-ISTA
(LISTA) sparse-coding bottleneck with a DCT-initialised dictionary, and the mirrored decoder.
Parameter names and shapes match Sources/Model/ParameterLayout.swift exactly.

Subcommands:
  fixtures       weights, input, gradients (and forward outputs) of one training step of a config
  lista-fixture  a LISTA-only fixture: forward and gradients of sum(hHat * G)
  check-load     load a safetensors file strictly into the model and run one forward
  layout         print the state_dict names and shapes (to compare with the Swift layout)
  layouts        write the names, shapes and totals of every configuration as JSON files
  authors-checkpoint  a .pt laid out as the authors' trainer saves one (to test the converter)

Run `python3 scvae_reference.py SUBCOMMAND --help` for the options.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# Configurations (docs/model.md, "Configurations"; Sources/Model/ModelConfig.swift)
# ----------------------------------------------------------------------------------------------

C_FLOOR = 1e-4
"""Lower clamp of the LISTA step c (the Swift side uses the same floor)."""


@dataclass(frozen=True)
class Config:
    """The hyperparameters that fix an SC-VAE architecture."""

    name: str
    image_size: int
    ch: int
    ch_mult: tuple
    res_blocks: int
    attn_resolutions: tuple
    latent_channels: int  # C
    atoms: int  # K
    ista_iterations: int  # T
    dct_atoms_per_axis: int  # m of the 1-D overcomplete DCT
    beta: float = 1.0
    latent_weight: float = 1.0
    max_groups: int = 32
    gn_eps: float = 1e-6

    @property
    def levels(self) -> int:
        return len(self.ch_mult)

    @property
    def latent_size(self) -> int:
        return self.image_size >> (self.levels - 1)

    def groups(self, channels: int) -> int:
        return min(self.max_groups, channels)


def _authors(name: str, ch_mult: tuple, iterations: int) -> Config:
    """One of the authors' stage-1 configurations (docs/model.md, "The authors' stage-1
    configurations"): 256 x 256 images, ch 128, two ResNet blocks per level, attention at
    16 x 16, C = 256, K = 512, DCT m = 23; they differ in the levels and the LISTA iterations."""
    return Config(name, 256, 128, ch_mult, 2, (16,), 256, 512, iterations, 23)


_MULT_1X1 = (1, 1, 1, 2, 2, 2, 4, 4, 4)
_MULT_4X4 = (1, 1, 1, 2, 2, 4, 4)
_MULT_16X16 = (1, 1, 2, 2, 4)
_MULT_32X32 = (1, 2, 2, 4)

CONFIGS = {
    "tiny": Config("tiny", 32, 32, (1, 2, 2), 1, (8,), 64, 128, 5, 12),
    "small": Config("small", 64, 64, (1, 2, 2), 1, (16,), 64, 128, 5, 12),
    "imagenet-f8": Config("imagenet-f8", 256, 128, (1, 2, 2, 4), 2, (16,), 256, 512, 16, 23),
    "imagenet-f16": Config("imagenet-f16", 256, 128, (1, 1, 2, 2, 4), 2, (16,), 256, 512, 16, 23),
    "im256-scvae1x1": _authors("im256-scvae1x1", _MULT_1X1, 16),
    "im256-scvae4x4": _authors("im256-scvae4x4", _MULT_4X4, 16),
    "im256-scvae16x16": _authors("im256-scvae16x16", _MULT_16X16, 16),
    "im256-scvae32x32": _authors("im256-scvae32x32", _MULT_32X32, 16),
    "ffhq256-scvae1x1": _authors("ffhq256-scvae1x1", _MULT_1X1, 30),
    "ffhq256-scvae4x4": _authors("ffhq256-scvae4x4", _MULT_4X4, 16),
    "ffhq256-scvae16x16": _authors("ffhq256-scvae16x16", _MULT_16X16, 30),
    "ffhq256-scvae32x32": _authors("ffhq256-scvae32x32", _MULT_32X32, 16),
}
"""Every configuration of Sources/Model/ModelConfig.swift, in `ModelConfig.all` order."""

REDUCED = {
    # name: (reduced config, the full configuration whose block structure it keeps)
    "scvae1x1": (Config("scvae1x1", 256, 4, _MULT_1X1, 2, (16,), 64, 128, 30, 12, max_groups=2),
                 "ffhq256-scvae1x1"),
    "scvae4x4": (Config("scvae4x4", 128, 4, _MULT_4X4, 2, (8,), 64, 128, 16, 12, max_groups=2),
                 "im256-scvae4x4"),
    "scvae16x16": (Config("scvae16x16", 64, 4, _MULT_16X16, 2, (4,), 64, 128, 30, 12, max_groups=2),
                   "ffhq256-scvae16x16"),
    "scvae32x32": (Config("scvae32x32", 32, 4, _MULT_32X32, 2, (2,), 64, 128, 16, 12, max_groups=2),
                   "im256-scvae32x32"),
}
"""Gradient-fixture configurations: each keeps the levels, ch_mult, ResNet blocks and the levels
that carry attention of an authors' configuration, at a smaller width, image and latent size."""


def attention_levels(cfg: Config) -> list:
    """The encoder levels whose resolution carries attention (the decoder mirrors them)."""
    return [level for level in range(cfg.levels) if (cfg.image_size >> level) in cfg.attn_resolutions]


def any_config(name: str) -> Config:
    """A configuration of CONFIGS or REDUCED by name."""
    return CONFIGS[name] if name in CONFIGS else REDUCED[name][0]


def with_loss(cfg: Config, beta: float | None, latent_weight: str | None) -> Config:
    """cfg with another beta and latent weight ('auto' = 1 / (H * W * C) of the latent grid)."""
    changes = {}
    if beta is not None:
        if not (math.isfinite(beta) and beta > 0):
            raise SystemExit(f"error: beta must be a positive finite number (got {beta})")
        changes["beta"] = beta
    if latent_weight is not None:
        if latent_weight == "auto":
            weight = 1.0 / (cfg.latent_size * cfg.latent_size * cfg.latent_channels)
        else:
            weight = float(latent_weight)
            if not (math.isfinite(weight) and weight >= 0):
                raise SystemExit(f"error: latent weight must be 'auto' or a finite number >= 0 (got {latent_weight})")
        changes["latent_weight"] = weight
    return replace(cfg, **changes)

# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


def swish(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x)."""
    return x * torch.sigmoid(x)


def normalize(cfg: Config, channels: int) -> nn.GroupNorm:
    """GroupNorm with min(32, channels) groups, eps 1e-6, affine."""
    return nn.GroupNorm(cfg.groups(channels), channels, eps=cfg.gn_eps, affine=True)


class ResnetBlock(nn.Module):
    """norm1, swish, conv1, norm2, swish, conv2; 1x1 `nin_shortcut` when cin != cout."""

    def __init__(self, cfg: Config, cin: int, cout: int):
        super().__init__()
        self.norm1 = normalize(cfg, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = normalize(cfg, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)
        else:
            self.nin_shortcut = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        shortcut = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return shortcut + h


class AttnBlock(nn.Module):
    """Single-head self-attention over spatial positions with a residual connection."""

    def __init__(self, cfg: Config, channels: int):
        super().__init__()
        self.norm = normalize(cfg, channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hgt, wid = x.shape
        n = self.norm(x)
        q = self.q(n).reshape(b, c, hgt * wid)
        k = self.k(n).reshape(b, c, hgt * wid)
        v = self.v(n).reshape(b, c, hgt * wid)
        # weights[b, i, j]: query position i attends to key position j (softmax over j).
        weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=2)
        out = torch.bmm(v, weights.transpose(1, 2)).reshape(b, c, hgt, wid)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then a 3x3 convolution with stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: ResNet blocks, optional attention blocks, optional resampler."""

    def __init__(self):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()


class Mid(nn.Module):
    """ResnetBlock, AttnBlock, ResnetBlock at the lowest resolution."""

    def __init__(self, cfg: Config, channels: int):
        super().__init__()
        self.block_1 = ResnetBlock(cfg, channels, channels)
        self.attn_1 = AttnBlock(cfg, channels)
        self.block_2 = ResnetBlock(cfg, channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """Image [B,3,S,S] -> latent grid h [B,C,S/f,S/f]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.conv_in = nn.Conv2d(3, cfg.ch, 3, padding=1)
        self.down = nn.ModuleList()
        resolution, channels = cfg.image_size, cfg.ch
        for level in range(cfg.levels):
            stage = Level()
            out = cfg.ch * cfg.ch_mult[level]
            for _ in range(cfg.res_blocks):
                stage.block.append(ResnetBlock(cfg, channels, out))
                channels = out
                if resolution in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(cfg, channels))
            if level != cfg.levels - 1:
                stage.downsample = Downsample(channels)
                resolution //= 2
            self.down.append(stage)
        self.mid = Mid(cfg, channels)
        self.norm_out = normalize(cfg, channels)
        self.conv_out = nn.Conv2d(channels, cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level, stage in enumerate(self.down):
            for j, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn) > 0:
                    h = stage.attn[j](h)
            if level != self.cfg.levels - 1:
                h = stage.downsample(h)
        h = self.mid(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent grid [B,C,s,s] -> image [B,3,S,S] (no output nonlinearity)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        channels = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, channels, 3, padding=1)
        self.mid = Mid(cfg, channels)
        stages = [None] * cfg.levels
        resolution = cfg.latent_size
        for level in reversed(range(cfg.levels)):
            stage = Level()
            out = cfg.ch * cfg.ch_mult[level]
            for _ in range(cfg.res_blocks + 1):
                stage.block.append(ResnetBlock(cfg, channels, out))
                channels = out
                if resolution in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(cfg, channels))
            if level != 0:
                stage.upsample = Upsample(channels)
                resolution *= 2
            stages[level] = stage
        # Registered in level order 0, 1, ... so that `up.{i}` is the level at encoder level i's
        # resolution; they run last to first.
        self.up = nn.ModuleList(stages)
        self.norm_out = normalize(cfg, channels)
        self.conv_out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(range(self.cfg.levels)):
            stage = self.up[level]
            for j, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn) > 0:
                    h = stage.attn[j](h)
            if level != 0:
                h = stage.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


# ----------------------------------------------------------------------------------------------
# LISTA and the dictionary initialisation
# ----------------------------------------------------------------------------------------------


def soft(u: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Soft threshold sign(u) * max(|u| - theta, 0)."""
    return torch.sign(u) * torch.relu(u.abs() - theta)


def lista(h: torch.Tensor, dictionary: torch.Tensor, c: torch.Tensor, beta: float, iterations: int,
          record: list | None = None):
    """Learned ISTA on rows of h [P, C] with D [C, K]; returns (hHat [P, C], codes z [P, K]).

    y = D^T h; theta = beta / c; S = I - D^T D / c; z = soft(y, theta); T times
    z = soft(S z + y / c, theta); hHat = D z. c is clamped below at C_FLOOR.
    If `record` is a list, every soft-threshold input u (T + 1 of them) is appended to it.
    """
    c = torch.clamp(c, min=C_FLOOR)
    theta = beta / c
    k = dictionary.shape[1]
    y = h @ dictionary  # [P, K]
    s = torch.eye(k, dtype=h.dtype) - dictionary.t() @ dictionary / c
    y_over_c = y / c
    u = y
    if record is not None:
        record.append(u.detach())
    z = soft(u, theta)
    for _ in range(iterations):
        u = z @ s.t() + y_over_c
        if record is not None:
            record.append(u.detach())
        z = soft(u, theta)
    return z @ dictionary.t(), z


def dct_dictionary(channels: int, per_axis: int, atoms: int) -> np.ndarray:
    """Overcomplete 2-D DCT dictionary [C, K] (float64) as docs/model.md describes it."""
    n = int(round(math.sqrt(channels)))
    assert n * n == channels, "C must be a square"
    m = per_axis
    one_d = np.zeros((n, m))
    i = np.arange(n)
    for k in range(m):
        col = np.cos(i * k * math.pi / m)
        if k > 0:
            col = col - col.mean()
        one_d[:, k] = col / np.linalg.norm(col)
    two_d = np.kron(one_d, one_d)
    two_d = two_d / np.linalg.norm(two_d, axis=0, keepdims=True)
    perm = [b * n + a for a in range(n) for b in range(n)]  # row a*n+b <- old row b*n+a
    two_d = two_d[perm, :]
    return two_d[:, :atoms]


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------


class SCVAE(nn.Module):
    """Encoder -> per-position LISTA over (Dict, c) -> Decoder."""

    def __init__(self, cfg: Config, initialise: bool = True):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.Dict = nn.Parameter(torch.zeros(cfg.latent_channels, cfg.atoms))
        self.c = nn.Parameter(torch.ones(1))
        self.decoder = Decoder(cfg)
        if initialise:
            self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Xavier-uniform conv weights, zero biases, GroupNorm 1/0, DCT Dict, c = ||D||_2^2."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                xavier_uniform(module.weight, generator)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        d = dct_dictionary(self.cfg.latent_channels, self.cfg.dct_atoms_per_axis, self.cfg.atoms)
        with torch.no_grad():
            self.Dict.copy_(torch.from_numpy(d))
            self.c.fill_(float(np.linalg.norm(d, 2) ** 2))

    def forward(self, x: torch.Tensor, record: list | None = None):
        """Returns (xhat, h, hHat, codes); h and hHat are [B, C, s, s], codes [B*s*s, K]."""
        h = self.encoder(x)
        b, c, hgt, wid = h.shape
        rows = h.permute(0, 2, 3, 1).reshape(b * hgt * wid, c)
        h_hat_rows, codes = lista(rows, self.Dict, self.c, self.cfg.beta, self.cfg.ista_iterations, record)
        h_hat = h_hat_rows.reshape(b, hgt, wid, c).permute(0, 3, 1, 2)
        return self.decoder(h_hat), h, h_hat, codes

    def loss(self, x: torch.Tensor, record: list | None = None) -> dict:
        """loss = MSE(xhat, x) + latentWeight * MSE(h, hHat), with the terms and sparsity."""
        xhat, h, h_hat, codes = self(x, record)
        recon = F.mse_loss(xhat, x)
        latent = F.mse_loss(h, h_hat)
        total = recon + self.cfg.latent_weight * latent
        sparsity = (codes == 0).to(torch.float64).mean()
        return {"loss": total, "recon": recon, "latent": latent, "sparsity": sparsity,
                "xhat": xhat, "h": h, "h_hat": h_hat, "codes": codes}


def parameter_shapes(cfg: Config) -> dict:
    """{name: shape} of the model's state_dict, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = SCVAE(cfg, initialise=False)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def authors_extra_shapes(cfg: Config, alpha_hidden: int = 64, alpha_out: int = 1, heads: int = 6) -> dict:
    """Tensors the authors' model (Model_VAEf16) registers besides ours, with their shapes: the
    equivariance layers el1/el2 (Linear C->H_1, H_1->H_2), the graph attention GAT (6 heads of
    K->64, then 384->1), SGC (Linear K->1) and w [C]. Their configs set H_1 = 64 and H_2 = 1;
    their code fixes the GAT and SGC inputs at 512, the K of all their configurations. These
    serve their learned latent weightings; scvae implements only the constant one, which uses
    none of them."""
    c, k = cfg.latent_channels, cfg.atoms
    shapes = {"el1.0.weight": (alpha_hidden, c), "el1.0.bias": (alpha_hidden,),
              "el2.0.weight": (alpha_out, alpha_hidden), "el2.0.bias": (alpha_out,)}
    for head in range(heads):
        shapes[f"GAT.attention_{head}.W"] = (k, 64)
        shapes[f"GAT.attention_{head}.a"] = (128, 1)
    shapes["GAT.out_att.W"] = (64 * heads, 1)
    shapes["GAT.out_att.a"] = (2, 1)
    shapes["SGC.W.weight"] = (1, k)
    shapes["SGC.W.bias"] = (1,)
    shapes["w"] = (c,)
    return shapes


def xavier_uniform(weight: torch.Tensor, generator: torch.Generator | None) -> None:
    """Xavier/Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), fans include kh*kw."""
    out_ch, in_ch, kh, kw = weight.shape
    bound = math.sqrt(6.0 / (in_ch * kh * kw + out_ch * kh * kw))
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)


# ----------------------------------------------------------------------------------------------
# safetensors I/O, by hand (reproducible bytes; no dependency on the safetensors package)
# ----------------------------------------------------------------------------------------------

_DTYPES = {torch.float32: ("F32", np.float32), torch.float64: ("F64", np.float64)}


def save_safetensors(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    """Write float tensors and string metadata as a safetensors file.

    Written by hand (not with the safetensors package) so that the bytes are reproducible: the
    header is JSON with sorted keys (`__metadata__` first), tensors are stored in name order,
    little-endian, and the header is padded with spaces to a multiple of 8 bytes.
    """
    tensors = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(metadata[k]) for k in sorted(metadata)}
    for name in sorted(tensors):
        tag, np_type = _DTYPES[tensors[name].dtype]
        data = tensors[name].numpy().astype(np.dtype(np_type).newbyteorder("<")).tobytes()
        header[name] = {"dtype": tag, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for chunk in chunks:
            f.write(chunk)


def load_safetensors(path: Path) -> tuple[dict, dict]:
    """Read a safetensors file by hand: returns ({name: float32/64 tensor}, metadata)."""
    blob = Path(path).read_bytes()
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + size
    codes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": None}
    out = {}
    for name, info in header.items():
        np_type = codes.get(info["dtype"])
        if np_type is None:
            raise ValueError(f"{name}: unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        array = np.frombuffer(blob[base + start:base + end], dtype=np_type).reshape(info["shape"])
        native = np.float32 if np_type == "<f2" else np.dtype(np_type).newbyteorder("=")
        out[name] = torch.from_numpy(np.array(array, dtype=native))
    return out, metadata


def load_strict(model: SCVAE, tensors: dict) -> list:
    """Copy tensors into the model; error on a missing or mis-shaped name, warn on unknown ones."""
    state = model.state_dict()
    missing = [n for n in state if n not in tensors]
    if missing:
        raise SystemExit(f"error: missing tensors: {', '.join(missing)}")
    for name, value in state.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise SystemExit(f"error: tensor {name} has shape {list(tensors[name].shape)}, "
                             f"expected {list(value.shape)}")
    unknown = sorted(n for n in tensors if n not in state)
    if unknown:
        print(f"warning: ignoring unknown tensors: {', '.join(unknown)}", file=sys.stderr)
    model.load_state_dict({n: tensors[n].to(state[n].dtype) for n in state}, strict=True)
    return unknown


# ----------------------------------------------------------------------------------------------
# Fixture helpers
# ----------------------------------------------------------------------------------------------


def smooth_images(batch: int, size: int, seed: int) -> np.ndarray:
    """Structured float32 images [B, 3, S, S] in [-1, 1]: colour gradients, a soft disk, a soft
    rectangle and a low-frequency wave, each with random parameters."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    images = np.zeros((batch, 3, size, size))
    for b in range(batch):
        angle = rng.uniform(0, 2 * math.pi)
        ramp = math.cos(angle) * xs + math.sin(angle) * ys
        base = rng.uniform(-0.6, 0.6, 3)[:, None, None] + rng.uniform(-0.4, 0.4, 3)[:, None, None] * ramp
        cx, cy, r = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.2, 0.5)
        disk = 1 / (1 + np.exp(-(r - np.hypot(xs - cx, ys - cy)) * 12 * size / 32))
        x0, y0 = rng.uniform(-0.9, 0.1, 2)
        x1, y1 = x0 + rng.uniform(0.4, 0.8), y0 + rng.uniform(0.3, 0.8)
        edge = 10 * size / 32
        rect = (1 / (1 + np.exp(-(xs - x0) * edge)) * 1 / (1 + np.exp((xs - x1) * edge))
                * 1 / (1 + np.exp(-(ys - y0) * edge)) * 1 / (1 + np.exp((ys - y1) * edge)))
        freq = rng.uniform(1, 3, 2)
        wave = 0.15 * np.sin(math.pi * (freq[0] * xs + freq[1] * ys) + rng.uniform(0, 2 * math.pi))
        img = base + rng.uniform(-1, 1, 3)[:, None, None] * disk + rng.uniform(-1, 1, 3)[:, None, None] * rect
        images[b] = np.tanh(img + wave)
    return images.astype(np.float32)


def threshold_margin(record: list, theta: float) -> float:
    """min over every soft-threshold input u of | |u| - theta |."""
    return min(float((u.abs() - theta).abs().min()) for u in record)


def perturb(model: SCVAE, seed: int, bias_scale: float, norm_scale: float, dict_scale: float,
            c_scale: float) -> None:
    """Seeded noise on every bias and GroupNorm weight/bias; slight noise on Dict and c."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.bias.add_(bias_scale * torch.randn(module.bias.shape, generator=g))
            elif isinstance(module, nn.GroupNorm):
                module.weight.add_(norm_scale * torch.randn(module.weight.shape, generator=g))
                module.bias.add_(norm_scale * torch.randn(module.bias.shape, generator=g))
        model.Dict.add_(dict_scale * torch.randn(model.Dict.shape, generator=g))
        model.c.mul_(1 + c_scale * torch.randn(1, generator=g))


def scan_c(model: SCVAE, x: torch.Tensor, spread: float, points: int) -> tuple:
    """Scale c by the factor in [1 - spread, 1 + spread] that maximises the soft-threshold margin
    for input x (the encoder output does not depend on c, so only LISTA is re-run). Sets model.c
    and returns (factor, margin, theta)."""
    cfg = model.cfg
    with torch.no_grad():
        h = model.encoder(x)
        rows = h.permute(0, 2, 3, 1).reshape(-1, cfg.latent_channels)
        c0 = float(model.c)
        best = None
        for factor in np.linspace(1 - spread, 1 + spread, points):
            c = torch.tensor([c0 * factor], dtype=model.c.dtype)
            record: list = []
            lista(rows, model.Dict, c, cfg.beta, cfg.ista_iterations, record)
            theta = float(cfg.beta / torch.clamp(c, min=C_FLOOR))
            margin = threshold_margin(record, theta)
            if best is None or margin / theta > best[1] / best[2]:
                best = (float(factor), margin, theta, c)
        model.c.copy_(best[3])
    return best[:3]


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a - b| / max|b| (0 when both are zero)."""
    scale = float(b.abs().max())
    diff = float((a.to(torch.float64) - b).abs().max())
    return diff / scale if scale > 0 else diff


# ----------------------------------------------------------------------------------------------
# Subcommands
# ----------------------------------------------------------------------------------------------


def cmd_lista_fixture(args) -> None:
    """LISTA-only fixture: inputs (h, Dict, c, G) and expected (hHat, codes, gradients of
    L = sum(hHat * G) w.r.t. h, Dict, c)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    d0 = torch.from_numpy(dct_dictionary(64, 12, 128))
    c0 = float(np.linalg.norm(d0.numpy(), 2) ** 2)
    best = None
    for attempt in range(args.max_attempts):
        g = torch.Generator().manual_seed(args.seed * 100003 + attempt)
        # h: a sparse combination of a few atoms plus noise, so that codes are a realistic mix.
        z_true = torch.zeros(args.positions, 128, dtype=torch.float64)
        for p in range(args.positions):
            idx = torch.randperm(128, generator=g)[:8]
            z_true[p, idx] = torch.randn(8, generator=g, dtype=torch.float64) * 1.5
        h = (z_true @ d0.t() + 0.3 * torch.randn(args.positions, 64, generator=g, dtype=torch.float64)).float()
        dictionary = (d0 + 1e-3 * torch.randn(d0.shape, generator=g, dtype=torch.float64)).float()
        c = torch.tensor([c0 * (1 + 0.01 * float(torch.randn(1, generator=g)))], dtype=torch.float32)
        weights = torch.randn(args.positions, 64, generator=g).float()
        record: list = []
        lista(h, dictionary, c, args.beta, args.iterations, record)
        theta = float(args.beta / torch.clamp(c, min=C_FLOOR))
        margin = threshold_margin(record, theta)
        if best is None or margin > best[0]:
            best = (margin, attempt, h, dictionary, c, weights)
        if margin >= args.margin_rel * theta:
            break
    margin, attempt, h, dictionary, c, weights = best
    theta = float(args.beta / c)
    print(f"lista: attempt {attempt}, margin {margin:.3e} = {margin / theta:.3e} * theta (theta {theta:.6f})")
    if margin < args.margin_rel * theta:
        raise SystemExit(f"error: no attempt reached margin {args.margin_rel} * theta")

    results = {}
    for dtype in (torch.float32, torch.float64):
        hv = h.detach().to(dtype).clone().requires_grad_(True)
        dv = dictionary.detach().to(dtype).clone().requires_grad_(True)
        cv = c.detach().to(dtype).clone().requires_grad_(True)
        h_hat, codes = lista(hv, dv, cv, args.beta, args.iterations)
        (h_hat * weights.to(dtype)).sum().backward()
        results[dtype] = {"hHat": h_hat.detach(), "codes": codes.detach(), "grad.h": hv.grad,
                          "grad.Dict": dv.grad, "grad.c": cv.grad}
    r32, r64 = results[torch.float32], results[torch.float64]
    assert torch.equal(r32["codes"] == 0, r64["codes"] == 0), "float32/float64 masks differ"
    for name in r32:
        print(f"  {name:10s} max|f32-f64|/max|f64| = {relative_difference(r32[name], r64[name]):.2e}")
    sparsity = float((r32["codes"] == 0).float().mean())
    print(f"  sparsity {sparsity:.4f}")
    meta = {"beta": repr(float(args.beta)), "iterations": str(args.iterations), "margin": repr(margin),
            "theta": repr(theta), "sparsity": repr(sparsity), "c_floor": repr(C_FLOOR)}
    save_safetensors({"h": h, "Dict": dictionary, "c": c, "G": weights}, out / "inputs.safetensors", meta)
    save_safetensors(r32, out / "expected.safetensors", meta)
    print(f"wrote {out}/inputs.safetensors, {out}/expected.safetensors")


def compute_step(model: SCVAE, x: torch.Tensor, record: list | None = None):
    """One forward/backward: returns (terms dict, {name: grad})."""
    model.zero_grad(set_to_none=True)
    terms = model.loss(x, record)
    terms["loss"].backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return terms, grads


def cmd_fixtures(args) -> None:
    """Weights, input, gradients and forward outputs of one step of a config.

    With --weights-from DIR the weights and input of that fixture are reused and only c is
    searched for the margin; the folder then holds just the tensors that differ (c)."""
    cfg = with_loss(any_config(args.config), args.beta, args.latent_weight)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    base = Path(args.weights_from) if args.weights_from else None
    if base is not None:
        x = torch.from_numpy(np.load(base / "input.npy").astype(np.float32))
    else:
        x = torch.from_numpy(smooth_images(args.batch, cfg.image_size, args.seed))
    best = None
    for attempt in range(1 if base is not None else args.max_attempts):
        seed = args.seed * 100003 + attempt
        model = SCVAE(cfg)
        if base is not None:
            load_strict(model, load_safetensors(base / "weights.safetensors")[0])
        else:
            model.reset_parameters(torch.Generator().manual_seed(seed))
            perturb(model, seed + 1, args.bias_noise, args.norm_noise, args.dict_noise, args.c_noise)
            with torch.no_grad():
                # A narrow encoder's h is small next to theta; scaling its last conv gives codes.
                model.encoder.conv_out.weight.mul_(args.h_gain)
                model.encoder.conv_out.bias.mul_(args.h_gain)
        factor, margin, theta = scan_c(model, x, args.c_scan, args.c_scan_points)
        print(f"  attempt {attempt}: c scaled by {factor:.5f}: margin {margin:.3e} = {margin / theta:.3e} * theta")
        if best is None or margin > best[0]:
            best = (margin, attempt, model)
        if margin >= args.margin_target * theta:
            break
    margin, attempt, model = best
    theta = float(cfg.beta / torch.clamp(model.c.detach(), min=C_FLOOR))
    required = max(args.margin_rel * theta, args.margin_abs)
    print(f"{cfg.name}: attempt {attempt}, margin {margin:.3e} = {margin / theta:.3e} * theta "
          f"(theta {theta:.6f}, required {required:.3e})")
    if margin < required:
        raise SystemExit("error: no attempt reached the required margin; raise --max-attempts")

    record32: list = []
    terms, grads = compute_step(model, x, record32)
    model64 = SCVAE(cfg).double()
    model64.load_state_dict({n: t.double() for n, t in model.state_dict().items()})
    record64: list = []
    terms64, grads64 = compute_step(model64, x.double(), record64)
    theta64 = float(cfg.beta / torch.clamp(model64.c.detach(), min=C_FLOOR))
    u_diff = max(float((a.double() - b).abs().max()) for a, b in zip(record32, record64))
    masks_equal = all(torch.equal(a.abs() > theta, b.abs() > theta64) for a, b in zip(record32, record64))
    print(f"max |u_f32 - u_f64| = {u_diff:.3e}; margin / that = {margin / u_diff:.1f}; "
          f"threshold masks equal: {masks_equal}")
    if not masks_equal:
        raise SystemExit("error: float32 and float64 threshold masks differ")
    if margin < args.noise_factor * u_diff:
        raise SystemExit(f"error: margin is less than {args.noise_factor} x the float32 rounding of u")
    print("float32 vs float64 gradients, max|g32 - g64| / max|g64| per tensor:")
    global_max = max(float(g.abs().max()) for g in grads64.values())
    worst, structural_zero, all_rel = (0.0, ""), [], []
    for name, g in grads.items():
        scale = float(grads64[name].abs().max())
        if scale <= 1e-9 * global_max:
            structural_zero.append(name)
            print(f"  zero by construction (max|g64| {scale:.1e}, max|g32| {float(g.abs().max()):.1e})  {name}")
            continue
        rel = relative_difference(g, grads64[name])
        print(f"  {rel:9.2e}  (max|g| {scale:9.2e})  {name}")
        all_rel.append(rel)
        if rel > worst[0]:
            worst = (rel, name)
    print(f"median relative difference: {float(np.median(all_rel)):.2e}")
    print(f"worst relative difference: {worst[0]:.2e} ({worst[1]}); "
          f"{len(structural_zero)} tensors are zero by construction")
    for key in ("loss", "recon", "latent"):
        print(f"  {key}: f32 {float(terms[key].detach())!r}  f64 {float(terms64[key].detach())!r}")
    print(f"  sparsity: {float(terms['sparsity'])!r}")
    if float(terms["sparsity"]) > args.max_sparsity:
        raise SystemExit(f"error: sparsity {float(terms['sparsity'])} is above {args.max_sparsity}: too few codes "
                         "reach LISTA's gradients; raise --h-gain")

    meta = {key: repr(float(terms[key].detach())) for key in ("loss", "recon", "latent", "sparsity")}
    if base is not None:
        # Everything but c is the base fixture's; the test overlays this file on its weights.
        save_safetensors({"c": model.c}, out / "weights.safetensors")
    else:
        save_safetensors(dict(model.state_dict()), out / "weights.safetensors")
        np.save(out / "input.npy", x.numpy().astype("<f4"))
    save_safetensors(grads, out / "grads.safetensors", meta)
    if not args.no_outputs:
        outputs = {"xhat": terms["xhat"], "h": terms["h"], "hHat": terms["h_hat"], "codes": terms["codes"]}
        save_safetensors(outputs, out / "outputs.safetensors", meta)
    info = {"config": cfg.name, "batch": args.batch, "seed": args.seed, "attempt": attempt,
            "beta": cfg.beta, "latent_weight": cfg.latent_weight, "c_floor": C_FLOOR,
            **({"h_gain": args.h_gain} if args.h_gain != 1 else {}),
            "theta": theta, "margin": margin,
            "margin_rule": f"margin >= max({args.margin_rel} * theta, {args.margin_abs}) and "
                           f">= {args.noise_factor} * max|u_f32 - u_f64|",
            "max_abs_u_f32_minus_f64": u_diff, "worst_grad_rel_diff_f32_f64": worst[0],
            "median_grad_rel_diff_f32_f64": float(np.median(all_rel)),
            "worst_grad_rel_diff_tensor": worst[1], "zero_by_construction": structural_zero,
            "terms_f32": meta, "terms_f64": {k: repr(float(terms64[k].detach())) for k in ("loss", "recon", "latent")},
            "torch": torch.__version__}
    if args.config in REDUCED:
        full = CONFIGS[REDUCED[args.config][1]]
        info["structure_of"] = full.name
        info["attention_levels"] = attention_levels(cfg)
        assert attention_levels(cfg) == attention_levels(full) and cfg.ch_mult == full.ch_mult
    if base is not None:
        info["weights_base"] = base.name
        info["input_base"] = base.name
    if args.config in REDUCED or base is not None:
        info["model"] = {key: (list(value) if isinstance(value, tuple) else value)
                         for key, value in asdict(cfg).items()}
    (out / "fixture.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} in {out}")


def cmd_check_load(args) -> None:
    """Load a safetensors file strictly and run one forward on structured images."""
    cfg = CONFIGS[args.config]
    model = SCVAE(cfg)
    tensors, metadata = load_safetensors(Path(args.weights))
    load_strict(model, tensors)
    if metadata:
        print("metadata: " + json.dumps(metadata, sort_keys=True))
    if args.input:
        x = torch.from_numpy(np.load(args.input).astype(np.float32))
    else:
        x = torch.from_numpy(smooth_images(args.batch, cfg.image_size, 0))
    with torch.no_grad():
        terms = model.loss(x)
    print(f"loaded {len(model.state_dict())} tensors into {cfg.name}; "
          f"loss {float(terms['loss'])!r} recon {float(terms['recon'])!r} "
          f"latent {float(terms['latent'])!r} sparsity {float(terms['sparsity'])!r}")


def cmd_layout(args) -> None:
    """Print name and shape of every parameter in registration order."""
    model = SCVAE(CONFIGS[args.config])
    total = 0
    for name, p in model.named_parameters():
        print(f"{name} {list(p.shape)}")
        total += p.numel()
    print(f"total {total}")


def cmd_authors_checkpoint(args) -> None:
    """Write a PyTorch checkpoint laid out as the authors' trainer saves one, from a safetensors
    weights file with scvae's names: {'epoch', 'state_dict': {PREFIX + name: tensor, ...}} with
    their extra tensors (el1, el2, GAT, SGC, w; random values) unless --no-extras. --drop,
    --misshape and --unknown spoil it on purpose, to test the converter's refusals."""
    cfg = CONFIGS[args.config]
    tensors, _ = load_safetensors(Path(args.weights))
    state = {}
    for name, value in tensors.items():
        if name == "c" and args.scalar_c:
            value = value.reshape(())
        state[name] = value
    if not args.no_extras:
        g = torch.Generator().manual_seed(0)
        for name, shape in authors_extra_shapes(cfg).items():
            state[name] = torch.randn(shape, generator=g)
    for name in args.drop:
        del state[name]
    for name in args.misshape:
        state[name] = torch.cat([state[name].reshape(-1), torch.zeros(1)])
    for name in args.unknown:
        state[name] = torch.zeros(3)
    prefixed = {args.prefix + name: value for name, value in state.items()}
    checkpoint = prefixed if args.bare else {"epoch": 0, "state_dict": prefixed}
    torch.save(checkpoint, args.out)
    print(f"wrote {len(prefixed)} tensors to {args.out}")


def cmd_layouts(args) -> None:
    """Write NAME.json per configuration: every parameter's name and shape in registration order,
    and the total (the Swift layout test compares Sources/Model/ParameterLayout.swift with them)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, cfg in CONFIGS.items():
        model = SCVAE(cfg)
        rows = [f'    [{json.dumps(n)}, {json.dumps(list(p.shape))}]' for n, p in model.named_parameters()]
        total = sum(p.numel() for p in model.parameters())
        text = (f'{{\n  "config": {json.dumps(name)},\n  "total": {total},\n  "tensors": [\n'
                + ",\n".join(rows) + "\n  ]\n}\n")
        (out / f"{name}.json").write_text(text)
        print(f"{name}: {len(rows)} tensors, {total:,} parameters")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fixtures", help="write weights/input/grads fixtures for one config")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS) + sorted(REDUCED))
    p.add_argument("--beta", type=float, help="override the configuration's beta (theta = beta / c)")
    p.add_argument("--latent-weight", help="override the latent weight: a number >= 0 or 'auto' (1 / (H*W*C))")
    p.add_argument("--weights-from", help="reuse this fixture folder's weights and input; search only c")
    p.add_argument("--no-outputs", action="store_true", help="do not write outputs.safetensors")
    p.add_argument("--h-gain", type=float, default=1.0,
                   help="scale encoder.conv_out (weight and bias) by this so that h reaches past theta")
    p.add_argument("--max-sparsity", type=float, default=0.99,
                   help="fail if a larger fraction of the final codes is zero")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--bias-noise", type=float, default=0.02, help="std of the noise added to conv biases")
    p.add_argument("--norm-noise", type=float, default=0.1, help="std of the noise on GroupNorm weight/bias")
    p.add_argument("--dict-noise", type=float, default=1e-3, help="std of the noise added to Dict")
    p.add_argument("--c-noise", type=float, default=0.01, help="relative std of the noise on c")
    p.add_argument("--margin-rel", type=float, default=1e-4, help="required margin, relative to theta")
    p.add_argument("--margin-abs", type=float, default=0.0, help="required margin, absolute")
    p.add_argument("--margin-target", type=float, default=1e-3,
                   help="stop searching once the margin reaches this fraction of theta (else keep the best)")
    p.add_argument("--noise-factor", type=float, default=4.0,
                   help="the margin must also be this many times max|u_f32 - u_f64|")
    p.add_argument("--max-attempts", type=int, default=10)
    p.add_argument("--c-scan", type=float, default=0.05,
                   help="per attempt, scan c over (1 +- this) times its value for the best margin")
    p.add_argument("--c-scan-points", type=int, default=2001)
    p.set_defaults(func=cmd_fixtures)

    p = sub.add_parser("lista-fixture", help="write the LISTA-only fixture")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--positions", type=int, default=6)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--margin-rel", type=float, default=1e-3, help="required margin, relative to theta")
    p.add_argument("--max-attempts", type=int, default=2000)
    p.set_defaults(func=cmd_lista_fixture)

    p = sub.add_parser("check-load", help="load a safetensors file strictly and run one forward")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--weights", required=True)
    p.add_argument("--input", help="optional .npy input [B,3,S,S]; default: structured images")
    p.add_argument("--batch", type=int, default=2)
    p.set_defaults(func=cmd_check_load)

    p = sub.add_parser("authors-checkpoint", help="write a .pt in the authors' checkpoint layout (to test the converter)")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.add_argument("--weights", required=True, help="safetensors with scvae's names")
    p.add_argument("--out", required=True)
    p.add_argument("--prefix", default="module.", help="prefix of every key (DistributedDataParallel's 'module.')")
    p.add_argument("--bare", action="store_true",
                   help="save the state_dict itself, as their single-process training script does")
    p.add_argument("--scalar-c", action="store_true", help="store c with shape [] instead of [1]")
    p.add_argument("--no-extras", action="store_true", help="leave out el1, el2, GAT, SGC and w")
    p.add_argument("--drop", action="append", default=[], help="leave out this tensor")
    p.add_argument("--misshape", action="append", default=[], help="give this tensor a wrong shape")
    p.add_argument("--unknown", action="append", default=[], help="add a tensor of this unknown name")
    p.set_defaults(func=cmd_authors_checkpoint)

    p = sub.add_parser("layouts", help="write NAME.json (names, shapes, total) for every configuration")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_layouts)

    p = sub.add_parser("layout", help="print parameter names and shapes")
    p.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    p.set_defaults(func=cmd_layout)

    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.func(args)


if __name__ == "__main__":
    main()
