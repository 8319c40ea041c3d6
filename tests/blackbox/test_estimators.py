"""NES gradient estimation through the oracle, and the attack objectives."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sva.blackbox.estimators import (
    ESTIMATORS,
    NES,
    GradientEstimator,
    build_estimator,
    targeted_objective,
    untargeted_objective,
)
from sva.blackbox.oracle import Answer, BudgetExhausted, Oracle

T, H, W = 4, 4, 4
D = T * 3 * H * W



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Recorder(nn.Module):
    """Two-class model ``logits = (w.x + bias, 0)`` that records every video it sees."""

    def __init__(self, w: torch.Tensor | None = None, bias: float = 5.0):
        super().__init__()
        self.w = nn.Parameter(w if w is not None else torch.randn(D, generator=gen(123)), requires_grad=False)
        self.bias = bias
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        s = x.flatten(1).double() @ self.w.double() + self.bias
        return torch.stack([s, torch.zeros_like(s)], dim=1).to(torch.float64)


def interior_video(seed: int = 0) -> torch.Tensor:
    return 0.25 + 0.5 * torch.rand(T, 3, H, W, generator=gen(seed))


MASK = torch.tensor([True, False, True, False])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(a @ b / (a.norm() * b.norm()))


def test_probes_equal_x_off_mask_and_are_antithetic():
    model = Recorder()
    oracle = Oracle(model, budget=1000, batch_size=7)
    x = interior_video()
    nes = NES(population=10, sigma=1e-2)
    est = nes.estimate(oracle, x, MASK, untargeted_objective(0), gen())
    probes = torch.cat(model.seen)  # chunked by the oracle, in order
    assert probes.shape == (10, T, 3, H, W)
    assert torch.equal(probes[:, ~MASK], x[~MASK].expand(10, -1, -1, -1, -1))  # untouched frames
    d = probes - x
    assert bool((d[:, MASK].abs() > 0).all())  # every masked pixel is perturbed
    torch.testing.assert_close(d[:5], -d[5:], rtol=0, atol=1e-6)  # antithetic pairs: i and h + i
    assert float(d[:, MASK].abs().max()) < 1e-2 * 6  # scale sigma
    assert torch.count_nonzero(est.grad[~MASK]) == 0  # gradient zero off the mask
    assert est.grad.dtype == torch.float32 and est.grad.shape == x.shape
    for i in (0, 7):
        assert torch.equal(est.probe(i), probes[i])  # the exact tensor that was queried


def test_query_count_equals_population_in_one_call():
    model = Recorder()
    oracle = Oracle(model, budget=1000, batch_size=48)
    nes = build_estimator("nes", population=48, sigma=1e-3)
    with oracle.phase("nes"):
        est = nes.estimate(oracle, interior_video(), MASK, untargeted_objective(0), gen())
    assert est.queries == 48 == nes.queries_per_estimate
    assert oracle.used == 48 and oracle.used_by_phase == {"nes": 48}
    assert len(model.seen) == 1  # the whole population in one forward (batch_size 48)
    assert len(est.answer) == 48 and est.values.shape == (48,) and est.values.dtype == torch.float64


def _linear_setup(bias: float = 8.0):
    """Untargeted on class 0 with logits (s, 0): f = log(1 - p) = -softplus(s), s = w.x + bias."""
    model = Recorder(bias=bias)
    x = interior_video()
    s = float(x.flatten().double() @ model.w.double()) + bias
    true_grad = -torch.sigmoid(torch.tensor(s)).item() * model.w.detach().view(T, 3, H, W)
    return model, x, true_grad


def test_nes_recovers_gradient_of_a_smooth_function():
    model, x, true_grad = _linear_setup()
    oracle = Oracle(model, budget=10**6, batch_size=1024)
    est = NES(population=1000, sigma=1e-3).estimate(oracle, x, MASK, untargeted_objective(0), gen())
    assert cosine(est.grad[MASK], true_grad[MASK]) > 0.85
    # magnitude is an unbiased estimate too (Eq. 2's 1/(sigma n) normalisation)
    ratio = float(est.grad[MASK].flatten() @ true_grad[MASK].flatten() / true_grad[MASK].norm() ** 2)
    assert 0.8 < ratio < 1.2
    # the paper's population: a single estimate is noisy, the average of a few converges
    nes = NES(population=48, sigma=1e-3)
    g = gen(1)
    acc = sum(nes.estimate(oracle, x, MASK, untargeted_objective(0), g).grad for _ in range(40))
    assert cosine(acc[MASK], true_grad[MASK]) > 0.9


def test_determinism_and_seed_dependence():
    model, x, _ = _linear_setup()
    oracle = Oracle(model, budget=10**4)
    nes = NES(population=12, sigma=1e-3)
    a = nes.estimate(oracle, x, MASK, untargeted_objective(0), gen(7)).grad
    b = NES(population=12, sigma=1e-3).estimate(oracle, x, MASK, untargeted_objective(0), gen(7)).grad
    c = nes.estimate(oracle, x, MASK, untargeted_objective(0), gen(8)).grad
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_float64_resolution_of_tiny_differences():
    """Logit margin ~40: float32 softmax is exactly 1 on every probe, yet the estimate is informative."""
    model = Recorder(bias=40.0)
    model.w.data *= 0.01
    x = interior_video()
    oracle = Oracle(model, budget=10**5, batch_size=500)

    def raw_log_prob(answer: Answer) -> torch.Tensor:  # differences ~1e-20 between probes
        return answer.log_prob

    est = NES(population=500, sigma=1e-3).estimate(oracle, x, MASK, raw_log_prob, gen())
    assert bool((est.values < 0).all()) and float(est.values.max() - est.values.min()) < 1e-15
    assert torch.count_nonzero(est.grad[MASK]) == est.grad[MASK].numel()
    # d log p / dx = (1 - p) w ~ e^-40 w: points along +w
    assert cosine(est.grad[MASK], model.w.detach().view(T, 3, H, W)[MASK]) > 0.8
    # and the shipped objective (log-odds-like) agrees
    est2 = NES(population=500, sigma=1e-3).estimate(oracle, x, MASK, targeted_objective(0), gen())
    assert cosine(est2.grad[MASK], model.w.detach().view(T, 3, H, W)[MASK]) > 0.8


def test_probes_are_clamped_to_valid_videos():
    model, _, _ = _linear_setup()
    x = interior_video()
    x[0, 0] = 0.0  # a black channel and a saturated channel on a masked frame
    x[0, 1] = 1.0
    oracle = Oracle(model, budget=10**5, batch_size=2000)  # the oracle refuses out-of-range videos
    est = NES(population=2000, sigma=1e-2).estimate(oracle, x, MASK, untargeted_objective(0), gen())
    probes = torch.cat(model.seen)
    assert float(probes.min()) >= 0.0 and float(probes.max()) <= 1.0
    assert bool((probes[:, 0, 0] == 0.0).any()) and bool((probes[:, 0, 1] == 1.0).any())
    # boundary pixels: the estimate keeps the gradient's sign (f o clamp, half the magnitude)
    s = float(x.flatten().double() @ model.w.double()) + model.bias
    true = -torch.sigmoid(torch.tensor(s)) * model.w.detach().view(T, 3, H, W)
    for c in (0, 1):
        assert cosine(est.grad[0, c], true[0, c]) > 0.7


def test_budget_refusal_before_any_noise():
    model = Recorder()
    oracle = Oracle(model, budget=47)
    g = gen(3)
    state = g.get_state()
    with pytest.raises(BudgetExhausted):
        NES(population=48).estimate(oracle, interior_video(), MASK, untargeted_objective(0), g)
    assert oracle.used == 0 and model.seen == [] and torch.equal(g.get_state(), state)


def test_input_validation():
    oracle = Oracle(Recorder(), budget=100)
    nes = NES(population=4)
    obj = untargeted_objective(0)
    with pytest.raises(ValueError, match="no frame"):
        nes.estimate(oracle, interior_video(), torch.zeros(T, dtype=torch.bool), obj, gen())
    with pytest.raises(ValueError):
        nes.estimate(oracle, interior_video(), torch.ones(T), obj, gen())  # not bool
    with pytest.raises(ValueError):
        nes.estimate(oracle, interior_video()[None], MASK, obj, gen())  # batched x
    with pytest.raises(ValueError):
        nes.estimate(oracle, interior_video(), MASK, lambda a: a.log_prob[:2], gen())
    for bad in ({"population": 7}, {"population": 0}, {"sigma": 0.0}):
        with pytest.raises(ValueError):
            NES(**bad)
    label_oracle = Oracle(Recorder(), budget=100, mode="label")
    with pytest.raises(ValueError, match="label"):
        nes.estimate(label_oracle, interior_video(), MASK, obj, gen())
    assert oracle.used == 4  # only the bad-objective call reached the victim


def test_stale_probe_access_raises():
    oracle = Oracle(Recorder(), budget=100)
    nes = NES(population=4)
    first = nes.estimate(oracle, interior_video(), MASK, untargeted_objective(0), gen())
    kept = first.probe(1)
    nes.estimate(oracle, interior_video(1), MASK, untargeted_objective(0), gen())
    with pytest.raises(RuntimeError, match="stale"):
        first.probe(1)
    assert kept.shape == (T, 3, H, W)  # copies taken earlier stay valid
    with pytest.raises(IndexError):
        nes.estimate(oracle, interior_video(), MASK, untargeted_objective(0), gen()).probe(4)


def test_reused_probe_buffer_always_holds_the_current_unmasked_frames():
    model = Recorder()
    oracle = Oracle(model, budget=1000, batch_size=8)
    nes = NES(population=8, sigma=1e-2)
    x1 = interior_video(1)
    x2 = x1.clone()
    x2[MASK] = interior_video(2)[MASK]  # only masked frames change: the fill is skipped
    x3 = x2.clone()
    x3[1] += 0.01  # an unmasked frame changes: it must be refilled
    other = torch.tensor([False, True, True, False])
    for x, mask in ((x1, MASK), (x2, MASK), (x3, MASK), (x3, other), (x1, MASK)):
        model.seen.clear()
        nes.estimate(oracle, x, mask, untargeted_objective(0), gen())
        probes = torch.cat(model.seen)
        assert torch.equal(probes[:, ~mask], x[~mask].expand(8, -1, -1, -1, -1))
        assert bool((probes[:, mask] != x[mask]).any(dim=0).all())


def test_buffers_are_reused_across_calls():
    oracle = Oracle(Recorder(), budget=1000)
    nes = NES(population=8)
    nes.estimate(oracle, interior_video(), MASK, untargeted_objective(0), gen())
    ptrs = (nes._noise.data_ptr(), nes._probes.data_ptr())
    nes.estimate(oracle, interior_video(1), MASK, untargeted_objective(0), gen())
    assert (nes._noise.data_ptr(), nes._probes.data_ptr()) == ptrs
    nes.estimate(oracle, interior_video(), torch.tensor([True, True, True, False]), untargeted_objective(0), gen())
    assert nes._noise.shape[1] == 3  # a new mask size re-allocates


def _answer(labels, probs):
    return Answer(torch.tensor(labels), torch.log(torch.tensor(probs, dtype=torch.float64)))


def test_untargeted_objective():
    f = untargeted_objective(2)
    # still the true class on top: higher p_true is worse
    fails = f(_answer([2, 2, 2, 2], [0.99, 0.9, 0.6, 0.3]))
    assert bool((torch.diff(fails) > 0).all()) and bool((fails < 0).all())
    torch.testing.assert_close(fails, torch.log(1 - torch.tensor([0.99, 0.9, 0.6, 0.3], dtype=torch.float64)))
    # another class on top: success, more confidence is better, and above every failure
    wins = f(_answer([0, 1, 3, 0], [0.3, 0.6, 0.9, 0.99]))
    assert bool((torch.diff(wins) > 0).all()) and bool((wins > 0).all())
    assert float(wins.min()) > float(fails.max())
    assert f(_answer([2], [1.0])).isfinite().all()  # saturated: finite, clamped
    assert f.__name__ == "untargeted_objective(2)"


def test_targeted_objective():
    f = targeted_objective(5)
    wins = f(_answer([5, 5, 5], [0.2, 0.5, 0.999]))
    fails = f(_answer([1, 1, 0], [0.999, 0.5, 0.2]))
    assert bool((torch.diff(wins) > 0).all()) and bool((wins > 0).all())
    assert bool((torch.diff(fails) > 0).all()) and bool((fails < 0).all())  # weaker competitor is better
    assert float(wins.min()) > float(fails.max())


def test_registry():
    assert ESTIMATORS["nes"] is NES and issubclass(NES, GradientEstimator)
    nes = build_estimator("nes", population=10, sigma=1e-6)
    assert isinstance(nes, NES) and nes.population == 10 and nes.sigma == 1e-6
    with pytest.raises(ValueError, match="unknown gradient estimator 'signsgd'.*nes"):
        build_estimator("signsgd")
    assert "NES(population=10" in repr(nes)


def test_default_population_and_sigma_match_paper():
    nes = NES()
    assert nes.population == 48 and math.isclose(nes.sigma, 1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nes_on_cuda_matches_the_cpu_contract():
    model = Recorder().cuda()
    oracle = Oracle(model, budget=100)
    x = interior_video().cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    est = NES(population=8).estimate(oracle, x, MASK.cuda(), untargeted_objective(0), g)
    assert est.grad.device.type == "cuda" and est.grad.dtype == torch.float32
    assert est.answer.labels.device.type == "cpu" and est.answer.log_prob.dtype == torch.float64
    assert torch.count_nonzero(est.grad[~MASK.cuda()]) == 0 and oracle.used == 8


def test_zo_signsgd_asks_the_point_and_q_probes_and_recovers_the_gradient():
    from sva.blackbox.estimators import ZOSignSGD

    model, x, true_grad = _linear_setup()
    oracle = Oracle(model, budget=10**6, batch_size=2048)
    zo = build_estimator("zo_signsgd", population=1000, sigma=1e-3)
    assert isinstance(zo, ZOSignSGD) and zo.queries_per_estimate == 1001
    model.seen.clear()
    est = zo.estimate(oracle, x, MASK, untargeted_objective(0), gen())
    assert est.queries == oracle.used == 1001
    seen = torch.cat(model.seen)
    assert torch.equal(seen[0], x)  # the current point, for the forward differences
    assert torch.equal(seen[1:, ~MASK], x[None, ~MASK].expand(1000, *x[~MASK].shape))  # off the mask: clean
    assert cosine(est.grad[MASK], true_grad[MASK]) > 0.8 and float(est.grad[~MASK].abs().max()) == 0.0
    # the sign is what the FGSM step uses: most coordinates' signs agree with the true gradient's
    agree = (torch.sign(est.grad[MASK]) == torch.sign(true_grad[MASK])).double().mean()
    assert agree > 0.75
    # deterministic under the same generator
    again = zo.estimate(oracle, x, MASK, untargeted_objective(0), gen())
    assert torch.equal(again.grad, est.grad)


# ---------------------------------------------------------------------- every registered estimator
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_queries_per_estimate_is_what_the_oracle_counts(name):
    """The invariant callers budget with, for every registered estimator: one estimate
    costs exactly ``queries_per_estimate`` oracle answers, all under the oracle's phase."""
    model = Recorder()
    oracle = Oracle(model, budget=1000, batch_size=7)  # chunked: the count is per video, not per call
    est_ = build_estimator(name, population=12, sigma=1e-3)
    with oracle.phase("nes"):
        e = est_.estimate(oracle, interior_video(), MASK, untargeted_objective(0), gen())
    n = est_.queries_per_estimate
    assert e.queries == n == oracle.used and oracle.used_by_phase == {"nes": n}
    assert sum(len(s) for s in model.seen) == n and len(e.answer) == n and e.values.shape == (n,)
    assert torch.count_nonzero(e.grad[~MASK]) == 0 and e.grad.dtype == torch.float32
    # a budget one short is refused before anything is drawn or queried
    short = Oracle(Recorder(), budget=n - 1)
    g = gen(3)
    state = g.get_state()
    with pytest.raises(BudgetExhausted):
        est_.estimate(short, interior_video(), MASK, untargeted_objective(0), g)
    assert short.used == 0 and torch.equal(g.get_state(), state)


# ---------------------------------------------------------------------- Sign-OPT
def test_sign_opt_is_registered_and_costs_population_plus_one():
    from sva.blackbox.estimators import SignOPT

    so = build_estimator("sign_opt", population=7, sigma=1e-2)  # any population: no antithetic pairs
    assert ESTIMATORS["sign_opt"] is SignOPT and isinstance(so, SignOPT) and so.name == "sign_opt"
    assert so.queries_per_estimate == 8 and "SignOPT(population=7" in repr(so)
    assert SignOPT().population == 48 and SignOPT().queries_per_estimate == 49
    for bad in ({"population": 0}, {"population": 2.5}, {"sigma": 0.0}, {"sigma": -1.0}):
        with pytest.raises(ValueError):
            SignOPT(**bad)


def test_sign_opt_is_the_mean_of_per_direction_signs():
    """The exact definition: probe 0 is x, probes 1..K are x + σ u_k on the mask, and
    g = 1/K Σ_k sign(f_k − f_0) u_k, with u_k recovered from the queried probes."""
    model, x, _ = _linear_setup()
    oracle = Oracle(model, budget=1000, batch_size=5)
    k, sigma = 9, 1e-2
    e = build_estimator("sign_opt", population=k, sigma=sigma).estimate(oracle, x, MASK, untargeted_objective(0),
                                                                       gen())
    seen = torch.cat(model.seen)
    assert seen.shape == (k + 1, T, 3, H, W) and torch.equal(seen[0], x)  # f(x), in the same call
    assert torch.equal(seen[1:, ~MASK], x[None, ~MASK].expand(k, *x[~MASK].shape))  # off the mask: clean
    for i in (0, 4, k):
        assert torch.equal(e.probe(i), seen[i])
    u = (seen[1:, MASK].double() - x[MASK].double()) / sigma  # interior video: no clamping
    assert 0.5 < float(u.std()) < 1.5  # Gaussian, not normalised: σ is the per-pixel scale
    signs = torch.sign(e.values[1:] - e.values[0])
    assert bool((signs != 0).all())
    expected = (signs[:, None, None, None, None] * u).sum(0) / k
    torch.testing.assert_close(e.grad[MASK].double(), expected, rtol=0, atol=1e-4)
    # every direction weighs ±1/K: ZO-SignSGD would weigh it by its difference instead
    from sva.blackbox.estimators import sign_opt_gradient

    dirs = torch.randn(3, 2, 5, generator=gen(1))
    vals = torch.tensor([0.0, 1e-30, -1e6, 0.0], dtype=torch.float64)  # tiny win, huge loss, tie
    torch.testing.assert_close(sign_opt_gradient(vals, dirs), (dirs[0] - dirs[1]) / 3)
    with pytest.raises(ValueError, match=r"\(4,\) for 3 directions"):
        sign_opt_gradient(vals[:3], dirs)


def test_sign_opt_recovers_the_gradient_direction_and_improves_with_k():
    """Linear objective (through a monotone link): the estimate points along the true
    gradient restricted to the mask, ~ sqrt(2/π) ∇f/‖∇f‖ for large K, better as K grows."""
    model, x, true_grad = _linear_setup()
    oracle = Oracle(model, budget=10**6, batch_size=2048)
    t = true_grad[MASK]

    def mean_cosine(k: int) -> float:
        so = build_estimator("sign_opt", population=k, sigma=1e-3)
        return sum(cosine(so.estimate(oracle, x, MASK, untargeted_objective(0), gen(s)).grad[MASK], t)
                   for s in range(5)) / 5

    c4, c32, c256 = mean_cosine(4), mean_cosine(32), mean_cosine(256)
    assert 0 < c4 < c32 < c256 and c256 > 0.75
    big = build_estimator("sign_opt", population=4000, sigma=1e-3).estimate(oracle, x, MASK,
                                                                            untargeted_objective(0), gen())
    assert cosine(big.grad[MASK], t) > 0.95 and float(big.grad[~MASK].abs().max()) == 0.0
    along = float(big.grad[MASK].flatten().double() @ (t / t.norm()).flatten().double())
    assert abs(along - math.sqrt(2 / math.pi)) < 0.05
    agree = (torch.sign(big.grad[MASK]) == torch.sign(t)).double().mean()  # what the FGSM step uses
    assert agree > 0.85


def test_sign_opt_is_deterministic_and_ties_give_zero():
    model, x, _ = _linear_setup()
    oracle = Oracle(model, budget=10**4)
    a = build_estimator("sign_opt", population=12).estimate(oracle, x, MASK, untargeted_objective(0), gen(7)).grad
    b = build_estimator("sign_opt", population=12).estimate(oracle, x, MASK, untargeted_objective(0), gen(7)).grad
    c = build_estimator("sign_opt", population=12).estimate(oracle, x, MASK, untargeted_objective(0), gen(8)).grad
    assert torch.equal(a, b) and not torch.equal(a, c)

    def flat(answer: Answer) -> torch.Tensor:  # an objective that cannot tell the probes apart
        return torch.zeros(len(answer), dtype=torch.float64)

    e = build_estimator("sign_opt", population=12).estimate(oracle, x, MASK, flat, gen())
    assert float(e.grad.abs().max()) == 0.0  # no direction carries information: no step


def test_sign_opt_probes_are_clamped_to_valid_videos():
    model, _, _ = _linear_setup()
    x = interior_video()
    x[0, 0] = 0.0
    x[0, 1] = 1.0
    oracle = Oracle(model, budget=10**4, batch_size=512)  # the oracle refuses out-of-range videos
    build_estimator("sign_opt", population=200, sigma=1e-2).estimate(oracle, x, MASK, untargeted_objective(0), gen())
    probes = torch.cat(model.seen)
    assert float(probes.min()) >= 0.0 and float(probes.max()) <= 1.0
    assert bool((probes[:, 0, 0] == 0.0).any()) and bool((probes[:, 0, 1] == 1.0).any())


def test_sign_opt_uses_comparisons_only_unlike_zo_signsgd():
    """Sign-OPT averages per-direction signs: any increasing transform of the objective
    gives the identical estimate. ZO-SignSGD takes the sign of the averaged
    differences, so the same transform changes which directions dominate."""
    model, x, _ = _linear_setup()
    oracle = Oracle(model, budget=10**4, batch_size=64)
    base = untargeted_objective(0)

    def stretched(answer: Answer) -> torch.Tensor:  # increasing, wildly non-linear
        v = base(answer)
        return torch.sinh(1e3 * (v - v[0])) + 5.0

    for name, same in (("sign_opt", True), ("zo_signsgd", False)):
        a = build_estimator(name, population=16, sigma=1e-2).estimate(oracle, x, MASK, base, gen(4)).grad
        b = build_estimator(name, population=16, sigma=1e-2).estimate(oracle, x, MASK, stretched, gen(4)).grad
        assert torch.equal(torch.sign(a), torch.sign(b)) == same, name
