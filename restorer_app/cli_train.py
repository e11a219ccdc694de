"""``restorer train``: train (or resume) a flow prior on folders of photos."""

from __future__ import annotations

import argparse
import signal

from restorer_app.flow.glow import FlowConfig
from restorer_app.training.losses import LossWeights


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or resume a flow prior on folders of photos")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders of training photos")
    p.add_argument("--out", required=True, metavar="PATH", help="weights file to write (.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue from PATH's checkpoint if there is one")
    p.add_argument("--steps", type=int, default=20000, help="total optimisation steps (default 20000)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=FlowConfig.hidden)
    p.add_argument("--levels", type=int, default=FlowConfig.levels)
    p.add_argument("--steps-per-level", type=int, default=FlowConfig.steps_per_level)
    p.add_argument("--patch-size", type=int, default=FlowConfig.patch_size)
    p.add_argument("--w-nll", type=float, default=LossWeights.nll)
    p.add_argument("--w-latent-noise", type=float, default=LossWeights.latent_noise)
    p.add_argument("--w-autoencoder", type=float, default=LossWeights.autoencoder)
    p.add_argument("--w-image-noise", type=float, default=LossWeights.image_noise)
    p.add_argument("--latent-noise-warmup", type=int, default=LossWeights.latent_noise_warmup)
    p.add_argument("--eval-dir", metavar="DIR", help="held-out photos for bits/dim (e.g. kodak24)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--time-limit", type=float, metavar="SECONDS", help="checkpoint and stop after this long")
    p.add_argument("--no-mixed-precision", action="store_true", help="keep the coupling networks in fp32")
    p.add_argument("--init", metavar="PATH", help="fine-tune: start from these weights (same architecture)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorer_app.training.trainer import Trainer, TrainSettings

    flow = FlowConfig(
        hidden=args.hidden, levels=args.levels, steps_per_level=args.steps_per_level, patch_size=args.patch_size
    )
    losses = LossWeights(
        nll=args.w_nll,
        latent_noise=args.w_latent_noise,
        autoencoder=args.w_autoencoder,
        image_noise=args.w_image_noise,
        latent_noise_warmup=args.latent_noise_warmup,
    )
    settings = TrainSettings(
        data=args.data,
        out=args.out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        flow=flow.to_dict(),
        losses=losses.to_dict(),
        eval_dir=args.eval_dir,
        eval_every=args.eval_every,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        time_limit=args.time_limit,
        mixed_precision=not args.no_mixed_precision,
        init=args.init,
    )
    trainer = Trainer(settings, resume=args.resume)

    def request_stop(signum, frame):  # SIGTERM or Ctrl-C: checkpoint and export the steps done so far
        trainer.stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    result = trainer.run()
    print(f"wrote {settings.paths['weights']} after {result['step']} steps (held-out bpd {result['heldout_bpd']})")
    return 0
