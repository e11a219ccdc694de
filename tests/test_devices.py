"""The compute device: a GPU batch sized by the card's memory."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from restorer_app import devices
from restorer_app.restore.pipeline import DEFAULT_CPU_BATCH, make_plan
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.tiling import plan_tiles


def _card(monkeypatch, gib: float) -> None:
    card = SimpleNamespace(total_memory=int(gib * 2**30), name="a card")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: card)


@pytest.mark.parametrize("gib, tiles", [(0.25, 16), (8, 68), (40, 341), (500, 4096)])
def test_gpu_batch_follows_the_card_memory_within_bounds(monkeypatch, gib, tiles):
    _card(monkeypatch, gib)
    assert devices.gpu_batch_tiles(torch.device("cuda")) == tiles
    held = tiles * devices.GPU_BYTES_PER_TILE
    assert held <= gib * 2**30 * devices.GPU_MEMORY_SHARE or tiles == devices.GPU_BATCH_TILES[0]


def test_plans_take_the_device_batch_unless_one_is_set(monkeypatch):
    _card(monkeypatch, 40)
    image = torch.rand(96, 96, 3).numpy()
    grid = plan_tiles(96, 96)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert make_plan(image, None, RestoreSettings(), cuda, grid, bf16=True).batch_size == 341
    assert make_plan(image, None, RestoreSettings(), cpu, grid, bf16=False).batch_size == DEFAULT_CPU_BATCH
    assert make_plan(image, None, RestoreSettings(batch_size=7), cuda, grid, bf16=True).batch_size == 7
