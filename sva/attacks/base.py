"""The shape every attack has: a task in, an outcome out, through an oracle — and the
registry that makes a new method one file.

A method is a subclass of :class:`Attack` decorated with :func:`register_attack`,
anywhere under ``sva/attacks/``: the registry imports every module of the package the
first time it is asked, so the method appears in the config's allowed ``methods``, the
Snakemake wildcards, ``sva methods`` and the conformance test
(``tests/attacks/test_conformance.py``) without touching another file.

Each method declares:

* ``name``: its config and record name;
* ``oracle_mode``: ``score`` (top-1 label and its probability) or ``label`` (top-1
  label only). The pipeline builds the oracle in that mode, so a label-only method can
  never see a probability;
* ``modes``: the attack modes it supports;
* ``Settings``: its own config block (``attacks.<name>``), a strict pydantic model
  whose fields carry defaults and descriptions;
* ``depends_on`` (optional): methods whose record of the same video it reads, through
  :meth:`Attack.hints_from`, into ``task.hints`` (e.g. random frame selection takes the
  size of SVA's mask). The pipeline then attacks after them (a DAG edge) and the
  record's key covers the hints;
* :meth:`Attack.reads_tables` (optional): comparison tables the method's settings
  choose from (SVAL's sparsity from Table 2); the pipeline builds them first (a DAG
  edge) and passes what :meth:`Attack.hints_from_tables` takes from them in
  ``task.hints``;
* ``runs_full_schedule`` (optional): the method runs every step of a fixed schedule
  whatever it finds (SVA trains its agent for every epoch), where the others stop at
  their first success; its jobs are then the ones to expect longest, and the workflow
  starts them first (a Snakemake ``priority``), so that the short jobs fill the cores
  at the end of a run instead of one long job running alone;
* :meth:`Attack.offline_fraction` (optional): a method that learns offline (SVAL)
  names the seeded share of the attack set it trains on; the pipeline then attacks only
  the other videos and hands it the training videos' features
  (``task.train_features``, never the victim), and the record's key covers them.

See ``docs/design.md`` ("Attacks") for the contract the conformance test checks.
"""

from __future__ import annotations

import abc
import importlib
import pkgutil
import time
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor

from sva.attacks.settings import MODES, AttackContext
from sva.blackbox.oracle import Oracle
from sva.utils.seeding import derive_seed, torch_generator
from sva.utils.settings import StrictModel

OracleMode = Literal["score", "label"]


@dataclass(frozen=True, eq=False)
class AttackTask:
    """One video to attack.

    ``x``: float32 ``(T, 3, H, W)`` in [0, 1]; ``label``: its true class; ``target``: the
    target class (targeted mode) or ``None``; ``features``: float32 ``(T, D)`` per-frame
    features (SVA's agent input) or ``None``; ``candidates``: float32
    ``(K, T, 3, H, W)`` train videos of the target class (the targeted start) or ``None``.

    ``seed`` and ``seed_keys`` (the job's identity: dataset, victim, method, mode,
    video) root every random choice: a method draws its streams with
    :meth:`generator` and :meth:`derive_seed`, so the same config gives the same record.
    ``hints``: what the method's :meth:`Attack.hints_from` took from the records of
    the methods it depends on (empty for most methods). ``train_features``: float32
    ``(N, T, D)`` features of the attacker's own training videos, for a method that
    learns offline (:meth:`Attack.offline_fraction`), else ``None``.
    """

    x: Tensor
    label: int
    target: int | None = None
    features: Tensor | None = None
    candidates: Tensor | None = None
    seed: int = 0
    seed_keys: tuple = ()
    hints: dict = field(default_factory=dict)
    train_features: Tensor | None = None

    @property
    def mode(self) -> str:
        return "untargeted" if self.target is None else "targeted"

    @property
    def num_frames(self) -> int:
        return int(self.x.shape[0])

    def generator(self, stream: str) -> torch.Generator:
        """A torch generator on ``x``'s device for the named random stream."""
        return torch_generator(self.seed, stream, *self.seed_keys, device=self.x.device)

    def derive_seed(self, stream: str) -> int:
        """A 64-bit seed for the named random stream."""
        return derive_seed(self.seed, stream, *self.seed_keys)


@dataclass
class AttackOutcome:
    """The result of attacking one video (what the record is built from).

    ``x_adv``: float32 ``(T, 3, H, W)``, the returned video (the clean video when the
    attack failed); ``mask``: bool ``(T,)``, the frames it may differ on; ``queries``:
    every oracle answer for this video, in every phase; ``queries_by_phase``: the same
    split by phase; ``best_episode`` / ``best_episode_queries``: the episode that made
    ``x_adv`` and its own queries; ``clean_label``: the oracle's label of the clean
    video; ``episodes`` / ``epochs``: per-episode and per-epoch logs; ``extra``: fields a
    method adds to the record.

    ``fallback``: float32 ``(T, 3, H, W)`` in [0, 1] or ``None``. The least-distorted
    adversarial video the attack found when none was within ε in L∞ — so the attack
    failed under the L∞ criterion and ``x_adv`` is the clean video —, for the
    evaluator's mean-perturbation reading (MAP ≤ ε, ``docs/attacks.md``); ``None``
    otherwise (a success, or nothing adversarial found, or a method that never leaves
    the ε-ball). When it is set, ``mask`` covers the frames it differs on. Only
    ``x_adv`` is the attack's answer: ``success`` and every L∞ metric ignore the fallback.
    """

    x_adv: Tensor
    success: bool
    mask: Tensor
    queries: int
    queries_by_phase: dict[str, int]
    best_episode: int | None
    best_episode_queries: int | None
    clean_label: int
    episodes: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    fallback: Tensor | None = None


class NoSettings(StrictModel):
    """A method without settings of its own (its block may be omitted or empty)."""


class Attack(abc.ABC):
    """A black-box video attack: ``attack(oracle, task) -> AttackOutcome``.

    Subclasses set the class attributes below and write :meth:`run`. The oracle is the
    only way to the victim; it counts every query and refuses any beyond its budget.
    """

    name: ClassVar[str]
    oracle_mode: ClassVar[OracleMode] = "score"
    modes: ClassVar[tuple[str, ...]] = MODES
    Settings: ClassVar[type[StrictModel]] = NoSettings
    depends_on: ClassVar[tuple[str, ...]] = ()
    runs_full_schedule: ClassVar[bool] = False

    def __init__(self, context: AttackContext, settings: StrictModel | None = None):
        if context.mode not in self.modes:
            raise ValueError(f"attack {self.name!r} does not support mode {context.mode!r} "
                             f"(supported: {', '.join(self.modes)})")
        self.context = context
        self.settings = settings if settings is not None else self.Settings()

    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def settings_problems(cls, settings: StrictModel, mode_cfgs: dict) -> list[str]:
        """Config problems this method's settings have against the mode blocks
        (``mode name → block``): messages naming the key, empty when fine."""
        return []

    @classmethod
    def hints_from(cls, records: dict[str, dict]) -> dict:
        """``task.hints`` from the records of the same video by the methods in
        ``depends_on`` (method name → record). JSON-able; part of the record's key."""
        return {}

    @classmethod
    def reads_tables(cls, settings: StrictModel, mode: str) -> list[str]:
        """Comparison tables (``tables.<name>``) this method's settings choose from in
        ``mode`` (e.g. SVAL's sparsity from Table 2): the pipeline builds them first (a
        DAG edge) and passes them to :meth:`hints_from_tables`. Default: none."""
        return []

    @classmethod
    def hints_from_tables(cls, settings: StrictModel, mode: str, tables: dict, row_settings: dict,
                          dataset: str, victim: str) -> dict:
        """``task.hints`` from the tables of :meth:`reads_tables` (name → DataFrame) for
        one (dataset, victim); ``row_settings``: each named row method's settings block.
        JSON-able; part of the record's key."""
        return {}

    @classmethod
    def offline_fraction(cls, settings: StrictModel) -> float | None:
        """The share of the attack set this method trains on before attacking (it then
        attacks only the rest), or ``None`` (the default: nothing learnt offline)."""
        return None

    def oracle_budget(self) -> int:
        """Queries the oracle will answer for one video (default: the mode's budget)."""
        return self.context.budget

    def __call__(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        """Attack ``task`` through ``oracle``; checks the oracle's mode and the task's."""
        if oracle.mode != self.oracle_mode:
            raise ValueError(f"attack {self.name!r} needs an oracle in {self.oracle_mode!r} mode, got {oracle.mode!r}")
        if task.mode != self.context.mode:
            raise ValueError(f"attack {self.name!r} was built for {self.context.mode} attacks, got a {task.mode} task")
        t0 = time.time()
        outcome = self.run(oracle, task)
        outcome.wall_seconds = time.time() - t0
        return outcome

    @abc.abstractmethod
    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        """The method itself: query ``oracle`` about ``task.x`` and return the outcome."""


def first_look(oracle: Oracle, x: Tensor) -> int:
    """The oracle's label of the clean video ``x`` (one query, phase ``init``)."""
    with oracle.phase("init"):
        return int(oracle.query(x).labels[0])


# -- the registry -----------------------------------------------------------------------------

_REGISTRY: dict[str, type[Attack]] = {}
_DISCOVERED = False
#: names a method cannot take: the keys of the ``attacks`` config block
RESERVED = frozenset({"methods", "modes", "eps", "budget_scope", "oracle_batch_size", "shards",
                      "videos_in_flight", *MODES})


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator: add ``cls`` to the registry under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise TypeError(f"{cls.__qualname__}: name must be a lower-case identifier, got {name!r}")
    if name in RESERVED:
        raise TypeError(f"{cls.__qualname__}: name {name!r} is a key of the attacks config block")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise TypeError(f"attack name {name!r} is taken by {_REGISTRY[name].__module__}.{_REGISTRY[name].__qualname__}")
    if cls.oracle_mode not in ("score", "label"):
        raise TypeError(f"{cls.__qualname__}: oracle_mode must be 'score' or 'label', got {cls.oracle_mode!r}")
    if not cls.modes or not set(cls.modes) <= set(MODES):
        raise TypeError(f"{cls.__qualname__}: modes must be a non-empty subset of {MODES}, got {cls.modes!r}")
    _REGISTRY[name] = cls
    return cls


def _discover() -> None:
    """Import every module under ``sva/attacks/`` once, so every method registers."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import sva.attacks as package

    for info in pkgutil.walk_packages(package.__path__, prefix="sva.attacks."):
        importlib.import_module(info.name)
    _DISCOVERED = True


def attack_classes() -> dict[str, type[Attack]]:
    """Every registered method, by name (sorted)."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_attack(name: str) -> type[Attack]:
    """The registered method ``name``; ``ValueError`` naming the known ones otherwise."""
    classes = attack_classes()
    if name not in classes:
        raise ValueError(f"unknown attack method {name!r}; registered: {', '.join(classes)}")
    return classes[name]


def build_attack(name: str, context: AttackContext, settings: StrictModel | None = None) -> Attack:
    """An instance of method ``name`` for ``context`` with its settings block."""
    return get_attack(name)(context, settings)
