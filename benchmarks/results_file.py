"""Where a benchmark's JSON record goes: ``benchmarks/results/<name>[_<tag>].json``."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, tag: str, report: dict) -> Path:
    """Write ``report`` as indented JSON, say where, and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}{'_' + tag if tag else ''}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return path
