"""The black box: exact counting, budget refusal, chunking, score precision, phases."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sva.blackbox.oracle import LOG_TINY, Answer, BudgetExhausted, Oracle, QueryCount, log_odds, log_one_minus

T, H, W = 2, 4, 4



class CountingModel(nn.Module):
    """A linear video classifier that counts forward calls and videos seen."""

    def __init__(self, num_classes: int = 5, seed: int = 0, scale: float = 1.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(num_classes, T * 3 * H * W, generator=g) * scale)
        self.calls = 0
        self.videos = 0
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.videos += x.shape[0]
        self.batch_sizes.append(x.shape[0])
        # row-independent reduction: bit-identical whatever the batch split
        return (x.flatten(1)[:, None, :] * self.weight).sum(-1)


class FixedLogits(nn.Module):
    """Returns the same logits row for every video."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


def videos(b: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, T, 3, H, W, generator=torch.Generator().manual_seed(seed))


def test_exact_counting_over_batch_sizes():
    model = CountingModel()
    oracle = Oracle(model, budget=100, batch_size=4)
    total = 0
    for b in [1, 3, 4, 5, 9, 16, 0, 2]:
        ans = oracle.query(videos(b, seed=b))
        total += b
        assert len(ans) == b
        assert oracle.used == total == model.videos
        assert oracle.remaining == 100 - total
    assert model.batch_sizes == [1, 3, 4, 4, 1, 4, 4, 1, 4, 4, 4, 4, 2]


def test_single_video_counts_one_and_is_batched():
    model = CountingModel()
    oracle = Oracle(model, budget=3)
    ans = oracle.query(videos(1)[0])
    assert ans.labels.shape == (1,) and ans.log_prob.shape == (1,)
    assert oracle.used == 1


def test_refusal_evaluates_nothing_and_counts_nothing():
    model = CountingModel()
    oracle = Oracle(model, budget=10, batch_size=4)
    oracle.query(videos(8))
    calls = model.calls
    with pytest.raises(BudgetExhausted) as err:
        oracle.query(videos(3))
    assert model.calls == calls and oracle.used == 8
    e = err.value
    assert (e.used, e.budget, e.asked) == (8, 10, 3)
    assert "8/10" in str(e) and "3" in str(e)
    oracle.query(videos(2))  # exactly reaching the budget is allowed
    assert oracle.used == 10 and oracle.remaining == 0
    with pytest.raises(BudgetExhausted):
        oracle.query(videos(1))
    assert oracle.query(videos(0)).labels.shape == (0,)  # an empty call is free, even at 0 left


@settings(max_examples=150, deadline=None)
@given(
    budget=st.integers(0, 60),
    batch_size=st.integers(1, 7),
    sizes=st.lists(st.integers(0, 25), max_size=12),
)
def test_property_never_exceeds_budget_and_counts_each_answer_once(budget, batch_size, sizes):
    model = CountingModel()
    oracle = Oracle(model, budget=budget, batch_size=batch_size)
    answered = 0
    for i, b in enumerate(sizes):
        before_calls, before_used = model.calls, oracle.used
        if before_used + b > budget:
            with pytest.raises(BudgetExhausted):
                oracle.query(videos(b, seed=i))
            assert model.calls == before_calls  # a refused call evaluates nothing
            assert oracle.used == before_used  # ...and changes no count
        else:
            ans = oracle.query(videos(b, seed=i))
            assert len(ans) == b
            answered += b
        assert oracle.used <= budget
        assert oracle.used == answered == model.videos  # each answered video counted once
        assert sum(oracle.used_by_phase.values()) == oracle.used
        assert all(s <= batch_size for s in model.batch_sizes)


def test_chunking_matches_unchunked_forward():
    model = CountingModel(num_classes=7, scale=3.0)
    x = videos(11, seed=3)
    with torch.no_grad():
        ref = torch.log_softmax(model(x).double(), dim=-1)  # margins are small here: exact
    ref_lp, ref_lab = ref.max(dim=-1)
    for bs in (1, 3, 11, 64):
        ans = Oracle(model, budget=100, batch_size=bs).query(x)
        assert torch.equal(ans.labels, ref_lab)
        torch.testing.assert_close(ans.log_prob, ref_lp, rtol=0, atol=1e-12)


def test_answers_are_cpu_int64_float64_and_nonpositive():
    ans = Oracle(CountingModel(), budget=10).query(videos(4))
    assert ans.labels.dtype == torch.long and ans.labels.device.type == "cpu"
    assert ans.log_prob.dtype == torch.float64 and ans.log_prob.device.type == "cpu"
    assert bool((ans.log_prob <= 0).all())
    assert bool((ans.log_prob >= -math.log(5) - 1e-12).all())  # top-1 of 5 classes has p >= 1/5


def test_label_mode_hides_probabilities():
    oracle = Oracle(CountingModel(), budget=10, mode="label")
    ans = oracle.query(videos(3))
    assert ans.log_prob is None and ans.labels.shape == (3,)
    with pytest.raises(ValueError, match="label"):
        ans.require_scores()
    assert oracle.used == 3


def test_float64_log_prob_resolves_float32_saturation():
    logits = torch.tensor([40.0, 0.0, -1.0, 0.5])
    assert torch.softmax(logits, 0).max().item() == 1.0  # float32 saturates
    assert torch.log_softmax(logits.double(), 0).max().item() == 0.0  # so does naive float64 log_softmax
    oracle = Oracle(FixedLogits(logits), budget=5)
    ans = oracle.query(videos(2))
    assert ans.labels.tolist() == [0, 0]
    lp = ans.log_prob
    expected = -math.log1p(math.exp(-40.0) + math.exp(-41.0) + math.exp(-39.5))
    assert bool((lp < 0).all()) and bool(torch.isfinite(lp).all())
    torch.testing.assert_close(lp, torch.full((2,), expected, dtype=torch.float64), rtol=1e-9, atol=0)
    lo = log_odds(lp)
    ref = math.log(math.exp(-40.0) + math.exp(-41.0) + math.exp(-39.5))
    assert torch.isfinite(lo).all() and abs(lo[0].item() + ref) < 1e-9


def test_log_odds_and_log_one_minus_edge_cases():
    lp = torch.tensor([-1e-20, -1e-300, 0.0, math.log(0.5), math.log(0.25), -1e-5, -50.0], dtype=torch.float64)
    lo = log_odds(lp)
    assert lo.dtype == torch.float64 and bool(torch.isfinite(lo).all())
    assert abs(lo[0].item() - 20 * math.log(10)) < 1e-9  # 1 - p = 1e-20
    assert abs(lo[1].item() - 300 * math.log(10)) < 1e-9
    assert lo[2].item() == -LOG_TINY  # p == 1 exactly: clamped, finite (~708.4)
    assert lo[2].item() > lo[1].item()
    assert abs(lo[3].item()) < 1e-15
    assert abs(lo[4].item() - math.log(1 / 3)) < 1e-12
    assert abs(lo[5].item() - (-1e-5 - math.log(-math.expm1(-1e-5)))) < 1e-9
    assert abs(lo[6].item() + 50.0) < 1e-12
    l1m = log_one_minus(lp)
    assert l1m[2].item() == LOG_TINY and bool((l1m >= LOG_TINY).all())
    assert bool((torch.diff(lo[:3]) > 0).all())  # monotone in log p
    # matches the naive formula where the naive formula is accurate
    mid = torch.linspace(-5, -0.01, 50, dtype=torch.float64)
    torch.testing.assert_close(log_odds(mid), mid - torch.log(1 - torch.exp(mid)), rtol=1e-12, atol=1e-12)


def test_phase_accounting_and_snapshots():
    oracle = Oracle(CountingModel(), budget=100, batch_size=4)
    oracle.query(videos(2))
    s0 = oracle.snapshot()
    with oracle.phase("nes"):
        oracle.query(videos(5))
        with oracle.phase("check"):
            assert oracle.current_phase == "check"
            oracle.query(videos(1))
        oracle.query(videos(3))
    oracle.query(videos(1), phase="init")
    assert oracle.current_phase == "default"
    assert oracle.used_by_phase == {"default": 2, "nes": 8, "check": 1, "init": 1}
    s1 = oracle.snapshot()
    assert s1.used == 12 and (s1 - s0) == QueryCount(10, {"nes": 8, "check": 1, "init": 1})
    with pytest.raises(TypeError):
        s1.by_phase["nes"] = 0  # snapshots are immutable
    oracle.query(videos(1), phase="nes")
    assert s1.by_phase["nes"] == 8  # ...and detached from the live count
    with pytest.raises(BudgetExhausted) as err, oracle.phase("binary_search"):
        oracle.query(videos(200))
    assert err.value.phase == "binary_search"
    assert "binary_search" not in oracle.used_by_phase


def test_phase_is_restored_after_an_exception():
    oracle = Oracle(CountingModel(), budget=1)
    with pytest.raises(BudgetExhausted), oracle.phase("nes"):
        oracle.query(videos(2))
    assert oracle.current_phase == "default"


def test_out_of_range_and_nan_inputs_are_refused_uncounted():
    model = CountingModel()
    oracle = Oracle(model, budget=10)
    for bad in (videos(2) + 0.5, videos(2) - 0.5, videos(2).masked_fill(torch.rand(2, T, 3, H, W) < 0.1, float("nan"))):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            oracle.query(bad)
    assert oracle.used == 0 and model.calls == 0
    oracle.query(torch.zeros(1, T, 3, H, W))
    oracle.query(torch.ones(1, T, 3, H, W))
    assert oracle.used == 2
    with pytest.raises(ValueError):
        oracle.query(torch.rand(2, T, 4, H, W))  # not RGB
    with pytest.raises(TypeError):
        oracle.query((videos(1) * 255).to(torch.uint8))


def test_range_read_after_the_forwards_still_refuses_uncounted(monkeypatch):
    """On a GPU the range is read after the forwards are queued: the call still raises,
    answers nothing, counts nothing and is not observed."""
    import sva.blackbox.oracle as oracle_module

    monkeypatch.setattr(oracle_module, "_check_first", lambda videos: False)
    seen = []
    model = CountingModel()
    oracle = Oracle(model, budget=10, observer=lambda v, a, u: seen.append(u))
    with pytest.raises(ValueError, match=r"nothing was answered or counted"):
        oracle.query(videos(3) + 0.5)
    assert model.calls > 0 and oracle.used == 0 and oracle.used_by_phase == {} and not seen
    assert len(oracle.query(videos(3))) == 3 and oracle.used == 3 and seen == [0]


def test_model_kept_in_eval_mode():
    class Dropper(CountingModel):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            return super().forward(self.drop(x))

    model = Dropper().train()
    oracle = Oracle(model, budget=100)
    assert not model.training
    x = videos(3)
    a, b = oracle.query(x), oracle.query(x)
    assert torch.equal(a.log_prob, b.log_prob)  # deterministic: dropout is off
    model.train()  # even if someone flips it back
    c = oracle.query(x)
    assert torch.equal(a.log_prob, c.log_prob) and not model.training


def test_inference_mode_no_autograd():
    seen = {}

    class Spy(CountingModel):
        def forward(self, x):
            seen["inference"] = torch.is_inference_mode_enabled()
            seen["grad"] = torch.is_grad_enabled()
            return super().forward(x)

    x = videos(2).requires_grad_(True)
    ans = Oracle(Spy(), budget=5).query(x)
    assert seen == {"inference": True, "grad": False}
    assert not ans.log_prob.requires_grad


def test_model_is_not_exposed():
    model = CountingModel()
    oracle = Oracle(model, budget=10)
    public = [name for name in dir(oracle) if not name.startswith("_")]
    assert not any(isinstance(getattr(oracle, name), nn.Module) for name in public)
    assert "CountingModel" not in repr(oracle) and "budget=10" in repr(oracle)
    with pytest.raises(TypeError):
        pickle.dumps(oracle)
    with pytest.raises(TypeError):
        copy.deepcopy(oracle)


def test_constructor_validation():
    with pytest.raises(ValueError):
        Oracle(CountingModel(), budget=-1)
    with pytest.raises(ValueError):
        Oracle(CountingModel(), budget=5, batch_size=0)
    with pytest.raises(ValueError):
        Oracle(CountingModel(), budget=5, mode="logits")
    with pytest.raises(TypeError):
        Oracle(lambda x: x, budget=5)


def test_answer_indexing():
    ans = Answer(torch.tensor([3, 1, 2]), torch.tensor([-0.1, -0.2, -0.3], dtype=torch.float64))
    assert ans[1].labels.tolist() == [1] and ans[-1].labels.tolist() == [2]
    assert ans[0:2].log_prob.tolist() == [-0.1, -0.2]


def test_log_prob_resolved_up_to_huge_margins():
    margins = torch.tensor([10.0, 30.0, 37.0, 40.0, 100.0, 300.0, 700.0])
    lps = []
    for m in margins:
        oracle = Oracle(FixedLogits(torch.stack([m, torch.tensor(0.0), torch.tensor(-2.0)])), budget=1)
        lps.append(oracle.query(videos(1)).log_prob[0])
    lp = torch.stack(lps)
    assert bool((lp < 0).all()) and bool((torch.diff(lp) > 0).all())  # strictly closer to 0
    lo = log_odds(lp)
    ref = margins.double() - torch.log1p(torch.exp(torch.tensor(-2.0, dtype=torch.float64)))
    torch.testing.assert_close(lo, ref, rtol=1e-9, atol=1e-9)  # log-odds ~ the margin
    # beyond ~745 even float64 saturates: log p == 0, log-odds clamped (finite)
    sat = Oracle(FixedLogits(torch.tensor([800.0, 0.0])), budget=1).query(videos(1))
    assert sat.log_prob.item() == 0.0 and log_odds(sat.log_prob).item() == -LOG_TINY


def test_ties_go_to_the_lowest_index():
    ans = Oracle(FixedLogits(torch.tensor([1.0, 3.0, 3.0])), budget=1).query(videos(1))
    assert ans.labels.item() == 1
    assert abs(ans.log_prob.item() - math.log(math.exp(3) / (math.exp(1) + 2 * math.exp(3)))) < 1e-12
    # a label-only oracle (which skips the probabilities) answers the same label
    label = Oracle(FixedLogits(torch.tensor([1.0, 3.0, 3.0])), budget=1, mode="label").query(videos(1))
    assert label.labels.item() == 1 and label.log_prob is None


def test_label_mode_answers_the_labels_of_score_mode():
    """The label-only path takes the top-1 of the float32 logits; the score path of their
    float64 copy: exactly the same labels, ties included."""
    logits = torch.randn(16, 7, generator=torch.Generator().manual_seed(0)).round(decimals=0)  # many ties
    ties = sum(int((row == row.max()).sum() > 1) for row in logits)
    assert ties >= 3

    class Rows(nn.Module):  # row i of each batch answers logits[i]
        def forward(self, x):
            return logits[: x.shape[0]]

    model = Rows()
    score = Oracle(model, budget=64, batch_size=16).query(videos(64))
    label = Oracle(model, budget=64, batch_size=16, mode="label").query(videos(64))
    assert torch.equal(score.labels, label.labels)


def test_observer_sees_each_answered_call_with_the_count_before_it():
    from sva.blackbox.rounds import VideoRounds, run_side_by_side

    seen = []

    def observer(v, answer, used_before):
        seen.append((v.shape[0], answer.labels.tolist(), used_before))

    model = CountingModel()
    oracle = Oracle(model, budget=10, batch_size=4, mode="label", observer=observer)
    a = oracle.query(videos(6))
    b = oracle.query(videos(3, seed=1))
    with pytest.raises(BudgetExhausted):
        oracle.query(videos(2))  # refused: not observed
    assert seen == [(6, a.labels.tolist(), 0), (3, b.labels.tolist(), 6)]
    # through a shared round client as well
    seen.clear()

    def job(client):
        o = Oracle(model, budget=10, batch_size=4, rounds=client, observer=observer)
        o.query(videos(2))
        return o.query(videos(1, seed=2)).labels.tolist()

    (last,) = run_side_by_side(VideoRounds(model, 4), [job])
    assert [(n, used) for n, _, used in seen] == [(2, 0), (1, 2)] and seen[-1][1] == last
