"""Victim training loop and prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sva.victims.settings import C3DCfg, LRCNCfg, TrainCfg, VictimsCfg
from sva.victims.models import build_victim
from sva.victims.training import predict, predict_logits, to_video_batch, train_victim

TINY = VictimsCfg(
    c3d=C3DCfg(width_mult=0.0625, batchnorm=True, fc_dim=32, dropout=0.0),
    lrcn=LRCNCfg(backbone="small_cnn", backbone_width=4, hidden=16, dropout=0.0),
)
CFG = TrainCfg(epochs=4, lr=3e-3, lr_step_epoch=3, lr_gamma=0.1, batch_size=8)



def _toy(n: int, seed: int, t: int = 8, hw: int = 16):
    """Class 0: a bright square in the left half; class 1: in the right half."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, size=(n, t, hw, hw, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    for i in range(n):
        c0 = 1 if y[i] == 0 else hw // 2 + 1
        x[i, :, 4:10, c0 : c0 + 5] = 230
    return x, y


def test_to_video_batch():
    x = np.zeros((2, 3, 4, 5, 3), dtype=np.uint8)
    x[..., 1] = 255
    b = to_video_batch(x, "cpu")
    assert b.shape == (2, 3, 3, 4, 5) and b.dtype == torch.float32
    assert float(b[:, :, 1].min()) == 1.0 and float(b[:, :, 0].max()) == 0.0


@pytest.mark.parametrize("name", ["c3d", "lrcn"])
def test_training_lowers_the_loss(name, tmp_path):
    x, y = _toy(48, 0)
    tx, ty = _toy(16, 1)
    # the training set as a memmap, as the pipeline stores snippets
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=x.shape)
    mm[:] = x
    mm.flush()
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    model = build_victim(name, TINY, 2, (16, 16), num_frames=8, seed=0)
    seen = []
    res = train_victim(
        model, mm, y, tx, ty, CFG, seed=0, device="cpu", on_epoch=lambda e, m: seen.append((e, m)), progress=False
    )
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert set(seen[0][1]) == {"train_loss", "train_acc", "test_acc", "lr", "epoch_seconds"}
    hist = res["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert [h["lr"] for h in hist] == pytest.approx([3e-3, 3e-3, 3e-3, 3e-4])
    assert res["test_acc"] == hist[-1]["test_acc"] and res["train_seconds"] > 0
    assert not model.training
    labels = predict(model, tx, 5, "cpu")
    assert labels.shape == (16,) and labels.dtype == np.int64
    assert res["test_acc"] == pytest.approx(float((labels == ty).mean()))


def test_training_is_seeded():
    x, y = _toy(24, 0)
    runs = []
    for _ in range(2):
        torch.manual_seed(999)  # the global generator must not matter
        model = build_victim("c3d", TINY, 2, (16, 16), num_frames=8, seed=3)
        cfg = CFG.model_copy(update={"epochs": 2})
        res = train_victim(model, x, y, x[:8], y[:8], cfg, seed=3, device="cpu", progress=False)
        runs.append((res["history"][-1]["train_loss"], predict_logits(model, x[:4], 4, "cpu")))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_predict_empty_and_mode_restored():
    model = build_victim("lrcn", TINY, 3, (16, 16), num_frames=8, seed=0)
    model.train()
    assert predict(model, np.zeros((0, 8, 16, 16, 3), np.uint8), 4, "cpu").shape == (0,)
    predict(model, np.zeros((2, 8, 16, 16, 3), np.uint8), 4, "cpu")
    assert model.training


def test_length_mismatch():
    model = build_victim("lrcn", TINY, 2, (16, 16), num_frames=8, seed=0)
    x, y = _toy(4, 0)
    with pytest.raises(ValueError, match="differ in length"):
        train_victim(model, x, y[:3], x, y, CFG, 0, "cpu", progress=False)
