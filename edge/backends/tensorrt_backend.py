"""TensorRT backend: a package's prebuilt engine for this host, on one CUDA device.

Written against TensorRT 10's Python API: ``Runtime.deserialize_cuda_engine`` (through
:func:`~orstream.edge.backends.tensorrt_engines.load_engine`, which loads an engine only when
its manifest matches this host and the package), the engine's named I/O tensors
(``num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``, ``get_tensor_dtype``), one
execution context with the card's input shapes (``set_input_shape``) and fixed device
buffers (``set_tensor_address``), run with ``execute_async_v3`` on a CUDA stream of its own.

For a package with a dynamic batch the engine's optimisation profiles span 1 to N rows: the
buffers hold ``max_batch`` rows, and a call of fewer sets the input shapes to its rows (only
when they change) and uses the first rows of each buffer, which are contiguous, so the
addresses stay.

Device and pinned host buffers are torch tensors (no pycuda): inputs are copied into the static
device buffers, outputs back into pinned host buffers on the same stream, then the stream is
synchronised once per call. ``tensorrt`` and ``torch`` are imported inside functions, so this
module loads anywhere and :meth:`TensorRTBackend.unavailable_reason` says why it cannot run.

Engines are built from ``model.onnx`` only (``orstream export trt``): a prompt decoder graph
runs on another backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orstream.edge.backends.batching import backend_max_batch, batch_of
from orstream.edge.backends.host_probe import read_host_info
from orstream.edge.backends.protocol import Graph
from orstream.edge.backends.tensorrt_engines import (
    engine_max_batch,
    import_tensorrt,
    load_engine,
)
from orstream.errors import OrstreamError
from orstream.package.engine_manifest import Precision
from orstream.package.loading import ModelPackage

TENSORRT_NOT_INSTALLED = "TensorRT is not installed (its Python package comes from NVIDIA's index)"

# TensorRT DataType member names -> torch dtype names.
_TORCH_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


def cuda_index(device: str) -> int | None:
    """None for "cpu", N for "cuda:N" ("cuda" is 0); OrstreamError for anything else."""
    if device == "cpu":
        return None
    prefix, _, index = device.partition(":")
    if prefix == "cuda" and (not index or index.isdigit()):
        return int(index or 0)
    raise OrstreamError(f"unknown device {device!r} (expected cpu, cuda or cuda:N)")


class TensorRTBackend:
    """Runs the package's TensorRT engine for this host.

    Args:
        graph: only ``"model"``: engines are built from ``model.onnx``.
        precision: the engine precision to load; None takes the host's int8 engine if there
            is one, else fp16, else fp32
            (:func:`~orstream.edge.backends.tensorrt_engines.select_engine`).
        max_batch: the most rows per call, which the engine's profiles must cover; default
            as many as the chosen engine's profiles take (1 for a package that runs batch 1).
    """

    name = "tensorrt"

    def __init__(
        self,
        graph: Graph = "model",
        precision: Precision | None = None,
        max_batch: int | None = None,
    ) -> None:
        self.graph = graph
        self.requested_precision = precision
        self.requested_max_batch = max_batch
        self.max_batch = 1
        self._rows = 0
        self.label = "tensorrt"
        self.precision: str = precision or "fp32"
        self.engine_file: Any = None
        self._loaded: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self._host_outputs: dict[str, Any] = {}

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        """None when TensorRT can run on ``device`` here, else why not."""
        index = cuda_index(device)
        if index is None:
            return "TensorRT runs on CUDA devices only"
        try:
            import_tensorrt()
        except OrstreamError:
            return TENSORRT_NOT_INSTALLED
        try:
            import torch
        except ImportError:
            return "torch is not installed (it holds TensorRT's device buffers)"
        if not torch.cuda.is_available():
            return "CUDA is not available"
        if index >= torch.cuda.device_count():
            return f"no CUDA device {index} ({torch.cuda.device_count()} visible)"
        return None

    def load(self, package: ModelPackage, device: str = "cuda") -> None:
        """Load the package's engine for this host and bind static buffers at the card's shapes
        (``max_batch`` rows of them).

        Raises:
            OrstreamError: the graph is not ``model``, TensorRT or the device is missing, no
                engine matches this host or covers the rows asked for (one line naming what
                differs and how to rebuild), or the engine's tensors differ from the card's.
        """
        requested = self.requested_max_batch
        if requested is not None:
            backend_max_batch(package, requested, "tensorrt backend")
        if self.graph != "model":
            raise OrstreamError(
                f"TensorRT engines are built from {package.model_path.name} only; the "
                f"{self.graph} graph of {package.root} runs on another backend"
            )
        reason = self.unavailable_reason(device)
        if reason is not None:
            raise OrstreamError(f"tensorrt cannot run on {device}: {reason}")
        import torch

        trt = import_tensorrt()
        index = cuda_index(device)
        assert index is not None  # unavailable_reason refused cpu
        host = read_host_info(index, tensorrt_version=str(trt.__version__))
        with torch.cuda.device(index):
            loaded = load_engine(
                package, self.requested_precision, host=host, device=index, max_batch=requested or 1
            )
            rows = requested or engine_max_batch(loaded.file, package)
            self._bind(loaded.engine, loaded.file.plan, package, trt, torch, index, rows)
        self._loaded = loaded
        self.max_batch = rows
        self.engine_file = loaded.file
        self.precision = loaded.file.manifest.key.precision
        self.label = f"tensorrt-cuda:{index}-{self.precision}"

    def _bind(
        self,
        engine: Any,
        plan: Any,
        package: ModelPackage,
        trt: Any,
        torch: Any,
        index: int,
        rows: int,
    ) -> None:
        """Execution context, input shapes and static device buffers of ``rows`` rows for every
        I/O tensor."""
        card_inputs, card_outputs = package.card.graph_tensors("model")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if set(inputs) != set(card_inputs) or set(outputs) != set(card_outputs):
            raise OrstreamError(
                f"engine {plan} does not match {package.card_path.name}: "
                f"inputs {sorted(inputs)}, outputs {sorted(outputs)}; the card has "
                f"{sorted(card_inputs)} and {sorted(card_outputs)}"
            )
        context = engine.create_execution_context()
        if context is None:
            raise OrstreamError("TensorRT could not create an execution context (GPU memory?)")
        device = torch.device("cuda", index)
        shapes = {
            name: (rows, *shape[1:]) for name, (shape, _) in (card_inputs | card_outputs).items()
        }
        for name in inputs:
            if not context.set_input_shape(name, shapes[name]):
                raise OrstreamError(
                    f"the engine refuses input {name!r} at shape {list(shapes[name])}: "
                    f"rebuild with orstream export trt --package {package.root} --rebuild"
                )
        buffers: dict[str, Any] = {}
        for name in names:
            shape = tuple(context.get_tensor_shape(name))
            expected = shapes[name]
            if shape != expected:
                raise OrstreamError(
                    f"engine tensor {name!r} has shape {list(shape)}, the card says "
                    f"{list(expected)}: rebuild with orstream export trt --package "
                    f"{package.root} --rebuild"
                )
            dtype = getattr(torch, _TORCH_DTYPES[engine.get_tensor_dtype(name).name])
            buffers[name] = torch.empty(shape, dtype=dtype, device=device)
            if not context.set_tensor_address(name, buffers[name].data_ptr()):
                raise OrstreamError(f"TensorRT refused the device buffer of {name!r}")
        self._context = context
        self._rows = rows
        self._stream = torch.cuda.Stream(device=device)
        self._inputs = {name: buffers[name] for name in inputs}
        self._outputs = {name: buffers[name] for name in card_outputs}
        self._host_outputs = {
            name: torch.empty(buffer.shape, dtype=buffer.dtype, pin_memory=True)
            for name, buffer in self._outputs.items()
        }

    def infer(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the engine once: every graph input by name (numpy arrays, or torch tensors on
        any device), 1 to :attr:`max_batch` rows -> every graph output by name (float outputs
        as float32 numpy arrays)."""
        if self._context is None:
            raise OrstreamError("tensorrt backend: infer() before load()")
        if inputs.keys() != self._inputs.keys():
            raise OrstreamError(
                f"tensorrt backend: inputs {sorted(inputs)} given, the engine takes "
                f"{sorted(self._inputs)}"
            )
        rows = batch_of(inputs, self.max_batch, "tensorrt backend")
        import torch

        if rows != self._rows:
            for name, buffer in self._inputs.items():
                if not self._context.set_input_shape(name, (rows, *buffer.shape[1:])):
                    raise OrstreamError(f"tensorrt backend: the engine refuses {rows} rows")
            self._rows = rows
        with torch.cuda.stream(self._stream):
            for name, value in inputs.items():
                buffer = self._inputs[name][:rows]
                source = value if isinstance(value, torch.Tensor) else torch.from_numpy(value)
                if tuple(source.shape) != tuple(buffer.shape):
                    raise OrstreamError(
                        f"tensorrt backend: input {name!r} has shape {list(source.shape)}, the "
                        f"engine takes {list(buffer.shape)}"
                    )
                buffer.copy_(source, non_blocking=True)
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise OrstreamError("tensorrt backend: execute_async_v3 failed (log above)")
            for name, buffer in self._outputs.items():
                self._host_outputs[name][:rows].copy_(buffer[:rows], non_blocking=True)
        self._stream.synchronize()
        results = {}
        for name, host in self._host_outputs.items():
            rows_out = host[:rows]
            if rows_out.is_floating_point() and rows_out.dtype != torch.float32:
                results[name] = rows_out.float().numpy()
            else:
                results[name] = rows_out.numpy().copy()  # the pinned buffer is reused next call
        return results
