"""The stage of ``workflow/rules/attack_set.smk``: which test videos are attacked, and their targets.

Thin wrappers: plain arguments in, files out; the Snakemake scripts in
``workflow/scripts/`` unpack the ``snakemake`` object and call them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from sva.utils import atomic
from sva.pipeline.config import Config
from sva.utils.devices import pick_device
from sva.utils.seeding import numpy_rng

log = logging.getLogger(__name__)


def attack_set(
    cfg: Config, dataset: str, snippets_dir: Path, ckpt_paths: list[Path], out_csv: Path
) -> pd.DataFrame:
    """A seeded sample of test videos that every victim classifies correctly.

    Also fixes, per video, the target class for targeted attacks: drawn uniformly from
    the other classes with the same seeded generator, so every method attacks the same
    (video, target) pairs. If fewer videos qualify than ``attack_set_size``, all of them
    are taken and a warning says so.
    """
    from sva.victims.checkpoints import load_victim
    from sva.data.snippets import load_snippets
    from sva.victims.training import predict

    store = load_snippets(Path(snippets_dir))
    device = pick_device(cfg.device)
    test_idx = store.split_indices("test")
    labels = store.labels[test_idx]
    correct = np.ones(len(test_idx), dtype=bool)
    for path in ckpt_paths:
        model, _info = load_victim(path, device, expect=Path(path).stem)
        pred = predict(model, store.frames[test_idx], 64, device)
        correct &= pred == labels
        log.info("%s: %d/%d test videos correct", path, int((pred == labels).sum()), len(labels))
    eligible = test_idx[correct]
    size = cfg.datasets[dataset].attack_set_size
    rng = numpy_rng(cfg.seed, "attack_set", dataset)
    if len(eligible) < size:
        log.warning("%s: only %d test videos are classified correctly by every victim (wanted %d)",
                    dataset, len(eligible), size)
        chosen = np.sort(eligible)
    else:
        chosen = np.sort(rng.choice(eligible, size=size, replace=False))
    index = store.index.set_index("idx").loc[chosen].reset_index()
    targets = []
    for label in index["label"]:
        others = [c for c in range(store.num_classes) if c != label]
        targets.append(int(rng.choice(others)))
    frame = pd.DataFrame({
        "idx": index["idx"].astype(int), "video_id": index["video_id"],
        "class_name": index["class_name"], "label": index["label"].astype(int),
        "target_label": targets,
        "target_class": [store.class_names[t] for t in targets],
    })
    atomic.write_csv(out_csv, frame)
    return frame
