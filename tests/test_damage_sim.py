"""The damage simulator: reproducible, masks exactly what it changed, every class drawable, tones
and damaged fraction as specified, and the real-shape library round-trips through its cache.
Uses a tiny fake damage_shapes folder, never ../shared data."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from restorer_app.damage_sim import (
    DAMAGE_CLASSES, TONES, ShapeLibrary, SimSpec, SimulatedDamage, default_shape_library, simulate,
)
from restorer_app.damage_sim import shapes as shapes_module
from restorer_app.damage_sim.canvas import VISIBLE
from restorer_app.damage_sim.tones import RAMPS, apply_tone


def photo(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """Mid-tone gradients and a few discs: damage of either polarity shows everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.25 + 0.5 * x / w, 0.25 + 0.5 * y / h, 0.5 + 0.2 * np.sin(x / 6.0) * np.cos(y / 9.0)], axis=2)
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 15)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0.2, 0.8, 3)
    return img.astype(np.float32)


def change(result: SimulatedDamage) -> np.ndarray:
    return np.abs(result.image - result.clean).max(axis=2)


# ---- a tiny fake damage_shapes folder ------------------------------------------------------

def make_shapes_folder(root):
    """labels/scan_01_labels.png with one artefact of each label, plus artefacts.csv."""
    labels = np.zeros((60, 90), np.uint8)
    boxes = []
    labels[5:9, 5:10] = 1  # dust
    boxes.append(("Dust", 5, 5, 5, 4))
    labels[20:26, 4:12] = 2  # dirt, with a neighbour's pixels reaching into its crop
    labels[22:24, 13:16] = 2
    boxes.append(("Dirt", 4, 20, 8, 6))
    for i in range(20):  # short hair: a diagonal line 2 px thick
        labels[30 + i, 20 + i : 22 + i] = 3
    boxes.append(("Short hair", 20, 30, 21, 20))
    labels[5, 40:85] = 4  # long hair
    labels[6, 40:85] = 4
    boxes.append(("Long hair", 40, 5, 45, 2))
    labels[50:53, 30:80] = 5  # scratch
    boxes.append(("Scratch", 30, 50, 50, 3))
    (root / "labels").mkdir(parents=True)
    Image.fromarray(labels).save(root / "labels" / "scan_01_labels.png")
    with open(root / "artefacts.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["scan", "key", "label", "n_points", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "polygon_area_px"])
        for key, (name, x, y, w, h) in enumerate(boxes):
            writer.writerow(["scan_01", key, name, 4, float(x), float(y), float(w), float(h), float(w * h)])
    return root


@pytest.fixture
def shapes_folder(tmp_path):
    return make_shapes_folder(tmp_path / "damage_shapes")


@pytest.fixture
def library(shapes_folder, tmp_path):
    return ShapeLibrary.load(shapes_folder, cache_dir=tmp_path / "cache")


# ---- reproducibility -----------------------------------------------------------------------

def test_same_seed_is_bit_identical_and_seeds_differ():
    img = photo()
    spec = SimSpec(fraction=(0.03, 0.08))
    a = simulate(img, 5, spec)
    b = simulate(img, np.random.default_rng(5), spec)
    for field in ("image", "clean", "mask", "classes"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.defects == b.defects
    c = simulate(img, 6, spec)
    assert not np.array_equal(a.image, c.image)


def test_outputs_have_the_promised_types():
    img = photo()
    r = simulate(img, 1)
    assert r.image.dtype == np.float32 and r.image.shape == img.shape
    assert r.clean.dtype == np.float32 and r.clean.shape == img.shape
    assert 0.0 <= r.image.min() and r.image.max() <= 1.0
    assert r.mask.dtype == bool and r.mask.shape == img.shape[:2]
    assert r.classes.dtype == np.uint8 and np.array_equal(r.classes > 0, r.mask)
    assert r.defects and all(d["class"] in DAMAGE_CLASSES for d in r.defects)
    json.dumps(r.defects)  # plain Python values only
    for d in r.defects:
        top, left, bottom, right = d["bbox"]
        assert 0 <= top < bottom <= img.shape[0] and 0 <= left < right <= img.shape[1]
    # uint8 and grey input are accepted
    r8 = simulate((img * 255).astype(np.uint8)[:, :, 0], 1)
    assert r8.image.shape == img.shape


# ---- every class, the mask rule --------------------------------------------------------------

@pytest.mark.parametrize("with_library", [False, True], ids=["procedural", "library"])
@pytest.mark.parametrize("name", DAMAGE_CLASSES)
def test_each_class_alone_changes_exactly_its_mask(name, with_library, library):
    img = photo()
    spec = SimSpec.only(name, finish=False, fraction=(0.03, 0.05), tone="grey")
    r = simulate(img, 11, spec, library if with_library else None)
    cid = DAMAGE_CLASSES.index(name) + 1
    assert r.mask.any()
    assert np.all(r.classes[r.mask] == cid) and np.all(r.classes[~r.mask] == 0)
    diff = change(r)
    assert np.all(diff[r.mask] >= VISIBLE - 1.5 / 255)  # visible, up to 8-bit rounding
    assert np.array_equal(r.image[~r.mask], r.clean[~r.mask])  # nothing changed outside
    assert {d["class"] for d in r.defects} == {name}


def test_mask_includes_the_soft_fringe():
    grey = np.full((128, 128, 3), 0.5, np.float32)
    r = simulate(grey, 2, SimSpec.only("dust", finish=False, fraction=(0.03, 0.03), tone="keep"))
    diff = change(r)
    count, parts = cv2.connectedComponents(r.mask.astype(np.uint8))
    fringe = total = 0
    for k in range(1, count):
        speck = parts == k
        core = diff[speck].max()
        if core >= 3 * VISIBLE:  # room for a fringe between the threshold and half the core
            fringe += int(np.count_nonzero(speck & (diff < 0.5 * core)))
            total += int(np.count_nonzero(speck))
    assert total > 0 and fringe > 0.1 * total  # soft edges are in the mask, not only the cores


def test_invisible_damage_is_not_masked():
    white = np.ones((64, 64, 3), np.float32)
    spec = SimSpec.only("stain", finish=False, fraction=(0.05, 0.05), tone="keep")
    r = simulate(white, 4, spec)
    assert np.array_equal(r.image[~r.mask], r.clean[~r.mask])
    assert np.all(change(r)[r.mask] >= VISIBLE - 1.5 / 255)


def test_finish_is_shared_by_image_and_clean():
    img = photo(128, 128)
    spec = SimSpec.only("dust", fraction=(0.005, 0.005), tone="grey", grain=(6.0, 6.0), blur=(0.8, 0.8),
                        jpeg=(75, 75), jpeg_prob=1.0)
    r = simulate(img, 8, spec)
    assert r.finish == {"grain": 6.0, "blur": 0.8, "jpeg": 75}
    # the same grain, blur and JPEG in both: away from the damage (beyond blur and JPEG blocks) they agree
    far = cv2.dilate(r.mask.astype(np.uint8), np.ones((33, 33), np.uint8)) == 0
    assert far.mean() > 0.3
    assert np.array_equal(r.image[far], r.clean[far])
    # and the clean target carries the grain: it is not just the toned photo
    plain = simulate(img, 8, SimSpec.only("dust", finish=False, fraction=(0.005, 0.005), tone="grey"))
    assert np.abs(r.clean - plain.clean).mean() > 1.0 / 255


# ---- tones and fraction ---------------------------------------------------------------------

def test_tones():
    img = photo()
    assert set(TONES) == {"keep", "grey", "sepia", "cyanotype"}
    assert np.array_equal(apply_tone(img, "keep"), img)
    grey = apply_tone(img, "grey")
    assert np.array_equal(grey[:, :, 0], grey[:, :, 1]) and np.array_equal(grey[:, :, 1], grey[:, :, 2])
    sepia = apply_tone(img, "sepia")
    assert np.all(sepia[:, :, 0] >= sepia[:, :, 1]) and np.all(sepia[:, :, 1] >= sepia[:, :, 2])
    assert np.all(sepia[:, :, 0] - sepia[:, :, 2] > 0.05)  # a visible warm hue everywhere
    cyan = apply_tone(img, "cyanotype")
    assert np.all(cyan[:, :, 2] >= cyan[:, :, 1]) and np.all(cyan[:, :, 1] >= cyan[:, :, 0])
    assert np.all(cyan[:, :, 2] - cyan[:, :, 0] > 0.05)
    assert np.allclose(apply_tone(np.ones((2, 2, 3), np.float32), "sepia"), RAMPS["sepia"][2])
    for tone in ("grey", "sepia", "cyanotype"):
        r = simulate(img, 3, SimSpec.only("tear", finish=False, tone=tone))
        assert r.tone == tone
        clean = r.clean
        if tone == "grey":
            assert np.ptp(clean, axis=2).max() == 0
        else:
            hi, lo = (0, 2) if tone == "sepia" else (2, 0)
            assert np.all(clean[:, :, hi] >= clean[:, :, lo])
    tones = {simulate(img, s, SimSpec(fraction=(0.003, 0.003))).tone for s in range(30)}
    assert tones == set(TONES)
    with pytest.raises(ValueError):
        simulate(img, 0, SimSpec(tone="purple"))


@pytest.mark.parametrize("spec", [
    SimSpec.only("dust", finish=False, fraction=(0.05, 0.05)),
    SimSpec.only("crack", finish=False, fraction=(0.08, 0.08)),
    SimSpec(fraction=(0.04, 0.04)),
], ids=["dust", "crack", "mixed"])
def test_target_fraction_is_roughly_honoured(spec):
    target = spec.fraction[0]
    for seed in range(3):
        r = simulate(photo(128, 128, seed), seed, spec)
        assert 0.6 * target <= r.mask.mean() <= 1.8 * target, (seed, r.mask.mean())


@pytest.mark.parametrize("name", DAMAGE_CLASSES)
def test_a_tiny_target_still_draws_the_class(name):
    r = simulate(photo(128, 128), 0, SimSpec.only(name, finish=False, fraction=(0.003, 0.003), tone="grey"))
    assert r.mask.any() and r.mask.mean() < 0.03


def test_plate_cracks_are_long_mid_tone_lines_in_the_print_tone():
    """A cracked glass plate prints as a long thin line that darkens (or lightens) the picture,
    not a paper-white or black one: its pixels keep the sepia order R >= G >= B."""
    from restorer_app.damage_sim.canvas import Canvas
    from restorer_app.damage_sim.cracks import _plate

    toned = apply_tone(photo(160, 160), "sepia")
    for seed in range(8):
        canvas = Canvas(toned, np.ones(3, np.float32))
        layers, params = _plate(canvas, np.random.default_rng(seed), budget=2000.0)
        canvas.apply(5, layers)
        canvas.finish()
        assert params["form"] == "plate" and params["length"] > 0.4 * np.hypot(160, 160) - 3
        if params["dark"]:
            hit = canvas.mask & (np.abs(canvas.image - toned).max(axis=2) > 0.1)
            assert hit.any()
            assert np.all(canvas.image[hit][:, 0] + 1e-6 >= canvas.image[hit][:, 1])
            assert np.all(canvas.image[hit][:, 1] + 1e-6 >= canvas.image[hit][:, 2])
            assert np.all(canvas.image[hit].mean(axis=1) > 0.1)  # mid-tone, not black
        assert 0 < canvas.mask.mean() < 0.05


@pytest.mark.parametrize("shape", [(6, 6), (17, 120), (120, 17)])
def test_small_and_thin_images(shape, library):
    img = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    for seed, name in enumerate(DAMAGE_CLASSES):
        r = simulate(img, seed, SimSpec.only(name), library if seed % 2 else None)
        assert r.image.shape == img.shape and r.mask.shape == shape


def test_light_and_heavy_damage_both_occur():
    fractions = [simulate(photo(64, 64), s, SimSpec.only("dust", finish=False)).mask.mean() for s in range(12)]
    assert min(fractions) < 0.015 and max(fractions) > 0.04


def test_spec_validation():
    with pytest.raises(ValueError):
        SimSpec(classes={"smudge": 1.0})
    with pytest.raises(ValueError):
        SimSpec(classes={"dust": 0.0})
    with pytest.raises(ValueError):
        SimSpec(fraction=(0.2, 0.1))


# ---- the shape library ----------------------------------------------------------------------

def test_shape_library_extracts_each_artefact(library):
    assert {name: library.count(name) for name in shapes_module.SHAPE_CLASSES} == {
        "dust": 1, "dirt": 1, "short_hair": 1, "long_hair": 1, "scratch": 1}
    assert library.shapes["dust"][0].shape == (4, 5) and library.shapes["dust"][0].all()
    dirt = library.shapes["dirt"][0]
    assert dirt.shape == (6, 8) and dirt.sum() == 48  # the neighbour reaching in is dropped
    assert library.shapes["short_hair"][0].sum() == 40
    assert len(library) == 5


def test_shape_library_round_trips_through_its_cache(shapes_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = ShapeLibrary.load(shapes_folder, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(shapes_module, "_extract", lambda *a: pytest.fail("the cache was not used"))
    second = ShapeLibrary.load(shapes_folder, cache_dir=cache)
    for name in shapes_module.SHAPE_CLASSES:
        assert len(first.shapes[name]) == len(second.shapes[name])
        for a, b in zip(first.shapes[name], second.shapes[name]):
            assert a.dtype == b.dtype == bool and np.array_equal(a, b)
    monkeypatch.undo()
    # another csv is another cache entry
    with open(shapes_folder / "artefacts.csv", "a") as f:
        f.write("scan_01,99,Dust,4,5.0,5.0,5.0,4.0,20.0\n")
    third = ShapeLibrary.load(shapes_folder, cache_dir=cache)
    assert third.count("dust") == 2 and len(list(cache.glob("*.npz"))) == 2


def test_default_shape_library_follows_the_env_var(shapes_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORER_DAMAGE_SHAPES", str(shapes_folder))
    lib = default_shape_library(cache_dir=tmp_path / "cache")
    assert lib is not None and lib.count("long_hair") == 1
    monkeypatch.setenv("RESTORER_DAMAGE_SHAPES", str(tmp_path / "missing"))
    assert default_shape_library(cache_dir=tmp_path / "cache") is None


def test_library_shapes_are_used(library):
    r = simulate(photo(), 9, SimSpec.only("dust", "hair", finish=False, fraction=(0.05, 0.05)), library)
    assert any(d.get("source") == "library" for d in r.defects)


def test_plate_crack_share_picks_the_crack_form():
    photo = np.full((160, 160, 3), 0.6, np.float32)
    forms = {share: {d["form"] for seed in range(6)
                     for d in simulate(photo, seed, SimSpec(classes={"crack": 1.0}, plate_crack_share=share)).defects}
             for share in (0.0, 1.0)}
    assert forms[1.0] == {"plate"} and "plate" not in forms[0.0]
    with pytest.raises(ValueError):
        SimSpec(plate_crack_share=1.5)
