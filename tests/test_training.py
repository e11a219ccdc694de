"""Training: the loss goes down, checkpoints resume exactly, the CLI trains and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from restorer_app.cli import main as cli_main
from restorer_app.flow.weights import load_model
from restorer_app.training.data import PatchSampler, grid_patches
from restorer_app.training.losses import LossWeights, flow_losses
from restorer_app.training.trainer import Trainer, TrainSettings
from tests.conftest import make_tiny_flow, synthetic_photo


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(4):
        pixels = (synthetic_photo(48, 64, seed) * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"p{seed}.png")
    return folder


def tiny_settings(folder, out, **overrides) -> TrainSettings:
    values = dict(
        data=[str(folder)],
        out=str(out),
        steps=6,
        batch=4,
        lr=1e-3,
        warmup=2,
        device="cpu",
        flow={"hidden": 8, "patch_size": 16, "levels": 2, "steps_per_level": 1},
        losses=LossWeights(image_noise=100.0, latent_noise_warmup=2).to_dict(),
        eval_dir=str(folder),
        eval_every=3,
        log_every=3,
        checkpoint_every=3,
    )
    values.update(overrides)
    return TrainSettings(**values)


def test_sampler_is_seeded_and_in_range(photo_folder):
    a = PatchSampler([photo_folder], 16, "cpu", seed=3).sample(8)
    b = PatchSampler([photo_folder], 16, "cpu", seed=3).sample(8)
    assert a.shape == (8, 3, 16, 16) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 255 and torch.equal(a, a.round())


def test_all_loss_terms_are_finite_and_switchable():
    model = make_tiny_flow()
    x = torch.rand(4, 3, 16, 16) - 0.5
    terms = flow_losses(model, x, LossWeights(image_noise=100.0), step=10)
    assert set(terms) == {"bpd", "latent_noise", "autoencoder", "image_noise", "total"}
    assert all(torch.isfinite(v) for v in terms.values())
    only_nll = flow_losses(model, x, LossWeights(latent_noise=0, autoencoder=0), step=10)
    assert set(only_nll) == {"bpd", "total"}


def test_tiny_training_lowers_the_loss(photo_folder, tmp_path):
    settings = tiny_settings(photo_folder, tmp_path / "m.safetensors", steps=60, log_every=20, eval_every=20, lr=3e-3)
    Trainer(settings, echo=lambda *_: None).run()
    records = [json.loads(line) for line in settings.paths["log"].read_text().splitlines()]
    assert records[-1]["heldout_bpd"] < records[0]["heldout_bpd"]
    assert records[-1]["total"] < records[0]["total"]
    assert settings.paths["plot"].stat().st_size > 1000


def test_resume_equals_uninterrupted_run(photo_folder, tmp_path):
    straight = tiny_settings(photo_folder, tmp_path / "a" / "m.safetensors")
    Trainer(straight, echo=lambda *_: None).run()

    first = tiny_settings(photo_folder, tmp_path / "b" / "m.safetensors", steps=3)
    Trainer(first, echo=lambda *_: None).run()
    second = tiny_settings(photo_folder, tmp_path / "b" / "m.safetensors", steps=6)
    trainer = Trainer(second, resume=True, echo=lambda *_: None)
    assert trainer.step == 3
    trainer.run()

    a, b = load_model(straight.paths["weights"]), load_model(second.paths["weights"])
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert b.info["steps"] == 6 and b.info["patches_seen"] == 24


def test_patches_seen_counts_each_batch_when_a_resumed_run_changes_batch_size(photo_folder, tmp_path):
    """The campaign resumes GPU checkpoints (batch 256) on the CPU (batch 32)."""
    out = tmp_path / "m.safetensors"
    Trainer(tiny_settings(photo_folder, out, steps=3, batch=4), echo=lambda *_: None).run()
    Trainer(tiny_settings(photo_folder, out, steps=5, batch=2), resume=True, echo=lambda *_: None).run()
    assert load_model(out).info["patches_seen"] == 3 * 4 + 2 * 2
    logged = [json.loads(line)["patches_seen"] for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert logged[-1] == 16


def test_fine_tuning_starts_from_the_given_weights(photo_folder, tmp_path):
    base = tiny_settings(photo_folder, tmp_path / "base.safetensors")
    Trainer(base, echo=lambda *_: None).run()
    tuned = tiny_settings(photo_folder, tmp_path / "tuned.safetensors", steps=3, init=str(base.paths["weights"]))
    trainer = Trainer(tuned, echo=lambda *_: None)
    for (name, x), (_, y) in zip(trainer.model.state_dict().items(), load_model(base.paths["weights"]).state_dict().items()):
        assert torch.equal(x, y), name
    trainer.run()
    info = load_model(tuned.paths["weights"]).info
    assert info["patches_seen"] == 24 + 12 and info["fine_tuned_from"]["patches_seen"] == 24

    wider = tiny_settings(photo_folder, tmp_path / "wider.safetensors", init=str(base.paths["weights"]))
    wider.flow = dict(wider.flow, hidden=16)
    with pytest.raises(ValueError, match="architecture"):
        Trainer(wider, echo=lambda *_: None)


def test_cli_train_and_resume(photo_folder, tmp_path, capsys):
    out = tmp_path / "cli" / "m.safetensors"
    common = ["train", "--data", str(photo_folder), "--out", str(out), "--device", "cpu", "--batch", "4",
              "--hidden", "8", "--patch-size", "16", "--levels", "2", "--steps-per-level", "1",
              "--log-every", "2", "--eval-every", "2", "--checkpoint-every", "2", "--eval-dir", str(photo_folder)]
    assert cli_main(common + ["--steps", "2"]) == 0
    assert cli_main(common + ["--steps", "4", "--resume"]) == 0
    assert "resumed" in capsys.readouterr().out
    model = load_model(out)
    assert model.info["steps"] == 4 and model.info["heldout_bpd"] is not None


def test_cli_train_bad_folder_exits_2(tmp_path, capsys):
    code = cli_main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "m.safetensors")])
    assert code == 2
    assert capsys.readouterr().err.startswith("restorer: error:")


def test_jpeg_sources_are_always_downscaled(tmp_path):
    """One-pixel stripes survive a native crop of a PNG but never a 2-3x antialiased downscale."""
    stripes = np.zeros((200, 200, 3), dtype=np.uint8)
    stripes[:, ::2] = 255
    for kind in ("jpeg", "png"):
        (tmp_path / kind).mkdir()
    Image.fromarray(stripes).save(tmp_path / "jpeg" / "stripes.jpg", quality=100, subsampling=0)
    Image.fromarray(stripes).save(tmp_path / "png" / "stripes.png")
    lossy = PatchSampler([tmp_path / "jpeg"], 16, "cpu", seed=0).sample(16)
    assert lossy.diff(dim=3).abs().max() < 100
    lossless = PatchSampler([tmp_path / "png"], 16, "cpu", seed=0, downscale_prob=0.0).sample(16)
    assert lossless.diff(dim=3).abs().min() == 255


def test_grid_patches_cut_the_image_row_by_row_and_drop_the_remainder():
    pixels = torch.arange(3 * 10 * 14, dtype=torch.float32).reshape(3, 10, 14)
    patches = grid_patches(pixels, 4)
    assert patches.shape == (2 * 3, 3, 4, 4)
    assert torch.equal(patches[0], pixels[:, 0:4, 0:4])
    assert torch.equal(patches[2], pixels[:, 0:4, 8:12])
    assert torch.equal(patches[4], pixels[:, 4:8, 4:8])
