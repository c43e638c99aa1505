"""A graph of operators: connected once in an app's ``compose()``, started, drained and stopped
in one place.

    graph = Graph("edge")
    graph.add_flow(camera, overlay, "video")                       # same port name both sides
    graph.add_flow(camera, recognizer, {"video": "frames"}, rate_hz=1.0)
    graph.add_flow(recognizer, overlay, "results", stream_id="cam0")
    graph.run()

Each :meth:`Graph.add_flow` makes one connection (its own bounded queue, with the input port's
capacity and policy unless the flow overrides them), so the path of a frame reads in the app's
``compose()`` in one place. A flow may carry one stream only (``stream_id``): a model shared by
every stream emits each stream's results once, and each stream's overlay receives its own.

A tap (:meth:`Graph.add_tap`) calls a function with every item an output emits, in the
emitting thread, with no queue: for bookkeeping that costs microseconds (remembering recent
frames for prompts), never for work.

The graph runs until every operator finished: sources end (or are interrupted by
:meth:`Graph.stop`), their outputs close, and each operator drains its inputs, flushes and
closes its own outputs in turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from orstream.edge.graph.operator import Operator, OperatorStatus, SourceOperator
from orstream.edge.graph.port import Connection, Policy
from orstream.errors import OrstreamError

OperatorT = TypeVar("OperatorT", bound=Operator)

STOP_TIMEOUT_S = 10.0
"""How long :meth:`Graph.stop` waits for the graph to drain after interrupting the sources."""


class Graph:
    """Operators and the flows between them.

    Args:
        name: the app's name (logs, thread names).
        on_failure: called with an operator that failed (e.g. to turn health off).
    """

    def __init__(
        self, name: str = "edge", on_failure: Callable[[Operator], None] | None = None
    ) -> None:
        self.name = name
        self.operators: dict[str, Operator] = {}
        self.on_failure = on_failure
        self._threads: list[threading.Thread] = []
        self._started = False
        self._started_ns: int | None = None
        self._drain_deadline: float | None = None

    def add_operator(self, operator: OperatorT) -> OperatorT:
        """Add an operator (flows add theirs); its name must be unique in the graph."""
        known = self.operators.get(operator.name)
        if known is operator:
            return operator
        if known is not None:
            raise OrstreamError(f"graph {self.name}: two operators named {operator.name!r}")
        if self._started:
            raise OrstreamError(f"graph {self.name}: cannot add {operator.name!r} once started")
        operator.on_failure = self._failed
        self.operators[operator.name] = operator
        return operator

    def add_flow(
        self,
        upstream: Operator,
        downstream: Operator,
        ports: str | Mapping[str, str],
        *,
        stream_id: str | None = None,
        capacity: int | None = None,
        policy: Policy | None = None,
        rate_hz: float | None = None,
    ) -> list[Connection[Any]]:
        """Connect outputs of ``upstream`` to inputs of ``downstream``.

        Args:
            upstream: the emitting operator.
            downstream: the receiving operator.
            ports: ``"name"`` (the same name on both sides) or ``{output: input, ...}``.
            stream_id: carry only items of this stream.
            capacity, policy, rate_hz: override the input port's own for this connection.

        Returns:
            The connections made (one per port pair).

        Raises:
            OrstreamError: an unknown port, naming the ports there are.
        """
        self.add_operator(upstream)
        self.add_operator(downstream)
        pairs = {ports: ports} if isinstance(ports, str) else dict(ports)
        made = []
        for output, input_name in pairs.items():
            if output not in upstream.outputs:
                raise OrstreamError(
                    f"{upstream.name} has no output {output!r} (outputs: "
                    f"{', '.join(upstream.outputs) or 'none'})"
                )
            if input_name not in downstream.input_specs:
                raise OrstreamError(
                    f"{downstream.name} has no input {input_name!r} (inputs: "
                    f"{', '.join(downstream.input_specs) or 'none'})"
                )
            spec = downstream.input_specs[input_name]
            if capacity is not None:
                spec = replace(spec, capacity=capacity)
            if policy is not None:
                spec = replace(spec, policy=policy)
            if rate_hz is not None:
                spec = replace(spec, rate_hz=rate_hz)
            name = f"{upstream.name}.{output}->{downstream.name}.{input_name}"
            if stream_id is not None:
                name += f"[{stream_id}]"
            connection: Connection[Any] = Connection(name, spec, stream_id, downstream.condition)
            upstream.outputs[output].connections.append(connection)
            downstream.inputs[input_name].append(connection)
            made.append(connection)
        return made

    def add_tap(self, upstream: Operator, output: str, tap: Callable[[Any], None]) -> None:
        """Call ``tap`` with every item ``upstream`` emits on ``output``, in its thread."""
        self.add_operator(upstream)
        if output not in upstream.outputs:
            raise OrstreamError(f"{upstream.name} has no output {output!r}")
        upstream.outputs[output].taps.append(tap)

    def sources(self) -> list[SourceOperator]:
        return [op for op in self.operators.values() if isinstance(op, SourceOperator)]

    def start(self) -> None:
        """Start one thread per operator, consumers first; returns at once."""
        if self._started:
            raise OrstreamError(f"graph {self.name} already started")
        self._started = True
        self._started_ns = time.monotonic_ns()
        ordered = sorted(self.operators.values(), key=lambda op: isinstance(op, SourceOperator))
        for operator in ordered:
            thread = threading.Thread(
                target=operator.run, name=f"{self.name}:{operator.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for every operator to finish; True once all have."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            if thread.is_alive():
                return False
        return True

    def request_stop(self, drain_s: float = STOP_TIMEOUT_S) -> None:
        """Interrupt the sources and return at once; :meth:`join` then waits at most
        ``drain_s`` for the graph to drain (safe to call from a signal handler)."""
        if self._drain_deadline is None:
            self._drain_deadline = time.monotonic() + drain_s
        for source in self.sources():
            source.interrupt()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Interrupt the sources and let the graph drain (bounded); True when it drained."""
        self.request_stop(timeout_s)
        return self.wait(timeout_s)

    def join(self) -> bool:
        """Wait until every operator finished; True when all did. Ctrl-C (when nothing else
        handles SIGINT) stops the sources and drains; after :meth:`request_stop` the wait ends
        at its drain deadline, drained or not."""
        try:
            while not self.wait(0.2):
                if self._drain_deadline is not None and time.monotonic() > self._drain_deadline:
                    return self.wait(0)
        except KeyboardInterrupt:
            return self.stop()
        return True

    def run(self) -> None:
        """Start, wait for the sources to end (or Ctrl-C, which stops them), drain."""
        self.start()
        self.join()

    def uptime_s(self) -> float:
        """Seconds since :meth:`start` (0 before)."""
        if self._started_ns is None:
            return 0.0
        return (time.monotonic_ns() - self._started_ns) / 1e9

    def status(self, names: Iterable[str] | None = None) -> tuple[OperatorStatus, ...]:
        """Every operator's status (or the named ones), in the order they were added."""
        wanted = self.operators if names is None else names
        return tuple(self.operators[name].status() for name in wanted)

    def _failed(self, operator: Operator) -> None:
        if self.on_failure is not None:
            self.on_failure(operator)
