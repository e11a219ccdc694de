"""Repair only what is marked: outside-mask pixels bit-identical, cost follows the damage, and a
change map that marks exactly what changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from restorer_app.cli import main as cli_main
from restorer_app.flow.weights import save_model
from restorer_app.jobs.restore_file import changes_path, restore_file
from restorer_app.restore.pipeline import restore_image, windows_to_solve
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.tiling import plan_tiles
from tests.conftest import make_tiny_flow, synthetic_photo

FAST = RestoreSettings(preset="fast", device="cpu")


def _scratch(height, width) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[5:7, 3:20] = True  # a short scratch in the top-left corner
    return mask


def test_only_windows_following_the_mask_are_solved(tiny_flow):
    photo = synthetic_photo(60, 70)
    mask = _scratch(60, 70)
    grid = plan_tiles(60, 70, patch=16, margin=4)  # tiles of 8 core pixels: 8 x 9 = 72
    solved = windows_to_solve(grid, mask, "mask")
    assert 0 < len(solved) < 12 and len(windows_to_solve(grid, mask, "image")) == len(grid)
    reports = []
    out = restore_image(photo, mask, FAST, model=tiny_flow, on_progress=reports.append)
    assert len(reports) == len(solved) and reports[-1].total == len(solved)
    assert np.array_equal(out[~mask], photo[~mask])
    assert not np.array_equal(out[mask], photo[mask])


def test_scope_image_restores_everywhere_and_mask_scope_needs_a_mask(tiny_flow):
    photo = synthetic_photo(30, 30)
    mask = _scratch(30, 30)
    whole = restore_image(photo, mask, RestoreSettings(preset="fast", device="cpu", scope="image"), model=tiny_flow)
    assert not np.array_equal(whole[~mask], photo[~mask])
    with pytest.raises(ValueError, match="no damage mask"):
        restore_image(photo, None, RestoreSettings(preset="fast", device="cpu", scope="mask"), model=tiny_flow)


def test_empty_mask_restores_nothing(tiny_flow):
    photo = synthetic_photo(30, 30)
    reports = []
    out = restore_image(photo, np.zeros((30, 30), bool), FAST, model=tiny_flow, on_progress=reports.append)
    assert np.array_equal(out, photo) and reports == []


@pytest.mark.parametrize("depth", [8, 16])
def test_outside_mask_bit_identical_in_files(tmp_path, depth):
    dtype, top = (np.uint8, 255) if depth == 8 else (np.uint16, 65535)
    rng = np.random.default_rng(depth)
    pixels = (synthetic_photo(40, 36) * top).round().astype(dtype)
    pixels ^= rng.integers(0, 3, pixels.shape).astype(dtype)  # low bits that must survive
    scan, out, mask_file = tmp_path / "scan.tif", tmp_path / "out.tif", tmp_path / "mask.png"
    tifffile.imwrite(scan, pixels)
    mask = _scratch(40, 36)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_file)
    summary = restore_file(scan, out, FAST, mask_path=mask_file, model=make_tiny_flow())
    result = tifffile.imread(out)
    assert result.dtype == dtype and np.array_equal(result[~mask], pixels[~mask])
    changes = np.asarray(Image.open(changes_path(out)))
    changed = (result != pixels).any(axis=2)
    assert changes.shape == (40, 36, 3) and changes.dtype == np.uint8
    assert np.array_equal(changes[:, :, 1] > 0, changed)  # exactly the changed pixels
    assert np.array_equal(changes[:, :, 0] > 0, changed & mask)  # synthesised ones in red
    record = json.loads((tmp_path / "out.tif.provenance.json").read_text())
    assert record["extra"]["plan"]["scope"] == "mask" and summary["scope"] == "mask"
    assert record["extra"]["changes"]["synthesised_fraction"] == pytest.approx(changed.sum() / changed.size, abs=1e-6)


def test_image_scope_change_map_separates_cleaned_pixels(tmp_path):
    scan, out, mask_file = tmp_path / "scan.png", tmp_path / "out.png", tmp_path / "mask.png"
    noisy = synthetic_photo(30, 30) + np.random.default_rng(1).normal(0, 0.06, (30, 30, 3))
    pixels = (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)  # noise: the whole image is cleaned
    Image.fromarray(pixels).save(scan)
    mask = _scratch(30, 30)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_file)
    settings = RestoreSettings(preset="fast", device="cpu", scope="image")
    restore_file(scan, out, settings, mask_path=mask_file, model=make_tiny_flow())
    changes = np.asarray(Image.open(changes_path(out)))
    result = np.asarray(Image.open(out))
    changed = (result != pixels).any(axis=2)
    assert np.array_equal(changes[:, :, 1] > 0, changed)
    assert (changed & ~mask).any() and not (changes[:, :, 0][~mask]).any()


def test_cli_scope_mask_without_mask_is_exit_2(tmp_path, capsys):
    model = tmp_path / "tiny.safetensors"
    save_model(make_tiny_flow(), model, {"steps": 0})
    scan = tmp_path / "scan.png"
    Image.fromarray((synthetic_photo(30, 30) * 255).round().astype(np.uint8)).save(scan)
    code = cli_main(["restore", str(scan), "-o", str(tmp_path / "o.png"), "--scope", "mask", "--model", str(model), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no damage mask" in err[0]
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(empty)
    code = cli_main(["restore", str(scan), "-o", str(tmp_path / "e.png"), "--mask", str(empty), "--model", str(model)])
    assert code == 0 and "nothing was restored" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(tmp_path / "e.png")), np.asarray(Image.open(scan)))
