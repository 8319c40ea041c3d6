"""Settings every score-based sparse attack shares, one block per mode
(``attacks.untargeted`` and ``attacks.targeted`` of the config), and the context an
attack is built with. Plain settings: the attacks never import the pipeline.

Defaults are the paper's (§3.1, §3.4); see ``docs/attacks.md`` for every choice the
paper leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from sva.utils.settings import PositiveFloat, PositiveInt, StrictModel

MODES = ("untargeted", "targeted")
Mode = Literal["untargeted", "targeted"]
EvenPopulation = Annotated[int, Field(ge=2, multiple_of=2, description="NES samples per estimate (antithetic pairs)")]


class UntargetedCfg(StrictModel):
    """Untargeted attack (§3.1, Algorithm 2): FGSM steps on the NES estimate."""

    budget: PositiveInt = Field(30000, description="queries per video (Q never exceeds it)")
    alpha: PositiveFloat = Field(1 / 255, description="FGSM step, [0, 1] pixel units")
    nes_population: EvenPopulation = 48
    nes_sigma: PositiveFloat = Field(1e-3, description="NES search variance σ")
    accept_probes: bool = Field(False, description="stop at an NES probe that already fools the victim within ε")


class TargetedCfg(StrictModel):
    """Targeted attack (§3.4, after Ilyas et al.): start from the target class, shrink ε."""

    budget: PositiveInt = Field(60000, description="queries per video (Q never exceeds it)")
    alpha: PositiveFloat = Field(0.01, description="initial FGSM step, [0, 1] pixel units")
    nes_population: EvenPopulation = 48
    nes_sigma: PositiveFloat = Field(1e-6, description="NES search variance σ")
    eps_decay: PositiveFloat = Field(0.01, description="initial Δε, the L∞ radius shrink per step")
    keep_threshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    window: PositiveInt = 10
    patience: PositiveInt = 20
    min_alpha: PositiveFloat = 1e-4
    min_eps_decay: PositiveFloat = 1e-5
    init_candidates: PositiveInt = Field(5, description="target-class train videos tried as the start")


@dataclass(frozen=True)
class AttackContext:
    """What every attack is built with, besides its own settings block.

    ``mode``: ``untargeted`` or ``targeted``; ``eps``: the L∞ bound, [0, 1] pixel units;
    ``mode_cfg``: that mode's block; ``budget_scope``: ``video`` (the budget bounds all
    of a video's queries) or ``episode`` (each SVA episode gets the whole budget).
    """

    mode: Mode
    eps: float
    mode_cfg: UntargetedCfg | TargetedCfg
    budget_scope: Literal["video", "episode"] = "video"

    @property
    def budget(self) -> int:
        return self.mode_cfg.budget

    @property
    def targeted(self) -> bool:
        return self.mode == "targeted"
