"""Victim architectures, normalisation inside the model, checkpoints."""

from __future__ import annotations

import pytest
import torch

from sva.victims.checkpoints import load_victim, save_victim
from sva.victims.settings import C3DCfg, LRCNCfg, VictimsCfg
from sva.victims.models import (
    C3D,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LRCN,
    build_from_arch,
    build_victim,
    c3d_feature_shape,
    victim_arch,
)

SMALL = VictimsCfg(
    c3d=C3DCfg(width_mult=0.125, batchnorm=True, fc_dim=64, dropout=0.3),
    lrcn=LRCNCfg(backbone="small_cnn", backbone_width=8, hidden=32, dropout=0.3),
)



def _video(b=2, t=16, h=32, w=32, seed=0):
    return torch.rand(b, t, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["c3d", "lrcn"])
def test_small_forward_shape(name):
    model = build_victim(name, SMALL, 10, (32, 32), seed=0).eval()
    with torch.inference_mode():
        out = model(_video())
    assert out.shape == (2, 10) and out.dtype == torch.float32
    if name == "c3d":  # batchnorm: after every conv and after fc6/fc7
        assert hasattr(model.features, "bn1a") and hasattr(model.classifier, "bn6")
        assert hasattr(model.classifier, "bn7") and not hasattr(model.classifier, "bn8")


def test_c3d_feature_shapes():
    assert c3d_feature_shape(16, 112, 112) == (1, 4, 4)  # 512 * 16 = 8192, as in C3D
    assert c3d_feature_shape(16, 32, 32) == (1, 2, 2)
    assert c3d_feature_shape(8, 16, 16) == (1, 1, 1)  # pools shrink to fit small inputs
    m = C3D(5, input_size=(8, 16, 24), width_mult=0.0625)
    with torch.inference_mode():
        assert m.eval()(_video(1, 8, 16, 24)).shape == (1, 5)
    with pytest.raises(ValueError, match="built for"):
        m(_video(1, 16, 16, 24))


def test_c3d_paper_scale():
    """The paper-scale C3D: full width, 16x112x112, fc 4096, pool5 flattening to 8192."""
    model = build_victim("c3d", VictimsCfg(), 101, (112, 112), seed=0).eval()
    assert model.channels == [64, 128, 256, 256, 512, 512, 512, 512]
    assert model.flat_dim == 8192
    assert model.classifier.fc6.in_features == 8192 and model.classifier.fc6.out_features == 4096
    names = [n for n, _ in model.features.named_children() if n.startswith(("conv", "pool"))]
    assert names == [
        "conv1a", "pool1", "conv2a", "pool2", "conv3a", "conv3b", "pool3",
        "conv4a", "conv4b", "pool4", "conv5a", "conv5b", "pool5",
    ]  # fmt: skip
    assert model.features.pool1.kernel_size == (1, 2, 2) and model.features.pool5.padding == (0, 1, 1)
    assert not any(isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm3d)) for m in model.modules())
    with torch.inference_mode():
        assert model(_video(1, 16, 112, 112)).shape == (1, 101)


def test_lrcn_inception_forward():
    """Paper-scale LRCN backbone (Inception v3, random init, no download): shape only."""
    model = build_victim("lrcn", VictimsCfg(), 7, (32, 32), seed=0).eval()
    assert model.backbone.out_dim == 2048
    with torch.inference_mode():
        assert model(_video(1, 2)).shape == (1, 7)  # frames resized to 299 inside


def test_normalisation_inside_the_model():
    model = build_victim("c3d", SMALL, 10, (32, 32), seed=0).eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
    assert {"normalize.mean", "normalize.std"} <= set(model.state_dict())  # buffers
    seen = {}
    model.features.conv1a.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    x = _video()
    with torch.inference_mode():
        model(x)
    torch.testing.assert_close(seen["x"], ((x - mean) / std).transpose(1, 2))

    lrcn = build_victim("lrcn", SMALL, 10, (32, 32), seed=0).eval()
    seen.clear()
    lrcn.backbone.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    with torch.inference_mode():
        lrcn(x)
    torch.testing.assert_close(seen["x"], ((x - mean) / std).flatten(0, 1))
    with pytest.raises(ValueError):
        model(x.transpose(2, 3))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        lrcn(x.transpose(2, 3))


def test_build_seeded_and_isolated():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_victim("c3d", SMALL, 10, (32, 32), seed=4)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is untouched
    b = build_victim("c3d", SMALL, 10, (32, 32), seed=4)
    c = build_victim("c3d", SMALL, 10, (32, 32), seed=5)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.features.conv1a.weight, c.features.conv1a.weight)
    with pytest.raises(ValueError, match="unknown victim"):
        build_victim("i3d", SMALL, 10, (32, 32))


@pytest.mark.parametrize("name", ["c3d", "lrcn"])
def test_checkpoint_roundtrip(tmp_path, name):
    model = build_victim(name, SMALL, 10, (32, 32), seed=1)
    # make BatchNorm running statistics non-trivial
    model.train()
    with torch.no_grad():
        model(_video(4, seed=2))
    model.eval()
    path = tmp_path / f"{name}.pt"
    save_victim(
        path, model, name, victim_arch(name, SMALL), 10, (32, 32),
        {"test_acc": 0.5, "seed": 1, "dataset": "synthetic", "history": [{"loss": 1.0}]},
    )  # fmt: skip
    raw = torch.load(path, weights_only=True)  # loadable without unpickling code
    assert raw["name"] == name and raw["num_frames"] == 16
    loaded, info = load_victim(path, "cpu")
    assert not loaded.training
    assert info["name"] == name and info["num_classes"] == 10 and info["input_hw"] == (32, 32)
    assert info["meta"]["test_acc"] == 0.5 and info["arch"] == victim_arch(name, SMALL)
    x = _video(3, seed=3)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), loaded(x), rtol=0, atol=0)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left nothing behind


def test_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not an sva victim"):
        load_victim(path)


def test_build_from_arch_matches_build_victim():
    arch = victim_arch("lrcn", SMALL)
    assert isinstance(build_from_arch("lrcn", arch, 4, (32, 32)), LRCN)


def test_load_refuses_another_architecture_naming_the_file(tmp_path):
    from sva.victims.checkpoints import CheckpointError

    model = build_victim("lrcn", SMALL, 10, (32, 32), seed=1)
    path = tmp_path / "c3d.pt"
    save_victim(path, model, "lrcn", victim_arch("lrcn", SMALL), 10, (32, 32))
    with pytest.raises(CheckpointError, match=r"c3d\.pt: holds a 'lrcn' victim, but 'c3d' was asked for") as err:
        load_victim(path, expect="c3d")
    assert "\n" not in str(err.value)
    load_victim(path, expect="lrcn")  # the right name loads


def test_corrupted_checkpoint_is_named(tmp_path):
    from sva.victims.checkpoints import CheckpointError

    model = build_victim("c3d", SMALL, 10, (32, 32), seed=1)
    path = tmp_path / "c3d.pt"
    save_victim(path, model, "c3d", victim_arch("c3d", SMALL), 10, (32, 32))
    path.write_bytes(path.read_bytes()[: 2000])  # truncated, as a killed copy leaves it
    with pytest.raises(CheckpointError, match=r"c3d\.pt: cannot read the victim checkpoint") as err:
        load_victim(path)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match=r"missing\.pt: victim checkpoint not found"):
        load_victim(tmp_path / "missing.pt")
