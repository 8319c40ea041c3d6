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


class VariantCfg(StrictModel):
    """A named arm of an experiment (``attacks.variants.<name>``): a registered method
    run with some of its settings changed, e.g. SVA with only R_attack (Table 5). It
    is a method name everywhere (``methods``, ``tables``, the DAG, records, tables);
    its settings are the base method's block of this config with ``settings`` merged
    over it, and its mode blocks the config's with ``untargeted`` / ``targeted``
    merged over them. It draws the same random numbers as its base method (its seeds
    derive from the base method's name: common random numbers), so what differs
    between the two is what the overrides change (``docs/attacks.md``, "Variants")."""

    method: str = Field(description="the registered method this variant runs")
    eps: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="the L∞ bound of this arm, attack and success check alike (default: attacks.eps)")
    settings: dict[str, Any] = Field({}, description="overrides of attacks.<method>")
    untargeted: dict[str, Any] = Field({}, description="overrides of attacks.untargeted")
    targeted: dict[str, Any] = Field({}, description="overrides of attacks.targeted")


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
    variants: dict[str, VariantCfg] = Field(
        {}, description="named arms: a registered method with some settings changed (docs/attacks.md, Variants)")

    def eps_of(self, method: str | None) -> float:
        """The L∞ bound ``method`` attacks and is judged under: a variant's own ``eps``
        where it sets one, else ``attacks.eps``."""
        v = self.variants.get(method) if method is not None else None
        return v.eps if v is not None and v.eps is not None else self.eps

    def base_method(self, method: str) -> str:
        """The registered method that ``method`` (a registered name or a variant) runs."""
        v = self.variants.get(method)
        return v.method if v is not None else method

    def mode_cfg(self, mode: str, method: str | None = None) -> UntargetedCfg | TargetedCfg:
        """``mode``'s block; for a variant ``method``, with its overrides merged in."""
        block = getattr(self, mode)
        v = self.variants.get(method) if method is not None else None
        if v is None or not getattr(v, mode):
            return block
        return type(block).model_validate(deep_merge(block.model_dump(), getattr(v, mode)))

    def context(self, mode: str, method: str | None = None) -> AttackContext:
        """What ``method`` (default: any registered method) is built with in ``mode``
        (:mod:`sva.attacks.settings`)."""
        return AttackContext(mode=mode, eps=self.eps_of(method), mode_cfg=self.mode_cfg(mode, method),
                             budget_scope=self.budget_scope)

    def method_cfg(self, method: str) -> StrictModel:
        """The settings block of ``method`` (``attacks.<method>``; a variant: its base
        method's block with the variant's ``settings`` merged in)."""
        v = self.variants.get(method)
        if v is None:
            return getattr(self, method)
        block = getattr(self, v.method)
        return type(block).model_validate(deep_merge(block.model_dump(), v.settings))

    def method_names(self) -> list[str]:
        """Every name a method can be given by: the registered methods and the variants."""
        return [*attack_classes(), *self.variants]

    def min_budget(self, mode: str) -> int:
        """The fewest queries that let one attack step finish in ``mode``."""
        return min_budget(mode, self.mode_cfg(mode))

    @model_validator(mode="after")
    def _variants_valid(self) -> "AttacksBase":
        classes = attack_classes()
        problems = []
        for name, v in self.variants.items():
            where = f"variants.{name}"
            if name in classes:
                problems.append(f"{where}: {name!r} is a registered method; give the variant another name")
            elif not name.replace("_", "").isalnum():
                problems.append(f"{where}: a variant's name has letters, digits and '_' only")
            if v.method not in classes:
                problems.append(f"{where}.method: {v.method!r} is not a registered method "
                                f"(have {', '.join(classes)})")
                continue
            for part, fn in (("settings", lambda n=name: self.method_cfg(n)),
                             *((mode, lambda m=mode, n=name: self.mode_cfg(m, n)) for mode in ("untargeted", "targeted"))):
                try:
                    fn()
                except ValidationError as err:
                    for e in err.errors():
                        loc = "".join(f".{p}" for p in e["loc"])
                        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
                        problems.append(f"{where}.{part}{loc}: {msg}")
        problems += self.unknown_methods(self.methods, "methods")
        if problems:
            raise ValueError("; ".join(problems))
        return self

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
        for name, v in self.variants.items():
            for mode in ("untargeted", "targeted"):
                need, have = min_budget(mode, self.mode_cfg(mode, name)), self.mode_cfg(mode, name).budget
                if have < need:
                    problems.append(f"variants.{name}.{mode}.budget: {have} queries cannot finish one attack step; "
                                    f"the smallest workable budget is {need}")
            problems += [f"variants.{name}: {p}" for p in attack_classes()[v.method].settings_problems(
                self.method_cfg(name), {m: self.mode_cfg(m, name) for m in ("untargeted", "targeted")})]
        problems += self.selection_problems(self.methods, self.modes, "methods")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def unknown_methods(self, methods, where: str) -> list[str]:
        """A problem naming the ``methods`` that are neither registered nor variants."""
        unknown = [m for m in methods if m not in self.method_names()]
        if not unknown:
            return []
        return [(f"{where}: {', '.join(map(repr, unknown))} not a registered method or a variant "
                 f"(have {', '.join(self.method_names())})")]

    def selection_problems(self, methods: list[str], modes: list[str], where: str,
                           dependencies: bool = True) -> list[str]:
        """What is wrong with running ``methods`` (registered or variants) in ``modes``:
        a mode a method does not support; with ``dependencies``, a method whose
        dependency is not among them (Tables 3 and 4 show every method they run; a
        comparison table's DAG runs a dependency without making it a row)."""
        classes = attack_classes()
        known = [m for m in methods if self.base_method(m) in classes]
        at = "" if where == "methods" else f" ({where})"
        out = [f"method {m!r} does not support mode {mode!r}{at}" for m in known for mode in modes
               if mode not in classes[self.base_method(m)].modes]
        if dependencies:
            out += [f"{where}: {m!r} needs {d!r} too (it reads {d}'s records of the same videos)"
                    for m in known for d in classes[self.base_method(m)].depends_on if d not in methods]
        return out


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
        methods=(list[str], Field(default, description="attack methods to run (Tables 3 and 4): registered "
                                  "ones (" + ", ".join(names) + ") or names of attacks.variants")),
        **blocks,
    )


AttacksCfg = _attacks_model()


class ComparisonTableCfg(StrictModel):
    """A table (and its bar figure) whose rows are named methods or variants attacking
    the same videos, e.g. Table 5 (§4.5.1) or Fig. 9 (§4.5.4): ``rows`` maps each row's
    label to the method it runs (``tables.<name>``, built by the ``paper`` target)."""

    mode: Literal["untargeted", "targeted"] = Field("untargeted", description="attack mode of every row")
    victims: list[str] | None = Field(None, description="victims (default: every one of victims.models)")
    rows: dict[str, str] = Field(description="row label -> method (registered or a variant), in order")
    title: str = Field("", description="what the table shows (the figure's title)")
    videos: PositiveInt | None = Field(
        None, description="the first N videos (by id) of each attack set (the paper: 20 for its ablations); "
        "default: all")
    map_only_at_full_fr: bool = Field(
        False, description="MAP shown only where FR = 100 % (Table 2: the paper prints '-' elsewhere, since a "
        "MAP over fewer videos is not comparable)")


#: outputs the main run writes: a comparison table may not take their names
RESERVED_TABLES = ("table1", "table3", "table4")


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
    #: name -> comparison table, built by the ``paper`` target (results/<name>.csv)
    #: a ``null`` entry drops a table an earlier file defined
    tables: dict[str, ComparisonTableCfg | None] = Field(
        {}, description="tables beyond 3 and 4 (e.g. table5, the reward ablation): results/<name>.csv, "
        "results/figures/<name>.png; built by the paper target; null drops a table an earlier file defined")
    tracking: TrackingCfg = TrackingCfg()

    def videos_limit(self, method: str) -> int | None:
        """How many videos of each attack set ``method``'s jobs attack: ``None`` (all)
        when Tables 3 and 4 show it, another method reads its records, or a table
        using it wants every video; else the most any comparison table using it
        wants (its jobs attack the first N videos by id: :func:`limit_videos`)."""
        if method in self.attacks.methods:
            return None
        classes = attack_classes()
        used = [*self.attacks.methods, *(m for t in self.tables.values() for m in t.rows.values())]
        if any(method in classes[self.attacks.base_method(m)].depends_on for m in used
               if self.attacks.base_method(m) in classes):
            return None
        wants = [t.videos for t in self.tables.values() if method in t.rows.values()]
        return None if not wants or None in wants else max(wants)

    @model_validator(mode="after")
    def _tables_runnable(self) -> "Config":
        problems = []
        for name, t in self.tables.items():
            where = f"tables.{name}"
            if name in RESERVED_TABLES or not name.replace("_", "").isalnum():
                problems.append(f"{where}: a table's name has letters, digits and '_' only and is none of "
                                f"{', '.join(RESERVED_TABLES)}")
            known = self.attacks.method_names()
            problems += self.attacks.unknown_methods(t.rows.values(), f"{where}.rows")
            if not t.rows:
                problems.append(f"{where}.rows: at least one row is needed")
            problems += self.attacks.selection_problems([m for m in t.rows.values() if m in known], [t.mode],
                                                        f"{where}.rows", dependencies=False)
            missing = [v for v in t.victims or [] if v not in self.victims.models]
            if missing:
                problems.append(f"{where}.victims: {', '.join(map(repr, missing))} not in victims.models "
                                f"({', '.join(self.victims.models)})")
        problems += self._table_reads()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def table_reads(self, method: str, mode: str) -> list[str]:
        """The comparison tables ``method``'s settings choose from in ``mode``
        (:meth:`sva.attacks.base.Attack.reads_tables`, e.g. SVAL's Table 2)."""
        cls = attack_classes().get(self.attacks.base_method(method))
        return [] if cls is None else cls.reads_tables(self.attacks.method_cfg(method), mode)

    def job_priority(self, method: str) -> int:
        """The Snakemake priority of ``method``'s attack jobs, the longest-expected first:

        * 2, a hard-label method (``oracle_mode == "label"``): it stops early only when it
          reaches ε, and a video it fails spends the whole budget; hard-label attacks fail
          most often (the paper's Table 3: FR 49-79 % against SVA's 63-98 %), and each of
          their queries is one point of a sequential boundary search;
        * 1, a method that runs its whole schedule whatever it finds
          (:attr:`sva.attacks.base.Attack.runs_full_schedule`: SVA and its variants);
        * 0, the methods that stop at their first success.

        Started first, the long jobs leave the short ones to fill the cores at the end of
        a run (``docs/benchmarks.md``, "The demo's wall time"). Only the order of jobs
        changes, never a record."""
        cls = attack_classes().get(self.attacks.base_method(method))
        if cls is None:
            return 0
        if cls.oracle_mode == "label":
            return 2
        return int(cls.runs_full_schedule)

    def _table_reads(self) -> list[str]:
        """Problems of the tables the methods read: configured, of the same mode, and
        not showing the method that reads them (a cycle)."""
        known = set(self.attacks.method_names())
        used = {(m, mode) for m in self.attacks.methods for mode in self.attacks.modes}
        used |= {(m, t.mode) for t in self.tables.values() for m in t.rows.values()}
        problems = []
        for m, mode in sorted(used):
            if m not in known:
                continue
            for name in self.table_reads(m, mode):
                spec = self.tables.get(name)
                where = f"attacks: {m} ({mode}) chooses its settings from tables.{name}"
                if spec is None:
                    problems.append(f"{where}, which is not configured")
                elif spec.mode != mode:
                    problems.append(f"{where}, whose mode is {spec.mode}")
                elif m in spec.rows.values() or any(self.table_reads(r, mode) for r in spec.rows.values()):
                    problems.append(f"{where}, whose rows choose from tables themselves (a cycle)")
        return problems

    @field_validator("tables")
    @classmethod
    def _drop_null_tables(cls, v: dict) -> dict:
        return {name: t for name, t in v.items() if t is not None}

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


def limit_videos(video_ids, limit: int | None) -> list:
    """The first ``limit`` of ``video_ids`` in sorted order (all of them for ``None``):
    the videos a limited method attacks and a limited table aggregates."""
    ids = sorted(video_ids)
    return ids if limit is None else ids[:limit]


def _format_errors(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = "".join(f"{p}: " if i == len(e["loc"]) - 1 else f"{p}." for i, p in enumerate(e["loc"]))
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: {loc}unknown key")
        else:
            value = e.get("input")
            shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {loc}{msg}{shown}")
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
