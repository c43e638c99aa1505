"""The dashboard's video places: a page that closes (or switches streams) gives its viewer id
back with ``POST /api/bye`` and its place is free at once, where it would otherwise be held
until ICE gave up on the browser; ids are checked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from edge_samples import sample_status

from orstream.access.tokens import Tokens, add_token
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.web.frame_slot import WebFrames
from orstream.edge.web.state_feed import StateFeed
from orstream.edge.web.video_prompt import VideoPrompter
from orstream.edge.web.video_viewers import VideoViewers
from orstream.edge.web.web_access import WebAccess
from orstream.edge.web.web_server import WebDashboard


@pytest.fixture
def web(tmp_path: Path) -> Any:
    tokens = tmp_path / "tokens.yaml"
    token = add_token(tokens, "wall-screen", "viewer")
    dashboard = WebDashboard(
        "127.0.0.1:0",
        StateFeed(sample_status, ResultHub(), None),
        VideoViewers(WebFrames(("or1",)), (), 2),
        WebAccess(Tokens.load(tokens), None),
        VideoPrompter(None, 1),
    )
    dashboard.start()
    yield dashboard, token
    dashboard.stop()


async def offer(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    """A browser's receive-only offer for ``or1``; (status, body)."""
    peer = RTCPeerConnection()
    peer.addTransceiver("video", direction="recvonly")
    await peer.setLocalDescription(await peer.createOffer())
    body = {"stream": "or1", "sdp": peer.localDescription.sdp, "type": "offer"}
    async with session.post(f"{url}/api/offer", json=body) as response:
        answer = await response.json()
    await peer.close()
    return response.status, answer


def test_a_page_that_leaves_frees_its_place_at_once(web: Any) -> None:
    dashboard, token = web
    url = f"http://127.0.0.1:{dashboard.port}"

    async def scenario() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            first, second = [await offer(session, url) for _ in range(2)]
            assert first[0] == second[0] == 200 and first[1]["viewer"] != second[1]["viewer"]
            assert dashboard.viewers.count == 2
            third = await offer(session, url)
            assert third[0] == 503 and "2 viewers are watching" in third[1]["error"]
            async with session.post(f"{url}/api/bye", json={"viewer": first[1]["viewer"]}) as r:
                assert r.status == 200
            assert dashboard.viewers.count == 1
            assert (await offer(session, url))[0] == 200
            for body, status in (({"viewer": first[1]["viewer"]}, 404), ({}, 400)):
                async with session.post(f"{url}/api/bye", json=body) as response:
                    assert response.status == status
        async with aiohttp.ClientSession() as stranger:  # no token: refused
            body = {"viewer": second[1]["viewer"]}
            async with stranger.post(f"{url}/api/bye", json=body) as response:
                assert response.status == 401
        assert dashboard.viewers.count == 2

    asyncio.run(scenario())
