import pytest
import torch

from sva.devices import pick_device


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_cuda_request_without_cuda_is_an_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda")
