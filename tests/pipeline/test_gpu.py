import subprocess
import sys

import pytest

from sva.pipeline.gpu import claim_gpu


def test_claims_distinct_free_devices_and_releases(tmp_path):
    env1, env2, env3 = {}, {}, {}
    a = claim_gpu(tmp_path, count=2, env=env1)
    b = claim_gpu(tmp_path, count=2, env=env2)
    assert (a.index, b.index) == (0, 1)
    assert env1["CUDA_VISIBLE_DEVICES"] == "0" and env2["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(RuntimeError, match="all 2 GPUs are claimed"):
        claim_gpu(tmp_path, count=2, env=env3)
    a.release()
    c = claim_gpu(tmp_path, count=2, env=env3)
    assert c.index == 0
    b.release()
    c.release()


def test_lock_is_freed_when_the_holder_process_dies(tmp_path):
    code = (
        "import sys, os; from sva.pipeline.gpu import claim_gpu; "
        f"c = claim_gpu({str(tmp_path)!r}, count=1, env={{}}); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert claim_gpu(tmp_path, count=1, env={}).index == 0


def test_no_gpu_and_slurm_claim_nothing(tmp_path):
    assert claim_gpu(tmp_path, count=0, env={}).index is None
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "3"}
    assert claim_gpu(tmp_path, count=4, env=env).index is None
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
    assert not list(tmp_path.iterdir())
