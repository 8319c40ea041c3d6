"""Random frame selection (§4.5.3): SVA's frame count, random frames, best of the tries."""

from __future__ import annotations

import json

import pytest
import torch

from sva.attacks.base import AttackTask
from sva.attacks.random_selection import RandomSelection, RandomSelectionCfg, random_mask, sva_frame_count
from sva.attacks.settings import AttackContext, UntargetedCfg
from sva.blackbox.oracle import Oracle
from sva.evaluation.metrics import mean_absolute_perturbation
from toys import near_boundary_linear_case


def test_the_frame_count_comes_from_svas_record():
    assert sva_frame_count({"success": True, "selected_frames": [1, 4, 6]}) == 3
    failed = {"success": False, "selected_frames": [], "episodes": [{"frames": [0, 1]}, {"frames": [2, 3, 4, 5, 6]}]}
    assert sva_frame_count(failed) == 4  # mean of 2 and 5, rounded half to even
    assert sva_frame_count({"success": False, "selected_frames": [], "episodes": []}) == 1


def test_random_masks_have_k_distinct_frames_and_follow_the_seed():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    masks = [random_mask(16, 5, g1) for _ in range(20)]
    assert all(int(m.sum()) == 5 and m.dtype == torch.bool for m in masks)
    assert len({tuple(m.nonzero().flatten().tolist()) for m in masks}) > 1  # not the same mask each time
    assert all(torch.equal(m, random_mask(16, 5, g2)) for m in masks)
    assert int(random_mask(4, 9, g1).sum()) == 4 and int(random_mask(4, 0, g1).sum()) == 1


def _attack(scope="video", tries=5, budget=2000):
    ctx = AttackContext("untargeted", 0.05, UntargetedCfg(budget=budget), budget_scope=scope)
    return RandomSelection(ctx, RandomSelectionCfg(tries=tries))


def _problem():
    """A linear victim with the clean video 0.1 logits from its boundary."""
    model, x, label, _, _ = near_boundary_linear_case("untargeted", margin=0.1, seed=1)
    return model, x, label


def test_every_try_uses_svas_frame_count_and_q_counts_them_all():
    model, x, label = _problem()
    attack = _attack()
    oracle = Oracle(model, attack.oracle_budget())
    out = attack(oracle, AttackTask(x, label, seed=0, seed_keys=("v",), hints={"frames": 3}))
    assert len(out.episodes) == 5 and all(len(e["frames"]) == 3 for e in out.episodes)
    assert out.queries == oracle.used == 1 + sum(e["queries"] for e in out.episodes) <= 2000
    assert all(e["queries"] <= (2000 - 1) // 5 for e in out.episodes)  # an equal share each
    assert out.extra == {"frames_from_sva": 3, "tries": 5}
    wins = [e for e in out.episodes if e["success"]]
    assert out.success and out.episodes[out.best_episode]["map"] == min(e["map"] for e in wins)
    assert out.best_episode_queries == out.episodes[out.best_episode]["queries"]
    assert mean_absolute_perturbation(out.x_adv, x) == pytest.approx(out.episodes[out.best_episode]["map"])


def test_under_episode_scope_each_try_may_spend_the_whole_budget():
    attack = _attack("episode", tries=5, budget=300)
    assert attack.oracle_budget() == 5 * 300 + 1


def test_without_svas_frame_count_it_refuses():
    model, x, label = _problem()
    attack = _attack()
    with pytest.raises(ValueError, match="frame count of SVA's mask"):
        attack(Oracle(model, 100), AttackTask(x, label))


def test_the_pipeline_reads_svas_record_where_the_layout_keeps_it(tmp_path, repo):
    """random reads SVA's record of the same video: SVA is a main-run method of
    params.yaml, so its records are under results/attacks/, while random's own go under
    results/paper/attacks/ (sva/pipeline/layout.py)."""
    from sva.pipeline.attack_job import dependency_hints
    from sva.pipeline.config import load_config
    from sva.utils.errors import UserError

    cfg = load_config(repo / "params.yaml")
    sva = tmp_path / "attacks/untargeted/ds/c3d/sva/videos"
    sva.mkdir(parents=True)
    with pytest.raises(UserError, match=r"attacks/untargeted/ds/c3d/sva/videos/v1\.json: random needs sva's record "
                                        r"of video v1"):
        dependency_hints(cfg, "random", "untargeted", "ds", "c3d", tmp_path, "v1")
    (sva / "v1.json").write_text(json.dumps({"success": True, "selected_frames": [2, 9]}))
    assert dependency_hints(cfg, "random", "untargeted", "ds", "c3d", tmp_path, "v1") == {"frames": 2}
    assert dependency_hints(cfg, "sva", "untargeted", "ds", "c3d", tmp_path, "v1") == {}


def test_config_requires_sva_beside_random(repo):
    from sva.pipeline.config import ConfigError, load_config, validate_config

    data = load_config(repo / "params.yaml").model_dump(mode="json")
    data["attacks"]["methods"] = ["dense", "random"]
    with pytest.raises(ConfigError, match="'random' needs 'sva' too"):
        validate_config(data, "params.yaml")
