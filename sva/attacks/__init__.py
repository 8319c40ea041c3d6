"""Black-box video attacks. Every attack reaches the victim only through an
:class:`sva.blackbox.oracle.Oracle`; none of them sees the model, its logits or gradients."""

from sva.attacks.fgsm import EpisodeResult, SparseFGSM, TargetedSparseFGSM

__all__ = ["EpisodeResult", "SparseFGSM", "TargetedSparseFGSM"]
