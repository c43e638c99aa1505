"""GPU hosts engines are built for in the tests (no GPU needed: only their descriptions)."""

from orstream.package.engine_manifest import HostInfo

A100 = HostInfo(
    gpu_name="NVIDIA A100",
    compute_capability=(8, 0),
    sm_count=108,
    tensorrt_version="10.3.0",
    cuda_version="12.4",
    driver_version="12.4",
)
H200 = HostInfo(
    gpu_name="NVIDIA H200",
    compute_capability=(9, 0),
    sm_count=132,
    tensorrt_version="10.5.0",
    cuda_version="12.6",
    driver_version="12.8",
)
