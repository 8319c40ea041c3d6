"""Command line: ``sva check-config FILE [FILE ...]`` validates configuration files
(merged in order, like Snakemake's ``--configfile``) and prints the result as YAML;
``sva summary RECORD_OR_SHARD.json ...`` prints the table rows built from records;
``sva window-coverage --windows windows.csv RECORDS ...`` relates episode success to
the class window (synthetic data, :mod:`sva.evaluation.analysis`); ``sva frame-agreement
BASE ARM ...`` says how many episodes of each arm sampled the base method's frames
(:mod:`sva.evaluation.agreement`); ``sva schema`` prints the configuration's JSON Schema; ``sva methods`` lists the
registered attack methods with their settings and defaults; ``sva track`` logs to MLflow
every attack record that is missing there (after an outage), idempotently.

A user error (bad config, unreadable or inconsistent record files) prints one line and
exits with status 2, without a traceback."""

from __future__ import annotations

import argparse
import sys

import yaml

from sva.pipeline.config import load_config
from sva.utils.errors import UserError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sva", description="SVA workbench utilities")
    sub = ap.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="validate params.yaml (+ overrides) and print the result")
    check.add_argument("files", nargs="+")
    summary = sub.add_parser("summary", help="FR / MAP / S / Q from attack records or shard files")
    summary.add_argument("files", nargs="+")
    cover = sub.add_parser("window-coverage",
                           help="episode success by how many frames of the class window the mask hit (synthetic)")
    cover.add_argument("--windows", required=True, help="data/raw/<dataset>/windows.csv")
    cover.add_argument("files", nargs="+")
    agree = sub.add_parser("frame-agreement",
                           help="how many episodes of each arm (a variant of the base method) sampled the base's frames")
    agree.add_argument("base", help="the base method's records or shard file (e.g. .../c3d/sva/shard0.json)")
    agree.add_argument("arms", nargs="+", help="each arm's records or shard file, one arm per file")
    sub.add_parser("schema", help="print the configuration's JSON Schema (workflow/schemas/config.schema.json)")
    sub.add_parser("methods", help="list the registered attack methods, their oracle mode, modes and settings")
    track = sub.add_parser("track", help="log to MLflow every attack record missing there (idempotent)")
    track.add_argument("--config", action="append",
                       help="config file giving tracking.experiment_prefix and the attack settings; repeat to "
                            "merge overrides (default: params.yaml)")
    track.add_argument("files", nargs="*",
                       help="per-video records (default: every record under results/attacks/ and "
                            "results/paper/attacks/)")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except UserError as err:
        print(f"sva {args.command}: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "check-config":
        cfg = load_config(*args.files)
        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    if args.command == "methods":
        print(methods_text(), end="")
        return 0
    if args.command == "schema":
        from sva.pipeline.config import json_schema

        print(json_schema(), end="")
        return 0
    if args.command == "track":
        import logging

        from sva.pipeline import layout, tracking
        from sva.utils.logs import FORMAT
        from sva.pipeline.provenance import attack_settings

        logging.basicConfig(level=logging.INFO, format=FORMAT)
        cfg = load_config(*(args.config or ["params.yaml"]))
        files = args.files or [str(p) for p in layout.record_files("results")]
        counts = tracking.sync_records(cfg.tracking.experiment_prefix, files,
                                       params=lambda r: {"attacks": attack_settings(cfg, r["method"], r["mode"])})
        print(f"{counts['logged']} records logged, {counts['present']} already in MLflow, "
              f"{counts['failed']} failed ({tracking.tracking_uri()})")
        return 1 if counts["failed"] else 0
    from sva.evaluation.aggregate import load_records, summarize

    if args.command == "window-coverage":
        from sva.evaluation.analysis import coverage_summary, episode_coverage, load_windows

        records = load_records(args.files).to_dict("records")
        print(coverage_summary(episode_coverage(records, load_windows(args.windows)))
              .to_string(index=False))
        return 0
    if args.command == "frame-agreement":
        from sva.evaluation.agreement import frame_agreement

        base = load_records([args.base]).to_dict("records")
        for path in args.arms:
            found = frame_agreement(base, load_records([path]).to_dict("records"))
            print(found.sentence() if found is not None else f"{path}: no video or episode in common with {args.base}")
        return 0
    print(summarize(load_records(args.files)).to_string(index=False))
    return 0


def methods_text() -> str:
    """Every registered attack method: name, summary, oracle mode, modes, and its config
    block ``attacks.<name>`` key by key with defaults and descriptions."""
    import json

    from sva.attacks import attack_classes

    lines = []
    for name, cls in attack_classes().items():
        lines.append(f"{name}: {cls.summary()}")
        lines.append(f"  oracle: {cls.oracle_mode} | modes: {', '.join(cls.modes)} | "
                     f"class: {cls.__module__}.{cls.__qualname__}")
        fields = list(_settings_rows(cls.Settings, f"attacks.{name}"))
        if not fields:
            lines.append(f"  attacks.{name}: no settings")
        for key, default, doc in fields:
            lines.append(f"  {key} = {json.dumps(default)}" + (f"  # {doc}" if doc else ""))
        lines.append("")
    lines.extend(_estimators_lines())
    return "\n".join(lines)


def _estimators_lines() -> list[str]:
    """The registered gradient estimators, the choices of ``attacks.<mode>.estimator``
    (the sparse FGSM perturber of the score-based methods)."""
    from sva.attacks.settings import MODES
    from sva.blackbox.estimators import ESTIMATORS

    keys = " / ".join(f"attacks.{m}.estimator" for m in MODES)
    lines = [f"gradient estimators ({keys}; the FGSM perturber of the score-based methods):"]
    for name, cls in ESTIMATORS.items():
        lines.append(f"  {name}: {cls.summary}  [{cls.__module__}.{cls.__qualname__}]")
    lines.append("")
    return lines


def _settings_rows(model, prefix: str):
    """(dotted key, default, description) of every leaf of a settings model."""
    from pydantic import BaseModel

    for key, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            yield from _settings_rows(type(default), f"{prefix}.{key}")
        else:
            yield f"{prefix}.{key}", default, field.description or ""


if __name__ == "__main__":
    sys.exit(main())
