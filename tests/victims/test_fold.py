"""Inference paths of the victims: BatchNorm folded into its convolution
(``sva/victims/models/fold.py``) and C3D's single-video oneDNN convolution."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sva.victims.models.c3d as c3d_module
from sva.victims.models import build_victim
from sva.victims.models.fold import FoldedSequential
from sva.victims.settings import C3DCfg, LRCNCfg, VictimsCfg

SMALL = VictimsCfg(
    c3d=C3DCfg(width_mult=0.125, batchnorm=True, fc_dim=64, dropout=0.3),
    lrcn=LRCNCfg(backbone="small_cnn", backbone_width=8, hidden=32, dropout=0.3),
)


def _trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters, as
    training would (a fresh BatchNorm is the identity in eval mode and would hide a
    wrong fold)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.3)
    return model.eval()


def _video(b: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 16, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _plain(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The unfolded forward: grad mode on takes the plain nn.Sequential path (inside
    inference_mode nothing is recorded)."""
    with torch.inference_mode(), torch.enable_grad():
        assert torch.is_grad_enabled()
        return model(x)


@pytest.mark.parametrize("name", ["c3d", "lrcn"])
def test_folded_inference_matches_the_plain_forward(name):
    model = _trained_like(build_victim(name, SMALL, 10, (32, 32), seed=0))
    x = _video(5)
    with torch.inference_mode():
        folded = model(x)
    plain = _plain(model, x)
    assert torch.allclose(folded, plain, atol=1e-4, rtol=1e-4)
    assert torch.equal(folded.argmax(1), plain.argmax(1))
    # the folded path really ran: the cached plan holds fewer steps than the modules
    seq = model.features if name == "c3d" else model.backbone.conv
    assert isinstance(seq, FoldedSequential)
    assert 0 < len(seq._fold_steps) < len(seq)


def test_folded_weights_follow_every_change_of_the_parameters():
    model = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=0))
    x = _video(3)
    with torch.inference_mode():
        before = model(x)
    # an in-place change (as an optimiser step or load_state_dict makes) of one BatchNorm
    with torch.no_grad():
        model.features.bn3a.running_mean.add_(1.0)
    with torch.inference_mode():
        after = model(x)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, _plain(model, x), atol=1e-4, rtol=1e-4)
    # load_state_dict of another model's weights
    other = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=1), seed=5)
    model.load_state_dict(other.state_dict())
    with torch.inference_mode():
        loaded = model(x)
    assert torch.allclose(loaded, _plain(other, x), atol=1e-4, rtol=1e-4)


def test_training_mode_is_the_plain_sequential():
    """In training mode BatchNorm uses the batch's statistics and updates its running ones."""
    model = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=0)).train()
    bn = model.features.bn1a
    before = bn.running_mean.clone()
    with torch.no_grad():
        model(_video(4))
    assert not torch.equal(bn.running_mean, before)


def test_the_state_dict_is_unchanged_by_folding():
    model = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=0))
    keys = set(model.state_dict())
    with torch.inference_mode():
        model(_video(2))
    assert set(model.state_dict()) == keys
    assert "features.conv1a.weight" in keys and "features.bn1a.running_var" in keys


def test_c3d_single_video_takes_onednn_and_matches(monkeypatch):
    """One video on the CPU runs oneDNN's convolution instead of PyTorch's reference
    slow_conv3d (4-6x slower); the logits agree with the batched ones."""
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this PyTorch build has no oneDNN (the pinned CPU build has it)")
    model = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=0))
    x = _video(4)
    calls = []
    real = torch.mkldnn_convolution
    monkeypatch.setattr(torch, "mkldnn_convolution", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        batched = model(x)
        single = torch.cat([model(x[i:i + 1]) for i in range(len(x))])
    assert len(calls) == 4 * len(model.channels)  # every conv of each single video, none of the batch
    assert torch.allclose(single, batched, atol=1e-4, rtol=1e-4)
    # switched off: PyTorch's own choice, the same answer
    monkeypatch.setattr(c3d_module, "_ONEDNN_SINGLE", False)
    calls.clear()
    with torch.inference_mode():
        off = model(x[:1])
    assert not calls and torch.allclose(off, single[:1], atol=1e-4, rtol=1e-4)


def test_a_hooked_layer_runs_as_itself():
    """A forward hook on a folded layer still fires (the plain path runs while it is set)."""
    model = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=0))
    x = _video(2)
    seen = []
    handle = model.features.bn2a.register_forward_hook(lambda m, inp, out: seen.append(out.shape))
    with torch.inference_mode():
        hooked = model(x)
    handle.remove()
    with torch.inference_mode():
        folded = model(x)
    assert len(seen) == 1 and torch.allclose(hooked, folded, atol=1e-4, rtol=1e-4)


def test_weights_made_in_inference_mode_run_the_plain_path():
    """Tensors made under inference_mode keep no version counter, so no cache could
    notice their in-place changes: the plain path runs, and stays right."""
    model = _trained_like(build_victim("c3d", SMALL, 10, (32, 32), seed=0))
    x = _video(2)
    with torch.inference_mode():
        model.features.to(torch.float64).to(torch.float32)  # parameters re-made as inference tensors
        first = model(x)
        model.features.bn1a.running_mean.add_(1.0)
        second = model(x)
    assert not torch.allclose(first, second)
    assert torch.allclose(second, _plain(model, x), atol=1e-4, rtol=1e-4)
