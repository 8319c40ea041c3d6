import platform

import pytest
import torch

from sva.utils.devices import keep_cpu_memory, pick_device


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_request_without_cuda_is_an_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_cpu_memory_takes_effect_on_glibc_and_is_idempotent():
    # its speed effect is measured by benchmarks/attack_throughput.py (--glibc-default-malloc)
    assert keep_cpu_memory() is True
    assert keep_cpu_memory() is True


def test_keep_cpu_memory_is_a_no_op_without_a_c_library(monkeypatch):
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert keep_cpu_memory() is False
