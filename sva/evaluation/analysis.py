"""Why did an SVA episode succeed or fail? Relate its frame mask to where the class
actually lives in the video.

The synthetic benchmark knows, for every video, the window of frames that carries its
motion (``data/raw/<dataset>/windows.csv``: ``window_start``, ``window_length`` in
snippet frames). :func:`episode_coverage` lists every attack episode of a set of
records with how many of those frames its mask hit; :func:`coverage_summary` gives
the success rate of episodes by that count. ``sva window-coverage`` prints both
summaries (see docs/results.md for what they showed).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd


def load_windows(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{video id: (window_start, window_length)}`` from a synthetic ``windows.csv``.

    The video id is the file stem (``MoveUp/v_MoveUp_g01_c03.avi`` → ``v_MoveUp_g01_c03``),
    as in the attack sets. A file without the window columns is a clear error.
    """
    path = Path(path)
    table = pd.read_csv(path)
    missing = {"video", "window_start", "window_length"} - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; is this a synthetic windows.csv?")
    return {Path(v).stem: (int(s), int(n))
            for v, s, n in zip(table["video"], table["window_start"], table["window_length"])}


def episode_coverage(records: Iterable[dict], windows: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """One row per episode: victim, method, video_id, epoch, episode, frames (count),
    hits (masked frames inside the class window), window (its length), success, queries.

    Records whose video has no window are an error (wrong ``windows.csv``).
    """
    rows = []
    for r in records:
        try:
            start, length = windows[r["video_id"]]
        except KeyError:
            raise KeyError(f"video {r['video_id']!r} has no window in the given windows.csv") from None
        window = set(range(start, start + length))
        for e in r["episodes"]:
            frames = set(e["frames"])
            rows.append({"victim": r["victim"], "method": r["method"], "video_id": r["video_id"],
                         "epoch": e["epoch"], "episode": e["episode"], "frames": len(frames),
                         "hits": len(frames & window), "window": length, "success": bool(e["success"]),
                         "queries": e["queries"]})
    return pd.DataFrame(rows)


def coverage_summary(episodes: pd.DataFrame) -> pd.DataFrame:
    """Success rate of episodes by (victim, method, hits): episodes, successes,
    success (%), mean frames in the mask, mean queries."""
    g = episodes.groupby(["victim", "method", "hits"])
    out = pd.DataFrame({"episodes": g.size(), "successes": g["success"].sum(),
                        "frames": g["frames"].mean().round(1), "queries": g["queries"].mean().round(0)})
    out["success (%)"] = (100 * out["successes"] / out["episodes"]).round(1)
    return out.reset_index()
