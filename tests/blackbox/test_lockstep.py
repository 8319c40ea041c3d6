"""The lockstep driver: N episodes side by side give each episode exactly what it would
get alone, in fewer and fuller oracle batches, and never overspend."""

import pytest
import torch
from torch import nn

from sva.attacks.fgsm import SparseFGSM, TargetedSchedule, TargetedSparseFGSM
from sva.attacks.targeted_start import targeted_start_steps
from sva.blackbox.estimators import NES
from sva.blackbox.lockstep import Ask, run_alone, run_lockstep
from sva.blackbox.oracle import BudgetExhausted, Oracle
from toys import FrameZeroVictim, LinearVictim, frame_zero_video


class CallLog(nn.Module):
    """Wraps a victim and records the batch size of every forward pass."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.sizes = inner, []

    def forward(self, videos):
        self.sizes.append(int(videos.shape[0]))
        return self.inner(videos)


def _masks():
    masks = []
    for frames in ([0, 3], [1, 2], [0], [0, 1, 2, 3, 4, 5, 6, 7], [5]):
        m = torch.zeros(8, dtype=torch.bool)
        m[frames] = True
        masks.append(m)
    return masks


def _episodes(attack, x, masks, cap, seed0=10):
    return [attack.episode(x, 0, m, torch.Generator().manual_seed(seed0 + i), cap) for i, m in enumerate(masks)]


def test_side_by_side_equals_one_at_a_time():
    x = frame_zero_video(brightness=0.51)
    attack = SparseFGSM(NES(48, 1e-3), eps=0.05, alpha=1 / 255)
    masks = _masks()
    alone = [run_alone(Oracle(FrameZeroVictim(), 10**6), ep) for ep in _episodes(attack, x, masks, 1500)]
    oracle = Oracle(FrameZeroVictim(), 10**6)
    together = run_lockstep(oracle, _episodes(attack, x, masks, 1500))
    assert [r.success for r in alone] == [r.success for r in together] == [True, False, True, True, False]
    for a, b in zip(alone, together):
        assert torch.equal(a.x_adv, b.x_adv)
        assert (a.queries, a.iterations, a.label) == (b.queries, b.iterations, b.label)
    assert oracle.used == sum(r.queries for r in together)
    assert oracle.used_by_phase["check"] == sum(r.iterations for r in together)


def test_checks_of_all_episodes_share_one_forward_pass():
    victim = CallLog(LinearVictim())
    x = 0.3 + 0.4 * torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(victim.inner(x[None]).argmax())
    oracle = Oracle(victim, 10**6, batch_size=16)
    attack = SparseFGSM(NES(48, 1e-3), eps=1e-4, alpha=1e-5)  # too weak to succeed: all run to the cap
    results = run_lockstep(oracle, [attack.episode(x, label, m, torch.Generator().manual_seed(i), 490)
                                    for i, m in enumerate(_masks())])
    assert all(not r.success and r.queries == 490 for r in results)
    # 10 steps: per step 5 x 48 probes in 15 full batches and one batch of the 5 checks
    assert victim.sizes == ([16] * 15 + [5]) * 10
    assert oracle.used == 5 * 490


def test_budget_goes_to_lower_index_episodes_first_and_is_never_exceeded():
    victim = LinearVictim()
    x = 0.3 + 0.4 * torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    label = int(victim(x[None]).argmax())
    oracle = Oracle(victim, 49 * 7 + 10)
    attack = SparseFGSM(NES(48, 1e-3), eps=1e-4, alpha=1e-5)
    results = run_lockstep(oracle, [attack.episode(x, label, m, torch.Generator().manual_seed(i), 10**6)
                                    for i, m in enumerate(_masks()[:3])])
    # rounds of 3 steps: 2 rounds use 6 steps, the 7th step goes to episode 0
    assert [r.queries for r in results] == [3 * 49, 2 * 49, 2 * 49]
    assert oracle.used == 7 * 49 <= oracle.budget


def test_targeted_episodes_side_by_side_equal_alone():
    model = LinearVictim(seed=3)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    target = (int(model(x[None]).argmax()) + 1) % 4
    cands = torch.rand(64, 8, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    cands = cands[model(cands).argmax(1) == target][:5]
    masks = [torch.ones(8, dtype=torch.bool) for _ in range(3)]
    masks[1][[1, 6]] = False
    masks[2][:] = False
    masks[2][4] = True  # one frame: the splice alone rarely reaches the target
    attack = TargetedSparseFGSM(NES(48, 1e-3), eps=0.05, schedule=TargetedSchedule(alpha=0.01, eps_decay=0.02))

    def episodes():
        def ep(m, i):
            start, spent = yield from targeted_start_steps(x, m, target, cands)
            if start is None:
                return None, spent
            res = yield from attack.episode(x, start, target, m, torch.Generator().manual_seed(i), 4000)
            return res, spent

        return [ep(m, i) for i, m in enumerate(masks)]

    alone = [run_alone(Oracle(model, 10**6), ep) for ep in episodes()]
    oracle = Oracle(model, 10**6)
    together = run_lockstep(oracle, episodes())
    assert [a[1] for a in alone] == [t[1] for t in together]
    for (a, _), (b, _) in zip(alone, together):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a.x_adv, b.x_adv) and (a.queries, a.success) == (b.queries, b.success)
    assert oracle.used == sum(s + (r.queries if r else 0) for r, s in together)
    assert [r is not None and r.success for r, _ in together][:2] == [True, True]


def test_protocol_errors_are_clear():
    oracle = Oracle(FrameZeroVictim(), 100)
    video = frame_zero_video()[None]

    def on_credit():
        yield Ask(video, "check")  # no reservation

    with pytest.raises(RuntimeError, match="beyond its reservation"):
        run_alone(oracle, on_credit())

    def not_an_ask():
        yield video

    with pytest.raises(TypeError, match="must yield Ask"):
        run_alone(oracle, not_an_ask())

    def keeps_going():
        try:
            yield Ask(video, "nes", reserve=1000)
        except BudgetExhausted:
            yield Ask(video, "nes", reserve=1)

    with pytest.raises(RuntimeError, match="must return"):
        run_alone(oracle, keeps_going())
    with pytest.raises(ValueError, match="smaller than the ask"):
        Ask(torch.zeros(3, 8, 3, 8, 8), "nes", reserve=2)
    assert oracle.used == 0
