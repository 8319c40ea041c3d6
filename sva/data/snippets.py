"""Snippet extraction: ``num_frames`` evenly spaced frames per video (paper §4.1).

One snippet per video, uint8 ``(T, H, W, 3)`` RGB, stored together in one
memory-mappable ``frames.npy`` of shape ``(N, T, H, W, 3)`` beside an index table.
See ``docs/snippets.md`` for the layout and the decisions.

Frame sampling (``sample_indices``): the centre of each of ``num`` equal segments,

    idx_i = floor((2 i + 1) * n / (2 num)),    i = 0 .. num - 1

computed in integer arithmetic (no float rounding). For ``n >= num`` the indices are
strictly increasing (consecutive centres are ``n / num >= 1`` apart); for ``n < num``
the same formula repeats frames, each one ``floor`` or ``ceil`` of ``num / n`` times,
in temporal order.

Decoding: decord (``VideoReader`` with ``width``/``height`` for the resize, then a
centre crop in NumPy). decord indexes every demuxed packet when it opens a file, so its
frame count is a packet count, not a header estimate. If decord cannot open, count or
seek a file, the video is read sequentially with PyAV instead (two passes: count the
decodable frames, then keep the sampled ones; bilinear resize, which is what decord's
scaler uses); only when that fails too is the video *bad*.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from sva.utils.atomic import atomic_path
from sva.data.settings import SnippetCfg
from sva.utils.logs import bars_off

log = logging.getLogger(__name__)

INDEX_COLUMNS = ["idx", "video_id", "path", "class_name", "label", "split", "frame_count"]
BAD_COLUMNS = ["video_id", "path", "error"]
FILES = ("frames.npy", "index.csv", "bad_videos.csv", "meta.json")
SAMPLING = "segment-centre: idx_i = floor((2i+1)*n / (2*num))"

T = TypeVar("T")
R = TypeVar("R")


class VideoEntryLike(Protocol):
    """What :func:`build_snippets` needs from an entry (``sva.data.splits.VideoEntry``)."""

    video_id: str
    relpath: str
    class_name: str
    label: int
    split: str


class BadVideoError(RuntimeError):
    """A video could not be decoded (the message names the file)."""


# --------------------------------------------------------------------------- sampling


def sample_indices(n_frames: int, num: int) -> np.ndarray:
    """``num`` frame indices evenly spread over ``n_frames`` (segment centres).

    ``idx_i = floor((2i + 1) * n_frames / (2 num))``. Fewer frames than ``num`` repeat
    frames (``n=5, num=16`` -> ``0 0 0 1 1 1 2 2 2 2 3 3 3 4 4 4``).
    ``n_frames <= 0`` is a bad video: ``ValueError``.
    """
    n_frames, num = int(n_frames), int(num)
    if num <= 0:
        raise ValueError(f"num must be positive, got {num}")
    if n_frames <= 0:
        raise ValueError(f"video has {n_frames} frames")
    i = np.arange(num, dtype=np.int64)
    return ((2 * i + 1) * n_frames) // (2 * num)


# --------------------------------------------------------------------------- reading


def center_crop(frames: np.ndarray, crop: tuple[int, int] | None) -> np.ndarray:
    """Centre crop ``(..., H, W, C)`` to ``crop=(h, w)``; top/left = ``(H-h)//2, (W-w)//2``."""
    if crop is None:
        return frames
    h, w = frames.shape[-3], frames.shape[-2]
    ch, cw = crop
    if ch > h or cw > w:
        raise ValueError(f"crop {ch}x{cw} larger than the frame {h}x{w}")
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[..., top : top + ch, left : left + cw, :]


def _read_decord(path: str, num: int, resize: tuple[int, int] | None, threads: int) -> tuple[np.ndarray, int]:
    from decord import VideoReader, cpu

    kwargs: dict[str, Any] = {"ctx": cpu(0), "num_threads": threads}
    if resize is not None:
        kwargs["height"], kwargs["width"] = int(resize[0]), int(resize[1])
    vr = VideoReader(path, **kwargs)
    n = len(vr)
    idx = sample_indices(n, num)
    # get_batch wants distinct-or-not indices; it handles repeats itself.
    frames = vr.get_batch(idx.tolist()).asnumpy()
    del vr
    return frames, n


def _read_pyav(path: str, num: int, resize: tuple[int, int] | None) -> tuple[np.ndarray, int]:
    """Sequential fallback: count the decodable frames, then decode again keeping ours."""
    import av

    with av.open(path) as container:
        n = sum(1 for _ in container.decode(video=0))
    idx = sample_indices(n, num)
    wanted: dict[int, int] = {}  # frame index -> how many times it is sampled (in order)
    for k in idx.tolist():
        wanted[k] = wanted.get(k, 0) + 1
    out: list[np.ndarray] = []
    kw: dict[str, Any] = {"format": "rgb24"}
    if resize is not None:
        kw.update(height=int(resize[0]), width=int(resize[1]), interpolation="BILINEAR")
    with av.open(path) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k in wanted:
                arr = frame.to_ndarray(**kw)
                out.extend([arr] * wanted[k])
            if len(out) == num:
                break
    if len(out) != num:
        raise RuntimeError(f"second pass decoded {len(out)} of {num} sampled frames")
    return np.stack(out), n


def read_snippet(
    path: str | os.PathLike,
    num: int = 16,
    resize: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
    *,
    threads: int = 1,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Read ``num`` evenly spaced frames as uint8 ``(num, H, W, 3)`` RGB.

    ``resize=(H, W)`` is applied while decoding (decord's bilinear scaler), then
    ``crop=(h, w)`` takes the centre. decord first; on any decord failure, PyAV
    sequentially (logged at debug level). Raises :class:`BadVideoError` naming the file
    when neither can read it, or when it has 0 frames. ``return_info=True`` also returns
    ``{"frame_count": n, "reader": "decord" | "pyav"}``.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise BadVideoError(f"{path}: file not found")
    reader = "decord"
    try:
        frames, n = _read_decord(path, num, resize, threads)
        if frames.shape[0] != num or frames.ndim != 4 or frames.shape[-1] != 3:
            raise RuntimeError(f"decord returned shape {frames.shape}")
    except Exception as err_decord:  # noqa: BLE001 - any decord failure -> fallback
        msg_decord = _short(err_decord)
        log.debug("%s: decord failed (%s); reading sequentially with PyAV", path, msg_decord)
        reader = "pyav"
        try:
            frames, n = _read_pyav(path, num, resize)
        except Exception as err_av:  # noqa: BLE001
            raise BadVideoError(f"{path}: unreadable (decord: {msg_decord}; pyav: {_short(err_av)})") from None
    try:
        frames = np.ascontiguousarray(center_crop(frames, crop), dtype=np.uint8)
    except ValueError as err:
        raise BadVideoError(f"{path}: {err}") from None
    if return_info:
        return frames, {"frame_count": int(n), "reader": reader}
    return frames


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    # decord prefixes its messages with "[hh:mm:ss] /github/workspace/src/...": keep the tail.
    if len(text) > limit:
        text = "..." + text[-limit:]
    return f"{type(err).__name__}: {text}"


# --------------------------------------------------------------------------- building


def _ordered_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[tuple[T, R | BaseException]]:
    """``(item, fn(item) or the exception)`` in input order, at most ``2*workers`` in flight."""
    if workers <= 1:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as err:  # noqa: BLE001
                yield item, err
        return
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snippets") as pool:
        pending: deque[tuple[T, cf.Future]] = deque()
        it = iter(items)
        try:
            for item in it:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= 2 * workers:
                    yield _pop(pending)
            while pending:
                yield _pop(pending)
        finally:
            for _, fut in pending:
                fut.cancel()


def _pop(pending: deque) -> tuple[Any, Any]:
    item, fut = pending.popleft()
    try:
        return item, fut.result()
    except Exception as err:  # noqa: BLE001
        return item, err


def default_workers() -> int:
    """Reader threads: one per available core (decord releases the GIL), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _class_names(entries: Sequence[VideoEntryLike]) -> list[str]:
    names: dict[int, str] = {}
    for e in entries:
        label = int(e.label)
        if label < 0:
            raise ValueError(f"{e.relpath}: negative label {label}")
        if names.setdefault(label, e.class_name) != e.class_name:
            raise ValueError(
                f"label {label} maps to both {names[label]!r} and {e.class_name!r} ({e.relpath})"
            )
    if not names:
        return []
    out = []
    for label in range(max(names) + 1):
        if label not in names:
            log.warning("no video has label %d; its class name is unknown", label)
        out.append(names.get(label, f"<label {label}>"))
    return out


def build_snippets(
    entries: Iterable[VideoEntryLike],
    videos_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: SnippetCfg,
    progress: bool = True,
    *,
    workers: int | None = None,
) -> dict[str, Any]:
    """Extract one snippet per entry into ``out_dir`` (built beside it, renamed at the end).

    Writes ``frames.npy`` (uint8 ``(N, T, H, W, 3)``, filled incrementally through
    ``np.lib.format.open_memmap``), ``index.csv`` (row ``idx`` = position in frames.npy),
    ``bad_videos.csv`` (always; header only when none) and ``meta.json``. Returns the
    meta dict. ``cfg.on_bad_video='error'`` raises :class:`BadVideoError` naming the
    file; ``'skip'`` leaves it out, lists it in ``bad_videos.csv`` and logs a warning
    with the count. Videos of different sizes with neither ``resize`` nor ``crop`` set
    are a ``ValueError`` naming the file. ``workers`` reader threads (default: one per
    core).
    """
    entries = list(entries)
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    if not entries:
        raise ValueError("build_snippets: no videos to process")
    seen: set[str] = set()
    for e in entries:
        if e.video_id in seen:
            raise ValueError(f"duplicate video_id {e.video_id!r}")
        seen.add(e.video_id)
    class_names = _class_names(entries)
    workers = default_workers() if workers is None else max(1, int(workers))
    num = cfg.num_frames
    resize = tuple(cfg.resize) if cfg.resize else None
    crop = tuple(cfg.crop) if cfg.crop else None

    def read(entry: VideoEntryLike) -> tuple[np.ndarray, dict[str, Any]]:
        return read_snippet(videos_dir / entry.relpath, num, resize, crop, threads=1, return_info=True)  # type: ignore[return-value]

    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    bad: list[dict[str, str]] = []
    readers = {"decord": 0, "pyav": 0}
    with atomic_path(out_dir, is_dir=True) as tmp:
        frames_path = tmp / "frames.npy"
        arr: np.memmap | None = None
        size: tuple[int, int] | None = None
        bar = tqdm(total=len(entries), desc=f"snippets {out_dir.name}", unit="video", disable=not progress or bars_off())
        results = _ordered_map(read, entries, workers)
        try:
            for entry, result in results:
                bar.update(1)
                if isinstance(result, BaseException):
                    if not isinstance(result, BadVideoError):
                        result = BadVideoError(f"{videos_dir / entry.relpath}: {_short(result)}")
                    if cfg.on_bad_video == "error":
                        raise result
                    bad.append({"video_id": entry.video_id, "path": entry.relpath, "error": str(result)})
                    continue
                clip, info = result
                hw = (int(clip.shape[1]), int(clip.shape[2]))
                if arr is None:
                    size = hw
                    arr = np.lib.format.open_memmap(
                        frames_path, mode="w+", dtype=np.uint8, shape=(len(entries), num, *hw, 3)
                    )
                elif hw != size:
                    raise ValueError(
                        f"{videos_dir / entry.relpath}: frames are {hw[0]}x{hw[1]} but earlier videos "
                        f"are {size[0]}x{size[1]}; set snippets.resize and/or snippets.crop "
                        "so every video ends up the same size"
                    )
                arr[len(rows)] = clip
                readers[info["reader"]] += 1
                rows.append(
                    {
                        "idx": len(rows),
                        "video_id": entry.video_id,
                        "path": entry.relpath,
                        "class_name": entry.class_name,
                        "label": int(entry.label),
                        "split": entry.split,
                        "frame_count": info["frame_count"],
                    }
                )
        finally:
            results.close()  # cancel queued reads now, not at garbage collection
            bar.close()
        if arr is None:
            raise BadVideoError(f"none of the {len(entries)} videos under {videos_dir} could be read")
        arr.flush()
        del arr
        if len(rows) < len(entries):
            _shrink_npy(frames_path, len(rows))
        pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(tmp / "index.csv", index=False)
        pd.DataFrame(bad, columns=BAD_COLUMNS).to_csv(tmp / "bad_videos.csv", index=False)
        elapsed = time.perf_counter() - t0
        assert size is not None
        meta = {
            "cfg": cfg.model_dump(mode="json"),
            "videos_dir": str(videos_dir),
            "sampling": SAMPLING,
            "shape": [len(rows), num, size[0], size[1], 3],
            "dtype": "uint8",
            "counts": {
                "entries": len(entries),
                "written": len(rows),
                "bad": len(bad),
                "by_split": {s: int(c) for s, c in pd.Series([r["split"] for r in rows]).value_counts().items()},
                "read_with": readers,
            },
            "class_names": class_names,
            "workers": workers,
            "seconds": round(elapsed, 3),
            "videos_per_s": round(len(entries) / elapsed, 2) if elapsed > 0 else None,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if bad:
        log.warning(
            "%d of %d videos could not be read and were skipped (listed in %s)",
            len(bad), len(entries), out_dir / "bad_videos.csv",
        )
    if readers["pyav"]:
        log.info("%d videos were read with the PyAV sequential fallback", readers["pyav"])
    log.info("snippets: %d videos in %.1fs (%.1f videos/s) -> %s", len(entries), elapsed, len(entries) / elapsed, out_dir)
    return meta


def _shrink_npy(path: Path, n: int, chunk_bytes: int = 64 << 20) -> None:
    """Keep the first ``n`` rows of a .npy (copied in chunks into a new file)."""
    src = np.load(path, mmap_mode="r")
    new = path.with_name(path.stem + ".shrink.npy")
    dst = np.lib.format.open_memmap(new, mode="w+", dtype=src.dtype, shape=(n, *src.shape[1:]))
    row = max(1, int(np.prod(src.shape[1:])) * src.dtype.itemsize)
    step = max(1, chunk_bytes // row)
    for i in range(0, n, step):
        dst[i : i + step] = src[i : min(n, i + step)]
    dst.flush()
    del dst, src
    os.replace(new, path)


# --------------------------------------------------------------------------- loading


@dataclass(eq=False)
class SnippetStore:
    """A built snippet folder: ``frames`` (read-only memmap) + ``index`` + ``meta``."""

    root: Path
    index: pd.DataFrame
    frames: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[1])

    @property
    def frame_size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[3])

    def video(self, i: int) -> np.ndarray:
        """Snippet ``i`` as a fresh (writable) uint8 ``(T, H, W, 3)`` array."""
        return np.array(self.frames[int(i)])

    def as_float(self, i: int) -> torch.Tensor:
        """Snippet ``i`` in attack space: float32 ``(T, 3, H, W)`` in [0, 1]."""
        return torch.from_numpy(self.video(i)).permute(0, 3, 1, 2).contiguous().float().div_(255.0)

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices (into ``frames``) of one split, ascending."""
        known = set(self.index["split"].unique()) | {"train", "test"}
        if split not in known:
            raise ValueError(f"{self.root}: unknown split {split!r} (have {sorted(known)})")
        return np.flatnonzero(self.index["split"].to_numpy() == split)

    @property
    def labels(self) -> np.ndarray:
        return self.index["label"].to_numpy(dtype=np.int64)

    @property
    def class_names(self) -> list[str]:
        names = self.meta.get("class_names")
        if names:
            return list(names)
        pairs = self.index.drop_duplicates("label").sort_values("label")
        return pairs["class_name"].tolist()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_snippets(out_dir: str | os.PathLike) -> SnippetStore:
    """Open a folder written by :func:`build_snippets` (frames memory-mapped read-only)."""
    root = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"snippet folder {root} does not exist (run the snippets stage first)")
    missing = [f for f in ("frames.npy", "index.csv", "meta.json") if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"snippet folder {root} is incomplete: missing {', '.join(missing)} (rebuild it with the snippets stage)"
        )
    frames = np.load(root / "frames.npy", mmap_mode="r")
    index = pd.read_csv(root / "index.csv", dtype={"video_id": str, "path": str, "class_name": str, "split": str})
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    if frames.ndim != 5 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{root / 'frames.npy'}: expected uint8 (N, T, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(index) != frames.shape[0]:
        raise ValueError(f"{root}: index.csv has {len(index)} rows but frames.npy has {frames.shape[0]} snippets")
    if not (index["idx"].to_numpy() == np.arange(len(index))).all():
        raise ValueError(f"{root / 'index.csv'}: column idx must be 0..N-1 in order")
    return SnippetStore(root=root, index=index, frames=frames, meta=meta)
