"""Restoration quality on real photos: ours (per preset / model / strength) against baselines.

Splits (DESIGN.md, "Data"): ``--split validation`` is Kodak24, the only set anything may be tuned
on; ``--split test`` is McMaster18 + CBSD68, for the numbers we report. The split is recorded in
the JSON, and ``--sets`` (an override) is recorded as the split it matches or as "custom".

Crops: every photo is downscaled ``--downscale`` times (antialiased Lanczos, integer factor >= 2;
1 = native, only to compare with old logs), then centre-cropped to ``--crop`` (128) pixels;
``--limit`` (24) photos per set. ``--extra-crops-256 N`` adds 256x256 centre crops of the first N
photos of each set, reported as their own group ``<set>@256`` (cut from the native photo where
the downscaled one is under 256 px a side). Image i of a set is degraded with seed
``seed * 1000 + i`` (its 256 crop with ``seed * 1000 + 500 + i``).

Degradations: any name of ``restorer_app.restore.degradations.DEGRADATIONS`` (default: all).
Baselines come from ``baselines.baselines_for``; a degradation it does not know gets the
inpainting baselines when it returns a mask (``scratches``) and none otherwise. Our scope follows
what a user would ask for: ``image`` where damage covers the whole picture (noise above film grain,
JPEG), ``mask`` where the only damage is the mask (``holes``, ``scratches``: grain sigma <= 5 is
part of the photo and stays, as it does for the inpainting baselines).

Report: mean PSNR / SSIM / MS-SSIM (and PSNR of the damaged pixels for mask damage) of the input,
each preset and each baseline; per-image wins and losses of each preset against each baseline
(and the input) with the worst and median margin; all of it again on the smooth subset, the crops
whose clean mean gradient magnitude is in the lowest quartile of their group (flagged per image in
the JSON), where a prior that invents texture shows. Writes ``results/quality_<tag>.json`` (device,
versions, settings, split, per-image rows), ``results/quality_<tag>.md`` and contact sheets.

    python -m benchmarks.quality --split validation --presets fast standard best --baselines --tag val
    python -m benchmarks.quality --split test --limit 2 --presets fast --degradations noise25 holes \\
        --baselines --tag smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.baselines import BASELINES, baselines_for
from benchmarks.datasets import SPLITS, eval_crops, split_sets
from benchmarks.metrics import masked_psnr, ms_ssim, psnr, ssim
from benchmarks.start_points import use_start_point
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.degradations import DEGRADATIONS, degradation_info, degrade
from restorer_app.restore.pipeline import Plan, restore_image
from restorer_app.restore.settings import PRESETS, RestoreSettings

RESULTS = Path(__file__).parent / "results"
#: Film grain up to this sigma (0..255) is part of the photo (the "scratches" degradation's grain):
#: with a mask and no other damage above it, ours runs in scope "mask" like the inpainting baselines.
GRAIN_KEPT_SIGMA = 5
#: The smooth subset: crops whose clean mean gradient magnitude is at or below this quantile of
#: their group (set and crop size).
SMOOTH_QUANTILE = 0.25
#: Baselines that fill a mask and need nothing tuned per degradation.
INPAINTING_BASELINES = ["telea", "navier_stokes"]


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


def run_ours(degraded, mask, model, preset, strength, device, plans: list, scope: str = "auto") -> np.ndarray:
    settings = RestoreSettings(preset=preset, strength=strength, device=device, scope=scope)
    return restore_image(degraded, mask, settings, model=model, on_plan=plans.append)


# -- what runs on each degradation ------------------------------------------------------------
def scope_for(info: dict, mask) -> str:
    """``mask`` when the mask is the only damage (besides film grain), else ``image``."""
    if mask is None:
        return "image"
    everywhere = info.get("jpeg_quality") is not None or (info.get("sigma") or 0) > GRAIN_KEPT_SIGMA
    return "image" if everywhere else "mask"


def baselines_for_damage(degradation: str, mask) -> list[str]:
    """``baselines_for`` where it knows the degradation; else inpainting where there is a mask."""
    try:
        return baselines_for(degradation)
    except ValueError:
        return list(INPAINTING_BASELINES) if mask is not None else []


# -- the smooth subset and head-to-head counts (pure functions of the rows) -------------------
def mean_gradient(img: np.ndarray) -> float:
    """Mean gradient magnitude of the luminance (central differences, 0..255 scale)."""
    lum = (img.mean(axis=2) if img.ndim == 3 else img).astype(np.float64) * 255.0
    gy, gx = np.gradient(lum)
    return float(np.mean(np.hypot(gx, gy)))


def smooth_flags(gradients: list[float], quantile: float = SMOOTH_QUANTILE) -> list[bool]:
    """True for the values at or below the ``quantile`` of the list (the smoothest crops)."""
    if not gradients:
        return []
    threshold = float(np.quantile(np.asarray(gradients, np.float64), quantile))
    return [g <= threshold for g in gradients]


def _finite_mean(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def summarise(rows, subset: str = "all") -> list[dict]:
    """Mean metrics per (group, degradation, method); ``subset`` "smooth" keeps smooth crops only."""
    rows = [r for r in rows if subset == "all" or r["smooth"]]
    keys = sorted({(r["group"], r["degradation"], r["method"]) for r in rows},
                  key=lambda k: (k[0], k[1], k[2] != "input", not k[2].startswith("ours"), k[2]))
    table = []
    for group, degradation, method in keys:
        mine = [r for r in rows if (r["group"], r["degradation"], r["method"]) == (group, degradation, method)]
        entry = {"group": group, "degradation": degradation, "method": method, "subset": subset, "images": len(mine)}
        for metric in ("psnr", "ssim", "ms_ssim", "psnr_damaged", "seconds"):
            entry[metric] = _finite_mean(r.get(metric) for r in mine)
        table.append(entry)
    return table


def head_to_head(rows, metric: str = "psnr", subset: str = "all") -> list[dict]:
    """Per (group, degradation, ours, other): images where ours beats the other on ``metric``.

    ``other`` is every non-ours method, the input included. Margins are ours minus other in dB
    on the same crop and damage; ``worst`` is the smallest (most negative) margin.
    """
    rows = [r for r in rows if (subset == "all" or r["smooth"]) and np.isfinite(r.get(metric, np.nan))]
    by_key = {}
    for r in rows:
        by_key.setdefault((r["group"], r["degradation"]), {}).setdefault(r["method"], {})[r["image"]] = r[metric]
    out = []
    for (group, degradation), methods in sorted(by_key.items()):
        ours = sorted(m for m in methods if m.startswith("ours"))
        others = sorted((m for m in methods if not m.startswith("ours")), key=lambda m: (m != "input", m))
        for mine in ours:
            for other in others:
                common = sorted(set(methods[mine]) & set(methods[other]))
                if not common:
                    continue
                margins = np.array([methods[mine][i] - methods[other][i] for i in common])
                out.append({
                    "group": group, "degradation": degradation, "ours": mine, "other": other, "metric": metric,
                    "subset": subset, "images": len(common), "wins": int((margins > 0).sum()),
                    "losses": int((margins < 0).sum()), "worst": float(margins.min()),
                    "median": float(np.median(margins)), "worst_image": common[int(margins.argmin())],
                })
    return out


def wins_report(rows) -> list[dict]:
    """Head-to-head on PSNR, and on damaged-pixel PSNR where the damage has a mask; all and smooth."""
    out = []
    for subset in ("all", "smooth"):
        for metric in ("psnr", "psnr_damaged"):
            out += head_to_head(rows, metric, subset)
    return out


# -- the run ----------------------------------------------------------------------------------
def split_of(sets: list[str]) -> str:
    for name, members in SPLITS.items():
        if tuple(sets) == members:
            return name
    return "custom"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=list(SPLITS), default="validation",
                        help="validation = kodak24 (tune here only); test = mcmaster18 + cbsd68 (report)")
    parser.add_argument("--sets", nargs="+", help="override the split's sets (recorded as split 'custom')")
    parser.add_argument("--limit", type=int, default=24, help="photos per set")
    parser.add_argument("--downscale", type=int, default=2, help="antialiased downscale factor (>= 2; 1 = native)")
    parser.add_argument("--crop", type=int, default=128, help="centre crop side after downscaling (0 = whole photo)")
    parser.add_argument("--extra-crops-256", type=int, default=0, metavar="N", help="also N 256x256 crops per set")
    parser.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS))
    parser.add_argument("--presets", nargs="*", default=["standard"], help="our presets to run (none: baselines only)")
    parser.add_argument("--strengths", nargs="+", default=["auto"], help="auto and/or lambda values")
    parser.add_argument("--scope", choices=["auto", "mask", "image"], default="auto",
                        help="ours with a mask: auto = mask when the mask is the only damage, else image")
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baselines", action="store_true", help="also run the classical baselines")
    parser.add_argument("--dip-iterations", type=int, default=0, help="run Deep Image Prior with this many steps")
    parser.add_argument("--tag", default="run", help="name of this experiment in the output files")
    parser.add_argument("--seed", type=int, default=0)
    add_extra_preset_argument(parser)
    parser.add_argument("--start", help="MAP start point instead of the product's (benchmarks/start_points.py)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.downscale != 1 and args.downscale < 2:
        raise SystemExit("quality.py: error: --downscale: expected 1 (native) or an integer >= 2")
    for degradation in args.degradations:
        degradation_info(degradation)  # unknown names fail before any work
    sets = list(args.sets) if args.sets else list(split_sets(args.split))
    args.split = split_of(sets)
    args.sets = sets
    runtime.configure()
    register_extra_presets(args.extra_preset)
    if args.start:
        use_start_point(args.start)

    model = load_model(args.model, args.device)
    rows, sheets, skipped = [], {}, set()
    for set_name in sets:
        crops = eval_crops(set_name, crop=args.crop, scale=args.downscale, limit=args.limit,
                           extra_256=args.extra_crops_256)
        base_count = sum(1 for c in crops if not c.name.endswith("@256"))
        groups = [set_name if i < base_count else f"{set_name}@256" for i in range(len(crops))]
        gradients = [mean_gradient(c.image) for c in crops]
        flags = [False] * len(crops)
        for group in dict.fromkeys(groups):
            members = [i for i, g in enumerate(groups) if g == group]
            for i, flag in zip(members, smooth_flags([gradients[i] for i in members])):
                flags[i] = flag
        for index, crop in enumerate(crops):
            number = index if index < base_count else 500 + index - base_count
            seed = args.seed * 1000 + number
            for degradation in args.degradations:
                info = degradation_info(degradation)
                degraded, mask = degrade(crop.image, degradation, np.random.default_rng(seed))
                base = {"set": set_name, "group": groups[index], "image": crop.name, "degradation": degradation}
                extra = {"photo": crop.photo, "crop": list(crop.image.shape[:2]), "scale": crop.scale, "seed": seed,
                         "gradient": gradients[index], "smooth": flags[index],
                         "damaged_fraction": None if mask is None else float(mask.mean())}
                rows.append({**base, **extra, "method": "input", **score(crop.image, degraded, mask), "seconds": 0.0})
                outputs = {"input": degraded}
                scope = scope_for(info, mask) if args.scope == "auto" else args.scope
                for preset in args.presets:
                    for strength in args.strengths:
                        plans: list[Plan] = []
                        started = time.perf_counter()
                        restored = run_ours(degraded, mask, model, preset, strength, args.device, plans,
                                            scope=scope if mask is not None else "auto")
                        seconds = time.perf_counter() - started
                        name = f"ours:{preset}" + ("" if strength == "auto" else f"@{strength}")
                        outputs[name] = restored
                        rows.append({**base, **extra, "method": name, **score(crop.image, restored, mask),
                                     "seconds": seconds, "scope": plans[0].scope, "lambda": plans[0].lam,
                                     "sigma_est": plans[0].sigma * 255})
                if args.baselines:
                    for baseline in baselines_for_damage(degradation, mask):
                        started = time.perf_counter()
                        try:
                            restored = BASELINES[baseline](degraded, mask, info)
                        except KeyError as missing:  # no tuned constant for this degradation
                            skipped.add(f"{baseline} on {degradation}: no tuned constant {missing}")
                            continue
                        outputs[baseline] = restored
                        rows.append({**base, **extra, "method": baseline, **score(crop.image, restored, mask),
                                     "seconds": time.perf_counter() - started})
                if args.dip_iterations:
                    from benchmarks.dip import dip

                    started = time.perf_counter()
                    restored = dip(degraded, mask, info, iterations=args.dip_iterations)
                    outputs["dip"] = restored
                    rows.append({**base, **extra, "method": f"dip@{args.dip_iterations}",
                                 **score(crop.image, restored, mask), "seconds": time.perf_counter() - started})
                if index < 3:
                    sheets.setdefault((set_name, degradation), []).append((crop.image, outputs))
                print(_line(rows, base), flush=True)
    write_results(args, rows, sheets, model, sorted(skipped))


def _line(rows, base) -> str:
    mine = [r for r in rows if all(r[k] == base[k] for k in base)]
    smooth = " (smooth)" if mine and mine[0]["smooth"] else ""
    return f"{base['group']}/{base['image']}{smooth} {base['degradation']}: " + ", ".join(
        f"{r['method']} {r['psnr']:.2f}" + (f"/{r['psnr_damaged']:.2f}" if "psnr_damaged" in r else "") for r in mine
    )


# -- output -----------------------------------------------------------------------------------
def _fmt(v, d=2) -> str:
    return "" if v is None else f"{v:.{d}f}"


def markdown(table, smooth_table=None, wins=None) -> str:
    """Means (all crops, and the smooth subset beside them), then the head-to-head counts."""
    smooth = {(e["group"], e["degradation"], e["method"]): e for e in (smooth_table or [])}
    lines = ["| set | damage | method | n | PSNR | SSIM | MS-SSIM | PSNR damaged px | smooth n | smooth PSNR | "
             "smooth SSIM | smooth PSNR damaged | s/image |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in table:
        s = smooth.get((e["group"], e["degradation"], e["method"]), {})
        lines.append(f"| {e['group']} | {e['degradation']} | {e['method']} | {e['images']} | {_fmt(e['psnr'])} | "
                     f"{_fmt(e['ssim'], 4)} | {_fmt(e['ms_ssim'], 4)} | {_fmt(e['psnr_damaged'])} | "
                     f"{s.get('images', 0)} | {_fmt(s.get('psnr'))} | {_fmt(s.get('ssim'), 4)} | "
                     f"{_fmt(s.get('psnr_damaged'))} | {_fmt(e['seconds'], 1)} |")
    if wins:
        lines += ["", "Wins of ours against each baseline and the input, per image (margin = ours - other, dB; "
                      "smooth = lowest-quartile-gradient crops):", "",
                  "| set | damage | ours | vs | metric | wins/n | worst (image) | median | smooth wins/n | "
                  "smooth worst |", "|---|---|---|---|---|---|---|---|---|---|"]
        smooth_wins = {(w["group"], w["degradation"], w["ours"], w["other"], w["metric"]): w
                       for w in wins if w["subset"] == "smooth"}
        for w in (w for w in wins if w["subset"] == "all"):
            s = smooth_wins.get((w["group"], w["degradation"], w["ours"], w["other"], w["metric"]))
            lines.append(f"| {w['group']} | {w['degradation']} | {w['ours']} | {w['other']} | {w['metric']} | "
                         f"{w['wins']}/{w['images']} | {w['worst']:+.2f} ({w['worst_image']}) | {w['median']:+.2f} | "
                         + (f"{s['wins']}/{s['images']} | {s['worst']:+.2f} |" if s else " | |"))
    return "\n".join(lines)


def _versions() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("numpy", "pillow", "opencv-python", "opencv-python-headless", "scikit-image", "bm3d",
                 "pytorch-msssim"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        versions["git"] = commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        versions["git"] = None
    return versions


def write_results(args, rows, sheets, model, skipped=()) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    table, smooth_table, wins = summarise(rows), summarise(rows, "smooth"), wins_report(rows)
    report = {
        "benchmark": "quality",
        "tag": args.tag,
        "split": args.split,
        "sets": args.sets,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "versions": _versions(),
        "model": {"path": str(args.model), "info": getattr(model, "info", {})},
        "settings": {k: v for k, v in vars(args).items()},
        "crops": {"downscale": args.downscale, "resample": "Pillow LANCZOS on 8-bit", "crop": args.crop,
                  "limit": args.limit, "extra_crops_256": args.extra_crops_256,
                  "seeds": "seed * 1000 + image index (256 crops: + 500)"},
        "smooth_subset": f"clean mean gradient magnitude <= the {SMOOTH_QUANTILE} quantile of its group",
        "scope_rule": f"mask when the mask is the only damage (noise sigma <= {GRAIN_KEPT_SIGMA}, no JPEG), else image",
        "skipped": list(skipped),
        "summary": table,
        "summary_smooth": smooth_table,
        "wins": wins,
        "rows": rows,
    }
    (RESULTS / f"quality_{args.tag}.json").write_text(json.dumps(report, indent=1, default=float))
    crops = f"{args.crop}px centre crops" if args.crop else "whole photos"
    if args.extra_crops_256:
        crops += f" + {args.extra_crops_256} 256px crops"
    header = (f"Split {args.split} ({', '.join(args.sets)}); {args.limit} photos per set downscaled "
              f"{args.downscale}x (Lanczos), {crops}; seed {args.seed}; device {args.device}.\n\n")
    text = header + markdown(table, smooth_table, wins)
    (RESULTS / f"quality_{args.tag}.md").write_text(text + "\n")
    print(text)
    for note in skipped:
        print(f"skipped: {note}")
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
            img = clean if name == "clean" else outputs.get(name)
            if img is None or img.shape[:2] != (h, w):
                continue
            sheet.paste(Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)), (c * w, r * (h + 14) + 14))
            draw.text((c * w + 2, r * (h + 14)), name, fill="black")
    sheet.save(path)


if __name__ == "__main__":
    main()
