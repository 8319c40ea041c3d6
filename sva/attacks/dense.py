"""The dense "No RL" baseline (Table 5): the sparse FGSM/NES perturber on every frame,
one episode with the whole budget."""

from __future__ import annotations

from sva.attacks.base import Attack, AttackOutcome, AttackTask, first_look, register_attack
from sva.attacks.perturber import EpisodeChoice, SparsePerturber, episode_log
from sva.attacks.selectors import all_frames
from sva.blackbox.lockstep import run_alone
from sva.blackbox.oracle import Oracle


@register_attack
class DenseAttack(Attack):
    """All frames × sparse FGSM/NES: SVA without the agent (the paper's "No RL")."""

    name = "dense"
    oracle_mode = "score"

    def __init__(self, context, settings=None):
        super().__init__(context, settings)
        self.perturber = SparsePerturber(context)

    def run(self, oracle: Oracle, task: AttackTask) -> AttackOutcome:
        x = task.x
        clean_label = first_look(oracle, x)
        mask = all_frames(task.num_frames)
        res = run_alone(oracle, self.perturber.episode(x, task.label, task.target, task.candidates, mask,
                                                       oracle.remaining, task.generator("attack")))
        choice = EpisodeChoice(x)
        choice.offer(0, res, mask)
        return choice.outcome(oracle, clean_label, [episode_log(res, x, mask, epoch=0, episode=0)], [])
