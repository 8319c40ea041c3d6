"""Attack one video end to end, and a shard of videos: build the attack from the
config, wrap the victim in an :class:`~sva.oracle.Oracle`, attack, let the evaluator
confirm, write the record, the adversarial video and the PNG strip.

The model object never reaches attack code: :func:`attack_video` hands the attack an
Oracle, and only the evaluator (:mod:`sva.evaluate`) touches the model afterwards.
"""

from __future__ import annotations

import hashlib
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

from sva import atomic
from sva.attacks.fgsm import SparseFGSM, TargetedSchedule, TargetedSparseFGSM
from sva.attacks.sva import SVA, AttackOutcome, DenseAttack, SVASettings
from sva.config import AttacksCfg, Config
from sva.estimators import build_estimator
from sva.evaluate import confirm
from sva.oracle import Oracle
from sva.rewards import RewardWeights
from sva.seeding import derive_seed, torch_generator

log = logging.getLogger(__name__)

METHODS = ("sva", "dense")
MODES = ("untargeted", "targeted")


def budget(cfg: AttacksCfg, mode: str) -> int:
    return cfg.budget_untargeted if mode == "untargeted" else cfg.budget_targeted


def build_method(cfg: AttacksCfg, method: str, mode: str) -> SVA | DenseAttack:
    """The attack object for ``method`` ∈ {sva, dense} in ``mode``."""
    if method not in METHODS:
        raise ValueError(f"unknown attack method {method!r}; known: {', '.join(METHODS)}")
    if mode not in MODES:
        raise ValueError(f"unknown attack mode {mode!r}; known: {', '.join(MODES)}")
    un = SparseFGSM(build_estimator("nes", population=cfg.nes.population, sigma=cfg.nes.sigma_untargeted),
                    eps=cfg.eps, alpha=cfg.alpha, accept_probes=cfg.accept_probes)
    t = cfg.targeted
    schedule = TargetedSchedule(alpha=t.alpha, eps_decay=t.eps_decay, keep_threshold=t.keep_threshold,
                                window=t.window, patience=t.patience, min_alpha=t.min_alpha,
                                min_eps_decay=t.min_eps_decay)
    tg = TargetedSparseFGSM(build_estimator("nes", population=cfg.nes.population, sigma=cfg.nes.sigma_targeted),
                            eps=cfg.eps, schedule=schedule)
    if method == "dense":
        return DenseAttack(un, tg)
    s = cfg.sva
    b = budget(cfg, mode)
    cap = s.episode_queries_untargeted if mode == "untargeted" else s.episode_queries_targeted
    if cfg.budget_scope == "episode":
        cap = b
    settings = SVASettings(epochs=s.epochs, episodes=s.episodes, lr=s.lr, hidden=s.hidden,
                           rewards=RewardWeights.preset(s.rewards, gamma1=s.gamma1, gamma2=s.gamma2),
                           episode_queries=cap)
    # R_attack's thresholds (Eq. 8: 15000 / 30000 of a 30000 budget) scale with the
    # budget an episode may use
    q_full = cap if cap is not None else b
    return SVA(un, tg, settings, q_full=q_full, q_half=q_full // 2)


def oracle_budget(cfg: AttacksCfg, method: str, mode: str) -> int:
    """Queries the oracle will answer for one video."""
    b = budget(cfg, mode)
    if cfg.budget_scope == "episode" and method == "sva":
        return b * cfg.sva.epochs * cfg.sva.episodes + 1 + cfg.targeted.init_candidates
    return b


#: attack settings that choose *which* jobs run, not what one video's attack does
_NOT_OUTCOME = ("methods", "modes", "shards")


def config_hash(cfg: Config, *keys: object) -> str:
    """A short hash of what determines an attack's outcome (records made under another
    configuration are recomputed, never reused). Settings that only choose which jobs
    run (methods, modes, the shard count) are left out, so adding the targeted mode or
    re-sharding keeps every finished video."""
    attacks = cfg.attacks.model_dump(mode="json", exclude=set(_NOT_OUTCOME))
    text = json.dumps([cfg.seed, attacks, [str(k) for k in keys]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def attack_video(
    cfg: Config, method: str, mode: str, model: nn.Module, x: Tensor, label: int, target: int | None,
    features: Tensor, candidates: Tensor | None, seed_keys: tuple, device: torch.device,
) -> tuple[dict, AttackOutcome]:
    """Attack one video; returns (record fields, outcome). ``x``: float32 ``(T,3,H,W)``."""
    a = cfg.attacks
    attack = build_method(a, method, mode)
    oracle = Oracle(model, oracle_budget(a, method, mode), batch_size=a.oracle_batch_size, device=device)
    gen = torch_generator(cfg.seed, "attack", *seed_keys, device=x.device)
    agent_seed = derive_seed(cfg.seed, "agent", *seed_keys) % (2**31)
    outcome = attack.attack(oracle, x, label, features, gen, agent_seed=agent_seed,
                            target=target if mode == "targeted" else None, candidates=candidates)
    del oracle
    check = confirm(model, x.to(device), outcome.x_adv.to(device), label,
                    target if mode == "targeted" else None, a.eps)
    record = {
        "method": method, "mode": mode, "label": int(label),
        "target": int(target) if mode == "targeted" else None,
        "clean_label_seen": outcome.clean_label,
        "attack_claimed_success": outcome.success,
        **check,
        "queries": outcome.queries, "queries_by_phase": outcome.queries_by_phase,
        "queries_best_episode": outcome.best_episode_queries, "best_episode": outcome.best_episode,
        "budget": budget(a, mode), "budget_scope": a.budget_scope, "eps": a.eps,
        "selected_frames": outcome.mask.nonzero().flatten().tolist(),
        "episodes": outcome.episodes, "epochs": outcome.epochs,
        "reward_trace": [e.get("reward_mean") for e in outcome.epochs],
        "wall_seconds": outcome.wall_seconds,
    }
    return record, outcome


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


def run_shard(
    cfg: Config, dataset: str, victim: str, method: str, mode: str, shard: int,
    attack_set: pd.DataFrame, store, features: np.ndarray, model: nn.Module, device: torch.device,
    out_dir: Path, on_record: Callable[[dict, Path, Path], None] | None = None, progress: bool = True,
) -> list[dict]:
    """Attack this shard's videos; one record per video under ``out_dir/videos/``.

    A video whose record exists with the same configuration hash is not attacked
    again (resume after a kill). Returns the shard's records.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    rows = attack_set.set_index("video_id")
    mine = assign_shard(list(rows.index), cfg.attacks.shards, shard)
    records = []
    train_idx = store.split_indices("train")
    for video_id in tqdm(mine, desc=f"{dataset}/{victim}/{method}/{mode} shard {shard}", disable=not progress):
        row = rows.loc[video_id]
        rec_path = out_dir / "videos" / f"{video_id}.json"
        chash = config_hash(cfg, dataset, victim, method, mode, video_id)
        if rec_path.exists():
            old = json.loads(rec_path.read_text())
            if old.get("config_hash") == chash:
                records.append(old)
                continue
        idx = int(row["idx"])
        x = store.as_float(idx).to(device)
        target = int(row["target_label"]) if mode == "targeted" else None
        candidates = None
        if mode == "targeted":
            pool = train_idx[store.labels[train_idx] == target]
            gen = np.random.default_rng(derive_seed(cfg.seed, "candidates", dataset, video_id))
            pick = gen.permutation(pool)[: cfg.attacks.targeted.init_candidates]
            candidates = torch.stack([store.as_float(int(i)) for i in pick]).to(device)
        feats = torch.from_numpy(np.array(features[idx], dtype=np.float32))  # a writable copy
        t0 = time.time()
        fields, outcome = attack_video(cfg, method, mode, model, x, int(row["label"]), target, feats, candidates,
                                       (dataset, victim, method, mode, video_id), device)
        record = {"dataset": dataset, "victim": victim, "video_id": video_id, "idx": idx, "shard": shard,
                  "seed": cfg.seed, "config_hash": chash, **fields, "job_seconds": time.time() - t0,
                  "device": str(device), "peak_rss_mib": _peak_rss_mib()}
        adv_path = out_dir / "videos" / f"{video_id}.npz"
        png_path = out_dir / "videos" / f"{video_id}.png"
        with atomic.atomic_path(adv_path) as tmp:
            np.savez_compressed(tmp, x_adv=outcome.x_adv.cpu().numpy(), mask=outcome.mask.numpy())
        from sva.visualize import perturbation_strip

        title = (f"{dataset}/{victim} {method} {mode} {video_id}: label {record['label']} → {record['pred_float']}"
                 f"  MAP {record['map']:.3f}  S {100 * record['sparsity']:.0f}%  Q {record['queries']}"
                 f"  {'success' if record['success'] else 'failed'}")
        perturbation_strip(x.cpu(), outcome.x_adv.cpu(), png_path, title)
        record["adv_path"] = adv_path.name
        record["strip_path"] = png_path.name
        atomic.write_json(rec_path, record)
        if on_record is not None:
            on_record(record, png_path, rec_path)
        records.append(record)
    return records


__all__ = ["assign_shard", "attack_video", "build_method", "config_hash", "oracle_budget", "run_shard"]
