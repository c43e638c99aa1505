"""Reading the host's GPU for TensorRT engines."""

import pytest

from orstream.edge.backends.host_probe import read_host_info
from orstream.errors import OrstreamError


def test_reading_the_host_without_a_gpu_is_one_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a CUDA GPU")
    with pytest.raises(OrstreamError, match=r"^no CUDA GPU 0 on this host: TensorRT engines"):
        read_host_info(tensorrt_version="10.5.0")
