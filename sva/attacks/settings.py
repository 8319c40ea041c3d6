"""Settings every score-based sparse attack shares, one block per mode
(``attacks.untargeted`` and ``attacks.targeted`` of the config), and the context an
attack is built with. Plain settings: the attacks never import the pipeline.

Defaults are the paper's (§3.1, §3.4); see ``docs/attacks.md`` for every choice the
paper leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sva.utils.settings import PositiveFloat, PositiveInt, StrictModel

MODES = ("untargeted", "targeted")
Mode = Literal["untargeted", "targeted"]
Estimator = Literal["nes", "zo_signsgd", "sign_opt"]
ESTIMATOR_DOC = ("gradient estimator of the FGSM step: nes (§3.1, Eq. 2, antithetic), zo_signsgd "
                 "(Liu et al., ICLR 2019: forward differences on the unit sphere, one more query) or sign_opt "
                 "(Cheng et al., ICLR 2020: mean of sign(f(x + σu) − f(x))·u over Gaussian u, one more query)")
POPULATION_DOC = "samples per gradient estimate (NES: antithetic, even; ZO-SignSGD, Sign-OPT: directions, any ≥ 1)"
SIGMA_DOC = ("probe scale: the search variance σ of NES (x ± σu) and Sign-OPT (x + σu), u ~ N(0, I), or the "
             "smoothing μ of ZO-SignSGD (x + μu, ‖u‖ = 1)")


class _EstimatorCfg(StrictModel):
    @model_validator(mode="after")
    def _even_nes(self):
        if self.estimator == "nes" and self.population % 2:
            raise ValueError(f"population: NES draws antithetic pairs, so it must be even (got {self.population})")
        return self


class UntargetedCfg(_EstimatorCfg):
    """Untargeted attack (§3.1, Algorithm 2): FGSM steps on the gradient estimate."""

    budget: PositiveInt = Field(30000, description="queries per video (Q never exceeds it)")
    alpha: PositiveFloat = Field(1 / 255, description="FGSM step, [0, 1] pixel units")
    estimator: Estimator = Field("nes", description=ESTIMATOR_DOC)
    population: Annotated[int, Field(ge=1, description=POPULATION_DOC)] = 48
    sigma: PositiveFloat = Field(1e-3, description=SIGMA_DOC)
    accept_probes: bool = Field(False, description="stop at a gradient probe that already fools the victim within ε")


class TargetedCfg(_EstimatorCfg):
    """Targeted attack (§3.4, after Ilyas et al.): start from the target class, shrink ε."""

    budget: PositiveInt = Field(60000, description="queries per video (Q never exceeds it)")
    alpha: PositiveFloat = Field(0.01, description="initial FGSM step, [0, 1] pixel units")
    estimator: Estimator = Field("nes", description=ESTIMATOR_DOC)
    population: Annotated[int, Field(ge=1, description=POPULATION_DOC)] = 48
    sigma: PositiveFloat = Field(1e-6, description=SIGMA_DOC)
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
