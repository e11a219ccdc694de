"""The resumable training loop behind ``restorer train``.

A checkpoint holds everything the next step depends on (model, optimiser, step, both random
generators, running log), so stopping and resuming yields exactly the uninterrupted run on the
CPU. Non-finite steps (the latent-noise loss can still blow up) are skipped and counted.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from restorer_app.devices import bf16_supported, resolve_device
from restorer_app.flow.glow import FlowConfig, Glow
from restorer_app.flow.weights import load_model, save_model
from restorer_app.training.data import PatchSampler, dequantize, heldout_patches
from restorer_app.training.losses import LossWeights, flow_losses


@dataclass
class TrainSettings:
    data: list[str]
    out: str
    steps: int = 20000
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 200
    clip: float = 50.0
    device: str = "cpu"
    seed: int = 0
    flow: dict = field(default_factory=lambda: FlowConfig().to_dict())
    losses: dict = field(default_factory=lambda: LossWeights().to_dict())
    eval_dir: str | None = None
    eval_patches_per_image: int | None = 16
    eval_every: int = 500
    log_every: int = 50
    checkpoint_every: int = 500
    time_limit: float | None = None
    mixed_precision: bool = True  # bf16 coupling networks where the device has fast bf16
    init: str | None = None  # weights to start from (fine-tuning); the optimiser starts fresh

    @property
    def paths(self) -> dict:
        out = Path(self.out)
        stem = out.with_suffix("")
        return {
            "weights": out,
            "checkpoint": Path(f"{stem}.ckpt.pt"),
            "log": Path(f"{stem}.log.jsonl"),
            "plot": Path(f"{stem}.curves.png"),
        }


def learning_rate(settings: TrainSettings, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak at the last step."""
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = min(1.0, (step - settings.warmup) / max(1, settings.steps - settings.warmup))
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    def __init__(self, settings: TrainSettings, resume: bool = False, echo=print):
        self.settings = settings
        self.echo = echo
        self.device = resolve_device(settings.device)
        self.weights = LossWeights(**settings.losses)
        self.config = FlowConfig.from_dict(settings.flow)
        torch.manual_seed(settings.seed)
        self.model = Glow(self.config, seed=settings.seed).to(self.device)
        self.init_info = self._load_init(settings.init) if settings.init else {}
        if settings.mixed_precision and bf16_supported(self.device):
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            self.model.set_autocast(torch.bfloat16)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.sampler = PatchSampler(settings.data, self.config.patch_size, self.device, seed=settings.seed)
        self.noise = torch.Generator(device=self.device).manual_seed(settings.seed + 1)
        self.heldout = (
            heldout_patches(settings.eval_dir, self.config.patch_size, settings.eval_patches_per_image)
            if settings.eval_dir
            else None
        )
        self.step = 0
        self.patches_seen = 0  # counted, not step x batch: a run resumed with another batch size
        self.stop_requested = False  # set from a signal handler: checkpoint, export, return
        self.skipped = 0
        self.train_seconds = 0.0
        self.last_heldout_bpd: float | None = None
        self.window: dict[str, list[float]] = {}
        paths = settings.paths
        paths["weights"].parent.mkdir(parents=True, exist_ok=True)
        if resume and paths["checkpoint"].exists():
            self._load_checkpoint(paths["checkpoint"])
            self.echo(f"resumed from {paths['checkpoint']} at step {self.step}")
        elif not resume:
            paths["log"].unlink(missing_ok=True)

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint_state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "patches_seen": self.patches_seen,
            "skipped": self.skipped,
            "train_seconds": self.train_seconds,
            "last_heldout_bpd": self.last_heldout_bpd,
            "sampler_rng": self.sampler.state(),
            "noise_rng": self.noise.get_state(),
            "settings": json.dumps(asdict(self.settings)),
        }

    def save_checkpoint(self) -> None:
        path = self.settings.paths["checkpoint"]
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self._checkpoint_state(), tmp)
        os.replace(tmp, path)

    def _load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        saved = json.loads(state["settings"])
        if saved["flow"] != self.settings.flow:
            raise ValueError(f"{path}: checkpoint architecture {saved['flow']} differs from {self.settings.flow}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = state["step"]
        self.patches_seen = state.get("patches_seen", self.step * self.settings.batch)  # older checkpoints: one batch size
        self.skipped = state["skipped"]
        self.train_seconds = state["train_seconds"]
        self.last_heldout_bpd = state["last_heldout_bpd"]
        self.sampler.set_state(state["sampler_rng"].cpu())
        try:
            self.noise.set_state(state["noise_rng"].cpu())
        except (RuntimeError, ValueError):  # saved on another device type: its generator differs
            self.noise.manual_seed(self.settings.seed + 1 + self.step)
            self.echo(f"checkpoint from another device type: dequantisation noise reseeded at step {self.step}")

    def _load_init(self, path: str) -> dict:
        """Start from trained weights; returns their metadata so the export can add it up."""
        trained = load_model(path, self.device)
        if trained.config != self.config:
            raise ValueError(f"{path}: architecture {trained.config.to_dict()} differs from {self.config.to_dict()}")
        self.model.load_state_dict(trained.state_dict())
        return trained.info

    # -- evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def heldout_bpd(self) -> float | None:
        if self.heldout is None:
            return None
        self.model.eval()
        generator = torch.Generator().manual_seed(1234)
        total = []
        for chunk in self.heldout.split(256):
            x = dequantize(chunk, generator).to(self.device)
            total.append(self.model.bits_per_dim(self.model.log_prob(x)).cpu())
        self.model.train()
        return float(torch.cat(total).mean())

    # -- the loop --------------------------------------------------------------------------
    def _initialize_actnorm(self) -> None:
        with torch.no_grad():
            x = dequantize(self.sampler.sample(max(256, self.settings.batch)), self.noise)
            self.model.train()
            self.model.encode(x)

    def train_step(self) -> dict:
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(s, self.step)
        x = dequantize(self.sampler.sample(s.batch), self.noise)
        terms = flow_losses(self.model, x, self.weights, self.step, self.noise)
        self.optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(terms["total"]):
            terms["total"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.clip)
            if torch.isfinite(grad_norm):
                self.optimizer.step()
            else:
                self.skipped += 1
        else:
            grad_norm = torch.tensor(float("nan"))
            self.skipped += 1
        self.step += 1
        values = {k: float(v.detach()) for k, v in terms.items()}
        values["grad_norm"] = float(grad_norm)
        return values

    def _log(self, record: dict) -> None:
        with open(self.settings.paths["log"], "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def run(self) -> dict:
        s = self.settings
        self.model.train()
        if self.step == 0:
            self._initialize_actnorm()
        started = time.monotonic()
        window_start, window_steps = time.monotonic(), 0
        while self.step < s.steps:
            values = self.train_step()
            self.patches_seen += s.batch
            window_steps += 1
            for key, value in values.items():
                self.window.setdefault(key, []).append(value)
            if self.step % s.log_every == 0 or self.step == s.steps:
                elapsed = time.monotonic() - window_start
                self.train_seconds += elapsed
                record = {k: _finite_mean(v) for k, v in self.window.items()}
                record.update(
                    step=self.step,
                    patches_seen=self.patches_seen,
                    lr=learning_rate(s, self.step - 1),
                    skipped_total=self.skipped,
                    patches_per_second=window_steps * s.batch / max(elapsed, 1e-9),
                    train_seconds=self.train_seconds,
                )
                if s.eval_every and (self.step % s.eval_every == 0 or self.step == s.steps):
                    self.last_heldout_bpd = self.heldout_bpd()
                    record["heldout_bpd"] = self.last_heldout_bpd
                self._log(record)
                self.echo(_format_record(record))
                self.window = {}
                window_start, window_steps = time.monotonic(), 0
                if self.step % s.checkpoint_every == 0:
                    self.save_checkpoint()
                if s.time_limit and time.monotonic() - started > s.time_limit:
                    self.echo(f"time limit of {s.time_limit:.0f} s reached at step {self.step}")
                    break
            if self.stop_requested:
                self.echo(f"stop requested: checkpointing at step {self.step}")
                break
        self.save_checkpoint()
        self.export()
        return {"step": self.step, "heldout_bpd": self.last_heldout_bpd, "skipped": self.skipped}

    def export(self) -> None:
        """Write the weights with their metadata and the training-curve plot."""
        from datetime import datetime, timezone

        s = self.settings
        earlier = self.init_info.get("patches_seen", 0)
        info = {
            "steps": self.step,
            "patches_seen": earlier + self.patches_seen,
            "batch": s.batch,
            "heldout_bpd": self.last_heldout_bpd,
            "heldout_set": Path(s.eval_dir).name if s.eval_dir else None,
            "losses": self.weights.to_dict(),
            "data": [Path(d).name for d in s.data],
            "skipped_steps": self.skipped,
            "train_seconds": round(self.train_seconds, 1),
            "device": str(self.device) + (f" ({torch.cuda.get_device_name()})" if self.device.type == "cuda" else ""),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__,
        }
        if s.init:
            info["fine_tuned_from"] = {"file": Path(s.init).name, **{k: self.init_info.get(k) for k in ("patches_seen", "heldout_bpd", "device", "losses")}}
        save_model(self.model, s.paths["weights"], info)
        try:
            from restorer_app.training.curves import plot_training_curves
        except ImportError:  # the packaged app ships without matplotlib
            self.echo("matplotlib is not installed: no training-curve plot (the log has every value)")
            return
        plot_training_curves(s.paths["log"], s.paths["plot"])


def _finite_mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _format_record(record: dict) -> str:
    parts = [f"step {record['step']}", f"bpd {record.get('bpd') or float('nan'):.3f}"]
    for key in ("latent_noise", "autoencoder", "image_noise"):
        if record.get(key) is not None:
            parts.append(f"{key} {record[key]:.4f}")
    if "heldout_bpd" in record and record["heldout_bpd"] is not None:
        parts.append(f"held-out {record['heldout_bpd']:.3f}")
    parts.append(f"{record['patches_per_second']:.0f} patches/s")
    parts.append(f"skipped {record['skipped_total']}")
    return " | ".join(parts)
