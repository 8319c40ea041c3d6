"""Settings of the data layer (validated by the pipeline's config, :mod:`sva.pipeline.config`):
the synthetic dataset, downloads, snippet extraction and frame features."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sva.utils.settings import PositiveInt, StrictModel

class SyntheticCfg(StrictModel):
    """The embedded synthetic action dataset (see ``docs/synthetic.md``)."""

    num_classes: Annotated[int, Field(ge=2, le=12)] = 10
    train_per_class: PositiveInt = 200
    test_per_class: PositiveInt = 30
    frames: Annotated[int, Field(ge=4)] = 16
    height: Annotated[int, Field(ge=16)] = 32
    width: Annotated[int, Field(ge=16)] = 32
    window: tuple[PositiveInt, PositiveInt] = (3, 4)
    codec: Literal["ffv1", "h264"] = "ffv1"

    @field_validator("height", "width")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError("must be even (H.264 with yuv420p needs even frame sizes)")
        return v

    @model_validator(mode="after")
    def _window_fits(self) -> "SyntheticCfg":
        lo, hi = self.window
        if lo > hi:
            raise ValueError(f"window: min {lo} > max {hi}")
        if hi > self.frames:
            raise ValueError(f"window: max {hi} > frames {self.frames}")
        return self


class DownloadCfg(StrictModel):
    """Where a real dataset comes from. ``None`` checksum = not verified (logged)."""

    videos_url: str
    videos_sha256: str | None = None
    splits_url: str
    splits_sha256: str | None = None


class SnippetCfg(StrictModel):
    """16 evenly spaced frames per video, resized then centre-cropped (paper §4.1)."""

    num_frames: PositiveInt = 16
    resize: tuple[PositiveInt, PositiveInt] | None = None  # (H, W) before the crop
    crop: tuple[PositiveInt, PositiveInt] | None = None  # (H, W) centre crop
    on_bad_video: Literal["error", "skip"] = "error"

    @model_validator(mode="after")
    def _crop_fits(self) -> "SnippetCfg":
        if self.resize and self.crop and (self.crop[0] > self.resize[0] or self.crop[1] > self.resize[1]):
            raise ValueError(f"crop {self.crop} larger than resize {self.resize}")
        return self


class FeatureCfg(StrictModel):
    """Per-frame ResNet18 features, the agent's input.

    ``weights``: ``auto`` (ImageNet weights if they load offline, else random init,
    logged), ``imagenet`` (required), ``none`` (random init from the seed), or a path
    to a local ``state_dict``.

    ``center``: ``train_mean`` subtracts the mean feature of the train split's frames
    (the attacker's own data) from every feature, so that cosines (R_div) compare what
    differs between frames rather than the large component every post-ReLU feature of
    a random network shares; ``none`` keeps the raw features (the paper's, with
    ImageNet weights); ``auto`` (default) centres exactly when the weights are a random
    init. Euclidean distances, hence R_rep, are unchanged by centring
    (``docs/features.md``, "Centring").
    """

    weights: str = "auto"
    batch_size: PositiveInt = 256
    input_size: PositiveInt | None = None  # resize frames to this square size first
    center: Literal["auto", "train_mean", "none"] = "auto"
