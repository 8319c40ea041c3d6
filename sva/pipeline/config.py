"""The one configuration schema: ``params.yaml`` (Snakemake configfile + DVC params).

Validated once, up front, before any compute. Unknown keys and bad values raise a
:class:`ConfigError` that names the file and the dotted key, e.g.
``params.yaml: victims.c3d.train.lr: Input should be greater than 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from sva.attacks.base import attack_classes
from sva.attacks.perturber import min_budget, min_budget_parts
from sva.attacks.settings import AttackContext, TargetedCfg, UntargetedCfg
from sva.data.settings import DownloadCfg, FeatureCfg, SnippetCfg, SyntheticCfg
from sva.utils.errors import UserError
from sva.utils.settings import PositiveInt, StrictModel
from sva.victims.settings import VictimsCfg


class ConfigError(UserError, ValueError):
    """A configuration file is missing, unreadable or invalid."""


class DatasetCfg(StrictModel):
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


class AttacksBase(StrictModel):
    """The attack stage (``attacks``): which methods and modes, the L∞ bound, one block
    per mode (budget and the perturber's settings) and one block per method (its own
    settings; the registry in :mod:`sva.attacks.base` declares them)."""

    modes: list[Literal["untargeted", "targeted"]] = Field(["untargeted"], description="attack modes to run")
    eps: Annotated[float, Field(gt=0, le=1)] = Field(0.05, description="L∞ bound, [0, 1] pixel units (§3.4)")
    #: "video": the budget bounds Q, all queries for a video; "episode": each episode
    #: gets the whole budget (the paper's reading, for comparison)
    budget_scope: Literal["video", "episode"] = Field(
        "video", description="video: the budget bounds all of a video's queries; episode: each SVA episode "
        "gets the whole budget (the paper's reading)")
    oracle_batch_size: PositiveInt = Field(16, description="videos per victim forward pass")
    shards: PositiveInt = Field(2, description="attack jobs per (dataset, victim, method, mode)")
    videos_in_flight: PositiveInt = Field(
        1, description="videos a shard attacks side by side, their queries merged into the victim's batches "
        "(1: one video at a time); see docs/attacks.md")
    untargeted: UntargetedCfg = UntargetedCfg()
    targeted: TargetedCfg = TargetedCfg()

    def mode_cfg(self, mode: str) -> UntargetedCfg | TargetedCfg:
        return getattr(self, mode)

    def context(self, mode: str) -> AttackContext:
        """What every method is built with in ``mode`` (:mod:`sva.attacks.settings`)."""
        return AttackContext(mode=mode, eps=self.eps, mode_cfg=self.mode_cfg(mode), budget_scope=self.budget_scope)

    def method_cfg(self, method: str) -> StrictModel:
        """The settings block of ``method`` (``attacks.<method>``)."""
        return getattr(self, method)

    def min_budget(self, mode: str) -> int:
        """The fewest queries that let one attack step finish in ``mode``."""
        return min_budget(mode, self.mode_cfg(mode))

    @model_validator(mode="after")
    def _budgets_workable(self) -> "AttacksBase":
        problems = []
        for mode in ("untargeted", "targeted"):
            need = self.min_budget(mode)
            have = self.mode_cfg(mode).budget
            if have < need:
                problems.append(f"{mode}.budget: {have} queries cannot finish one attack step; the smallest "
                                f"workable budget is {need} ({min_budget_parts(mode, self.mode_cfg(mode))})")
        modes = {m: self.mode_cfg(m) for m in ("untargeted", "targeted")}
        for name, cls in attack_classes().items():
            if name in type(self).model_fields:  # registered when the schema was built
                problems += cls.settings_problems(self.method_cfg(name), modes)
        unsupported = [f"method {m!r} does not support mode {mode!r}" for m in self.methods for mode in self.modes
                       if mode not in attack_classes()[m].modes]
        unsupported += [f"methods: {m!r} needs {d!r} too (it reads {d}'s records of the same videos)"
                        for m in self.methods for d in attack_classes()[m].depends_on if d not in self.methods]
        if problems or unsupported:
            raise ValueError("; ".join(problems + unsupported))
        return self


def _attacks_model() -> type[AttacksBase]:
    """``AttacksBase`` plus ``methods`` (a list of registered names) and one settings
    block per registered method, each defaulting to that method's defaults."""
    classes = attack_classes()
    names = tuple(classes)
    blocks = {name: (cls.Settings, Field(default_factory=cls.Settings, description=cls.summary()))
              for name, cls in classes.items()}
    default = [m for m in ("sva", "dense") if m in classes]
    return create_model(
        "AttacksCfg", __base__=AttacksBase, __module__=__name__,
        methods=(list[Literal[names]], Field(default, description="registered attack methods to run: "
                                                                   + ", ".join(names))),
        **blocks,
    )


AttacksCfg = _attacks_model()


class TrackingCfg(StrictModel):
    experiment_prefix: str = "sva"


class Config(StrictModel):
    #: set by ``--config study=<name>`` (``sva/pipeline/studies.py``), not in a file
    study: str | None = Field(None, description="named study (config/studies/<name>.yaml) this run is; "
                              "set with --config study=<name>")
    seed: int = 0
    device: str = "auto"
    #: name → dataset; a ``null`` entry disables a dataset that an earlier file defined
    datasets: dict[str, DatasetCfg | None]
    snippets: SnippetCfg = SnippetCfg()
    features: FeatureCfg = FeatureCfg()
    victims: VictimsCfg = VictimsCfg()
    attacks: AttacksCfg = Field(default_factory=AttacksCfg)
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


def read_config_file(path: str | Path, missing: str = "configuration file not found") -> dict[str, Any]:
    """A YAML file's top-level mapping; ``ConfigError`` naming the file when it is
    missing (``missing`` says so), not YAML, or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {missing}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def load_config(*paths: str | Path) -> Config:
    """Load and merge YAML files (later ones override, deep merge), then validate."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_config_file(path))
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
