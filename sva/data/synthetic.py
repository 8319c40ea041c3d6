"""The embedded synthetic action dataset (see ``docs/synthetic.md``).

Every video shows one two-toned object on a textured, noisy background. The object is
**static except inside one short random temporal window** of ``cfg.window`` frames,
where it performs the class-defining motion (translate, scale, shake and return, or
rotate). Positions, orientations and sizes are drawn so that a single frame carries
(almost) no information about the class: every class draws the same nuisance
variables, objects that do not move sit at either end of a virtual move placed like a
real one, orientations are uniform, and the sizes before and after a Grow/Shrink share
one distribution with every other class. A video model has to look at the motion
inside the window; an attack that picks the right frames has an advantage.

Files follow the UCF-101 layout (``videos/<Class>/v_<Class>_gXX_cYY.avi`` and
``splits/{classInd,trainlist0N,testlist0N}.txt``); ``manifest.json`` is written last
and marks the directory complete. ``windows.csv`` records each video's window.
"""

from __future__ import annotations

import colorsys
import csv
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sva.utils.atomic import atomic_path, write_json, write_text
from sva.data.settings import SyntheticCfg
from sva.utils.seeding import numpy_rng
from sva.utils.logs import bars_off

FORMAT_VERSION = 1
FPS = 25

#: Class names, in label order. ``cfg.num_classes`` takes the first N.
CLASS_NAMES: tuple[str, ...] = (
    "MoveRight",
    "MoveLeft",
    "MoveUp",
    "MoveDown",
    "Grow",
    "Shrink",
    "ShakeHorizontal",
    "ShakeVertical",
    "MoveUpRight",
    "MoveDownLeft",
    "RotateCW",
    "RotateCCW",
)

SHAPES: tuple[str, ...] = ("bar", "triangle", "ell", "tee", "arrow", "half_disc")

# UCF-style groups: train and test never share a group number.
TEST_GROUPS = tuple(range(1, 8))  # g01..g07
TRAIN_GROUPS = tuple(range(8, 26))  # g08..g25

_SUPERSAMPLE = 3  # anti-aliasing: coverage from 3x3 sub-pixel samples

#: The design's ranges (fractions of min(H, W) for lengths, degrees for angles).
#: Not a configuration: the values are part of the dataset's definition (calibration
#: scripts may patch them in-process; spawned workers would not see the patch).
#: Changing any of them changes the dataset: bump FORMAT_VERSION.
DESIGN: dict[str, Any] = {
    "radius": (0.13, 0.18),  # log-uniform shape radius (before the scale ladder)
    "scale_factor": (1.6, 1.9),  # Grow/Shrink ratio; the ladder for the other classes
    "move": (0.18, 0.24),  # total displacement of a Move
    "turn": (80.0, 100.0),  # total rotation of a Rotate, degrees
    "shake": (0.14, 0.18),  # amplitude of a Shake
    "margin": 1.0,  # keep the centre this many radii inside the frame
    "pattern": "half",  # surface pattern: "half" (one half darker) or "stripes"
    "stripes": 2.0,  # dark/light cycles per shape diameter ("stripes")
    "shade": (0.35, 0.5),  # brightness of the darker tone
    "distractor": False,  # the drifting dot
    "distractor_speed": (0.008, 0.018),  # px per frame / min(H, W)
    "distractor_radius": (0.045, 0.06),
    "noise_std": 2.0,  # per-frame sensor noise, grey levels
    "bg_value": (0.12, 0.4),  # HSV value of the background base colour
    "bg_texture": (8.0, 20.0),  # amplitude of the smooth background texture
}


def class_names(num_classes: int) -> list[str]:
    if not 2 <= num_classes <= len(CLASS_NAMES):
        raise ValueError(f"num_classes must be in [2, {len(CLASS_NAMES)}], got {num_classes}")
    return list(CLASS_NAMES[:num_classes])


# --------------------------------------------------------------------------- shapes
def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of local coordinates (the shape fits in the unit disc)."""
    if shape == "bar":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.38)
    if shape == "triangle":  # apex at +u
        return (u >= -0.7) & (u <= 1.0) & (np.abs(v) <= 0.85 * (1.0 - u) / 1.7)
    if shape == "ell":
        a = (u >= -0.8) & (u <= 0.8) & (v >= 0.3) & (v <= 0.8)
        b = (u >= -0.8) & (u <= -0.3) & (v >= -0.8) & (v <= 0.8)
        return a | b
    if shape == "tee":
        a = (u >= -0.9) & (u <= 0.9) & (v >= -0.85) & (v <= -0.4)
        b = (np.abs(u) <= 0.22) & (v >= -0.85) & (v <= 0.9)
        return a | b
    if shape == "arrow":  # head at +u, stem towards -u
        head = (u >= 0.1) & (u <= 1.0) & (np.abs(v) <= 0.75 * (1.0 - u) / 0.9)
        stem = (u >= -1.0) & (u <= 0.1) & (np.abs(v) <= 0.2)
        return head | stem
    if shape == "half_disc":
        return (u * u + v * v <= 1.0) & (v >= -0.15)
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(
    shape: str,
    cx: np.ndarray,
    cy: np.ndarray,
    theta: np.ndarray,
    scale: np.ndarray,
    h: int,
    w: int,
) -> np.ndarray:
    """Anti-aliased coverage (K, H, W) in [0, 1] of ``shape`` in K states, and that of
    its darker-toned part (the surface pattern).

    Displacements are taken on the torus (a shape over a border would re-appear on the
    other side); the placement keeps objects inside the frame, so this only matters
    for an object too large to fit.
    """
    ss = _SUPERSAMPLE
    ys = (np.arange(h * ss) + 0.5) / ss
    xs = (np.arange(w * ss) + 0.5) / ss
    cx = np.asarray(cx, dtype=np.float64)[:, None, None]
    cy = np.asarray(cy, dtype=np.float64)[:, None, None]
    th = np.asarray(theta, dtype=np.float64)[:, None, None]
    sc = np.asarray(scale, dtype=np.float64)[:, None, None]
    dx = np.mod(xs[None, None, :] - cx + w / 2, w) - w / 2  # minimal torus displacement
    dy = np.mod(ys[None, :, None] - cy + h / 2, h) - h / 2
    c, s = np.cos(th), np.sin(th)
    # Image y points down, so increasing theta turns the shape clockwise on screen.
    u = (dx * c + dy * s) / sc
    v = (-dx * s + dy * c) / sc
    inside = _inside(shape, u, v)
    if DESIGN["pattern"] == "stripes":  # bands across the shape's long (u) axis
        dark = inside & (np.mod((u + 1.0) * DESIGN["stripes"] / 2.0, 1.0) < 0.5)
    else:  # "half": the v < 0 half is the darker tone
        dark = inside & (v < 0)
    k = inside.shape[0]
    cov = inside.astype(np.float32).reshape(k, h, ss, w, ss).mean(axis=(2, 4))
    dcov = dark.astype(np.float32).reshape(k, h, ss, w, ss).mean(axis=(2, 4))
    return cov, dcov


def _disc_coverage(cx: np.ndarray, cy: np.ndarray, r: float, h: int, w: int) -> np.ndarray:
    ss = _SUPERSAMPLE
    ys = (np.arange(h * ss) + 0.5) / ss
    xs = (np.arange(w * ss) + 0.5) / ss
    dx = np.mod(xs[None, None, :] - cx[:, None, None] + w / 2, w) - w / 2
    dy = np.mod(ys[None, :, None] - cy[:, None, None] + h / 2, h) - h / 2
    inside = (dx * dx + dy * dy <= r * r).astype(np.float32)
    return inside.reshape(len(cx), h, ss, w, ss).mean(axis=(2, 4))


# --------------------------------------------------------------------------- render
def _bright_colour(rng: np.random.Generator) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.55, 1.0), rng.uniform(0.8, 1.0))
    return np.array([r, g, b]) * 255.0


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A static textured background (H, W, 3) float: dark base + smooth blobs + grain."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 0.7), rng.uniform(*DESIGN["bg_value"]))
    base = np.array([r, g, b]) * 255.0
    # smooth periodic texture: a coarse random grid, bilinearly upsampled on the torus
    gh, gw = max(2, h // 6), max(2, w // 6)
    grid = rng.normal(0.0, 1.0, size=(gh, gw, 3))
    yy = np.arange(h) * gh / h
    xx = np.arange(w) * gw / w
    y0 = np.floor(yy).astype(int)
    x0 = np.floor(xx).astype(int)
    fy = (yy - y0)[:, None, None]
    fx = (xx - x0)[None, :, None]
    y1, x1 = (y0 + 1) % gh, (x0 + 1) % gw
    smooth = (
        grid[y0][:, x0] * (1 - fy) * (1 - fx)
        + grid[y0][:, x1] * (1 - fy) * fx
        + grid[y1][:, x0] * fy * (1 - fx)
        + grid[y1][:, x1] * fy * fx
    )
    amp = rng.uniform(*DESIGN["bg_texture"])
    grain = rng.normal(0.0, rng.uniform(2.0, 6.0), size=(h, w, 1))
    return base[None, None, :] + amp * smooth + grain


_R2 = math.sqrt(0.5)
_DIRECTIONS = {
    "MoveRight": (1.0, 0.0),
    "MoveLeft": (-1.0, 0.0),
    "MoveUp": (0.0, -1.0),
    "MoveDown": (0.0, 1.0),
    "MoveUpRight": (_R2, -_R2),
    "MoveDownLeft": (-_R2, _R2),
}
_DIRECTION_LIST = tuple(_DIRECTIONS.values())


def _place(u: float, lo: float, hi: float) -> float:
    return lo + u * (hi - lo) if hi > lo else 0.5 * (lo + hi)


def _progress(t: np.ndarray, start: int, length: int) -> np.ndarray:
    """0 before the window, (k+1)/L at window frame k, 1 after."""
    return np.clip((t - start + 1) / length, 0.0, 1.0)


def sample_window(rng: np.random.Generator, cfg: SyntheticCfg) -> tuple[int, int]:
    """(start, length): the motion occupies frames start .. start+length-1.

    At least one static frame precedes the window (the "before" state is visible), so
    ``start`` is in [1, frames - length] (0 only when the window spans every frame).
    """
    lo, hi = cfg.window
    length = int(rng.integers(lo, hi + 1))
    first = 1 if length < cfg.frames else 0
    start = int(rng.integers(first, cfg.frames - length + 1))
    return start, length


def render_video_with_info(
    cls: int,
    rng: np.random.Generator,
    cfg: SyntheticCfg,
    *,
    noise: bool = True,
    distractor: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render one video of class ``cls``: uint8 (T, H, W, 3) and its ground truth.

    The info holds the window (``window_start``, ``window_length``), the shape and the
    object's per-frame state arrays (``cx``, ``cy``, ``theta``, ``scale``), from which
    tests check that the object only moves inside the window. ``noise`` and
    ``distractor`` exist for tests (they consume the same random numbers either way,
    so the object and background are identical with or without them).
    """
    if not 0 <= cls < cfg.num_classes:
        raise ValueError(f"class {cls} out of range for {cfg.num_classes} classes")
    name = CLASS_NAMES[cls]
    T, H, W = cfg.frames, cfg.height, cfg.width
    m = float(min(H, W))
    t = np.arange(T, dtype=np.float64)

    start, length = sample_window(rng, cfg)
    p = _progress(t, start, length)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    colour = _bright_colour(rng)
    shade = rng.uniform(*DESIGN["shade"])  # darker second tone: the surface pattern
    bg = _background(rng, H, W)

    # Sizes: every class draws (small, factor) and a position on the scale ladder, so the
    # size distribution of single frames is the same for every class.
    d = DESIGN
    small = m * math.exp(rng.uniform(*np.log(d["radius"])))  # shape radius, px
    factor = rng.uniform(*d["scale_factor"])
    ladder = rng.uniform()
    theta0 = rng.uniform(0, 2 * math.pi)
    dist = m * rng.uniform(*d["move"])  # total displacement of a move
    turn = math.radians(rng.uniform(*d["turn"]))  # total rotation
    amp = m * rng.uniform(*d["shake"])  # shake amplitude
    # Every class draws a direction and an end (0 = before, 1 = after a move): the
    # classes that do not move sit at that end of a virtual move, so the position of
    # the object in a single frame has the same distribution for every class.
    direction = _DIRECTIONS[name] if name in _DIRECTIONS else _DIRECTION_LIST[int(rng.integers(len(_DIRECTION_LIST)))]
    end = int(rng.integers(2))
    ux, uy = rng.uniform(), rng.uniform()  # placement inside the free range

    ox = np.zeros(T)  # offsets from the start position
    oy = np.zeros(T)
    theta = np.full(T, theta0)
    scale = np.full(T, small * factor**ladder)
    osc = np.sin(2 * math.pi * p)  # one full period inside the window, 0 outside
    if name in _DIRECTIONS:  # the Move classes
        ox, oy = direction[0] * dist * p, direction[1] * dist * p
    else:
        ox, oy = ox + direction[0] * dist * end, oy + direction[1] * dist * end
    if name == "RotateCW":
        theta = theta0 + turn * p
    elif name == "RotateCCW":
        theta = theta0 - turn * p
    elif name == "Grow":
        scale = small * factor**p
    elif name == "Shrink":
        scale = small * factor ** (1.0 - p)
    elif name == "ShakeHorizontal":
        ox = ox + amp * osc
    elif name == "ShakeVertical":
        oy = oy + amp * osc
    elif name not in _DIRECTIONS:  # pragma: no cover
        raise AssertionError(name)
    # Place the start so that the object (radius = its largest scale) and the whole
    # virtual move stay inside the frame (centred when there is no room).
    reach = d["margin"] * float(scale.max())
    span_x = (min(0.0, direction[0] * dist, ox.min()), max(0.0, direction[0] * dist, ox.max()))
    span_y = (min(0.0, direction[1] * dist, oy.min()), max(0.0, direction[1] * dist, oy.max()))
    cx0 = _place(ux, reach - span_x[0], W - reach - span_x[1])
    cy0 = _place(uy, reach - span_y[0], H - reach - span_y[1])
    cx = cx0 + ox
    cy = cy0 + oy
    cx = np.mod(cx, W)
    cy = np.mod(cy, H)

    # distractor: a small dot drifting through every frame, class-independent
    d_angle = rng.uniform(0, 2 * math.pi)
    d_speed = m * rng.uniform(*d["distractor_speed"])  # px per frame
    d_r = m * rng.uniform(*d["distractor_radius"])
    d_vx, d_vy = d_speed * math.cos(d_angle) * (T - 1), d_speed * math.sin(d_angle) * (T - 1)
    d_x0 = _place(rng.uniform(), d_r - min(0.0, d_vx), W - d_r - max(0.0, d_vx))
    d_y0 = _place(rng.uniform(), d_r - min(0.0, d_vy), H - d_r - max(0.0, d_vy))
    d_colour = _bright_colour(rng)
    temporal = rng.normal(0.0, 1.0, size=(T, H, W, 3)) * d["noise_std"]

    # Render each distinct object state once (the object is static outside the window).
    states = np.stack([cx, cy, theta, scale], axis=1)
    uniq, inverse = np.unique(states, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    cov, dark = _coverage(shape, uniq[:, 0], uniq[:, 1], uniq[:, 2], uniq[:, 3], H, W)
    cov, dark = cov[inverse][..., None], dark[inverse][..., None]
    # two-tone object: colour, and colour * shade on the pattern
    frames = bg[None] * (1.0 - cov) + colour * (cov - dark) + colour * shade * dark
    if distractor and d["distractor"]:
        dx = np.mod(d_x0 + d_speed * math.cos(d_angle) * t, W)
        dy = np.mod(d_y0 + d_speed * math.sin(d_angle) * t, H)
        dcov = _disc_coverage(dx, dy, d_r, H, W)[..., None]
        frames = frames * (1.0 - dcov) + d_colour[None, None, None, :] * dcov
    if noise:
        frames = frames + temporal
    video = np.clip(np.rint(frames), 0, 255).astype(np.uint8)
    info = {
        "class": cls,
        "class_name": name,
        "window_start": start,
        "window_length": length,
        "shape": shape,
        "cx": cx,
        "cy": cy,
        "theta": theta,
        "scale": scale,
    }
    return video, info


def render_video(cls: int, rng: np.random.Generator, cfg: SyntheticCfg) -> np.ndarray:
    """Render one video of class ``cls``: uint8 (T, H, W, 3), deterministic in ``rng``."""
    return render_video_with_info(cls, rng, cfg)[0]


def video_rng(seed: int, split: str, cls: int, idx: int) -> np.random.Generator:
    """The generator for video ``idx`` of class ``cls`` in ``split`` ('train'/'test')."""
    return numpy_rng(seed, "synthetic", split, cls, idx)


def generate_arrays(cfg: SyntheticCfg, seed: int, split: str) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """In-memory version of one split: (N, T, H, W, 3) uint8, labels, infos.

    Same frames as the files :func:`generate_synthetic` writes (before encoding).
    """
    per = cfg.train_per_class if split == "train" else cfg.test_per_class
    videos, labels, infos = [], [], []
    for cls in range(cfg.num_classes):
        for idx in range(per):
            v, info = render_video_with_info(cls, video_rng(seed, split, cls, idx), cfg)
            videos.append(v)
            labels.append(cls)
            infos.append(info)
    return np.stack(videos), np.asarray(labels, dtype=np.int64), infos


# --------------------------------------------------------------------------- files
def video_name(cls_name: str, split: str, idx: int, ext: str = "avi") -> str:
    """UCF-style file name; the group separates train from test, cYY is the clip."""
    groups = TRAIN_GROUPS if split == "train" else TEST_GROUPS
    g = groups[idx % len(groups)]
    c = idx // len(groups) + 1
    return f"v_{cls_name}_g{g:02d}_c{c:02d}.{ext}"


def write_video(path: str | Path, frames: np.ndarray, codec: str = "ffv1", fps: int = FPS) -> None:
    """Encode uint8 (T, H, W, 3) RGB frames to ``path`` atomically with PyAV.

    ``ffv1``: lossless, stored as planar RGB (``gbrp``), so decoding back to RGB is
    exact. ``h264``: libx264, yuv420p (needs even sizes), crf 18, lossy.
    """
    import av

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    T, H, W, _ = frames.shape
    if codec == "h264" and (H % 2 or W % 2):
        raise ValueError(f"h264 with yuv420p needs even frame sizes, got {H}x{W}")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as container:
            if codec == "ffv1":
                stream = container.add_stream("ffv1", rate=fps)
                stream.pix_fmt = "bgr0"
            elif codec == "h264":
                stream = container.add_stream("libx264", rate=fps)
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "18", "preset": "medium"}
            else:
                raise ValueError(f"unknown codec {codec!r}")
            stream.width, stream.height = W, H
            stream.codec_context.thread_count = 1  # tiny frames: threads only cost time
            for frame in frames:
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                for packet in stream.encode(vf):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _iter_jobs(cfg: SyntheticCfg) -> Iterator[tuple[str, int, int]]:
    for split, per in (("train", cfg.train_per_class), ("test", cfg.test_per_class)):
        for cls in range(cfg.num_classes):
            for idx in range(per):
                yield split, cls, idx


def _make_one(args: tuple[SyntheticCfg, int, str, int, int, str]) -> dict[str, Any]:
    cfg, seed, split, cls, idx, videos_dir = args
    name = CLASS_NAMES[cls]
    rel = f"{name}/{video_name(name, split, idx)}"
    frames, info = render_video_with_info(cls, video_rng(seed, split, cls, idx), cfg)
    write_video(Path(videos_dir) / rel, frames, cfg.codec)
    return {
        "video": rel,
        "split": split,
        "label": cls,
        "class_name": name,
        "index": idx,
        "window_start": info["window_start"],
        "window_length": info["window_length"],
        "shape": info["shape"],
    }


def generate_synthetic(
    cfg: SyntheticCfg, seed: int, raw_dir: str | Path, progress: bool = True, workers: int = 1
) -> dict[str, Any]:
    """Write the dataset under ``raw_dir`` in the UCF-101 layout; return the manifest.

    ``raw_dir/manifest.json`` is removed first and written last (atomically), so its
    presence means a complete dataset. Output is identical for any ``workers``.
    """
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = raw_dir / "manifest.json"
    manifest_path.unlink(missing_ok=True)
    videos_dir = raw_dir / "videos"
    names = class_names(cfg.num_classes)
    jobs = [(cfg, seed, s, c, i, str(videos_dir)) for s, c, i in _iter_jobs(cfg)]

    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="synthetic videos", unit="video", disable=not progress or bars_off())
    rows: list[dict[str, Any]] = []
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for row in pool.imap(_make_one, jobs, chunksize=16):
                rows.append(row)
                bar.update()
    else:
        for job in jobs:
            rows.append(_make_one(job))
            bar.update()
    bar.close()

    splits_dir = raw_dir / "splits"
    write_text(splits_dir / "classInd.txt", "".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    train = "".join(f"{r['video']} {r['label'] + 1}\n" for r in rows if r["split"] == "train")
    test = "".join(f"{r['video']}\n" for r in rows if r["split"] == "test")
    for k in (1, 2, 3):  # one split, repeated so that split 1-3 all parse
        write_text(splits_dir / f"trainlist0{k}.txt", train)
        write_text(splits_dir / f"testlist0{k}.txt", test)

    fields = ["video", "split", "label", "class_name", "index", "window_start", "window_length", "shape"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(raw_dir / "windows.csv", buf.getvalue())

    manifest = {
        "dataset": "synthetic",
        "format_version": FORMAT_VERSION,
        "seed": int(seed),
        "config": cfg.model_dump(mode="json"),
        "classes": names,
        "num_classes": cfg.num_classes,
        "counts": {
            "train": sum(r["split"] == "train" for r in rows),
            "test": sum(r["split"] == "test" for r in rows),
            "total": len(rows),
        },
        "frames": cfg.frames,
        "height": cfg.height,
        "width": cfg.width,
        "fps": FPS,
        "codec": cfg.codec,
        "videos_dir": "videos",
        "splits_dir": "splits",
        "splits_note": "splits 1, 2 and 3 are the same split (train groups g08-g25, test g01-g07)",
        "windows": "windows.csv",
    }
    write_json(manifest_path, manifest)
    return manifest
