"""PatchNR (patch-flow prior, pixel-space MAP) against the input, NLM and BM3D on photo crops.

Protocol: each photo downscaled 2x with cv2.INTER_AREA (on 8-bit levels), 128x128 centre crop,
damage ``degrade(clean, name, 1000 + index)``. Tune on Kodak24 (``--sets kodak24``) only; report
McMaster18 and CBSD68. Each ``--grid`` entry is one PatchNR setting (JSON, keys of
``restore_patchnr``: reg, lam_factor, steps, lr, stride). Writes
``benchmarks/results/patchnr_<tag>.json`` (device, versions, settings, per-image rows) and prints
a markdown table of means; seconds are wall time on one thread, also as minutes per megapixel.

    OMP_NUM_THREADS=1 python -m benchmarks.patchnr --model runs/patchnr/p6/patchnr.safetensors \
        --sets kodak24 --limit 8 --degradations noise25 --grid '{"reg": 1}' '{"reg": 2}' --tag val
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.baselines import BASELINES, baselines_for
from benchmarks.datasets import centre_crop, load_eval_set
from benchmarks.metrics import masked_psnr, psnr, ssim
from restorer_app.restore.degradations import degradation_info, degrade

RESULTS = Path(__file__).parent / "results"
CACHE = Path(__file__).resolve().parents[1] / "runs" / "patchnr" / "baseline_cache.json"


def crops(set_name: str, limit: int | None, crop: int = 128, scale: int = 2):
    """(name, clean float32 crop) per photo: INTER_AREA downscale on 8-bit levels, centre crop."""
    out = []
    for item in load_eval_set(set_name, limit=limit):
        u8 = np.round(item.image * 255).astype(np.uint8)
        small = cv2.resize(u8, (u8.shape[1] // scale, u8.shape[0] // scale), interpolation=cv2.INTER_AREA)
        out.append((item.name, np.ascontiguousarray(centre_crop(small, crop)).astype(np.float32) / 255.0))
    return out


def score(clean, restored, mask) -> dict:
    row = {"psnr": psnr(clean, restored), "ssim": ssim(clean, restored)}
    if mask is not None:
        row["psnr_damaged"] = masked_psnr(clean, restored, mask)
    return row


def setting_name(setting: dict) -> str:
    return "patchnr" + "".join(f" {k}={v}" for k, v in sorted(setting.items()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/patchnr.safetensors")
    parser.add_argument("--sets", nargs="+", default=["kodak24"])
    parser.add_argument("--limit", type=int, default=None, help="photos per set")
    parser.add_argument("--skip", type=int, default=0, help="skip the first photos of each set")
    parser.add_argument("--degradations", nargs="+", default=["noise25"])
    parser.add_argument("--grid", nargs="*", default=["{}"], help="PatchNR settings, JSON each")
    parser.add_argument("--baselines", action="store_true", help="also run NLM/BM3D/Telea (cached)")
    parser.add_argument("--tag", default="run")
    args = parser.parse_args(argv)

    from restorer_app import runtime
    from restorer_app.flow.patch_flow import load_patch_flow
    from benchmarks.patchnr_solver import DEFAULTS, restore_patchnr, sigma_for

    runtime.configure()
    model = load_patch_flow(args.model)
    grid = [json.loads(g) for g in args.grid]
    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    rows = []
    for set_name in args.sets:
        for index, (name, clean) in enumerate(crops(set_name, args.limit)):
            if index < args.skip:
                continue
            for degradation in args.degradations:
                info = degradation_info(degradation)
                degraded, mask = degrade(clean, degradation, 1000 + index)
                base = {"set": set_name, "image": name, "degradation": degradation}
                rows.append({**base, "method": "input", **score(clean, degraded, mask), "seconds": 0.0})
                sigma = sigma_for(degraded, mask)
                for setting in grid:
                    full = {**DEFAULTS, **setting}
                    started = time.perf_counter()
                    restored = restore_patchnr(degraded, mask, sigma, model=model, seed=index,
                                               paste_known=degradation == "holes", **full)
                    seconds = time.perf_counter() - started
                    rows.append({**base, "method": setting_name(setting), "settings": full, "sigma_est": sigma * 255,
                                 **score(clean, restored, mask), "seconds": seconds})
                if args.baselines:
                    for baseline in baselines_for(degradation):
                        key = f"area2/128/{set_name}/{name}/{degradation}/{baseline}"
                        if key not in cache:
                            started = time.perf_counter()
                            restored = BASELINES[baseline](degraded, mask, info)
                            cache[key] = {**score(clean, restored, mask), "seconds": time.perf_counter() - started}
                            CACHE.parent.mkdir(parents=True, exist_ok=True)
                            CACHE.write_text(json.dumps(cache))
                        rows.append({**base, "method": baseline, **cache[key]})
                mine = [r for r in rows if all(r[k] == base[k] for k in base)]
                print(f"{set_name}/{name} {degradation}: " + ", ".join(f"{r['method']} {r['psnr']:.2f}" for r in mine), flush=True)
    write(args, rows, model)


def summarise(rows) -> list[dict]:
    keys = []
    for r in rows:
        key = (r["set"], r["degradation"], r["method"])
        if key not in keys:
            keys.append(key)
    table = []
    for key in keys:
        mine = [r for r in rows if (r["set"], r["degradation"], r["method"]) == key]
        entry = {"set": key[0], "degradation": key[1], "method": key[2], "images": len(mine)}
        for metric in ("psnr", "ssim", "psnr_damaged", "seconds"):
            values = [r[metric] for r in mine if metric in r and np.isfinite(r[metric])]
            entry[metric] = float(np.mean(values)) if values else None
        entry["min_per_mp"] = None if not entry["seconds"] else entry["seconds"] / (128 * 128 / 1e6) / 60
        table.append(entry)
    return table


def markdown(table) -> str:
    fmt = lambda v, d=2: "" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = ["| set | damage | method | n | PSNR | SSIM | PSNR damaged px | s/image | min/MP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in table:
        lines.append(f"| {e['set']} | {e['degradation']} | {e['method']} | {e['images']} | {fmt(e['psnr'])} | "
                     f"{fmt(e['ssim'], 4)} | {fmt(e['psnr_damaged'])} | {fmt(e['seconds'], 1)} | {fmt(e['min_per_mp'], 1)} |")
    return "\n".join(lines)


def write(args, rows, model) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = summarise(rows)
    report = {
        "benchmark": "patchnr",
        "tag": args.tag,
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "protocol": "photo downscaled 2x cv2.INTER_AREA (8-bit), 128x128 centre crop, degrade(clean, name, 1000 + index)",
        "model": {"path": str(args.model), "info": getattr(model, "info", {})},
        "settings": vars(args),
        "summary": table,
        "rows": rows,
    }
    (RESULTS / f"patchnr_{args.tag}.json").write_text(json.dumps(report, indent=1, default=float))
    print(markdown(table))


if __name__ == "__main__":
    main()
