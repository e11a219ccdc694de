"""The damage segmenter: tiling that changes nothing, its receptive field, weights that round-trip,
stop and progress hooks, the sensitivity mapping, and a trainer that runs."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from restorer_app.restore.segmenter import (
    CHANNELS_LAST, DEFAULT_THRESHOLD, DamageSegmenter, SegmentStopped, default_segmenter_path, load_segmenter,
    save_segmenter, segment, sensitivity_threshold,
)
from tests.conftest import synthetic_photo

torch.set_num_threads(1)


def _tiny_net(seed: int = 0) -> DamageSegmenter:
    """The default depth (five levels, margin 112) with few filters, random biases and head so
    that its scores vary over the picture (the network's own initialisation starts the head
    near zero)."""
    torch.manual_seed(seed)
    net = DamageSegmenter(widths=(4, 6, 8, 8, 8))
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                layer.bias.normal_(0.0, 0.1)
    return net.to(memory_format=CHANNELS_LAST).eval()


@torch.no_grad()
def _one_shot(net: DamageSegmenter, image: np.ndarray) -> np.ndarray:
    """Damage probability from one forward pass over the image mirrored by the margin (np.pad)
    and on to a multiple of the stride."""
    h, w = image.shape[:2]
    m, s = net.margin, net.stride
    extra_h, extra_w = -(h + 2 * m) % s, -(w + 2 * m) % s
    padded = np.pad(image, ((m, m + extra_h), (m, m + extra_w), (0, 0)), mode="symmetric")
    logits = net(torch.from_numpy(np.ascontiguousarray(padded))[None].permute(0, 3, 1, 2))
    return torch.sigmoid(logits[0, 0, m : m + h, m : m + w]).numpy()


def test_tiles_equal_one_pass_over_the_mirrored_image():
    net, image = _tiny_net(), synthetic_photo(97, 203, 3)
    tiled = segment(net, image, tile=32)
    assert tiled.probability.shape == (97, 203) and tiled.probability.dtype == np.float32
    assert tiled.classes.shape == (97, 203) and tiled.classes.dtype == np.uint8
    whole = segment(net, image, tile=10_000)
    reference = _one_shot(net, image)
    assert np.abs(tiled.probability - reference).max() < 1e-4
    assert np.abs(whole.probability - reference).max() < 1e-4
    assert 0.01 < reference.std()  # the check compares something that varies
    certain = np.abs(tiled.probability - 0.5) > 1e-3  # classes agree where no rounding can flip them
    np.testing.assert_array_equal(tiled.classes[certain], whole.classes[certain])
    assert ((tiled.classes > 0) == (tiled.probability >= 0.5)).all()
    assert tiled.classes.max() <= len(net.classes)


def test_images_smaller_than_a_tile_and_than_the_margin():
    net = _tiny_net(1)
    image = synthetic_photo(40, 29, 4)
    result = segment(net, image)
    assert np.abs(result.probability - _one_shot(net, image)).max() < 1e-4
    tiny = image[:5, :7]  # mirrored many times over to fill the margin
    assert np.abs(segment(net, tiny, tile=16).probability - _one_shot(net, tiny)).max() < 1e-4
    # greyscale as three equal channels, alpha ignored, uint8 read as /255
    grey = image.mean(axis=2)
    expected = segment(net, np.repeat(grey[:, :, None], 3, axis=2)).probability
    np.testing.assert_allclose(segment(net, grey).probability, expected, atol=1e-6)
    np.testing.assert_allclose(segment(net, grey[:, :, None]).probability, expected, atol=1e-6)
    rgba = np.concatenate([image, np.zeros_like(image[:, :, :1])], axis=2)
    np.testing.assert_allclose(segment(net, rgba).probability, result.probability, atol=1e-6)
    as_bytes = np.round(image * 255).astype(np.uint8)
    np.testing.assert_allclose(segment(net, as_bytes).probability, segment(net, as_bytes / np.float32(255)).probability,
                               atol=1e-6)
    probabilities = segment(net, image, class_probabilities=True).class_probabilities
    assert probabilities.shape == (40, 29, len(net.classes))
    np.testing.assert_allclose(probabilities.sum(axis=2), 1.0, atol=1e-5)


def test_receptive_field_from_input_gradients():
    """The default network's output pixel reads an input window at least 128 px wide, exactly
    the one ``support`` computes, and never more than ``reach`` px to either side."""
    torch.manual_seed(0)
    net = DamageSegmenter().to(memory_format=CHANNELS_LAST).eval()
    assert net.receptive_field >= 128 and net.margin >= net.reach and net.margin % net.stride == 0
    size, centre = 272, 128
    for offset in (2, 13):  # the widest windows, reaching furthest right and left
        image = torch.rand(1, 3, size, size, requires_grad=True)
        net(image)[0, 0, centre + offset, centre + offset].backward()
        reads = image.grad[0].abs().sum(dim=0) > 0
        rows, cols = np.flatnonzero(reads.any(dim=1).numpy()), np.flatnonzero(reads.any(dim=0).numpy())
        x = centre + offset
        for found in (rows, cols):
            low, high = net.support(x)
            assert (found[0], found[-1]) == (low, high)
            assert high - low + 1 >= 128
            assert x - found[0] <= net.reach and found[-1] - x <= net.reach
    assert max(net.support(x)[1] - net.support(x)[0] + 1 for x in range(16)) == net.receptive_field


def test_weights_round_trip_with_their_record(tmp_path):
    net, image = _tiny_net(2), synthetic_photo(50, 60, 5)
    path = tmp_path / "segmenter.safetensors"
    info = {"steps": 3, "seed": 9, "sim_version": "x"}
    save_segmenter(net, path, info)
    loaded = load_segmenter(path)
    assert loaded.info == info and loaded.widths == net.widths and loaded.classes == net.classes
    np.testing.assert_array_equal(segment(loaded, image).probability, segment(net, image).probability)
    assert not path.with_name(path.name + ".tmp").exists()
    assert default_segmenter_path().name == "damage-segmenter.safetensors"
    with pytest.raises(FileNotFoundError):
        load_segmenter(tmp_path / "missing.safetensors")


def test_stop_and_progress_per_tile():
    net, image = _tiny_net(), synthetic_photo(70, 100, 6)
    seen = []
    segment(net, image, tile=32, on_tile=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 12) for i in range(1, 13)]  # 3 x 4 tiles of 32 px (the last ones smaller)
    polls = []

    def stop_at_third():
        polls.append(1)
        return len(polls) == 3

    with pytest.raises(SegmentStopped):
        segment(net, image, tile=32, should_stop=stop_at_third)
    assert len(polls) == 3


def test_sensitivity_maps_monotonically_onto_the_threshold():
    assert sensitivity_threshold(0.5) == pytest.approx(DEFAULT_THRESHOLD)
    values = [sensitivity_threshold(s) for s in np.linspace(0.0, 1.0, 21)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert 0.0 < values[-1] < 0.05 and 0.95 < values[0] < 1.0
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError):
            sensitivity_threshold(bad)


@pytest.mark.parametrize("bf16", [False, True])
def test_trainer_smoke(tmp_path, bf16):
    pytest.importorskip("restorer_app.damage_sim")
    from restorer_app.training import segmenter as trainer

    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(2):
        photo = np.round(synthetic_photo(120, 150, seed) * 255).astype(np.uint8)
        Image.fromarray(photo).save(folder / f"photo{seed}.png")
    out = tmp_path / "seg.safetensors"
    net = trainer.train([folder], out, steps=2, batch=2, crop=64, log_every=1, save_every=1, shapes=None, bf16=bf16)
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    loaded = load_segmenter(out)
    assert loaded.info["steps"] == 2 and loaded.info["batch"] == 2 and loaded.info["crop"] == 64
    assert "sim_version" in loaded.info and loaded.info["data"] == [str(folder)] and loaded.info["bf16"] is bf16
    assert np.isfinite(segment(net, np.asarray(Image.open(folder / "photo0.png"))).probability).all()
    with pytest.raises(ValueError):
        trainer.train([tmp_path / "eval" / "x"], out, steps=1)


def test_trainer_class_weights_reach_the_simulator():
    pytest.importorskip("restorer_app.damage_sim")
    from restorer_app.damage_sim import SimSpec
    from restorer_app.damage_sim.spec import class_id
    from restorer_app.training import segmenter as trainer

    photo = np.round(synthetic_photo(120, 150, 0) * 255).astype(np.uint8)
    only_cracks = SimSpec(classes={"crack": 1.0})
    found = set()
    for seed in range(4):
        _, mask, classes = trainer.make_example(photo, np.random.default_rng(seed), crop=96, clean_share=0.0,
                                                spec=only_cracks)
        found |= set(np.unique(classes[mask]).tolist())
    assert found == {class_id("crack")}

    parser = argparse.ArgumentParser()
    assert trainer.parse_class_weights(parser, ["crack=2", "hair=1.5"]) == {"crack": 2.0, "hair": 1.5}
    for bad in (["cracks=2"], ["crack=two"], ["crack=-1"]):
        with pytest.raises(SystemExit):
            trainer.parse_class_weights(parser, bad)


def test_trainer_streams_per_worker_and_time_limit(tmp_path):
    pytest.importorskip("restorer_app.damage_sim")
    from types import SimpleNamespace

    from restorer_app.training import segmenter as trainer

    draws = lambda rng: rng.integers(1 << 30, size=4).tolist()  # noqa: E731
    alone = draws(trainer.stream_rng(7))
    assert draws(trainer.stream_rng(7, SimpleNamespace(num_workers=1, id=0))) == alone
    first, second = (draws(trainer.stream_rng(7, SimpleNamespace(num_workers=2, id=i))) for i in (0, 1))
    assert first != second and alone not in (first, second)

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.round(synthetic_photo(120, 150, 0) * 255).astype(np.uint8)).save(folder / "photo.png")
    out = tmp_path / "seg.safetensors"
    trainer.train([folder], out, steps=50, batch=1, crop=64, shapes=None, time_limit=0.0, save_every=100)
    assert load_segmenter(out).info["steps"] == 1  # stopped after its first step, weights written
