"""Test helper: tiny real video files written with PyAV, with known content.

``numbered_frames(n)`` makes frame ``k`` a uniform grey of intensity ``BASE + STEP*k``
so a decoded snippet tells which source frames were sampled (``frame_numbers``), even
through lossy yuv420p H.264 (error of a few levels, far below ``STEP/2``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

BASE = 10
STEP = 6  # up to 41 numbered frames fit in uint8

# (extension, encoder, pixel format). ffv1+bgr0 is lossless RGB; the others are lossy.
FORMATS = {
    "ffv1-avi": (".avi", "ffv1", "bgr0"),
    "ffv1-mkv": (".mkv", "ffv1", "bgr0"),
    "h264-mp4": (".mp4", "libx264", "yuv420p"),
}


@dataclass
class Entry:
    """Stands in for ``sva.data.splits.VideoEntry``."""

    video_id: str
    relpath: str
    class_name: str
    label: int
    split: str


def numbered_frames(n: int, height: int = 32, width: int = 32) -> np.ndarray:
    """uint8 ``(n, H, W, 3)``; frame ``k`` is uniformly ``BASE + STEP*k``."""
    if BASE + STEP * (n - 1) > 255:
        raise ValueError(f"at most {(255 - BASE) // STEP + 1} numbered frames")
    values = BASE + STEP * np.arange(n, dtype=np.int64)
    return np.broadcast_to(values[:, None, None, None], (n, height, width, 3)).astype(np.uint8)


def frame_numbers(snippet: np.ndarray) -> np.ndarray:
    """Which numbered frame each snippet frame is (nearest, from the mean intensity)."""
    means = snippet.reshape(snippet.shape[0], -1).astype(np.float64).mean(axis=1)
    return np.rint((means - BASE) / STEP).astype(np.int64)


def column_frames(n: int, height: int, width: int, scale: int = 4) -> np.ndarray:
    """uint8 ``(n, H, W, 3)``: red = ``scale*column``, green = ``scale*row``, blue = frame."""
    out = np.zeros((n, height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    out[..., 0] = (scale * xx) % 256
    out[..., 1] = (scale * yy) % 256
    out[..., 2] = (BASE + STEP * np.arange(n))[:, None, None] % 256
    return out


def write_video(path: str | os.PathLike, frames: np.ndarray, fmt: str = "ffv1-mkv", fps: int = 25) -> Path:
    """Encode uint8 RGB ``(T, H, W, 3)`` to ``path`` with one of :data:`FORMATS`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, codec, pix_fmt = FORMATS[fmt]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = int(frames.shape[1]), int(frames.shape[2])
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            # small GOP + B-frames: sampling must seek across keyframes and reorder frames
            stream.options = {"crf": "1", "g": "8", "bf": "2"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_numbered(path: str | os.PathLike, n: int, fmt: str | None = None, height: int = 32, width: int = 32) -> Path:
    """A numbered video; ``fmt`` defaults to the one its extension implies (ffv1 for .avi/.mkv)."""
    path = Path(path)
    if fmt is None:
        fmt = {".avi": "ffv1-avi", ".mkv": "ffv1-mkv", ".mp4": "h264-mp4"}[path.suffix]
    return write_video(path, numbered_frames(n, height, width), fmt)


def write_garbage(path: str | os.PathLike, nbytes: int = 4096, seed: int = 0) -> Path:
    """Random bytes under a video name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes())
    return path


def write_truncated(src: str | os.PathLike, dst: str | os.PathLike, keep_bytes: int) -> Path:
    """The first ``keep_bytes`` bytes of ``src``."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(Path(src).read_bytes()[:keep_bytes])
    return dst
