"""Per-pixel targets that make the segmenter's loss count defects, not pixels.

The damage benchmark counts defects left visible, one per defect whatever its size, while a plain
pixel loss is ruled by the large ones (stains, tears): a speck of 10 px or a 2-px crack 200 px
long weighs little against a 3,000-px stain, and the network's recall on long thin lines stayed
at 2-14 % of their pixels (lab notebook E118). Two remedies, each optional in the trainer:

- ``defect_weights``: each connected defect gets the same share of the positive weight, so a
  speck counts as much as a stain (an instance-balanced cross-entropy);
- ``skeleton_tube``: the defects' centre lines grown by one pixel, for a recall term that scores
  how much of each line is found along its length (the skeleton recall loss of Kirchhoff et al.,
  ECCV 2024: a long crack has as many skeleton pixels as it is long, a stain only a few).
"""

from __future__ import annotations

import cv2
import numpy as np

SMALLEST_DEFECT = 5  # px: the benchmark's smallest visible piece; smaller fragments weigh as this
MAX_DEFECT_WEIGHT = 20.0  # cap of one pixel's weight, so a lone speck never rules a batch

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_SQUARE = np.ones((3, 3), np.uint8)


def defect_weights(masks: np.ndarray) -> np.ndarray:
    """NxHxW float32 weights for NxHxW bool masks: 1 off the damage; on it, each 8-connected
    defect of area a gets mean_area / max(a, SMALLEST_DEFECT) per pixel (capped), mean_area being
    the batch's damaged pixels per defect, so the positive weight in total stays about that of a
    plain loss while every defect holds an equal share of it."""
    weights = np.ones(masks.shape, np.float32)
    labelled = []
    for mask in masks:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        labelled.append((labels, stats[1:, cv2.CC_STAT_AREA]))
    defects = sum(len(areas) for _, areas in labelled)
    if defects == 0:
        return weights
    mean_area = sum(int(areas.sum()) for _, areas in labelled) / defects
    for weight, (labels, areas) in zip(weights, labelled):
        per_defect = np.minimum(mean_area / np.maximum(areas, SMALLEST_DEFECT), MAX_DEFECT_WEIGHT)
        damaged = labels > 0
        weight[damaged] = per_defect[labels[damaged] - 1]
    return weights


def skeleton_tube(masks: np.ndarray) -> np.ndarray:
    """NxHxW bool: the morphological skeleton (Lantuejoul's, 3x3 cross) of each mask, grown by
    one pixel and kept inside the mask: the centre lines whose recall the skeleton term scores."""
    tubes = np.zeros(masks.shape, bool)
    for tube, mask in zip(tubes, masks):
        remaining = mask.astype(np.uint8)
        skeleton = np.zeros_like(remaining)
        while remaining.any():
            eroded = cv2.erode(remaining, _CROSS)
            skeleton |= remaining & (1 - cv2.dilate(eroded, _CROSS))  # not in the opening
            remaining = eroded
        tube[:] = (cv2.dilate(skeleton, _SQUARE) > 0) & mask
    return tubes
