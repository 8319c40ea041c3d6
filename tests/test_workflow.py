"""The real DAG on a tiny config, in a temporary project folder."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from workflow_utils import run, snakemake, write_tiny_params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("project")
    write_tiny_params(folder)
    proc = snakemake(folder)
    return folder, proc


def test_pipeline_builds_every_artifact(project):
    folder, _ = project
    for rel in [
        "data/raw/tiny/manifest.json", "data/snippets/tiny/frames.npy", "data/snippets/tiny/index.csv",
        "data/snippets/tiny/bad_videos.csv", "data/features/tiny/features.npy",
        "results/victims/tiny/c3d.pt", "results/victims/tiny/lrcn.pt", "results/table1.csv",
        "results/attack_sets/tiny.csv", "mlflow.db",
    ]:
        assert (folder / rel).is_file(), rel
    for rule in ["download", "snippets", "features", "train_victim", "table1", "attack_set"]:
        assert (folder / "logs" / rule).exists() or (folder / "logs" / f"{rule}.log").exists(), rule


def test_snippets_and_features_shapes(project):
    folder, _ = project
    frames = np.load(folder / "data/snippets/tiny/frames.npy", mmap_mode="r")
    index = pd.read_csv(folder / "data/snippets/tiny/index.csv")
    assert frames.dtype == np.uint8 and frames.shape == (27, 16, 32, 32, 3)
    assert len(index) == 27 and set(index["split"]) == {"train", "test"}
    feats = np.load(folder / "data/features/tiny/features.npy")
    assert feats.shape == (27, 16, 512) and feats.dtype == np.float32


def test_table1_lists_each_victim(project):
    folder, _ = project
    table = pd.read_csv(folder / "results/table1.csv")
    assert sorted(table["model"]) == ["c3d", "lrcn"]
    assert (table["n_test"] == 9).all()
    assert table["test_accuracy"].between(0, 100).all()
    for model in ["c3d", "lrcn"]:
        summary = json.loads((folder / f"results/victims/tiny/{model}.json").read_text())
        assert len(summary["history"]) == 6  # six epochs


def test_attack_set_holds_only_videos_every_victim_gets_right(project):
    folder, _ = project
    import torch

    from sva.checkpoints import load_victim
    from sva.train import predict

    aset = pd.read_csv(folder / "results/attack_sets/tiny.csv")
    assert len(aset) <= 3
    assert (aset["target_label"] != aset["label"]).all()
    frames = np.load(folder / "data/snippets/tiny/frames.npy", mmap_mode="r")
    if len(aset):
        for model in ["c3d", "lrcn"]:
            net, _ = load_victim(folder / f"results/victims/tiny/{model}.pt", torch.device("cpu"))
            pred = predict(net, frames[aset["idx"].to_numpy()], 8, torch.device("cpu"))
            assert (pred == aset["label"].to_numpy()).all()


def test_mlflow_holds_the_training_runs(project):
    folder, _ = project
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["sva-victims"])
    assert sorted(runs["tags.victim"]) == ["c3d", "lrcn"]
    assert (runs["status"] == "FINISHED").all()
    assert (runs["tags.dataset"] == "tiny").all()
    client = mlflow.MlflowClient()
    for run_id in runs["run_id"]:
        assert len(client.get_metric_history(run_id, "train_loss")) == 6
        assert [a.path for a in client.list_artifacts(run_id, "checkpoint")]
    assert "params.train.lr" in runs.columns and "params.arch.width_mult" in runs.columns
    tables = mlflow.search_runs(experiment_names=["sva-tables"])
    assert sorted(tables["tags.table"]) == ["table1", "table3"]


def test_second_run_has_nothing_to_do_and_resumes_missing_outputs(project):
    folder, _ = project
    dry = snakemake(folder, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    (folder / "results/table1.csv").unlink()
    redo = snakemake(folder, "-n")
    out = redo.stdout + redo.stderr
    assert "table1" in out and "train_victim" not in out
    snakemake(folder)
    assert (folder / "results/table1.csv").is_file()


def test_dry_runs_of_the_default_and_paper_configs(tmp_path):
    proc = run(["snakemake", "-n", "--cores", "2"], REPO)
    proc2 = run(["snakemake", "-n", "--cores", "2", "--configfile", "config/paper.yaml"], REPO)
    assert "train_victim" in proc.stdout
    assert "ucf101" in proc2.stdout and "hmdb51" in proc2.stdout


def test_bad_config_fails_before_any_job(tmp_path):
    write_tiny_params(tmp_path)
    (tmp_path / "params.yaml").write_text((tmp_path / "params.yaml").read_text() + "bogus_key: 1\n")
    import subprocess

    from conftest import venv_env

    proc = subprocess.run(
        ["snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1"], cwd=tmp_path,
        env=venv_env(), capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert "bogus_key: unknown key" in proc.stdout + proc.stderr
    assert not (tmp_path / "data").exists()


def test_lint_and_format():
    lint = run(["snakemake", "--lint"], REPO)
    assert "good condition" in lint.stdout + lint.stderr
    run(["snakefmt", "--check", "Snakefile", "workflow/"], REPO)


def test_gpu_resources_form_and_slurm_profile_dry_runs():
    """The README's forms: the target before `--resources` (Snakemake 9 lets
    `--resources` swallow a target placed after it), and the SLURM profile."""
    local = run(["snakemake", "results/table3.csv", "-n", "--cores", "8", "--resources", "gpu=2"], REPO)
    assert "attack_shard" in local.stdout and "attack_table" in local.stdout
    slurm = run(["snakemake", "-n", "--profile", "profiles/slurm", "--", "results/table3.csv"], REPO)
    assert "attack_shard" in slurm.stdout


def test_attack_records_and_tables(project):
    folder, _ = project
    table = pd.read_csv(folder / "results/table3.csv")
    aset = pd.read_csv(folder / "results/attack_sets/tiny.csv")
    assert set(table["method"]) <= {"sva", "dense"} and (table["videos"] == len(aset)).all()
    assert (folder / "results/figures/table3.png").is_file()
    shards = sorted((folder / "results/attacks/untargeted/tiny/c3d/sva").glob("shard*.json"))
    assert len(shards) == 2
    records = [r for s in shards for r in json.loads(s.read_text())]
    assert sorted(r["video_id"] for r in records) == sorted(aset["video_id"])
    for r in records:
        assert r["queries"] <= r["budget"] == 1500
        assert r["queries"] == sum(r["queries_by_phase"].values())
        assert 0 < r["peak_rss_mib"] < 2048  # one attack job stays under the 2 GiB target
        video_dir = next(folder.glob(f"results/attacks/untargeted/tiny/c3d/sva/shard*/videos/{r['video_id']}.npz"))
        assert video_dir.with_suffix(".png").is_file()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["sva-attacks"])
    assert len(runs) == 4 * len(aset)  # 2 victims × 2 methods × videos
    assert {"tiny"} == set(runs["tags.dataset"]) and "metrics.queries" in runs.columns


def test_killed_shard_resumes_from_finished_videos(project):
    """A shard killed after some videos reruns with the same command and reuses them."""
    folder, _ = project
    shard = folder / "results/attacks/untargeted/tiny/lrcn/sva/shard0.json"
    before = json.loads(shard.read_text())
    videos = sorted((folder / "results/attacks/untargeted/tiny/lrcn/sva/shard0/videos").glob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in videos}
    shard.unlink()  # what a kill leaves: per-video records, no shard file
    snakemake(folder, str(shard.relative_to(folder)))
    assert json.loads(shard.read_text()) == before
    assert {p: p.stat().st_mtime_ns for p in videos} == stamps
