"""Restoring with the detector's mask against inpainting with the true mask (issue 13).

On the detection benchmark's cases (``benchmarks/detection.py``: photos downscaled 2x, crops of at
most 256 px, scratches, dust and fibres on film grain), each crop is restored three ways:
ours with ``--mask auto`` (the detector's repair mask, scope "mask", the preset given), ours with the
true mask, and OpenCV Navier-Stokes / Telea inpainting given the true mask. The figure that
matters is PSNR inside the true damage: an archivist who lets the detector paint the mask must
get at least what a classical tool gives with a perfect mask. Damage the detector misses stays
in the output and counts against it.

``--prior-cue T`` adds a fourth way: the repair mask grown by the pixels that a ``fast``
restoration of the whole crop (no mask) moves by more than T/255 (``benchmarks/prior_cue.py``
measures that cue's recall and precision alone).

    python -m benchmarks.auto_mask --sets mcmaster18 cbsd68 --limit 6 [--first 4] [--cases 1 3-grey] --preset standard [--prior-cue 20] [--skip-true-mask]

Runs over parts of a set (``--first``) are summarised together, without restoring anything:

    python -m benchmarks.auto_mask --combine benchmarks/results/auto_mask_A.json benchmarks/results/auto_mask_B.json

The table gives each method's mean over the cases and, as "pooled", its PSNR over every damaged
pixel of the group (the crops of a set share one area, so each case weighs by its damaged
fraction): the mean lets every case count once, the pooled figure lets the worst cases weigh most.
The last column is the pooled gap between ours with the detector's mask and N-S with the true mask,
with a 95 % interval from resampling the cases (paired, 10,000 times): how much of that gap the
choice of photos alone could move.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.baselines import inpaint, navier_stokes, telea
from benchmarks.detection import build_cases
from benchmarks.metrics import masked_psnr, psnr
from benchmarks.prior_cue import prior_change
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.degradations import degradation_info
from restorer_app.restore.detect import repair_mask
from restorer_app.restore.pipeline import restore_image
from restorer_app.restore.settings import RestoreSettings

RESULTS = Path(__file__).parent / "results"
BOOTSTRAP_RESAMPLES = 10_000  # of the cases, for the pooled gap's interval
# what a row can hold, in the table's order (a run leaves out the true mask or the prior cue on request)
METHODS = ("input", "ours_auto_mask", "ours_true_mask", "navier_stokes_true_mask", "telea_true_mask", "ours_auto_prior_mask")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["mcmaster18", "cbsd68"])
    parser.add_argument("--limit", type=int, default=6, help="photos per set (every second one also in grey)")
    parser.add_argument("--first", type=int, default=0, help="start at this photo of each set (0-based): extend an earlier run")
    parser.add_argument("--cases", nargs="+", help="only these cases of the range (names as printed, e.g. 3-grey): rerun those a change touched")
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tag", default="test")
    parser.add_argument("--prior-cue", type=float, help="also restore with the repair mask plus the prior's cue at T/255")
    parser.add_argument("--skip-true-mask", action="store_true",
                        help="leave out our restoration with the true mask (half the time; it does not depend on the detector)")
    parser.add_argument("--combine", nargs="+", metavar="RESULT_JSON",
                        help="summarise earlier runs' result files together instead of running")
    args = parser.parse_args()
    if args.combine:
        combine(args.combine)
        return
    if not 0 <= args.first < args.limit:
        parser.error("--first must be at least 0 and below --limit")
    runtime.configure()
    model = load_model(default_model_path(), args.device)
    info = degradation_info("scratches")
    rows = []
    for set_name in args.sets:
        for case in build_cases(set_name, args.limit, args.first):
            if args.cases and case.name not in args.cases:
                continue
            started = time.perf_counter()
            detected = repair_mask(case.damaged)
            settings = RestoreSettings(preset=args.preset, device=args.device, scope="mask")
            auto = restore_image(case.damaged, detected, settings, model=model) if detected.any() else case.damaged
            row = {"set": set_name, "image": case.name, "damaged_fraction": float(case.mask.mean()),
                   "detected_fraction": float(detected.mean()), "seconds_detect_and_auto": time.perf_counter() - started}
            outputs = {"input": case.damaged, "ours_auto_mask": auto}
            if not args.skip_true_mask:
                outputs["ours_true_mask"] = restore_image(case.damaged, case.mask, settings, model=model)
            outputs["navier_stokes_true_mask"] = inpaint(navier_stokes, case.damaged, case.mask, info)
            outputs["telea_true_mask"] = inpaint(telea, case.damaged, case.mask, info)
            if args.prior_cue is not None:
                grown = detected | (prior_change(case.damaged, model, args.device) > args.prior_cue)
                outputs["ours_auto_prior_mask"] = restore_image(case.damaged, grown, settings, model=model)
                row["prior_mask_fraction"] = float(grown.mean())
            for method, output in outputs.items():
                row[method] = {"psnr": psnr(case.clean, output), "psnr_damaged": masked_psnr(case.clean, output, case.mask)}
            rows.append(row)
            print(f"{set_name}/{case.name}: damaged px  auto {row['ours_auto_mask']['psnr_damaged']:.2f}  "
                  + (f"true {row['ours_true_mask']['psnr_damaged']:.2f}  " if not args.skip_true_mask else "")
                  + f"N-S {row['navier_stokes_true_mask']['psnr_damaged']:.2f}  "
                  f"Telea {row['telea_true_mask']['psnr_damaged']:.2f}"
                  + (f"  auto+prior {row['ours_auto_prior_mask']['psnr_damaged']:.2f}" if args.prior_cue is not None else ""),
                  flush=True)
    unknown = sorted(set(args.cases or ()) - {r["image"] for r in rows})
    if unknown:
        print(f"--cases not in the range, not measured: {' '.join(unknown)}")
    summary = summarise(rows, _measured(rows), by_colour=False)
    report = {"benchmark": "auto_mask", "device": args.device, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version(), "model": str(default_model_path()),
              "first": args.first, "limit": args.limit, "only_cases": args.cases, "preset": args.preset, "prior_cue": args.prior_cue, "skip_true_mask": args.skip_true_mask, "cases": "benchmarks/detection.py build_cases", "summary": summary, "rows": rows}
    out = RESULTS / f"auto_mask_{args.tag}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


def _pooled(group: list[dict], method: str) -> float:
    """PSNR over every damaged pixel of ``group``: its cases' mean squared errors weighted by
    their damaged fractions (one crop area per set)."""
    every_case = np.arange(len(group))
    return float(-10 * np.log10(_pooled_error(group, method, every_case)))


def pooled_gap(group: list[dict], resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Ours with the detector's mask less N-S with the true mask, pooled over ``group``, and its 95 %
    interval from a paired bootstrap over the cases (seed 0): a few hard cases carry the pooled
    figure, so whether a gap of a few hundredths of a dB is more than the choice of photos needs
    saying."""

    def gap(picks: np.ndarray) -> np.ndarray:
        return 10 * np.log10(_pooled_error(group, "navier_stokes_true_mask", picks)
                             / _pooled_error(group, "ours_auto_mask", picks))

    picks = np.random.default_rng(0).integers(0, len(group), size=(resamples, len(group)))
    low, high = np.percentile(gap(picks), [2.5, 97.5])
    return {"gap": float(gap(np.arange(len(group)))), "ci95": [float(low), float(high)], "resamples": resamples}


def _pooled_error(group: list[dict], method: str, picks: np.ndarray) -> np.ndarray:
    """Mean squared error inside the damage over the cases ``picks`` (indices into ``group``; each
    row of a 2-D array is one resample), every case weighed by its damaged fraction."""
    weights = np.array([r["damaged_fraction"] for r in group])[picks]
    errors = np.array([10 ** (-r[method]["psnr_damaged"] / 10) for r in group])[picks]
    return (weights * errors).sum(axis=-1) / weights.sum(axis=-1)


def summarise(rows: list[dict], methods: list[str], by_colour: bool) -> list[dict]:
    """Print and return, per set (and with ``by_colour`` per set's colour and grey cases), each
    method's mean and pooled PSNR inside the damage, how many cases ours with the detector's
    mask matched or beat Navier-Stokes given the true mask, and the pooled gap between the two
    with its bootstrap interval."""
    print("\n| group | images | " + " | ".join(f"{m} mean / pooled" for m in methods)
          + " | auto >= N-S (images) | auto - N-S pooled (95 % interval) |")
    print("|---|---|" + "---|" * (len(methods) + 2))
    summary = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        in_set = [r for r in rows if r["set"] == set_name]
        groups = [(set_name, in_set)]
        if by_colour:
            groups += [(f"{set_name} {kind}", [r for r in in_set if r["image"].endswith("-grey") == (kind == "grey")])
                       for kind in ("colour", "grey")]
        for name, group in groups:
            if not group:
                continue
            means = {m: float(np.mean([r[m]["psnr_damaged"] for r in group])) for m in methods}
            pooled = {m: _pooled(group, m) for m in methods}
            wins = sum(r["ours_auto_mask"]["psnr_damaged"] >= r["navier_stokes_true_mask"]["psnr_damaged"] for r in group)
            gap = pooled_gap(group)
            summary.append({"set": name, "images": len(group), "psnr_damaged": means, "psnr_damaged_pooled": pooled,
                            "auto_wins_vs_ns": wins, "auto_minus_ns_pooled": gap})
            print(f"| {name} | {len(group)} | " + " | ".join(f"{means[m]:.2f} / {pooled[m]:.2f}" for m in methods)
                  + f" | {wins}/{len(group)} | {gap['gap']:+.2f} ({gap['ci95'][0]:+.2f} to {gap['ci95'][1]:+.2f}) |")
    return summary


def combine(paths: list[str]) -> None:
    """The summary of several runs' rows (the methods all of them measured); a case measured twice
    is an error, since the runs would disagree on it."""
    rows, seen = [], set()
    for path in paths:
        for row in json.loads(Path(path).read_text())["rows"]:
            key = (row["set"], row["image"])
            if key in seen:
                raise SystemExit(f"auto_mask: error: {path}: {key[0]}/{key[1]} is in an earlier file too")
            seen.add(key)
            rows.append(row)
    summarise(rows, _measured(rows), by_colour=True)


def _measured(rows: list[dict]) -> list[str]:
    """The methods every row measured, in the table's order."""
    return [m for m in METHODS if all(m in r for r in rows)]


if __name__ == "__main__":
    main()
