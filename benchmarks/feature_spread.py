"""How much the agent's per-frame features tell frames apart, raw and centred
(``docs/features.md``, "Centring"), on a finished run's features.

    .venv/bin/python benchmarks/feature_spread.py [--run .] [--dataset synthetic] [--masks 10]

Prints, for the raw and the train-mean-centred features: the mean cosine between two
frames before the motion window (same content up to noise), between the first and last
frame (the object moved in between), and between first frames of different videos;
R_div (Eq. 6-7) and R_rep (Eq. 5) of random half masks over every ``--every``-th
snippet (mean, 5th and 95th percentiles). The motion windows come from the synthetic
dataset's ``windows.csv``; on a real dataset only the R_div / R_rep lines are printed.
A run whose features were written centred (``meta.json`` ``center_mean``) is
un-centred first, so both readings come from the same file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sva.attacks.rl.rewards import diversity, representativeness


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=".", help="folder of a finished run (data/features, data/snippets)")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--masks", type=int, default=10, help="random half masks per snippet")
    ap.add_argument("--every", type=int, default=7, help="use every n-th snippet")
    args = ap.parse_args()
    run = Path(args.run)
    feats = np.load(run / "data" / "features" / args.dataset / "features.npy")
    meta = json.loads((run / "data" / "features" / args.dataset / "meta.json").read_text())
    index = pd.read_csv(run / "data" / "snippets" / args.dataset / "index.csv")
    if meta.get("center_mean") is not None:
        feats = feats + np.asarray(meta["center_mean"], dtype=np.float32)
    train = index["split"].to_numpy() == "train"
    mean = feats[train].reshape(-1, feats.shape[-1]).mean(0)
    print(f"{args.run}: features {feats.shape}, weights {meta['weights']}, written as {meta.get('center', 'none')}")
    windows = run / "data" / "raw" / args.dataset / "windows.csv"
    win = pd.read_csv(windows).set_index("video") if windows.is_file() else None
    rows = range(0, len(feats), args.every)
    for name, f in (("raw", feats), ("centred", feats - mean)):
        if win is not None:
            same, moved, other = [], [], []
            for i in rows:
                s, n = (int(v) for v in win.loc[index["path"][i], ["window_start", "window_length"]])
                if s >= 2 and s + n < feats.shape[1]:
                    same.append(_cos(f[i, 0], f[i, 1]))
                    moved.append(_cos(f[i, 0], f[i, -1]))
                    other.append(_cos(f[i, 0], f[(i + 50) % len(f), 0]))
            print(f"{name:>8}: cosine static/static {np.mean(same):.4f}, first/last (moved) {np.mean(moved):.4f}, "
                  f"other video {np.mean(other):.4f} ({len(same)} snippets)")
        g = torch.Generator().manual_seed(0)
        div, rep = [], []
        for i in rows:
            v = torch.from_numpy(np.ascontiguousarray(f[i]))
            for _ in range(args.masks):
                m = torch.rand(f.shape[1], generator=g) < 0.5
                div.append(diversity(v, m))
                rep.append(representativeness(v, m))
        for label, x in (("R_div", np.array(div)), ("R_rep", np.array(rep))):
            p5, p95 = np.percentile(x, [5, 95])
            print(f"{'':>10}{label} of random half masks: mean {x.mean():.4f}, 5th-95th percentile "
                  f"{p5:.4f}-{p95:.4f} ({len(x)} masks)")


if __name__ == "__main__":
    main()
