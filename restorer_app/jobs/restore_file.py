"""Restore one file into a new derivative: read, restore, write atomically, record provenance.

``restorer restore``, the queue runner and the GUI all go through :func:`restore_file`, so the
same input and settings give the same output bytes whichever of them ran it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from restorer_app.imaging.errors import ImageError
from restorer_app.imaging.atomic import atomic_output
from restorer_app.imaging.io import check_output_path, read_image, read_mask, write_image
from restorer_app.imaging.provenance import sha256_file, write_provenance, xmp_history_entry
from restorer_app.restore.changes import change_map, change_summary
from restorer_app.restore import damage_finder
from restorer_app.restore.damage_finder import FoundDamage
from restorer_app.restore.detect import DetectionStopped
from restorer_app.restore.pipeline import LocalSolver, PatchProgress, Plan, RestoreCancelled, Solver, StepProgress, restore_image
from restorer_app.restore.settings import DEFAULT_SENSITIVITY, RestoreSettings

#: ``mask_path`` value that asks for the detector's suggested mask instead of a file.
AUTO_MASK = "auto"


def changes_path(output_path) -> Path:
    """``<output>.changes.png`` beside the output."""
    output_path = Path(output_path)
    return output_path.with_name(output_path.name + ".changes.png")


def with_alpha(scan) -> np.ndarray:
    """The scan's pixels with its alpha as the last channel (what the detectors and the engine take)."""
    return scan.pixels if scan.alpha is None else np.concatenate([scan.pixels, scan.alpha[:, :, None]], axis=2)


def find_scan_damage(image: np.ndarray, sensitivity: float, should_stop: Callable[[], bool] | None = None) -> FoundDamage:
    """What the detectors find in a scan's ``with_alpha`` image (``restore.damage_finder``; alpha ignored)."""
    from restorer_app.restore import damage_finder  # looked up at call time: the GUI tests replace it

    return damage_finder.find_damage(image, sensitivity, should_stop)


class SecondPassStore:
    """The job's patch store as the look-again pass sees it: its patches under indices of their
    own (``OFFSET`` + index), so a resumed job finds both passes' patches and mixes up none."""

    OFFSET = 10_000_000

    def __init__(self, store):
        self.store = store

    @property
    def threads(self) -> int | None:
        return self.store.threads

    @threads.setter
    def threads(self, count: int) -> None:
        self.store.threads = count

    def get(self, index: int):
        return self.store.get(self.OFFSET + index)

    def put(self, index: int, patch) -> None:
        self.store.put(self.OFFSET + index, patch)


def load_mask(mask_path, scan, should_stop: Callable[[], bool] | None = None,
              sensitivity: float = DEFAULT_SENSITIVITY) -> np.ndarray | None:
    """The damage mask: from a PNG, from the detectors (``auto``: their repair mask), or None.
    ``should_stop()`` true stops the detectors (``restore.detect.DetectionStopped``)."""
    if not mask_path:
        return None
    if str(mask_path) == AUTO_MASK:
        return find_scan_damage(with_alpha(scan), sensitivity, should_stop).repair
    return read_mask(mask_path, scan.pixels.shape[:2])


def write_change_map(path: Path, changes: np.ndarray, overwrite: bool) -> None:
    with atomic_output(path, overwrite) as f:
        Image.fromarray(changes, "RGB").save(f, format="PNG")


def check_paths(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse, before any work, what write_image would refuse at the end."""
    if not input_path.is_file():
        raise ImageError(input_path, "file not found")
    check_output_path(output_path, input_path, overwrite)


def restore_file(
    input_path,
    output_path,
    settings: RestoreSettings,
    mask_path=None,
    overwrite: bool = False,
    on_progress: Callable[[PatchProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    patch_store=None,
    on_plan: Callable[[Plan], None] | None = None,
    model=None,
    on_step: Callable[[StepProgress], None] | None = None,
    solver: Solver | None = None,
) -> dict:
    """Restore ``input_path`` to ``output_path``; returns the provenance record's summary.
    ``solver`` (default: this process, with ``model``) solves the batches, see restore_image."""
    input_path, output_path = Path(input_path), Path(output_path)
    check_paths(input_path, output_path, overwrite)
    scan = read_image(input_path)
    image = with_alpha(scan)  # one copy of a scan with alpha, for the detectors and the engine
    found = None
    try:
        if str(mask_path) == AUTO_MASK:
            found = find_scan_damage(image, settings.sensitivity, should_stop)
            mask = found.repair
        else:
            mask = load_mask(mask_path, scan)
    except DetectionStopped:  # nothing solved yet: the job stops like one cancelled between batches
        raise RestoreCancelled(0, 0, "cancelled while looking for damage, before any patch") from None
    solver = solver if solver is not None else LocalSolver(settings, model)
    started = dt.datetime.now(dt.timezone.utc)
    stats: dict = {"losses": [], "retries": 0, "failed": 0, "from_store": 0}
    plans: list[Plan] = []

    def progress(update: PatchProgress) -> None:
        if update.from_store:
            stats["from_store"] += 1
        else:
            stats["losses"].append(update.stats.get("loss"))
            stats["retries"] += update.stats.get("retries", 0)
            stats["failed"] += int(update.stats.get("failed", False))
        if on_progress:
            on_progress(update)

    def plan_made(plan: Plan) -> None:
        plans.append(plan)
        if on_plan:
            on_plan(plan)

    restored, spread = restore_image(image, mask, settings, None, progress, should_stop, patch_store, plan_made,
                                     with_spread=True, on_step=on_step, solver=solver)
    again = None
    if found is not None:  # look again at what the first pass repaired (once; nothing at sensitivity 0)
        first = plans[0].patches
        try:
            again = damage_finder.look_again(found, restored, should_stop)
        except DetectionStopped:
            raise RestoreCancelled(first, first, "cancelled while looking again at the repair") from None
        if again.any():  # its patches count on from the first pass's, so progress never goes back

            def second_plan(plan: Plan) -> None:
                plans.append(plan)
                if on_plan:
                    on_plan(replace(plan, patches=first + plan.patches))

            def second_step(update: StepProgress) -> None:
                on_step(replace(update, done=first + update.done, total=first + update.total))

            # only the pixels found again change: a noisy scan restored everywhere is not restored twice
            restored, second_spread = restore_image(
                restored, again, replace(settings, scope="mask"), None,
                lambda update: progress(replace(update, done=first + update.done, total=first + update.total)),
                should_stop, None if patch_store is None else SecondPassStore(patch_store), second_plan,
                with_spread=True, on_step=second_step if on_step else None, solver=solver)
            np.maximum(spread, second_spread, out=spread)
            mask = mask | again
    if scan.alpha is not None:
        restored = restored[:, :, :-1]
    finished = dt.datetime.now(dt.timezone.utc)
    plan = plans[0]
    depth = 8 if output_path.suffix.lower() in (".jpg", ".jpeg") else scan.bit_depth
    changes = change_map(scan.pixels, restored, depth, mask, spread if plan.views > 1 else None)
    summary = change_summary(changes)
    model_path = solver.model_path
    recorded = {**settings.to_dict(), "scope": plan.scope, "mask": _mask_source(mask_path, found),
                "changed_fraction": summary["changed_fraction"], "synthesised_fraction": summary["synthesised_fraction"],
                "largest_change_8bit_levels": summary["largest_change_8bit_levels"]}
    history = xmp_history_entry(recorded, model_name=Path(model_path).name, seed=settings.seed)
    write_image(output_path, restored, like=scan, overwrite=overwrite, xmp_history=history)
    write_change_map(changes_path(output_path), changes, overwrite=True)  # follows its output
    losses = [v for v in stats["losses"] if v is not None]
    patch_stats = {
        "patches": plan.patches,
        "tiles_in_image": plan.tiles_in_image,
        "computed": len(stats["losses"]),
        "resumed_from_store": stats["from_store"],
        "retried": stats["retries"],
        "fell_back_to_start": stats["failed"],
        "final_loss_mean": float(np.mean(losses)) if losses else None,
        "final_loss_max": float(np.max(losses)) if losses else None,
    }
    record_path = write_provenance(
        output_path,
        input_path=input_path,
        mask_path=None if str(mask_path) == AUTO_MASK else mask_path,
        model_path=model_path,
        settings=settings.to_dict(),
        seed=settings.seed,
        device=str(solver.device),
        started_at=started,
        finished_at=finished,
        patch_stats=patch_stats,
        extra={"plan": asdict(plan), "mask_source": _mask_source(mask_path, found), "changes": summary,
               "changes_file": changes_path(output_path).name, "model_info": solver.model_info,
               "detector": None if found is None else _detector_record(found, again, plans[1:])},
    )
    return {"output": str(output_path), "provenance": str(record_path), "scope": plan.scope,
            "changes": summary, **patch_stats}


def _mask_source(mask_path, found: FoundDamage | None) -> str:
    """The mask file's name, or the damage networks that found the mask."""
    if not mask_path:
        return "none"
    if found is None:
        return Path(mask_path).name
    return f"detected automatically (restorer detect, {' + '.join(path.name for path in found.weights)})"


def _detector_record(found: FoundDamage, again: np.ndarray | None, second: list[Plan]) -> dict:
    """The provenance's account of an automatic mask: networks, sensitivity, kinds found, and what
    the second look at the repaired picture added (its share of the scan and its patches)."""
    look_again = None
    if found.sensitivity > 0 and again is not None:
        look_again = {"reach_px": damage_finder.LOOK_AGAIN_REACH, "repaired_fraction": round(float(again.mean()), 6),
                      "patches": second[0].patches if second else 0}
    return {"weights": [{"name": path.name, "sha256": sha256_file(path)} for path in found.weights],
            "sensitivity": found.sensitivity, "repaired_fraction": round(float(found.repair.mean()), 6),
            "classes_found": found.classes, "look_again": look_again}
