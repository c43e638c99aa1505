"""One graph of a package in an ONNX Runtime session, refused unless it computes what the
package says.

The server tier and the training data (frame and slide features, instrument evidence) run
packages without the edge's backends (neither may import the edge), so they open their graphs
here. A graph must match the card's signature and reproduce the package's golden reference
within :data:`REFERENCE_TOLERANCE`, as every edge backend must before it serves: a graph that
computes something else is refused before it sees any input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import Graph
from orstream.package.loading import ModelPackage
from orstream.package.signatures import check_graph_signature

REFERENCE_TOLERANCE = 1e-4
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


def open_session(package: ModelPackage, graph: Graph = "model", threads: int = 1) -> Any:
    """An ONNX Runtime CPU session of ``graph`` with ``threads`` intra-op threads, checked
    against the card's signature and the golden reference (when the card records one).

    Raises:
        OrstreamError: ONNX Runtime cannot load the graph, its tensors are not the card's, or
            an output is further than :data:`REFERENCE_TOLERANCE` from the golden reference.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = package.graph_path(graph)
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # ONNX Runtime's load errors have no common base
        raise OrstreamError(f"onnxruntime cannot load {path}: {error}") from None

    def signature(values: Any) -> dict[str, tuple[tuple[Any, ...], str]]:
        return {v.name: (tuple(v.shape), _ORT_DTYPES.get(v.type, v.type)) for v in values}

    check_graph_signature(
        package.card, signature(session.get_inputs()), signature(session.get_outputs()), path, graph
    )
    reference = package.reference(graph)
    if reference is not None:
        names = list(reference.outputs)
        for name, value in zip(names, session.run(names, reference.inputs), strict=True):
            difference = float(np.abs(value - reference.outputs[name]).max())
            if difference > REFERENCE_TOLERANCE:
                raise OrstreamError(
                    f"{package.root}: {graph} output {name!r} is {difference:.3g} from the "
                    f"golden reference (at most {REFERENCE_TOLERANCE:g}): refusing it"
                )
    return session
