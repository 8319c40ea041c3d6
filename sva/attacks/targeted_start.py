"""Where a targeted attack starts (Algorithm 2, line 1).

The paper initialises x_adv "by adding random noises on the selected frames" until the
victim outputs the target; random noise rarely lands on one chosen class among many.
We start instead from the attacker's own videos of the target class (a black-box
attacker may hold labelled videos; we take them from the *train* split, never the
attacked test video): the selected frames of the clean video are replaced by the same
frames of a candidate, the others stay clean, and the oracle is asked whether the
result is labelled as the target. Candidates are tried in a seeded order until one
works; every question is a counted query (phase ``init``). See docs/attacks.md.
"""

from __future__ import annotations

from collections.abc import Generator

import torch
from torch import Tensor

from sva.blackbox.lockstep import Ask, run_alone
from sva.blackbox.oracle import Answer, BudgetExhausted, Oracle


def targeted_start(oracle: Oracle, x: Tensor, mask: Tensor, target: int, candidates: Tensor) -> Tensor | None:
    """The first splice ``x`` ⊕ candidate (on ``mask``) that the oracle labels ``target``.

    ``x``: float32 ``(T, 3, H, W)``; ``mask``: bool ``(T,)``; ``candidates``: float32
    ``(K, T, 3, H, W)`` videos of the target class. One query per candidate tried.
    Returns the starting video, or ``None`` when no candidate works (or the budget ends).
    """
    return run_alone(oracle, targeted_start_steps(x, mask, target, candidates))[0]


def targeted_start_steps(x: Tensor, mask: Tensor, target: int,
                         candidates: Tensor) -> Generator[Ask, Answer, tuple[Tensor | None, int]]:
    """:func:`targeted_start` as an episode generator (:mod:`sva.blackbox.lockstep`), phase
    ``init``; returns ``(start or None, queries asked)``."""
    m = mask.to(x.device).view(-1, 1, 1, 1)
    asked = 0
    for cand in candidates:
        spliced = torch.where(m, cand.to(x.device), x)
        try:
            answer = yield Ask(spliced[None], "init", reserve=1)
        except BudgetExhausted:
            return None, asked
        asked += 1
        if int(answer.labels[0]) == int(target):
            return spliced, asked
    return None, asked
