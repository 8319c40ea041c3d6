"""Black-box video attacks. Every attack reaches the victim only through an
:class:`sva.blackbox.oracle.Oracle`; none of them sees the model, its logits or gradients.

Methods register themselves (:func:`sva.attacks.base.register_attack`); ask the
registry with :func:`attack_classes` / :func:`get_attack` / :func:`build_attack`.
"""

from sva.attacks.base import (Attack, AttackOutcome, AttackTask, attack_classes, build_attack, get_attack,
                              register_attack)
from sva.attacks.settings import MODES, AttackContext

__all__ = ["MODES", "Attack", "AttackContext", "AttackOutcome", "AttackTask", "attack_classes", "build_attack",
           "get_attack", "register_attack"]
