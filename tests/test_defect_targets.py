"""Loss targets that count defects: every defect an equal share of the weight, and centre lines
that follow a defect along its length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorer_app.training.defect_targets import MAX_DEFECT_WEIGHT, defect_weights, skeleton_tube
from restorer_app.training.segmenter import loss_targets, segmentation_loss


def _two_defects() -> np.ndarray:
    masks = np.zeros((2, 40, 60), bool)
    masks[0, 5:7, 5:10] = True  # a 10-px speck
    masks[1, 10:20, 10:20] = True  # a 100-px stain
    return masks


def test_each_defect_holds_an_equal_share_of_the_weight():
    masks = _two_defects()
    weights = defect_weights(masks)
    speck, stain = weights[0][masks[0]], weights[1][masks[1]]
    assert np.allclose(speck, speck[0]) and np.allclose(stain, stain[0])
    assert speck.sum() == pytest.approx(stain.sum())
    assert weights[masks].sum() == pytest.approx(masks.sum())  # the positive weight a plain loss gives
    assert np.all(weights[~masks] == 1.0)
    assert np.all(defect_weights(np.zeros((1, 8, 8), bool)) == 1.0)


def test_fragments_weigh_as_the_smallest_visible_defect_and_are_capped():
    masks = np.zeros((1, 60, 60), bool)
    masks[0, 0, 0] = True  # a lone pixel beside a large stain
    masks[0, 10:50, 10:50] = True
    weights = defect_weights(masks)
    assert weights[0, 0, 0] == MAX_DEFECT_WEIGHT  # mean area 800 / 5 would be 160
    assert weights[0, 30, 30] == pytest.approx(800.5 / 1600)


def test_skeleton_tube_follows_lines_and_thins_wide_defects():
    masks = np.zeros((2, 40, 80), bool)
    masks[0, 20, 5:75] = True  # a 1-px line: its own centre line
    masks[1, 15:24, 5:75] = True  # a 9-px wide bar
    tubes = skeleton_tube(masks)
    assert np.array_equal(tubes[0], masks[0])
    assert not (tubes & ~masks).any()
    middle = tubes[1][:, 20:60]
    assert middle.any(axis=0).all()  # found along its whole length
    assert middle.sum(axis=0).max() <= 3  # a line one pixel wide, grown by one


def test_skeleton_term_scores_the_share_of_centre_lines_found():
    masks = np.zeros((1, 32, 32), bool)
    masks[0, 16, 2:30] = True
    mask = torch.from_numpy(masks)
    classes = torch.zeros_like(mask, dtype=torch.uint8)
    weights, tube = loss_targets(mask, defect_balance=False, skeleton_weight=1.0)
    assert weights is None and tube is not None
    logits = torch.full((1, 9, 32, 32), -20.0)
    _, missed = segmentation_loss(logits, mask, classes, weights, tube, skeleton_weight=1.0)
    logits[0, 0][mask[0]] = 20.0
    _, found = segmentation_loss(logits, mask, classes, weights, tube, skeleton_weight=1.0)
    assert missed["skeleton"] == pytest.approx(1.0) and found["skeleton"] == pytest.approx(0.0, abs=1e-6)
    logits = torch.zeros((1, 9, 32, 32), requires_grad=True)
    total, _ = segmentation_loss(logits, mask, classes, weights, tube, skeleton_weight=1.0)
    total.backward()
    assert logits.grad[0, 0][mask[0]].lt(0).all()  # pushes every centre-line pixel's score up
    assert loss_targets(mask, defect_balance=False, skeleton_weight=0.0) == (None, None)
