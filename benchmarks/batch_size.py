"""Cost of one MAP optimiser step per patch, and peak memory, by the number of patches solved together.

A batch of T tiles sends 4 T patches through the flow (the presets' four mirrored views), so
the CPU default batch follows from this table. Random 64x64 patches, the bundled prior, the
coarse-to-fine stages shortened to (1, 1), (2, 1), (3, 8); the mean over the last 7 steps (the
first ones pay for allocations); each size in a fresh process, so the peak is its own.

    python -m benchmarks.batch_size --patches 32 64 128 256 --precision bf16 fp32
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch

from benchmarks.results_file import write_result



def measure(patches: int, bf16: bool) -> dict:
    from restorer_app.flow.weights import default_model_path, load_model
    from restorer_app.restore.solver import solve_batch

    torch.manual_seed(0)
    model = load_model(default_model_path()).eval()
    x = torch.rand(patches, 3, 64, 64) - 0.5
    stamps: list[float] = []
    solve_batch(model, x, torch.ones_like(x), x.clone(), torch.full((patches,), 100.0), [(1, 1), (2, 1), (3, 8)],
                lr=1e-2, fp32_tail=0, autocast_dtype=torch.bfloat16 if bf16 else None,
                on_step=lambda *_: stamps.append(time.perf_counter()))
    steps = [b - a for a, b in zip(stamps[2:], stamps[3:])]
    seconds = sum(steps) / len(steps)
    return {"patches": patches, "precision": "bf16" if bf16 else "fp32", "s_per_step": round(seconds, 3),
            "ms_per_patch_step": round(1000 * seconds / patches, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patches", nargs="+", type=int, default=[32, 64, 128, 256])
    parser.add_argument("--precision", nargs="+", choices=("bf16", "fp32"), default=["bf16", "fp32"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1] == "bf16")))
        return 0
    rows = []
    for precision in args.precision:
        for patches in args.patches:
            out = subprocess.run([sys.executable, "-m", "benchmarks.batch_size", "--child", str(patches), precision],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{r['precision']} {r['patches']:>4} patches: {r['s_per_step']:.3f} s a step, "
                  f"{r['ms_per_patch_step']:.2f} ms a patch, peak {r['peak_rss_gb']:.2f} GB", flush=True)
    report = {"benchmark": "batch_size", "cpu": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}
    write_result("batch_size", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
