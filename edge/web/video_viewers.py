"""The browsers watching a stream's overlay video: one WebRTC peer connection each.

The browser offers (it only receives video), the edge answers with the stream's
:class:`~orstream.edge.web.overlay_track.OverlayTrack`. The answer is sent once the edge's
candidates are gathered (no trickle ICE): on a LAN these are its own addresses, and no STUN or
TURN server is asked unless ``ice_servers`` names one. Each connection encodes its own video
(the encoder adapts to its browser's bandwidth), so viewers are bounded (``max_viewers``).

Each answer names its viewer with an unguessable id, which the page gives back when it closes
or switches streams (``leave``): a closed page's connection would otherwise hold its place
until ICE noticed the browser was gone (tens of seconds), and a wall screen that reloads a few
times would find every place taken.
"""

from __future__ import annotations

import asyncio
import secrets

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from orstream.edge.app.config import IceServerConfig
from orstream.edge.web.frame_slot import WebFrames
from orstream.edge.web.overlay_track import OverlayTrack


class ViewerRefused(Exception):
    """The offer cannot be answered: an unknown stream, or every viewer place taken."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class VideoViewers:
    """Answers WebRTC offers with a stream's overlay video and closes what it opened.

    Args:
        frames: every stream's newest overlay frame.
        ice_servers: STUN/TURN servers to gather candidates with (none on a LAN).
        max_viewers: connections at once; an offer beyond them is refused (HTTP 503).
    """

    def __init__(
        self, frames: WebFrames, ice_servers: tuple[IceServerConfig, ...], max_viewers: int
    ) -> None:
        self._frames = frames
        self._configuration = RTCConfiguration(
            [RTCIceServer(list(s.urls), s.username, s.credential) for s in ice_servers]
        )
        self.ice_servers = [
            {"urls": list(s.urls), "username": s.username, "credential": s.credential}
            for s in ice_servers
        ]
        """The same servers for the browser's side (RTCPeerConnection's ``iceServers``)."""
        self._max_viewers = max_viewers
        self._connections: dict[str, RTCPeerConnection] = {}

    @property
    def count(self) -> int:
        return len(self._connections)

    async def answer(
        self, stream_id: str, sdp: str, kind: str
    ) -> tuple[RTCSessionDescription, str]:
        """The answer to a browser's offer to watch ``stream_id``, and the viewer's id.

        Raises:
            ViewerRefused: unknown stream (404), too many viewers (503) or a bad offer (400).
        """
        slot = self._frames.slots.get(stream_id)
        if slot is None:
            known = ", ".join(self._frames.slots)
            raise ViewerRefused(f"no stream {stream_id[:40]!r} (streams: {known})", 404)
        if len(self._connections) >= self._max_viewers:
            raise ViewerRefused(f"{self._max_viewers} viewers are watching already", 503)
        connection = RTCPeerConnection(self._configuration)
        viewer = secrets.token_urlsafe(16)
        self._connections[viewer] = connection

        @connection.on("connectionstatechange")
        async def on_state() -> None:
            if connection.connectionState in ("failed", "closed"):
                await self.leave(viewer)

        try:
            connection.addTrack(OverlayTrack(slot))
            await connection.setRemoteDescription(RTCSessionDescription(sdp, kind))
            await connection.setLocalDescription(await connection.createAnswer())
        except (ValueError, RuntimeError) as error:  # aiortc's words for an offer it cannot take
            await self.leave(viewer)
            raise ViewerRefused(f"cannot answer this offer: {error}", 400) from None
        answer = connection.localDescription
        assert answer is not None
        return answer, viewer

    async def leave(self, viewer: str) -> bool:
        """Close a viewer's connection and free its place; False when no viewer has that id
        (gone already)."""
        connection = self._connections.pop(viewer, None)
        if connection is None:
            return False
        await connection.close()
        return True

    async def close(self) -> None:
        """Close every connection (the browsers see the video end)."""
        connections, self._connections = tuple(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
