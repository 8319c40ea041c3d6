"""Stages of ``workflow/rules/data.smk``: raw videos, snippets, per-frame features.

Thin wrappers: plain arguments in, files out; the Snakemake scripts in
``workflow/scripts/`` unpack the ``snakemake`` object and call them."""

from __future__ import annotations

import logging
from pathlib import Path


from sva.pipeline.config import Config
from sva.utils.devices import pick_device
from sva.utils.seeding import derive_seed

log = logging.getLogger(__name__)


def download(cfg: Config, dataset: str, raw_dir: Path, cache_dir: Path) -> Path:
    """Generate (synthetic) or download + extract (UCF-101/HMDB-51) into ``raw_dir``.

    Returns the path of ``raw_dir/manifest.json``, written last.
    """
    ds = cfg.datasets[dataset]
    if ds.kind == "synthetic":
        from sva.data.synthetic import generate_synthetic

        generate_synthetic(ds.synthetic, derive_seed(cfg.seed, "dataset", dataset), Path(raw_dir))
    else:
        from sva.data.real import prepare_real_dataset

        prepare_real_dataset(ds.kind, ds.download, Path(raw_dir), Path(cache_dir))
    return Path(raw_dir) / "manifest.json"


def snippets(cfg: Config, dataset: str, raw_dir: Path, out_dir: Path) -> dict:
    """Extract the 16-frame uint8 snippets of every video in the configured split."""
    from sva.data.snippets import build_snippets
    from sva.data.splits import read_split

    ds = cfg.datasets[dataset]
    entries = read_split(ds.kind, Path(raw_dir), ds.split)
    log.info("%s: %d videos in split %d", dataset, len(entries), ds.split)
    return build_snippets(entries, Path(raw_dir) / "videos", Path(out_dir), cfg.snippets)


def features(cfg: Config, dataset: str, snippets_dir: Path, out_dir: Path, threads: int | None = None) -> None:
    """Per-frame ResNet18 features of every snippet (the agent's input)."""
    from sva.data.features import build_features

    build_features(
        Path(snippets_dir), Path(out_dir), cfg.features,
        derive_seed(cfg.seed, "features"), pick_device(cfg.device), threads=threads,
    )
