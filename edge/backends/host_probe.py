"""What GPU and software this host has, for TensorRT engines built or loaded here.

Imports torch and TensorRT inside :func:`read_host_info` only, so importing this module costs
nothing on a host without them.
"""

from __future__ import annotations

import ctypes

from orstream.errors import OrstreamError
from orstream.package.engine_manifest import TENSORRT_MISSING, HostInfo


def read_host_info(device: int = 0, tensorrt_version: str | None = None) -> HostInfo:
    """Read the host's GPU (through torch.cuda), CUDA, driver and TensorRT versions.

    Args:
        device: CUDA device index.
        tensorrt_version: the TensorRT version in use; read from the ``tensorrt`` package when
            not given.

    Raises:
        OrstreamError: no CUDA GPU is visible, or TensorRT is not installed.
    """
    import torch

    if not torch.cuda.is_available() or device >= torch.cuda.device_count():
        raise OrstreamError(
            f"no CUDA GPU {device} on this host: TensorRT engines are built and loaded on the "
            "GPU they run on"
        )
    if tensorrt_version is None:
        try:
            import tensorrt
        except ImportError:
            raise OrstreamError(TENSORRT_MISSING) from None
        tensorrt_version = str(tensorrt.__version__)
    properties = torch.cuda.get_device_properties(device)
    return HostInfo(
        gpu_name=str(properties.name),
        compute_capability=(int(properties.major), int(properties.minor)),
        sm_count=int(properties.multi_processor_count),
        tensorrt_version=tensorrt_version,
        cuda_version=str(torch.version.cuda),
        driver_version=_driver_version(),
    )


def _driver_version() -> str:
    """The CUDA version the installed driver supports (``cuDriverGetVersion``), e.g. ``12.4``.

    Read from libcuda directly: torch does not expose it and pynvml is not a dependency.
    """
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "unknown"
    version = ctypes.c_int()
    if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return "unknown"
    return f"{version.value // 1000}.{version.value % 1000 // 10}"
