"""Restoration quality on real photos: ours (per preset / model / strength) against baselines.

For each evaluation image and standard degradation (DESIGN.md) it reports PSNR, SSIM and
MS-SSIM of the degraded input, of our restoration and of the classical baselines, plus PSNR
inside the damaged pixels where there is a mask. Writes JSON (device, versions, settings,
per-image numbers), a markdown table of means and PNG contact sheets.

    python benchmarks/quality.py --sets kodak24 --limit 6 --crop 128 \
        --degradations noise15 noise25 jpeg20 holes multi --presets standard \
        --baselines --tag bundled
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.baselines import BASELINES, baselines_for
from benchmarks.datasets import load_eval_set
from benchmarks.metrics import masked_psnr, ms_ssim, psnr, ssim
from benchmarks.start_points import use_start_point
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.degradations import degradation_info, degrade
from restorer_app.restore.pipeline import Plan, restore_image
from restorer_app.restore.settings import PRESETS, RestoreSettings

RESULTS = Path(__file__).parent / "results"


def score(clean, restored, mask) -> dict:
    row = {"psnr": psnr(clean, restored), "ssim": ssim(clean, restored), "ms_ssim": ms_ssim(clean, restored)}
    if mask is not None:
        row["psnr_damaged"] = masked_psnr(clean, restored, mask)
    return row


def add_extra_preset_argument(parser) -> None:
    parser.add_argument("--extra-preset", action="append", default=[], metavar="NAME=JSON",
                        help='define a preset for this run, e.g. half=\'{"stages": [[1, 10], [2, 10], [3, 30]], '
                             '"lr": 0.02, "fp32_tail": 10, "flips": 4}\'')


def register_extra_presets(definitions: list[str]) -> None:
    """Experimental schedules from the command line, usable by name like the product's presets."""
    for definition in definitions:
        name, _, schedule = definition.partition("=")
        PRESETS[name] = json.loads(schedule)


def run_ours(degraded, mask, model, preset, strength, device, plans: list) -> np.ndarray:
    settings = RestoreSettings(preset=preset, strength=strength, device=device)
    return restore_image(degraded, mask, settings, model=model, on_plan=plans.append)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["kodak24"])
    parser.add_argument("--limit", type=int, default=6, help="images per set")
    parser.add_argument("--crop", type=int, default=128, help="centre crop side (0 = full image)")
    parser.add_argument("--degradations", nargs="+", default=["noise15", "noise25", "jpeg20", "holes", "multi"])
    parser.add_argument("--presets", nargs="*", default=["standard"], help="our presets to run (none: baselines only)")
    parser.add_argument("--strengths", nargs="+", default=["auto"], help="auto and/or lambda values")
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baselines", action="store_true", help="also run the classical baselines")
    parser.add_argument("--dip-iterations", type=int, default=0, help="run Deep Image Prior with this many steps")
    parser.add_argument("--tag", default="run", help="name of this experiment in the output files")
    parser.add_argument("--seed", type=int, default=0)
    add_extra_preset_argument(parser)
    parser.add_argument("--start", help="MAP start point instead of the product's (benchmarks/start_points.py)")
    args = parser.parse_args()
    runtime.configure()
    register_extra_presets(args.extra_preset)
    if args.start:
        use_start_point(args.start)

    model = load_model(args.model, args.device)
    crop = args.crop or None
    rows, sheets = [], {}
    for set_name in args.sets:
        for index, item in enumerate(load_eval_set(set_name, crop=crop, limit=args.limit)):
            for degradation in args.degradations:
                info = degradation_info(degradation)
                degraded, mask = degrade(item.image, degradation, np.random.default_rng(args.seed * 1000 + index))
                base = {"set": set_name, "image": item.name, "degradation": degradation}
                rows.append({**base, "method": "input", **score(item.image, degraded, mask), "seconds": 0.0})
                outputs = {"input": degraded}
                for preset in args.presets:
                    for strength in args.strengths:
                        plans: list[Plan] = []
                        started = time.perf_counter()
                        restored = run_ours(degraded, mask, model, preset, strength, args.device, plans)
                        seconds = time.perf_counter() - started
                        name = f"ours:{preset}" + ("" if strength == "auto" else f"@{strength}")
                        outputs[name] = restored
                        rows.append({**base, "method": name, **score(item.image, restored, mask), "seconds": seconds,
                                     "lambda": plans[0].lam, "sigma_est": plans[0].sigma * 255})
                if args.baselines:
                    for baseline in baselines_for(degradation):
                        started = time.perf_counter()
                        restored = BASELINES[baseline](degraded, mask, info)
                        outputs[baseline] = restored
                        rows.append({**base, "method": baseline, **score(item.image, restored, mask),
                                     "seconds": time.perf_counter() - started})
                if args.dip_iterations:
                    from benchmarks.dip import dip

                    started = time.perf_counter()
                    restored = dip(degraded, mask, info, iterations=args.dip_iterations)
                    outputs["dip"] = restored
                    rows.append({**base, "method": f"dip@{args.dip_iterations}", **score(item.image, restored, mask),
                                 "seconds": time.perf_counter() - started})
                if index < 3:
                    sheets.setdefault((set_name, degradation), []).append((item.image, outputs))
                print(_line(rows, base), flush=True)
    write_results(args, rows, sheets, model)


def _line(rows, base) -> str:
    mine = [r for r in rows if all(r[k] == base[k] for k in base)]
    return f"{base['set']}/{base['image']} {base['degradation']}: " + ", ".join(
        f"{r['method']} {r['psnr']:.2f}" for r in mine
    )


def summarise(rows) -> list[dict]:
    keys = sorted({(r["set"], r["degradation"], r["method"]) for r in rows}, key=lambda k: (k[0], k[1], k[2] != "input", k[2]))
    table = []
    for set_name, degradation, method in keys:
        mine = [r for r in rows if (r["set"], r["degradation"], r["method"]) == (set_name, degradation, method)]
        entry = {"set": set_name, "degradation": degradation, "method": method, "images": len(mine)}
        for metric in ("psnr", "ssim", "ms_ssim", "psnr_damaged", "seconds"):
            values = [r[metric] for r in mine if metric in r and np.isfinite(r[metric])]
            entry[metric] = float(np.mean(values)) if values else None
        table.append(entry)
    return table


def markdown(table) -> str:
    lines = ["| set | damage | method | PSNR | SSIM | MS-SSIM | PSNR damaged px | s/image |", "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, d=2: "" if v is None else f"{v:.{d}f}"  # noqa: E731
    for e in table:
        lines.append(f"| {e['set']} | {e['degradation']} | {e['method']} | {fmt(e['psnr'])} | {fmt(e['ssim'], 4)} | "
                     f"{fmt(e['ms_ssim'], 4)} | {fmt(e['psnr_damaged'])} | {fmt(e['seconds'], 1)} |")
    return "\n".join(lines)


def write_results(args, rows, sheets, model) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = summarise(rows)
    report = {
        "benchmark": "quality",
        "tag": args.tag,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "model": {"path": str(args.model), "info": getattr(model, "info", {})},
        "settings": {k: v for k, v in vars(args).items()},
        "crop": args.crop,
        "summary": table,
        "rows": rows,
    }
    (RESULTS / f"quality_{args.tag}.json").write_text(json.dumps(report, indent=1, default=float))
    (RESULTS / f"quality_{args.tag}.md").write_text(markdown(table) + "\n")
    print(markdown(table))
    for (set_name, degradation), entries in sheets.items():
        contact_sheet(entries, RESULTS / f"sheet_{args.tag}_{set_name}_{degradation}.png")


def contact_sheet(entries, path: Path) -> None:
    """Rows of images, columns: clean, then every method's output, at 100 %.

    The sheets show crops of the evaluation photos, so they stay out of git (.gitignore):
    regenerate them with the command that made the JSON.
    """
    from PIL import Image, ImageDraw

    names = ["clean"] + list(entries[0][1])
    h, w = entries[0][0].shape[:2]
    sheet = Image.new("RGB", (w * len(names), (h + 14) * len(entries)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (clean, outputs) in enumerate(entries):
        for c, name in enumerate(names):
            img = clean if name == "clean" else outputs[name]
            if img.shape[:2] != (h, w):
                continue
            sheet.paste(Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)), (c * w, r * (h + 14) + 14))
            draw.text((c * w + 2, r * (h + 14)), name, fill="black")
    sheet.save(path)


if __name__ == "__main__":
    main()
