"""Train the damage segmenter (``restore/segmenter.py``) on the training photos damaged by the simulator.

Each example is a random crop of a training photo (bsds432, urban100; never the evaluation
photos), downscaled by 1-3x from a larger region with area averaging (JPEG blocks and sensor
noise go, and scans come at many resolutions), maybe mirrored or transposed, then damaged by
``restorer_app.damage_sim.simulate`` with the real debris shapes when their data folder is
there. The target is the simulator's mask (what a restorer would paint) and its classes. A share
of the crops (``CLEAN_SHARE``) gets no damage at all, only the simulator's tone and finish
(grain, blur, JPEG: the clean picture of a simulation), so that flagging clean texture costs.

Loss: binary cross-entropy plus soft Dice on the damage channel (the damage is a few per cent of
the pixels: Dice keeps the rare class from being given up), plus ``CLASS_WEIGHT`` x the
cross-entropy of the class scores on the damaged pixels. AdamW; the learning rate warms up
linearly over the first 5 % of the steps, then falls along a cosine to 1 % of its peak.
The loss log (``<out stem>.log.jsonl``) and the weights (atomically, every ``--save-every``
steps and at the end) are written as it goes, so a run cut short still leaves weights.

Speed on one thread of this 2-core CPU: 1.7-2.0 s a step (batch 8 of 256 px), of which drawing
the 8 examples takes 0.45 s (the simulator ~40 ms a crop). Drawing them in a DataLoader worker
(``--workers 1``) gave 1.7-2.8 s a step here, as the other core was busy with other work: no
steady gain, so they are drawn in-process by default; on a machine with a spare core the worker
should hide those 0.45 s. Either way the stream of examples is the same for a given seed.
``--bf16`` runs the network's forward pass under bf16 autocast (weights, optimiser and loss stay
fp32): on this CPU's AMX units the network's part of a step falls from 1.5-1.7 to 0.6-0.8 s.

    python -m restorer_app.training.segmenter --out models/damage-segmenter.safetensors --steps 20000

The weights are scored (and the threshold and growth chosen, on Kodak24) by
``python -m benchmarks.real_damage``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from restorer_app.restore.segmenter import (
    CHANNELS_LAST, DamageSegmenter, load_segmenter, save_segmenter,
)
from restorer_app.training.data import find_images, load_rgb_uint8

TRAIN_FOLDERS = ["../shared/data/train/bsds432", "../shared/data/train/urban100"]
CROP = 256  # px a side of a training example
BATCH = 8
SCALES = (1.0, 3.0)  # a crop is downscaled from a region this many times larger (capped by the photo)
CLEAN_SHARE = 0.1  # of the examples left undamaged (tone and finish only)
PEAK_LR = 1e-3  # after the warm-up, from scratch (2e-3 learnt slower over the first 300 steps)
WARMUP_SHARE = 0.05  # of the steps, the learning rate rising linearly to its peak
FINAL_LR_SHARE = 0.01  # of the peak, at the last step of the cosine decay
WEIGHT_DECAY = 1e-4
DICE_WEIGHT = 1.0
CLASS_WEIGHT = 0.5


def _simulator():
    """The simulator package, imported when first needed (the restore side does not need it)."""
    import restorer_app.damage_sim as damage_sim

    return damage_sim


def random_crop(photo: np.ndarray, rng: np.random.Generator, crop: int = CROP, scales=SCALES) -> np.ndarray:
    """A ``crop`` x ``crop`` float32 RGB crop in [0, 1] of a uint8 photo, area-downscaled from a
    region ``scales`` times larger (less when the photo is too small; upscaled if even the photo's
    short side is under ``crop``), maybe mirrored and transposed."""
    h, w = photo.shape[:2]
    side = min(int(math.ceil(crop * rng.uniform(*scales))), h, w)
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    region = photo[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side >= crop else cv2.INTER_LINEAR
    out = region if side == crop else cv2.resize(region, (crop, crop), interpolation=interpolation)
    out = out.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.5:
        out = out.transpose(1, 0, 2)
    return np.ascontiguousarray(out)


def clean_example(clean: np.ndarray, rng: np.random.Generator, shapes=None, spec=None) -> np.ndarray:
    """``clean`` with only the simulator's tone and finish: the ``clean`` picture of a simulation
    (the same tone, grain, blur and JPEG as its damaged one; the damage drawn is thrown away),
    the look of a scan that has no damage."""
    return np.ascontiguousarray(_simulator().simulate(clean, rng, spec, shapes=shapes).clean, dtype=np.float32)


def make_example(photo: np.ndarray, rng: np.random.Generator, crop: int = CROP, shapes=None,
                 clean_share: float = CLEAN_SHARE, scales=SCALES, spec=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(HxWx3 float32 damaged image, HxW bool mask, HxW uint8 classes) from one uint8 photo;
    ``spec``: the simulator's SimSpec (None: its default)."""
    clean = random_crop(photo, rng, crop, scales)
    if rng.random() < clean_share:
        return clean_example(clean, rng, shapes, spec), np.zeros((crop, crop), bool), np.zeros((crop, crop), np.uint8)
    damaged = _simulator().simulate(clean, rng, spec, shapes=shapes)
    return (np.ascontiguousarray(damaged.image, dtype=np.float32), np.asarray(damaged.mask, bool),
            np.asarray(damaged.classes, np.uint8))


class ExampleStream(torch.utils.data.IterableDataset):
    """Endless batches (NxHxWx3 float32, NxHxW bool, NxHxW uint8 as tensors) drawn with one
    seeded generator: the same stream in-process or in one DataLoader worker; with several workers
    each draws its own stream (seeded by the seed and its worker id), so none repeats another's."""

    def __init__(self, photos: Sequence[np.ndarray], seed: int, batch: int = BATCH, crop: int = CROP, shapes=None,
                 clean_share: float = CLEAN_SHARE, spec=None):
        self.photos, self.seed, self.batch, self.crop = photos, seed, batch, crop
        self.shapes, self.clean_share, self.spec = shapes, clean_share, spec

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        rng = stream_rng(self.seed, torch.utils.data.get_worker_info())
        while True:
            examples = [make_example(self.photos[rng.integers(len(self.photos))], rng, self.crop, self.shapes,
                                     self.clean_share, spec=self.spec) for _ in range(self.batch)]
            yield tuple(torch.from_numpy(np.stack(parts)) for parts in zip(*examples))


def stream_rng(seed: int, worker=None) -> np.random.Generator:
    """The example generator of one stream: ``seed`` alone in-process or with one worker, else
    the worker's own child of ``seed`` (independent streams)."""
    if worker is None or worker.num_workers <= 1:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(worker.num_workers)[worker.id])


def _quiet_worker(_: int) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def segmentation_loss(logits: torch.Tensor, mask: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """BCE + DICE_WEIGHT x soft Dice on channel 0, + CLASS_WEIGHT x cross-entropy of channels 1..
    on the damaged pixels (classes 1..K there; pixels of class 0 inside the mask are skipped)."""
    target = mask.float()
    damage = logits[:, 0]
    bce = F.binary_cross_entropy_with_logits(damage, target)
    p = torch.sigmoid(damage)
    dice = 1.0 - (2.0 * (p * target).sum() + 1.0) / (p.sum() + target.sum() + 1.0)
    labelled = mask & (classes > 0)
    if labelled.any():
        scores = logits[:, 1:].permute(0, 2, 3, 1)[labelled]  # P x K
        ce = F.cross_entropy(scores, classes[labelled].long() - 1)
    else:
        ce = damage.new_zeros(())
    total = bce + DICE_WEIGHT * dice + CLASS_WEIGHT * ce
    return total, {"bce": bce.item(), "dice": dice.item(), "ce": ce.item()}


def lr_factor(step: int, steps: int) -> float:
    """Share of the peak learning rate at ``step`` (0-based): a linear warm-up over the first
    ``WARMUP_SHARE`` of the steps, then a cosine down to ``FINAL_LR_SHARE`` at the last."""
    warmup = max(1, round(WARMUP_SHARE * steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - 1 - warmup))
    return FINAL_LR_SHARE + (1.0 - FINAL_LR_SHARE) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _check_training_folders(folders) -> None:
    for folder in folders:
        if "eval" in Path(folder).resolve().parts:
            raise ValueError(f"{folder}: evaluation photos are never trained on")


def train(folders, out: Path, steps: int, batch: int = BATCH, crop: int = CROP, lr: float = PEAK_LR, seed: int = 0,
          init: Path | None = None, workers: int = 0, log_every: int = 25, save_every: int = 250,
          shapes="default", clean_share: float = CLEAN_SHARE, bf16: bool = False,
          class_weights: dict[str, float] | None = None, plate_crack_share: float | None = None,
          device: str = "cpu", time_limit: float | None = None) -> DamageSegmenter:
    """Train from the photos in ``folders`` (from scratch, or on from the weights ``init``);
    write ``out`` (every ``save_every`` steps and at the end) and its log beside it.
    ``workers``: 0 draws the examples in this process, N in N DataLoader workers alongside (a
    GPU waits on the simulator: about 40 ms a crop on one core).
    ``shapes``: the simulator's debris shape library ("default": ``default_shape_library()``).
    ``bf16``: the forward pass under bf16 autocast (the loss in fp32). ``device``: where the
    network trains ("cpu", "cuda"). ``time_limit``: seconds after which training stops early,
    its weights written (the learning-rate schedule still follows ``steps``).
    ``class_weights``: the simulator's class weights changed from its defaults (more of the
    kinds the network misses most), e.g. {"crack": 2.0}; ``plate_crack_share``: of the cracks, the
    share drawn as glass-plate cracks (None: the simulator's default)."""
    _check_training_folders(folders)
    out = Path(out)
    torch.manual_seed(seed)
    sim = _simulator()
    if isinstance(shapes, str) and shapes == "default":
        shapes = sim.default_shape_library()
    photos = [load_rgb_uint8(p) for p in find_images(folders)]
    net = load_segmenter(init) if init is not None else DamageSegmenter()
    device = torch.device(device)
    net = net.to(device, memory_format=CHANNELS_LAST).train()
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: lr_factor(step, steps))
    weights = {**sim.SimSpec().classes, **(class_weights or {})}
    spec = sim.SimSpec(classes=weights, **({} if plate_crack_share is None else {"plate_crack_share": plate_crack_share}))
    stream = ExampleStream(photos, seed, batch, crop, shapes, clean_share, spec)
    if workers > 0:
        batches = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, prefetch_factor=2,
                                                   worker_init_fn=_quiet_worker, pin_memory=device.type == "cuda"))
    else:
        batches = iter(stream)
    log_path = out.with_suffix(".log.jsonl")
    info = {"batch": batch, "crop": crop, "seed": seed, "lr": lr, "init": str(init) if init else None,
            "sim_version": getattr(sim, "SIM_VERSION", "unknown"), "shapes": len(shapes) if shapes is not None else 0,
            "clean_share": clean_share, "bf16": bf16, "device": device.type, "workers": workers, "class_weights": weights,
            "plate_crack_share": spec.plate_crack_share, "data": [str(f) for f in folders]}
    started = time.time()
    with log_path.open("w") as log:
        for step in range(1, steps + 1):
            images, mask, classes = (part.to(device, non_blocking=True) for part in next(batches))
            rgb = images.permute(0, 3, 1, 2)  # NHWC in memory: channels-last already
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = net(rgb)
            loss, parts = segmentation_loss(logits.float(), mask, classes)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            seconds = round(time.time() - started, 1)
            stop = time_limit is not None and seconds >= time_limit
            if step % log_every == 0 or step == steps or stop:
                record = {"step": step, "loss": round(loss.item(), 5), **{k: round(v, 5) for k, v in parts.items()},
                          "lr": round(schedule.get_last_lr()[0], 7), "seconds": seconds}
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(record, flush=True)
            if step % save_every == 0 or step == steps or stop:
                save_segmenter(net, out, {**info, "steps": step, "seconds": seconds, "loss": round(loss.item(), 5)})
            if stop:
                print(f"time limit of {time_limit:.0f} s reached at step {step} of {steps}", flush=True)
                break
    return net.eval()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=TRAIN_FOLDERS, help="folders of training photos")
    parser.add_argument("--out", type=Path, help="weights to write (training)")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--crop", type=int, default=CROP)
    parser.add_argument("--lr", type=float, default=PEAK_LR, help="peak learning rate (after the warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", type=Path, help="train on from these weights instead of from scratch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training step")
    parser.add_argument("--workers", type=int, default=0,
                        help="draw the examples in this many DataLoader worker processes alongside the training")
    parser.add_argument("--device", default="cpu", help="where the network trains: cpu or cuda")
    parser.add_argument("--time-limit", type=float, help="seconds after which to stop (weights written)")
    parser.add_argument("--bf16", action="store_true",
                        help="forward pass under bf16 autocast (about twice as fast on CPUs with AMX)")
    parser.add_argument("--class-weights", nargs="+", default=[], metavar="CLASS=WEIGHT",
                        help="the simulator's class weights changed from its defaults, e.g. crack=2 hair=1")
    parser.add_argument("--plate-crack-share", type=float,
                        help="of the cracks, the share drawn as glass-plate cracks (default: the simulator's)")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--save-every", type=int, default=250)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    if args.out is None:
        parser.error("--out is required")
    if args.workers < 0:
        parser.error(f"--workers must be 0 or more, got {args.workers}")
    train(args.data, args.out, args.steps, args.batch, args.crop, args.lr, args.seed, args.init, args.workers,
          args.log_every, args.save_every, bf16=args.bf16, class_weights=parse_class_weights(parser, args.class_weights),
          plate_crack_share=args.plate_crack_share, device=args.device, time_limit=args.time_limit)


def parse_class_weights(parser: argparse.ArgumentParser, pairs: Sequence[str]) -> dict[str, float]:
    """CLASS=WEIGHT pairs as a dict; a clear command-line error for an unknown class or a bad weight."""
    classes = _simulator().DAMAGE_CLASSES
    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in classes:
            parser.error(f"--class-weights: unknown class {name!r}; expected one of {', '.join(classes)}")
        try:
            weights[name] = float(value)
        except ValueError:
            parser.error(f"--class-weights: {pair!r} is not CLASS=NUMBER")
        if weights[name] < 0:
            parser.error(f"--class-weights: {pair!r}: a weight cannot be negative")
    return weights


if __name__ == "__main__":
    main()
