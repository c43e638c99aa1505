"""The edge's hand-offs from its ``server:`` section: the outbox, its sender and its desk, and
the automatic hand-offs of each stream."""

from __future__ import annotations

from collections.abc import Callable

from orstream.client.connection import read_token
from orstream.client.server_client import ServerClient
from orstream.edge.app.config import ServerConfig
from orstream.edge.operators.handoff_clips import AutoHandOff
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.outbox.retry import RetryPolicy
from orstream.edge.outbox.sender import OutboxSender
from orstream.edge.outbox.store import OutboxStore
from orstream.handoffs import HandOffItem


def open_handoffs(config: ServerConfig, on_change: Callable[[HandOffItem], None]) -> HandOffDesk:
    """The outbox of ``config`` opened (items of an earlier run included), with a sender that
    is started with the app; ``on_change`` hears every item's changes.

    Raises:
        OrstreamError: the outbox or the token file cannot be read.
    """
    token = read_token(config.token_file)
    store = OutboxStore(
        config.outbox,
        max_items=config.max_items,
        max_bytes=int(config.max_mb * 1e6),
        keep_finished=config.keep_finished,
    )

    def connect() -> ServerClient:
        return ServerClient(
            config.address, config.connect_timeout_s, token=token, tls_ca=config.tls_ca
        )

    retry = config.retry
    sender = OutboxSender(
        store,
        connect,
        RetryPolicy(retry.initial_s, retry.factor, retry.max_s, retry.jitter),
        on_change,
        config.max_in_flight,
    )
    return HandOffDesk(
        store, sender, on_change, config.default_clip_s, config.max_clip_s, config.clip_fps
    )


def schedule_of(config: ServerConfig, stream_id: str) -> tuple[AutoHandOff, ...]:
    """The automatic hand-offs of one stream."""
    return tuple(
        AutoHandOff(rule.kind, rule.every_s, rule.seconds, dict(rule.params))
        for rule in config.handoffs
        if not rule.streams or stream_id in rule.streams
    )
