"""Training throughput (patches/second) per flow configuration, with all four losses.

Prints a markdown table and writes JSON with the device, versions and settings:
    python benchmarks/train_speed.py [--device cpu|cuda] [--seconds 20] [--out results/train_speed_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from restorer_app import runtime
from restorer_app.flow.glow import FlowConfig, Glow
from restorer_app.training.losses import LossWeights, flow_losses

CONFIGS = [
    {"hidden": 64, "steps_per_level": 4},
    {"hidden": 128, "steps_per_level": 4},
    {"hidden": 256, "steps_per_level": 4},
    {"hidden": 128, "steps_per_level": 8},
]


def measure(config: FlowConfig, device: torch.device, batch: int, seconds: float, bf16: bool) -> dict:
    model = Glow(config).to(device)
    if bf16:
        model.set_autocast(torch.bfloat16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    weights = LossWeights(image_noise=100.0, latent_noise_warmup=1)
    x = torch.rand(batch, 3, config.patch_size, config.patch_size, device=device) - 0.5
    model.train()
    with torch.no_grad():
        model.encode(x)

    def step():
        terms = flow_losses(model, x, weights, step=10)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return {"patches_per_second": steps * batch / elapsed, "steps": steps, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runtime.configure()
    device = torch.device(args.device)
    rows = []
    for spec in CONFIGS:
        for batch in args.batches:
            for bf16 in (False, True):
                config = FlowConfig(**spec)
                result = measure(config, device, batch, args.seconds, bf16)
                rows.append({**spec, "batch": batch, "bf16_couplings": bf16, **result})
                print(f"| H{spec['hidden']} K{spec['steps_per_level']} | batch {batch} | bf16 {bf16} | "
                      f"{result['patches_per_second']:.1f} patches/s |", flush=True)
    report = {
        "benchmark": "train_speed",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "losses": "nll + 100 latent-noise + 1 auto-encoder + 100 image-noise",
        "patch": 64,
        "levels": 3,
        "rows": rows,
    }
    out = args.out or Path(__file__).parent / "results" / f"train_speed_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
