"""Held-out bits/dim of weight files on the 64x64 grid patches of a photo folder.

Every non-overlapping 64x64 patch of every image (Kodak24: 2,304 patches), dequantised with a
fixed seed, so numbers from different models are comparable. ``--record`` writes the figure
into the weights' metadata (``heldout_bpd``, ``heldout_set``, ``heldout_patches``).

    python benchmarks/heldout_bpd.py models/flow-prior.safetensors --data ../shared/data/eval/kodak24
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from restorer_app import runtime
from restorer_app.flow.weights import load_model, save_model
from restorer_app.training.data import dequantize, heldout_patches


@torch.no_grad()
def heldout_bpd(model, patches: torch.Tensor, seed: int = 1234) -> float:
    generator = torch.Generator().manual_seed(seed)
    values = [model.bits_per_dim(model.log_prob(dequantize(chunk, generator))) for chunk in patches.split(128)]
    return float(torch.cat(values).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/eval/kodak24")
    parser.add_argument("--record", action="store_true", help="store the result in each file's metadata")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args()
    runtime.configure()
    results = []
    for path in args.weights:
        model = load_model(path)
        patches = heldout_patches(args.data, model.config.patch_size)
        bpd = heldout_bpd(model, patches)
        info = dict(model.info)
        results.append({"weights": str(path), "heldout_set": args.data.name, "patches": len(patches), "bpd": bpd,
                        "steps": info.get("steps"), "patches_seen": info.get("patches_seen"), "config": info["config"]})
        print(f"| {path.name} | {info['config']['hidden']} | {info.get('patches_seen')} | {bpd:.4f} |", flush=True)
        if args.record:
            info.pop("config")
            info.update(heldout_bpd=bpd, heldout_set=args.data.name, heldout_patches=len(patches))
            save_model(model, path, info)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
