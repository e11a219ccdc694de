"""Weight files: ``.safetensors`` tensors plus JSON metadata (config, data, steps, bits/dim).

safetensors holds raw tensors only, so loading a user-supplied file never runs pickled code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from restorer_app.bundle import bundled_file
from restorer_app.flow.glow import FlowConfig, Glow

DEFAULT_MODEL_NAME = "flow-prior.safetensors"


class WeightsError(Exception):
    """A weight file that cannot be used, with a reason a user can act on."""

    def __init__(self, path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def default_model_path() -> Path:
    """The bundled model: $RESTORER_MODEL, else models/ beside the package (source or frozen)."""
    if os.environ.get("RESTORER_MODEL"):
        return Path(os.environ["RESTORER_MODEL"])
    return bundled_file("models", DEFAULT_MODEL_NAME)


def save_model(model: Glow, path: str | os.PathLike, info: dict | None = None) -> None:
    """Write the weights and a ``restorer`` metadata entry (JSON) atomically."""
    path = Path(path)
    metadata = {"config": model.config.to_dict(), **(info or {})}
    tensors = {k: v.detach().float().contiguous().cpu() if v.is_floating_point() else v.contiguous().cpu()
               for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"restorer": json.dumps(metadata, sort_keys=True)})
    os.chmod(tmp, 0o644)  # a shared artefact, not a secret
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike) -> dict:
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("restorer")
    except FileNotFoundError:
        raise WeightsError(path, "model file not found") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise WeightsError(path, f"not a valid .safetensors weight file ({exc})") from None
    if raw is None:
        raise WeightsError(path, "no restorer metadata (not a Flow Restorer model)")
    return json.loads(raw)


def load_tensors(model: torch.nn.Module, path) -> torch.nn.Module:
    """Fill ``model`` with the tensors of a safetensors file that must match it exactly."""
    with safe_open(str(path), framework="pt") as handle:
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(path, f"weights do not match the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Glow:
    """Load a model for inference (eval mode, on ``device``)."""
    path = Path(path) if path is not None else default_model_path()
    metadata = read_metadata(path)
    model = load_tensors(Glow(FlowConfig.from_dict(metadata["config"])), path)
    model.info = metadata
    model.source_path = path
    return model.eval().to(device)
