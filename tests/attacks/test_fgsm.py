import torch

from sva.attacks.fgsm import SparseFGSM, TargetedSchedule, TargetedSparseFGSM
from sva.attacks.targeted_start import targeted_start
from sva.blackbox.estimators import NES
from sva.blackbox.oracle import Oracle
from toys import FrameZeroVictim, LinearVictim, frame_zero_video



def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_untargeted_succeeds_only_on_masked_frames_within_eps():
    model = FrameZeroVictim()
    x = frame_zero_video()
    oracle = Oracle(model, 5000)
    mask = torch.zeros(8, dtype=torch.bool)
    mask[[0, 3]] = True
    res = SparseFGSM(NES(48, 1e-3), eps=0.05, alpha=1 / 255)(oracle, x, 0, mask, _gen())
    assert res.success and res.label == 1
    assert torch.equal(res.x_adv[~mask], x[~mask])  # unmasked frames bit-identical
    assert float((res.x_adv - x).abs().max()) <= 0.05 + 1e-7
    assert res.queries == oracle.used == res.iterations * 49
    assert int(model(res.x_adv[None]).argmax()) == 1


def test_untargeted_fails_without_the_decisive_frame_and_respects_the_cap():
    model = FrameZeroVictim()
    x = frame_zero_video()
    oracle = Oracle(model, 30000)
    mask = torch.zeros(8, dtype=torch.bool)
    mask[[2, 5]] = True
    res = SparseFGSM(NES(48, 1e-3))(oracle, x, 0, mask, _gen(), max_queries=1000)
    assert not res.success
    assert res.queries <= 1000 and res.queries == oracle.used
    assert res.queries == (1000 // 49) * 49


def test_untargeted_never_outspends_a_small_budget():
    oracle = Oracle(FrameZeroVictim(), 100)
    res = SparseFGSM(NES(48, 1e-3))(oracle, frame_zero_video(brightness=0.6), 0, torch.ones(8, dtype=torch.bool),
                                    _gen())
    assert oracle.used <= 100 and res.queries == 98


def test_targeted_start_splices_masked_frames_and_counts_queries():
    model = FrameZeroVictim()
    x = frame_zero_video(brightness=0.6)  # class 0
    dark = frame_zero_video(brightness=0.2, seed=1)  # class 1
    bright = frame_zero_video(brightness=0.7, seed=2)  # class 0
    oracle = Oracle(model, 10)
    mask = torch.zeros(8, dtype=torch.bool)
    mask[[0, 1]] = True
    start = targeted_start(oracle, x, mask, 1, torch.stack([bright, dark]))
    assert start is not None and oracle.used_by_phase == {"init": 2}
    assert torch.equal(start[:2], dark[:2]) and torch.equal(start[2:], x[2:])
    mask2 = torch.zeros(8, dtype=torch.bool)
    mask2[3] = True  # frame 0 untouched: no splice can reach class 1
    assert targeted_start(oracle, x, mask2, 1, torch.stack([dark])) is None
    assert oracle.used == 3


def test_targeted_shrinks_eps_to_the_bound_and_keeps_the_target():
    model = LinearVictim(seed=3)
    x = torch.rand(8, 3, 8, 8, generator=_gen(1))
    label = int(model(x[None]).argmax())
    target = (label + 1) % 4
    cands = torch.rand(64, 8, 3, 8, 8, generator=_gen(2))
    cands = cands[model(cands).argmax(1) == target][:5]
    mask = torch.ones(8, dtype=torch.bool)
    mask[[1, 6]] = False
    oracle = Oracle(model, 60000)
    start = targeted_start(oracle, x, mask, target, cands)
    assert start is not None
    attack = TargetedSparseFGSM(NES(48, 1e-3), eps=0.05, schedule=TargetedSchedule(alpha=0.01, eps_decay=0.02))
    res = attack(oracle, x, start, target, mask, _gen())
    assert res.success, res
    assert res.eps_final <= 0.05 + 1e-9
    assert float((res.x_adv - x).abs().max()) <= 0.05 + 1e-7
    assert int(model(res.x_adv[None]).argmax()) == target
    assert torch.equal(res.x_adv[~mask], x[~mask])
    assert oracle.used == res.queries + oracle.used_by_phase["init"]
