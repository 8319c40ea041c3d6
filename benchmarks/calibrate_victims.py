"""Calibrate the embedded benchmark: synthetic data (in memory) -> both victims.

    .venv/bin/python benchmarks/calibrate_victims.py --seed 0
    .venv/bin/python benchmarks/calibrate_victims.py --seed 0 --variants single_frame

Generates the synthetic train/test arrays exactly as ``sva.data.synthetic`` renders
them (no video files), trains each victim with the ``params.yaml`` settings and
prints per-epoch metrics and the final test accuracy and training time. The variant
``single_frame`` trains and tests each victim on clips made of one repeated frame
(one random frame index per clip): how far a single frame gets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sva.pipeline.config import load_config  # noqa: E402
from sva.data.synthetic import generate_arrays  # noqa: E402
from sva.victims.models import build_victim  # noqa: E402
from sva.utils.seeding import numpy_rng  # noqa: E402
from sva.victims.training import train_victim  # noqa: E402


def single_frame_clips(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    t = rng.integers(0, x.shape[1], size=len(x))
    return np.repeat(x[np.arange(len(x)), t][:, None], x.shape[1], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "params.yaml"))
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="+", default=["c3d", "lrcn"])
    ap.add_argument("--epochs", type=int, default=None, help="override the configured epochs")
    ap.add_argument("--variants", nargs="+", default=["video"], choices=["video", "single_frame"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="append a JSON line per run here")
    args = ap.parse_args()

    cfg = load_config(args.config)
    scfg = cfg.datasets[args.dataset].synthetic
    assert scfg is not None
    t0 = time.perf_counter()
    train_x, train_y, _ = generate_arrays(scfg, args.seed, "train")
    test_x, test_y, _ = generate_arrays(scfg, args.seed, "test")
    print(f"data: train {train_x.shape} test {test_x.shape} in {time.perf_counter() - t0:.1f}s", flush=True)
    variants = []
    if "video" in args.variants:
        variants.append(("video", train_x, test_x))
    if "single_frame" in args.variants:
        rng = numpy_rng(args.seed, "calibrate", "single_frame")
        variants.append(("single_frame", single_frame_clips(train_x, rng), single_frame_clips(test_x, rng)))

    for name in args.models:
        mcfg = getattr(cfg.victims, name)
        tcfg = mcfg.train if args.epochs is None else mcfg.train.model_copy(update={"epochs": args.epochs})
        for variant, tr_x, te_x in variants:
            model = build_victim(
                name, cfg.victims, scfg.num_classes, (scfg.height, scfg.width), num_frames=scfg.frames, seed=args.seed
            )

            def show(epoch: int, m: dict) -> None:
                print(
                    f"  {name}/{variant} epoch {epoch:2d} loss {m['train_loss']:.3f} train {m['train_acc']:.3f} "
                    f"test {m['test_acc']:.3f} lr {m['lr']:.1e} {m['epoch_seconds']:.1f}s",
                    flush=True,
                )

            res = train_victim(
                model,
                tr_x,
                train_y,
                te_x,
                test_y,
                tcfg,
                args.seed,
                "cpu",
                on_epoch=show,
                progress=False,
                num_threads=args.threads,
            )
            line = {
                "model": name,
                "variant": variant,
                "seed": args.seed,
                "test_acc": res["test_acc"],
                "train_acc": res["train_acc"],
                "train_seconds": round(res["train_seconds"], 1),
                "epochs": tcfg.epochs,
                "threads": torch.get_num_threads(),
            }
            print("RESULT", json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
