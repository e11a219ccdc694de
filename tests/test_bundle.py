"""Shipped files: the one list (restorer_app/shipped.py), where bundled_file finds them (frozen
bundle, installed package, source checkout) and what `restorer --version` says about them.
The wheel itself is built, installed and run by packaging/wheel_check.sh (CI)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

import restorer_app
from restorer_app import bundle
from restorer_app.shipped import SHIPPED, SHIPPED_DIR, shipped_paths

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def put(root: Path, folder: str, name: str, text: str) -> Path:
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """A fake installed package's _shipped/ and a fake source checkout; not frozen."""
    shipped, source = tmp_path / "site" / "restorer_app" / SHIPPED_DIR, tmp_path / "checkout"
    monkeypatch.setattr(bundle, "SHIPPED_ROOT", shipped)
    monkeypatch.setattr(bundle, "SOURCE_ROOT", source)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    return shipped, source


def test_bundled_file_prefers_the_frozen_bundle_then_shipped_then_the_checkout(roots, tmp_path, monkeypatch):
    shipped, source = roots
    in_source = put(source, "models", "w.safetensors", "checkout")
    assert bundle.bundled_file("models", "w.safetensors") == in_source
    in_shipped = put(shipped, "models", "w.safetensors", "installed")
    assert bundle.bundled_file("models", "w.safetensors") == in_shipped
    frozen = tmp_path / "frozen"
    monkeypatch.setattr(sys, "_MEIPASS", str(frozen), raising=False)
    assert bundle.bundled_file("models", "w.safetensors") == in_shipped  # the bundle lacks it
    in_frozen = put(frozen, "models", "w.safetensors", "frozen")
    assert bundle.bundled_file("models", "w.safetensors") == in_frozen


def test_a_missing_file_names_the_place_it_was_expected(roots, tmp_path, monkeypatch):
    shipped, source = roots
    # an installed package (no checkout around it): the package's _shipped/
    assert bundle.bundled_file("models", "gone.safetensors") == shipped / "models" / "gone.safetensors"
    # a source checkout: its models/
    put(source, ".", "pyproject.toml", "[project]\nname = 'flow-restorer'\n")
    assert bundle.bundled_file("models", "gone.safetensors") == source / "models" / "gone.safetensors"
    # the frozen app: its bundle
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "frozen"), raising=False)
    assert bundle.bundled_file("models", "gone.safetensors") == tmp_path / "frozen" / "models" / "gone.safetensors"


def test_the_cwd_is_not_searched_outside_a_frozen_app(roots, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    put(tmp_path, "models", "w.safetensors", "a stranger's")
    assert bundle.bundled_file("models", "w.safetensors") == roots[0] / "models" / "w.safetensors"


def test_the_shipped_list_names_checkout_files_and_no_training_campaign():
    from restorer_app.flow.weights import DEFAULT_MODEL_NAME
    from restorer_app.restore.damage_net import DEFAULT_DETECTOR_NAME, GREY_DETECTOR_NAME

    paths = shipped_paths()
    assert len(set(paths)) == len(paths) == len(SHIPPED)
    for folder, name in SHIPPED:
        assert (ROOT / folder / name).is_file(), f"{folder}/{name} is listed but not in the checkout"
        assert folder in ("models", "resources") and "/" not in name
    assert not [p for p in paths if p.startswith("models/campaign") or p.endswith((".jsonl", ".pt", ".curves.png"))]
    assert {"models/" + DEFAULT_MODEL_NAME, "models/" + DEFAULT_DETECTOR_NAME, "models/" + GREY_DETECTOR_NAME,
            "models/MODEL_CARD.md"} <= set(paths)
    # every resource ships (icons, stylesheet, desktop entry), so a new one cannot be forgotten
    assert {f"resources/{p.name}" for p in (ROOT / "resources").iterdir() if p.is_file()} <= set(paths)
    assert {f"{folder}/{name}" for _, folder, name in bundle.DIGESTED} <= set(paths)


def test_version_prints_the_version_and_the_bundled_weights_digests(capsys):
    from restorer_app.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"restorer {PYPROJECT_VERSION}"
    digests = re.findall(r"sha256 ([0-9a-f]{12})\s", out)
    assert len(digests) == len(bundle.DIGESTED), out
    for (_, folder, name), digest in zip(bundle.DIGESTED, digests):
        assert digest == hashlib.sha256(bundle.bundled_file(folder, name).read_bytes()).hexdigest()[:12]


def test_version_without_an_installed_distribution_is_pyprojects(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    assert bundle.package_version() == PYPROJECT_VERSION
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert bundle.package_version() == PYPROJECT_VERSION
    # the frozen app's last resort, and what provenance records: it must not drift from pyproject
    assert restorer_app.__version__ == PYPROJECT_VERSION


def test_a_missing_weight_file_is_reported_not_raised(roots):
    shipped, _ = roots
    put(shipped, "models", "flow-prior.safetensors", "not really weights")
    report = bundle.version_report().splitlines()
    assert re.fullmatch(r"flow prior: +sha256 [0-9a-f]{12}  .*flow-prior\.safetensors", report[1])
    assert "MISSING, expected at" in report[2] and "damage-net.safetensors" in report[2]


def test_about_shows_what_version_prints(qtbot):
    from restorer_app.gui.about_dialog import AboutDialog

    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert f"Flow Restorer {PYPROJECT_VERSION}" in text
    for _, path, digest in bundle.bundled_digests():
        assert digest and f"sha256 {digest}" in text and str(path) in text
