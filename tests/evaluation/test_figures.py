"""The reward-curve figure (Figs. 10 and 11) and its trailing mean."""

from __future__ import annotations

import matplotlib.image as mpimg
import pandas as pd

from sva.evaluation.figures import moving_mean, reward_curves_figure


def test_moving_mean_is_trailing():
    assert moving_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    assert moving_mean([2.0, 4.0], 10) == [2.0, 3.0]
    assert moving_mean([], 3) == []


def _records():
    rows = [{"dataset": "d", "victim": "c3d", "method": "sva", "video_id": f"v{i}",
             "reward_trace": [0.1 * e + i for e in range(12)]} for i in range(4)]
    rows.append({"dataset": "d", "victim": "c3d", "method": "dense", "video_id": "v0", "reward_trace": []})
    return pd.DataFrame(rows)


def test_reward_curves_figure_has_a_panel_per_video_and_the_mean(tmp_path):
    path = reward_curves_figure(_records(), tmp_path / "r.png", "rewards", videos=3, labels={"sva": "SVA"})
    img = mpimg.imread(path)
    assert img.shape[1] > 3 * img.shape[0]  # four panels side by side: three videos and the mean
    none = reward_curves_figure(_records()[lambda r: r["method"] == "dense"], tmp_path / "none.png", "x")
    assert none.is_file()
