"""Not a strawman: our Sign-OPT against ART's ``SignOPTAttack`` (the reference
implementation, adversarial-robustness-toolbox, the ``art`` extra) on the same victim,
videos, budget and query accounting; the distortion each reaches at equal queries.

    .venv/bin/python benchmarks/art_reference.py [--config params.yaml] [--victim c3d] \\
        [--videos 5] [--frames 8] [--size 16] [--budget 3000] [--methods ours art ours_l2] \\
        [--json out.json]

Victim: ``--victim`` from the config with random weights (``build_victim``, the
config's seed), its logits standardised over ``--calibration`` synthetic train videos
(a random-weight victim answers one class for everything; see
``art_adapter.Standardized``). Videos: the first ``--videos`` synthetic test videos
rendered as the embedded dataset renders them (one per class in turn), at
``--frames`` × 3 × ``--size`` × ``--size``. Untargeted; the label is the victim's
answer on the clean video.

Every attack gets a fresh label-mode :class:`~sva.blackbox.oracle.Oracle` of
``--budget`` queries per video; ART reaches it through a ``BlackBoxClassifier`` whose
predict function asks the oracle (refused calls answer "not adversarial" and are
reported). Methods (``art_adapter`` explains each): ``ours`` (the project's L∞
``sign_opt``, run to the budget), ``art`` (ART, L2: the only norm it has), ``ours_l2``
(our ``sign_opt`` with ``geometry: l2``, run to the budget). Reported per video and as medians: queries
the oracle answered, refused calls, the returned video's L∞ / L2 / MAP (0–255) and
success (adversarial and L∞ ≤ ε), the best adversarial video answered within 25 / 50 /
100 % of the budget per norm, and the first query adversarial within ε.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from art_adapter import (
    CHECKPOINTS,
    METHODS,
    LinearVideoVictim,
    Standardized,
    as_dict,
    compare,
    linear_optimum,
    paired,
    summarize,
)

from sva.data.synthetic import render_video, video_rng
from sva.pipeline.config import load_config
from sva.victims.models import build_victim


def synthetic_videos(scfg, seed: int, split: str, n: int, start: int = 0) -> torch.Tensor:
    """Videos ``start … start+n−1`` of ``split``, class ``i mod C``, float32 ``(n, T, 3, H, W)`` in [0, 1]."""
    out = []
    for i in range(start, start + n):
        cls = i % scfg.num_classes
        v = render_video(cls, video_rng(seed, split, cls, i // scfg.num_classes), scfg)
        out.append(torch.from_numpy(v).permute(0, 3, 1, 2).float().div_(255.0))
    return torch.stack(out)


def fmt(v, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.{digits}f}"
    return str(v)


def finite(obj):
    """``obj`` with every non-finite float as ``None`` (JSON)."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "params.yaml"))
    ap.add_argument("--victim", default="c3d", choices=["c3d", "lrcn", "linear"],
                    help="a config victim with random weights, or a random linear classifier (whose minimal "
                         "distances are known)")
    ap.add_argument("--videos", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=16, help="frame height and width (even, ≥ 16)")
    ap.add_argument("--budget", type=int, default=3000, help="queries per video, every method")
    ap.add_argument("--eps", type=float, default=None, help="L∞ success bound (default: the config's attacks.eps)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--calibration", type=int, default=64, help="train videos the logits are standardised over")
    ap.add_argument("--seed", type=int, default=None, help="default: the config's seed")
    ap.add_argument("--batch-size", type=int, default=None, help="oracle batch (default: attacks.oracle_batch_size)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write every result and the summary here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    seed = cfg.seed if args.seed is None else args.seed
    eps = cfg.attacks.eps if args.eps is None else args.eps
    batch_size = args.batch_size or cfg.attacks.oracle_batch_size
    ds = next(iter(cfg.datasets.values()))
    base = ds.synthetic if ds.synthetic is not None else type(cfg.datasets["synthetic"].synthetic)()
    scfg = base.model_copy(update={"frames": args.frames, "height": args.size, "width": args.size,
                                   "window": (min(base.window[0], args.frames), min(base.window[1], args.frames))})
    classes = scfg.num_classes
    shape = (args.frames, 3, args.size, args.size)
    if args.victim == "linear":
        inner = LinearVideoVictim(shape, classes, seed=seed)
    else:
        inner = build_victim(args.victim, cfg.victims, classes, (args.size, args.size), num_frames=args.frames,
                             seed=seed)
    model = Standardized(inner, synthetic_videos(scfg, seed, "train", args.calibration)).eval()
    videos = synthetic_videos(scfg, seed, "test", args.videos)
    with torch.inference_mode():
        labels = model(videos).double().argmax(1).tolist()
    optimum = None
    if args.victim == "linear":  # the standardised linear victim is linear: W / std, (b − mean) / std
        w_eff = inner.w.detach().double() / model.std.double()[:, None]
        b_eff = (inner.b.detach().double() - model.mean.double()) / model.std.double()
        optimum = [linear_optimum(w_eff, b_eff, x, label) for x, label in zip(videos, labels)]

    import art

    print(f"victim {args.victim} (random weights, seed {seed}, logits standardised over {args.calibration} train "
          f"videos), {args.videos} synthetic test videos {args.frames}x3x{args.size}x{args.size}, labels {labels}")
    print(f"untargeted, budget {args.budget} queries per video and method, eps {eps:g} (L∞), oracle batch "
          f"{batch_size}, {args.threads} thread(s), ART {art.__version__}, torch {torch.__version__}")
    cols = "method video  queries refused adv   Linf     L2       MAP    " + " ".join(
        f"Linf@{int(c * 100)}%" for c in CHECKPOINTS) + "  " + " ".join(
        f"L2@{int(c * 100)}%" for c in CHECKPOINTS) + "  Q-to-eps stop       s"
    if optimum is not None:
        for i, (o_inf, o_2) in enumerate(optimum):
            print(f"video {i}: the smallest adversarial distance: L∞ {o_inf:.3g} (exact), L2 ≥ {o_2:.3g} (no clip)")
    print(cols)

    def show(r):
        print(f"{r.method:<7} {r.video:>4} {r.queries:>8} {r.refused:>7} {str(r.returned_adversarial)[0]:>3} "
              f"{fmt(r.returned_linf):>8} {fmt(r.returned_l2):>8} {fmt(r.returned_map, 3):>7} "
              + " ".join(f"{fmt(r.best_linf[c]):>8}" for c in CHECKPOINTS) + "  "
              + " ".join(f"{fmt(r.best_l2[c]):>7}" for c in CHECKPOINTS)
              + f"  {fmt(r.queries_to_eps):>8} {r.stop:<10} {r.seconds:5.1f}", flush=True)

    t0 = time.perf_counter()
    results = compare(model, videos, labels, args.budget, classes, eps=eps, methods=args.methods, seed=seed,
                      batch_size=batch_size, progress=show)
    wall = time.perf_counter() - t0
    summary = summarize(results)
    print(f"\nmedians over {args.videos} videos ({wall:.0f} s in all):")
    print("method  success adv queries refused Linf     L2       MAP    " + " ".join(
        f"Linf@{int(c * 100)}%" for c in CHECKPOINTS) + "  " + " ".join(
        f"L2@{int(c * 100)}%" for c in CHECKPOINTS) + "  Q-to-eps (reached)  MAP-at-eps")
    for method, s in summary.items():
        print(f"{method:<7} {s['success']:>3}/{s['videos']:<3} {s['adversarial']:>3} {s['queries']:>7g} "
              f"{s['refused']:>7g} {fmt(s['returned_linf'])} {fmt(s['returned_l2'])} "
              f"{fmt(s['returned_map'], 3):>7} " + " ".join(f"{fmt(s['best_linf'][c]):>8}" for c in CHECKPOINTS)
              + "  " + " ".join(f"{fmt(s['best_l2'][c]):>7}" for c in CHECKPOINTS)
              + f"  {'-' if s['queries_to_eps'] is None else format(s['queries_to_eps'], 'g')} "
              f"({s['reached_eps']}/{s['videos']})  {fmt(s['map_at_eps'], 3)}")
    if optimum is not None:
        for method in summary:
            rs = [r for r in results if r.method == method]
            ratio_inf = statistics.median(r.returned_linf / optimum[r.video][0] for r in rs)
            ratio_2 = statistics.median(r.returned_l2 / optimum[r.video][1] for r in rs)
            summary[method]["over_optimum"] = {"linf": ratio_inf, "l2": ratio_2}
            print(f"{method}: returned / smallest distance, median: L∞ {ratio_inf:.2f}x, L2 {ratio_2:.2f}x "
                  f"(L2 against its no-clip lower bound)")
    pairs = []
    for a, key in (("ours", "returned_linf"), ("ours_l2", "returned_l2"), ("ours", "returned_l2"),
                   ("ours_l2", "returned_linf")):
        if a in summary and "art" in summary:
            wins, n = paired(results, a, "art", key)
            pairs.append({"method": a, "against": "art", "key": key, "at_most": wins, "videos": n})
            print(f"paired: {a} {key} <= art's on {wins}/{n} videos")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "labels": labels, "eps": eps, "wall_seconds": wall, "optimum": optimum,
            "results": [as_dict(r) for r in results], "summary": finite(summary), "paired": pairs}, indent=1))


if __name__ == "__main__":
    main()
