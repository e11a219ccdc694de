"""Provenance sidecars: a JSON record next to each derivative saying exactly what was done
(input, mask, model and output hashes, settings, seed, device, versions, times, per-patch
statistics), so an archive can verify and reproduce a restoration."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from restorer_app import __version__

from .atomic import atomic_output

SCHEMA = "flow-restorer-provenance/1"
SOFTWARE = "Flow Restorer"
# distribution name -> module name (the module's __version__ is the fallback in frozen apps)
_VERSIONED = {"torch": "torch", "numpy": "numpy", "pillow": "PIL", "tifffile": "tifffile",
              "imagecodecs": "imagecodecs"}


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so huge scans need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def provenance_path(output_path: str | os.PathLike) -> Path:
    """``<output>.provenance.json`` beside the output."""
    output_path = Path(output_path)
    return output_path.with_name(output_path.name + ".provenance.json")


def write_provenance(output_path: str | os.PathLike, *, input_path, mask_path, model_path,
                     model_sha256: str | None = None, settings: dict, seed: int, device: str,
                     started_at, finished_at, patch_stats: dict,
                     extra: dict | None = None) -> Path:
    """Write the sidecar for a finished output atomically (replacing an older one); return its
    path. Times may be datetimes (naive ones are taken as UTC) or POSIX timestamps."""
    started, finished = _utc(started_at), _utc(finished_at)
    if model_path is not None and model_sha256 is None:
        model_sha256 = sha256_file(model_path)
    record = {
        "schema": SCHEMA,
        "software": {"name": SOFTWARE, **software_versions()},
        "input": _file_entry(input_path),
        "mask": _file_entry(mask_path) if mask_path is not None else None,
        "output": _file_entry(output_path),
        "model": None if model_path is None else {
            "name": Path(model_path).name, "path": str(Path(model_path).resolve()),
            "sha256": model_sha256},
        "settings": settings,
        "seed": seed,
        "device": device,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
        "duration_s": round((finished - started).total_seconds(), 3),
        "patch_stats": patch_stats,
        "extra": extra or {},
    }
    path = provenance_path(output_path)
    text = json.dumps(record, indent=2, default=_json_default)
    with atomic_output(path, overwrite=True) as f:
        f.write(text.encode("utf-8") + b"\n")
    return path


def xmp_history_entry(settings: dict, *, model_name: str | None = None, seed: int | None = None,
                      when=None, action: str = "edited") -> dict:
    """The short ``xmp_history`` dict for ``write_image``: one stEvt naming this software."""
    params = {**settings, **({"model": model_name} if model_name else {}),
              **({"seed": seed} if seed is not None else {})}
    return {
        "action": action,
        "when": _utc(when if when is not None else dt.datetime.now(dt.timezone.utc))
        .isoformat(timespec="seconds").replace("+00:00", "Z"),
        "software": f"{SOFTWARE} {__version__}",
        "parameters": "restored with a flow prior; " + "; ".join(
            f"{k}={v}" for k, v in params.items() if v is not None),
    }


def software_versions() -> dict[str, str | None]:
    """Versions of Python, this app and the libraries that shape the result."""
    versions = {"restorer_app": __version__, "python": platform.python_version()}
    for dist, module in _VERSIONED.items():
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = getattr(sys.modules.get(module), "__version__", None)
    versions["platform"] = platform.platform()
    return versions


def _file_entry(path) -> dict[str, str]:
    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}


def _utc(value) -> dt.datetime:
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, ISO string or timestamp, not {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _json_default(value: Any):
    """Make numpy scalars/arrays, paths and datetimes JSON-safe."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dt.datetime):
        return _utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)
