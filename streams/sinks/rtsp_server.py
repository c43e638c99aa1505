"""RTSP serving with gst-rtsp-server: a server on its own GLib main loop, and a video file served.

:class:`RtspServer` runs one ``GstRtspServer.RTSPServer`` with a private GLib main context in a
daemon thread, so it serves clients whatever the calling thread does. :func:`serve_file_rtsp`
uses it to serve an H.264 video file (its stream sent as it is, not re-encoded), and
:func:`serve_test_camera` a live test pattern: that is how tests and benchmarks get a real RTSP
camera.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orstream.errors import OrstreamError
from orstream.streams.gst_init import GLib, Gst, require_elements, rtsp_server_module
from orstream.streams.sources.video_file import probe_video

STOP_TIMEOUT_S = 5.0
"""How long :meth:`RtspServer.close` waits for the main-loop thread."""


class RtspServer:
    """A gst-rtsp-server listening on ``host:port`` (port 0: any free port), serving mounts.

    Args:
        port: TCP port for RTSP; 0 picks a free one (see :attr:`port`).
        host: address to listen on.

    Raises:
        OrstreamError: the port cannot be bound, or gst-rtsp-server is missing.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.rtsp = rtsp_server_module()
        self.host = host
        self._context = GLib.MainContext.new()
        self._loop = GLib.MainLoop.new(self._context, False)
        self._server = self.rtsp.RTSPServer.new()
        self._server.set_address(host)
        self._server.set_service(str(port))
        self._source_id = self._server.attach(self._context)
        if not self._source_id:
            raise OrstreamError(f"RTSP server: cannot listen on {host}:{port} (port in use?)")
        self.port: int = self._server.get_bound_port()
        self._thread = threading.Thread(target=self._loop.run, name="rtsp-server", daemon=True)
        self._thread.start()

    def url(self, mount: str) -> str:
        """The ``rtsp://`` URL of a mount point."""
        return f"rtsp://{self.host}:{self.port}{mount}"

    def mount(self, mount: str, factory: Any) -> str:
        """Serve ``factory`` (an ``RTSPMediaFactory``) at ``mount``; returns its URL."""
        if not mount.startswith("/"):
            raise OrstreamError(f"RTSP mount point must start with '/', got '{mount}'")
        self._server.get_mount_points().add_factory(mount, factory)
        return self.url(mount)

    def unmount(self, mount: str) -> None:
        """Stop serving ``mount`` (clients watching it are disconnected)."""
        self._server.get_mount_points().remove_factory(mount)

    def close(self) -> None:
        """Disconnect every client and stop serving."""
        if not self._thread.is_alive():
            return
        done = threading.Event()

        def stop(*_: object) -> bool:
            # Runs on the server's own loop, where its clients live.
            self._server.client_filter(lambda *_: self.rtsp.RTSPFilterResult.REMOVE)
            source = self._context.find_source_by_id(self._source_id)
            if source is not None:
                source.destroy()
            self._loop.quit()
            done.set()
            return False

        idle = GLib.idle_source_new()
        idle.set_callback(stop)
        idle.attach(self._context)
        done.wait(STOP_TIMEOUT_S)
        self._thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> RtspServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServedFile:
    """A video file being served over RTSP (what :func:`serve_file_rtsp` yields).

    Attributes:
        url: the ``rtsp://`` URL clients open.
        path: the file served.
        server: the server serving it.
    """

    def __init__(self, url: str, path: Path, server: RtspServer) -> None:
        self.url = url
        self.path = path
        self.server = server


@contextmanager
def serve_file_rtsp(
    path: Path | str, port: int = 0, mount: str = "/case", host: str = "127.0.0.1"
) -> Iterator[ServedFile]:
    """Serve an H.264 video file over RTSP while the ``with`` block runs.

    Each client gets the file from its start, at its own pace (timestamps as in the file),
    and the stream ends with the file.

    Args:
        path: the video file (H.264 in MP4, MKV, ...).
        port: TCP port; 0 picks a free one.
        mount: the URL path.
        host: address to listen on.

    Raises:
        OrstreamError: the file is missing, not a video, truncated or not H.264, or the port
            cannot be bound.
    """
    path = Path(path).resolve()
    info = probe_video(path)
    if info.codec != "h264":
        raise OrstreamError(f"{path}: RTSP serving sends H.264 as it is; this file is {info.codec}")
    require_elements("RTSP file serving", "filesrc", "parsebin", "h264parse", "rtph264pay")
    rtsp = rtsp_server_module()
    factory = rtsp.RTSPMediaFactory.new()
    # SPS/PPS before every keyframe, so a client joining at any keyframe can decode.
    factory.set_launch(
        "( filesrc name=file ! parsebin ! h264parse config-interval=-1 ! "
        "rtph264pay name=pay0 pt=96 )"
    )
    factory.connect("media-configure", _set_location, str(path))
    with RtspServer(port, host) as server:
        yield ServedFile(server.mount(mount, factory), path, server)


@contextmanager
def serve_test_camera(
    port: int = 0,
    mount: str = "/camera",
    width: int = 320,
    height: int = 180,
    fps: int = 15,
    host: str = "127.0.0.1",
) -> Iterator[RtspServer]:
    """Serve a live camera over RTSP while the ``with`` block runs: a moving test pattern,
    H.264, one stream shared by every client (as an IP camera or an encoder serves).

    Tests and the reconnect bench stop and start it to play a camera that is unplugged and
    comes back.

    Raises:
        OrstreamError: the port cannot be bound, or an element is missing.
    """
    require_elements("RTSP test camera", "videotestsrc", "x264enc", "rtph264pay")
    rtsp = rtsp_server_module()
    factory = rtsp.RTSPMediaFactory.new()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={int(width)},"
        f"height={int(height)},framerate={int(fps)}/1 ! x264enc tune=zerolatency "
        f"speed-preset=ultrafast key-int-max={int(fps)} ! rtph264pay name=pay0 pt=96 "
        "config-interval=-1 )"
    )
    factory.set_shared(True)
    with RtspServer(port, host) as server:
        server.mount(mount, factory)
        yield server


_CAMERA_PROCESS = (
    "import sys, time\n"
    "from orstream.streams.sinks.rtsp_server import serve_test_camera\n"
    "with serve_test_camera(int(sys.argv[1]), fps=int(sys.argv[2])):\n"
    "    print('up', flush=True)\n"
    "    time.sleep(1e9)\n"
)


def spawn_test_camera(port: int, fps: int = 15) -> subprocess.Popen[str]:
    """:func:`serve_test_camera` at ``rtsp://127.0.0.1:PORT/camera`` in a process of its own
    (to freeze with SIGSTOP or unplug with SIGKILL); returns once it serves.

    Raises:
        OrstreamError: it did not start (e.g. the port is taken).
    """
    camera = subprocess.Popen(
        [sys.executable, "-c", _CAMERA_PROCESS, str(port), str(fps)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert camera.stdout is not None
    if camera.stdout.readline().strip() != "up":
        camera.kill()
        camera.wait()
        raise OrstreamError(f"the test camera on port {port} did not start")
    return camera


def _set_location(_factory: Any, media: Any, location: str) -> None:
    """Point a new client's pipeline at the file (a property, so no path needs quoting)."""
    element: Gst.Element = media.get_element()
    element.get_by_name("file").set_property("location", location)
