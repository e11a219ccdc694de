"""The flow prior: invertibility, exact log-determinants, ActNorm state, weight files."""

from __future__ import annotations

import math

import pytest
import torch

from restorer_app.flow.glow import FlowConfig, Glow
from restorer_app.flow.layers import ActNorm, AffineCoupling, FlowStep, InvConv1x1, squeeze2x2, unsqueeze2x2
from restorer_app.flow.weights import WeightsError, default_model_path, load_model, save_model
from tests.conftest import make_tiny_flow, synthetic_photo


def test_squeeze_round_trip():
    x = torch.randn(2, 3, 8, 6)
    assert torch.equal(unsqueeze2x2(squeeze2x2(x)), x)


def test_encode_decode_inverts_random_flow(tiny_flow):
    x = torch.rand(8, 3, 16, 16) - 0.5
    latents, _ = tiny_flow.encode(x)
    assert torch.allclose(tiny_flow.decode(latents), x, atol=1e-4)


def test_latent_shapes_match_encoding(tiny_flow):
    latents, _ = tiny_flow.encode(torch.rand(2, 3, 16, 16) - 0.5)
    assert [tuple(z.shape[1:]) for z in latents] == tiny_flow.latent_shapes()
    assert sum(math.prod(s) for s in tiny_flow.latent_shapes()) == 3 * 16 * 16


def test_decode_log_p_equals_encode_log_p(tiny_flow):
    x = torch.rand(4, 3, 16, 16) - 0.5
    latents, log_p = tiny_flow.encode(x)
    _, log_p_decoded = tiny_flow.decode(latents, with_log_p=True)
    assert torch.allclose(log_p, log_p_decoded, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("layer_factory", [
    lambda: ActNorm(4),
    lambda: InvConv1x1(4, torch.Generator().manual_seed(1)),
    lambda: AffineCoupling(4, 8, 0.05),
    lambda: FlowStep(4, 8, 0.05, torch.Generator().manual_seed(2)),
])
def test_layer_logdet_matches_autograd_jacobian(layer_factory):
    torch.manual_seed(0)
    layer = layer_factory().double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    layer.eval()
    if isinstance(layer, ActNorm):
        layer.initialized.fill_(1)
    for module in layer.modules():
        if isinstance(module, ActNorm):
            module.initialized.fill_(1)
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: layer(v.view(1, 4, 3, 3))[0].flatten(), x.flatten())
    expected = torch.linalg.slogdet(jacobian)[1]
    _, logdet = layer(x)
    assert torch.allclose(logdet.double(), expected, atol=1e-6)
    y, _ = layer(x)
    back, _ = layer.reverse(y)
    assert torch.allclose(back, x, atol=1e-8)


def test_whole_flow_log_density_matches_jacobian():
    torch.manual_seed(0)
    model = make_tiny_flow(patch_size=4, hidden=8, levels=1, steps=2).double()
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64) - 0.5

    def flatten_latents(v):
        latents, _ = model.encode(v.view(1, 3, 4, 4))
        return torch.cat([z.flatten() for z in latents])

    jacobian = torch.autograd.functional.jacobian(flatten_latents, x.flatten())
    u = flatten_latents(x)
    base = -0.5 * (u**2 + math.log(2 * math.pi)).sum()
    expected = base + torch.linalg.slogdet(jacobian)[1]
    assert torch.allclose(model.log_prob(x)[0], expected, atol=1e-6)


def test_actnorm_initialises_once_from_data():
    layer = ActNorm(3).train()
    x = torch.randn(64, 3, 8, 8) * 3 + 2
    y, _ = layer(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(y.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    before = layer.loc.clone()
    layer(torch.randn(8, 3, 8, 8) * 10)
    assert torch.equal(layer.loc, before)


def test_actnorm_state_persists_in_weight_file(tmp_path, tiny_flow):
    path = tmp_path / "m.safetensors"
    save_model(tiny_flow, path, {"steps": 7})
    loaded = load_model(path)
    flags = [int(m.initialized) for m in loaded.modules() if isinstance(m, ActNorm)]
    assert flags and all(flags)
    loaded.train()  # training mode must not re-initialise a loaded model
    x = torch.rand(4, 3, 16, 16) - 0.5
    assert torch.allclose(loaded.log_prob(x), tiny_flow.log_prob(x), atol=1e-4)


def test_weight_round_trip_keeps_config_and_metadata(tmp_path, tiny_flow):
    path = tmp_path / "m.safetensors"
    save_model(tiny_flow, path, {"steps": 7, "heldout_bpd": 3.5})
    loaded = load_model(path)
    assert loaded.config == tiny_flow.config
    assert loaded.info["steps"] == 7 and loaded.info["heldout_bpd"] == 3.5
    for (name, a), (_, b) in zip(tiny_flow.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_bad_weight_files_give_clear_errors(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsError, match="not found"):
        load_model(missing)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(WeightsError, match="not a valid"):
        load_model(junk)


def test_decode_deepest_uses_predicted_means(tiny_flow):
    x = torch.rand(2, 3, 16, 16) - 0.5
    latents, _ = tiny_flow.encode(x)
    filled = tiny_flow.complete_latents([latents[0], None, None])
    assert torch.allclose(tiny_flow.decode(filled), tiny_flow.decode_deepest(latents[0]), atol=1e-6)


@pytest.mark.skipif(not default_model_path().is_file(), reason="bundled model not present")
def test_bundled_model_round_trips_and_reports_bits_per_dim():
    model = load_model()
    assert model.info.get("heldout_bpd") is not None
    assert model.info.get("patches_seen", 0) >= 300_000
    size = model.config.patch_size
    photo = torch.from_numpy(synthetic_photo(size, 4 * size)).permute(2, 0, 1)
    x = photo.reshape(3, size, 4, size).permute(2, 0, 1, 3) + torch.rand(4, 3, size, size) / 256 - 0.5
    latents, _ = model.encode(x)
    assert torch.allclose(model.decode(latents), x, atol=1e-4)
    # far off the photo manifold (uniform noise) float32 loses digits; float64 still inverts
    noise = (torch.rand(2, 3, size, size) - 0.5).double()
    model = model.double()
    assert torch.allclose(model.decode(model.encode(noise)[0]), noise, atol=1e-4)


def test_model_rejects_patch_size_not_divisible():
    with pytest.raises(ValueError):
        Glow(FlowConfig(patch_size=20, levels=3))
