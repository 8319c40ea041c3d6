"""Figures: the per-video strip of the paper's Fig. 4/5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from sva.evaluation.figures import save_figure
from sva.evaluation.metrics import perturbed_frames


def _hwc(video: Tensor) -> np.ndarray:
    return video.detach().cpu().permute(0, 2, 3, 1).clamp(0, 1).numpy()


def perturbation_strip(x: Tensor, x_adv: Tensor, path: str | Path, title: str = "", max_frames: int = 16) -> Path:
    """PNG with three rows: clean frames, adversarial frames, perturbation.

    ``x``, ``x_adv``: float ``(T, 3, H, W)`` in [0, 1]. The perturbation row shows
    ``0.5 + (x_adv − x)`` amplified so its largest value reaches the full range (the
    factor is in the row label). Perturbed frames get a red frame and a marker.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = min(x.shape[0], max_frames)
    delta = (x_adv - x)[:t]
    peak = delta.abs().max().item()
    amp = 0.5 / peak if peak > 0 else 1.0
    name = f"perturbation ×{amp:.0f}" if peak > 0 else "perturbation (none)"
    rows = [("clean", _hwc(x[:t])), ("adversarial", _hwc(x_adv[:t])),
            (name, _hwc((0.5 + amp * delta).clamp(0, 1)))]
    hit = perturbed_frames(x_adv[:t], x[:t]).tolist()
    fig, axes = plt.subplots(3, t, figsize=(1.1 * t, 3.6), squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c in range(t):
            ax = axes[r][c]
            ax.imshow(frames[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            color = "red" if hit[c] else "0.7"
            for side in ax.spines.values():
                side.set_edgecolor(color)
                side.set_linewidth(2.5 if hit[c] else 0.5)
            if r == 0:
                ax.set_title(f"{c}{'*' if hit[c] else ''}", fontsize=7, color=color)
        axes[r][0].set_ylabel(name, fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


def example_strips(records, path: str | Path, per_group: int = 1) -> Path:
    """One PNG stacking example strips: per (dataset, victim, method), the first
    ``per_group`` successful videos by id (the first videos when none succeeded).

    ``records``: a DataFrame of per-video records (:func:`sva.evaluation.aggregate.load_records`)
    whose ``source`` is a shard file and ``strip_path`` the strip's name in the shard's
    ``videos/`` folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = []
    if len(records):
        for _, g in records.sort_values("video_id").groupby(["dataset", "victim", "method"], sort=True):
            ok = g[g["success"]]
            for _, r in (ok if len(ok) else g).head(per_group).iterrows():
                picks.append(Path(r["source"]).parent / "videos" / r["strip_path"])
    picks = [p for p in picks if p.is_file()]
    fig, axes = plt.subplots(max(len(picks), 1), 1, figsize=(12, 3.2 * max(len(picks), 1)), squeeze=False)
    for ax, strip in zip(axes[:, 0], picks):
        ax.imshow(plt.imread(strip))
    for ax in axes[:, 0]:
        ax.axis("off")
    if not picks:
        axes[0][0].text(0.5, 0.5, "no attack records", ha="center", va="center")
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


__all__ = ["example_strips", "perturbation_strip"]
