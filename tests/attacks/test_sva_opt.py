"""SVA_opt (``sva/attacks/sva_opt.py``, Fig. 8): the Heuristic-attack with SVA's key
frames in place of its own selection — the frames it keeps, the fallback when they
cannot carry the start, and that everything before the frame step is H_opt's."""

from __future__ import annotations

import torch

from sva.attacks import AttackContext, build_attack
from sva.attacks.base import AttackTask
from sva.attacks.heuristic import HeuristicSettings
from sva.attacks.settings import UntargetedCfg
from sva.attacks.sva_opt import sva_key_frames
from toys import CountingVictim as Recorder
from toys import SpyOracle, frame_zero_case, near_boundary_linear_case


def _run(method: str, case, frames, budget: int = 3000, seed: int = 0):
    model, x, label, target, candidates = case
    attack = build_attack(method, AttackContext("untargeted", 0.05, UntargetedCfg(budget=budget)),
                          HeuristicSettings())
    oracle = SpyOracle(Recorder(model), budget, batch_size=64, mode="label")
    hints = {"frames": frames} if method == "sva_opt" else {}
    task = AttackTask(x, label, target, None, candidates, seed=seed, seed_keys=("toy", "h", "untargeted"),
                      hints=hints)
    return attack(oracle, task), oracle


def test_sva_key_frames_from_a_record():
    assert sva_key_frames({"success": True, "selected_frames": [1, 4]}) == [1, 4]
    # failed: the agent's latest choice, its last episode's frames
    assert sva_key_frames({"success": False, "episodes": [{"frames": [0]}, {"frames": [2, 3]}]}) == [2, 3]
    assert sva_key_frames({"success": False, "episodes": []}) is None


def test_keeps_svas_frames_and_perturbs_only_them():
    case = frame_zero_case("untargeted")
    out, oracle = _run("sva_opt", case, [0, 3])
    x = case[1]
    assert out.extra["sva_opt"] == {"sva_frames": [0, 3], "frames": "sva"}
    assert out.success and out.mask.nonzero().flatten().tolist() == [0, 3]
    changed = (out.x_adv != x).flatten(1).any(1).nonzero().flatten().tolist()
    assert set(changed) <= {0, 3} and 0 in changed
    assert oracle.used == sum(out.queries_by_phase.values()) <= 3000
    assert "frames" in out.queries_by_phase and "importance" not in out.queries_by_phase


def test_frames_that_cannot_carry_the_start_fall_back_to_the_whole_video():
    # only frame 0 decides: SVA's frames {2, 5} can never flip the label
    out, _ = _run("sva_opt", frame_zero_case("untargeted"), [2, 5])
    assert out.extra["sva_opt"]["frames"] == "whole_video"
    assert out.success and bool(out.mask.all())


def test_everything_before_the_frame_step_is_the_heuristic_attacks():
    case = near_boundary_linear_case("untargeted")
    h, h_oracle = _run("heuristic", case, None)
    s, s_oracle = _run("sva_opt", case, [1, 2, 6])
    before = {"init", "regions"}
    h_first = [(phase, v) for phase, v, _ in h_oracle.calls if phase in before]
    s_first = [(phase, v) for phase, v, _ in s_oracle.calls if phase in before]
    assert len(h_first) == len(s_first) > 0
    for (pa, a), (pb, b) in zip(h_first, s_first):
        assert pa == pb and torch.equal(a, b)
    assert {k: h.queries_by_phase[k] for k in before & set(h.queries_by_phase)} == \
        {k: s.queries_by_phase[k] for k in before & set(s.queries_by_phase)}
