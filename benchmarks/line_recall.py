"""How much of each thin-line defect the damage segmenter finds, by kind and form.

The per-class tables of ``real_damage.py`` count a crack as left when any piece of it is; this
asks which lines the network sees at all. Cases: the photos of ``--set``, prepared as in
``real_damage.py`` (downscaled 2x, centre crop of at most 384 px), each damaged ``--draws``
times by the simulator with only its thin-line classes (cracks, hairs, print and film
scratches; 1-3 % of the pixels; seed = 100 x photo index + draw). Per drawn defect: its recall,
the share of the pixels of its class inside its box that the segmenter flags at ``--sensitivity``
(a neighbouring defect of the same class in the box counts too: an approximation). Grouped by
class, and for cracks by form (plate, branching, web) and look (dark, light): the mean recall and
the share of defects found below 30 %. Several ``--weights`` are compared on the same cases.

    python -m benchmarks.line_recall --set kodak24 [--limit 12] [--draws 3]
        [--weights A.safetensors B.safetensors] [--tag NAME]
"""

from __future__ import annotations

import argparse
import platform
from collections import defaultdict

import numpy as np
import torch

from benchmarks.datasets import EVAL_SETS, load_eval_set
from benchmarks.real_damage import prepare
from benchmarks.results_file import write_result
from restorer_app.damage_sim import SIM_VERSION, SimSpec, default_shape_library, simulate
from restorer_app.damage_sim.spec import class_id
from restorer_app.restore.segmenter import default_segmenter_path, load_segmenter, segment, sensitivity_threshold

LINE_CLASSES = ("crack", "hair", "print_scratch", "film_scratch")
FRACTION = (0.01, 0.03)
MISSED_BELOW = 0.3  # a defect found below this share of its pixels reads as missed


def group_of(defect: dict) -> str:
    if defect["class"] != "crack":
        return defect["class"]
    look = "dark" if defect.get("dark", not defect.get("light", True)) else "light"
    return f"crack/{defect.get('form', '?')}/{look}"


def defect_recalls(found: np.ndarray, classes: np.ndarray, defects: list[dict]) -> list[tuple[str, float]]:
    """(group, recall) of every drawn defect that left pixels of its class in its box."""
    out = []
    for defect in defects:
        top, left, bottom, right = defect["bbox"]
        own = classes[top:bottom, left:right] == class_id(defect["class"])
        if own.any():
            out.append((group_of(defect), float(found[top:bottom, left:right][own].mean())))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="kodak24", choices=EVAL_SETS)
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--sensitivity", type=float, default=0.5)
    parser.add_argument("--weights", nargs="+", default=[str(default_segmenter_path())])
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    threshold = sensitivity_threshold(args.sensitivity)
    nets = {path: load_segmenter(path) for path in args.weights}
    spec = SimSpec.only(*LINE_CLASSES, fraction=FRACTION)
    shapes = default_shape_library()
    recalls = {path: defaultdict(list) for path in nets}
    for index, photo in enumerate(load_eval_set(args.set, limit=args.limit)):
        for draw in range(args.draws):
            damaged = simulate(prepare(photo.image), np.random.default_rng(100 * index + draw), spec, shapes=shapes)
            for path, net in nets.items():
                found = segment(net, damaged.image).probability >= threshold
                for group, recall in defect_recalls(found, damaged.classes, damaged.defects):
                    recalls[path][group].append(recall)
    table = {path: {group: {"defects": len(values), "mean_recall": float(np.mean(values)),
                            "missed_share": float(np.mean(np.asarray(values) < MISSED_BELOW))}
                    for group, values in sorted(groups.items())}
             for path, groups in recalls.items()}
    for path, groups in table.items():
        print(f"\n{path}")
        print(f"{'kind':24s} {'defects':>7s} {'mean recall':>11s} {'found < 30 %':>12s}")
        for group, row in groups.items():
            print(f"{group:24s} {row['defects']:7d} {row['mean_recall']:11.2f} {row['missed_share']:12.2f}")
    write_result("line_recall", args.tag, {
        "set": args.set, "limit": args.limit, "draws": args.draws, "sensitivity": args.sensitivity,
        "threshold": threshold, "sim_version": SIM_VERSION, "classes": LINE_CLASSES, "fraction": FRACTION,
        "device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
        "python": platform.python_version(), "table": table,
        "per_defect": {path: dict(groups) for path, groups in recalls.items()}})


if __name__ == "__main__":
    main()
