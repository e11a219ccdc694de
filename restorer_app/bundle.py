"""Where shipped files (weights, icons, stylesheet) are: in the frozen bundle or the source tree."""

from __future__ import annotations

import sys
from pathlib import Path


def bundled_file(folder: str, name: str) -> Path:
    """``folder/name`` in PyInstaller's unpacked bundle if it is there, else beside the package
    in a source checkout (returned even if missing, so the error names the expected place)."""
    roots = [Path(getattr(sys, "_MEIPASS", "")), Path(__file__).resolve().parents[1]]
    for root in roots:
        if (root / folder / name).is_file():
            return root / folder / name
    return roots[-1] / folder / name
