"""`--mask auto`: the detector's mask drives the restoration, and odd inputs work or fail in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from restorer_app.cli import main as cli_main
from restorer_app.flow.weights import save_model
from restorer_app.imaging.provenance import sha256_file
from restorer_app.damage_sim import DAMAGE_CLASSES
from restorer_app.restore.damage_net import default_detector_path
from restorer_app.restore.segmenter import default_segmenter_path
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
    detector = record["extra"]["detector"]  # by default the chain alone, with its damage network
    assert detector["weights"] == [{"name": "damage-net.safetensors", "sha256": sha256_file(default_detector_path())}]
    assert detector["sensitivity"] == 0 and 0 < detector["repaired_fraction"] < 0.5 and detector["classes_found"] == {}
    assert detector["look_again"] is None  # the chain alone looks once


def test_a_sensitivity_above_zero_adds_the_segmenter_and_names_it(tmp_path, model):
    damaged, _ = add_scratches(synthetic_photo(96, 96, seed=2), rng=5)
    scan, out = tmp_path / "scan.png", tmp_path / "out.png"
    Image.fromarray((damaged * 255).round().astype(np.uint8)).save(scan)
    assert _restore(scan, "-o", out, "--mask", "auto", "--model", model, "--sensitivity", 0.5) == 0
    record = json.loads((tmp_path / "out.png.provenance.json").read_text())
    detector = record["extra"]["detector"]
    assert detector["weights"] == [{"name": "damage-net.safetensors", "sha256": sha256_file(default_detector_path())},
                                   {"name": "damage-segmenter.safetensors", "sha256": sha256_file(default_segmenter_path())}]
    assert detector["sensitivity"] == 0.5 and set(detector["classes_found"]) <= set(DAMAGE_CLASSES)
    assert detector["look_again"]["reach_px"] > 0 and 0 <= detector["look_again"]["repaired_fraction"] < 0.5
    assert "damage-segmenter.safetensors" in record["extra"]["mask_source"]


def test_a_higher_sensitivity_repairs_at_least_as_much(tmp_path, model):
    """The segmenter's threshold falls as the sensitivity rises: its repair mask can only grow."""
    damaged, _ = add_scratches(synthetic_photo(96, 96, seed=3), rng=6)
    scan = tmp_path / "scan.png"
    Image.fromarray((damaged * 255).round().astype(np.uint8)).save(scan)
    fractions = []
    for sensitivity in (0.0, 1.0):
        out = tmp_path / f"out{sensitivity}.png"
        assert _restore(scan, "-o", out, "--mask", "auto", "--model", model, "--sensitivity", sensitivity) == 0
        record = json.loads((tmp_path / f"out{sensitivity}.png.provenance.json").read_text())
        assert record["settings"]["sensitivity"] == sensitivity
        fractions.append(record["extra"]["detector"]["repaired_fraction"])
    assert fractions[0] <= fractions[1]


def test_auto_mask_on_a_greyscale_scan_names_the_greyscale_network(tmp_path, model):
    """Greyscale scans are read by a network of their own: the provenance says which one."""
    damaged, _ = add_scratches(synthetic_photo(96, 96, seed=2).mean(axis=2, keepdims=True), rng=5)
    scan, out = tmp_path / "scan.png", tmp_path / "out.png"
    Image.fromarray((damaged[:, :, 0] * 255).round().astype(np.uint8)).save(scan)
    assert _restore(scan, "-o", out, "--mask", "auto", "--model", model) == 0
    record = json.loads((tmp_path / "out.png.provenance.json").read_text())
    assert record["extra"]["detector"]["weights"][0]["name"] == "damage-net-grey.safetensors"
    assert "damage-net-grey.safetensors" in record["extra"]["mask_source"]


def test_a_painted_mask_names_no_detector(tmp_path, model):
    photo = (synthetic_photo(72, 72, seed=1) * 255).round().astype(np.uint8)
    mask = np.zeros((72, 72), np.uint8)
    mask[30:34, 20:50] = 255
    scan, mask_file, out = tmp_path / "scan.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(photo).save(scan)
    Image.fromarray(mask).save(mask_file)
    assert _restore(scan, "-o", out, "--mask", mask_file, "--model", model) == 0
    record = json.loads((tmp_path / "out.png.provenance.json").read_text())
    assert record["extra"]["detector"] is None and record["extra"]["mask_source"] == "mask.png"


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


def test_second_pass_mask_keeps_only_what_lies_on_or_beside_the_first_repair():
    from restorer_app.restore.damage_finder import GROWTH, LOOK_AGAIN_REACH, second_pass_mask

    first = np.zeros((80, 80), bool)
    first[20:24, 10:40] = True
    found = np.zeros((80, 80), bool)
    found[22, 38:46] = True  # the rest of a scratch the first look cut short
    found[70, 70] = True  # picture far away, judged clean the first time
    second = second_pass_mask(first, found)
    assert second[22, 38:46].all() and second[22 - GROWTH, 42]  # kept, grown like the first look
    assert not second[60:, 60:].any()
    assert not second[22 + LOOK_AGAIN_REACH + 2 :, :].any()


def test_no_second_look_at_sensitivity_zero(monkeypatch):
    from restorer_app.restore import damage_finder

    monkeypatch.setattr(damage_finder, "segment", lambda *a, **k: pytest.fail("the segmenter ran at sensitivity 0"))
    first = damage_finder.FoundDamage(repair=np.ones((8, 8), bool), found=np.ones((8, 8), bool),
                                      chain=np.ones((8, 8), bool), sensitivity=0.0)
    assert not damage_finder.look_again(first, np.zeros((8, 8, 3), np.float32)).any()


def test_look_again_repairs_a_second_pass_that_resumes_from_its_own_patches(tmp_path, model, monkeypatch):
    """What the second look finds is restored in a pass of its own; its patches are stored apart
    from the first pass's, so a rerun from the store solves nothing and writes the same bytes."""
    from restorer_app.jobs.restore_file import SecondPassStore, restore_file
    from restorer_app.restore import damage_finder
    from restorer_app.restore.settings import RestoreSettings
    from tests.conftest import DictStore

    damaged, _ = add_scratches(synthetic_photo(128, 128, seed=2), rng=5)
    pixels = (damaged * 255).round().astype(np.uint8)
    scan = tmp_path / "scan.png"
    Image.fromarray(pixels).save(scan)
    looked = []

    def second_look(first, restored, should_stop=None):
        looked.append(first.repair.copy())
        again = np.zeros(first.repair.shape, bool)
        again[100:110, 100:120] = True  # far from the scratches: only the second pass touches it
        return again & ~first.repair

    monkeypatch.setattr(damage_finder, "look_again", second_look)
    settings = RestoreSettings(preset="fast", device="cpu", sensitivity=0.5, model_path=str(model))
    store, seen, totals = DictStore(), [], []
    summary = restore_file(scan, tmp_path / "a.png", settings, mask_path="auto", patch_store=store,
                           on_progress=lambda p: seen.append((p.done, p.total)), on_plan=lambda p: totals.append(p.patches))
    first = looked[0]
    out = np.asarray(Image.open(tmp_path / "a.png"))
    second_only = np.zeros(first.shape, bool)
    second_only[100:110, 100:120] = True
    second_only &= ~first
    assert (out[second_only] != pixels[second_only]).any()
    assert any(i >= SecondPassStore.OFFSET for i in store.patches) and any(i < SecondPassStore.OFFSET for i in store.patches)
    record = json.loads((tmp_path / "a.png.provenance.json").read_text())
    look = record["extra"]["detector"]["look_again"]
    assert look["patches"] > 0 and look["repaired_fraction"] == pytest.approx(second_only.mean(), abs=1e-6)
    assert summary["computed"] == len(store.patches)
    # one progress count over both passes: it never goes back and ends at both passes' patches
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (len(store.patches), len(store.patches))
    assert totals == [summary["patches"], len(store.patches)]

    puts = store.puts
    again = restore_file(scan, tmp_path / "b.png", settings, mask_path="auto", patch_store=store)
    assert store.puts == puts and again["computed"] == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), out)
