"""Restore one file into a new derivative: read, restore, write atomically, record provenance.

``restorer restore``, the queue runner and the GUI all go through :func:`restore_file`, so the
same input and settings give the same output bytes whichever of them ran it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from restorer_app.devices import resolve_device
from restorer_app.flow.weights import default_model_path
from restorer_app.imaging.errors import ImageError
from restorer_app.imaging.io import check_output_path, read_image, read_mask, write_image
from restorer_app.imaging.provenance import sha256_file, write_provenance, xmp_history_entry
from restorer_app.restore.pipeline import PatchProgress, Plan, get_model, restore_image
from restorer_app.restore.settings import RestoreSettings


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
) -> dict:
    """Restore ``input_path`` to ``output_path``; returns the provenance record's summary."""
    input_path, output_path = Path(input_path), Path(output_path)
    check_paths(input_path, output_path, overwrite)
    scan = read_image(input_path)
    mask = read_mask(mask_path, scan.pixels.shape[:2]) if mask_path else None
    device = resolve_device(settings.device)
    model = model if model is not None else get_model(settings, device)
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

    image = scan.pixels if scan.alpha is None else np.concatenate([scan.pixels, scan.alpha[:, :, None]], axis=2)
    restored = restore_image(image, mask, settings, model, progress, should_stop, patch_store, plan_made)
    if scan.alpha is not None:
        restored = restored[:, :, :-1]
    finished = dt.datetime.now(dt.timezone.utc)
    model_path = getattr(model, "source_path", None) or default_model_path()
    history = xmp_history_entry(settings.to_dict(), model_name=Path(model_path).name, seed=settings.seed)
    write_image(output_path, restored, like=scan, overwrite=overwrite, xmp_history=history)
    losses = [v for v in stats["losses"] if v is not None]
    patch_stats = {
        "patches": plans[0].patches,
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
        mask_path=mask_path,
        model_path=model_path,
        settings=settings.to_dict(),
        seed=settings.seed,
        device=str(device),
        started_at=started,
        finished_at=finished,
        patch_stats=patch_stats,
        extra={"plan": asdict(plans[0]), "model_info": getattr(model, "info", {})},
    )
    return {"output": str(output_path), "provenance": str(record_path), **patch_stats}
