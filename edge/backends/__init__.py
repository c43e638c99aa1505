"""Inference backends behind one protocol, chosen by preference and availability.

Backend modules import their runtime library at load, so they are imported here only when
asked for: importing this package stays cheap on machines that lack some runtimes.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orstream.edge.backends.protocol import Backend, Graph
from orstream.errors import OrstreamError
from orstream.model_package import ModelPackage

if TYPE_CHECKING:
    from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend

__all__ = ["BACKENDS", "Backend", "Graph", "OnnxRuntimeBackend", "create_backend"]

BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("orstream.edge.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "null": ("orstream.edge.backends.null_backend", "NullBackend"),
}
"""Backend name -> (module, class)."""


def _backend_class(name: str) -> Any:
    module, attribute = BACKENDS[name]
    return getattr(importlib.import_module(module), attribute)


def __getattr__(name: str) -> Any:
    if name == "OnnxRuntimeBackend":
        return _backend_class("onnxruntime")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_backend(
    preference: Sequence[str], package: ModelPackage, device: str = "cpu"
) -> Backend:
    """The first backend in ``preference`` that can run on ``device`` here, with ``package`` loaded.

    Raises:
        OrstreamError: a name is not a known backend, or none of them is available.
    """
    unknown = [name for name in preference if name not in BACKENDS]
    if unknown or not preference:
        raise OrstreamError(
            f"unknown backend(s) {unknown or list(preference)}; known: {sorted(BACKENDS)}"
        )
    reasons = []
    for name in preference:
        try:
            backend_class = _backend_class(name)
        except ImportError as error:
            reasons.append(f"{name}: {error}")
            continue
        reason = backend_class.unavailable_reason(device)
        if reason is not None:
            reasons.append(f"{name}: {reason}")
            continue
        backend: Backend = backend_class()
        backend.load(package, device)
        return backend
    raise OrstreamError(f"no backend can run on {device}: " + "; ".join(reasons))
