"""The real DAG on a tiny config, in a temporary project folder (never in the
repository itself: the user may have run `make demo` there)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import REPO, venv_env
from sva.pipeline import layout
from workflow_utils import TINY, copy_project, planned_jobs, run, snakemake, write_tiny_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tiny_project):
    return tiny_project


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
    assert frames.dtype == np.uint8 and frames.shape == (36, 16, 32, 32, 3)
    assert len(index) == 36 and set(index["split"]) == {"train", "test"}
    feats = np.load(folder / "data/features/tiny/features.npy")
    assert feats.shape == (36, 16, 512) and feats.dtype == np.float32


def test_table1_lists_each_victim(project):
    folder, _ = project
    table = pd.read_csv(folder / "results/table1.csv")
    assert sorted(table["model"]) == ["c3d", "lrcn"]
    assert (table["n_test"] == 18).all()
    assert table["test_accuracy"].between(0, 100).all()
    for model in ["c3d", "lrcn"]:
        summary = json.loads((folder / f"results/victims/tiny/{model}.json").read_text())
        assert len(summary["history"]) == 6  # six epochs


def test_attack_set_holds_only_videos_every_victim_gets_right(project):
    folder, _ = project
    import torch

    from sva.victims.checkpoints import load_victim
    from sva.victims.training import predict

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
    # Tables 1 and 3 and, from `snakemake paper`, each comparison table
    assert sorted(tables["tags.table"]) == sorted(["table1", "table3", *TINY["tables"]])
    experiments = {e.name: e for e in client.search_experiments()}
    assert experiments["sva-attacks"].tags.get("mlflow.experimentKind")


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


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory):
    """The repository as a fresh clone holds it (nothing built)."""
    return copy_project(tmp_path_factory.mktemp("clone"))


def test_dry_runs_of_the_default_and_paper_configs(clean_copy):
    proc = run(["snakemake", "-n", "--cores", "2"], clean_copy)
    proc2 = run(["snakemake", "-n", "--cores", "2", "--configfile", "config/paper.yaml"], clean_copy)
    assert "train_victim" in proc.stdout
    # the longest-expected jobs start first: the hard-label methods' (priority 2), then
    # SVA's, which run their whole schedule (1); dense keeps Snakemake's default (none printed)
    shards = [wc for r, wc in planned_jobs(proc.stdout) if r == "attack_shard"]
    assert {wc["method"] for wc in shards} == {"sva", "dense", "opt", "heuristic"}
    expected = {"opt": "2", "heuristic": "2", "sva": "1", "dense": None}
    assert all(wc.get("priority") == expected[wc["method"]] for wc in shards)
    assert "ucf101" in proc2.stdout and "hmdb51" in proc2.stdout
    # at paper scale Tables 3 and 4 show SVAL, whose S comes from Table 2's grid: `all`
    # builds both grids first (a DAG edge from results/table2*.csv to SVAL's shards)
    planned = planned_jobs(proc2.stdout)
    # (grids a Table 3 method reads are the main run's: results/table2.csv, sva/pipeline/layout.py)
    grids = {wc.get("ablation") for r, wc in planned if r == "main_ablation_table"}
    assert grids == {"table2", "table2_targeted"} and not any(r == "ablation_table" for r, _ in planned)
    grid_rows = {wc["method"] for r, wc in planned if r == "attack_shard" and wc["method"].startswith("sval_s")}
    assert grid_rows == {f"sval_s{s}" for s in range(10, 80, 10)}
    assert {(wc["mode"], wc["dataset"], wc["victim"]) for r, wc in planned
            if r == "attack_shard" and wc["method"] == "sval"} == \
        {(m, d, v) for m in ("untargeted", "targeted") for d in ("ucf101", "hmdb51") for v in ("c3d", "lrcn")}
    # the default config's `paper` target adds Table 2 and Table 3 with SVAL
    proc3 = run(["snakemake", "-n", "--cores", "2", "paper"], clean_copy)
    tables = {wc.get("ablation") for r, wc in planned_jobs(proc3.stdout) if r == "ablation_table"}
    assert {"table2", "table3_sval", "table5"} <= tables


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


def test_lint_and_format(clean_copy):
    lint = run(["snakemake", "--lint"], clean_copy)
    assert "good condition" in lint.stdout + lint.stderr
    run(["snakefmt", "--check", "Snakefile", "workflow/"], clean_copy)


def test_gpu_resources_form_and_slurm_profile_dry_runs(clean_copy):
    """The README's forms: the target before `--resources` (Snakemake 9 lets
    `--resources` swallow a target placed after it), and the SLURM profile."""
    local = run(["snakemake", "results/table3.csv", "-n", "--cores", "8", "--resources", "gpu=2"], clean_copy)
    assert "attack_shard" in local.stdout and "attack_table" in local.stdout
    slurm = run(["snakemake", "-n", "--profile", "profiles/slurm", "--", "results/table3.csv"], clean_copy)
    assert "attack_shard" in slurm.stdout


def test_attack_records_and_tables(project):
    folder, _ = project
    table = pd.read_csv(folder / "results/table3.csv")
    aset = pd.read_csv(folder / "results/attack_sets/tiny.csv")
    assert set(table["method"]) <= {"sva", "dense"} and (table["videos"] == len(aset)).all()
    assert (folder / "results/figures/table3.png").is_file()
    # success against queries, read off the records' trajectories (sva/evaluation/trajectory.py)
    curves = pd.read_csv(folder / "results/table3_curves.csv")
    budget = TINY["attacks"]["untargeted"]["budget"]
    assert set(curves["method"]) == set(table["method"]) and (curves["budget"].max() == budget)
    for (_, victim, method), g in curves.groupby(["dataset", "victim", "method"]):
        fr_full = g[g["budget"] == budget]["FR (%)"].iloc[0]
        row = table[(table["victim"] == victim) & (table["method"] == method)].iloc[0]
        assert g["FR (%)"].is_monotonic_increasing and fr_full >= row["FR (%)"] - 1e-9
    assert (folder / "results/figures/table3_curves.png").is_file()
    assert "Success against queries" in (folder / "docs/results.md").read_text()
    shards = sorted((folder / "results/attacks/untargeted/tiny/c3d/sva").glob("shard*.json"))
    assert len(shards) == TINY["attacks"]["shards"]
    records = [r for s in shards for r in json.loads(s.read_text())]
    assert sorted(r["video_id"] for r in records) == sorted(aset["video_id"])
    for r in records:
        assert r["queries"] <= r["budget"] == budget
        assert r["queries"] == sum(r["queries_by_phase"].values())
        assert 0 < r["peak_rss_mib"] < 2048  # one attack job stays under the 2 GiB target
        video = folder / f"results/attacks/untargeted/tiny/c3d/sva/videos/{r['video_id']}.npz"
        assert video.is_file() and video.with_suffix(".png").is_file()
        assert len(r["record_key"]) == 16 and len(r["victim_sha256"]) == 64 and r["data_sha256"]
        assert all(1 <= q <= r["queries"] for q, _, _ in r["trajectory"])
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["sva-attacks"])
    main = runs[runs["tags.method"].isin(["sva", "dense"])]
    assert len(main) == 4 * len(aset)  # 2 victims × 2 methods × videos
    # and one run per video each of the paper target's arms attacked (SVAL: the half it
    # did not train on)
    paper = sorted((folder / "results/paper/attacks").glob("*/*/*/*/videos/*.json"))
    assert len(runs) == len(main) + len(paper) and len(paper) > 0
    assert {"tiny"} == set(runs["tags.dataset"]) and "metrics.queries" in runs.columns


def test_killed_shard_resumes_from_finished_videos(project):
    """A shard killed after some videos reruns with the same command and reuses them."""
    folder, _ = project
    shard = folder / "results/attacks/untargeted/tiny/lrcn/sva/shard0.json"
    before = json.loads(shard.read_text())
    videos = sorted((folder / "results/attacks/untargeted/tiny/lrcn/sva/videos").glob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in videos}
    shard.unlink()  # what a kill leaves: per-video records, no shard file
    snakemake(folder, str(shard.relative_to(folder)))
    assert json.loads(shard.read_text()) == before
    assert {p: p.stat().st_mtime_ns for p in videos} == stamps


def test_logs_have_a_line_per_video_and_per_epoch(project):
    folder, _ = project
    logs = list((folder / "logs/attack/untargeted/tiny").rglob("*.log"))
    text = "".join(p.read_text() for p in logs)
    aset = pd.read_csv(folder / "results/attack_sets/tiny.csv")
    assert text.count(" video ") >= 4 * len(aset)
    assert " Q=" in text and " MAP=" in text and " S=" in text
    train = (folder / "logs/train_victim/tiny/c3d.log").read_text()
    assert train.count("tiny/c3d epoch ") == 6
    assert (folder / "docs/results.md").is_file()
    doc = (folder / "docs/results.md").read_text()
    assert "{{" not in doc and "Table 3" in doc and "c3d" in doc


def _dry(folder, override: dict) -> list:
    import yaml

    (folder / "override.yaml").write_text(yaml.safe_dump(override))
    proc = snakemake(folder, "-n", "--configfile", "override.yaml")
    return planned_jobs(proc.stdout)


def test_changing_eps_reruns_attacks_and_tables_not_victims(project):
    folder, _ = project
    jobs = _dry(folder, {"attacks": {"eps": 0.03}})
    rules = {r for r, _ in jobs}
    assert {"attack_shard", "attack_table"} <= rules, rules
    assert not rules & {"train_victim", "download", "snippets", "features", "attack_set"}, rules


def test_changing_c3d_epochs_retrains_c3d_only(project):
    folder, _ = project
    jobs = _dry(folder, {"victims": {"c3d": {"train": {"epochs": 3}}}})
    trained = [wc["model"] for r, wc in jobs if r == "train_victim"]
    assert trained == ["c3d"], jobs
    assert "attack_set" in {r for r, _ in jobs}


def test_changing_attack_code_reruns_attack_shards(project, monkeypatch):
    from sva.pipeline import provenance

    before = provenance.code_fingerprint("attack_shard")
    victims = provenance.code_fingerprint("train_victim")
    files = {p.name for p in provenance.stage_files("attack_shard")}
    assert {"fgsm.py", "oracle.py", "lockstep.py", "estimators.py", "metrics.py"} <= files
    assert "fgsm.py" not in {p.name for p in provenance.stage_files("train_victim")}
    assert before != victims


def _copy_run(folder, dest):
    shutil.copytree(folder, dest, symlinks=True)
    return dest


#: the arms the tiny config's comparison tables add to Table 3's methods (all on C3D)
PAPER_ARMS = ["heuristic", "random", "sva_eps_003", "sva_opt", "sva_r_attack", "sva_zo_signsgd", "sval",
              "sval_s20", "sval_s50"]


def test_paper_target_builds_every_experiment_and_the_reproduction_report(project, tmp_path):
    """`snakemake paper` on the tiny config runs the whole experiment DAG: one arm of
    every kind the paper's section 4 has (Table 2's SVAL grid, SVAL in Table 3 with the
    S the grid's rule picks, Table 5, Figs. 3 and 7-10) and results/reproduction.md. It
    attacks only the arms' jobs (Table 3's methods keep their records), orders and
    labels the rows as configured, and a change to one arm reruns its jobs, its table
    and the report only."""
    folder, _ = project
    # planned after `snakemake` had built the main run (tests/conftest.py, tiny_project)
    planned = planned_jobs((folder / ".paper_dry_run.txt").read_text())
    assert sorted({wc["method"] for r, wc in planned if r == "paper_shard"}) == PAPER_ARMS
    assert {wc["victim"] for r, wc in planned if r == "paper_shard"} == {"c3d"}
    assert {r for r, _ in planned} == {"paper_shard", "ablation_table", "reproduction", "paper"}
    # everything it wrote is under results/paper/: the main run's folders are untouched
    paper = folder / "results/paper"
    assert {p.name for p in (folder / "results/attacks/untargeted/tiny/c3d").iterdir()} == {"sva", "dense"}
    assert sorted(p.name for p in (paper / "attacks/untargeted/tiny/c3d").iterdir()) == PAPER_ARMS
    tables = {name: pd.read_csv(paper / f"{name}.csv") for name in
              ("table2", "table3_sval", "table5", "fig3_eps", "fig7", "fig8", "fig9", "fig10")}
    for name in tables:
        assert (paper / f"figures/{name}.png").is_file(), name
    t5 = tables["table5"]
    assert list(t5["row"]) == ["No RL", "SVA (R_attack)", "SVA"]
    assert list(t5["method"]) == ["dense", "sva_r_attack", "sva"] and set(t5["victim"]) == {"c3d"}
    t3 = pd.read_csv(folder / "results/table3.csv").set_index(["victim", "method"])
    for method in ("dense", "sva"):
        row = t5[t5["method"] == method].iloc[0]
        assert row["FR (%)"] == t3.loc[("c3d", method), "FR (%)"] and row["videos"] == t3.loc[("c3d", method), "videos"]
    assert (paper / "figures/table5_rewards.png").is_file()  # the SVA arms' reward per epoch
    assert (paper / "figures/fig10_rewards.png").is_file()  # Figs. 10 / 11
    assert list(tables["table2"]["row"]) == ["S = 20 %", "S = 50 %"]
    assert list(tables["fig7"]["method"]) == ["sva", "random"]
    assert list(tables["fig8"]["method"]) == ["heuristic", "sva_opt"]
    records = json.loads((paper / "attacks/untargeted/tiny/c3d/sva_r_attack/shard0.json").read_text())
    assert all(r["variant_of"] == "sva" and r["method"] == "sva_r_attack" for r in records)
    # SVAL trains on one of the two attack-set videos and attacks the other, with the S
    # Table 2's rule picked; its offline training asked the victim nothing
    aset = pd.read_csv(folder / "results/attack_sets/tiny.csv")
    assert len(aset) == 2
    sval = [r for p in sorted((paper / "attacks/untargeted/tiny/c3d/sval").glob("shard*.json"))
            for r in json.loads(p.read_text())]
    assert len(sval) == 1 and sval[0]["video_id"] in set(aset["video_id"])
    assert tables["table3_sval"].set_index("method").loc["sval", "videos"] == 1
    # the reproduction report: a verdict with numbers for each claim the tables speak to
    report = (paper / "reproduction.md").read_text()
    chosen = next(x for x in report.splitlines() if "the rule picks" in x)
    assert "**S = 0.2**" in chosen or "**S = 0.5**" in chosen
    # the measured reasons: a section exactly when a current record failed
    current = [r for p in (folder / "results").glob("**/attacks/*/*/*/*/shard*.json") for r in json.loads(p.read_text())]
    assert ("## Why videos were not fooled (measured)" in report) == any(not r["success"] for r in current)
    # which frames the variants of SVA sampled against SVA's own, measured from the records
    sampled = report[report.index("## Which frames SVA's variants sampled (measured)"):]
    for arm in ("sva_r_attack", "sva_zo_signsgd", "sva_eps_003"):
        assert f"`{arm}` sampled `sva`'s frames in" in sampled.split("\n## ")[0], arm
    for claim in ("SVA leaves more than half of the frames untouched", "R_attack improves on no RL",
                  "Full SVA improves on no RL", "R_rep and R_div contribute less than R_attack"):
        line = next(x for x in report.splitlines() if claim in x)
        assert any(f"**{s}**" in line for s in ("supported", "not significant", "not supported", "not measurable"))
        assert "FR " in line or "no successful video" in line
    # every experiment of the paper's section 4 is built, except Table 4 (targeted: the
    # tiny run, like the embedded one, is untargeted)
    built = report[report.index("## The paper's experiments in this run"):]
    assert "| Table 4 | targeted attacks | not built in this run |" in built
    assert built.count("not built in this run") == 1 and "not implemented yet" not in built
    for line in ("| Table 2 | SVAL under sparsities S = 10 … 70 % | `results/paper/table2.csv` |",
                 "| Table 5 | reward ablation | `results/paper/table5.csv` |",
                 "| Figs. 10 / 11 | reward per epoch | `results/paper/figures/fig10_rewards.png` |",
                 "| Figs. 4 / 5 | example adversarial videos | `results/figures/table3_examples.png` |"):
        assert line in built, line
    # a second run has nothing to do; a change to one arm reruns its jobs, its table
    # and the report only
    copy = _copy_run(folder, tmp_path / "p")
    dry = snakemake(copy, "-n", "paper")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    (copy / "override.yaml").write_text("attacks:\n  variants:\n    sva_r_attack:\n      settings:\n"
                                        "        gamma2: 2.0\n")
    again = planned_jobs(snakemake(copy, "-n", "--configfile", "override.yaml", "--", "paper").stdout)
    assert {(r, wc.get("method"), wc.get("ablation")) for r, wc in again} == \
        {("paper_shard", "sva_r_attack", None), ("ablation_table", None, "table5"), ("reproduction", None, None),
         ("paper", None, None)}


def test_changing_the_shard_count_changes_no_table(project, tmp_path):
    folder, _ = project
    copy = _copy_run(folder, tmp_path / "p")
    before = (copy / "results/table3.csv").read_bytes()
    (copy / "override.yaml").write_text(f"attacks:\n  shards: {TINY['attacks']['shards'] + 1}\n")
    snakemake(copy, "results/table3.csv", "--configfile", "override.yaml")
    assert (copy / "results/table3.csv").read_bytes() == before
    table = pd.read_csv(copy / "results/table3.csv")
    aset = pd.read_csv(copy / "results/attack_sets/tiny.csv")
    assert (table["videos"] == len(aset)).all()


def test_swapped_checkpoint_is_refused(project, tmp_path):
    folder, _ = project
    copy = _copy_run(folder, tmp_path / "p")
    cmd = ["snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", "results/table3.csv"]

    def fails(*extra):
        proc = subprocess.run([*cmd, *extra], cwd=copy, env=venv_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        return "".join(p.read_text() for p in (copy / "logs").rglob("*.log")) + proc.stderr

    # `cp -p`: the mtime says nothing changed; a rebuilt table still refuses the records
    shutil.copy2(copy / "results/victims/tiny/lrcn.pt", copy / "results/victims/tiny/c3d.pt")
    out = fails("--forcerun", "attack_table")
    assert "records were made against another c3d checkpoint than the current one" in out
    # a plain copy: the attack set (the first job to load it) refuses the file
    shutil.copy(copy / "results/victims/tiny/lrcn.pt", copy / "results/victims/tiny/c3d.pt")
    out = fails()
    assert "c3d.pt: holds a 'lrcn' victim, but 'c3d' was asked for" in out
    assert "Traceback" not in (copy / "logs/attack_set/tiny.log").read_text()


def test_killed_run_resumes_with_the_documented_commands(project, tmp_path):
    """kill -9 mid-attack, then the README's two commands: the same table, and the
    videos finished before the kill are not attacked again. (C3D's attacks only, to
    keep the test short: LRCN's records stay and must stay untouched too.)"""
    folder, _ = project
    copy = _copy_run(folder, tmp_path / "p")
    expected = (copy / "results/table3.csv").read_bytes()
    attacks = copy / "results/attacks/untargeted/tiny/c3d"
    kept = {p: p.stat().st_mtime_ns for p in (copy / "results/attacks").glob("*/*/lrcn/*/videos/*.json")}
    assert kept
    shutil.rmtree(attacks)
    (copy / "results/table3.csv").unlink()
    cmd = ["snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", "results/table3.csv"]
    proc = subprocess.Popen(cmd, cwd=copy, env=venv_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(attacks.glob("*/videos/*.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in attacks.glob("*/videos/*.json")}
    assert finished and not (copy / "results/table3.csv").exists()
    locked = subprocess.run(cmd, cwd=copy, env=venv_env(), capture_output=True, text=True, timeout=600)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(copy, "--unlock")
    snakemake(copy, "results/table3.csv")
    assert (copy / "results/table3.csv").read_bytes() == expected
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert {p: p.stat().st_mtime_ns for p in kept} == kept


def test_tracking_outage_never_blocks_the_attacks(project, tmp_path):
    """MLflow unreachable: the attacks and the table are made all the same, with one
    warning per job; `sva track` afterwards logs the records the outage missed."""
    folder, _ = project
    copy = _copy_run(folder, tmp_path / "p")
    expected = (copy / "results/table3.csv").read_bytes()
    videos = copy / "results/attacks/untargeted/tiny/lrcn/dense/videos"
    redo = sorted(videos.glob("*.json"))[0]
    for suffix in (".json", ".npz", ".png"):
        redo.with_suffix(suffix).unlink()
    (copy / "mlflow.db").unlink()  # a store that has never seen this run's records
    shutil.rmtree(copy / "mlruns", ignore_errors=True)
    env = {**venv_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    # the shards of the emptied folder run (the others' would only repeat the same warning)
    forced = [f"results/attacks/untargeted/tiny/lrcn/dense/shard{i}.json" for i in range(TINY["attacks"]["shards"])]
    proc = subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", "--forcerun", *forced,
                           "--", "results/table3.csv"], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert redo.is_file() and (copy / "results/table3.csv").read_bytes() == expected
    shard_log = "".join(p.read_text() for p in (copy / "logs/attack/untargeted/tiny/lrcn/dense").glob("*.log"))
    assert "127.0.0.1:9" in shard_log and "Traceback" not in shard_log
    # nothing reached a store during the outage; `sva track` logs every record, once
    assert not (copy / "mlflow.db").exists()
    records = layout.record_files(copy / "results")  # the main run's and the paper target's
    track = run(["sva", "track"], copy)
    assert track.stdout.startswith(f"{len(records)} records logged, 0 already in MLflow, 0 failed"), track.stdout
    mlflow.set_tracking_uri(f"sqlite:///{copy / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["sva-attacks"])
    assert json.loads(redo.read_text())["record_key"] in set(runs["tags.record_key"])
    assert run(["sva", "track"], copy).stdout.startswith(f"0 records logged, {len(records)} already in MLflow")


def test_report_shows_the_tables_and_figures_with_captions(project):
    folder, _ = project
    snakemake(folder, "--report", "report.html")
    html = (folder / "report.html").read_text(errors="replace")
    for text in ("table1.csv", "table3.csv", "table3.png", "table3_examples.png", "table3_curves.png",
                 "Table 3 (untargeted)",
                 "Table 1: test accuracy", "Example strips, one per dataset"):
        assert text in html, text
