"""Queries per second of every registered attack against the victim's raw batched
forward, as a ratio measured in one run.

Both are measured in this one process, on the same victim at the same batch size
(``attacks.oracle_batch_size``). A noisy machine moves both, so the two are timed in
short **interleaved blocks** (raw, attack, raw, attack, …); each attack block is
divided by the mean of the raw blocks on either side of it, and the median of those
ratios is reported with its range. Target: ratio ≥ 0.90 for the score-based methods
(the attack's own work — noise, projections, the agent, the oracle's bookkeeping —
costs at most 10% of the victim's time).

    .venv/bin/python benchmarks/attack_throughput.py [--config params.yaml] [--victim c3d] \\
        [--method sva] [--blocks 5] [--block-seconds 2] [--in-flight 1 --in-flight 4] [--run .]

With ``--run DIR`` (e.g. ``--run .`` after ``make demo``) the victims are the run's
trained checkpoints and the videos its attack set: use it for the hard-label methods,
whose path depends on the victim (on a random-weight victim no random direction flips
the label, so Opt-attack ends after its start). Without it the victims are built from
the config with random weights (the score-based methods' work does not depend on the
weights). An attack block runs the method on videos ``start, start+1, …`` (cycling
through the set with new seeds), ``--in-flight k`` at a time, until the block's time is
up; a started group finishes, so a block can run longer than ``--block-seconds``; every
query counts. Peak resident memory is printed too.
"""

from __future__ import annotations

import argparse
import resource
from pathlib import Path
import statistics
import time
from collections import Counter

import torch

from sva.attacks import attack_classes
from sva.attacks.base import AttackTask
from sva.blackbox.oracle import Oracle
from sva.blackbox.rounds import VideoRounds, lanes_for, run_side_by_side
from sva.evaluation.trajectory import Trajectory
from sva.pipeline.attack_job import build_method
from sva.pipeline.config import load_config, validate_config
from sva.utils.devices import keep_cpu_memory, pick_device
from sva.victims.models import build_victim


#: forwards the raw block queues before one read-back
QUEUED = 4


def raw_block(model, batch: torch.Tensor, seconds: float) -> float:
    """Videos per second of plain batched forwards under inference_mode, for ``seconds``.
    On a GPU the forwards are queued ``QUEUED`` at a time and their logits copied to the
    host at once, as the oracle reads a call's forwards back once: the device never
    waits for the host between them, and the clock never runs ahead of the device."""
    n = 0
    with torch.inference_mode():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            torch.cat([model(batch) for _ in range(QUEUED)]).cpu()
            n += QUEUED * batch.shape[0]
        return n / (time.perf_counter() - t0)


def noise_seconds_per_query(population: int, clip: tuple[int, ...], device, seconds: float) -> float:
    """Seconds to draw one query's share of an NES estimate's Gaussian noise on ``device``:
    an estimate of ``population`` queries draws ``population / 2`` antithetic noise
    videos of shape ``clip`` (every frame: dense; SVA draws only its selected frames).
    Timed as :class:`sva.blackbox.estimators.NES` draws it (``normal_`` into a reused buffer)."""
    noise = torch.empty((population // 2, *clip), device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        noise.normal_(generator=gen)
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / (n * population)


def trained_case(run: Path, dataset: str, victim: str, device) -> tuple[torch.nn.Module, torch.Tensor, list[int]]:
    """The trained ``victim`` of a finished run in folder ``run`` and its attack-set
    videos with their labels (float32 ``(N, T, 3, H, W)``)."""
    import pandas as pd

    from sva.data.snippets import load_snippets
    from sva.victims.checkpoints import load_victim

    model, _ = load_victim(run / "results" / "victims" / dataset / f"{victim}.pt", device, expect=victim)
    aset = pd.read_csv(run / "results" / "attack_sets" / f"{dataset}.csv")
    store = load_snippets(run / "data" / "snippets" / dataset)
    videos = torch.stack([store.as_float(int(i)) for i in aset["idx"]]).to(device)
    return model.eval(), videos, [int(v) for v in aset["label"]]


def attack_block(cfg, method: str, model, videos: torch.Tensor, labels: list[int], seconds: float, device,
                 budget: int, start: int, in_flight: int = 1, round_sizes=None,
                 lanes: int | None = None) -> tuple[float, int]:
    """Queries per second of ``method`` attacking videos ``start, start+1, …`` (each with
    ``budget`` queries, labels known beforehand) until ``seconds`` have passed;
    returns (q/s, queries). ``in_flight`` > 1: groups of that many videos side by side,
    their queries merged into shared batches (:mod:`sva.blackbox.rounds`, as the attack
    stage does with ``attacks.videos_in_flight``); ``round_sizes`` (a Counter) then
    collects the victim's rows by the size of the round they came in."""
    a = cfg.attacks
    attack = build_method(a, method, "untargeted")
    cls = attack_classes()[method]
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(videos.shape[1], 512, generator=gen)
    # a method built on SVA's records (random selection, SVA_opt) gets the hints an SVA record
    # choosing every second frame gives it
    sva_record = {"success": True, "selected_frames": list(range(0, videos.shape[1], 2)),
                  "episodes": [{"frames": list(range(0, videos.shape[1], 2))}]}
    hints = cls.hints_from({m: sva_record for m in cls.depends_on}) if cls.depends_on else {}
    train_feats = None
    if cls.offline_fraction(attack.settings):  # SVAL: its agent trains on two other videos' features (no query)
        train_feats = torch.randn(2, videos.shape[1], 512, generator=gen)
    if cls.reads_tables(attack.settings, "untargeted"):  # SVAL's 'auto' S: the paper's untargeted choice
        hints["sparsity"] = 0.5

    def one(i: int, client=None) -> int:
        x, label = videos[i % len(videos)], labels[i % len(videos)]
        # with the trajectory observer, as the attack stage runs it (sva/pipeline/attack_job.py)
        oracle = Oracle(model, budget, batch_size=a.oracle_batch_size, device=device, mode=cls.oracle_mode,
                        rounds=client, observer=Trajectory(x, label, None, a.eps))
        # as the attack stage: the config's seed, the video in the seed keys (so SVAL's agent,
        # seeded by the seed alone, trains once and is shared, as in a run)
        attack(oracle, AttackTask(x, label, features=feats, seed=cfg.seed, seed_keys=("benchmark", i), hints=hints,
                                  train_features=train_feats))
        return oracle.used

    used, i = 0, start
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if in_flight == 1:
            used += one(i)
        else:
            rounds = VideoRounds(model, a.oracle_batch_size,
                                 lanes=lanes if lanes is not None else lanes_for(device, in_flight))
            used += sum(run_side_by_side(rounds, [lambda c, j=j: one(j, c) for j in range(i, i + in_flight)]))
            if round_sizes is not None:
                round_sizes.update({k: k * n for k, n in rounds.round_sizes.items()})
        i += in_flight
    return used / (time.perf_counter() - t0), used


def bench_config(configs: list[str] | None, oracle_batch: int | None = None):
    """The merged, validated config of the benchmarks (default params.yaml), with SVA
    allowed as many epochs as the budget pays for and, if given, the oracle's batch."""
    configs = configs or ["params.yaml"]
    data = load_config(*configs).model_dump(mode="json")
    data["attacks"]["sva"]["epochs"] = 10**6  # SVA: as many epochs as the budget pays for
    if oracle_batch:
        data["attacks"]["oracle_batch_size"] = oracle_batch
    return validate_config(data, ", ".join(configs))


def clip_shape(cfg) -> tuple[int, int, int, int]:
    """(frames, height, width, classes) of the config's first dataset's clips (112×112
    and 101 classes for a real dataset)."""
    syn = next(iter(cfg.datasets.values())).synthetic
    h, w = (syn.height, syn.width) if syn else (112, 112)
    if cfg.snippets.crop:
        h, w = cfg.snippets.crop
    return cfg.snippets.num_frames, h, w, (syn.num_classes if syn else 101)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append",
                    help="config file (repeatable, merged in order as Snakemake does; default params.yaml), e.g. "
                    "--config params.yaml --config config/paper.yaml for the paper's full-size victims")
    ap.add_argument("--victim", action="append", choices=["c3d", "lrcn"])
    ap.add_argument("--method", action="append", help="registered method (default: every one)")
    ap.add_argument("--blocks", type=int, default=5, help="attack blocks per (victim, method)")
    ap.add_argument("--block-seconds", type=float, default=2.0)
    ap.add_argument("--budget", type=int, default=3000, help="queries per attacked video")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run", default=None,
                    help="folder of a finished run (e.g. . after make demo): attack its trained victims and "
                    "attack-set videos, so the hard-label attacks go through every phase; default: random weights")
    ap.add_argument("--in-flight", type=int, action="append",
                    help="videos attacked side by side (repeatable; default: 1 and attacks.videos_in_flight, "
                    "or 1 and 4 when that is 1)")
    ap.add_argument("--oracle-batch", type=int, default=None,
                    help="the victim's forward batch (attacks.oracle_batch_size; default: the config's)")
    ap.add_argument("--lanes", type=int, default=None,
                    help="lanes of the shared rounds with videos in flight (default: sva.blackbox.rounds.lanes_for: "
                         "2 on a GPU, 1 on the CPU)")
    ap.add_argument("--glibc-default-malloc", action="store_true",
                    help="skip sva.utils.devices.keep_cpu_memory (what the attack stage calls) to see its effect")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kept = False if args.glibc_default_malloc else keep_cpu_memory()
    cfg = bench_config(args.config, args.oracle_batch)
    device = pick_device(cfg.device)
    t, h, w, classes = clip_shape(cfg)
    bs = cfg.attacks.oracle_batch_size
    methods = args.method or list(attack_classes())
    in_flight = args.in_flight or sorted({1, cfg.attacks.videos_in_flight if cfg.attacks.videos_in_flight > 1 else 4})
    card = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device {device}{card}, threads {args.threads}, video {t}x3x{h}x{w}, oracle batch {bs}, "
          f"keep_cpu_memory {kept}, {args.blocks} interleaved blocks of {args.block_seconds:g}s")
    dataset = next(iter(cfg.datasets))
    for name in args.victim or cfg.victims.models:
        g = torch.Generator().manual_seed(1)
        if args.run is not None:  # the run's trained victim and its attack set: every phase of every attack runs
            model, videos, labels = trained_case(Path(args.run), dataset, name, device)
            print(f"{name}: trained victim and {len(labels)} attack-set videos from {args.run}")
        else:
            model = build_victim(name, cfg.victims, classes, (h, w), num_frames=t, seed=cfg.seed).to(device).eval()
            videos = torch.rand(64, t, 3, h, w, generator=g).to(device)
            with torch.inference_mode():
                labels = model(videos).argmax(1).tolist()
        batch = torch.rand(bs, *videos.shape[1:], generator=g).to(device)
        if {"sva", "dense", "random", "sval"} & set(methods):  # the NES methods' own arithmetic, against the forward
            pop = cfg.attacks.untargeted.population
            forward = 1 / raw_block(model, batch, args.block_seconds)
            draw = noise_seconds_per_query(pop, tuple(videos.shape[1:]), device, args.block_seconds)
            print(f"{name}: NES noise of one query on every frame (population {pop}) {draw * 1e6:.0f} us "
                  f"= {draw / forward:.3f} of the raw forward per video ({forward * 1e6:.0f} us): "
                  f"dense's ratio is at most {forward / (forward + draw):.3f}", flush=True)
        for method in methods:
            attack_block(cfg, method, model, videos, labels, 0.5, device, 200, 0)  # warm-up: imports, allocator
            for k in in_flight:
                raws = [raw_block(model, batch, args.block_seconds)]
                attacks, start, sizes = [], 0, Counter()
                for _ in range(args.blocks):
                    qps, used = attack_block(cfg, method, model, videos, labels, args.block_seconds, device,
                                             args.budget, start, k, sizes, args.lanes)
                    start += k + used // max(args.budget, 1)
                    attacks.append(qps)
                    raws.append(raw_block(model, batch, args.block_seconds))
                ratios = [q / ((raws[i] + raws[i + 1]) / 2) for i, q in enumerate(attacks)]
                print(f"{name} {method:>10} in flight {k:>2}: raw forward {statistics.median(raws):8.1f} videos/s | "
                      f"attack {statistics.median(attacks):8.1f} queries/s | ratio median "
                      f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}, "
                      f"{len(ratios)} blocks)", flush=True)
                if sizes:  # how full the shared batches were
                    rows = sum(sizes.values())
                    small = sum(n for size, n in sizes.items() if size < k + 1)
                    print(f"{'':>27}rows in rounds of at most {k} videos (one query per video): "
                          f"{100 * small / rows:.0f} % of {rows}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:.0f} MiB")


if __name__ == "__main__":
    main()
