"""The one configuration schema: ``params.yaml`` (Snakemake configfile + DVC params).

Validated once, up front, before any compute. Unknown keys and bad values raise a
:class:`ConfigError` that names the file and the dotted key, e.g.
``params.yaml: victims.c3d.train.lr: Input should be greater than 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from sva.utils.errors import UserError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class ConfigError(UserError, ValueError):
    """A configuration file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticCfg(_Strict):
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


class DownloadCfg(_Strict):
    """Where a real dataset comes from. ``None`` checksum = not verified (logged)."""

    videos_url: str
    videos_sha256: str | None = None
    splits_url: str
    splits_sha256: str | None = None


class DatasetCfg(_Strict):
    kind: Literal["synthetic", "ucf101", "hmdb51"]
    split: Annotated[int, Field(ge=1, le=3)] = 1
    synthetic: SyntheticCfg | None = None
    download: DownloadCfg | None = None
    attack_set_size: PositiveInt = 100

    @model_validator(mode="after")
    def _kind_needs(self) -> "DatasetCfg":
        if self.kind == "synthetic" and self.synthetic is None:
            raise ValueError("kind 'synthetic' needs a 'synthetic' section")
        if self.kind != "synthetic" and self.download is None:
            raise ValueError(f"kind {self.kind!r} needs a 'download' section")
        return self


class SnippetCfg(_Strict):
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


class FeatureCfg(_Strict):
    """Per-frame ResNet18 features, the agent's input.

    ``weights``: ``auto`` (ImageNet weights if they load offline, else random init,
    logged), ``imagenet`` (required), ``none`` (random init from the seed), or a path
    to a local ``state_dict``.
    """

    weights: str = "auto"
    batch_size: PositiveInt = 256
    input_size: PositiveInt | None = None  # resize frames to this square size first


class TrainCfg(_Strict):
    """Victim training (paper §4.1: Adam, lr 1e-5, ×0.1 after 20 of 30 epochs)."""

    epochs: PositiveInt = 30
    lr: PositiveFloat = 1e-5
    lr_step_epoch: PositiveInt = 20
    lr_gamma: PositiveFloat = 0.1
    batch_size: PositiveInt = 32
    weight_decay: Annotated[float, Field(ge=0)] = 0.0


class C3DCfg(_Strict):
    width_mult: PositiveFloat = 1.0
    batchnorm: bool = False
    fc_dim: PositiveInt = 4096
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    train: TrainCfg = TrainCfg()


class LRCNCfg(_Strict):
    backbone: Literal["inception_v3", "small_cnn"] = "inception_v3"
    backbone_width: PositiveInt = 32  # small_cnn only
    hidden: PositiveInt = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    train: TrainCfg = TrainCfg()


class VictimsCfg(_Strict):
    models: list[Literal["c3d", "lrcn"]] = ["c3d", "lrcn"]
    c3d: C3DCfg = C3DCfg()
    lrcn: LRCNCfg = LRCNCfg()


class NESCfg(_Strict):
    """NES gradient estimation (§3.1, §3.4)."""

    population: Annotated[int, Field(ge=2, multiple_of=2)] = 48
    sigma_untargeted: PositiveFloat = 1e-3
    sigma_targeted: PositiveFloat = 1e-6


class TargetedCfg(_Strict):
    """Targeted schedule (§3.4) and start (docs/attacks.md)."""

    alpha: PositiveFloat = 0.01
    eps_decay: PositiveFloat = 0.01
    keep_threshold: Annotated[float, Field(gt=0, le=1)] = 0.5
    window: PositiveInt = 10
    patience: PositiveInt = 20
    min_alpha: PositiveFloat = 1e-4
    min_eps_decay: PositiveFloat = 1e-5
    init_candidates: PositiveInt = 5


class SVACfg(_Strict):
    """Algorithm 1 (§3.2): epochs of N episodes, REINFORCE with Adam."""

    epochs: PositiveInt = 20
    episodes: PositiveInt = 5
    lr: PositiveFloat = 1e-5
    hidden: PositiveInt = 128
    gamma1: Annotated[float, Field(ge=0)] = 2.0
    gamma2: Annotated[float, Field(ge=0)] = 3.0
    rewards: Literal["full", "attack", "attack+rep"] = "full"
    #: per-episode query caps; null = the rest of the video's budget
    episode_queries_untargeted: PositiveInt | None = None
    episode_queries_targeted: PositiveInt | None = None


class AttacksCfg(_Strict):
    """The attack stage: which methods and modes, budgets, sharding."""

    methods: list[Literal["sva", "dense"]] = ["sva", "dense"]
    modes: list[Literal["untargeted", "targeted"]] = ["untargeted"]
    eps: Annotated[float, Field(gt=0, le=1)] = 0.05
    alpha: PositiveFloat = 1 / 255
    budget_untargeted: PositiveInt = 30000
    budget_targeted: PositiveInt = 60000
    #: "video": the budget bounds Q, all queries for a video; "episode": each episode
    #: gets the whole budget (the paper's reading, for comparison)
    budget_scope: Literal["video", "episode"] = "video"
    oracle_batch_size: PositiveInt = 16
    shards: PositiveInt = 2
    accept_probes: bool = False
    nes: NESCfg = NESCfg()
    targeted: TargetedCfg = TargetedCfg()
    sva: SVACfg = SVACfg()

    def min_budget(self, mode: str) -> int:
        """The fewest queries that let one attack step finish in ``mode``: the first look
        at the clean video, (targeted) the start's candidate checks, the NES probes and
        the step's check(s) (see ``docs/attacks.md``)."""
        if mode == "untargeted":
            return 1 + self.nes.population + 1
        return 1 + self.targeted.init_candidates + self.nes.population + 2

    @model_validator(mode="after")
    def _budgets_workable(self) -> "AttacksCfg":
        problems = []
        for mode in ("untargeted", "targeted"):
            need = self.min_budget(mode)
            have = getattr(self, f"budget_{mode}")
            if have < need:
                problems.append(f"budget_{mode}: {have} queries cannot finish one attack step; the smallest "
                                f"workable budget is {need} (1 first look"
                                + (f" + {self.targeted.init_candidates} start candidates" if mode == "targeted" else "")
                                + f" + {self.nes.population} NES probes + {1 if mode == 'untargeted' else 2} "
                                "check)")
            cap = getattr(self.sva, f"episode_queries_{mode}")
            if cap is not None and cap < need - 1:
                problems.append(f"sva.episode_queries_{mode}: {cap} queries cannot finish one attack step; "
                                f"the smallest workable episode cap is {need - 1}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrackingCfg(_Strict):
    experiment_prefix: str = "sva"


class Config(_Strict):
    seed: int = 0
    device: str = "auto"
    #: name → dataset; a ``null`` entry disables a dataset that an earlier file defined
    datasets: dict[str, DatasetCfg | None]
    snippets: SnippetCfg = SnippetCfg()
    features: FeatureCfg = FeatureCfg()
    victims: VictimsCfg = VictimsCfg()
    attacks: AttacksCfg = AttacksCfg()
    tracking: TrackingCfg = TrackingCfg()

    @field_validator("datasets")
    @classmethod
    def _names(cls, v: dict[str, DatasetCfg | None]) -> dict[str, DatasetCfg]:
        v = {name: ds for name, ds in v.items() if ds is not None}
        if not v:
            raise ValueError("at least one dataset is required")
        for name in v:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"dataset name {name!r}: letters, digits, '-' and '_' only")
        return v


def _format_errors(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: {loc}: unknown key")
        else:
            value = e.get("input")
            shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {loc}: {msg}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def validate_config(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed mapping (e.g. Snakemake's ``config``); raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


def load_config(*paths: str | Path) -> Config:
    """Load and merge YAML files (later ones override, deep merge), then validate."""
    merged: dict[str, Any] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        merged = deep_merge(merged, data)
    return validate_config(merged, ", ".join(str(p) for p in paths))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (as Snakemake does)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def json_schema() -> str:
    """The configuration schema as JSON Schema (every key, its type, default and
    description), as written to ``workflow/schemas/config.schema.json``."""
    import json

    schema = Config.model_json_schema()
    schema["title"] = "SVA workbench configuration (params.yaml; sva/pipeline/config.py)"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
