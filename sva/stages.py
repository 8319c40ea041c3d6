"""One function per pipeline stage: plain arguments in, files out.

The Snakemake scripts in ``workflow/scripts/`` only unpack the ``snakemake`` object and
call these, so every stage is testable (and usable) without Snakemake. Every output is
written atomically (see :mod:`sva.atomic`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sva import atomic, tracking
from sva.config import Config
from sva.devices import keep_cpu_memory, pick_device
from sva.provenance import attack_settings, file_sha256
from sva.seeding import derive_seed, numpy_rng

log = logging.getLogger(__name__)

#: Test accuracy of the paper's victims on 16-frame snippets (Table 1), percent.
PAPER_TABLE1 = {
    ("ucf101", "c3d"): 85.88,
    ("ucf101", "lrcn"): 75.44,
    ("hmdb51", "c3d"): 59.57,
    ("hmdb51", "lrcn"): 34.58,
}


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
    from sva.features import build_features

    build_features(
        Path(snippets_dir), Path(out_dir), cfg.features,
        derive_seed(cfg.seed, "features"), pick_device(cfg.device), threads=threads,
    )


def _split_arrays(store, split: str):
    idx = store.split_indices(split)
    return store.frames[idx] if len(idx) else store.frames[:0], store.labels[idx]


def _log_epoch(run, dataset: str, model: str, epochs: int, epoch: int, m: dict) -> None:
    """One log line and one MLflow step per training epoch."""
    log.info("%s/%s epoch %d/%d: loss %.4f, train acc %.2f%%, test acc %.2f%%, lr %.2g, %.1fs",
             dataset, model, epoch, epochs, m["train_loss"], 100 * m["train_acc"], 100 * m["test_acc"],
             m["lr"], m["epoch_seconds"])
    run.log_metrics(m, step=epoch)


def train_victim(
    cfg: Config, dataset: str, model: str, snippets_dir: Path, ckpt_path: Path,
    metrics_path: Path, root: Path = Path("."), threads: int | None = None,
) -> dict:
    """Train one victim on the train split, evaluate on the test split, log to MLflow.

    Writes the checkpoint (``weights_only``-loadable) and a JSON summary (history,
    accuracy, timing) that Table 1 is built from.
    """
    from sva.checkpoints import save_victim
    from sva.data.snippets import load_snippets
    from sva.models import build_victim, victim_arch
    from sva.train import train_victim as fit

    store = load_snippets(Path(snippets_dir))
    device = pick_device(cfg.device)
    keep_cpu_memory()
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    arch = getattr(cfg.victims, model)
    input_hw = tuple(store.frames.shape[2:4])
    seed = derive_seed(cfg.seed, "victim", dataset, model)
    torch_seed = seed % (2**31)
    import torch

    torch.manual_seed(torch_seed)
    net = build_victim(model, cfg.victims, store.num_classes, input_hw,
                       num_frames=int(store.frames.shape[1]), seed=seed).to(device)
    train_x, train_y = _split_arrays(store, "train")
    test_x, test_y = _split_arrays(store, "test")
    log.info(
        "training %s on %s: %d train / %d test videos, %d classes, input %s, device %s",
        model, dataset, len(train_y), len(test_y), store.num_classes, input_hw, device,
    )
    arch_cfg = victim_arch(model, cfg.victims)
    tags = {"dataset": dataset, "victim": model, "stage": "train"}
    start = time.time()
    with tracking.start_run(cfg.tracking.experiment_prefix, "victims", f"{dataset}-{model}", tags, root) as run:
        run.log_params({"dataset": dataset, "model": model, "seed": cfg.seed, "arch": arch_cfg,
                        "train": arch.train.model_dump(mode="json"),
                        "n_train": len(train_y), "n_test": len(test_y), "device": str(device)})
        result = fit(
            net, train_x, train_y, test_x, test_y, arch.train, seed, device,
            on_epoch=lambda epoch, m: _log_epoch(run, dataset, model, arch.train.epochs, epoch, m),
        )
        wall = time.time() - start
        test_acc = float(result["test_acc"])
        save_victim(
            ckpt_path, net, model, arch_cfg, store.num_classes, input_hw,
            {"dataset": dataset, "test_acc": test_acc, "seed": cfg.seed},
        )
        summary = {
            "dataset": dataset, "model": model, "test_acc": test_acc,
            "n_test": int(len(test_y)), "n_train": int(len(train_y)),
            "num_classes": int(store.num_classes), "train_seconds": wall,
            "history": result.get("history", []), "device": str(device),
            "mlflow_run_id": run.run_id,
        }
        atomic.write_json(metrics_path, summary)
        run.log_metrics({"final_test_acc": test_acc, "train_seconds": wall})
        run.log_artifact(ckpt_path, "checkpoint")
        run.log_artifact(metrics_path)
    log.info("%s/%s: test accuracy %.2f%% in %.1fs", dataset, model, 100 * test_acc, wall)
    return summary


def table1(cfg: Config, metrics_paths: list[Path], out_csv: Path, root: Path = Path("."),
           out_metrics: Path | None = None) -> pd.DataFrame:
    """Victim test accuracy per (dataset, model), the paper's value beside ours.

    ``out_metrics``: the accuracies as flat JSON for ``dvc metrics``."""
    rows = []
    for path in metrics_paths:
        m = json.loads(Path(path).read_text())
        kind = cfg.datasets[m["dataset"]].kind
        rows.append({
            "dataset": m["dataset"], "kind": kind, "model": m["model"],
            "test_accuracy": round(100 * m["test_acc"], 2), "n_test": m["n_test"],
            "paper_accuracy": PAPER_TABLE1.get((kind, m["model"])),
            "train_seconds": round(m["train_seconds"], 1),
        })
    frame = pd.DataFrame(rows).sort_values(["dataset", "model"]).reset_index(drop=True)
    atomic.write_csv(out_csv, frame)
    if out_metrics is not None:
        atomic.write_json(out_metrics, {f"{r['dataset']}.{r['model']}.test_accuracy": r["test_accuracy"]
                                        for r in rows})
    with tracking.start_run(cfg.tracking.experiment_prefix, "tables", "table1", {"table": "table1"}, root) as run:
        for r in rows:
            run.log_metrics({f"{r['dataset']}.{r['model']}.test_accuracy": r["test_accuracy"]})
        run.log_artifact(out_csv)
    return frame


def attack_set(
    cfg: Config, dataset: str, snippets_dir: Path, ckpt_paths: list[Path], out_csv: Path
) -> pd.DataFrame:
    """A seeded sample of test videos that every victim classifies correctly.

    Also fixes, per video, the target class for targeted attacks: drawn uniformly from
    the other classes with the same seeded generator, so every method attacks the same
    (video, target) pairs. If fewer videos qualify than ``attack_set_size``, all of them
    are taken and a warning says so.
    """
    from sva.checkpoints import load_victim
    from sva.data.snippets import load_snippets
    from sva.train import predict

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


def attack_shard(
    cfg: Config, dataset: str, victim: str, method: str, mode: str, shard: int, attack_set_csv: Path,
    snippets_dir: Path, features_path: Path, ckpt_path: Path, out_json: Path, root: Path = Path("."),
    threads: int = 1,
) -> list[dict]:
    """Attack one shard of the attack set; one MLflow run per attacked video.

    Claims a free GPU first when CUDA is present (see :mod:`sva.gpu`). Per-video
    records are kept under ``<shard folder>/videos/`` as they finish, so a killed job
    resumes where it stopped; the shard file (the Snakemake output) is written last.
    """
    from sva.gpu import claim_gpu

    claim = claim_gpu(Path(root) / ".gpu-locks")
    import torch

    from sva.attacks.runner import run_shard
    from sva.checkpoints import load_victim
    from sva.data.snippets import load_snippets

    torch.set_num_threads(max(1, int(threads)))
    keep_cpu_memory()
    try:
        device = pick_device(cfg.device)
        store = load_snippets(Path(snippets_dir))
        feats = np.load(features_path, mmap_mode="r")
        model, _info = load_victim(ckpt_path, device, expect=victim)
        aset = pd.read_csv(attack_set_csv)
        prefix = cfg.tracking.experiment_prefix

        settings = {"attacks": attack_settings(cfg)}

        def log_run(record: dict, png: Path, rec_path: Path) -> None:
            # never raises: a tracking failure is one warning, the attacks go on
            tracking.log_attack_record(prefix, {**record, "params": settings}, rec_path, png, root)

        victim_sha = file_sha256(ckpt_path)
        log.info("%s/%s %s %s shard %d/%d: victim %s (sha256 %s), device %s", dataset, victim, method, mode,
                 shard, cfg.attacks.shards, ckpt_path, victim_sha[:16], device)
        out_dir = Path(out_json).parent  # shared by every shard: re-sharding reuses finished videos
        records = run_shard(cfg, dataset, victim, method, mode, shard, aset, store, feats, model, device,
                            out_dir, victim_sha, on_record=log_run)
        atomic.write_json(out_json, records)
        return records
    finally:
        claim.release()


def attack_table(cfg: Config, mode: str, shard_paths: list[Path], out_csv: Path, out_png: Path,
                 root: Path = Path("."), attack_set_csvs: list[Path] | None = None,
                 ckpt_paths: list[Path] | None = None, out_metrics: Path | None = None) -> pd.DataFrame:
    """Table 3 (untargeted) or Table 4 (targeted) from the shard records, plus a figure.

    Refuses duplicate or foreign records (:func:`sva.aggregate.check_records`) against
    the attack sets (``results/attack_sets/<dataset>.csv``) and the victim checkpoints
    (``results/victims/<dataset>/<victim>.pt``) given. ``out_metrics``: the table's
    numbers as flat JSON (``dvc metrics diff`` compares two runs)."""
    from sva.aggregate import check_records, load_records, summarize, table_for_mode, table_metrics
    from sva.plots import attack_table_figure

    records = load_records(shard_paths)
    sets = {Path(p).stem: pd.read_csv(p, dtype={"video_id": str}) for p in attack_set_csvs or []}
    shas = {(Path(p).parent.name, Path(p).stem): file_sha256(p) for p in ckpt_paths or []}
    if attack_set_csvs is not None:
        check_records(records, sets, shas)
    kinds = {name: ds.kind for name, ds in cfg.datasets.items()}
    table = table_for_mode(summarize(records, kinds), mode)
    atomic.write_csv(out_csv, table)
    if out_metrics is not None:
        atomic.write_json(out_metrics, table_metrics(table))
    attack_table_figure(table, out_png, f"{mode} attacks")
    number = "table3" if mode == "untargeted" else "table4"
    with tracking.start_run(cfg.tracking.experiment_prefix, "tables", number, {"table": number, "mode": mode},
                            root) as run:
        for r in table.to_dict("records"):
            key = f"{r['dataset']}.{r['victim']}.{r['method']}"
            run.log_metrics({f"{key}.{m}": r[c] for m, c in
                             (("MAP", "MAP"), ("S", "S (%)"), ("Q", "Q"), ("FR", "FR (%)")) if pd.notna(r[c])})
        run.log_artifact(out_csv)
        run.log_artifact(out_png)
    return table
