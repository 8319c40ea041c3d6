"""``benchmarks/victim_forward.py``: LRCN's channels-last frame CNN computes the same
function as the contiguous layout it is compared against, and the script runs; the
trajectory-cost script (``benchmarks/trajectory_cost.py``) runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from sva.victims.models import LRCN
from sva.victims.settings import LRCNCfg, VictimsCfg
from sva.victims.models import build_victim

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from victim_forward import nchw_forward  # noqa: E402


def test_lrcn_frame_cnn_is_channels_last_and_matches_nchw():
    cfg = VictimsCfg(lrcn=LRCNCfg(backbone="small_cnn", backbone_width=8, hidden=32, dropout=0.3))
    model = build_victim("lrcn", cfg, 10, (32, 32), seed=0)
    assert isinstance(model, LRCN)
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model(torch.rand(4, 16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    model.eval()
    conv = model.backbone.conv[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = torch.rand(3, 16, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        torch.testing.assert_close(model(x), nchw_forward(model)(x), rtol=1e-5, atol=1e-5)


def test_script_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "victim_forward.py"), "--config", str(ROOT / ".test" / "config.yaml"),
         "--batch", "2", "--blocks", "1", "--block-seconds", "0.05"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "lrcn  batch   2:" in out.stdout and "ratio median" in out.stdout


def test_trajectory_cost_script_runs():
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "trajectory_cost.py"), "--config", str(ROOT / ".test" / "config.yaml"),
         "--rows", "4", "--repeats", "2"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "of a forward" in out.stdout and "C3D forward" in out.stdout
