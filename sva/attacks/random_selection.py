"""Random frame selection (§4.5.3, Fig. 7): as many frames as SVA's mask for the same
video, chosen at random, under the same sparse FGSM/NES perturber; several tries, the
best one reported.

The frame count comes from SVA's record of the video (``depends_on = ("sva",)``): the
size of its returned mask when SVA succeeded, else the mean size of its episodes'
masks (rounded, at least one frame) — SVA's choice of *how many* frames is kept, only
*which* frames is random. The tries are independent, so they run side by side
(:func:`sva.blackbox.lockstep.run_lockstep`). Under ``budget_scope: video`` each try
is capped at an equal share of the video's budget after the first look, so Q stays
within the budget; under ``budget_scope: episode`` (the paper's reading, §4.5.3: "each
video is attacked five times") each try may spend the whole budget, as SVA's episodes
do. Q counts every try; the record keeps the best try's own queries. See ``docs/attacks.md`` ("Random frame selection").
"""

from __future__ import annotations

import torch
from pydantic import Field

from sva.attacks.base import Attack, AttackOutcome, AttackTask, first_look, register_attack
from sva.attacks.perturber import EpisodeChoice, SparsePerturber, episode_log
from sva.blackbox.lockstep import run_lockstep
from sva.blackbox.oracle import Oracle
from sva.utils.seeding import torch_generator
from sva.utils.settings import PositiveInt, StrictModel


class RandomSelectionCfg(StrictModel):
    """Random frame selection (``attacks.random``)."""

    tries: PositiveInt = Field(5, description="random masks per video; the best successful try is reported")


def sva_frame_count(record: dict) -> int:
    """How many frames SVA chose for a video, from its record: the returned mask's size
    on success, else the mean mask size of its episodes (rounded, at least 1)."""
    if record.get("success") and record.get("selected_frames"):
        return len(record["selected_frames"])
    sizes = [len(e["frames"]) for e in record.get("episodes", [])]
    return max(1, round(sum(sizes) / len(sizes))) if sizes else 1


def random_mask(num_frames: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` distinct frames of ``num_frames``, uniformly at random: bool ``(T,)``."""
    k = min(max(k, 1), num_frames)
    mask = torch.zeros(num_frames, dtype=torch.bool)
    mask[torch.randperm(num_frames, generator=generator)[:k]] = True
    return mask


@register_attack
class RandomSelection(Attack):
    """Random frames (as many as SVA's mask) × sparse FGSM/NES, best of several tries (§4.5.3)."""

    name = "random"
    oracle_mode = "score"
    Settings = RandomSelectionCfg
    depends_on = ("sva",)

    def __init__(self, context, settings: RandomSelectionCfg | None = None):
        super().__init__(context, settings)
        self.perturber = SparsePerturber(context)

    @classmethod
    def hints_from(cls, records: dict[str, dict]) -> dict:
        return {"frames": sva_frame_count(records["sva"])}

    def oracle_budget(self) -> int:
        if self.context.budget_scope == "episode":  # every try may spend the whole budget
            return self.context.budget * self.settings.tries + 1
        return self.context.budget

    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        if "frames" not in task.hints:
            raise ValueError("random frame selection needs the frame count of SVA's mask (task.hints['frames'])")
        x = task.x
        clean_label = first_look(oracle, x)
        # the masks are drawn on the CPU (as SVA's agent samples its masks), so a GPU run
        # picks the same frames as a CPU run; the attack's noise is drawn on x's device
        generator = torch_generator(task.seed, "attack", *task.seed_keys)
        tries = self.settings.tries
        masks = [random_mask(task.num_frames, int(task.hints["frames"]), generator) for _ in range(tries)]
        cap = self.context.budget if self.context.budget_scope == "episode" else oracle.remaining // tries
        gens = [torch.Generator(device=x.device).manual_seed(task.derive_seed(f"try{i}")) for i in range(tries)]
        results = run_lockstep(oracle, [self.perturber.episode(x, task.label, task.target, task.candidates, m, cap, g)
                                        for m, g in zip(masks, gens)])
        episodes, choice = [], EpisodeChoice(x)
        for i, (mask, res) in enumerate(zip(masks, results)):
            episodes.append(episode_log(res, x, mask, epoch=0, episode=i))
            choice.offer(i, res, mask)
        outcome = choice.outcome(oracle, clean_label, episodes, [])
        outcome.extra = {"frames_from_sva": int(task.hints["frames"]), "tries": tries}
        return outcome
