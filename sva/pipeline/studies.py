"""Named studies: a variation of the attack settings whose results live beside the
main run's, never over them (``docs/design.md``, "Studies").

A study is a file ``config/studies/<name>.yaml`` that overrides ``attacks`` keys only.
``snakemake --cores 2 --config study=<name>`` merges it over the main configuration
(``params.yaml`` plus any ``--configfile``) and writes its attack records, tables,
figures and metrics under ``results/studies/<name>/`` and its logs under
``logs/studies/<name>/``; data, victims and attack sets are the main run's, reused and
never rebuilt (a study that touched them would overwrite the main run's). Its MLflow
runs go to experiments of their own (prefix ``<prefix>-<name>``), so they never mark
the main run's as superseded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sva.pipeline.config import Config, ConfigError, deep_merge, read_config_file, validate_config

STUDIES_DIR = Path("config/studies")
#: the top-level keys a study may override
STUDY_KEYS = frozenset({"attacks", "description"})


def available_studies(root: str | Path = ".") -> list[str]:
    """Names of the study files under ``config/studies/``."""
    return sorted(p.stem for p in (Path(root) / STUDIES_DIR).glob("*.yaml"))


def study_override(name: str, root: str | Path = ".") -> tuple[dict[str, Any], Path]:
    """The parsed study file of ``name`` and its path; ``ConfigError`` naming the file
    (and the studies there are) when it is missing, not YAML, or overrides more than
    the attack settings."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"study {name!r}: a study name is letters, digits, '-' and '_'")
    path = Path(root) / STUDIES_DIR / f"{name}.yaml"
    known = ", ".join(available_studies(root)) or "none"
    data = read_config_file(path, f"no such study file (studies: {known})")
    extra = sorted(set(data) - STUDY_KEYS)
    if extra:
        raise ConfigError(f"{path}: {', '.join(extra)}: a study overrides attacks.* only (data, victims and "
                          "attack sets are the main run's; change those in a --configfile of another run)")
    return data, path


def apply_study(config: dict[str, Any], source: str, root: str | Path = ".") -> tuple[Config, str | None]:
    """Validate Snakemake's ``config``; with ``study: <name>`` in it, merge the study
    file into ``config`` (in place, so every job sees it) first.

    Returns ``(validated config, study name or None)``.
    """
    name = config.get("study")
    if name is None:
        return validate_config(config, source), None
    override, path = study_override(str(name), root)
    main = validate_config(config, source)
    override = {k: v for k, v in override.items() if k != "description"}
    merged = deep_merge(config, override)
    merged["tracking"] = {**merged.get("tracking", {}),
                          "experiment_prefix": f"{main.tracking.experiment_prefix}-{name}"}
    cfg = validate_config(merged, f"{source} + {path}")
    config.clear()
    config.update(merged)
    return cfg, str(name)


def results_dir(study: str | None) -> str:
    """Where a run's attack results go: ``results`` or ``results/studies/<name>``."""
    return "results" if study is None else f"results/studies/{study}"


def logs_dir(study: str | None) -> str:
    """Where a run's attack logs go: ``logs`` or ``logs/studies/<name>``."""
    return "logs" if study is None else f"logs/studies/{study}"
