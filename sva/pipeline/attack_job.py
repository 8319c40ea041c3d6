"""Attack one video end to end, and a shard of videos: build the attack from the
config, wrap the victim in an :class:`~sva.blackbox.oracle.Oracle`, attack, let the evaluator
confirm, write the record, the adversarial video and the PNG strip.

The model object never reaches attack code: :func:`attack_video` hands the attack an
Oracle, and only the evaluator (:mod:`sva.evaluation.evaluator`) touches the model afterwards.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    import pandas as pd

from sva.attacks.base import Attack, AttackOutcome, AttackTask, build_attack
from sva.blackbox.oracle import Oracle
from sva.blackbox.rounds import RoundClient, VideoRounds, lanes_for, run_side_by_side
from sva.evaluation.evaluator import confirm, mean_reading
from sva.evaluation.trajectory import Trajectory
from sva.pipeline import layout
from sva.pipeline.config import AttacksCfg, Config, limit_videos
from sva.pipeline.provenance import code_fingerprint, record_key
from sva.utils import atomic
from sva.utils.hashing import array_sha256, stable_hash
from sva.utils.logs import bars_off
from sva.utils.seeding import derive_seed

log = logging.getLogger(__name__)


def build_method(cfg: AttacksCfg, method: str, mode: str) -> Attack:
    """The attack ``method`` (registered, or a variant of ``cfg.variants``) for ``mode``,
    built from its config blocks."""
    return build_attack(cfg.base_method(method), cfg.context(mode, method), cfg.method_cfg(method))


def attack_video(
    cfg: Config, method: str, mode: str, model: nn.Module, x: Tensor, label: int, target: int | None,
    features: Tensor, candidates: Tensor | None, seed_keys: tuple, device: torch.device,
    hints: dict | None = None, rounds: RoundClient | None = None, train_features: Tensor | None = None,
) -> tuple[dict, AttackOutcome]:
    """Attack one video; returns (record fields, outcome). ``x``: float32 ``(T,3,H,W)``;
    ``hints``: what the method takes from the records of the methods it depends on;
    ``train_features``: float32 ``(N, T, D)``, the features of the videos a method that
    learns offline trains on (:func:`offline_split`);
    ``rounds``: the oracle's forwards go to this shared round client (videos in flight,
    :mod:`sva.blackbox.rounds`) instead of the model directly.

    The attack gets an :class:`~sva.blackbox.oracle.Oracle` in the mode it declares
    (``score`` or ``label``) and never the model; only the evaluator touches the model
    afterwards: the L∞ checks (:func:`~sva.evaluation.evaluator.confirm`) and the
    mean reading (``success_mean_reading``, ``map_mean_reading``:
    :func:`~sva.evaluation.evaluator.mean_reading`).
    """
    a = cfg.attacks
    attack = build_method(a, method, mode)
    targeted = mode == "targeted"
    # the evaluation side watches what the attacker sees: when it first saw a video
    # meeting the goal within ε, and every smaller MAP after (sva/evaluation/trajectory.py)
    eps = a.eps_of(method)  # a variant may set its own bound (e.g. the ε sweep of Fig. 3)
    trajectory = Trajectory(x, int(label), int(target) if targeted else None, eps)
    oracle = Oracle(model, attack.oracle_budget(), batch_size=a.oracle_batch_size, device=device,
                    mode=attack.oracle_mode, rounds=rounds, observer=trajectory)
    task = AttackTask(x, int(label), int(target) if targeted else None, features, candidates,
                      seed=cfg.seed, seed_keys=seed_keys, hints=dict(hints or {}), train_features=train_features)
    outcome = attack(oracle, task)
    del oracle
    check = confirm(model, x.to(device), outcome.x_adv.to(device), label, task.target, eps)
    # the mean reading of success (MAP ≤ ε): the returned video on an L∞ success (its
    # float check's top-1 is reused), else the attack's fallback, if it has one
    if check["success"]:
        mean = mean_reading(model, x.to(device), outcome.x_adv.to(device), label, task.target, eps,
                            pred=check["pred_float"])
    else:
        fallback = None if outcome.fallback is None else outcome.fallback.to(device)
        mean = mean_reading(model, x.to(device), fallback, label, task.target, eps)
    record = {
        "method": method, **({"variant_of": a.base_method(method)} if a.base_method(method) != method else {}),
        "mode": mode, "label": int(label), "target": task.target,
        "clean_label_seen": outcome.clean_label,
        "attack_claimed_success": outcome.success,
        **check,
        **mean,
        "queries": outcome.queries, "queries_by_phase": outcome.queries_by_phase,
        "queries_best_episode": outcome.best_episode_queries, "best_episode": outcome.best_episode,
        "budget": attack.context.budget, "budget_scope": a.budget_scope, "eps": eps,
        "selected_frames": outcome.mask.nonzero().flatten().tolist(),
        "episodes": outcome.episodes, "epochs": outcome.epochs,
        "reward_trace": [e.get("reward_mean") for e in outcome.epochs],
        "trajectory": trajectory.as_lists(),
        "wall_seconds": outcome.wall_seconds,
        **({"hints": task.hints} if task.hints else {}),
        **outcome.extra,
    }
    return record, outcome


def dependency_hints(cfg: Config, method: str, mode: str, dataset: str, victim: str, results: Path,
                     video_id: str) -> dict:
    """``task.hints`` of ``method`` (a registered method) for one video, from the records
    of the methods it depends on, found where :mod:`sva.pipeline.layout` keeps them under
    the results folder ``results``; a missing record is a
    :class:`~sva.utils.errors.UserError` naming the file."""
    from sva.attacks.base import get_attack
    from sva.utils.errors import UserError

    cls = get_attack(method)
    if not cls.depends_on:
        return {}
    records = {}
    for dep in cls.depends_on:
        path = layout.method_dir(cfg, results, mode, dataset, victim, dep) / "videos" / f"{video_id}.json"
        if not path.is_file():
            raise UserError(f"{path}: {method} needs {dep}'s record of video {video_id}; run {dep}'s attacks first")
        records[dep] = json.loads(path.read_text())
    return cls.hints_from(records)


def _peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def assign_shard(video_ids: list, shards: int, shard: int) -> list:
    """Deterministic round-robin: position ``i`` of the sorted ids goes to ``i % shards``."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} out of range for {shards} shards")
    return [v for i, v in enumerate(sorted(video_ids)) if i % shards == shard]


def tables_hints(cfg: Config, attack: Attack, mode: str, dataset: str, victim: str, results: Path) -> dict:
    """What ``attack`` takes from the comparison tables it reads (:meth:`Attack.reads_tables`,
    e.g. SVAL's sparsity from Table 2), read from the results folder ``results``
    (:func:`sva.pipeline.layout.table_path`)."""
    import pandas as pd

    from sva.utils.errors import UserError

    names = type(attack).reads_tables(attack.settings, mode)
    if not names:
        return {}
    tables = {}
    for name in names:
        path = layout.table_path(cfg, results, name)
        if not path.exists():
            raise UserError(f"{path}: missing; {type(attack).name} chooses its settings from tables.{name}, "
                            "which must be built first")
        tables[name] = pd.read_csv(path)
    rows = {m: cfg.attacks.method_cfg(m) for name in names for m in cfg.tables[name].rows.values()}
    try:
        return type(attack).hints_from_tables(attack.settings, mode, tables, rows, dataset, victim)
    except ValueError as err:
        raise UserError(str(err)) from None


def offline_split(video_ids, fraction: float, seed: int, *keys) -> tuple[list, list]:
    """``(train, attack)``: a seeded ``fraction`` of ``video_ids`` (rounded; at least one,
    and at least one left over) for a method that learns offline to train on, and the
    rest, which it attacks; both sorted. ``keys`` name the draw (the dataset), so every
    victim, mode and variant of a dataset splits alike."""
    ids = sorted(video_ids)
    if len(ids) < 2:
        raise ValueError(f"a method that learns offline needs at least 2 videos (got {len(ids)})")
    n = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    order = np.random.default_rng(derive_seed(seed, "offline_split", *keys)).permutation(len(ids))
    train = sorted(ids[i] for i in order[:n])
    return train, [v for v in ids if v not in set(train)]


def video_data(cfg: Config, dataset: str, mode: str, row, store, features: np.ndarray,
               train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, str]:
    """What one video's attack reads, and the hash of it (cheap: no float tensors).

    Returns ``(feats, pick, data_sha256)``: ``feats`` float32 ``(T, D)`` (a writable
    copy); ``pick`` the train-split indices of the targeted start's candidates (None
    untargeted); the hash covers the uint8 frames, the features, the label, the target
    and the candidates' frames.
    """
    idx = int(row["idx"])
    target = int(row["target_label"]) if mode == "targeted" else -1
    pick = None
    if mode == "targeted":
        pool = train_idx[store.labels[train_idx] == target]
        gen = np.random.default_rng(derive_seed(cfg.seed, "candidates", dataset, row.name))
        pick = gen.permutation(pool)[: cfg.attacks.targeted.init_candidates]
    feats = np.array(features[idx], dtype=np.float32)
    data_sha = array_sha256(store.frames[idx], feats, np.array([int(row["label"]), target]),
                            None if pick is None else store.frames[np.sort(pick)], pick)
    return feats, pick, data_sha


def video_groups(video_ids: list, in_flight: int) -> list[list]:
    """A shard's videos (in order) in consecutive groups of ``in_flight``, each group
    attacked side by side (:mod:`sva.blackbox.rounds`)."""
    if in_flight < 1:
        raise ValueError(f"in_flight must be >= 1, got {in_flight}")
    return [list(video_ids[i:i + in_flight]) for i in range(0, len(video_ids), in_flight)]


def run_shard(
    cfg: Config, dataset: str, victim: str, method: str, mode: str, shard: int,
    attack_set: pd.DataFrame, store, features: np.ndarray, model: nn.Module, device: torch.device,
    out_dir: Path, victim_sha256: str, on_record: Callable[[dict, Path, Path], None] | None = None,
    progress: bool = True, results: Path | None = None,
) -> list[dict]:
    """Attack this shard's videos; one record per video under ``out_dir/videos/``.

    ``out_dir`` is shared by every shard of a (mode, dataset, victim, method). The
    records of the methods this one depends on and the comparison tables it reads are
    found under the results folder ``results`` (:mod:`sva.pipeline.layout`; default:
    the one of a main-run ``out_dir``, ``<results>/attacks/<mode>/<dataset>/<victim>/<method>``). The
    shard's videos are attacked ``attacks.videos_in_flight`` at a time
    (:func:`video_groups`): the attacks of a group run side by side and their queries
    share the victim's batches (:mod:`sva.blackbox.rounds`). A video whose record exists
    under the same :func:`~sva.pipeline.provenance.record_key` (attack settings, victim
    checkpoint ``victim_sha256``, the video's data, the attack code and, with more than
    one video in flight, the videos of its group) is not attacked again: that is how a
    killed job resumes. A group is reused only whole: a group with a missing or stale
    record is attacked again whole, so that every video's batches are those of an
    uninterrupted run. With one video in flight a change of the shard count reuses
    every finished video. Each attacked or reused video gets one log line. Returns the
    shard's records in the shard's video order.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    results = Path(results) if results is not None else out_dir.parents[4]
    rows = attack_set.set_index("video_id")
    # a method only comparison tables show may attack the first N videos only (tables.<name>.videos)
    ids = limit_videos(rows.index, cfg.videos_limit(method))
    # a method that learns offline (SVAL) trains on a seeded share and attacks the rest
    attack = build_method(cfg.attacks, method, mode)
    fraction = type(attack).offline_fraction(attack.settings)
    train_ids: list = []
    train_feats, train_sha = None, None
    if fraction is not None:
        try:
            train_ids, ids = offline_split(ids, fraction, cfg.seed, dataset)
        except ValueError as err:
            from sva.utils.errors import UserError

            raise UserError(f"{method}, attack set of {dataset!r}: {err}; raise datasets.{dataset}.attack_set_size"
                            ) from None
        train_feats = np.stack([np.asarray(features[int(rows.loc[v, "idx"])], dtype=np.float32) for v in train_ids])
        train_sha = array_sha256(train_feats)
    mine = assign_shard(ids, cfg.attacks.shards, shard)
    table_hints = tables_hints(cfg, attack, mode, dataset, victim, results)
    in_flight = cfg.attacks.videos_in_flight
    train_idx = store.split_indices("train")
    done: dict[str, dict] = {}
    bar = tqdm(total=len(mine), desc=f"{dataset}/{victim}/{method}/{mode} shard {shard}",
               disable=not progress or bars_off(), mininterval=5.0)
    for group in video_groups(mine, in_flight):
        jobs = []
        for video_id in group:
            row = rows.loc[video_id]
            feats, pick, data_sha = video_data(cfg, dataset, mode, row, store, features, train_idx)
            hints = {**dependency_hints(cfg, cfg.attacks.base_method(method), mode, dataset, victim, results,
                                         video_id), **table_hints}
            if hints:  # what the method reads from other methods' records is part of its input
                data_sha = stable_hash({"data": data_sha, "hints": hints})
            if train_sha is not None:  # and so are the videos it learnt from
                data_sha = stable_hash({"data": data_sha, "train": train_sha, "train_videos": train_ids})
            key = record_key(cfg, dataset=dataset, victim=victim, method=method, mode=mode, video_id=video_id,
                             victim_sha256=victim_sha256, data_sha256=data_sha,
                             batched_with=group if in_flight > 1 else None)
            jobs.append(_VideoJob(video_id, row, feats, pick, data_sha, hints, key, train_ids))
        stored = [_stored_record(out_dir, j) for j in jobs]
        if all(r is not None for r in stored):
            for r in stored:
                log.info("%s", _video_line(r, reused=True))
                done[r["video_id"]] = r
            bar.update(len(group))
            continue

        def finish(i: int, result: tuple, jobs=jobs) -> None:
            record = _write_video(cfg, dataset, victim, method, mode, shard, jobs[i], result, out_dir,
                                  victim_sha256, device, on_record)
            done[record["video_id"]] = record
            bar.update(1)

        def attack_one(job: _VideoJob, client: RoundClient | None = None) -> tuple:
            return _attack_job(cfg, dataset, victim, method, mode, store, job, model, device, client, train_feats)

        if len(jobs) == 1:
            finish(0, attack_one(jobs[0]))
        else:
            rounds = VideoRounds(model, cfg.attacks.oracle_batch_size, lanes=lanes_for(device, len(jobs)))
            run_side_by_side(rounds, [lambda c, j=j: attack_one(j, c) for j in jobs], on_done=finish)
            log.info("%s/%s %s %s: %d videos side by side in %d rounds, %d forward passes of %.1f videos on average",
                     dataset, victim, method, mode, len(jobs), rounds.rounds, rounds.forwards,
                     rounds.rows / max(rounds.forwards, 1))
    bar.close()
    return [done[v] for v in mine]


class _VideoJob:
    """What one video's attack needs from the shard (cheap: no float tensors)."""

    def __init__(self, video_id, row, feats, pick, data_sha, hints, key, train_ids=()):
        self.video_id, self.row, self.feats, self.pick = video_id, row, feats, pick
        self.data_sha, self.hints, self.key, self.train_ids = data_sha, hints, key, list(train_ids)


def _stored_record(out_dir: Path, job: _VideoJob) -> dict | None:
    """The stored record of ``job``'s video if it has ``job``'s key, else None (logged)."""
    rec_path = out_dir / "videos" / f"{job.video_id}.json"
    if not rec_path.exists():
        return None
    old = json.loads(rec_path.read_text())
    if old.get("record_key") == job.key:
        return old
    log.info("%s %s: stored record has another key (%s != %s); attacking again",
             rec_path, job.video_id, old.get("record_key"), job.key)
    return None


def _attack_job(cfg: Config, dataset: str, victim: str, method: str, mode: str, store, job: _VideoJob,
                model: nn.Module, device: torch.device, client: RoundClient | None,
                train_feats: np.ndarray | None = None) -> tuple:
    """Attack one video of the shard; returns (x, record fields, outcome, started, finished)."""
    row = job.row
    x = store.as_float(int(row["idx"])).to(device)
    target = int(row["target_label"]) if mode == "targeted" else None
    candidates = None if job.pick is None else torch.stack([store.as_float(int(i)) for i in job.pick]).to(device)
    started = time.time()
    fields, outcome = attack_video(cfg, method, mode, model, x, int(row["label"]), target,
                                   torch.from_numpy(job.feats), candidates,
                                   # a variant draws its base method's random numbers (common random numbers)
                                   (dataset, victim, cfg.attacks.base_method(method), mode, job.video_id), device,
                                   job.hints, rounds=client,
                                   train_features=None if train_feats is None else torch.from_numpy(train_feats))
    return x, fields, outcome, started, time.time()


def _write_video(cfg: Config, dataset: str, victim: str, method: str, mode: str, shard: int, job: _VideoJob,
                 result: tuple, out_dir: Path, victim_sha256: str, device: torch.device,
                 on_record: Callable[[dict, Path, Path], None] | None) -> dict:
    """Write one attacked video's adversarial video, strip and record (in that order, each
    atomically: the record last, so a record on disk means a finished video)."""
    from sva.evaluation.strips import perturbation_strip

    x, fields, outcome, started, finished = result
    video_id = job.video_id
    record = {"dataset": dataset, "victim": victim, "video_id": video_id, "idx": int(job.row["idx"]), "shard": shard,
              "seed": cfg.seed, "record_key": job.key, "victim_sha256": victim_sha256, "data_sha256": job.data_sha,
              "code_fingerprint": code_fingerprint("attack_shard", cfg.attacks.base_method(method)), **fields,
              "videos_in_flight": cfg.attacks.videos_in_flight,
              # the videos an offline learner trained on: no record, by design (check_records)
              **({"offline_train_videos": job.train_ids} if job.train_ids else {}),
              "started_at": started, "finished_at": finished, "job_seconds": finished - started,
              "device": str(device), "peak_rss_mib": _peak_rss_mib()}
    rec_path = out_dir / "videos" / f"{video_id}.json"
    adv_path = out_dir / "videos" / f"{video_id}.npz"
    png_path = out_dir / "videos" / f"{video_id}.png"
    with atomic.atomic_path(adv_path) as tmp:
        np.savez_compressed(tmp, x_adv=outcome.x_adv.cpu().numpy(), mask=outcome.mask.numpy())
    title = (f"{dataset}/{victim} {method} {mode} {video_id}: label {record['label']} → {record['pred_float']}"
             f"  MAP {record['map']:.3f}  S {100 * record['sparsity']:.0f}%  Q {record['queries']}"
             f"  {'success' if record['success'] else 'failed'}")
    perturbation_strip(x.cpu(), outcome.x_adv.cpu(), png_path, title)
    record["adv_path"] = adv_path.name
    record["strip_path"] = png_path.name
    atomic.write_json(rec_path, record)
    log.info("%s", _video_line(record))
    if on_record is not None:
        on_record(record, png_path, rec_path)
    return record


def _video_line(r: dict, reused: bool = False) -> str:
    """One readable log line per video: who, what, and the record's numbers."""
    return (f"{r['dataset']}/{r['victim']} {r['method']} {r['mode']} video {r['video_id']}: "
            f"{'success' if r['success'] else 'failed '} Q={r['queries']} MAP={r['map']:.3f} "
            f"S={100 * r['sparsity']:.1f}% {r['wall_seconds']:.1f}s" + (" (reused: same record key)" if reused else ""))


__all__ = ["assign_shard", "attack_video", "build_method", "offline_split", "record_key", "video_data",
           "video_groups", "run_shard"]
