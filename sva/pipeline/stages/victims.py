"""Stages of ``workflow/rules/victims.smk``: train the victims, Table 1.

Thin wrappers: plain arguments in, files out; the Snakemake scripts in
``workflow/scripts/`` unpack the ``snakemake`` object and call them."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from sva.evaluation.paper import paper_accuracy
from sva.pipeline import tracking
from sva.utils import atomic
from sva.pipeline.config import Config
from sva.utils.devices import keep_cpu_memory, pick_device
from sva.utils.seeding import derive_seed

log = logging.getLogger(__name__)


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
    from sva.victims.checkpoints import save_victim
    from sva.data.snippets import load_snippets
    from sva.victims.models import build_victim, victim_arch
    from sva.victims.training import train_victim as fit

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
            "paper_accuracy": paper_accuracy(kind, m["model"]),
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
