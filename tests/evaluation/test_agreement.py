"""A variant's sampled frames against SVA's (sva/evaluation/agreement.py)."""

from __future__ import annotations

from sva.evaluation.agreement import frame_agreement


def record(method: str, video: str, masks: list[list[int]], epochs: int = 2) -> dict:
    return {"mode": "untargeted", "dataset": "synthetic", "victim": "c3d", "method": method, "video_id": video,
            "episodes": [{"epoch": i // 5, "frames": m} for i, m in enumerate(masks)],
            "epochs": [{"epoch": e} for e in range(epochs)]}


def test_counts_the_episodes_and_videos_that_sampled_the_base_frames():
    base = [record("sva", "a", [[0, 1], [2], [3, 4]]), record("sva", "b", [[1], [5]]),
            record("sva", "only-base", [[0]])]
    arm = [record("sva_x", "a", [[0, 1], [2], [3, 4]]),  # identical throughout
           record("sva_x", "b", [[1], [6]], epochs=4),    # the second episode differs
           record("sva_x", "only-arm", [[0]])]
    found = frame_agreement(base, arm)
    assert found is not None
    assert (found.videos, found.episodes, found.same_episodes, found.same_videos) == (2, 5, 4, 1)
    assert found.updates == 2.0  # median of 1 and 3 updates before the last sampling
    assert (found.method, found.base, found.victim) == ("sva_x", "sva", "c3d")
    text = found.sentence()
    assert "`sva_x` sampled `sva`'s frames in 4 of 5 episodes" in text and "1 of 2 videos" in text
    assert "2 agent updates per video" in text


def test_an_arm_that_ran_fewer_episodes_is_not_the_same_video():
    base = [record("sva", "a", [[0], [1], [2]])]
    arm = [record("sva_x", "a", [[0], [1]], epochs=1)]
    found = frame_agreement(base, arm)
    assert (found.episodes, found.same_episodes, found.same_videos) == (2, 2, 0)
    assert found.updates == 0.0 and "0 agent updates" in found.sentence()


def test_nothing_to_compare():
    assert frame_agreement([], [record("sva_x", "a", [[0]])]) is None
    assert frame_agreement([record("sva", "a", [[0]])], [record("sva_x", "b", [[0]])]) is None
    no_episodes = {**record("sva", "a", []), "episodes": []}
    assert frame_agreement([no_episodes], [record("sva_x", "a", [[0]])]) is None


def test_cli_prints_one_sentence_per_arm(tmp_path, capsys):
    import json

    from sva.cli import main

    base, arm, other = tmp_path / "sva.json", tmp_path / "arm.json", tmp_path / "other.json"
    base.write_text(json.dumps([record("sva", "a", [[0, 1], [2]])]))
    arm.write_text(json.dumps([record("sva_x", "a", [[0, 1], [3]])]))
    other.write_text(json.dumps([record("sva_y", "b", [[0]])]))
    assert main(["frame-agreement", str(base), str(arm), str(other)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("untargeted, synthetic/c3d: `sva_x` sampled `sva`'s frames in 1 of 2 episodes")
    assert out[1] == f"{other}: no video or episode in common with {base}"
    assert main(["frame-agreement", str(tmp_path / "missing.json"), str(arm)]) == 2  # a user error, one line
    assert "missing.json" in capsys.readouterr().err
