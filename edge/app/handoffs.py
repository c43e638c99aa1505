"""The edge's hand-offs from its ``server:`` section: the outbox, its sender and its desk, and
the automatic hand-offs of each stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orstream.edge.app.config import ServerConfig
from orstream.edge.operators.handoff_clips import AutoHandOff
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.outbox.followers import ItemFollowers
from orstream.edge.outbox.job_calls import JobServerCalls
from orstream.edge.outbox.retry import RetryPolicy
from orstream.edge.outbox.sender import OutboxSender
from orstream.edge.outbox.store import OutboxStore
from orstream.errors import OrstreamError
from orstream.handoffs import HandOffItem


def open_handoffs(config: ServerConfig, on_change: Callable[[HandOffItem], None]) -> HandOffDesk:
    """The outbox of ``config`` opened (items of an earlier run included), with a sender that
    is started with the app; ``on_change`` hears every item's changes.

    Raises:
        OrstreamError: the outbox or the token file cannot be read.
    """
    token = None if config.token_file is None else _token(config.token_file)
    store = OutboxStore(
        config.outbox,
        max_items=config.max_items,
        max_bytes=int(config.max_mb * 1e6),
        keep_finished=config.keep_finished,
    )

    def connect() -> JobServerCalls:
        return JobServerCalls(
            config.address, config.connect_timeout_s, token, config.tls_ca, config.keepalive_s
        )

    retry = config.retry
    followers = ItemFollowers(on_change)
    sender = OutboxSender(
        store,
        connect,
        RetryPolicy(retry.initial_s, retry.factor, retry.max_s, retry.jitter),
        followers.changed,
        config.max_in_flight,
        on_partial=followers.partial,
    )
    return HandOffDesk(
        store, sender, followers, config.default_clip_s, config.max_clip_s, config.clip_fps
    )


def schedule_of(config: ServerConfig, stream_id: str) -> tuple[AutoHandOff, ...]:
    """The automatic hand-offs of one stream."""
    return tuple(
        AutoHandOff(rule.kind, rule.every_s, rule.seconds, dict(rule.params))
        for rule in config.handoffs
        if not rule.streams or stream_id in rule.streams
    )


def _token(path: Path) -> str:
    """The bearer token in ``path`` (its first line, as ``orstream tokens add`` prints it).

    Raises:
        OrstreamError: the file is missing or empty.
    """
    try:
        token = path.read_text(encoding="utf-8").strip().split("\n", 1)[0].strip()
    except OSError as error:
        raise OrstreamError(f"{path}: cannot read the job server's token ({error})") from None
    if not token:
        raise OrstreamError(f"{path}: the job server's token file is empty")
    return token
