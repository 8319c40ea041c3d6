"""``benchmarks/feature_spread.py`` reads a run's features (centred or not) and reports
how much they tell frames apart, raw and centred."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _fake_run(root: Path, centred: bool) -> None:
    """Features with a large common component, frames 0..7 alike, 8..15 moved."""
    rng = np.random.default_rng(0)
    n, t, d = 40, 16, 512
    content = rng.normal(size=(n, 2, d)).astype(np.float32)
    f = 50.0 + content[:, [0] * 8 + [1] * 8] + 0.01 * rng.normal(size=(n, t, d)).astype(np.float32)
    split = ["train"] * 30 + ["test"] * 10
    mean = f[:30].reshape(-1, d).mean(0)
    feat_dir = root / "data" / "features" / "synthetic"
    feat_dir.mkdir(parents=True)
    np.save(feat_dir / "features.npy", (f - mean) if centred else f)
    (feat_dir / "meta.json").write_text(json.dumps({
        "weights": "none", "center": "train_mean" if centred else "none",
        "center_mean": [float(v) for v in mean] if centred else None}))
    (root / "data" / "snippets" / "synthetic").mkdir(parents=True)
    paths = [f"C/v{i}.avi" for i in range(n)]
    pd.DataFrame({"path": paths, "split": split}).to_csv(root / "data" / "snippets" / "synthetic" / "index.csv")
    (root / "data" / "raw" / "synthetic").mkdir(parents=True)
    pd.DataFrame({"video": paths, "window_start": 7, "window_length": 2}).to_csv(
        root / "data" / "raw" / "synthetic" / "windows.csv", index=False)


def test_script_reports_raw_and_centred(tmp_path):
    _fake_run(tmp_path, centred=True)  # written centred: the script un-centres it for the raw reading
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "feature_spread.py"), "--run", str(tmp_path), "--every", "1",
         "--masks", "4"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    raw = next(line for line in lines if line.strip().startswith("raw:"))
    cen = next(line for line in lines if line.strip().startswith("centred:"))
    moved = [float(x.split("first/last (moved) ")[1].split(",")[0]) for x in (raw, cen)]
    assert moved[0] > 0.99 and moved[1] < 0.5  # the common component hides the move until centred
    divs = [float(x.split("mean ")[1].split(",")[0]) for x in lines if "R_div" in x]
    assert len(divs) == 2 and divs[1] > 10 * divs[0]
