"""Victim training and evaluation (see ``docs/victims.md``).

Data are uint8 arrays ``(N, T, H, W, 3)`` (in memory or ``np.memmap``); each batch is
copied, moved to the device as uint8 and only there converted to float
``(B, T, 3, H, W)`` in [0, 1]. Adam + StepLR + cross-entropy, as in the paper (§4.1);
the shuffling and every other random draw of a run come from ``seed``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sva.victims.settings import TrainCfg
from sva.utils.seeding import derive_seed
from sva.utils.logs import bars_off


def to_video_batch(x_uint8: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float32 (B, T, 3, H, W) in [0, 1] on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(x_uint8)).to(device, non_blocking=True)
    return t.permute(0, 1, 4, 2, 3).float().div_(255.0)


def _logits_batches(model: nn.Module, x: np.ndarray, batch_size: int, device: torch.device | str):
    for start in range(0, len(x), batch_size):
        yield model(to_video_batch(x[start : start + batch_size], device))


def predict_logits(model: nn.Module, x_uint8: np.ndarray, batch_size: int, device: torch.device | str) -> np.ndarray:
    """Logits (N, num_classes) float32 of uint8 videos (N, T, H, W, 3), eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = [lg.float().cpu() for lg in _logits_batches(model, x_uint8, batch_size, device)]
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()


def predict(model: nn.Module, x_uint8: np.ndarray, batch_size: int, device: torch.device | str) -> np.ndarray:
    """Top-1 labels (N,) int64 of uint8 videos (N, T, H, W, 3), eval mode."""
    logits = predict_logits(model, x_uint8, batch_size, device)
    return logits.argmax(axis=1).astype(np.int64) if len(logits) else np.zeros(0, dtype=np.int64)


def accuracy(model: nn.Module, x_uint8: np.ndarray, y: np.ndarray, batch_size: int, device) -> float:
    if len(y) == 0:
        return float("nan")
    return float((predict(model, x_uint8, batch_size, device) == np.asarray(y)).mean())


def train_victim(
    model: nn.Module,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cfg: TrainCfg,
    seed: int,
    device: torch.device | str,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = True,
    *,
    num_threads: int | None = None,
    eval_batch_size: int | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place; return ``{"history": [...], "test_acc", "train_acc",
    "train_seconds", "epochs"}``.

    Adam(lr, weight_decay), StepLR(lr_step_epoch, lr_gamma), cross-entropy, batches of
    ``cfg.batch_size`` shuffled by a ``torch.Generator`` seeded from ``seed``; dropout
    draws come from a forked torch RNG seeded from ``seed`` too (the caller's global
    RNG state is left as it was). ``on_epoch(epoch, metrics)`` (epoch from 1) gets
    ``train_loss``, ``train_acc`` (running, on the shuffled batches), ``test_acc``,
    ``lr`` (the rate used in that epoch) and ``epoch_seconds`` (training + test
    evaluation). The final model is the last epoch's: the test set is never used to
    pick a model. ``num_threads`` sets ``torch.set_num_threads`` (CPU) when given.
    """
    device = torch.device(device)
    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("videos and labels differ in length")
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    eval_bs = eval_batch_size or max(cfg.batch_size, 64)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_epoch, gamma=cfg.lr_gamma)
    gen = torch.Generator().manual_seed(derive_seed(seed, "victim_train", "shuffle"))
    n = len(train_x)
    n_batches = math.ceil(n / cfg.batch_size)

    from tqdm import tqdm

    history: list[dict[str, float]] = []
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    t_start = time.perf_counter()
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(derive_seed(seed, "victim_train", "torch"))
        bar = tqdm(total=cfg.epochs * n_batches, desc="train", unit="batch", disable=not progress or bars_off())
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            model.train()
            perm = torch.randperm(n, generator=gen).numpy()
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(n_batches):
                idx = np.sort(perm[b * cfg.batch_size : (b + 1) * cfg.batch_size])
                bar.update()
                if len(idx) < 2:  # BatchNorm cannot train on a single sample
                    continue
                xb = to_video_batch(train_x[idx], device)
                yb = torch.from_numpy(train_y[idx]).to(device)
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(1) == yb).sum())
                seen += len(idx)
            sched.step()
            test_acc = accuracy(model, test_x, test_y, eval_bs, device)
            metrics = {
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "test_acc": test_acc,
                "lr": lr,
                "epoch_seconds": time.perf_counter() - t0,
            }
            history.append(metrics)
            bar.set_postfix(loss=f"{metrics['train_loss']:.3f}", test=f"{test_acc:.3f}")
            if on_epoch is not None:
                on_epoch(epoch, metrics)
        bar.close()
    model.eval()
    return {
        "history": history,
        "epochs": cfg.epochs,
        "train_acc": history[-1]["train_acc"] if history else float("nan"),
        "test_acc": history[-1]["test_acc"] if history else float("nan"),
        "train_seconds": time.perf_counter() - t_start,
    }
