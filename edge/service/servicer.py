"""``orstream.v1.EdgeService``: a thin gRPC layer over the result hub, the runtime status, the
frame prompter, the video-text model and the hand-off desk."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from orstream.access.caller import caller
from orstream.edge.models.frame_prompter import FrameNotFound, FramePrompter, PromptCancelled
from orstream.edge.models.video_text_model import TextRefused, UnknownStream, VideoTextModel
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.outbox.errors import (
    HandOffRefused,
    InvalidHandOff,
    NoSuchItem,
    NoSuchStream,
    OutboxFull,
)
from orstream.edge.service.result_hub import ResultHub, Subscription
from orstream.errors import OrstreamError, quoted
from orstream.handoffs import HandOffItem
from orstream.proto.convert import (
    ask_event_to_proto,
    ask_request_from_proto,
    handoff_list_to_proto,
    handoff_request_from_proto,
    handoff_to_proto,
    prompt_answer_to_proto,
    prompt_change_from_proto,
    prompt_request_from_proto,
    prompts_to_proto,
    search_answer_to_proto,
    search_request_from_proto,
    status_to_proto,
    subscribe_request_from_proto,
    subscribe_response_to_proto,
    timeline_request_from_proto,
    timeline_to_proto,
)
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.segmentation.prompt_tensors import PromptError
from orstream.status import RuntimeStatus

SERVICE_NAME: str = edge_pb2.DESCRIPTOR.services_by_name["EdgeService"].full_name
"""``orstream.v1.EdgeService``, as health checks and reflection name it."""

_POLL_S = 0.5
"""How often an idle subscription checks that its client is still there."""

HANDOFF_REFUSALS = {
    InvalidHandOff: grpc.StatusCode.INVALID_ARGUMENT,
    NoSuchStream: grpc.StatusCode.NOT_FOUND,
    NoSuchItem: grpc.StatusCode.NOT_FOUND,
    HandOffRefused: grpc.StatusCode.FAILED_PRECONDITION,
    OutboxFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
"""The status each refusal of the hand-off desk is answered with."""

MAX_DETAILS = 400
"""The longest error detail sent back: far under gRPC's metadata limit, whatever was asked."""


def details(error: Exception) -> str:
    """An error's message as a status detail, cut to :data:`MAX_DETAILS` characters (messages
    quote callers' values only in short, sanitised form; this bounds the rest)."""
    message = str(error)
    return message if len(message) <= MAX_DETAILS else message[: MAX_DETAILS - 3] + "..."


class EdgeService(edge_pb2_grpc.EdgeServiceServicer):
    """Serves the runtime's status, live results and step timelines.

    Args:
        hub: where the runtime publishes its results.
        status: returns a fresh snapshot of the runtime.
        max_subscribers: open ``Subscribe`` streams allowed at once (each holds a server thread).
        subscriber_buffer: results buffered per subscriber before its oldest is dropped.
        prompter: answers ``Prompt`` (None: the runtime has no segmenter).
        max_prompts: ``Prompt`` calls worked on at once; more are refused at once.
        max_per_client: ``Subscribe`` streams one caller may hold at once
            (:func:`~orstream.access.caller.caller`).
        video_text: answers ``Search`` and ``SetPrompts`` (None: no video-text model);
            ``max_prompts`` of each are worked on at once.
        handoffs: answers ``HandOff``, ``GetHandOff`` and ``ListHandOffs`` (None: the edge
            hands nothing to a server).
    """

    def __init__(
        self,
        hub: ResultHub,
        status: Callable[[], RuntimeStatus],
        max_subscribers: int,
        subscriber_buffer: int,
        prompter: FramePrompter | None = None,
        max_prompts: int = 2,
        max_per_client: int = 4,
        video_text: VideoTextModel | None = None,
        handoffs: HandOffDesk | None = None,
    ) -> None:
        self._hub = hub
        self._handoffs = handoffs
        self._video_text = video_text
        self._searching = threading.BoundedSemaphore(max_prompts)
        self._max_per_client = max_per_client
        self._holders: dict[Subscription, str] = {}
        self._max_prompts = max_prompts
        self._prompting = threading.BoundedSemaphore(max_prompts)
        self._prompter = prompter
        self._status = status
        self._max_subscribers = max_subscribers
        self._subscriber_buffer = subscriber_buffer
        self._lock = threading.Lock()
        self._open: set[Subscription] = set()
        self._closed = False

    def GetStatus(
        self, request: edge_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> edge_pb2.GetStatusResponse:
        return status_to_proto(self._status())

    def Subscribe(
        self, request: edge_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[edge_pb2.SubscribeResponse]:
        stream_ids, kinds = subscribe_request_from_proto(request)
        try:
            subscription = self._hub.subscribe(stream_ids, kinds, capacity=self._subscriber_buffer)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
        refusal = self._register(subscription, caller(context))
        if refusal is not None:
            subscription.close()
            context.abort(*refusal)
        # Ends the wait below as soon as the client cancels or the call dies.
        if not context.add_callback(subscription.close):
            subscription.close()
        # Headers now tell the client that every result published from here on reaches it.
        context.send_initial_metadata(())
        try:
            while True:
                result = subscription.get_event(timeout_s=_POLL_S)
                if result is None:
                    if subscription.closed or not context.is_active():
                        return
                    continue
                yield subscribe_response_to_proto(result, subscription.dropped)
        finally:
            subscription.close()
            with self._lock:
                self._open.discard(subscription)
                self._holders.pop(subscription, None)

    def GetTimeline(
        self, request: edge_pb2.GetTimelineRequest, context: grpc.ServicerContext
    ) -> edge_pb2.GetTimelineResponse:
        stream_id = timeline_request_from_proto(request)
        if not stream_id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "stream_id is required")
        try:
            segments = self._hub.timeline(stream_id)
        except KeyError:
            known = ", ".join(self._hub.streams()) or "none yet"
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no results for stream {quoted(stream_id)} (streams with results: {known})",
            )
        return timeline_to_proto(stream_id, segments)

    def Prompt(
        self, request: edge_pb2.PromptRequest, context: grpc.ServicerContext
    ) -> edge_pb2.PromptResponse:
        prompter = self._prompter
        if prompter is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this runtime runs no segmenter (add a segmentation section to its config)",
            )
            raise AssertionError("abort raises")
        try:
            asked = prompt_request_from_proto(request)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
        if not self._prompting.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._max_prompts} prompts are being worked on; try again shortly",
            )

        def wanted() -> bool:
            left = context.time_remaining()
            return bool(context.is_active()) and (left is None or left > 0)

        try:
            answer = prompter.prompt(
                asked.stream_id, asked.index, asked.region, asked.classes, wanted
            )
        except PromptError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
        except FrameNotFound as error:
            context.abort(grpc.StatusCode.NOT_FOUND, details(error))
        except PromptCancelled as error:
            context.abort(grpc.StatusCode.CANCELLED, details(error))
        finally:
            self._prompting.release()
        return prompt_answer_to_proto(answer)

    def Search(
        self, request: edge_pb2.SearchRequest, context: grpc.ServicerContext
    ) -> edge_pb2.SearchResponse:
        model = self._video_text_model(context)
        try:
            asked = search_request_from_proto(request)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
        with self._busy(context):
            try:
                answer = model.search(asked)
            except TextRefused as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
            except UnknownStream as error:
                context.abort(grpc.StatusCode.NOT_FOUND, details(error))
        return search_answer_to_proto(answer)

    def SetPrompts(
        self, request: edge_pb2.SetPromptsRequest, context: grpc.ServicerContext
    ) -> edge_pb2.SetPromptsResponse:
        model = self._video_text_model(context)
        try:
            change = prompt_change_from_proto(request)
        except ValueError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
        with self._busy(context):
            try:
                prompts = model.set_prompts(change)
            except TextRefused as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, details(error))
        return prompts_to_proto(prompts)

    def HandOff(
        self, request: edge_pb2.HandOffRequest, context: grpc.ServicerContext
    ) -> edge_pb2.HandOffItem:
        desk = self._desk(context)
        with _refusals(context):
            item = desk.hand_off(handoff_request_from_proto(request))
        return handoff_to_proto(item)

    def Ask(
        self, request: edge_pb2.AskRequest, context: grpc.ServicerContext
    ) -> Iterator[edge_pb2.AskResponse]:
        desk = self._desk(context)
        with _refusals(context):
            item, follow = desk.ask(ask_request_from_proto(request))
        try:
            yield ask_event_to_proto(item)
            while context.is_active() and not self._closed:
                event = follow.get(_POLL_S)
                if event is None:
                    continue
                yield ask_event_to_proto(event)
                if isinstance(event, HandOffItem) and event.final:
                    return
        finally:
            follow.close()

    def GetHandOff(
        self, request: edge_pb2.GetHandOffRequest, context: grpc.ServicerContext
    ) -> edge_pb2.HandOffItem:
        desk = self._desk(context)
        with _refusals(context):
            item = desk.get(request.id)
        return handoff_to_proto(item)

    def ListHandOffs(
        self, request: edge_pb2.ListHandOffsRequest, context: grpc.ServicerContext
    ) -> edge_pb2.ListHandOffsResponse:
        desk = self._desk(context)
        with _refusals(context):
            items = desk.recent(request.state, request.limit)
        return handoff_list_to_proto(items)

    def _desk(self, context: grpc.ServicerContext) -> HandOffDesk:
        if self._handoffs is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this runtime hands nothing to a server (start it with --server HOST:PORT, "
                "or add a server section to its config)",
            )
            raise AssertionError("abort raises")
        return self._handoffs

    def _video_text_model(self, context: grpc.ServicerContext) -> VideoTextModel:
        if self._video_text is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this runtime runs no video-text model (add a videotext section to its config)",
            )
            raise AssertionError("abort raises")
        return self._video_text

    @contextmanager
    def _busy(self, context: grpc.ServicerContext) -> Iterator[None]:
        """Hold one of the text calls' places for the call, or refuse it at once."""
        if not self._searching.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._max_prompts} text requests are being worked on; try again shortly",
            )
        try:
            yield
        finally:
            self._searching.release()

    def close(self) -> None:
        """End every open subscription (its client sees the stream end) and refuse new ones."""
        with self._lock:
            self._closed = True
            subscriptions = tuple(self._open)
        for subscription in subscriptions:
            subscription.close()

    def _register(
        self, subscription: Subscription, holder: str
    ) -> tuple[grpc.StatusCode, str] | None:
        """Count a new subscription of ``holder`` in, or say why it is refused."""
        with self._lock:
            if self._closed:
                return grpc.StatusCode.UNAVAILABLE, "the edge server is shutting down"
            if len(self._open) >= self._max_subscribers:
                return (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the edge server already serves {self._max_subscribers} subscriptions",
                )
            held = sum(1 for other in self._holders.values() if other == holder)
            if held >= self._max_per_client:
                return (
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{held} subscriptions are open for this client already (the most one "
                    "client may hold); close one first",
                )
            self._open.add(subscription)
            self._holders[subscription] = holder
            return None


@contextmanager
def _refusals(context: grpc.ServicerContext) -> Iterator[None]:
    """Answer the hand-off desk's refusals with their status (a failure to write the outbox,
    e.g. a full disk, is UNAVAILABLE: the client may try again later)."""
    try:
        yield
    except OrstreamError as error:
        code = HANDOFF_REFUSALS.get(type(error), grpc.StatusCode.UNAVAILABLE)
        context.abort(code, details(error))
