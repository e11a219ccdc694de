"""Training curves as a PNG: every logged loss term and held-out bits/dim vs patches seen."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(log_path: Path, png_path: Path) -> None:
    records = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    if not records:
        return
    keys = [k for k in ("bpd", "latent_noise", "autoencoder", "image_noise") if any(r.get(k) is not None for r in records)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for axis, key in zip(axes[0], keys):
        points = [(r["patches_seen"], r[key]) for r in records if r.get(key) is not None]
        axis.plot(*zip(*points), label="train")
        if key == "bpd":
            held = [(r["patches_seen"], r["heldout_bpd"]) for r in records if r.get("heldout_bpd") is not None]
            if held:
                axis.plot(*zip(*held), "o-", label="held-out")
            axis.legend()
        else:
            axis.set_yscale("log")
        axis.set_title(key)
        axis.set_xlabel("patches seen")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
