"""A real ``orstream edge run --web`` on live phantom streams with the shipped recognizer (and
segmenter), for the dashboard's tests: by default ``or1`` plays for minutes, ``or2`` ends after
a few seconds (its source stopped: NO SIGNAL). Its frames carry latency stamps (a frame
counter, bottom left), their capture times logged to ``stamps``. Given a folder of test
certificates (``tls_certificates.make_pki``), it serves over TLS with ``server.pem``; given a
``server:`` section, it hands off (and its page asks) to that job server."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from orstream.access.tokens import add_token
from orstream.edge.models.shipped import SHIPPED_PACKAGE, SHIPPED_SEGMENTER

LONG = "or1=phantom://?seed=5&seconds=300&width=320&height=180&fps=12"
SHORT = "or2=phantom://?seed=6&seconds=3&width=320&height=180&fps=12"
START_S = 120.0


@dataclass(frozen=True)
class RunningEdge:
    """Where the edge serves, the tokens it knows, and the process itself."""

    web_url: str
    grpc_address: str
    viewer_token: str
    operator_token: str
    stderr: list[str]
    stamps: Path
    process: subprocess.Popen
    stderr_closed: threading.Event


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_edge(
    project_root: Path,
    folder: Path,
    sources: tuple[str, ...] = (LONG, SHORT),
    segmenter: bool = True,
    tls: Path | None = None,
    server: Mapping[str, object] | None = None,
) -> Iterator[RunningEdge]:
    """The edge, up and serving its dashboard; stopped with SIGTERM afterwards (unless the
    test stopped it)."""
    tokens = folder / "tokens.yaml"
    viewer = add_token(tokens, "wall-screen", "viewer")
    operator = add_token(tokens, "scrub-nurse", "operator")
    web_port, grpc_port = free_port(), free_port()
    stamps = folder / "stamps.jsonl"
    config = folder / "edge.yaml"
    streams = [dict(zip(("stream_id", "uri"), s.split("=", 1), strict=True)) for s in sources]
    # A closed page's video connection lingers until ICE notices it (tens of seconds): room
    # for every page the tests open.
    web = {"address": "127.0.0.1:0", "latency_stamps": str(stamps), "max_viewers": 16}
    sections: dict[str, object] = {"sources": streams, "web": web}
    if server is not None:  # the config is checked before --model joins it
        sections["server"] = dict(server)
        sections["model"] = {"package": str(SHIPPED_PACKAGE)}
    config.write_text(yaml.safe_dump(sections))
    options = ["--model", str(SHIPPED_PACKAGE), "--tokens", str(tokens)]
    if segmenter:
        options += ["--segmenter", str(SHIPPED_SEGMENTER), "--segmentation-rate", "1"]
    if tls is not None:
        options += ["--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key")]
    process = subprocess.Popen(
        [
            str(project_root / ".venv/bin/orstream"),
            *("edge", "run", "--config", str(config), *options),
            *("--grpc", f"127.0.0.1:{grpc_port}", "--web", f"127.0.0.1:{web_port}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    serving, closed = threading.Event(), threading.Event()
    reader = threading.Thread(target=_read, args=(process, lines, serving, closed), daemon=True)
    reader.start()
    try:
        if not serving.wait(START_S) or closed.is_set() or process.poll() is not None:
            raise AssertionError("the edge did not serve its dashboard:\n" + "".join(lines)[-3000:])
        yield RunningEdge(
            f"{'http' if tls is None else 'https'}://127.0.0.1:{web_port}",
            f"127.0.0.1:{grpc_port}",
            viewer,
            operator,
            lines,
            stamps,
            process,
            closed,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)


def _read(
    process: subprocess.Popen,
    lines: list[str],
    serving: threading.Event,
    closed: threading.Event,
) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if "OR dashboard on " in line:
            serving.set()
    closed.set()
    serving.set()  # the edge ended: nothing more to wait for
