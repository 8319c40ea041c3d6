"""The reference check against ART's Sign-OPT (``benchmarks/art_adapter.py``,
``benchmarks/art_reference.py``): ART's queries go through our oracle and are counted,
ART cannot exceed the budget, and the comparison runs end to end on a toy victim."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("art")  # the `art` / `test` extra

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import art_adapter
from art_adapter import OracleClassifier, QueryLog, art_attack, compare, paired, run_art, run_ours, summarize
from toys import LinearVictim

from sva.attacks import attack_classes, opt
from sva.blackbox.oracle import Oracle

SHAPE = (2, 3, 4, 4)
CLASSES = 4


class Counter(nn.Module):
    """Counts the videos the victim itself evaluates."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.videos = inner, 0

    def forward(self, videos):
        self.videos += int(videos.shape[0])
        return self.inner(videos)


def case(n: int = 2):
    model = LinearVictim(shape=SHAPE, classes=CLASSES, seed=5)
    x = 0.3 + 0.4 * torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        labels = model(x).argmax(1).tolist()
    return model, x, labels


def test_art_queries_are_counted_by_our_oracle_and_stop_at_the_budget():
    model, x, labels = case(1)
    counter = Counter(model)
    budget = 400
    oracle = Oracle(counter, budget, mode="label")
    wrapper = OracleClassifier(oracle, SHAPE, CLASSES, refused_label=labels[0])
    # ART's own limit far above the budget: only the oracle can stop it
    attack = art_attack(wrapper.classifier, budget, query_limit=20 * budget, max_iter=50)
    state = np.random.get_state()
    np.random.seed(0)
    try:
        adv = attack.generate(x[:1].numpy(), y=np.array(labels[:1]))
    finally:
        np.random.set_state(state)
    assert counter.videos == oracle.used == wrapper.answered
    assert oracle.used == budget  # ART asks one video at a time: it spends the budget exactly ...
    assert wrapper.refused > 0 and wrapper.refused_calls > 0  # ... and then asks past it, refused
    # refused queries never made ART's answer worse than what the oracle answered adversarial
    with torch.no_grad():
        assert int(model(torch.from_numpy(adv)).argmax(1)) != labels[0]


def test_a_refused_batch_is_not_evaluated_and_answers_the_clean_class():
    model, x, labels = case(1)
    counter = Counter(model)
    oracle = Oracle(counter, 3, mode="label")
    wrapper = OracleClassifier(oracle, SHAPE, CLASSES, refused_label=labels[0])
    batch = np.repeat(x[:1].numpy(), 4, axis=0)
    out = wrapper.classifier.predict(batch, batch_size=4)  # 4 > the budget: refused whole
    assert counter.videos == oracle.used == 0
    assert wrapper.refused == 4 and wrapper.refused_calls == 1
    assert (out.argmax(1) == labels[0]).all() and out.sum() == 4
    out = wrapper.classifier.predict(batch[:3], batch_size=3)
    assert counter.videos == oracle.used == wrapper.answered == 3
    assert out.shape == (3, CLASSES)


def test_query_log_counts_what_the_oracle_answers():
    model, x, labels = case(1)
    log = QueryLog(model, x[0], labels[0])
    oracle = Oracle(log, 10, batch_size=2, mode="label")
    far = (x[0] + 0.3 * torch.randn(5, *SHAPE, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    answer = oracle.query(torch.cat([x[:1], far]))
    assert log.count == oracle.used == 6
    assert log.adv == (answer.labels != labels[0]).tolist()
    assert log.linf[0] == 0.0 and log.l2[0] == 0.0
    adv = [d for a, d in zip(log.adv, log.linf) if a]
    assert log.best(6, "linf") == (min(adv) if adv else math.inf)
    assert log.best(1, "linf") == math.inf  # the clean video is not adversarial


def test_ours_l2_is_the_projects_sign_opt_in_l2_geometry():
    """``ours_l2`` is ``sign_opt`` with ``geometry: l2`` (no module function swapped,
    nothing registered): the same queries and returned video as the method built
    directly, and the returned video is the closest answered adversarial one in L∞."""
    model, x, labels = case(1)
    before = (opt.unit, opt.units_, opt.linf)
    methods = set(attack_classes())
    r = run_ours(model, x[0], labels[0], 400, norm="l2", seed=3, index=0)
    assert (opt.unit, opt.units_, opt.linf) == before and set(attack_classes()) == methods
    settings = opt.SignOptSettings(stop_at_eps=False, geometry="l2")
    oracle = Oracle(model, 400, batch_size=16, mode="label")
    context = art_adapter.AttackContext("untargeted", math.inf, art_adapter.UntargetedCfg(budget=400))
    out = opt.SignOptAttack(context, settings)(
        oracle, art_adapter.AttackTask(x[0], labels[0], seed=3, seed_keys=("art_reference", "l2", 0)))
    assert r.method == "ours_l2" and r.queries == oracle.used and r.phases == oracle.used_by_phase
    assert r.returned_linf == pytest.approx(float((out.x_adv - x[0]).abs().max()), abs=1e-12)
    assert r.returned_linf == out.episodes[0]["linf"]
    assert r.returned_l2 == art_adapter.l2_distance(out.x_adv, x[0])


def test_comparison_runs_end_to_end_on_a_toy_victim():
    model, x, labels = case(2)
    budget = 500
    results = compare(model, x, labels, budget, CLASSES, eps=0.05)
    assert {(r.method, r.video) for r in results} == {(m, v) for m in ("ours", "art", "ours_l2") for v in (0, 1)}
    for r in results:
        assert 0 < r.queries <= budget
        assert r.returned_adversarial, r
        assert 0 < r.returned_linf < 1 and 0 < r.returned_l2 < math.inf and 0 < r.returned_map < math.inf
        # the checkpoint curve only improves, and ends at the best adversarial video answered
        assert r.best_linf[0.25] >= r.best_linf[0.5] >= r.best_linf[1.0] > 0
        assert r.best_l2[1.0] <= r.returned_l2 + 1e-9
        assert r.success == (r.returned_linf <= 0.05)
        assert (r.queries_to_eps is None) == (r.map_at_eps is None)
        if r.queries_to_eps is not None:
            assert 0 < r.queries_to_eps <= r.queries and 0 < r.map_at_eps < 0.05 * 255
    ours = [r for r in results if r.method == "ours"]
    assert all(r.refused == 0 and r.stop in ("budget", "stagnation") for r in ours)
    summary = summarize(results)
    assert set(summary) == {"ours", "art", "ours_l2"}
    assert summary["art"]["videos"] == 2 and summary["art"]["adversarial"] == 2
    wins, n = paired(results, "ours", "art", "returned_linf")
    assert n == 2 and 0 <= wins <= 2


def test_run_art_leaves_numpy_global_state_alone():
    model, x, labels = case(1)
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    run_art(model, x[0], labels[0], 150, CLASSES, seed=7)
    assert np.random.rand() == expected


def test_linear_optimum_matches_the_closed_form_away_from_the_clip():
    """Inside [0.3, 0.7] with a nearby boundary the clip does not bind: the smallest L∞
    distance is margin / ‖Δw‖₁ (and L2 margin / ‖Δw‖₂), for the nearest class."""
    model, x, labels = case(3)
    w, b = model.w.detach().double(), model.b.detach().double()
    for video, label in zip(x, labels):
        z = w @ video.double().flatten() + b
        rows = [(float(z[label] - z[j]), w[j] - w[label]) for j in range(CLASSES) if j != label]
        expected_inf = min(m / float(dw.abs().sum()) for m, dw in rows)
        expected_2 = min(m / float(dw.norm()) for m, dw in rows)
        assert expected_inf < 0.3  # the clip cannot bind
        got_inf, got_2 = art_adapter.linear_optimum(w, b, video, label)
        assert got_inf == pytest.approx(expected_inf, rel=1e-9)
        assert got_2 == pytest.approx(expected_2, rel=1e-12)
