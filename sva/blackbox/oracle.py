"""The black box: the only path from an attack to a victim (see ``docs/threat_model.md``).

An :class:`Oracle` wraps any classifier ``model: (B, T, 3, H, W) float in [0, 1] ->
logits (B, C)`` and answers, per video, the top-1 label and (in ``"score"`` mode) the
float64 log-probability of that label -- nothing else. Attacks receive the Oracle,
never the model: no logits, no gradients, no other class's probability.

Accounting
----------
* One query per video in every batch, whatever the batch size, in every phase.
* A call that would take ``used`` past ``budget`` raises :class:`BudgetExhausted`
  *before* anything is evaluated and leaves the count unchanged: the oracle never
  overshoots, and never answers part of a batch.
* The count can be split by phase (``with oracle.phase("nes"): ...``) and
  snapshotted (:meth:`Oracle.snapshot`, subtract two snapshots for a delta).

Why a float64 log-probability: small victims saturate float32 softmax at exactly 1.0
on most clean clips, so every NES probe would see the same number and the gradient
estimate would be exactly zero. The oracle computes the float64 log-softmax of the
top-1 class as ``-log1p(sum_{j != top} exp(l_j - l_top))``, which keeps ``log p`` at
e.g. ``-4e-18`` for a logit margin of 40 (``torch.log_softmax`` in float64 returns
exactly 0 there: it rounds ``log(1 + 4e-18)``), and :func:`log_one_minus` /
:func:`log_odds` turn it into a number with useful resolution.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from sva.blackbox.rounds import RoundClient

__all__ = [
    "LOG_TINY",
    "Answer",
    "BudgetExhausted",
    "Oracle",
    "QueryCount",
    "log_odds",
    "log_one_minus",
]

#: ``log`` of the smallest normal float64 (~ -708.40): :func:`log_one_minus` never goes
#: below it, so ``log(1 - p)`` stays finite when ``1 - p`` underflows (``log p == 0``).
LOG_TINY: float = math.log(torch.finfo(torch.float64).smallest_normal)

_LN_HALF = -math.log(2.0)
DEFAULT_PHASE = "default"


class BudgetExhausted(RuntimeError):
    """The oracle refused a call that would exceed its query budget.

    Nothing was evaluated and the count is unchanged. Attributes: ``used``, ``budget``,
    ``asked`` (videos in the refused call), ``phase``.
    """

    def __init__(self, used: int, budget: int, asked: int, phase: str):
        self.used, self.budget, self.asked, self.phase = used, budget, asked, phase
        super().__init__(
            f"query budget exhausted: {used}/{budget} queries used, {budget - used} left, "
            f"refused a call asking for {asked} (phase {phase!r}); nothing was evaluated"
        )


@dataclass(frozen=True)
class Answer:
    """What the black box says about a batch of ``B`` videos.

    ``labels``: int64 ``(B,)`` CPU, the top-1 class of each video (ties -> lowest index).
    ``log_prob``: float64 ``(B,)`` CPU, ``log P(labels[i] | video i)``, the float64
    log-softmax of the logits at the top-1 class computed as
    ``-log1p(sum_{j != top} exp(l_j - l_top))`` (resolved for logit margins up to ~745,
    where plain ``log_softmax`` rounds to 0 beyond ~37); always ``<= 0``; ``None`` in
    ``"label"`` mode.
    Row ``i`` answers video ``i`` of the query, in order.
    """

    labels: Tensor
    log_prob: Tensor | None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, idx) -> Answer:
        """Rows of the answer (an int keeps a batch dimension of 1)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        lp = None if self.log_prob is None else self.log_prob[idx]
        return Answer(self.labels[idx], lp)

    def require_scores(self) -> Tensor:
        """``log_prob``, or a clear error for a label-only answer."""
        if self.log_prob is None:
            raise ValueError("this answer has no probabilities: the oracle is in 'label' mode")
        return self.log_prob


@dataclass(frozen=True)
class QueryCount:
    """A snapshot of an oracle's count: ``used`` in total and ``by_phase``.

    ``later - earlier`` gives the queries spent in between (per phase too), e.g. the
    queries of one agent episode.
    """

    used: int
    by_phase: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "by_phase", MappingProxyType(dict(self.by_phase)))

    def __sub__(self, other: QueryCount) -> QueryCount:
        phases = set(self.by_phase) | set(other.by_phase)
        diff = {p: self.by_phase.get(p, 0) - other.by_phase.get(p, 0) for p in sorted(phases)}
        return QueryCount(self.used - other.used, {p: n for p, n in diff.items() if n})


def log_one_minus(log_prob: Tensor) -> Tensor:
    """``log(1 - p)`` from ``log p``, accurate over the whole range, never ``-inf``.

    Uses ``log(-expm1(log p))`` for ``p > 1/2`` (where ``1 - p`` would cancel) and
    ``log1p(-exp(log p))`` otherwise. When ``1 - p`` is below the smallest normal
    float64 -- in particular ``log p == 0`` exactly, i.e. float64 softmax saturated --
    the result is clamped to :data:`LOG_TINY` (~ -708.40): a finite value keeps NES
    differences ``f(x+sd) - f(x-sd)`` from becoming ``inf - inf = nan``.
    ``log p > 0`` is clamped to 0 first. Float64 in, float64 out (other dtypes are
    promoted), same shape.
    """
    lp = log_prob.to(torch.float64).clamp(max=0.0)
    near_one = lp > _LN_HALF
    # Evaluate each branch on inputs where it is finite, so neither leaks nan/inf.
    a = torch.where(near_one, lp, torch.full_like(lp, _LN_HALF))
    b = torch.where(near_one, torch.full_like(lp, _LN_HALF), lp)
    out = torch.where(near_one, torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(b)))
    return out.clamp(min=LOG_TINY)


def log_odds(log_prob: Tensor) -> Tensor:
    """``log p - log(1 - p)`` from ``log p`` (float64, stable; see :func:`log_one_minus`).

    Examples: ``log p = -1e-20`` -> ``~46.05``; ``-1e-300`` -> ``~690.78``; ``0`` (p
    saturated at 1 in float64) -> ``-LOG_TINY ~ 708.40``, finite by design;
    ``log(0.5)`` -> 0. ``log p = -inf`` (p = 0) -> ``-inf``, which a top-1 answer never
    gives (its p is at least 1/C).
    """
    lp = log_prob.to(torch.float64).clamp(max=0.0)
    return lp - log_one_minus(lp)


def _top1(logits: Tensor, labels_only: bool = False) -> tuple[Tensor, Tensor | None]:
    """Top-1 labels (int64) and their log-softmax (float64), CPU, from logits ``(B, C)``
    (``labels_only``: the labels and ``None``, for a label-only oracle).

    ``log p_top = -log1p(sum_{j != top} exp(l_j - l_top))``: the same number as
    ``log_softmax(logits.double())[top]`` but without its ``log(1 + s)`` rounding, which
    returns exactly 0 once the margin exceeds ~37 (``s < 2**-53``); this stays
    resolved up to margins of ~745. Float64 on CPU: ``(B, C)`` is tiny, and some
    devices (MPS) lack float64. Ties go to the lowest index.
    """
    if labels_only:  # the same labels: float32 -> float64 is exact and keeps every tie
        return logits.detach().to("cpu").max(dim=-1).indices, None
    z = logits.detach().to("cpu", torch.float64)
    zmax, top = z.max(dim=-1)
    e = torch.exp(z - zmax.unsqueeze(-1))
    e.scatter_(-1, top.unsqueeze(-1), 0.0)
    return top, -torch.log1p(e.sum(dim=-1))


def _check_first(videos: Tensor) -> bool:
    """Whether the range check is read before the forwards (videos on the CPU: nothing
    is evaluated) or after they are queued (on a GPU: the host does not wait for the
    device before launching them, one synchronisation per call instead of two; the
    forwards ran but nothing is answered or counted)."""
    return videos.device.type == "cpu"


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


class Oracle:
    """Query-counted, budget-enforcing black-box access to a video classifier.

    Parameters
    ----------
    model:
        Any ``nn.Module`` mapping ``(B, T, 3, H, W)`` float in [0, 1] to logits
        ``(B, C)``. Put in eval mode here and kept there. Stored under a private
        (name-mangled) attribute: attack code receives the Oracle only and must not
        reach for the model (this is a convention the code makes obvious, not a
        security boundary).
    budget:
        Maximum number of videos this oracle will ever answer (>= 0).
    batch_size:
        Videos per forward pass; a query of any size is evaluated in chunks of this.
    mode:
        ``"score"``: answers the top-1 label and its float64 log-probability.
        ``"label"``: the top-1 label only (hard-label attacks).
    device:
        Where to evaluate; default: the model's parameters' device. Inputs are moved
        there (and cast to the model's floating dtype); answers come back on CPU.
    check_range:
        Refuse (``ValueError``, nothing answered, nothing counted) videos with values
        outside [0, 1] or NaN: a victim's input is a video in pixel space, and the
        perturbation bound is defined there. Costs one min/max pass over the input; for
        videos on a GPU it is read after the forwards are queued (so the device never
        idles waiting for it), for videos on the CPU before anything is evaluated.
    rounds:
        A :class:`~sva.blackbox.rounds.RoundClient`: the forward passes go to a shared
        :class:`~sva.blackbox.rounds.VideoRounds` (several videos' attacks side by side,
        their queries merged into full batches) instead of to ``model`` directly. The
        counting, the budget and the answers' form are this oracle's, as without it.
    observer:
        Called as ``observer(videos, answer, used_before)`` after every answered call,
        with the ``(B, T, 3, H, W)`` videos asked, the :class:`Answer` the attack got and
        the count before the call (so row ``i`` was query ``used_before + i + 1``). It
        belongs to the evaluation side (e.g. :class:`sva.evaluation.trajectory.Trajectory`,
        which records when the attack first *saw* an adversarial video): it sees only
        what the attacker already sees and gives nothing back to the attack. A refused
        call is not observed.
    """

    def __init__(
        self,
        model: nn.Module,
        budget: int,
        *,
        batch_size: int = 16,
        mode: Literal["score", "label"] = "score",
        device: str | torch.device | None = None,
        check_range: bool = True,
        rounds: RoundClient | None = None,
        observer: Callable[[Tensor, Answer, int], None] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if int(budget) != budget or budget < 0:
            raise ValueError(f"budget must be a non-negative int, got {budget!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if mode not in ("score", "label"):
            raise ValueError(f"mode must be 'score' or 'label', got {mode!r}")
        self.__model = model.eval()
        self.__device = torch.device(device) if device is not None else _model_device(model)
        if device is not None:
            model.to(self.__device)
        self.__dtype = _model_dtype(model)
        self._budget = int(budget)
        self._batch_size = int(batch_size)
        self._mode: Literal["score", "label"] = mode
        self._check_range = bool(check_range)
        self.__rounds = rounds
        self._observer = observer
        self._used = 0
        self._by_phase: dict[str, int] = {}
        self._phases: list[str] = [DEFAULT_PHASE]

    # ------------------------------------------------------------------ counting
    @property
    def used(self) -> int:
        """Videos answered so far (all phases)."""
        return self._used

    @property
    def budget(self) -> int:
        return self._budget

    @property
    def remaining(self) -> int:
        return self._budget - self._used

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def used_by_phase(self) -> dict[str, int]:
        """A copy of ``{phase: queries}``; phases with no query are absent."""
        return dict(self._by_phase)

    @property
    def current_phase(self) -> str:
        return self._phases[-1]

    def snapshot(self) -> QueryCount:
        """The count now (immutable); subtract two snapshots for the queries in between."""
        return QueryCount(self._used, self._by_phase)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Oracle]:
        """Count the queries made inside the block under ``name`` (nestable: innermost wins)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"phase name must be a non-empty str, got {name!r}")
        self._phases.append(name)
        try:
            yield self
        finally:
            self._phases.pop()

    # ------------------------------------------------------------------ querying
    def query(self, videos: Tensor, *, phase: str | None = None) -> Answer:
        """Ask the victim about ``videos``.

        ``videos``: float ``(B, T, 3, H, W)`` or one video ``(T, 3, H, W)`` (answered as
        ``B = 1``), values in [0, 1], on any device. Costs ``B`` queries, counted under
        ``phase`` (default: the current :meth:`phase` block, else ``"default"``).
        Raises :class:`BudgetExhausted` when ``used + B > budget`` -- nothing evaluated,
        nothing counted. ``B = 0`` returns an empty answer for free.
        """
        if not isinstance(videos, Tensor):
            raise TypeError(f"videos must be a torch.Tensor, got {type(videos).__name__}")
        if videos.dim() == 4:
            videos = videos.unsqueeze(0)
        if videos.dim() != 5 or videos.shape[2] != 3:
            raise ValueError(f"videos must be (B, T, 3, H, W) or (T, 3, H, W), got {tuple(videos.shape)}")
        if not videos.is_floating_point():
            raise TypeError(f"videos must be float in [0, 1], got {videos.dtype}")
        n = int(videos.shape[0])
        name = phase if phase is not None else self._phases[-1]
        if self._used + n > self._budget:
            raise BudgetExhausted(self._used, self._budget, n, name)
        if n == 0:
            lp = None if self._mode == "label" else torch.empty(0, dtype=torch.float64)
            return Answer(torch.empty(0, dtype=torch.long), lp)
        lohi = torch.aminmax(videos.detach()) if self._check_range else None
        if _check_first(videos):  # nothing evaluated
            self._require_range(lohi)
            lohi = None

        model = self.__model
        if model.training:
            model.eval()
        with torch.inference_mode():
            if self.__rounds is not None:  # evaluated in a shared round with other videos' queries
                logits = self.__rounds.forward(videos.to(self.__device, self.__dtype, non_blocking=True))
            else:
                logits = self._forward(model, videos)
        self._require_range(lohi)
        top, top_lp = _top1(logits, self._mode == "label")  # the one read-back: waits for the forwards
        used_before = self._used
        self._used += n
        self._by_phase[name] = self._by_phase.get(name, 0) + n
        return self._observed(videos, Answer(top, top_lp), used_before)

    def _forward(self, model: nn.Module, videos: Tensor) -> Tensor:
        """Logits ``(B, C)`` on the device: forwards of ``batch_size`` videos queued one
        after another, read back once by the caller."""
        bs, n = self._batch_size, int(videos.shape[0])
        out = []
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            logits = model(videos[start:stop].to(self.__device, self.__dtype, non_blocking=True))
            if logits.dim() != 2 or logits.shape[0] != stop - start:
                raise RuntimeError(f"model returned {tuple(logits.shape)} for {stop - start} videos")
            out.append(logits)
        return out[0] if len(out) == 1 else torch.cat(out)

    @staticmethod
    def _require_range(lohi: tuple[Tensor, Tensor] | None) -> None:
        """Refuse videos outside [0, 1] (or NaN): raises before anything is answered or counted."""
        if lohi is None:
            return
        lo, hi = float(lohi[0]), float(lohi[1])
        if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
            raise ValueError(
                f"videos must lie in [0, 1] (pixel space), got min {lo} max {hi}; nothing was answered or counted"
            )

    def _observed(self, videos: Tensor, answer: Answer, used_before: int) -> Answer:
        if self._observer is not None:
            self._observer(videos, answer, used_before)
        return answer

    __call__ = query

    def __repr__(self) -> str:
        return (
            f"Oracle(mode={self._mode!r}, used={self._used}, budget={self._budget}, "
            f"batch_size={self._batch_size}, device='{self.__device}')"
        )

    def __getstate__(self):
        raise TypeError("an Oracle cannot be pickled or deep-copied (it would carry the victim)")
