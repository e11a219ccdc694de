"""The damage ``--mask auto``, Detect damage and "Find the damage automatically" repair: what two
detectors that see different damage find together.

- The hand-set chain (:func:`restorer_app.restore.detect.repair_mask`) finds crisp debris: small,
  flat, near-white or near-black specks, fibres and thin scratches, to their whole extent. It is
  blind to soft, grey, translucent, wide or branching damage.
- The learned segmenter (:mod:`restorer_app.restore.segmenter`, trained on the damage simulator)
  finds part of that realistic damage (cracks, tears, creases, hairs, stains, faint film
  scratches) and names its kind, but misses much of the crisp debris the chain finds.

The repair mask is their union, the segmenter's part grown by ``GROWTH`` px so that the fill
never continues a defect's soft fringe. Above sensitivity 0 a restoration then looks again
(:func:`look_again`): the segmenter runs on the repaired picture, and what it still finds on or
within ``LOOK_AGAIN_REACH`` px of the repair (a fill that continued a defect, the rest of a
defect the first look cut short) is repaired in a second pass, once.

The sensitivity (0-1) sets the segmenter's threshold
(:func:`~restorer_app.restore.segmenter.sensitivity_threshold`); at 0 the segmenter is not run and
the chain alone decides, which is the default: on real scans the segmenter also marks picture
(highlights in foliage and water, thin bright lines such as ropes and rails, eyes, jewellery),
so it is the archivist's choice to raise it (0.5 on simulated old-print damage, after the second
look: defects left visible 65 / 57 % instead of 100 / 99.7 %, clean picture flagged 0.84 / 0.30 %
instead of 0.34 / 0.07 %, McMaster18 / CBSD68). Figures:
``models/damage-segmenter.md`` and ``docs/QUALITY.md`` (``python -m benchmarks.real_damage``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from restorer_app.restore import detect
from restorer_app.restore.settings import DEFAULT_SENSITIVITY
from restorer_app.restore.segmenter import (
    SegmentStopped, default_segmenter_path, load_segmenter, segment, sensitivity_threshold,
)

#: px the segmenter's detection is grown by: its soft edge (measured on the simulator's validation
#: split, ``benchmarks/real_damage.py --grow``).
GROWTH = 2

#: px around the first repair within which the second look's findings are repaired (what a repair
#: left of a defect lies on it or next to it; farther away is picture the first look judged clean).
LOOK_AGAIN_REACH = 8


@dataclass
class FoundDamage:
    """What the detectors found in one scan."""

    repair: np.ndarray  # bool HxW: the pixels a restoration with --mask auto replaces
    found: np.ndarray  # bool HxW: the same before the segmenter's part is grown (``restorer detect --tight``)
    chain: np.ndarray  # bool HxW: the hand-set chain's part (what sensitivity 0 repairs)
    classes: dict[str, float] = field(default_factory=dict)  # kind -> share of the scan the segmenter gives it
    sensitivity: float = DEFAULT_SENSITIVITY
    weights: list[Path] = field(default_factory=list)  # the networks read (the provenance names them)


@functools.lru_cache(maxsize=1)
def _segmenter(path: Path):
    return load_segmenter(path)


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` dilated by a disc of radius ``px``."""
    if px <= 0:
        return mask
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), disc) > 0


def find_damage(image: np.ndarray, sensitivity: float = DEFAULT_SENSITIVITY,
                should_stop: Callable[[], bool] | None = None) -> FoundDamage:
    """The damage in ``image`` (HxW or HxWxC float in [0, 1]; alpha ignored). ``should_stop()``
    true raises :class:`~restorer_app.restore.detect.DetectionStopped` at the next band or tile."""
    threshold = sensitivity_threshold(sensitivity)  # checks the range before any work
    chain = detect.repair_mask(image, should_stop=should_stop)
    if sensitivity == 0:
        return FoundDamage(repair=chain, found=chain, chain=chain, sensitivity=0.0,
                           weights=[detect.detector_weights(image)])
    path = default_segmenter_path()
    try:
        result = segment(_segmenter(path), image, should_stop=should_stop)
    except SegmentStopped as stopped:
        raise detect.DetectionStopped(str(stopped)) from None
    learned = result.probability >= threshold
    kinds = np.bincount(result.classes[learned], minlength=len(result.class_names) + 1)[1:]
    classes = {name: round(float(count) / learned.size, 6) for name, count in zip(result.class_names, kinds) if count}
    return FoundDamage(repair=combine(chain, learned), found=chain | learned, chain=chain, classes=classes,
                       sensitivity=float(sensitivity), weights=[detect.detector_weights(image), path])


def second_pass_mask(first_repair: np.ndarray, found_again: np.ndarray, reach: int = LOOK_AGAIN_REACH) -> np.ndarray:
    """What a second pass repairs: the segmenter's detection on the repaired picture, grown like the
    first, where it lies within ``reach`` px of the first repair (on it: a fill that continued a
    defect; beside it: the rest of a defect the first look cut short)."""
    return grow(found_again, GROWTH) & grow(first_repair, reach)


def look_again(first: FoundDamage, restored: np.ndarray, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """The second pass's mask for a scan repaired with ``first.repair`` (``restored``: the result,
    alpha ignored): the segmenter run again at the same sensitivity, on the whole picture since its
    receptive field is wider than any window around the repair. Nothing at sensitivity 0 (the chain
    finds crisp debris to its whole extent). The second look is never followed by a third."""
    if first.sensitivity == 0 or not first.repair.any():
        return np.zeros_like(first.repair)
    try:
        result = segment(_segmenter(default_segmenter_path()), restored, should_stop=should_stop)
    except SegmentStopped as stopped:
        raise detect.DetectionStopped(str(stopped)) from None
    return second_pass_mask(first.repair, result.probability >= sensitivity_threshold(first.sensitivity))


def combine(chain: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """The repair mask from the chain's repair mask and the segmenter's detection."""
    return chain | grow(learned, GROWTH)
