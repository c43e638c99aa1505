"""ONNX Runtime backend: CPU everywhere, CUDA where onnxruntime-gpu provides it."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from orstream.edge.backends.batching import backend_max_batch, batch_of
from orstream.edge.backends.protocol import Graph
from orstream.errors import OrstreamError
from orstream.package.card import GraphShape
from orstream.package.loading import ModelPackage
from orstream.package.signatures import check_graph_signature

# ONNX Runtime's tensor type names -> numpy dtype names as cards spell them.
ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}
DEFAULT_MAX_THREADS = 4
"""Per-frame models gain little past a few threads, and the video path needs cores too."""

_ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in (
        "Fail",
        "InvalidArgument",
        "InvalidGraph",
        "InvalidProtobuf",
        "NoSuchFile",
        "NotImplemented",
        "RuntimeException",
        "EPFail",
    )
    if hasattr(ort.capi.onnxruntime_pybind11_state, name)
)
_INVALID_MODEL_ERRORS = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("InvalidProtobuf", "InvalidGraph")
    if hasattr(ort.capi.onnxruntime_pybind11_state, name)
)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _cuda_device_id(device: str) -> int | None:
    """None for "cpu", the index for "cuda" / "cuda:N"; OrstreamError for anything else."""
    if device == "cpu":
        return None
    if device == "cuda":
        return 0
    prefix, _, index = device.partition(":")
    if prefix == "cuda" and index.isdigit():
        return int(index)
    raise OrstreamError(f"unknown device {device!r} (expected cpu, cuda or cuda:N)")


def default_intra_op_threads() -> int:
    """Threads for one session: the CPUs this process may use, at most a few."""
    return max(1, min(DEFAULT_MAX_THREADS, len(os.sched_getaffinity(0))))


class OnnxRuntimeBackend:
    """Runs one graph of a package in an ONNX Runtime inference session.

    Args:
        intra_op_threads: threads inside one operator; default :func:`default_intra_op_threads`.
        graph: ``"model"`` runs ``model.onnx``; ``"decoder"`` the prompt decoder of an
            interactive segmentation package, ``"text"`` the text encoder of a video-text
            package (each checked against its section of the card).
        max_batch: the most rows per call; default the card's ``max_batch`` (1 for a package
            whose graphs run batch 1). One session runs every batch size.
    """

    name = "onnxruntime"
    precision = "fp32"
    """Graphs run as exported: orstream exports fp32."""

    def __init__(
        self,
        intra_op_threads: int | None = None,
        graph: Graph = "model",
        max_batch: int | None = None,
    ) -> None:
        self.intra_op_threads = intra_op_threads or default_intra_op_threads()
        self.graph = graph
        self.requested_max_batch = max_batch
        self.max_batch = 1
        self.label = "onnxruntime"
        self.session: ort.InferenceSession | None = None
        self.package: ModelPackage | None = None
        self._input_names: frozenset[str] = frozenset()
        self._output_names: list[str] = []

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        """None when this backend can run on ``device`` here, else why not."""
        if _cuda_device_id(device) is None:
            return None
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "this onnxruntime build has no CUDAExecutionProvider"
        return None

    def load(self, package: ModelPackage, device: str = "cpu") -> None:
        """Open an inference session on ``device`` and check the graph against the card.

        Raises:
            OrstreamError: the file is not a valid ONNX model, ONNX Runtime cannot load it,
                ``device`` is not available, the graph's tensors differ from the card's, or
                a max_batch above 1 was asked of a package that runs batch 1.
        """
        max_batch = backend_max_batch(package, self.requested_max_batch, "onnxruntime backend")
        reason = self.unavailable_reason(device)
        if reason is not None:
            raise OrstreamError(f"onnxruntime cannot run on {device}: {reason}")
        device_id = _cuda_device_id(device)
        providers: list[str | tuple[str, dict[str, str]]] = ["CPUExecutionProvider"]
        if device_id is not None:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": str(device_id)}))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning idle threads would burn the cores that decoding and drawing need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = package.graph_path(self.graph)
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except _INVALID_MODEL_ERRORS as error:
            raise OrstreamError(f"{path} is not a valid ONNX model ({_one_line(error)})") from None
        except _ORT_ERRORS as error:
            raise OrstreamError(f"onnxruntime cannot load {path}: {_one_line(error)}") from None
        check_graph_signature(
            package.card,
            _signature(session.get_inputs()),
            _signature(session.get_outputs()),
            path,
            self.graph,
        )
        self.session = session
        self.package = package
        self.max_batch = max_batch
        self._input_names = frozenset(i.name for i in session.get_inputs())
        self._output_names = [o.name for o in session.get_outputs()]
        # ONNX Runtime falls back to the CPU when the CUDA provider cannot start: say what runs.
        on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"
        self.label = f"onnxruntime-cuda:{device_id}" if on_cuda else "onnxruntime-cpu"

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph once on 1 to :attr:`max_batch` rows; every graph input by name ->
        every graph output by name."""
        if self.session is None:
            raise OrstreamError("onnxruntime backend: infer() before load()")
        if inputs.keys() != self._input_names:
            raise OrstreamError(
                f"onnxruntime backend: inputs {sorted(inputs)} given, the graph takes "
                f"{sorted(self._input_names)}"
            )
        batch_of(inputs, self.max_batch, "onnxruntime backend")
        try:
            values = self.session.run(self._output_names, inputs)
        except _ORT_ERRORS as error:
            raise OrstreamError(f"onnxruntime backend: {_one_line(error)}") from None
        return dict(zip(self._output_names, values, strict=True))

    @property
    def providers(self) -> list[str]:
        """The execution providers the session uses, in priority order."""
        return self.session.get_providers() if self.session is not None else []


def _signature(args: list[ort.NodeArg]) -> dict[str, tuple[GraphShape, str]]:
    return {arg.name: (tuple(arg.shape), ORT_DTYPES.get(arg.type, arg.type)) for arg in args}
