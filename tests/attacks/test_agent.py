"""The frame-selection agent and its REINFORCE update."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sva.attacks.rl.agent import FrameAgent, Reinforce, action_log_prob, sample_actions

T = 8



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def feats(seed: int = 0, t: int = T) -> torch.Tensor:
    return torch.randn(t, 512, generator=gen(seed))


def test_shapes_and_range():
    agent = FrameAgent(seed=0)
    p = agent(feats())
    assert p.shape == (T,) and p.dtype == torch.float32
    assert bool(((p > 0) & (p < 1)).all())
    pb = agent(torch.stack([feats(0), feats(1)]))
    assert pb.shape == (2, T)
    torch.testing.assert_close(pb[0], p)
    assert agent.lstm.hidden_size == 128 and agent.lstm.bidirectional and agent.lstm.batch_first
    assert agent.fc.in_features == 256 and agent.fc.out_features == 1
    with pytest.raises(ValueError):
        agent(torch.randn(T, 100))


def test_init_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = FrameAgent(seed=3), FrameAgent(seed=3), FrameAgent(seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.fc.weight, c.fc.weight)
    k = 1 / math.sqrt(128)
    assert all(float(w.detach().abs().max()) <= k for w in a.lstm.parameters())


def test_sample_is_never_empty_and_deterministic():
    p = torch.full((T,), 1e-30)
    g = gen(0)
    for _ in range(50):
        a = sample_actions(p, g)
        assert a.dtype == torch.bool and a.shape == (T,) and int(a.sum()) >= 1
    assert int(sample_actions(torch.zeros(T), g).sum()) >= 1  # even all-zero p
    pr = torch.rand(T, generator=gen(9))
    s1 = [sample_actions(pr, gen(5)) for _ in range(3)]
    s2 = [sample_actions(pr, gen(5)) for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(s1, s2, strict=True))
    assert torch.equal(sample_actions(torch.ones(T), g), torch.ones(T, dtype=torch.bool))


def all_nonempty(t: int) -> torch.Tensor:
    return torch.tensor([bits for bits in itertools.product([False, True], repeat=t) if any(bits)])


def test_log_prob_is_a_normalised_distribution_over_nonempty_masks():
    for p in (torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.9, 0.5, 0.01]), torch.tensor([1e-6, 1e-6, 1e-6])):
        probs = torch.exp(action_log_prob(p, all_nonempty(3)))
        assert float(probs.sum()) == pytest.approx(1.0, abs=1e-9)
    # scalar for a single action; equals the plain Bernoulli sum + the normaliser
    p = torch.tensor([0.4, 0.7], dtype=torch.float64)
    lp = action_log_prob(p, torch.tensor([True, False]))
    assert lp.dim() == 0
    assert float(lp) == pytest.approx(math.log(0.4) + math.log(0.3) - math.log(1 - 0.6 * 0.3), abs=1e-12)
    with pytest.raises(ValueError, match="empty"):
        action_log_prob(p, torch.tensor([False, False]))


def test_sampler_matches_log_prob():
    p = torch.tensor([0.1, 0.2, 0.15])  # P(empty) = 0.61: the conditional branch is exercised
    g = gen(1)
    n = 20000
    counts: dict[tuple[bool, ...], int] = {}
    for _ in range(n):
        key = tuple(sample_actions(p, g).tolist())
        counts[key] = counts.get(key, 0) + 1
    acts = all_nonempty(3)
    expected = torch.exp(action_log_prob(p, acts))
    for a, e in zip(acts, expected, strict=True):
        freq = counts.get(tuple(a.tolist()), 0) / n
        assert abs(freq - float(e)) < 4 * math.sqrt(float(e) * (1 - float(e)) / n) + 1e-3


def test_log_prob_saturated_probabilities_are_finite_with_finite_grads():
    z = torch.tensor([40.0, -40.0, 0.0, 200.0], requires_grad=True)
    p = torch.sigmoid(z)  # contains exactly 1.0 in float32
    lp = action_log_prob(p, torch.tensor([True, False, True, True]))
    lp.backward()
    assert torch.isfinite(lp) and bool(torch.isfinite(z.grad).all())


def _train(reward_fn, *, updates: int = 50, seed: int = 0, lr: float = 1e-2):
    agent = FrameAgent(seed=seed)
    algo = Reinforce(agent, lr=lr)
    f = feats(seed)
    g = gen(seed + 100)
    p0 = agent(f).detach()
    for _ in range(updates):
        with torch.no_grad():
            p = agent(f)
        episodes = []
        for _ in range(5):
            a = sample_actions(p, g)
            episodes.append((a, reward_fn(a)))
        algo.update(f, episodes)
    return agent, algo, p0, agent(f).detach()


def test_reward_moves_the_policy():
    _, _, p0, p1 = _train(lambda a: 1.0 if a[0] else -1.0)
    assert float(p1[0]) > float(p0[0]) + 0.3 and float(p1[0]) > 0.9
    _, _, p0, p1 = _train(lambda a: -1.0 if a[0] else 1.0)
    assert float(p1[0]) < float(p0[0]) - 0.3


def test_gradients_reach_the_lstm():
    agent = FrameAgent(seed=0)
    algo = Reinforce(agent, lr=1e-3)
    before = {n: q.detach().clone() for n, q in agent.named_parameters()}
    a1, a2 = torch.zeros(T, dtype=torch.bool), torch.zeros(T, dtype=torch.bool)
    a1[:3], a2[1] = True, True
    out = algo.update(feats(), [(a1, 1.0), (a2, -1.0)])
    for name, q in agent.named_parameters():
        assert q.grad is not None and float(q.grad.abs().sum()) > 0, name
        assert not torch.equal(q, before[name]), name
    assert out["grad_norm"] > 0 and out["baseline"] == 0.0


def test_baseline_policy():
    agent = FrameAgent(seed=0)
    algo = Reinforce(agent, lr=1e-3)
    a = torch.ones(T, dtype=torch.bool)
    assert algo.baseline is None
    before = [q.detach().clone() for q in agent.parameters()]
    out = algo.update(feats(), [(a, 2.0), (a, 2.0)])  # first epoch: b = mean -> zero advantage
    assert out["baseline"] == 2.0 and out["loss"] == 0.0 and algo.baseline == 2.0
    assert all(torch.equal(x, y) for x, y in zip(before, agent.parameters(), strict=True))  # no step
    out = algo.update(feats(), [(a, 4.0), (a, 0.0), (a, 5.0)])  # mean 3
    assert out["baseline"] == 2.0 and algo.baseline == pytest.approx(0.9 * 2.0 + 0.1 * 3.0)
    assert out["baseline_next"] == pytest.approx(2.1) and out["reward_mean"] == pytest.approx(3.0)
    # loss = -(1/N) sum (R - b) log pi(a)
    p = agent(feats()).detach()
    algo2 = Reinforce(FrameAgent(seed=0), lr=0.0)
    algo2.baseline = 1.0
    p2 = algo2.agent(feats()).detach()
    lp = float(action_log_prob(p2, a))
    out = algo2.update(feats(), [(a, 3.0), (a, 0.0)])
    assert out["loss"] == pytest.approx(-((3.0 - 1.0) * lp + (0.0 - 1.0) * lp) / 2, rel=1e-9)
    assert p.shape == (T,)
    with pytest.raises(ValueError):
        algo.update(feats(), [])
    with pytest.raises(ValueError):
        algo.update(feats(), [(a, float("nan"))])


def test_training_is_deterministic():
    def reward(a):
        return float(a[:3].sum()) - 0.5 * float(a[3:].sum())

    a1, r1, _, p1 = _train(reward, updates=5)
    a2, r2, _, p2 = _train(reward, updates=5)
    assert torch.equal(p1, p2) and r1.baseline == r2.baseline
    for x, y in zip(a1.parameters(), a2.parameters(), strict=True):
        assert torch.equal(x, y)


def test_state_dict_roundtrip():
    _, algo, _, _ = _train(lambda a: float(a[0]), updates=3)
    fresh = Reinforce(FrameAgent(seed=99), lr=1e-2)
    fresh.load_state_dict(algo.state_dict())
    assert fresh.baseline == algo.baseline and fresh.updates == 3
    torch.testing.assert_close(fresh.agent(feats()), algo.agent(feats()))


def test_default_learning_rate_is_the_papers():
    algo = Reinforce(FrameAgent(seed=0))
    assert algo.optimizer.param_groups[0]["lr"] == 1e-5


def test_the_first_update_is_a_sign_step_blind_to_the_rewards_scale_and_offset():
    """Why reward-weight arms of a 2-epoch run coincide (docs/attacks.md, "How many
    agent updates"): the first update's baseline is its own mean reward and Adam's first
    step is ``lr * g / (|g| + eps)``, i.e. ``lr * sign(g)`` wherever ``|g| >> eps``.
    Rewards ``c * R + d`` (c > 0) therefore give the agent that ``R`` gives, although the
    step itself moves the policy a lot; a second update does not share this blindness."""
    masks = [torch.tensor(m, dtype=torch.bool) for m in
             ([1, 0, 1, 0, 0, 1, 0, 0], [0, 1, 1, 0, 1, 0, 0, 1], [1, 1, 0, 0, 0, 0, 1, 0])]
    rewards = [0.7, -1.0, 0.2]
    lr = 1e-3

    def train(*epochs: list[float]) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        agent = FrameAgent(seed=3)
        p0, before = agent(feats()).detach(), [q.detach().clone() for q in agent.parameters()]
        algo = Reinforce(agent, lr=lr)
        for r in epochs:
            algo.update(feats(), list(zip(masks, r, strict=True)))
        return p0, agent(feats()).detach(), before, [q.detach().clone() for q in agent.parameters()]

    p0, p1, before, after = train(rewards)
    assert float((p1 - p0).abs().max()) > 0.05  # one step at lr 1e-3 moves p visibly
    for scale, offset in ((5.0, 0.0), (0.2, 3.0), (1.7, -2.5)):
        q1 = train([scale * r + offset for r in rewards])[1]
        assert float((q1 - p1).abs().max()) < 1e-4
    # most weights moved by lr, whatever their gradient's size
    steps = torch.cat([(a - b).flatten() for a, b in zip(after, before, strict=True)]).abs() / lr
    assert float(steps.median()) == pytest.approx(1.0, abs=0.01)
    # a second update with another mix of the same kind of rewards gives another agent
    a2, b2 = train(rewards, rewards)[1], train(rewards, [0.7, 0.9, -0.4])[1]
    assert float((a2 - b2).abs().max()) > 0.05
