"""``restorer restore``: restore one file now; also the options shared with ``queue add``."""

from __future__ import annotations

import argparse
from pathlib import Path

from restorer_app.restore.settings import DEFAULT_SENSITIVITY, PRESETS, RestoreSettings


def add_restore_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="scanned photo (PNG, JPEG or TIFF)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="derivative to write (.png, .jpg, .tif)")
    p.add_argument("--mask", metavar="MASK", help="8-bit PNG of the same size, nonzero = damaged; "
                   "'auto' uses the mask `restorer detect` writes")
    p.add_argument("--sensitivity", type=float, default=DEFAULT_SENSITIVITY, metavar="S",
                   help="of --mask auto, 0-1 (default %(default)s: crisp dust and scratches only); above 0 a learned "
                   "detector adds cracks, tears, hairs and stains, and marks more of the picture")
    p.add_argument("--scope", choices=["mask", "image"], help="mask (the default with a mask): replace only the "
                   "masked pixels, every other pixel stays bit-identical; image: also clean noise and JPEG everywhere")
    p.add_argument("--preset", default="standard", choices=list(PRESETS))
    p.add_argument("--strength", default="auto", help="'auto' (estimated from the image) or the data weight lambda")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--model", metavar="PATH", help="weights (.safetensors); default: the bundled model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, help="tiles per batch (default: 16 on CPU, 256 on GPU)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")


def settings_from_args(args: argparse.Namespace) -> RestoreSettings:
    return RestoreSettings(
        preset=args.preset,
        strength=args.strength,
        device=args.device,
        seed=args.seed,
        model_path=str(Path(args.model).resolve()) if args.model else None,
        batch_size=args.batch_size,
        scope=args.scope or "auto",
        sensitivity=args.sensitivity,
    )


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("restore", help="restore one photo into a new file")
    add_restore_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorer_app.jobs.restore_file import restore_file
    from restorer_app.progress_bar import PatchProgressBar

    settings = settings_from_args(args)
    if settings.scope == "mask" and not args.mask:
        raise ValueError("--scope mask: no damage mask was given (use --mask FILE or --mask auto, or --scope image)")
    bar = None if args.quiet else PatchProgressBar(Path(args.input).name)
    summary = restore_file(
        args.input,
        args.output,
        settings,
        mask_path=args.mask,
        overwrite=args.overwrite,
        on_progress=(lambda p: bar.update(p.done, p.total, p.from_store)) if bar else None,
        on_step=bar.step if bar else None,  # moves within a batch, with the measured ETA
    )
    if summary["scope"] == "mask" and summary["patches"] == 0:
        print(f"{args.input}: the mask marks no damage, so nothing was restored; {summary['output']} equals the input")
    elif not args.quiet:
        changes = summary["changes"]
        print(f"wrote {summary['output']} ({summary['patches']} of {summary['tiles_in_image']} patches solved; "
              f"{100 * changes['changed_fraction']:.2f} % of pixels changed, {100 * changes['synthesised_fraction']:.2f} % "
              f"synthesised; provenance {summary['provenance']})")
    return 0
