"""Videos in flight: several oracles' queries merged into deterministic rounds."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from sva.attacks import attack_classes
from sva.attacks.base import AttackTask
from sva.blackbox.oracle import BudgetExhausted, Oracle
from sva.blackbox.rounds import VideoRounds, lanes_for, run_side_by_side
from sva.pipeline.attack_job import build_method
from sva.pipeline.config import load_config, validate_config
from toys import CountingVictim, LinearVictim


class RowwiseLinear(LinearVictim):
    """LinearVictim computed row by row (elementwise product and sum): a row's logits do
    not depend on the rows it shares a batch with, bit for bit (a matmul's do)."""

    def forward(self, videos):
        return (videos.flatten(1).unsqueeze(1) * self.w).sum(-1) + self.b


@pytest.fixture
def tiny_attack_cfg(repo):
    data = load_config(repo / ".test" / "config.yaml").model_dump(mode="json")
    data["attacks"].update(methods=["sva", "dense", "opt"], oracle_batch_size=8)
    return validate_config(data, "rounds test config")


def _oracle(model, client, budget=100, mode="score"):
    return Oracle(model, budget, batch_size=4, mode=mode, rounds=client)


def test_answers_and_counts_equal_a_plain_oracle():
    """Each client's answers equal those of its own plain oracle; each oracle counts its
    own queries; the victim sees one round's requests in full batches."""
    victim = CountingVictim(RowwiseLinear())
    g = torch.Generator().manual_seed(0)
    asks = [[torch.rand(n, 8, 3, 8, 8, generator=g) for n in sizes] for sizes in ([3, 1, 5], [2, 2], [1, 1, 1, 1])]
    plain = [[Oracle(victim.inner, 100, batch_size=4)(v) for v in seq] for seq in asks]
    rounds = VideoRounds(victim, 4)
    oracles = {}

    def job(i):
        def run(client):
            oracles[i] = _oracle(victim, client)
            return [oracles[i](v) for v in asks[i]]
        return run

    got = run_side_by_side(rounds, [job(i) for i in range(3)])
    for i in range(3):
        assert oracles[i].used == sum(int(v.shape[0]) for v in asks[i])
        for a, b in zip(got[i], plain[i]):
            assert torch.equal(a.labels, b.labels)
            assert torch.equal(a.log_prob, b.log_prob)
    # round 1: 3+2+1 = 6 rows -> batches of 4 and 2; the victim saw every row once
    assert victim.videos == sum(o.used for o in oracles.values())
    assert victim.forwards[:2] == [4, 2]
    assert rounds.rounds == 4 and rounds.rows == victim.videos
    assert sum(rounds.round_sizes.values()) == 4 and rounds.round_sizes[6] >= 1
    assert sum(size * n for size, n in rounds.round_sizes.items()) == rounds.rows


def test_a_round_waits_for_every_open_client():
    """No forward runs while a client is still computing (the composition of a round
    does not depend on the threads' timing)."""
    victim = CountingVictim(LinearVictim())
    rounds = VideoRounds(victim, 16)
    x = torch.rand(1, 8, 3, 8, 8)

    def slow(client):
        time.sleep(0.3)
        return _oracle(victim, client)(x)

    def fast(client):
        return _oracle(victim, client)(x)

    run_side_by_side(rounds, [fast, slow, fast])
    assert victim.forwards == [3]


class LaneSpy(torch.nn.Module):
    """Records, for every forward, which clients' rows it holds (client ``i`` asks
    videos filled with ``(i + 1) / 10``)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.batches = inner, []

    def forward(self, videos):
        self.batches.append(sorted({round(float(v) * 10) - 1 for v in videos[:, 0, 0, 0, 0]}))
        return self.inner(videos)


def test_lanes_hold_their_own_clients_and_do_not_wait_for_each_other():
    """With two lanes, clients 0, 2 and 1, 3 form separate rounds; a lane whose client
    is still computing does not hold the other lane back; the answers are a plain oracle's."""
    inner = RowwiseLinear()
    spy = LaneSpy(inner)
    rounds = VideoRounds(spy, 4, lanes=2)
    first_of_lane_1 = threading.Event()

    def job(i):
        def run(client):
            oracle = _oracle(spy, client)
            x = torch.full((3, 8, 3, 8, 8), (i + 1) / 10)
            if i % 2:  # lane 1 starts late: lane 0 runs its rounds meanwhile
                first_of_lane_1.wait(timeout=10)
            answers = [oracle(x) for _ in range(3)]
            if i == 2:
                first_of_lane_1.set()
            return oracle.used, answers
        return run

    got = run_side_by_side(rounds, [job(i) for i in range(4)])
    assert [used for used, _ in got] == [9, 9, 9, 9]
    assert all(set(b) <= {0, 2} or set(b) <= {1, 3} for b in spy.batches), spy.batches
    lanes = [0 if set(b) <= {0, 2} else 1 for b in spy.batches]
    assert lanes == sorted(lanes)  # lane 0 finished all its rounds before lane 1 began
    assert rounds.rounds == 6 and rounds.rows == 36
    for i, (_, answers) in enumerate(got):
        plain = Oracle(inner, 100, batch_size=4)(torch.full((3, 8, 3, 8, 8), (i + 1) / 10))
        assert all(torch.equal(a.labels, plain.labels) and torch.equal(a.log_prob, plain.log_prob)
                   for a in answers)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_two_lanes_on_cuda_answer_as_plain_oracles():
    """On a GPU (two lanes, queued forwards, the range read after them) every client
    gets its plain oracle's labels and counts its own queries."""
    inner = RowwiseLinear().to("cuda")
    rounds = VideoRounds(inner, 4, lanes=lanes_for("cuda", 4))
    g = torch.Generator().manual_seed(1)
    asks = [[torch.rand(n, 8, 3, 8, 8, generator=g).cuda() for n in (3, 5, 1)] for _ in range(4)]

    def job(i):
        def run(client):
            oracle = _oracle(inner, client)
            answers = [oracle(v) for v in asks[i]]
            with pytest.raises(ValueError, match=r"\[0, 1\]"):
                oracle(asks[i][0] + 2)
            return oracle.used, answers
        return run

    got = run_side_by_side(rounds, [job(i) for i in range(4)])
    assert rounds.streams is not None and len(rounds.streams) == 2
    for i, (used, answers) in enumerate(got):
        assert used == 9
        for a, v in zip(answers, asks[i]):
            plain = Oracle(inner, 100, batch_size=4)(v)
            assert torch.equal(a.labels, plain.labels)
            assert torch.allclose(a.log_prob, plain.log_prob, rtol=0, atol=1e-6)


def test_lanes_for_a_device():
    assert lanes_for("cpu", 6) == 1 and lanes_for("cuda", 1) == 1 and lanes_for("cuda:0", 3) == 2
    with pytest.raises(ValueError, match="lanes"):
        VideoRounds(LinearVictim(), 4, lanes=0)


def test_budget_stays_per_oracle():
    victim = LinearVictim()
    rounds = VideoRounds(victim, 4)

    def job(client):
        o = _oracle(victim, client, budget=3)
        o(torch.rand(2, 8, 3, 8, 8))
        with pytest.raises(BudgetExhausted):
            o(torch.rand(2, 8, 3, 8, 8))
        return o.used

    assert run_side_by_side(rounds, [job, job]) == [2, 2]


def test_an_error_in_one_job_lets_the_others_finish_then_raises():
    victim = LinearVictim()
    rounds = VideoRounds(victim, 4)
    finished = []

    def bad(client):
        _oracle(victim, client)(torch.rand(1, 8, 3, 8, 8))
        raise ValueError("boom")

    def good(client):
        o = _oracle(victim, client)
        for _ in range(5):
            o(torch.rand(1, 8, 3, 8, 8))
        return o.used

    with pytest.raises(ValueError, match="boom"):
        run_side_by_side(rounds, [good, bad, good], on_done=lambda i, r: finished.append((i, r)))
    assert sorted(finished) == [(0, 5), (2, 5)]
    assert threading.active_count() < 10


def test_a_model_error_reaches_every_waiting_client():
    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("victim broke")

    rounds = VideoRounds(Broken(), 4)
    model = LinearVictim()

    def job(client):
        return _oracle(model, client)(torch.rand(1, 8, 3, 8, 8))

    with pytest.raises(RuntimeError, match="victim broke"):
        run_side_by_side(rounds, [job, job])


@pytest.mark.parametrize("method", ["opt", "dense"])
def test_attacks_side_by_side_match_their_runs_alone(method, tiny_attack_cfg):
    """On a victim whose rows do not depend on their batch, k videos attacked side by
    side give exactly the records each gets alone, with fuller batches."""
    cls = attack_classes()[method]
    victim = CountingVictim(RowwiseLinear(shape=(8, 3, 8, 8), classes=4, seed=1))
    g = torch.Generator().manual_seed(3)
    videos = 0.2 + 0.6 * torch.rand(3, 8, 3, 8, 8, generator=g)
    with torch.no_grad():
        labels = victim.inner(videos).argmax(1).tolist()
    attack = build_method(tiny_attack_cfg.attacks, method, "untargeted")
    budget = 1500

    def task(i):
        return AttackTask(videos[i], labels[i], features=torch.zeros(8, 512), seed=i, seed_keys=("rounds",))

    alone = [attack(Oracle(victim, budget, batch_size=8, mode=cls.oracle_mode), task(i)) for i in range(3)]
    fill_alone = sum(victim.forwards) / len(victim.forwards)
    victim.forwards.clear()
    rounds = VideoRounds(victim, 8)
    together = run_side_by_side(rounds, [
        lambda c, i=i: attack(Oracle(victim, budget, batch_size=8, mode=cls.oracle_mode, rounds=c), task(i))
        for i in range(3)])
    for a, b in zip(alone, together):
        assert a.queries == b.queries and a.success == b.success
        assert a.queries_by_phase == b.queries_by_phase
        assert torch.equal(a.x_adv, b.x_adv)
    assert sum(victim.forwards) == sum(o.queries for o in together)
    assert sum(victim.forwards) / len(victim.forwards) > fill_alone  # merged: fuller batches than alone
