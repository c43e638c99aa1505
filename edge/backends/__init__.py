"""Inference backends behind one protocol, chosen by preference, availability and correctness.

Backend modules import their runtime library at load, so they are imported here only when
asked for: importing this package stays cheap on machines that lack some runtimes.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from orstream.edge.backends.protocol import Backend, Graph
from orstream.edge.backends.reference_check import check_reference
from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage

if TYPE_CHECKING:
    from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend

__all__ = [
    "BACKENDS",
    "CPU_BACKENDS",
    "Backend",
    "Graph",
    "OnnxRuntimeBackend",
    "create_backend",
    "open_backend",
    "parse_device",
    "parse_preference",
]

logger = logging.getLogger("orstream.edge.backends")

CPU_BACKENDS = ("onnxruntime",)
"""The preference of a model loaded outside a configured runtime: ONNX Runtime, which runs
every package here."""

BACKENDS: dict[str, tuple[str, str]] = {
    "tensorrt": ("orstream.edge.backends.tensorrt_backend", "TensorRTBackend"),
    "torch": ("orstream.edge.backends.torch_backend", "TorchBackend"),
    "onnxruntime": ("orstream.edge.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "null": ("orstream.edge.backends.null_backend", "NullBackend"),
}
"""Backend name -> (module, class)."""

INSTALL_HINTS = {
    "torch": "pip install 'orstream[edge-gpu]', with a CUDA build of torch for cuda",
}
"""How to install what a backend imports beyond the ``edge`` extra."""


def _backend_class(name: str) -> Any:
    module, attribute = BACKENDS[name]
    return getattr(importlib.import_module(module), attribute)


def __getattr__(name: str) -> Any:
    if name == "OnnxRuntimeBackend":
        return _backend_class("onnxruntime")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_device(device: str) -> str:
    """``device`` if it is "cpu", "cuda" or "cuda:N".

    Raises:
        OrstreamError: anything else.
    """
    prefix, colon, index = device.partition(":")
    if device in ("cpu", "cuda") or (prefix == "cuda" and colon and index.isdigit()):
        return device
    raise OrstreamError(f"unknown device {device!r} (expected cpu, cuda or cuda:N)")


def parse_preference(entry: str, device: str) -> tuple[str, str]:
    """``(name, device)`` of a preference entry "name" or "name:device" (cpu, cuda, cuda:N);
    an entry without a device takes ``device``.

    Raises:
        OrstreamError: an unknown backend name or device.
    """
    name, _, entry_device = entry.partition(":")
    if name not in BACKENDS:
        raise OrstreamError(f"unknown backend {name!r} in {entry!r}; known: {', '.join(BACKENDS)}")
    return name, parse_device(entry_device or device)


def create_backend(
    preference: Sequence[str],
    package: ModelPackage,
    device: str = "cpu",
    graph: Graph = "model",
) -> Backend:
    """The first backend in ``preference`` that is available here, loads ``graph`` of
    ``package`` and reproduces the package's golden reference.

    Each entry is tried in order: is its library there and its device present
    (``unavailable_reason``), does it load, does it pass
    :func:`~orstream.edge.backends.reference_check.check_reference` (a backend that computes
    nothing, ``runs_model = False``, is not checked). The chosen backend gets ``selection``,
    one line naming it and why each earlier entry was not taken, e.g.
    ``onnxruntime-cpu (tensorrt:cuda: TensorRT is not installed; torch:cuda: CUDA is not
    available)``, which is also logged at INFO on logger ``orstream.edge.backends``.

    Args:
        preference: entries "name" or "name:device", most wanted first.
        package: the model package.
        device: the device of entries that name none.
        graph: which graph of the package to run.

    Raises:
        OrstreamError: no entries, an unknown name or device (before anything is tried), or
            no entry works: the message lists every entry's reason.
    """
    if not preference:
        raise OrstreamError(f"no backend given; known: {', '.join(BACKENDS)}")
    entries = [(entry, *parse_preference(entry, device)) for entry in preference]
    reasons: list[str] = []
    for entry, name, entry_device in entries:
        reason = _try(name, entry_device, package, graph)
        if isinstance(reason, str):
            reasons.append(f"{entry}: {reason}")
            continue
        backend = reason
        selection = backend.label + (f" ({'; '.join(reasons)})" if reasons else "")
        # Not part of the protocol: create_backend's record, read by the runtime's status.
        cast(Any, backend).selection = selection
        logger.info("%s %s graph runs on %s", package.card.name, graph, selection)
        return backend
    raise OrstreamError(
        f"no backend can run the {graph} graph of {package.root}: " + "; ".join(reasons)
    )


def open_backend(
    name: str, package: ModelPackage, device: str = "cpu", graph: Graph = "model", **options: Any
) -> Backend | str:
    """The backend ``name`` (constructed with ``options``) loaded with ``graph`` of ``package``
    on ``device``, without the golden check, or one line saying why it cannot be."""
    try:
        backend_class = _backend_class(name)
    except ImportError as error:
        hint = f"; {INSTALL_HINTS[name]}" if name in INSTALL_HINTS else ""
        return f"cannot import the {name} backend ({error}{hint})"
    reason = backend_class.unavailable_reason(device)
    if reason is not None:
        return str(reason)
    try:
        backend: Backend = backend_class(graph=graph, **options)
        backend.load(package, device)
    except OrstreamError as error:
        return str(error)
    except Exception as error:  # a runtime library's own failure (CUDA, driver, memory)
        logger.warning("%s backend failed on %s", name, device, exc_info=True)
        return f"{type(error).__name__}: {' '.join(str(error).split())}"
    return backend


def _try(name: str, device: str, package: ModelPackage, graph: Graph) -> Backend | str:
    """The backend ``name`` loaded and checked on ``device``, or why it cannot be."""
    backend = open_backend(name, package, device, graph)
    if isinstance(backend, str) or not getattr(type(backend), "runs_model", True):
        return backend
    try:
        check_reference(backend, package, graph)
    except OrstreamError as error:
        return str(error)
    return backend
