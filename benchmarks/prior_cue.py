"""The prior as a damage cue: does its own correction find the defects the classical repair mask
misses? (issue 13: "how much a pixel changes when the prior re-synthesises it", measured.)

Each case of benchmarks/detection.py is restored whole with ``fast`` (scope image, no mask); a
pixel is flagged when its largest channel moved more than T/255. Reported per threshold, with
1-px tolerance: recall, precision and F1 of that cue alone and of its union with ``repair_mask``
(what ``--mask auto`` uses), and the union's area over the true damage's. Costs one ``fast``
restoration of the whole scan, which is why the product does not do it (yet).

    python -m benchmarks.prior_cue kodak24 6      (validation)
    python -m benchmarks.prior_cue mcmaster18 6   (test)
"""
import json
import platform
import sys
from pathlib import Path

import numpy as np
from benchmarks.detection import build_cases, tolerant_scores
from restorer_app.restore.detect import repair_mask
from restorer_app.restore.pipeline import restore_image
from restorer_app.restore.settings import RestoreSettings
from restorer_app.flow.weights import default_model_path, load_model

THRESHOLDS = [10, 15, 20, 30, 45]  # /255


def prior_change(damaged: np.ndarray, model, device: str = "cpu") -> np.ndarray:
    """Per pixel, in 1/255: how far a whole-image ``fast`` restoration (no mask) moves the
    largest channel. Flagging it above a threshold is the cue."""
    restored = restore_image(damaged, None, RestoreSettings(preset="fast", device=device, scope="image"), model=model)
    return np.abs(damaged - restored).max(axis=2) * 255


def main() -> None:
    sets, limit = sys.argv[1].split(","), int(sys.argv[2])
    model = load_model(default_model_path(), "cpu")
    rows = []
    for s in sets:
        for case in build_cases(s, limit):
            residual = prior_change(case.damaged, model)
            classical = repair_mask(case.damaged)
            row = {"image": f"{s}/{case.name}", "classical": tolerant_scores(classical, case.mask),
                   "classical_area": float(classical.mean() / case.mask.mean())}
            for t in THRESHOLDS:
                cue = residual > t
                row[f"prior{t}"] = tolerant_scores(cue, case.mask)
                union = classical | cue
                row[f"union{t}"] = tolerant_scores(union, case.mask)
                row[f"union{t}_area"] = float(union.mean() / case.mask.mean())
            rows.append(row)
            print(json.dumps({k: (round(v["recall"], 3), round(v["precision"], 3)) if isinstance(v, dict) else v for k, v in row.items()}), flush=True)
    keys = [k for k in rows[0] if isinstance(rows[0][k], dict)]
    for k in keys:
        print(k, "recall %.3f precision %.3f f1 %.3f" % tuple(np.mean([r[k][m] for r in rows]) for m in ("recall", "precision", "f1")),
              "area %.2f" % np.mean([r[k + "_area"] for r in rows]) if k + "_area" in rows[0] else "")
    split = "validation" if set(sets) <= {"kodak24"} else "test"  # results are named by split, not by photo set
    Path(__file__).parent.joinpath("results", f"prior_cue_{split}.json").write_text(json.dumps(
        {"benchmark": "prior_cue", "sets": sets, "limit": limit, "preset": "fast", "thresholds_255": THRESHOLDS,
         "python": platform.python_version(), "model": str(default_model_path().name), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
