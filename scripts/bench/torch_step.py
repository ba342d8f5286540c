#!/usr/bin/env python3
"""Time one full SC-VAE training step (forward, backward, Adam update) in PyTorch on CPU.

The model is the reference implementation in scripts/reference/scvae_reference.py, with the
paper's optimizer (Adam, lr 4e-5, betas (0.5, 0.9)). oneDNN stays at PyTorch's default (on).

FLOPs are counted analytically for the forward pass and multiplied by 3 for a training step:
  - every convolution: 2 * Cout * (Cin * kh * kw) * Hout * Wout per image (multiply-add = 2);
  - every attention block: two batched GEMMs, 2 * (HW)^2 * C each, per image;
  - LISTA: y = D^T h (2PCK), D^T D (2CK^2), T iterations of S z (2PK^2 each), hHat = D z (2PKC).
The backward pass costs about twice the forward (gradient w.r.t. the input and w.r.t. the
weights, each one forward's worth; the unused input gradient of conv_in is counted anyway), so a
step is ~3x the forward. GroupNorm, swish, softmax and Adam are not counted (memory-bound).

Prints ms/step, images/s, achieved GFLOP/s and peak RSS (getrusage, the whole process).
"""

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reference"))
from scvae_reference import CONFIGS, SCVAE, AttnBlock, smooth_images  # noqa: E402


def forward_flops(model: SCVAE, x: torch.Tensor) -> dict:
    """Analytic FLOPs of one forward pass on x, by kind (conv, attention, lista)."""
    counts = {"conv": 0, "attention": 0, "lista": 0}
    hooks = []

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        cin = module.in_channels // module.groups
        counts["conv"] += 2 * output.numel() * cin * kh * kw

    def attn_hook(module, inputs, output):
        b, c, h, w = inputs[0].shape
        counts["attention"] += 2 * 2 * b * (h * w) ** 2 * c

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, AttnBlock):
            hooks.append(module.register_forward_hook(attn_hook))
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    cfg = model.cfg
    positions = x.shape[0] * cfg.latent_size ** 2
    c, k, t = cfg.latent_channels, cfg.atoms, cfg.ista_iterations
    counts["lista"] = 2 * positions * c * k * 2 + 2 * c * k * k + t * 2 * positions * k * k
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = CONFIGS[args.config]
    model = SCVAE(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-5, betas=(0.5, 0.9))
    x = torch.from_numpy(smooth_images(args.batch, cfg.image_size, args.seed))

    flops = forward_flops(model, x)
    step_flops = 3 * sum(flops.values())

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(x)["loss"]
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)

    median = statistics.median(times)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, config {cfg.name}, batch {args.batch}, threads {args.threads}, "
          f"mkldnn {torch.backends.mkldnn.is_available()}, params {params}")
    print(f"forward GFLOP: conv {flops['conv'] / 1e9:.3f}, attention {flops['attention'] / 1e9:.3f}, "
          f"lista {flops['lista'] / 1e9:.3f}; step (3x forward) {step_flops / 1e9:.3f} GFLOP")
    print(f"steps {args.steps} (warm-up {args.warmup}): ms/step median {median * 1e3:.1f}, "
          f"min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}")
    print(f"images/s {args.batch / median:.2f}; achieved {step_flops / median / 1e9:.1f} GFLOP/s; "
          f"peak RSS {rss_mib:.0f} MiB; last loss {loss:.5f}")


if __name__ == "__main__":
    main()
