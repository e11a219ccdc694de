"""Where shipped files (weights, icons, stylesheet; the list is ``restorer_app/shipped.py``) are:
in the frozen bundle, in the installed package, or in the source tree. Also what ``restorer
--version`` and the About dialog report about them."""

from __future__ import annotations

import sys
from pathlib import Path

from restorer_app.shipped import SHIPPED_DIR

PACKAGE_DIR = Path(__file__).resolve().parent
#: An installed wheel's copy of the shipped files (``setup.py`` puts them there).
SHIPPED_ROOT = PACKAGE_DIR / SHIPPED_DIR
#: The repository root of a source checkout (an editable install, or no install at all).
SOURCE_ROOT = PACKAGE_DIR.parent

#: The bundled weights ``--version`` and About identify by digest: (label, folder, name).
DIGESTED = (("flow prior", "models", "flow-prior.safetensors"),
            ("damage net", "models", "damage-net.safetensors"),
            ("damage net, grey", "models", "damage-net-grey.safetensors"),
            ("damage segmenter", "models", "damage-segmenter.safetensors"))
DIGEST_CHARS = 12


def _frozen_root() -> Path | None:
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if meipass else None


def search_roots() -> list[Path]:
    """Where shipped files are looked for, in order: PyInstaller's unpacked bundle (only when
    frozen), the installed package's ``_shipped/``, the source checkout's repository root."""
    frozen = _frozen_root()
    return ([frozen] if frozen else []) + [SHIPPED_ROOT, SOURCE_ROOT]


def bundled_file(folder: str, name: str) -> Path:
    """``folder/name`` from the first of :func:`search_roots` that has it. If none has it, the
    place it should be (the frozen bundle; else the source checkout when this is one; else the
    installed package), returned anyway so that the caller's error names the expected place."""
    for root in search_roots():
        if (root / folder / name).is_file():
            return root / folder / name
    if _frozen_root():
        expected = _frozen_root()
    elif (SOURCE_ROOT / "pyproject.toml").is_file():
        expected = SOURCE_ROOT
    else:
        expected = SHIPPED_ROOT
    return expected / folder / name


def package_version() -> str:
    """The installed distribution's version (importlib.metadata); from a source checkout that is
    not installed, its ``pyproject.toml``'s; ``restorer_app.__version__`` as the last resort."""
    import importlib.metadata

    try:
        return importlib.metadata.version("flow-restorer")
    except importlib.metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        with open(SOURCE_ROOT / "pyproject.toml", "rb") as f:
            project = tomllib.load(f).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") == "flow-restorer" and project.get("version"):
        return str(project["version"])
    from restorer_app import __version__

    return __version__


def bundled_digests() -> list[tuple[str, Path, str | None]]:
    """(label, path, first 12 hex digits of the SHA-256, or None if the file is missing) of each
    bundled weight file: the ones the app uses unless told otherwise."""
    from restorer_app.imaging.provenance import sha256_file

    result = []
    for label, folder, name in DIGESTED:
        path = bundled_file(folder, name)
        result.append((label, path, sha256_file(path)[:DIGEST_CHARS] if path.is_file() else None))
    return result


def version_report() -> str:
    """``restorer --version``: the package version, then one line per bundled weight file."""
    lines = [f"restorer {package_version()}"]
    for label, path, digest in bundled_digests():
        lines.append(f"{label + ':':<18}" + (f"sha256 {digest}  {path}" if digest else f"MISSING, expected at {path}"))
    return "\n".join(lines)
