"""Train the PatchNR patch flow (``restorer_app/flow/patch_flow.py``) on clean photo patches.

Patches come from the project's :class:`PatchSampler` (JPEG sources always downscaled 2-3x,
lossless ones sometimes up to 2x), uniformly dequantised to [-0.5, 0.5]; loss = mean NLL; Adam
with linear warm-up and cosine decay, gradient clipping, non-finite steps skipped. Held-out
bits/dim are logged on fixed Kodak24 patches, at native scale and at the benchmark's scale
(2x INTER_AREA downscale), with a fixed dequantisation draw.

    OMP_NUM_THREADS=1 python -m benchmarks.patchnr_train \
        --data ../shared/data/train --out runs/patchnr/p6 --steps 3000 --time-limit 900
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from restorer_app.flow.patch_flow import PatchFlow, PatchFlowConfig, save_patch_flow
from restorer_app.training.data import PatchSampler, dequantize, find_images, load_rgb_uint8


def heldout(folder, patch_size: int, per_image: int, scale: int, seed: int = 0) -> torch.Tensor:
    """``per_image`` random patches (uint8 values as float, NCHW) of each photo, downscaled by ``scale``."""
    import cv2

    rng = np.random.default_rng(seed)
    patches = []
    for path in find_images([folder]):
        img = load_rgb_uint8(path)
        if scale > 1:
            img = cv2.resize(img, (img.shape[1] // scale, img.shape[0] // scale), interpolation=cv2.INTER_AREA)
        top = rng.integers(0, img.shape[0] - patch_size + 1, per_image)
        left = rng.integers(0, img.shape[1] - patch_size + 1, per_image)
        for t, l in zip(top, left):
            patches.append(img[t : t + patch_size, l : l + patch_size].transpose(2, 0, 1))
    return torch.from_numpy(np.stack(patches)).float()


@torch.no_grad()
def heldout_bpd(model: PatchFlow, patches_255: torch.Tensor) -> float:
    model.eval()
    g = torch.Generator().manual_seed(1234)
    x = dequantize(patches_255, generator=g)
    log_p = torch.cat([model.log_prob(chunk) for chunk in x.split(8192)])
    model.train()
    return float(model.bits_per_dim(log_p).mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["../shared/data/train"])
    parser.add_argument("--eval-dir", default="../shared/data/eval/kodak24")
    parser.add_argument("--out", required=True, help="output folder (weights, log)")
    parser.add_argument("--patch-size", type=int, default=6)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--clip", type=float, default=10.0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--time-limit", type=float, default=1e9, help="seconds; stop (and save) after this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from restorer_app import runtime

    runtime.configure()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = PatchFlowConfig(patch_size=args.patch_size, blocks=args.blocks, hidden=args.hidden)
    model = PatchFlow(config, seed=args.seed)
    sampler = PatchSampler(args.data, args.patch_size, "cpu", seed=args.seed)
    held = {"kodak24_native": heldout(args.eval_dir, args.patch_size, 200, 1),
            "kodak24_x2area": heldout(args.eval_dir, args.patch_size, 200, 2)}
    g = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():  # data-dependent ActNorm initialisation on a first batch
        model.train()
        model.log_prob(dequantize(sampler.sample(args.batch), generator=g))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps)))

    log = []
    started = time.perf_counter()
    skipped, window = 0, []

    def evaluate(step):
        entry = {"step": step, "patches_seen": step * args.batch, "seconds": round(time.perf_counter() - started, 1),
                 "train_bpd": float(np.mean(window)) if window else None, "skipped": skipped}
        for name, patches in held.items():
            entry[f"heldout_bpd_{name}"] = round(heldout_bpd(model, patches), 4)
        log.append(entry)
        window.clear()
        print(json.dumps(entry), flush=True)
        (out / "log.json").write_text(json.dumps(log, indent=1))

    evaluate(0)
    step = 0
    for step in range(1, args.steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr_at(step - 1)
        x = dequantize(sampler.sample(args.batch), generator=g).reshape(args.batch, -1)
        loss = -model.log_prob(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            skipped += 1
            continue
        opt.step()
        window.append(float(model.bits_per_dim(-loss.detach())))
        if step % args.eval_every == 0 or step == args.steps:
            evaluate(step)
            save(model, out, args, log, step)
        if time.perf_counter() - started > args.time_limit:
            print(f"time limit reached at step {step}", flush=True)
            break
    if not log or log[-1]["step"] != step:
        evaluate(step)
    save(model, out, args, log, step)


def save(model, out, args, log, step) -> None:
    info = {
        "training_data": [str(d) for d in args.data],
        "steps": step,
        "batch": args.batch,
        "lr": args.lr,
        "heldout": {k: v for k, v in log[-1].items() if k.startswith("heldout")},
        "date": time.strftime("%Y-%m-%d"),
        "trainer": "benchmarks.patchnr_train",
    }
    save_patch_flow(model, out / "patchnr.safetensors", info)


if __name__ == "__main__":
    main()
