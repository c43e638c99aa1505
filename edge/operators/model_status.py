"""The entries a model operator adds to ``GetStatus``: one per stream it serves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orstream.edge.graph.operator import Operator
from orstream.package.card import ModelCard
from orstream.status import ModelStatus


def model_statuses(
    op: Operator,
    card: ModelCard,
    backend: str,
    reason: str,
    rate_hz: float,
    inferred: Mapping[str, int],
    streams: Sequence[str],
) -> list[ModelStatus]:
    """The model ``op`` runs, as each of ``streams`` sees it: serving, or failed with the
    operator's error; ``backend`` runs it, chosen for ``reason``; ``inferred`` counts frames by
    stream."""
    return [
        ModelStatus(
            name=card.name,
            version=card.version,
            stream_id=stream,
            backend=backend,
            rate_hz=rate_hz,
            state="failed" if op.state == "failed" else "serving",
            inferred=inferred.get(stream, 0),
            error=op.error,
            backend_reason=reason,
        )
        for stream in streams
    ]
