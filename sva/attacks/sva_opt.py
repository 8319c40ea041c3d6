"""**SVA_opt** (paper §4.5.3, Fig. 8): the Heuristic-attack with its key-frame
selection replaced by SVA's, "only different in keyframe selection" from H_opt (the
Heuristic-attack itself, :mod:`sva.attacks.heuristic`).

Everything is the Heuristic-attack's — the label-only oracle, the start, the salient
regions, Opt-attack's RGF optimisation on the kept frames × regions, the settings —
except step 3-4 (frame importance and greedy removal), which becomes: **keep SVA's
frames for this video**. They come from SVA's record of the same video
(``depends_on = ("sva",)``, a DAG edge): its returned mask when SVA succeeded, else the
frames of its last episode (the agent's latest choice); see :func:`sva_key_frames`.
The start direction (on the salient regions) is restricted to those frames and its
``g`` searched by doubling from the start's ``g`` up to where clipping stops changing
the ray (phase ``frames``). Should the restricted ray not be adversarial up to there,
SVA's frames cannot carry this start and the attack keeps every frame for this video
(recorded: ``sva_opt.frames = "whole_video"``), like the Heuristic-attack's region
fallback. Choices: ``docs/baselines.md`` ("SVA_opt").
"""

from __future__ import annotations

import torch
from torch import Tensor

from sva.attacks.base import AttackOutcome, AttackTask, register_attack
from sva.attacks.heuristic import (HeuristicAttack, HeuristicSettings, Selection, doubling_search, drop_outside,
                                   saturation_radius)
from sva.attacks.opt import LAMBDA_CAP, Run
from sva.blackbox.lockstep import run_alone
from sva.blackbox.oracle import Oracle


def sva_key_frames(record: dict) -> list[int] | None:
    """The frames SVA chose for a video, from its record: the returned mask on success,
    else its last episode's frames; ``None`` when it ran no episode (then every frame)."""
    if record.get("success") and record.get("selected_frames"):
        return [int(t) for t in record["selected_frames"]]
    episodes = record.get("episodes") or []
    return [int(t) for t in episodes[-1]["frames"]] if episodes and episodes[-1].get("frames") else None


@register_attack
class SvaOptAttack(HeuristicAttack):
    """SVA_opt (§4.5.3, Fig. 8): the Heuristic-attack on SVA's key frames instead of its own."""

    name = "sva_opt"
    Settings = HeuristicSettings
    depends_on = ("sva",)

    @classmethod
    def hints_from(cls, records: dict[str, dict]) -> dict:
        return {"frames": sva_key_frames(records["sva"])}

    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        if "frames" not in task.hints:
            raise ValueError("SVA_opt needs SVA's key frames of the video (task.hints['frames'])")
        frames = task.hints["frames"]
        self._frames = list(range(task.num_frames)) if frames is None else [int(t) for t in frames]
        self._fallback = False
        return super().run(oracle, task)

    def _select_frames(self, run: Run, sel: Selection, theta: Tensor, g: float) -> tuple[Tensor, float]:
        """Keep SVA's frames: the start direction restricted to them, its ``g`` searched
        (phase ``frames``); every frame kept when that ray is not adversarial."""
        x, geo = run.x, run.geometry
        kept = torch.zeros(x.shape[0], dtype=torch.bool)
        kept[self._frames] = True
        if bool(kept.all()):
            return theta, g
        direction = geo.unit(theta * kept.view(-1, 1, 1, 1).to(x.device))
        res = None
        saved = run.best
        if direction is not None:
            drop_outside(run, sel.regions & kept.view(-1, 1, 1, 1).to(x.device))
            hint = geo.lam_at(direction, geo.extent(theta, g))
            cap = saturation_radius(x, direction, geo.lam_at(direction, LAMBDA_CAP))
            res = run_alone(run.oracle, doubling_search(run, direction, hint, cap, run.tol(self.settings.beta),
                                                        "frames"))
        if res is None or res.video is None:  # SVA's frames cannot carry this start: every frame
            run.best = saved
            self._fallback = True
            if res is not None and not res.complete:
                sel.stage = "budget"
            return theta, g
        sel.kept = kept
        if not res.complete:
            sel.stage = "budget"
        return direction, res.g

    def _outcome(self, run: Run, task: AttackTask, clean_label: int, stop: str, iterations: int,
                 trace: list[dict]) -> AttackOutcome:
        outcome = super()._outcome(run, task, clean_label, stop, iterations, trace)
        outcome.extra = {**outcome.extra, "sva_opt": {
            "sva_frames": self._frames, "frames": "whole_video" if self._fallback else "sva"}}
        return outcome


__all__ = ["SvaOptAttack", "sva_key_frames"]
