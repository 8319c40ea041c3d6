#!/usr/bin/env python
"""Screenshots of the MLflow UI for an SVA tracking store, with headless Chromium.

Starts ``mlflow server`` on 127.0.0.1 (a free port) against ``--backend-store-uri``,
opens the attacks experiment as a fresh browser does (``attacks-landing-default.png``:
MLflow 3.17's UI starts on its "GenAI" side) and with ``?workflowType=machine_learning``
(``attacks-landing.png``: the "Model training" side, the runs table), its saved views
``sva-current`` and ``sva-metrics`` (the metric columns), one run page, and the victims
experiment, and writes one PNG per page into ``--out``. Then stops the server.

    .venv/bin/python scripts/mlflow_screenshots.py --backend-store-uri sqlite:///mlflow.db --out /tmp/shots
    .venv/bin/python scripts/mlflow_screenshots.py --demo /tmp/mlflow-demo --out /tmp/shots

``--demo DIR`` first fills ``DIR/mlflow.db`` with a few fake attack records (one video
attacked twice, as after a rebuild) and a backdated victim training run, through
:mod:`sva.pipeline.tracking`, and screenshots that store.

Needs Debian's Chromium (``apt-get install -y chromium``; ``--chromium`` for another
binary). Pages are rendered with ``--virtual-time-budget`` (ms of page time, default
15000) so the single-page app has fetched and drawn its data before the capture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store_uri: str, port: int, log_path: Path) -> subprocess.Popen:
    """``mlflow server`` in its own process group (stopped with :func:`stop_server`)."""
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server", "--backend-store-uri", store_uri,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = open(log_path, "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: the group we started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server not ready at {base} after {timeout:.0f}s")


def api(base: str, path: str, body: dict | None = None, **query) -> dict:
    url = f"{base}/api/2.0/mlflow/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def experiment_id(base: str, name: str) -> str | None:
    try:
        return api(base, "experiments/get-by-name", experiment_name=name)["experiment"]["experiment_id"]
    except urllib.error.HTTPError:
        return None


def screenshot(chromium: str, url: str, out: Path, budget_ms: int, size: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
               f"--window-size={size}", f"--virtual-time-budget={budget_ms}", url]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            print(f"  chromium timed out on {url}", file=sys.stderr)
            return False
    ok = out.is_file() and out.stat().st_size > 0
    print(f"  {'wrote' if ok else 'FAILED'} {out}  <- {url}")
    if not ok:
        print(proc.stderr[-2000:], file=sys.stderr)
    return ok


def populate_demo(folder: Path, prefix: str) -> str:
    """A small store with fake records: returns its tracking URI."""
    sys.path.insert(0, str(REPO))
    from PIL import Image, ImageDraw

    from sva.pipeline import tracking

    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder.resolve() / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    videos = folder / "results/attacks/untargeted/demo/c3d/sva/videos"
    videos.mkdir(parents=True, exist_ok=True)
    tracking.init_tracking(prefix, folder)
    now = time.time()
    with tracking.start_run(prefix, "victims", "demo-c3d", {"dataset": "demo", "victim": "c3d"}, folder,
                            start_time=now - 3 * 3600) as run:
        for epoch in range(5):
            run.log_metrics({"train_loss": 2.0 / (epoch + 1), "train_acc": 0.5 + 0.1 * epoch,
                             "test_acc": 0.45 + 0.1 * epoch}, step=epoch)
        run.log_metrics({"final_test_acc": 0.85, "train_seconds": 3 * 3600.0})
    specs = [  # (video, record key, wall seconds, hours ago it finished, success)
        ("v_001", "1a2b3c4d5e6f7081", 95.0, 2.5, True),
        ("v_002", "2b3c4d5e6f708192", 412.0, 2.2, False),
        ("v_003", "3c4d5e6f708192a3", 61.0, 2.0, True),
        ("v_001", "4d5e6f708192a3b4", 88.0, 0.5, True),  # v_001 again, after a rebuild
    ]
    for i, (video, key, wall, ago, success) in enumerate(specs):
        finished = now - ago * 3600
        record = {
            "dataset": "demo", "victim": "c3d", "method": "sva", "mode": "untargeted", "video_id": video,
            "shard": i % 2, "seed": 0, "record_key": key, "success": success, "success_uint8": success,
            "map": 0.004 + 0.001 * i, "sparsity": 0.8 - 0.05 * i, "queries": 600 + 150 * i, "linf": 0.06,
            "wall_seconds": wall, "queries_best_episode": 400 + 100 * i if success else None,
            "reward_trace": [0.1 * j + 0.02 * i for j in range(10)],
            "started_at": finished - wall, "finished_at": finished,
        }
        rec_path = videos / f"{video}.json"
        rec_path.write_text(json.dumps(record, indent=1))
        png = rec_path.with_suffix(".png")
        img = Image.new("RGB", (640, 120), (30, 30, 30))
        ImageDraw.Draw(img).text((10, 50), f"{video} {key} (demo strip)", fill=(240, 240, 240))
        img.save(png)
        run_id = tracking.log_attack_record(prefix, {**record, "params": {"attacks": {"sva": {"episodes": 20}}}},
                                            rec_path, png, folder)
        print(f"  demo record {video} {key} -> run {run_id}")
    return uri


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--backend-store-uri", help="tracking store to show, e.g. sqlite:///mlflow.db")
    src.add_argument("--demo", type=Path, metavar="DIR", help="fill DIR/mlflow.db with fake records and show it")
    ap.add_argument("--out", type=Path, default=Path("mlflow-screenshots"), help="folder for the PNGs")
    ap.add_argument("--prefix", default="sva", help="experiment prefix (default: sva)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--budget-ms", type=int, default=15000, help="virtual time per page, ms")
    ap.add_argument("--window-size", default="1600,1000", help="browser window, px (default: 1600,1000)")
    ap.add_argument("--wide-size", default="2600,1000",
                    help="window for the *-wide.png capture of a saved view, px (all its columns fit)")
    args = ap.parse_args(argv)

    if not Path(args.chromium).exists():
        print(f"no Chromium at {args.chromium}: apt-get install -y chromium", file=sys.stderr)
        return 2
    store = args.backend_store_uri or populate_demo(args.demo, args.prefix)
    args.out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(store, port, args.out / "mlflow-server.log")
    ok = True
    try:
        wait_ready(base, proc)
        print(f"mlflow server {base} on {store}")
        attacks = experiment_id(base, f"{args.prefix}-attacks")
        victims = experiment_id(base, f"{args.prefix}-victims")
        ml = "workflowType=machine_learning"  # MLflow >= 3.x: the "Model training" side of the top-left toggle
        pages: list[tuple] = []  # (file, url[, window size])
        if attacks:
            pages += [
                ("attacks-landing-default.png", f"{base}/#/experiments/{attacks}"),
                ("attacks-landing.png", f"{base}/#/experiments/{attacks}?{ml}"),
                ("attacks-view-current.png",
                 f"{base}/#/experiments/{attacks}/runs?viewStateShareKey=sva-current&{ml}"),
                ("attacks-view-all.png", f"{base}/#/experiments/{attacks}/runs?viewStateShareKey=sva-metrics&{ml}"),
                ("attacks-view-all-wide.png",
                 f"{base}/#/experiments/{attacks}/runs?viewStateShareKey=sva-metrics&{ml}", args.wide_size),
            ]
            runs = api(base, "runs/search", {"experiment_ids": [attacks], "max_results": 1,
                                              "filter": "tags.`sva.current` = 'true'",
                                              "order_by": ["attributes.start_time DESC"]}).get("runs", [])
            if runs:
                run_id = runs[0]["info"]["run_id"]
                pages.append(("attacks-run.png", f"{base}/#/experiments/{attacks}/runs/{run_id}?{ml}"))
        if victims:
            pages.append(("victims-landing.png", f"{base}/#/experiments/{victims}?{ml}"))
        if not pages:
            print(f"no experiments named {args.prefix}-* in {store}", file=sys.stderr)
            return 1
        for name, url, *size in pages:
            ok &= screenshot(args.chromium, url, args.out / name, args.budget_ms, size[0] if size else args.window_size)
    finally:
        stop_server(proc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
