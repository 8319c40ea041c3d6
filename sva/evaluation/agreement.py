"""Which frames a variant of SVA sampled, against SVA's own episodes, measured from the
records (``results/paper/reproduction.md``, "Which frames SVA's variants sampled").

A variant (``attacks.variants``) draws its base method's random numbers, so its first
epoch samples exactly the base method's masks. Only the agent's updates can make later
masks differ. When an arm's records come out identical to SVA's, this says how many of
its episodes sampled SVA's frames and how many agent updates shaped those masks: with
``E`` epochs, ``E - 1`` updates came before the last sampling, and the first of them is
a sign step that no positive rescaling or shift of the rewards changes
(``docs/attacks.md``, "How many agent updates").

Pure functions of record dicts as :mod:`sva.pipeline.attack_job` writes them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

__all__ = ["FrameAgreement", "frame_agreement"]


@dataclass(frozen=True)
class FrameAgreement:
    """One arm's episodes against its base method's, over the videos both attacked."""

    mode: str
    dataset: str
    victim: str
    method: str
    base: str
    #: videos both arms attacked
    videos: int
    #: videos whose every episode sampled the base's frames (and ran as many episodes)
    same_videos: int
    #: episodes compared (the same index in both records) and how many share their frames
    episodes: int
    same_episodes: int
    #: median over the arm's videos of the agent updates that came before its last
    #: sampling (epochs run - 1); None when the records keep no epochs
    updates: float | None

    def sentence(self) -> str:
        upd = "" if self.updates is None else (
            f"; the masks it sampled were shaped by {self.updates:g} agent update"
            f"{'' if self.updates == 1 else 's'} per video (median)")
        return (f"{self.mode}, {self.dataset}/{self.victim}: `{self.method}` sampled `{self.base}`'s frames in "
                f"{self.same_episodes} of {self.episodes} episodes, and in every episode of "
                f"{self.same_videos} of {self.videos} videos{upd}.")


def _frames(episode: dict) -> tuple[int, ...] | None:
    frames = episode.get("frames")
    return tuple(frames) if isinstance(frames, list) else None


def frame_agreement(base: list[dict], arm: list[dict]) -> FrameAgreement | None:
    """``arm``'s records against ``base``'s (one mode, dataset and victim each), matched
    by video; None when they share no video or keep no episodes' frames."""
    by_video = {r["video_id"]: r for r in base}
    pairs = [(by_video[r["video_id"]], r) for r in arm if r["video_id"] in by_video]
    pairs = [(b, a) for b, a in pairs if b.get("episodes") and a.get("episodes")]
    if not pairs:
        return None
    episodes = same = same_videos = 0
    updates = []
    for b, a in pairs:
        eb, ea = b["episodes"], a["episodes"]
        n = min(len(eb), len(ea))
        hits = sum(1 for x, y in zip(eb[:n], ea[:n]) if (f := _frames(x)) is not None and f == _frames(y))
        episodes += n
        same += hits
        same_videos += hits == n and len(eb) == len(ea)
        if a.get("epochs"):
            updates.append(max(len(a["epochs"]) - 1, 0))
    first = pairs[0][1]
    return FrameAgreement(mode=first["mode"], dataset=first["dataset"], victim=first["victim"],
                          method=first["method"], base=pairs[0][0]["method"], videos=len(pairs),
                          same_videos=same_videos, episodes=episodes, same_episodes=same,
                          updates=float(statistics.median(updates)) if updates else None)
