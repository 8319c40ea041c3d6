"""Run several attack episodes side by side through one oracle (``docs/attacks.md``).

An *episode* is written as a Python generator that, instead of calling the oracle,
yields an :class:`Ask` (the videos it wants answered, the phase to count them under,
and how many queries it must be able to spend to finish its current step) and
receives the oracle's :class:`~sva.blackbox.oracle.Answer` back. Its ``return`` value is the
episode's result.

:func:`run_lockstep` drives ``N`` such episodes in rounds: each round it collects the
pending ask of every unfinished episode, merges the asks of one phase into as few
oracle calls as fill whole batches (:func:`_calls`) and hands every episode its rows
of the answer. Every video is still one counted query, each episode's own count is
exactly what it would be alone, and the victim sees full batches instead of the
one-video checks that end every FGSM step.
:func:`run_alone` drives one episode the same way.

Budget: an ask with ``reserve = r`` declares that the episode needs ``r`` more queries
to complete the step it starts (e.g. the NES population plus the check). The driver
grants reservations in episode order while the oracle's remaining budget covers all
outstanding ones; an episode whose reservation cannot be granted receives
:class:`~sva.blackbox.oracle.BudgetExhausted` at its ``yield`` and ends there (it should catch
it and return its result). So a step is never started that the budget cannot finish,
nothing overshoots (the oracle refuses that anyway), and when the budget binds,
lower-index episodes keep priority, as if they had run first.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

from sva.blackbox.oracle import Answer, BudgetExhausted, Oracle

__all__ = ["Ask", "Episode", "run_alone", "run_lockstep"]

R = TypeVar("R")


@dataclass(frozen=True, eq=False)
class Ask:
    """One request of an episode.

    ``videos``: float ``(B, T, 3, H, W)`` in [0, 1] (``B >= 1``). ``phase``: the oracle
    phase the ``B`` queries are counted under. ``reserve``: ``None`` (the queries come
    out of the episode's current reservation) or the number of queries, ``>= B``, the
    episode needs from here to the end of the step it is starting; it replaces any
    unused rest of its previous reservation.
    """

    videos: Tensor
    phase: str
    reserve: int | None = None

    def __post_init__(self):
        if self.videos.dim() != 5 or self.videos.shape[0] < 1:
            raise ValueError(f"Ask.videos must be (B>=1, T, 3, H, W), got {tuple(self.videos.shape)}")
        if self.reserve is not None and self.reserve < self.videos.shape[0]:
            raise ValueError(f"Ask.reserve ({self.reserve}) is smaller than the ask ({self.videos.shape[0]} videos)")


#: An episode: yields :class:`Ask`, is sent :class:`Answer`, returns its result.
Episode = Generator[Ask, Answer, R]


class _Slot:
    __slots__ = ("gen", "ask", "done", "result", "reserved")

    def __init__(self, gen: Episode):
        self.gen, self.ask, self.done, self.result, self.reserved = gen, None, False, None, 0

    def advance(self, value: Any = None, exc: BaseException | None = None) -> None:
        try:
            self.ask = self.gen.throw(exc) if exc is not None else self.gen.send(value)
        except StopIteration as stop:
            self.done, self.ask, self.result, self.reserved = True, None, stop.value, 0
            return
        if not isinstance(self.ask, Ask):
            raise TypeError(f"an episode must yield Ask, got {type(self.ask).__name__}")


def run_lockstep(oracle: Oracle, episodes: Sequence[Episode]) -> list:
    """Drive ``episodes`` to completion side by side; returns their results in order.

    Each round: every unfinished episode has one pending :class:`Ask`; reservations are
    granted in episode order (see the module docstring), then the asks of each phase
    (phases in order of first appearance) go to the oracle in as few calls as fill
    whole batches (:func:`_calls`), and each episode is sent its rows. Deterministic
    for a given input.
    """
    slots = [_Slot(g) for g in episodes]
    for s in slots:
        s.advance()
    while True:
        live = [s for s in slots if not s.done]
        if not live:
            return [s.result for s in slots]
        # grant reservations in episode order
        for s in live:
            ask = s.ask
            if ask.reserve is None:
                if ask.videos.shape[0] > s.reserved:
                    raise RuntimeError("an episode asked beyond its reservation; start each step with Ask(reserve=...)")
                continue
            others = sum(o.reserved for o in slots if o is not s and not o.done)
            if others + ask.reserve > oracle.remaining:
                s.reserved = 0
                s.advance(exc=BudgetExhausted(oracle.used, oracle.budget, ask.reserve, ask.phase))
                if not s.done:
                    raise RuntimeError("an episode must return when its reservation is refused")
            else:
                s.reserved = ask.reserve
        live = [s for s in slots if not s.done]
        by_phase: dict[str, list[_Slot]] = {}
        for s in live:
            by_phase.setdefault(s.ask.phase, []).append(s)
        for phase, group in by_phase.items():
            for call in _calls(group, oracle.batch_size):
                videos = call[0].ask.videos if len(call) == 1 else torch.cat([s.ask.videos for s in call])
                answer = oracle.query(videos, phase=phase)
                start = 0
                for s in call:
                    b = int(s.ask.videos.shape[0])
                    s.reserved -= b
                    s.advance(answer[start:start + b])
                    start += b


def _calls(group: list[_Slot], batch_size: int) -> list[list[_Slot]]:
    """Split one phase's asks into oracle calls: an ask that fills whole batches goes
    alone (no copy), the others are merged into one call (fewer, fuller batches)."""
    whole = [[s] for s in group if s.ask.videos.shape[0] % batch_size == 0]
    rest = [s for s in group if s.ask.videos.shape[0] % batch_size]
    return whole + ([rest] if rest else [])


def run_alone(oracle: Oracle, episode: Episode) -> Any:
    """Drive one episode through ``oracle`` (same rules as :func:`run_lockstep`)."""
    return run_lockstep(oracle, [episode])[0]
