
import pytest
import torch

from sva.attacks.base import AttackTask
from sva.attacks.dense import DenseAttack
from sva.attacks.rl.algorithm import SVA, SVACfg
from sva.attacks.settings import AttackContext, TargetedCfg, UntargetedCfg
from sva.evaluation.metrics import mean_absolute_perturbation, sparsity
from sva.blackbox.oracle import Oracle
from toys import FrameZeroVictim, LinearVictim, frame_zero_video



def _sva(budget=30000, cap=None, mode="untargeted", mode_cfg=None, **settings):
    """SVA in ``mode`` with a video budget and an episode cap (None: the budget's rest)."""
    mode_cfg = mode_cfg or (UntargetedCfg if mode == "untargeted" else TargetedCfg)(budget=budget)
    return SVA(AttackContext(mode, 0.05, mode_cfg), SVACfg(**settings, **{mode: {"episode_queries": cap}}))


def _task(x, label, feats=None, seed=0, **kw):
    return AttackTask(x, label, features=feats, seed=seed, seed_keys=("test",), **kw)


def _features(t=8, seed=0):
    return torch.randn(t, 512, generator=torch.Generator().manual_seed(seed))


def test_sva_accounts_every_query_and_returns_the_smallest_map():
    model = LinearVictim(seed=2)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(model(x[None]).argmax())
    oracle = Oracle(model, 60000)
    out = _sva(60000, 5000, epochs=3, episodes=4)(oracle, _task(x, label, _features()))
    assert out.queries == oracle.used == 1 + sum(e["queries"] for e in out.episodes)
    assert out.queries_by_phase["init"] == 1
    assert len(out.episodes) == 12 and len(out.epochs) == 3
    assert out.success
    wins = [e for e in out.episodes if e["success"]]
    assert out.episodes[out.best_episode]["map"] == min(e["map"] for e in wins)
    assert out.best_episode_queries == out.episodes[out.best_episode]["queries"]
    assert abs(mean_absolute_perturbation(out.x_adv, x) - out.episodes[out.best_episode]["map"]) < 1e-9
    # the returned video is exactly as sparse as its mask
    assert sparsity(out.x_adv, x) == 1 - out.mask.sum().item() / 8
    assert int(model(out.x_adv[None]).argmax()) != label


def test_sva_stops_at_the_video_budget():
    model = FrameZeroVictim()
    x = frame_zero_video(brightness=0.9)  # far from the boundary: no episode can succeed
    oracle = Oracle(model, 3000)
    out = _sva(3000, epochs=50, episodes=5)(oracle, _task(x, 0, _features()))
    assert not out.success and out.best_episode is None
    assert oracle.used <= 3000 and out.queries == oracle.used
    assert torch.equal(out.x_adv, x)


def test_attack_reward_trains_the_agent_towards_the_decisive_frame():
    """Only masks holding frame 0 can succeed: R_attack alone must raise p_0.

    (The authors' public code detaches this reward, so it never trains the agent.)"""
    model = FrameZeroVictim()
    x = frame_zero_video(brightness=0.505)
    feats = _features()
    sva = _sva(10**6, 600, epochs=12, episodes=5, lr=3e-2, rewards="attack")
    assert sva.q_full == 600 and sva.q_half == 300
    from sva.attacks.rl.agent import FrameAgent

    task = _task(x, 0, feats, seed=1)
    p_before = FrameAgent(512, 128, seed=task.derive_seed("agent") % 2**31)(feats)[0].item()
    oracle = Oracle(model, 10**6)
    out = sva(oracle, task)
    with_0 = [e["r_attack"] for e in out.episodes if 0 in e["frames"]]
    without_0 = [e["r_attack"] for e in out.episodes if 0 not in e["frames"]]
    assert min(with_0) > 0 and max(without_0) == -1.0
    late = out.episodes[-10:]
    early = out.episodes[:10]
    assert sum(0 in e["frames"] for e in late) > sum(0 in e["frames"] for e in early)
    assert out.epochs[-1]["p_mean"] != pytest.approx(out.epochs[0]["p_mean"])
    assert p_before < 0.9


def test_sva_is_deterministic():
    model = LinearVictim(seed=2)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    label = int(model(x[None]).argmax())
    runs = []
    for _ in range(2):
        out = _sva(30000, 1500, epochs=2, episodes=3)(Oracle(model, 30000), _task(x, label, _features(), seed=3))
        runs.append(out)
    assert runs[0].episodes == runs[1].episodes
    assert torch.equal(runs[0].x_adv, runs[1].x_adv)


def test_dense_baseline_perturbs_every_frame():
    model = LinearVictim(seed=1)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(model(x[None]).argmax())
    oracle = Oracle(model, 30000)
    out = DenseAttack(AttackContext("untargeted", 0.05, UntargetedCfg()))(oracle, _task(x, label))
    assert out.success and out.mask.all()
    assert sparsity(out.x_adv, x) == 0.0
    assert out.queries == oracle.used == out.best_episode_queries + 1


def test_targeted_sva_uses_candidates_and_counts_init_queries():
    model = LinearVictim(seed=3)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    label = int(model(x[None]).argmax())
    target = (label + 1) % 4
    cands = torch.rand(64, 8, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    cands = cands[model(cands).argmax(1) == target][:5]
    oracle = Oracle(model, 60000)
    sva = _sva(cap=20000, mode="targeted", mode_cfg=TargetedCfg(sigma=1e-3), epochs=1, episodes=2)
    out = sva(oracle, _task(x, label, _features(), target=target, candidates=cands))
    assert oracle.used_by_phase["init"] >= 1 + 2  # first look + at least one splice per episode
    assert out.queries == oracle.used
    assert out.success
    assert int(model(out.x_adv[None]).argmax()) == target
    assert float((out.x_adv - x).abs().max()) <= 0.05 + 1e-7
    for e in out.episodes:  # the log says where ε-shrinking stopped and with which steps
        assert e["success"] == (e["eps_final"] <= 0.05 + 1e-12)
        assert "alpha_final" in e or e.get("init") == "failed"


def test_the_perturber_can_use_zo_signsgd():
    """attacks.<mode>.estimator selects the gradient estimator of the FGSM step: with
    ZO-SignSGD a step costs population + 1 probes and its check."""
    model = LinearVictim(seed=1)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(model(x[None]).argmax())
    oracle = Oracle(model, 30000)
    ctx = AttackContext("untargeted", 0.05, UntargetedCfg(estimator="zo_signsgd", population=20, sigma=1e-3))
    out = DenseAttack(ctx)(oracle, _task(x, label))
    assert out.success and out.queries == oracle.used == 1 + out.best_episode_queries
    assert out.best_episode_queries % (20 + 1 + 1) == 0  # whole steps of 21 probes + 1 check
    assert oracle.used_by_phase["nes"] == out.episodes[0]["iterations"] * 21


@pytest.mark.parametrize("estimator", ["nes", "zo_signsgd", "sign_opt"])
def test_sva_runs_with_every_estimator_of_fig9(estimator):
    """§4.5.4 / Fig. 9: SVA with NES, ZO-SignSGD or Sign-OPT as the FGSM step's
    estimator, same budget. Every query is counted, an episode is whole steps of
    ``queries_per_estimate`` probes + 1 check, and the returned video is as sparse as
    its mask."""
    model = LinearVictim(seed=2)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(model(x[None]).argmax())
    oracle = Oracle(model, 20000)
    cfg = UntargetedCfg(budget=20000, estimator=estimator, population=20, sigma=1e-3)
    sva = SVA(AttackContext("untargeted", 0.05, cfg), SVACfg(epochs=2, episodes=3, untargeted={"episode_queries": 3000}))
    out = sva(oracle, _task(x, label, _features()))
    per_step = 20 + (0 if estimator == "nes" else 1) + 1
    assert out.queries == oracle.used == 1 + sum(e["queries"] for e in out.episodes)
    assert all(e["queries"] == e["iterations"] * per_step for e in out.episodes)
    assert oracle.used_by_phase["nes"] == sum(e["iterations"] for e in out.episodes) * (per_step - 1)
    assert out.success and int(model(out.x_adv[None]).argmax()) != label
    assert float((out.x_adv - x).abs().max()) <= 0.05 + 1e-7
    assert sparsity(out.x_adv, x) == 1 - out.mask.sum().item() / 8
