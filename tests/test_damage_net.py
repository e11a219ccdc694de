"""The damage network: local scores whatever the tiling, weights that round-trip, a trainer that runs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from restorer_app.restore.damage_net import (
    DamageNet, TileScores, damage_probability, debris_planes, load_detector, save_detector,
)
from restorer_app.restore.degradations import add_gaussian_noise
from restorer_app.training import detector
from restorer_app.training.detector import make_example, train
from tests.conftest import synthetic_photo


def _random_net(seed: int = 0) -> DamageNet:
    torch.manual_seed(seed)
    return DamageNet(width=8).eval()


def test_a_pixels_score_depends_only_on_its_neighbourhood():
    """Scores of a crop's inner pixels equal the whole image's (unpadded convolutions, mirrored
    border, tiles of 128 px): the detector's bands and tiles change nothing."""
    net, image = _random_net(), synthetic_photo(300, 290, 1)
    whole = damage_probability(net, image)
    top, left, reach = 40, 70, net.reach
    part = damage_probability(net, image[top : top + 200, left : left + 180])
    inner = (slice(reach, 200 - reach), slice(reach, 180 - reach))
    shifted = (slice(top + reach, top + 200 - reach), slice(left + reach, left + 180 - reach))
    np.testing.assert_allclose(part[inner], whole[shifted], atol=1e-5)


def test_only_the_tiles_asked_about_are_scored():
    net, image = _random_net(), synthetic_photo(260, 300, 2)
    where = np.zeros(image.shape[:2], bool)
    where[150, 20] = True  # the tile of rows 128-255, columns 0-127
    whole, asked = damage_probability(net, image), damage_probability(net, image, where)
    np.testing.assert_array_equal(asked[128:256, :128], whole[128:256, :128])
    asked[128:256, :128] = 0
    assert not asked.any()


def test_tiles_are_scored_once_however_often_asked(monkeypatch):
    net, image = _random_net(), synthetic_photo(200, 260, 5)
    reference, calls = damage_probability(net, image), []
    forward = net.forward
    monkeypatch.setattr(net, "forward", lambda x: calls.append(x.shape) or forward(x))
    scores, where = TileScores(net, image), np.zeros(image.shape[:2], bool)
    where[10, 10] = where[150, 140] = True
    scores.at(where)
    assert len(calls) == 2
    where[20, 20] = where[190, 258] = True  # one tile already scored, one new
    np.testing.assert_array_equal(scores.at(where)[128:, 256:], reference[128:, 256:])
    assert len(calls) == 3
    np.testing.assert_array_equal(scores.at(), reference)
    assert len(calls) == 6


def test_after_a_change_only_the_tiles_it_reaches_are_scored_again(monkeypatch):
    """The detector's second search fills its first mask and asks again: tiles whose window (the
    tile and the network's reach) the fill did not touch keep their scores, the others are
    computed anew, and every score equals the changed image's own."""
    net, image = _random_net(), synthetic_photo(200, 300, 6)
    first = TileScores(net, image)
    first.at()
    changed = np.zeros(image.shape[:2], bool)
    changed[60:64, 60:64] = True  # inside the tile of rows 0-127, columns 0-127
    changed[150, 250] = True  # in the tile of rows 128-199, columns 128-255, and the reach of the next
    edited = image.copy()
    edited[changed] = 1.0
    calls = []
    forward = net.forward
    monkeypatch.setattr(net, "forward", lambda x: calls.append(x.shape) or forward(x))
    after = first.after_change(edited, changed)
    np.testing.assert_array_equal(after.at(), TileScores(net, edited).at())
    assert len(calls) == 3 + 6  # the three tiles the change reaches, then the reference's six


def test_colour_order_and_grey_copies_do_not_matter():
    image = synthetic_photo(40, 50, 3)
    np.testing.assert_allclose(debris_planes(image), debris_planes(image[:, :, ::-1]), atol=1e-6)
    grey = image.mean(axis=2)
    np.testing.assert_allclose(debris_planes(grey), debris_planes(np.repeat(grey[:, :, None], 3, axis=2)), atol=1e-6)


def test_weights_round_trip(tmp_path):
    net, image = _random_net(4), synthetic_photo(64, 64, 4)
    save_detector(net, tmp_path / "net.safetensors", {"steps": 7})
    again = load_detector(tmp_path / "net.safetensors")
    assert again.config() == net.config()
    np.testing.assert_array_equal(damage_probability(again, image), damage_probability(net, image))


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_detector(tmp_path / "nothing.safetensors")


def test_bundled_detector_scores_a_speck_high_and_grain_low():
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    image = add_gaussian_noise(np.stack([0.3 + 0.3 * x / 96, 0.4 + 0.2 * y / 96, np.full_like(x, 0.45)], axis=2), 5, 0)
    clean_scores = damage_probability(load_detector(), image)
    cv2.circle(image, (50, 40), 2, (0.93,) * 3, -1)
    scores = damage_probability(load_detector(), image)
    assert scores[40, 50] >= 0.8
    assert (clean_scores >= 0.5).mean() <= 0.002


def test_bundled_greyscale_detector_scores_a_speck_high_and_grain_low():
    y, x = np.mgrid[0:96, 0:96].astype(np.float32)
    image = add_gaussian_noise((0.3 + 0.2 * x / 96 + 0.1 * y / 96)[:, :, None], 5, 0)
    clean_scores = damage_probability(load_detector(grey=True), image)
    cv2.circle(image, (50, 40), 2, 0.07, -1)
    scores = damage_probability(load_detector(grey=True), image)
    assert scores[40, 50] >= 0.8
    assert (clean_scores >= 0.5).mean() <= 0.002


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_greyscale_training_crops_are_one_channel_through_grain_and_debris(share):
    """A greyscale scan shows the network three equal planes: so must its training examples,
    grain and debris included (until session 27 the grain was drawn per channel)."""
    photo = (synthetic_photo(200, 220, 5) * 255).astype(np.uint8)
    rng = np.random.default_rng(3)
    examples = [make_example(photo, rng, grey_share=share)[0] for _ in range(20)]
    equal = [np.array_equal(p[0], p[1]) and np.array_equal(p[1], p[2]) for p in examples]
    assert all(equal) == bool(share) and any(equal) == bool(share)


def test_training_examples_mark_the_pixels_the_debris_moved_and_the_candidates():
    photo = (synthetic_photo(200, 220, 5) * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    planes, mask, asked = make_example(photo, rng)
    assert planes.shape == (3, 96, 96) and planes.dtype == np.float32 and mask.shape == asked.shape == (96, 96)
    examples = [make_example(photo, rng) for _ in range(20)]
    assert 0.005 <= np.mean([e[1].mean() for e in examples]) <= 0.06
    damage, asked = np.concatenate([e[1] for e in examples]), np.concatenate([e[2] for e in examples])
    assert (damage & asked).sum() >= 0.5 * damage.sum()  # the detector asks about most of the damage


def test_textured_share_of_training_crops_comes_from_the_busy_part(monkeypatch):
    """The busier-crop draw prefers texture: on a photo that is flat on the left and noisy on the
    right, drawing the busiest of three lands in the texture more often than a plain draw."""
    rng = np.random.default_rng(1)
    photo = np.full((200, 400, 3), 128, np.uint8)
    photo[:, 200:] = rng.integers(0, 256, (200, 200, 3))

    def busy_share(share: float) -> float:
        monkeypatch.setattr(detector, "TEXTURED_SHARE", share)
        draw = np.random.default_rng(2)
        return np.mean([detector._crop(photo, draw).std() > 0.05 for _ in range(60)])

    assert busy_share(1.0) >= busy_share(0.0) + 0.2


def test_training_writes_a_loadable_detector_and_its_log(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        Image.fromarray((synthetic_photo(120, 160, seed) * 255).astype(np.uint8)).save(photos / f"{seed}.png")
    out = tmp_path / "net.safetensors"
    train([photos], out, steps=3, batch=2, width=4, log_every=1)
    net = load_detector(out)
    assert net.config()["width"] == 4
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in log)


def test_training_on_from_weights_starts_from_them(tmp_path):
    """``init`` continues a trained network (its width, its weights) rather than a fresh one."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray((synthetic_photo(120, 160, 0) * 255).astype(np.uint8)).save(photos / "0.png")
    start = DamageNet(6)
    save_detector(start, tmp_path / "start.safetensors")
    out = tmp_path / "on.safetensors"
    train([photos], out, steps=1, batch=1, width=4, init=tmp_path / "start.safetensors", lr=1e-12,
          same_as_picture=0.5)
    net = load_detector(out)
    assert net.config()["width"] == 6
    for name, tensor in start.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], tensor, atol=1e-6, rtol=0)
