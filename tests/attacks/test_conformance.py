"""The contract every registered attack meets, checked on toy victims in both modes.

A new method gets these checks by registering (``sva/attacks/base.py``); nothing here
names a method. A method with a ``geometry`` setting (the hard-label baselines,
``docs/baselines.md``) also runs through the contract with ``geometry: l2``. The attack
runs the way the pipeline runs it (:func:`sva.pipeline.attack_job.attack_video`: built
from its config blocks, handed an oracle in the mode it declares, its result confirmed
by the evaluator).
"""

from __future__ import annotations

import pytest
import torch

import sva.pipeline.attack_job as job
from sva.attacks import attack_classes
from sva.blackbox.oracle import Oracle
from sva.pipeline.config import load_config, validate_config
import toys
from toys import CountingVictim, LinearVictim

from conftest import REPO

T = 8
BUDGETS = {"untargeted": 1000, "targeted": 1200}


class SpyOracle(toys.SpyOracle):
    """The toys' spy oracle, remembering every instance made (the pipeline makes one)."""

    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        SpyOracle.made.append(self)


#: settings variants run through the contract: every method's defaults, and the settings
#: a method's block overrides for each further variant it has (:func:`_variants`)
VARIANTS = {"default": {}, "l2": {"geometry": "l2"}}


def _variants(cls) -> list[str]:
    """The variants ``cls`` runs in: ``default``, and ``l2`` when it has a ``geometry`` setting."""
    return ["default"] + (["l2"] if "geometry" in cls.Settings.model_fields else [])


def _config(method: str, variant: str = "default", budgets: dict | None = None):
    data = load_config(REPO / ".test" / "config.yaml").model_dump(mode="json")
    methods = [*attack_classes()[method].depends_on, method]
    data["attacks"].update(methods=methods, modes=["untargeted", "targeted"], eps=0.05, oracle_batch_size=8)
    data["attacks"]["untargeted"]["budget"] = (budgets or BUDGETS)["untargeted"]
    data["attacks"]["targeted"]["budget"] = (budgets or BUDGETS)["targeted"]
    if method == "sva":  # small episodes so several run within the toy budget
        data["attacks"]["sva"].update(epochs=3, episodes=2, untargeted={"episode_queries": 300},
                                      targeted={"episode_queries": 300})
    if method == "sval":  # the schema's S: the tiny config chooses it from a grid the toy has not got
        data["attacks"]["sval"].update(untargeted={"sparsity": 0.5}, targeted={"sparsity": 0.2})
    data["attacks"][method].update(VARIANTS[variant])
    return validate_config(data, "conformance config")


def _case(victim: str, mode: str, device: str = "cpu"):
    """(counted model, video, label, target, target-class candidates) of a toy problem,
    on ``device``: ``frame_zero`` (only frame 0 decides) or ``linear`` (every frame
    matters; the clean video is 0.05 logits from the boundary)."""
    case = toys.frame_zero_case(mode, T) if victim == "frame_zero" else toys.near_boundary_linear_case(mode, T)
    model, x, label, target, candidates = case
    candidates = None if candidates is None else candidates.to(device)
    return CountingVictim(model).to(device), x.to(device), label, target, candidates


def _run(method, mode, victim, monkeypatch, variant="default", budgets=None, device="cpu"):
    cls = attack_classes()[method]
    # a method that reads other methods' records (e.g. random selection: SVA's mask
    # size) gets them from their runs on the same toy, as the pipeline's DAG does
    hints = cls.hints_from({d: _run(d, mode, victim, monkeypatch, device=device)[2] for d in cls.depends_on}) \
        if cls.depends_on else None
    model, x, label, target, candidates = _case(victim, mode, device)
    real_confirm = job.confirm

    def confirm(m, *args):  # the evaluator's own forwards are not the attack's queries
        model.counting = False
        return real_confirm(m, *args)

    monkeypatch.setattr(job, "Oracle", SpyOracle)
    monkeypatch.setattr(job, "confirm", confirm)
    SpyOracle.made.clear()
    feats = torch.randn(T, 512, generator=torch.Generator().manual_seed(3)).to(device)
    cfg = _config(method, variant, budgets)
    # a method that learns offline (SVAL) gets its training videos' features, as the pipeline gives them
    learns = cls.offline_fraction(job.build_method(cfg.attacks, method, mode).settings) is not None
    train = torch.randn(3, T, 512, generator=torch.Generator().manual_seed(4)) if learns else None
    record, outcome = job.attack_video(cfg, method, mode, model, x, label, target, feats, candidates,
                                       ("toy", victim, method, mode, "v0"), torch.device(device), hints,
                                       train_features=train)
    (oracle,) = SpyOracle.made
    return model, x, record, outcome, oracle


CASES = [(m, mode, v, variant) for m, cls in attack_classes().items() for mode in cls.modes
         for v in ("frame_zero", "linear") for variant in _variants(cls)]


@pytest.mark.parametrize("method, mode, victim, variant", CASES)
def test_every_attack_meets_the_contract(method, mode, victim, variant, monkeypatch):
    check_contract(method, mode, victim, variant, monkeypatch, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_attack_meets_the_contract_on_cuda(monkeypatch):
    """The same contract, every case, with the victim, the videos and the attack's
    tensors on the GPU; one test, so that a machine without CUDA reports one skip."""
    failed = []
    for case in CASES:
        try:
            check_contract(*case, monkeypatch, "cuda")
        except Exception as e:  # noqa: BLE001 - collect every failing case, then report them all
            failed.append(f"{case}: {type(e).__name__}: {str(e)[:300]}")
    assert not failed, "\n".join(failed)


def check_contract(method, mode, victim, variant, monkeypatch, device):
    """Run ``method`` on a toy victim on ``device`` and check every clause of the contract."""
    cls = attack_classes()[method]
    model, x, record, outcome, oracle = _run(method, mode, victim, monkeypatch, variant, device=device)
    assert outcome.x_adv.device.type == device
    eps = record["eps"]

    # Q is every video the victim saw for the attack, and never exceeds the budget
    assert model.videos == record["queries"] == oracle.used <= BUDGETS[mode]
    assert sum(record["queries_by_phase"].values()) == record["queries"]

    # the oracle was in the mode the method declares; a label-mode one never answered a score
    assert oracle.mode == cls.oracle_mode
    if cls.oracle_mode == "label":
        assert all(a.log_prob is None for a in oracle.answers)

    # frames outside the returned mask are bit-identical to the clean video
    mask = outcome.mask
    assert mask.dtype == torch.bool and mask.shape == (T,)
    assert torch.equal(outcome.x_adv[~mask], x[~mask])
    assert record["selected_frames"] == mask.nonzero().flatten().tolist()
    assert set(record["perturbed_frames"]) <= set(record["selected_frames"])

    # the evaluator agrees with the success the method claims; success means L∞ ≤ ε
    assert record["attack_claimed_success"] == record["success"]
    if record["success"]:
        assert record["linf"] <= eps + 1e-6
        assert float((outcome.x_adv - x).abs().max()) <= eps + 1e-6
    else:  # the clean video; the mask is empty unless it covers a fallback's frames
        assert torch.equal(outcome.x_adv, x) and (outcome.fallback is not None or not mask.any())
    assert outcome.x_adv.dtype == torch.float32 and 0 <= float(outcome.x_adv.min()) <= float(outcome.x_adv.max()) <= 1

    # a fallback (the closest adversarial video, beyond ε in L∞) only comes with an L∞
    # failure, lies on the mask's frames, is a video, and is what the mean reading judges
    fallback = outcome.fallback
    if fallback is not None:
        assert not record["success"]
        assert fallback.dtype == torch.float32 and fallback.shape == x.shape
        assert torch.equal(fallback[~mask], x[~mask])
        assert 0 <= float(fallback.min()) <= float(fallback.max()) <= 1
        assert float((fallback - x).abs().max()) > eps
        with torch.no_grad():  # and it meets the goal (the victim itself, uncounted)
            model.counting = False
            top = int(model(fallback[None]).argmax(1))
        assert top == record["target"] if mode == "targeted" else top != record["label"]
        assert record["map_mean_reading"] == pytest.approx(255 * float((fallback.double() - x.double()).abs().mean()))
    elif not record["success"]:
        assert record["map_mean_reading"] is None and record["success_mean_reading"] is False
    # every L∞ success is a success under the mean reading (MAP ≤ 255·L∞ ≤ 255·ε)
    assert isinstance(record["success_mean_reading"], bool)
    if record["success"]:
        assert record["success_mean_reading"] and record["map_mean_reading"] == record["map"]
    if victim == "linear" and mode == "untargeted":  # the easiest problem there is
        assert record["success"], f"{method} fails the near-boundary untargeted toy"

    # the trajectory (sva/evaluation/trajectory.py) is what the attacker saw, query by
    # query: recomputed here from every call the oracle answered
    expected, best, used = [], float("inf"), 0
    for _, videos, labels in oracle.calls:
        for i, top in enumerate(labels.tolist()):
            used += 1
            if (top == record["target"]) if mode == "targeted" else (top != record["label"]):
                d = (videos[i].double() - x.double()).abs()
                if float(d.max()) <= eps + 1e-6 and 255 * float(d.mean()) < best:
                    best = 255 * float(d.mean())
                    expected.append([used, best, float((d.flatten(1).amax(1) == 0).double().mean())])
    assert record["trajectory"] == expected
    if record["success"]:  # the returned video (or a closer one) was seen within ε
        assert expected and expected[-1][1] <= record["map"] + 1e-9


@pytest.mark.parametrize("method, mode, variant", sorted({(m, mode, variant) for m, mode, _, variant in CASES}))
def test_the_same_seed_gives_the_same_record(method, mode, variant, monkeypatch):
    first = _run(method, mode, "linear", monkeypatch, variant)[2]
    second = _run(method, mode, "linear", monkeypatch, variant)[2]
    for r in (first, second):
        r.pop("wall_seconds")
    assert first == second


@pytest.mark.parametrize("method, mode, victim", sorted({(m, mode, v) for m, mode, v, _ in CASES}))
def test_a_smaller_budget_sees_the_same_first_queries(method, mode, victim, monkeypatch):
    """The budget curves (sva/evaluation/trajectory.py) read "what a run with budget b
    saw" off one run at the full budget: that holds when a run with budget b asks the
    same first queries, which this checks with b = half of what the full run spent (the
    run may stop a little before b when its next batch does not fit)."""
    full = _run(method, mode, victim, monkeypatch)[2]
    cut = max(full["queries"] // 2, 60)  # 60: the smallest budget the config accepts for one step
    half = _run(method, mode, victim, monkeypatch, budgets={**BUDGETS, mode: cut})[2]
    assert half["queries"] <= cut
    assert half["trajectory"] == [p for p in full["trajectory"] if p[0] <= half["queries"]]


def test_an_attack_refuses_an_oracle_of_the_wrong_mode():
    cfg = _config("sva").attacks
    for name, cls in attack_classes().items():
        attack = job.build_method(cfg, name, cls.modes[0])
        other = "label" if cls.oracle_mode == "score" else "score"
        with pytest.raises(ValueError, match=f"needs an oracle in '{cls.oracle_mode}' mode"):
            attack(Oracle(LinearVictim(), 100, mode=other), job.AttackTask(torch.rand(8, 3, 8, 8), 0))
