"""SVAL (§4.3, Eq. 14): offline training for a target sparsity, then the frozen agent's top frames."""

from __future__ import annotations

import pytest
import torch

from sva.attacks.sval import SVALCfg, key_frame_count, sparsity_loss, top_frames, train_agent, trained_agent
from sva.pipeline.attack_job import offline_split


def _features(n: int = 4, t: int = 16, d: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, t, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("s, t, k", [(0.5, 16, 8), (0.6, 16, 6), (0.7, 16, 5), (0.2, 16, 13), (0.99, 16, 1),
                                     (0.01, 16, 16), (0.5, 8, 4)])
def test_key_frames_are_the_complement_of_the_target_sparsity(s, t, k):
    assert key_frame_count(s, t) == k


def test_top_frames_takes_the_highest_scores_and_the_earlier_frame_on_ties():
    p = torch.tensor([0.1, 0.9, 0.5, 0.9, 0.2])
    assert top_frames(p, 2).tolist() == [False, True, False, True, False]
    assert top_frames(p, 3).tolist() == [False, True, True, True, False]
    assert top_frames(torch.full((4,), 0.5), 2).tolist() == [True, True, False, False]


def test_l_percentage_is_eq_14():
    p = torch.tensor([0.2, 0.4], requires_grad=True)
    loss = sparsity_loss(p, 0.5)  # |0.3 + 0.5 - 1| = 0.2
    assert float(loss.detach()) == pytest.approx(0.2)
    loss.backward()
    assert p.grad.tolist() == pytest.approx([-0.5, -0.5])  # descending it raises p towards 1 - S


def test_training_follows_the_sparsity_term():
    """L_percentage pulls the mean selection probability towards 1 − S; R_rep (more
    frames represent a video better) pulls it up. With S = 0.8 the mean falls from
    about 0.5 towards 0.2; with S = 0.2 both pull the same way. The selection enforces S
    anyway (top k frames); training shapes which frames rank first."""
    cfg = SVALCfg(epochs=30, lr=1e-2, lr_step_epoch=25, hidden=16)
    means = {}
    for s in (0.2, 0.8):
        agent, log = train_agent(_features(), s, cfg, seed=1)
        assert len(log) == 30 and log[0]["lr"] == pytest.approx(1e-2) and log[-1]["lr"] == pytest.approx(1e-3)
        assert not agent.training  # frozen
        with torch.no_grad():
            means[s] = float(agent(_features(seed=9)[0]).mean())  # an unseen video
        assert log[-1]["l_percentage"] < log[0]["l_percentage"] / (2 if s == 0.8 else 1)
    assert abs(means[0.8] - 0.2) < 0.15 and means[0.2] > 0.8


def test_training_is_deterministic_and_memoised():
    cfg = SVALCfg(epochs=2, hidden=8)
    a, _ = train_agent(_features(), 0.5, cfg, seed=3)
    b, _ = train_agent(_features(), 0.5, cfg, seed=3)
    c, _ = train_agent(_features(), 0.5, cfg, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert trained_agent(_features(), 0.5, cfg, 3)[0] is trained_agent(_features(), 0.5, cfg, 3)[0]
    assert trained_agent(_features(), 0.5, cfg, 3)[0] is not trained_agent(_features(seed=1), 0.5, cfg, 3)[0]


def test_the_paper_defaults():
    cfg = SVALCfg()
    assert (cfg.train_fraction, cfg.epochs, cfg.lr, cfg.lr_step_epoch, cfg.lr_gamma) == (0.5, 20, 1e-5, 15, 0.1)
    assert (cfg.untargeted.sparsity, cfg.targeted.sparsity) == (0.5, 0.2)  # §4.4's choices from Table 2


def test_offline_split_is_seeded_disjoint_and_leaves_videos_to_attack():
    ids = [f"v{i}" for i in range(10)]
    train, rest = offline_split(ids, 0.5, 0, "ucf101")
    assert len(train) == 5 and sorted(train + rest) == ids and not set(train) & set(rest)
    assert offline_split(list(reversed(ids)), 0.5, 0, "ucf101") == (train, rest)
    assert offline_split(ids, 0.5, 1, "ucf101") != (train, rest)
    assert [len(offline_split(ids[:n], 0.5, 0, "d")[0]) for n in (2, 3, 4)] == [1, 2, 2]  # round half to even
    assert len(offline_split(ids, 0.99, 0, "d")[1]) == 1  # at least one video is left to attack
    with pytest.raises(ValueError, match="at least 2 videos"):
        offline_split(ids[:1], 0.5, 0, "d")


def test_the_table_2_rule():
    from sva.attacks.sval import choose_sparsity

    # the paper's own Table 2, un-targeted: S = 0.5 (FR 100 %, the smallest MAP, 3.2895)
    paper = [(0.1, 100, 5.5395), (0.2, 100, 5.3805), (0.3, 100, 5.3550), (0.4, 80, None), (0.5, 100, 3.2895),
             (0.6, 80, None), (0.7, 60, None)]
    assert choose_sparsity(paper)[0] == 0.5
    # targeted: S = 0.2 (8.7538 at 10 %, 6.6218 at 20 %)
    assert choose_sparsity([(0.1, 100, 8.7538), (0.2, 100, 6.6218), (0.3, 60, None), (0.7, 0, None)])[0] == 0.2
    # equal MAPs: the sparser; no setting at 100 %: the highest FR, then the smallest MAP
    assert choose_sparsity([(0.1, 100, 2.0), (0.3, 100, 2.0)])[0] == 0.3
    s, why = choose_sparsity([(0.1, 80, 3.0), (0.2, 80, 2.0), (0.3, 40, 1.0)])
    assert s == 0.2 and "no setting reached FR = 100 %" in why
    with pytest.raises(ValueError):
        choose_sparsity([])


def test_hints_from_the_grid_table_use_the_victims_own_rows_or_the_first_victims():
    import pandas as pd

    from sva.attacks.sval import SVAL, SVALModeCfg

    cfg = SVALCfg(untargeted=SVALModeCfg(sparsity="auto", grid="t2"))
    rows = {"a": SVALCfg(untargeted=SVALModeCfg(sparsity=0.2)), "b": SVALCfg(untargeted=SVALModeCfg(sparsity=0.6))}
    t2 = pd.DataFrame({"dataset": ["d", "d"], "victim": ["c3d", "c3d"], "method": ["a", "b"],
                       "FR (%)": [100.0, 100.0], "MAP": [3.0, 2.0]})
    assert SVAL.reads_tables(cfg, "untargeted") == ["t2"] and SVAL.reads_tables(cfg, "targeted") == []
    for victim in ("c3d", "lrcn"):  # LRCN takes C3D's choice, as the paper does
        hints = SVAL.hints_from_tables(cfg, "untargeted", {"t2": t2}, rows, "d", victim)
        assert hints["sparsity"] == 0.6 and hints["sparsity_choice"]["victim"] == "c3d"
    with pytest.raises(ValueError, match="no rows for dataset 'e'"):
        SVAL.hints_from_tables(cfg, "untargeted", {"t2": t2}, rows, "e", "c3d")
