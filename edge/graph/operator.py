"""Operators: the units an edge app's graph is made of, each on its own thread.

An operator declares named input and output ports in :meth:`Operator.setup`; a graph connects
them (:meth:`orstream.edge.graph.graph.Graph.add_flow`) and runs each operator on a thread of
its own:

- An operator with inputs waits until any of its connections holds an item, takes one item
  from each connection that has one (so an operator fed by several streams gets a batch: one
  frame per stream that is due) and calls :meth:`Operator.compute` with them, by port. When no
  item comes for ``idle_s`` it calls :meth:`Operator.on_idle` instead (a display marks NO
  SIGNAL that way). It finishes once every input connection is closed and drained.
- A source operator (no inputs) runs :meth:`SourceOperator.generate` until its source ends or
  :meth:`SourceOperator.interrupt` is called.

Either way, when the operator finishes it calls :meth:`Operator.on_stop` (flush a recording,
write result files) and closes its outputs, so the end of a stream travels down the graph and
everything drains in order.

An operator that fails (an :class:`~orstream.errors.OrstreamError`, or any other exception,
which is logged with its traceback as the bug it is) is marked ``failed`` with the reason and
keeps draining its inputs without computing, so nothing upstream ever waits on it and the rest
of the graph (above all the video path) goes on. The graph is told, to turn health off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orstream.edge.graph.meters import StageMeter
from orstream.edge.graph.port import Connection, InputSpec, Policy
from orstream.errors import OrstreamError
from orstream.latency import LatencySummary

log = logging.getLogger(__name__)

Received = dict[str, list[Any]]
"""What one compute call got: per input port, one item from each connection that had one."""


class OperatorSpec:
    """The ports an operator declares in :meth:`Operator.setup`."""

    def __init__(self) -> None:
        self.inputs: dict[str, InputSpec] = {}
        self.outputs: list[str] = []

    def input(
        self,
        name: str,
        capacity: int = 1,
        policy: Policy = "latest",
        rate_hz: float | None = None,
    ) -> None:
        """An input port (see :class:`~orstream.edge.graph.port.InputSpec`)."""
        self.inputs[name] = InputSpec(name, capacity, policy, rate_hz)

    def output(self, name: str) -> None:
        """An output port; what is emitted on it goes to every connection from it."""
        self.outputs.append(name)


class OutputPort:
    """Where an operator emits: every connection from it (by stream filter) and every tap."""

    def __init__(self, operator: str, name: str) -> None:
        self.operator = operator
        self.name = name
        self.connections: list[Connection[Any]] = []
        self.taps: list[Callable[[Any], None]] = []

    def emit(self, item: object) -> None:
        for tap in self.taps:
            tap(item)
        for connection in self.connections:
            if connection.wants(item):
                connection.put(item)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


@dataclass(frozen=True)
class InputStatus:
    """One connection into an operator: what it accepted, dropped, skipped and holds now."""

    connection: str
    accepted: int
    dropped: int
    skipped: int
    queued: int


@dataclass(frozen=True)
class OperatorStatus:
    """An operator's state, its time per item, and what its inputs dropped.

    Attributes:
        name: the operator's name in its graph.
        state: ``ready``, ``running``, ``finished`` or ``failed``.
        error: why it failed (empty unless failed).
        latency: time per item as the operator measures it (its own work only).
        processed: items it handled.
        inputs: every connection into it.
    """

    name: str
    state: str
    error: str
    latency: LatencySummary
    processed: int
    inputs: tuple[InputStatus, ...]

    @property
    def dropped(self) -> int:
        """Items its input connections dropped under their policies."""
        return sum(port.dropped for port in self.inputs)


class Operator:
    """A unit of work with named ports (see the module docstring).

    Subclasses declare ports in :meth:`setup` and do their work in :meth:`compute`, emitting
    with :meth:`emit`. They measure their own work with ``self.meter`` (a compute call that
    only updates state should not count as an item).

    Args:
        name: unique in its graph (e.g. ``cam0.overlay``).
    """

    idle_s: float | None = None
    """Call :meth:`on_idle` after this long without an input item (None: never)."""

    def __init__(self, name: str) -> None:
        self.name = name
        spec = OperatorSpec()
        self.setup(spec)
        self.input_specs = dict(spec.inputs)
        self.inputs: dict[str, list[Connection[Any]]] = {port: [] for port in spec.inputs}
        self.outputs = {port: OutputPort(name, port) for port in spec.outputs}
        self.condition = threading.Condition()
        self.meter = StageMeter(name)
        self.state = "ready"
        self.error = ""
        self.on_failure: Callable[[Operator], None] = lambda operator: None

    # -- what subclasses implement ------------------------------------------------------------

    def setup(self, spec: OperatorSpec) -> None:
        """Declare the operator's ports."""

    def compute(self, received: Received) -> None:
        """Handle one item from each connection that had one, by input port."""
        raise NotImplementedError

    def on_idle(self) -> None:
        """Nothing came for ``idle_s``."""

    def on_stop(self) -> None:
        """Every input is drained (or the source ended): flush, write, close; may emit."""

    # -- used by subclasses -------------------------------------------------------------------

    def emit(self, port: str, item: object) -> None:
        """Send ``item`` to everything connected to output ``port``."""
        self.outputs[port].emit(item)

    def fail(self, error: str) -> None:
        """Mark the operator failed: it stops computing, keeps draining, tells the graph."""
        if self.state == "failed":
            return
        self.state, self.error = "failed", error
        log.error("%s failed: %s", self.name, error)
        self.on_failure(self)

    # -- run by the graph ---------------------------------------------------------------------

    def run(self) -> None:
        """The operator's thread: loop until its inputs are drained, then stop and close."""
        self.state = "running"
        try:
            self._loop()
        finally:
            self._guarded(self.on_stop, always=True)
            for output in self.outputs.values():
                output.close()
            if self.state == "running":
                self.state = "finished"

    def interrupt(self) -> None:
        """Asked to stop early (sources stop their source; others drain as usual)."""

    def status(self) -> OperatorStatus:
        inputs = tuple(
            InputStatus(c.name, c.accepted, c.dropped, c.skipped, len(c))
            for connections in self.inputs.values()
            for c in connections
        )
        return OperatorStatus(
            self.name, self.state, self.error, self.meter.summary(), self.meter.processed, inputs
        )

    def _loop(self) -> None:
        ports = list(self.inputs.items())
        every = [c for _, connections in ports for c in connections]
        if not every:
            return
        while True:
            with self.condition:
                self.condition.wait_for(
                    lambda: any(c.ready() for c in every) or all(c.drained() for c in every),
                    self.idle_s,
                )
                if all(c.drained() for c in every):
                    return
                received: Received = {}
                for port, connections in ports:
                    items = [c.take() for c in connections if c.ready()]
                    received[port] = [item for item in items if item is not None]
            if self.state == "failed":
                continue
            if any(received.values()):
                self._guarded(self.compute, received)
            else:
                self._guarded(self.on_idle)

    def _guarded(self, call: Callable[..., None], *args: Any, always: bool = False) -> None:
        """Run ``call``, failing the operator on an error; skipped once failed unless ``always``
        (``on_stop`` still closes what a failed operator opened)."""
        if self.state == "failed" and not always:
            return
        try:
            call(*args)
        except OrstreamError as error:
            self.fail(str(error))
        except Exception as error:  # a bug: keep the traceback, keep the rest of the graph going
            log.exception("%s raised", self.name)
            self.fail(f"{type(error).__name__}: {error}")


class SourceOperator(Operator):
    """An operator without inputs: it produces items until its source ends or is interrupted."""

    def generate(self) -> None:
        """Emit items until the source ends or :meth:`interrupt` is called."""
        raise NotImplementedError

    def run(self) -> None:
        self.state = "running"
        try:
            self._guarded(self.generate)
        finally:
            self._guarded(self.on_stop, always=True)
            for output in self.outputs.values():
                output.close()
            if self.state == "running":
                self.state = "finished"
