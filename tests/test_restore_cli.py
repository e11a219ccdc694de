"""`restorer restore`: a derivative plus provenance, and one-line errors with exit status 2."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from restorer_app.cli import main as cli_main
from restorer_app.flow.weights import save_model
from tests.conftest import make_tiny_flow, synthetic_photo


def _setup(tmp_path):
    model = tmp_path / "tiny.safetensors"
    save_model(make_tiny_flow(), model, {"steps": 0})
    scan = tmp_path / "scan.png"
    Image.fromarray((synthetic_photo(30, 40) * 255).round().astype(np.uint8)).save(scan)
    return model, scan


def test_restore_writes_output_and_provenance(tmp_path):
    model, scan = _setup(tmp_path)
    before = scan.read_bytes()
    out = tmp_path / "restored.png"
    code = cli_main(["restore", str(scan), "-o", str(out), "--model", str(model), "--preset", "fast",
                     "--device", "cpu", "--quiet"])
    assert code == 0 and scan.read_bytes() == before
    assert np.asarray(Image.open(out)).shape == (30, 40, 3)
    record = json.loads((tmp_path / "restored.png.provenance.json").read_text())
    assert record["settings"]["preset"] == "fast" and record["seed"] == 0


def test_restore_errors_are_one_line_and_exit_2(tmp_path, capsys):
    model, scan = _setup(tmp_path)
    bad_mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(bad_mask)
    cases = [
        [str(tmp_path / "missing.png"), "-o", str(tmp_path / "a.png")],
        [str(scan), "-o", str(tmp_path / "b.png"), "--mask", str(bad_mask)],
        [str(scan), "-o", str(scan)],
        [str(scan), "-o", str(tmp_path / "c.png"), "--strength", "strong"],
    ]
    for args in cases:
        assert cli_main(["restore", *args, "--model", str(model), "--device", "cpu", "-q"]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("restorer: error: "), err
