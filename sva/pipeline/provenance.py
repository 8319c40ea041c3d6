"""What a result was made from: config slices, code fingerprints and content hashes.

A result that looks up to date must be up to date (``docs/design.md``, "Results never
go stale"). Two mechanisms rely on this module:

* **Snakemake**: every rule gets ``params: key=stage_key(cfg, stage, ...)``, a stable
  hash of the part of the configuration the stage reads (:func:`config_slice`) and of
  the source code it runs (:func:`code_fingerprint`). Snakemake's ``params`` rerun
  trigger then reruns exactly the jobs whose settings or code changed.
* **Attack records**: every per-video record carries a ``record_key`` over the attack
  settings, the victim checkpoint's content hash, the video's data hash and the attack
  code's fingerprint (:func:`record_key`). A record under another key is recomputed,
  never reused.

The code fingerprint of a stage is the SHA-256 of the source of its stage function in
:mod:`sva.pipeline.stages` plus every ``sva`` module that function imports, transitively (found
by parsing imports, including those inside functions). Modules that cannot change a
number are left out (:data:`BOOKKEEPING`): tracking, logging, the CLI, the GPU claim,
and the config schema, whose effect is entirely in the config slice's values.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
from pathlib import Path


from sva.pipeline.config import Config
from sva.utils.hashing import array_sha256, file_sha256, stable_hash  # noqa: F401 (re-exported)

PACKAGE_DIR = Path(__file__).resolve().parent.parent

#: modules that record, log or schedule but never change an output's content
BOOKKEEPING = frozenset({
    "sva.pipeline.tracking", "sva.utils.logs", "sva.cli", "sva.pipeline.gpu", "sva.pipeline.config", "sva.pipeline.provenance", "sva.utils.errors",
    "sva.pipeline.studies",
})

#: stages that are not a function of :mod:`sva.pipeline.stages`: stage name → root module
STAGE_MODULES = {"results_doc": "sva.pipeline.report", "reproduction": "sva.pipeline.report"}

#: stage name → the module of :mod:`sva.pipeline.stages` (one per rule file) whose
#: function of the same name implements it
STAGE_FUNCTIONS = {
    "download": "data", "snippets": "data", "features": "data",
    "train_victim": "victims", "table1": "victims", "attack_set": "attack_set",
    "attack_shard": "attacks", "attack_table": "attacks", "ablation_table": "attacks",
}


#: data files a module reads (package-relative): they count as its source
MODULE_DATA = {"sva.evaluation.paper": ("evaluation/paper_numbers.yaml",)}

#: the attack settings every method reads (besides its mode's block and its own block)
ATTACK_COMMON = ("eps", "budget_scope", "oracle_batch_size", "videos_in_flight")


# -- code fingerprints ---------------------------------------------------------------------


def _module_file(name: str) -> Path | None:
    rel = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*rel)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _imports(tree: ast.AST, current: str) -> set[str]:
    """``sva`` modules imported anywhere in ``tree`` (``from sva import x`` counts x)."""
    found: set[str] = set()
    package = current if _module_file(current) and _module_file(current).name == "__init__.py" else \
        current.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sva")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "sva":
                continue
            found.add(mod)
            for alias in node.names:  # `from sva import atomic` imports a module
                if _module_file(f"{mod}.{alias.name}") is not None:
                    found.add(f"{mod}.{alias.name}")
    return {m for m in found if _module_file(m) is not None}


def module_closure(roots: set[str]) -> set[str]:
    """Every ``sva`` module reachable from ``roots`` by imports, less :data:`BOOKKEEPING`.

    A package's ``__init__`` is included when it is imported, as are the parents of an
    imported module (Python runs them)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name in BOOKKEEPING or _module_file(name) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(2, len(parts)))
        tree = ast.parse(_module_file(name).read_text(encoding="utf-8"))
        todo.extend(_imports(tree, name))
    return seen


def _stage_module(stage: str):
    import importlib

    return importlib.import_module(f"sva.pipeline.stages.{STAGE_FUNCTIONS[stage]}")


def method_modules(method: str | None = None) -> set[str]:
    """The modules of the registered attack ``method`` (``None``: every method). The
    registry imports them by name, so the import graph cannot show them."""
    from sva.attacks.base import attack_classes

    classes = attack_classes()
    return {cls.__module__ for name, cls in classes.items() if method in (None, name)}


def stage_modules(stage: str, method: str | None = None) -> set[str]:
    """The modules a pipeline stage runs (see the module docstring). ``attack_shard``
    runs one registered method: ``method``, or (``None``) any of them."""
    if stage in STAGE_MODULES:
        return module_closure({STAGE_MODULES[stage]})
    module = _stage_module(stage)
    name = module.__name__
    tree = ast.parse(inspect.getsource(module))
    # module-level imports of the stage's module apply to every stage in it;
    # function-level ones only to the function that makes them
    module_level = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module_level |= _imports(ast.Module(body=[node], type_ignores=[]), name)
    fn_tree = ast.parse(inspect.getsource(getattr(module, stage)).lstrip())
    roots = module_level | _imports(fn_tree, name)
    if stage == "attack_shard":
        roots |= method_modules(method)
    return module_closure(roots) - {name}


def stage_files(stage: str, method: str | None = None) -> list[Path]:
    """Source files (absolute, sorted) a stage's fingerprint covers, with the data
    files its modules read (:data:`MODULE_DATA`)."""
    modules = stage_modules(stage, method)
    data = [PACKAGE_DIR / f for m in modules for f in MODULE_DATA.get(m, ())]
    return sorted([_module_file(m) for m in modules] + data)


def _stages_source_for(stage: str) -> str:
    """The source of the stage's module without the other stages' functions (helpers and
    constants stay: any stage of the module may use them)."""
    module = _stage_module(stage)
    lines = inspect.getsource(module).splitlines(keepends=True)
    others = {s for s, m in STAGE_FUNCTIONS.items() if s != stage and m == STAGE_FUNCTIONS[stage]}
    drop: set[int] = set()
    for node in ast.parse("".join(lines)).body:
        if isinstance(node, ast.FunctionDef) and node.name in others:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            drop.update(range(start - 1, node.end_lineno))
    return "".join(line for i, line in enumerate(lines) if i not in drop)


@functools.lru_cache(maxsize=None)
def code_fingerprint(stage: str, method: str | None = None) -> str:
    """SHA-256 (16 hex chars) of a stage function's source and its modules' sources.

    ``method`` (``attack_shard`` only): the fingerprint of that method's attack jobs,
    which leaves out the other methods' modules, so editing one method reruns its
    attacks only."""
    digest = hashlib.sha256(b"" if stage in STAGE_MODULES else _stages_source_for(stage).encode())
    for path in stage_files(stage, method):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# -- config slices ---------------------------------------------------------------------------


def attack_settings(cfg: Config, method: str, mode: str) -> dict:
    """The attack settings that decide one video's attack by ``method`` in ``mode``: the
    common ones, the mode's block and the method's block (not the job selection —
    methods, modes, shards — nor another method's or mode's block). A variant's are its
    resolved blocks (base block with its overrides) and the name of its base method."""
    a = cfg.attacks
    base = a.base_method(method)
    return {**{k: getattr(a, k) for k in ATTACK_COMMON}, "eps": a.eps_of(method),
            mode: a.mode_cfg(mode, method).model_dump(mode="json"),
            method: a.method_cfg(method).model_dump(mode="json"),
            **({"variant_of": base} if base != method else {})}


def config_slice(cfg: Config, stage: str, *, dataset: str | None = None, model: str | None = None,
                 table: str | None = None, method: str | None = None, mode: str | None = None) -> dict:
    """The part of the configuration ``stage`` reads (for one dataset / model)."""
    ds = cfg.datasets[dataset].model_dump(mode="json") if dataset else None
    if stage == "download":
        return {"seed": cfg.seed, "kind": ds["kind"], "synthetic": ds["synthetic"], "download": ds["download"]}
    if stage == "snippets":
        return {"kind": ds["kind"], "split": ds["split"], "snippets": cfg.snippets.model_dump(mode="json")}
    if stage == "features":
        return {"seed": cfg.seed, "features": cfg.features.model_dump(mode="json")}
    if stage == "train_victim":
        return {"seed": cfg.seed, "model": model, "victim": getattr(cfg.victims, model).model_dump(mode="json")}
    if stage == "table1":
        return {"kinds": {name: d.kind for name, d in sorted(cfg.datasets.items())}}
    if stage == "attack_set":
        return {"seed": cfg.seed, "attack_set_size": ds["attack_set_size"]}
    if stage == "attack_shard":
        limit = cfg.videos_limit(method)
        return {"seed": cfg.seed, "attacks": attack_settings(cfg, method, mode), "shards": cfg.attacks.shards,
                **({"videos": limit} if limit is not None else {})}
    if stage == "attack_table":
        return {"table": table, "kinds": {name: d.kind for name, d in sorted(cfg.datasets.items())}}
    if stage == "ablation_table":
        t = cfg.tables.get(table)
        return {"table": table, "kinds": {name: d.kind for name, d in sorted(cfg.datasets.items())},
                "spec": t.model_dump(mode="json") if t is not None else None}
    if stage == "results_doc":
        return {}
    if stage == "reproduction":
        return {"tables": {n: t.model_dump(mode="json") for n, t in sorted(cfg.tables.items())},
                "variants": {n: v.method for n, v in sorted(cfg.attacks.variants.items())}}
    raise ValueError(f"unknown stage {stage!r}; known: {', '.join([*STAGE_FUNCTIONS, *STAGE_MODULES])}")


def stage_key(cfg: Config, stage: str, **wildcards: str | None) -> str:
    """What a Snakemake rule passes as ``params.key``: config slice + code fingerprint."""
    method = wildcards.get("method")
    code = code_fingerprint(stage, cfg.attacks.base_method(method) if method else None)
    return stable_hash({"config": config_slice(cfg, stage, **wildcards), "code": code})


def record_key(cfg: Config, *, dataset: str, victim: str, method: str, mode: str, video_id: str,
               victim_sha256: str, data_sha256: str, batched_with: list[str] | None = None) -> str:
    """The key of one per-video attack record (16 hex chars).

    Covers the seed, the attack settings (not the job selection: methods, modes, shard
    count), the job's identity, the victim checkpoint's content hash, the hash of the
    video's data (frames, features, label, target, target-class candidates), the
    attack code's fingerprint and, when several videos are attacked side by side, the
    ids of the videos that shared the victim's batches (``batched_with``: a video's
    answers can differ in their last float bits with the rows it shared a forward pass
    with, so its record is that of this group).
    """
    extra = {"batched_with": [str(v) for v in batched_with]} if batched_with is not None else {}
    return stable_hash({**extra,
        "seed": cfg.seed, "attacks": attack_settings(cfg, method, mode),
        "job": [dataset, victim, method, mode, str(video_id)],
        "victim_sha256": victim_sha256, "data_sha256": data_sha256,
        "code": code_fingerprint("attack_shard", cfg.attacks.base_method(method)),
    })
