"""Where hand-offs are asked for: a gRPC client's or the config's, for any stream of the edge.

A request is checked, its clip cut from the stream's :class:`ClipBuffer` into a new outbox
folder, and the item committed before the caller is answered; the sender is woken to send it.
Every refusal is one clear line (:mod:`orstream.edge.outbox.errors`) and leaves nothing behind.
"""

from __future__ import annotations

import shutil

from orstream.edge.outbox.clip_buffer import ClipBuffer
from orstream.edge.outbox.errors import InvalidHandOff, NoSuchStream
from orstream.edge.outbox.followers import ItemFollow, ItemFollowers
from orstream.edge.outbox.sender import OutboxSender
from orstream.edge.outbox.store import OutboxStore
from orstream.errors import OrstreamError, quoted
from orstream.handoffs import HANDOFF_STATES, AskRequest, HandOffItem, HandOffRequest
from orstream.jobs import JobSubmission
from orstream.vlm.answering.answer_backend import check_question

CLIP_NAME = "clip.mp4"
"""The input a hand-off's job gets: the clip, as an H.264 MP4 (what the ``probe`` kind reads)."""


class HandOffDesk:
    """Takes hand-offs into the outbox and answers what it holds.

    Args:
        store: the outbox.
        sender: woken when an item is added (None: items wait for a later sender).
        followers: told each item once it is added (the sender tells them the later changes);
            ``ask`` follows its item through them.
        default_s: seconds handed off when a request names none.
        max_s: the most seconds one hand-off may ask for (what each stream's buffer keeps).
        fps: frames per second the clips keep at most.
    """

    def __init__(
        self,
        store: OutboxStore,
        sender: OutboxSender | None = None,
        followers: ItemFollowers | None = None,
        default_s: float = 10.0,
        max_s: float = 60.0,
        fps: float = 10.0,
    ) -> None:
        self.store = store
        self.sender = sender
        self.followers = followers or ItemFollowers()
        self.default_s = default_s
        self.max_s = max_s
        self.fps = fps
        self.buffers: dict[str, ClipBuffer] = {}

    def add_stream(self, stream_id: str) -> ClipBuffer:
        """The clip buffer of a stream the edge runs (made on the first call)."""
        if stream_id not in self.buffers:
            self.buffers[stream_id] = ClipBuffer(stream_id, self.max_s, self.fps)
        return self.buffers[stream_id]

    def hand_off(self, request: HandOffRequest, origin: str = "client") -> HandOffItem:
        """Cut the clip and commit the item; answers it waiting to be sent.

        Raises:
            InvalidHandOff: a bad kind name, seconds or parameter.
            NoSuchStream: the edge runs no such stream.
            HandOffRefused: every frame of the window is private, or none was judged yet.
            OutboxFull: the outbox holds as much as it may.
        """
        seconds = request.seconds or self.default_s
        if not 0 < seconds <= self.max_s:
            raise InvalidHandOff(
                f"seconds {request.seconds:g}: hand off more than 0 and at most "
                f"{self.max_s:g} s (what the edge keeps of each stream)"
            )
        try:
            JobSubmission(request.kind, "check", (), dict(request.params))
        except OrstreamError as error:
            raise InvalidHandOff(str(error)) from None
        buffer = self._buffer(request.stream_id)
        clip = buffer.cut(seconds)
        self.store.check_room()
        item_id, folder = self.store.new_folder()
        try:
            clip.write(folder / CLIP_NAME)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        item = self.store.add(
            item_id,
            stream_id=buffer.stream_id,
            kind=request.kind,
            seconds=seconds,
            params=request.params,
            origin=origin,
            frames=clip.summary.frames,
            withheld_frames=clip.summary.withheld_frames,
        )
        self.followers.changed(item)
        if self.sender is not None:
            self.sender.wake()
        return item

    def ask(self, request: AskRequest) -> tuple[HandOffItem, ItemFollow]:
        """Hand off a question (:meth:`hand_off` with kind ``vlm``) and follow its item from
        before the sender can tell anything about it; the caller closes the follow.

        Raises:
            InvalidHandOff: an empty, over-long or non-printable question; as ``hand_off``.
        """
        try:
            check_question(request.question)
        except OrstreamError as error:
            raise InvalidHandOff(str(error)) from None
        with self.followers.adding:
            item = self.hand_off(request.as_handoff())
            return item, self.followers.follow(item.id)

    def get(self, item_id: str) -> HandOffItem:
        """The item now (NoSuchItem when the outbox has none of that id)."""
        return self.store.get(item_id)

    def recent(self, state: str = "", limit: int = 0) -> list[HandOffItem]:
        """The most recent items first (``limit`` 0: 100).

        Raises:
            InvalidHandOff: an unknown state or a negative limit.
        """
        if state and state not in HANDOFF_STATES:
            raise InvalidHandOff(f"state {quoted(state)}: one of {', '.join(HANDOFF_STATES)}")
        if limit < 0:
            raise InvalidHandOff(f"limit {limit}: not negative")
        return self.store.recent(state, limit or 100)

    def start(self) -> None:
        """Start sending (items left by an earlier run first)."""
        if self.sender is not None:
            self.sender.start()

    def close(self) -> None:
        """Stop sending and close the outbox; what is not sent yet stays for the next run."""
        if self.sender is not None:
            self.sender.stop()
        self.store.close()

    def _buffer(self, stream_id: str) -> ClipBuffer:
        if not stream_id and len(self.buffers) == 1:
            return next(iter(self.buffers.values()))
        if not stream_id:
            raise InvalidHandOff(
                f"name the stream: this edge runs {', '.join(self.buffers) or 'none'}"
            )
        buffer = self.buffers.get(stream_id)
        if buffer is None:
            known = ", ".join(self.buffers) or "none"
            raise NoSuchStream(f"no stream {quoted(stream_id)} (streams: {known})")
        return buffer
