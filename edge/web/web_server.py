"""The dashboard's HTTP server (aiohttp, on an event loop and thread of its own): the page and
its assets, login, the state feed and the WebRTC offers.

Routes: ``GET /`` the page; ``GET /static/...`` its script and styles (shipped in the package,
nothing from a CDN); ``GET /palette.css`` the overlay's colours; ``POST /api/login``
(``{"token": ...}``) and ``POST /api/logout``; ``GET /api/state`` (JSON) and ``GET
/api/events`` (the same as server-sent events, every ``EVERY_S``); ``POST /api/offer``
(``{"stream": ..., "sdp": ..., "type": "offer"}``: the WebRTC answer and the viewer's id);
``POST /api/bye`` (``{"viewer": ...}``: that video connection closed, its place free);
``POST /api/prompt``
(``{"stream": ..., "x": ..., "y": ...}`` or ``{"stream": ..., "box": [x0, y0, x1, y1]}`` in
frame pixels: the mask there, an operator's); ``POST /api/ask`` (``{"stream": ..., "question":
...}``: the server tier's answer as server-sent events, an operator's; see
:mod:`orstream.edge.web.web_ask`). Every ``/api/`` route but login needs a viewer (see
:mod:`orstream.edge.web.web_access`). Served over TLS when the edge has a certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from orstream.access.server_tls import ServerTls
from orstream.edge.web.palette_css import palette_css
from orstream.edge.web.state_feed import EVERY_S, StateFeed
from orstream.edge.web.video_prompt import (
    BODY_FORM,
    PromptRefused,
    VideoPrompter,
    region_from_body,
)
from orstream.edge.web.video_viewers import VideoViewers, ViewerRefused
from orstream.edge.web.web_access import SESSION_COOKIE, SESSION_S, WebAccess
from orstream.edge.web.web_ask import AskRefused, WebAsks, answer_events, ask_from_body
from orstream.errors import OrstreamError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_REQUEST_BYTES = 64 * 1024
"""Largest request body: an SDP offer is a few kB."""
_START_S = 10.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebDashboard:
    """Serves the dashboard until :meth:`stop`.

    Args:
        address: ``HOST:PORT`` (port 0: a free one).
        feed: the page's state.
        viewers: answers WebRTC offers.
        access: who may come in.
        prompts: segments what a click or a drag on the video points at.
        tls: serve HTTPS with these files (None: HTTP).
        asks: hands the page's questions to the server tier (None: the edge has no server).
    """

    def __init__(
        self,
        address: str,
        feed: StateFeed,
        viewers: VideoViewers,
        access: WebAccess,
        prompts: VideoPrompter,
        tls: ServerTls | None = None,
        asks: WebAsks | None = None,
    ) -> None:
        self.prompts = prompts
        self.asks = asks or WebAsks(None)
        self.address = address
        self.feed = feed
        self.viewers = viewers
        self.access = access
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="web", daemon=True)
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self.port = 0

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    def start(self) -> int:
        """Listen and serve; returns the bound port.

        Raises:
            OrstreamError: the address cannot be bound, or the certificate cannot be read.
        """
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        try:
            self.port = future.result(_START_S)
        except OSError as error:
            self.stop()
            raise OrstreamError(f"web: cannot serve on {self.address}: {error}") from None
        return self.port

    def stop(self) -> None:
        """Close every video connection and the server; the page's streams end."""
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(_START_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_START_S)
        self.feed.close()

    async def _start(self) -> int:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_REQUEST_BYTES)
        app.router.add_get("/", self._page)
        app.router.add_get("/palette.css", self._palette)
        app.router.add_static("/static/", STATIC)
        app.router.add_post("/api/login", self._login)
        app.router.add_post("/api/logout", self._logout)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/offer", self._offer)
        app.router.add_post("/api/bye", self._bye)
        app.router.add_post("/api/prompt", self._prompt)
        app.router.add_post("/api/ask", self._ask)
        self._closing = asyncio.Event()
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_START_S / 4
        )
        await self._runner.setup()
        host, _, port = self.address.rpartition(":")
        site = web.TCPSite(
            self._runner, host.strip("[]"), int(port), ssl_context=self._ssl_context()
        )
        await site.start()
        return int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._closing is not None:
            self._closing.set()  # the event streams end, so the server stops at once
        await self.viewers.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _ssl_context(self) -> ssl.SSLContext | None:
        tls = self._tls
        if tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(tls.cert, tls.key)
            if tls.client_ca is not None:
                context.load_verify_locations(tls.client_ca)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as error:
            raise OrstreamError(f"web: cannot use the TLS certificate: {error}") from None
        return context

    # -- access -----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Security headers on every answer; a viewer (at least) for ``/api/`` but login."""
        if request.path.startswith("/api/") and request.path != "/api/login":
            principal = self.access.principal(
                request.headers.get("Authorization", ""), request.cookies.get(SESSION_COOKIE, "")
            )
            if principal is None:
                self.access.refused("", f"web{request.path}", "UNAUTHENTICATED")
                return _error(401, "log in with a token (or send Authorization: Bearer TOKEN)")
            request["principal"] = principal
        response = await handler(request)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
            "object-src 'none'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        token = body.get("token")
        if not isinstance(token, str):
            return _error(400, 'post {"token": "..."}')
        session = self.access.login(token.strip())
        if session is None:
            return _error(401, "wrong token")
        response = web.json_response({"ok": True})
        response.set_cookie(
            SESSION_COOKIE,
            session,
            max_age=int(SESSION_S),
            httponly=True,
            samesite="Strict",
            secure=self._tls is not None,
        )
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        self.access.logout(request.cookies.get(SESSION_COOKIE, ""))
        response = web.json_response({"ok": True})
        response.del_cookie(SESSION_COOKIE)
        return response

    # -- the page and its state -------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _palette(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=palette_css(), content_type="text/css")

    async def _state(self, request: web.Request) -> web.StreamResponse:
        state = json.loads(self.feed.text())
        state["login"] = not self.access.open
        state["ice_servers"] = self.viewers.ice_servers
        state["viewers"] = self.viewers.count
        state["ask"] = self.asks.available
        state["role"] = request["principal"].role
        return web.json_response(state)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        closing = self._closing
        assert closing is not None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while not closing.is_set():
                await response.write(f"data: {self.feed.text()}\n\n".encode())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), EVERY_S)
        except ConnectionResetError:  # the page went away
            pass
        return response

    async def _offer(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        stream, sdp, kind = body.get("stream"), body.get("sdp"), body.get("type")
        if not (isinstance(stream, str) and isinstance(sdp, str) and kind == "offer"):
            return _error(400, 'post {"stream": ID, "sdp": OFFER, "type": "offer"}')
        try:
            answer, viewer = await self.viewers.answer(stream, sdp, kind)
        except ViewerRefused as refusal:
            return _error(refusal.status, str(refusal))
        log.info("web: %s watches %s", request["principal"].name, stream)
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "viewer": viewer})

    async def _bye(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        viewer = body.get("viewer")
        if not isinstance(viewer, str):
            return _error(400, 'post {"viewer": ID} (the id /api/offer answered)')
        if not await self.viewers.leave(viewer):
            return _error(404, "no such viewer (its video has ended already)")
        return web.json_response({"ok": True})

    async def _prompt(self, request: web.Request) -> web.StreamResponse:
        principal = request["principal"]
        if not principal.may("operator"):
            self.access.refused(principal.name, "web/api/prompt", "PERMISSION_DENIED")
            return _error(403, f"{principal.name} ({principal.role}) may not prompt")
        body = await _json(request)
        stream = body.get("stream")
        try:
            if not isinstance(stream, str):
                raise PromptRefused(BODY_FORM, 400)
            region = region_from_body(body)
            self.access.allowed(principal.name, "web/api/prompt")
            loop = asyncio.get_running_loop()
            mask = await loop.run_in_executor(None, self.prompts.segment, stream, region)
        except PromptRefused as refusal:
            return _error(refusal.status, str(refusal))
        return web.json_response(mask)

    async def _ask(self, request: web.Request) -> web.StreamResponse:
        principal = request["principal"]
        if not principal.may("operator"):
            self.access.refused(principal.name, "web/api/ask", "PERMISSION_DENIED")
            return _error(403, f"{principal.name} ({principal.role}) may not ask")
        loop = asyncio.get_running_loop()
        try:
            question = ask_from_body(await _json(request))
            item, follow = await loop.run_in_executor(None, self.asks.ask, question)
        except AskRefused as refusal:
            return _error(refusal.status, str(refusal))
        self.access.allowed(principal.name, "web/api/ask")
        log.info("web: %s asks about %s (item %s)", principal.name, item.stream_id, item.id)
        closing = self._closing
        assert closing is not None

        def gone() -> bool:
            transport = request.transport
            return closing.is_set() or transport is None or transport.is_closing()

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await response.prepare(request)
            async for event in answer_events(item, follow, gone):
                await response.write(event)
        except ConnectionResetError:  # the page went away; the item goes on in the outbox
            pass
        finally:
            # Off the loop (the followers' lock is held while another question's clip is
            # written) and not awaited, so a cancelled handler still closes its follow.
            loop.run_in_executor(None, follow.close)
        return response


async def _json(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
