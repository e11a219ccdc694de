"""`--mask auto`: the detector's mask drives the restoration, and odd inputs work or fail in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from restorer_app.cli import main as cli_main
from restorer_app.flow.weights import save_model
from restorer_app.restore.degradations import add_scratches
from tests.conftest import make_tiny_flow, synthetic_photo


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_model(make_tiny_flow(), path, {"steps": 0})
    return path


def _restore(*args) -> int:
    return cli_main(["restore", *map(str, args), "--preset", "fast", "--device", "cpu", "-q"])


def test_auto_mask_repairs_the_detected_damage_only(tmp_path, model):
    damaged, truth = add_scratches(synthetic_photo(96, 96, seed=2), rng=5)
    pixels = (damaged * 255).round().astype(np.uint8)
    scan, out = tmp_path / "scan.png", tmp_path / "out.png"
    Image.fromarray(pixels).save(scan)
    assert _restore(scan, "-o", out, "--mask", "auto", "--model", model) == 0
    result = np.asarray(Image.open(out))
    changed = (result != pixels).any(axis=2)
    assert changed.any() and (changed & truth).sum() > 0.5 * changed.sum()  # the repair lands on damage
    record = json.loads((tmp_path / "out.png.provenance.json").read_text())
    assert record["extra"]["mask_source"].startswith("detected") and record["extra"]["plan"]["scope"] == "mask"


def test_auto_mask_that_finds_nothing_restores_nothing(tmp_path, model, capsys):
    scan, out = tmp_path / "blank.png", tmp_path / "out.png"
    Image.fromarray(np.full((70, 80, 3), 128, np.uint8)).save(scan)
    assert _restore(scan, "-o", out, "--mask", "auto", "--model", model) == 0
    assert "nothing was restored" in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(scan)))


@pytest.mark.parametrize("kind", ["grey16", "rgba", "tiny"])
def test_auto_mask_on_odd_inputs(tmp_path, model, kind, capsys):
    photo = add_scratches(synthetic_photo(72, 72, seed=4), rng=1)[0]
    if kind == "grey16":
        scan = tmp_path / "scan.tif"
        tifffile.imwrite(scan, (photo.mean(axis=2) * 65535).round().astype(np.uint16))
    elif kind == "rgba":
        scan = tmp_path / "scan.png"
        alpha = np.full((72, 72, 1), 200, np.uint8)
        Image.fromarray(np.concatenate([(photo * 255).round().astype(np.uint8), alpha], axis=2)).save(scan)
    else:
        scan = tmp_path / "scan.png"
        Image.fromarray((photo[:20, :30] * 255).round().astype(np.uint8)).save(scan)
    out = tmp_path / f"out{scan.suffix}"
    code = _restore(scan, "-o", out, "--mask", "auto", "--model", model)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0 or (code == 2 and len(err) == 1 and err[0].startswith("restorer: error: ")), err
    if code == 0:
        read = tifffile.imread if kind == "grey16" else (lambda path: np.asarray(Image.open(path)))
        before, after = read(scan), read(out)
        assert after.shape == before.shape and after.dtype == before.dtype


def test_queue_add_accepts_auto_and_refuses_scope_mask_without_a_mask(tmp_path, model, monkeypatch, capsys):
    monkeypatch.setenv("RESTORER_HOME", str(tmp_path / "home"))
    scan = tmp_path / "scan.png"
    Image.fromarray((synthetic_photo(40, 40) * 255).round().astype(np.uint8)).save(scan)
    assert cli_main(["queue", "add", str(scan), "-o", str(tmp_path / "a.png"), "--mask", "auto"]) == 0
    assert cli_main(["queue", "add", str(scan), "-o", str(tmp_path / "b.png"), "--scope", "mask"]) == 2
    assert "no damage mask" in capsys.readouterr().err
