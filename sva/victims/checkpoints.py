"""Victim checkpoints: weights + everything needed to rebuild the model.

The file is a plain dict of tensors and primitives (str, int, float, bool, None,
lists/dicts of those), so it loads with ``torch.load(..., weights_only=True)``, which
cannot execute code from the file. Written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sva.utils.atomic import atomic_path
from sva.utils.errors import UserError
from sva.victims.models import build_from_arch

CHECKPOINT_VERSION = 1


def _primitive(obj: Any) -> Any:
    """JSON round-trip: keeps only primitives (numpy scalars, paths -> str)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def save_victim(
    path: str | Path,
    model: nn.Module,
    name: str,
    arch_cfg: dict[str, Any],
    num_classes: int,
    input_hw: tuple[int, int],
    meta: dict[str, Any] | None = None,
    *,
    num_frames: int | None = None,
) -> Path:
    """Save ``model`` (built by ``build_victim(name, ...)``) to ``path`` atomically.

    ``arch_cfg`` is :func:`sva.victims.models.victim_arch`'s dict. ``meta`` (accuracy, seed,
    dataset, ...) must be JSON-like; it is stored as primitives. ``num_frames`` defaults
    to the model's own input size (C3D) or 16.
    """
    if num_frames is None:
        num_frames = int(getattr(model, "input_size", (16,))[0])
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ckpt = {
        "format": "sva-victim",
        "version": CHECKPOINT_VERSION,
        "name": str(name),
        "arch": _primitive(dict(arch_cfg)),
        "num_classes": int(num_classes),
        "input_hw": [int(input_hw[0]), int(input_hw[1])],
        "num_frames": int(num_frames),
        "meta": _primitive(dict(meta or {})),
        "state_dict": state,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


class CheckpointError(UserError, ValueError):
    """A victim checkpoint is missing, unreadable, corrupted or of the wrong victim."""


def load_victim(
    path: str | Path, device: torch.device | str = "cpu", *, expect: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint (``weights_only=True``); return (model in eval mode, info).

    ``info`` holds ``name``, ``arch``, ``num_classes``, ``input_hw`` (tuple),
    ``num_frames`` and ``meta``. ``expect``: the victim the caller asked for
    (``c3d``/``lrcn``); a checkpoint of another architecture is refused. Every failure
    is a :class:`CheckpointError` of one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: victim checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, pickle refused, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: cannot read the victim checkpoint (corrupted or not a checkpoint: "
                              f"{reason}); delete it and rerun to retrain") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "sva-victim":
        raise CheckpointError(f"{path}: not an sva victim checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} != {CHECKPOINT_VERSION}")
    if expect is not None and ckpt.get("name") != expect:
        raise CheckpointError(f"{path}: holds a {ckpt.get('name')!r} victim, but {expect!r} was asked for "
                              "(a checkpoint copied over another?); delete it and rerun to retrain")
    input_hw = (int(ckpt["input_hw"][0]), int(ckpt["input_hw"][1]))
    model = build_from_arch(ckpt["name"], ckpt["arch"], ckpt["num_classes"], input_hw, ckpt["num_frames"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the {ckpt['name']} architecture it declares: "
                              f"{str(err).splitlines()[0]}") from None
    model.to(device).eval()
    info = {k: ckpt[k] for k in ("name", "arch", "num_classes", "num_frames", "meta")}
    info["input_hw"] = input_hw
    return model, info
