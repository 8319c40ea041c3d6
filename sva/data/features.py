"""Per-frame ResNet18 features: the RL agent's input (paper §3.2).

Each snippet frame goes through a ResNet18 up to the global average pool (the ``fc``
layer is replaced by the identity), giving a 512-d vector: ``features.npy`` is float32
``(N, T, 512)``, row ``i`` matching row ``i`` of the snippet folder's ``index.csv``.

Input pipeline per frame: uint8 RGB -> float in [0, 1] -> optional bilinear resize to
``input_size`` x ``input_size`` (antialiased) -> ImageNet mean/std normalisation.

Weights (``FeatureCfg.weights``) — no download is ever attempted:

* ``imagenet``: torchvision's ``ResNet18_Weights.IMAGENET1K_V1`` read from the torch
  hub cache (``<torch.hub.get_dir()>/checkpoints/resnet18-f37072fd.pth``); missing ->
  :class:`WeightsError` saying where to put the file.
* ``auto``: ``imagenet`` when that file is there, else ``none`` (warning logged).
* ``none``: random init (torchvision's initialisers) under a torch generator seeded
  with ``derive_seed(seed, "features", "resnet18")``; the global RNG is untouched.
* anything else: a path to a local ``state_dict`` (``torch.load(weights_only=True)``).

Centring (``FeatureCfg.center``, :func:`center_on_train_mean`): the written features
may have the mean feature of the train split's frames subtracted (``auto``: exactly
when the weights are a random init), see ``docs/features.md``, "Centring".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from tqdm.auto import tqdm

from sva.utils.atomic import atomic_path
from sva.utils.errors import UserError
from sva.data.settings import FeatureCfg
from sva.data.snippets import SnippetStore, load_snippets
from sva.utils.devices import pick_device
from sva.utils.seeding import derive_seed
from sva.utils.logs import bars_off

log = logging.getLogger(__name__)

FEATURE_DIM = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsError(UserError, RuntimeError):
    """Requested backbone weights are unavailable or incompatible (the message names
    the file; pipeline jobs print it without a traceback)."""


def imagenet_weights_file() -> Path:
    """Where torchvision's ImageNet ResNet18 checkpoint must be for offline use."""
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _random_resnet18(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "features", "resnet18"))
        return torchvision.models.resnet18(weights=None)


def _load_state_dict(model: nn.Module, path: Path, what: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise WeightsError(f"{what} {path}: cannot be read as a torch state_dict ({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{what} {path}: expected a state_dict (name -> tensor), got {type(state).__name__}")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    # The fc head is dropped anyway: a backbone-only state_dict is fine.
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise WeightsError(f"{what} {path}: not compatible with torchvision resnet18: {err}") from None
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise WeightsError(
            f"{what} {path}: not a torchvision resnet18 state_dict "
            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {list(unexpected)[:5]}{'...' if len(unexpected) > 5 else ''})"
        )


def load_resnet18(weights: str, seed: int) -> tuple[nn.Module, str]:
    """ResNet18 without its classifier (``fc = Identity``: outputs 512-d), in eval mode.

    Returns ``(model, used)`` with ``used`` one of ``"imagenet"``, ``"none"`` (random
    init from ``seed``) or ``"file:<absolute path>"``. See the module docstring.
    """
    weights = str(weights)
    if weights in ("imagenet", "auto"):
        file = imagenet_weights_file()
        if file.is_file():
            model = torchvision.models.resnet18(weights=None)
            _load_state_dict(model, file, "ImageNet weights file")
            used = "imagenet"
        elif weights == "imagenet":
            raise WeightsError(
                f"features.weights 'imagenet': {file} not found and nothing can be downloaded here. "
                f"Copy torchvision's ResNet18 IMAGENET1K_V1 checkpoint "
                f"({torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url}) to that path "
                f"(or set TORCH_HOME so that it is <TORCH_HOME>/hub/checkpoints/{file.name}), "
                f"or pass the file's path as features.weights, or use 'auto' / 'none'"
            )
        else:
            log.warning(
                "features.weights 'auto': ImageNet ResNet18 weights not found at %s; "
                "using a random init seeded from seed=%d (features are then random projections)",
                file, seed,
            )
            model, used = _random_resnet18(seed), "none"
        if used == "imagenet":
            log.info("features: ResNet18 ImageNet weights from %s", file)
    elif weights == "none":
        model, used = _random_resnet18(seed), "none"
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"features.weights {weights!r}: no such file {path.resolve()} "
                "(expected 'auto', 'imagenet', 'none' or a path to a resnet18 state_dict)"
            )
        model = torchvision.models.resnet18(weights=None)
        _load_state_dict(model, path, "features.weights file")
        used = f"file:{path.resolve()}"
    model.fc = nn.Identity()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, used


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Temporarily set torch's intra-op thread count (``None``: leave it alone)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def extract_features(
    store: SnippetStore,
    cfg: FeatureCfg,
    seed: int,
    device: str | torch.device = "cpu",
    *,
    progress: bool = True,
    out: np.ndarray | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, str]:
    """Features of every frame of every snippet: float32 ``(N, T, 512)`` and the weights used.

    Frames are processed ``cfg.batch_size`` at a time under ``torch.inference_mode``,
    read straight from the memmap (channels-last layout, ~10% faster on CPU). ``out``
    (e.g. an ``open_memmap``) receives the result instead of a new in-memory array.
    ``threads``: torch intra-op threads for the duration (give it the cores the job was
    granted: oversubscribed CPU threads make ResNet18 several times slower).
    """
    with torch_threads(threads):
        return _extract(store, cfg, seed, device, progress, out)


def _extract(store, cfg, seed, device, progress, out) -> tuple[np.ndarray, str]:
    dev = pick_device(str(device)) if not isinstance(device, torch.device) else device
    model, used = load_resnet18(cfg.weights, seed)
    model.to(dev, memory_format=torch.channels_last)
    n, t = len(store), store.num_frames
    flat = store.frames.reshape(n * t, *store.frames.shape[2:])  # a view of the memmap
    if out is None:
        out = np.empty((n, t, FEATURE_DIM), dtype=np.float32)
    elif out.shape != (n, t, FEATURE_DIM) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(n, t, FEATURE_DIM)}, got {out.dtype} {out.shape}")
    out_flat = out.reshape(n * t, FEATURE_DIM)
    mean = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
    bs = cfg.batch_size
    with torch.inference_mode(), tqdm(total=n * t, desc="features", unit="frame", disable=not progress or bars_off()) as bar:
        for start in range(0, n * t, bs):
            stop = min(n * t, start + bs)
            x = torch.from_numpy(np.array(flat[start:stop])).to(dev)  # copy: the memmap is read-only
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            if cfg.input_size is not None and tuple(x.shape[-2:]) != (cfg.input_size, cfg.input_size):
                x = nn.functional.interpolate(
                    x, size=(cfg.input_size, cfg.input_size), mode="bilinear", align_corners=False, antialias=True
                )
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            out_flat[start:stop] = model(x).float().cpu().numpy()
            bar.update(stop - start)
    return out, used


def resolve_center(center: str, used: str) -> str:
    """``"train_mean"`` or ``"none"`` for ``FeatureCfg.center`` given the weights
    actually used (``"none"`` = random init, ``"imagenet"``, ``"file:..."``)."""
    if center == "auto":
        return "train_mean" if used == "none" else "none"
    if center not in ("train_mean", "none"):
        raise ValueError(f"features.center must be 'auto', 'train_mean' or 'none', got {center!r}")
    return center


def center_on_train_mean(features: np.ndarray, train_rows: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Subtract, in place, the mean feature over every frame of the rows ``train_rows``.

    ``features``: float32 ``(N, T, D)`` (an in-memory array or a writable memmap,
    processed ``chunk`` rows at a time); ``train_rows``: indices of the train split's
    snippets. The mean is accumulated in float64. Returns the subtracted mean, float32
    ``(D,)``. Euclidean distances between features are unchanged; cosines then measure
    how frames differ from the train split's average frame.
    """
    train_rows = np.asarray(train_rows, dtype=np.int64)
    if train_rows.size == 0:
        raise ValueError("centring on the train mean needs at least one train-split snippet, got none")
    total = np.zeros(features.shape[-1], dtype=np.float64)
    for start in range(0, train_rows.size, chunk):
        rows = features[train_rows[start:start + chunk]]
        total += rows.reshape(-1, rows.shape[-1]).sum(0, dtype=np.float64)
    mean = (total / (train_rows.size * features.shape[1])).astype(np.float32)
    for start in range(0, features.shape[0], chunk):
        features[start:start + chunk] -= mean
    return mean


def build_features(
    snippets_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: FeatureCfg,
    seed: int,
    device: str | torch.device = "cpu",
    *,
    progress: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/features.npy`` (float32 ``(N, T, 512)``) and ``out_dir/meta.json``.

    The folder is built beside ``out_dir`` and renamed into place at the end. Returns the
    meta dict. ``threads``: see :func:`extract_features`.
    """
    snippets_dir, out_dir = Path(snippets_dir), Path(out_dir)
    store = load_snippets(snippets_dir)
    t0 = time.perf_counter()
    with atomic_path(out_dir, is_dir=True) as tmp:
        arr = np.lib.format.open_memmap(
            tmp / "features.npy", mode="w+", dtype=np.float32, shape=(len(store), store.num_frames, FEATURE_DIM)
        )
        _, used = extract_features(store, cfg, seed, device, progress=progress, out=arr, threads=threads)
        center = resolve_center(cfg.center, used)
        mean = None
        if center == "train_mean":
            train = store.split_indices("train")
            if train.size == 0:
                raise UserError(
                    f"features.center 'train_mean': {snippets_dir / 'index.csv'} has no train-split snippet "
                    "to take the mean of (set features.center: none)"
                )
            mean = center_on_train_mean(arr, train)
        arr.flush()
        shape = list(arr.shape)
        del arr
        elapsed = time.perf_counter() - t0
        weights_file = None
        if used.startswith("file:"):
            weights_file = used[len("file:"):]
        elif used == "imagenet":
            weights_file = str(imagenet_weights_file())
        meta = {
            "weights": used,
            "weights_sha256": _sha256(Path(weights_file)) if weights_file else None,
            "cfg": cfg.model_dump(mode="json"),
            "seed": int(seed),
            "init_seed": derive_seed(seed, "features", "resnet18") if used == "none" else None,
            "device": str(device),
            "snippets_dir": str(snippets_dir),
            "snippets_shape": list(store.frames.shape),
            "shape": shape,
            "dtype": "float32",
            "layer": "resnet18 global average pool (before fc)",
            "center": center,
            "center_train_snippets": int(store.split_indices("train").size) if mean is not None else None,
            "center_mean": [float(v) for v in mean] if mean is not None else None,
            "normalisation": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
            "seconds": round(elapsed, 3),
            "torch_threads": int(threads) if threads is not None else torch.get_num_threads(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info("features: %s frames in %.1fs (weights %s) -> %s", shape[0] * shape[1], elapsed, used, out_dir)
    return meta


def load_features(out_dir: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """``features.npy`` from a folder written by :func:`build_features`."""
    path = Path(out_dir) / "features.npy"
    if not path.is_file():
        raise FileNotFoundError(f"feature folder {out_dir}: missing features.npy (run the features stage first)")
    return np.load(path, mmap_mode="r" if mmap else None)
