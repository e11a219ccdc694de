"""restorer_app.imaging.provenance: the JSON sidecar and the XMP history entry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import pytest

import restorer_app
from restorer_app.imaging import read_image, write_image
from restorer_app.imaging.io import ScanImage
from restorer_app.imaging.provenance import sha256_file, write_provenance, xmp_history_entry

SETTINGS = {"preset": "fast", "strength": "auto", "device": "cpu", "seed": 7}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path):
    paths = {name: tmp_path / name for name in ("in.png", "mask.png", "model.safetensors", "out.tif")}
    for i, path in enumerate(paths.values()):
        path.write_bytes(bytes([i]) * (1000 + i))
    return paths


def test_sha256_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 << 20))
    assert sha256_file(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_sidecar_contents(files, tmp_path):
    started = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    stats = {"patches": 4, "steps": np.int64(350), "mean_loss": np.float32(0.25),
             "per_patch": [{"index": 0, "loss": 0.5}]}
    path = write_provenance(
        files["out.tif"], input_path=files["in.png"], mask_path=files["mask.png"],
        model_path=files["model.safetensors"], settings=SETTINGS, seed=7, device="cpu",
        started_at=started, finished_at=started.timestamp() + 90.5, patch_stats=stats,
        extra={"job_id": 3})
    assert path == tmp_path / "out.tif.provenance.json"
    record = json.loads(path.read_text())
    assert record["input"]["sha256"] == digest(files["in.png"])
    assert record["mask"]["sha256"] == digest(files["mask.png"])
    assert record["output"]["sha256"] == digest(files["out.tif"])
    assert record["model"] == {"name": "model.safetensors",
                               "path": str(files["model.safetensors"].resolve()),
                               "sha256": digest(files["model.safetensors"])}
    assert record["settings"] == SETTINGS and record["seed"] == 7 and record["device"] == "cpu"
    assert record["started_at"] == "2024-05-01T08:00:00Z"
    assert record["finished_at"] == "2024-05-01T08:01:30.500000Z"
    assert record["duration_s"] == 90.5
    assert record["patch_stats"] == {"patches": 4, "steps": 350, "mean_loss": 0.25,
                                     "per_patch": [{"index": 0, "loss": 0.5}]}
    assert record["extra"] == {"job_id": 3}
    versions = record["software"]
    assert versions["restorer_app"] == restorer_app.__version__
    for name in ("python", "torch", "numpy", "pillow", "tifffile"):
        assert versions[name], name
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sidecar_without_mask_and_with_given_model_hash(files):
    naive = dt.datetime(2024, 1, 1, 0, 0, 0)
    path = write_provenance(
        files["out.tif"], input_path=files["in.png"], mask_path=None,
        model_path=files["model.safetensors"], model_sha256="abc", settings={}, seed=0,
        device="cuda", started_at=naive, finished_at=naive, patch_stats={})
    record = json.loads(path.read_text())
    assert record["mask"] is None and record["model"]["sha256"] == "abc"
    assert record["started_at"] == "2024-01-01T00:00:00Z"
    # written again for a re-run: replaced, not refused
    write_provenance(files["out.tif"], input_path=files["in.png"], mask_path=None, model_path=None,
                     settings={}, seed=1, device="cpu", started_at=0, finished_at=1, patch_stats={})
    assert json.loads(path.read_text())["seed"] == 1


def test_xmp_history_entry_goes_into_output(tmp_path):
    entry = xmp_history_entry(SETTINGS, model_name="glow-div2k.safetensors", seed=7,
                              when=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc))
    assert entry["when"] == "2024-05-01T12:00:00Z"
    assert entry["software"] == f"Flow Restorer {restorer_app.__version__}"
    assert "preset=fast" in entry["parameters"] and "model=glow-div2k.safetensors" in entry["parameters"]
    scan = ScanImage(path=None, pixels=np.zeros((4, 4, 3), np.float32), alpha=None, bit_depth=8,
                     icc_profile=None, exif=None, xmp=None, dpi=None, format="PNG")
    write_image(tmp_path / "out.png", scan.pixels, scan, xmp_history=entry)
    xmp = read_image(tmp_path / "out.png").xmp.decode()
    assert "<stEvt:when>2024-05-01T12:00:00Z</stEvt:when>" in xmp
    assert "model=glow-div2k.safetensors" in xmp
