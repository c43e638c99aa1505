"""Why a hand-off is refused: each maps to one gRPC status and one CLI line."""

from __future__ import annotations

from orstream.errors import OrstreamError


class InvalidHandOff(OrstreamError):
    """The request itself is wrong (a bad kind name, seconds or parameter): INVALID_ARGUMENT."""


class NoSuchStream(OrstreamError):
    """The edge runs no stream of that id: NOT_FOUND."""


class NoSuchItem(OrstreamError):
    """The outbox holds no item of that id: NOT_FOUND."""


class HandOffRefused(OrstreamError):
    """Nothing may leave: every frame of the window is private, or none was judged yet:
    FAILED_PRECONDITION."""


class OutboxFull(OrstreamError):
    """The outbox holds as many items or bytes as it may: RESOURCE_EXHAUSTED."""
