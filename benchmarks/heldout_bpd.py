"""Held-out bits/dim of weight files on the 64x64 grid patches of a photo folder.

Every non-overlapping 64x64 patch of every image (Kodak24: 2,304 patches), dequantised with a
fixed seed, so numbers from different models are comparable. ``--record`` writes the figure
into the weights' metadata (``heldout_bpd``, ``heldout_set``, ``heldout_patches``).
``--crops`` reads instead the quality benchmark's crops of the named sets (downscaled 2x, 128x128
centre crops, 4 patches each): the test split's photos, which no setting was tuned on.

    python benchmarks/heldout_bpd.py models/flow-prior.safetensors --data ../shared/data/eval/kodak24
    python -m benchmarks.heldout_bpd old.safetensors new.safetensors --crops mcmaster18 cbsd68 --limit 8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from restorer_app import runtime
from restorer_app.flow.weights import load_model, save_model
from restorer_app.training.data import dequantize, grid_patches, heldout_patches


@torch.no_grad()
def heldout_bpd(model, patches: torch.Tensor, seed: int = 1234) -> float:
    generator = torch.Generator().manual_seed(seed)
    values = [model.bits_per_dim(model.log_prob(dequantize(chunk, generator))) for chunk in patches.split(128)]
    return float(torch.cat(values).mean())


def crop_patches(sets: list[str], limit: int, patch_size: int) -> torch.Tensor:
    """Grid patches of the quality benchmark's crops (8-bit levels as float, like heldout_patches)."""
    from benchmarks.datasets import eval_crops  # here, so the Kodak24 form also runs as a plain script

    patches = [grid_patches(torch.from_numpy(np.round(crop.image * 255.0)).permute(2, 0, 1), patch_size)
               for name in sets for crop in eval_crops(name, limit=limit)]
    return torch.cat(patches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/eval/kodak24")
    parser.add_argument("--crops", nargs="+", metavar="SET", help="the quality benchmark's crops of these sets instead of --data")
    parser.add_argument("--limit", type=int, default=8, help="photos per set with --crops")
    parser.add_argument("--record", action="store_true", help="store the result in each file's metadata")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args()
    if args.crops and args.record:
        parser.error("--record stores the Kodak24 figure; it does not combine with --crops")
    runtime.configure()
    held_out = "+".join(args.crops) if args.crops else args.data.name
    results, patches_by_size = [], {}
    for path in args.weights:
        model = load_model(path)
        size = model.config.patch_size
        if size not in patches_by_size:  # read the photos once for every model that cuts them alike
            patches_by_size[size] = crop_patches(args.crops, args.limit, size) if args.crops else heldout_patches(args.data, size)
        patches = patches_by_size[size]
        bpd = heldout_bpd(model, patches)
        info = dict(model.info)
        results.append({"weights": str(path), "heldout_set": held_out, "patches": len(patches), "bpd": bpd,
                        "steps": info.get("steps"), "patches_seen": info.get("patches_seen"), "config": info["config"]})
        print(f"| {path.name} | {info['config']['hidden']} | {info.get('patches_seen')} | {bpd:.4f} |", flush=True)
        if args.record:
            info.pop("config")
            info.update(heldout_bpd=bpd, heldout_set=held_out, heldout_patches=len(patches))
            save_model(model, path, info)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
