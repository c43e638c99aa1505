"""``orstream edge run``: a live feed through the models, overlays, recording and gRPC API.

Either a typed config (``--config edge.yaml``, one section per stage) or the short form
``--source URI --model PKG`` with the options below; options given on the command line
override the config's. ``--source`` repeats, one stream each, as ``ID=URI`` or a bare URI
(``cam0``; several bare URIs are ``cam0``, ``cam1``, ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orstream.edge.app.config import EdgeConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream edge run``."""
    parser.add_argument("--config", type=Path, help="edge.yaml (see orstream.edge.app.config)")
    parser.add_argument(
        "--source",
        action="append",
        metavar="[ID=]URI",
        help="a stream: file path or URI (file://, rtsp://, udp://HOST:PORT, "
        "v4l2:///dev/videoN, videotestsrc://, phantom://?seed=S&seconds=T), optionally "
        "named ID=URI; repeat for several streams",
    )
    parser.add_argument("--stream-id", help="id of a single bare --source (default cam0)")
    parser.add_argument("--model", type=Path, help="workflow model package folder")
    parser.add_argument(
        "--segmenter",
        type=Path,
        help="interactive segmentation package: live masks and Prompt over gRPC",
    )
    parser.add_argument(
        "--classifier",
        type=Path,
        help="instrument classifier package naming the instruments of the live masks (without "
        "one only anatomy masks are shown)",
    )
    parser.add_argument(
        "--segmentation-rate", type=float, metavar="HZ", help="frames per second to segment"
    )
    parser.add_argument(
        "--instruments",
        choices=("auto", "masks", "recognizer"),
        help="what names the instruments of the results: segmenter masks named by --classifier, "
        "or the recognizer's own head (default auto: masks when there is a classifier)",
    )
    parser.add_argument(
        "--videotext",
        type=Path,
        metavar="PKG",
        help="video-text package: zero-shot steps in the results, Search and SetPrompts over gRPC",
    )
    parser.add_argument(
        "--grpc", metavar="HOST:PORT", help="gRPC address (default 127.0.0.1:50051)"
    )
    parser.add_argument("--no-grpc", action="store_true", help="do not serve the gRPC API")
    parser.add_argument(
        "--tokens",
        type=Path,
        metavar="FILE",
        help="tokens file (orstream tokens add): calls then need a bearer token of their role",
    )
    parser.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve gRPC over TLS")
    parser.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's key")
    parser.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="PEM",
        help="require client certificates signed by this CA (mutual TLS)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve a non-loopback --grpc or --web address without TLS and tokens (logged as a "
        "warning)",
    )
    parser.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="serve the OR dashboard there (the overlay video over WebRTC, step, timeline, "
        "instruments), with the gRPC API's tokens and certificate",
    )
    parser.add_argument(
        "--privacy",
        choices=("blank", "blur"),
        help="withhold frames out of patient (and any without a fresh result) from the "
        "recording and RTSP: blanked or blurred",
    )
    parser.add_argument(
        "--audit", type=Path, metavar="FILE", help="append the audit log (JSON lines) to FILE"
    )
    parser.add_argument(
        "--metrics", metavar="HOST:PORT", help="serve Prometheus metrics there, e.g. 127.0.0.1:9108"
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE.mp4",
        help="record the overlay video ({stream} in the name: one file per stream)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="write PitVis submission CSVs here ({stream} in the name: one folder per stream)",
    )
    parser.add_argument("--rtsp-port", type=int, help="serve the overlay video over RTSP")
    parser.add_argument(
        "--display",
        nargs="?",
        const="window",
        metavar="SPEC",
        help="show the overlay video on a local monitor: window (the default), fullscreen, "
        "window:N or fullscreen:N for monitor N, or N for fullscreen on monitor N; full "
        "screen letterboxes the picture to the monitor",
    )
    parser.add_argument(
        "--realtime", action="store_true", help="play files at their frame rate (live pace)"
    )
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="hand work to this job server (orstream server run) through a durable outbox: "
        "HandOff over gRPC and the config's automatic hand-offs",
    )
    parser.add_argument(
        "--server-token-file",
        type=Path,
        metavar="FILE",
        help="a file holding the bearer token (operator role) to call the job server with",
    )
    parser.add_argument(
        "--server-tls-ca", type=Path, metavar="PEM", help="reach the job server over TLS"
    )
    parser.add_argument(
        "--server-insecure",
        action="store_true",
        help="send clips to a non-loopback --server without TLS",
    )
    parser.add_argument(
        "--outbox",
        type=Path,
        metavar="DIR",
        help="the outbox folder (default: $XDG_STATE_HOME/orstream/outbox)",
    )


def config_from_args(args: argparse.Namespace) -> EdgeConfig:
    """The config a command line describes (the file's, with command-line options on top)."""
    from orstream.edge.app.config import DisplayConfig, load_config, parse_config
    from orstream.errors import OrstreamError

    data: dict = {}
    if args.config is not None:
        data = load_config(args.config).model_dump(exclude_none=True)
    elif args.source is None:
        raise OrstreamError("give --config edge.yaml, or --source URI (and usually --model PKG)")
    if args.source:
        data.pop("source", None)
        data["sources"] = sources_from_args(args.source, args.stream_id)
    elif args.stream_id is not None:
        if "source" not in data:
            raise OrstreamError("--stream-id names a single stream; use ID=URI with --source")
        data["source"]["stream_id"] = args.stream_id
    if args.realtime:
        for source in data.get("sources", []) or [data.get("source", {})]:
            source["realtime"] = True
    if args.model is not None:
        data["model"] = {**data.get("model", {}), "package": args.model}
    if args.instruments is not None:
        if "model" not in data:
            raise OrstreamError("--instruments needs --model PKG")
        data["model"]["instruments"] = args.instruments
    if args.segmenter is not None:
        data["segmentation"] = {**data.get("segmentation", {}), "package": args.segmenter}
    if args.videotext is not None:
        data["videotext"] = {**data.get("videotext", {}), "package": args.videotext}
    for option, key, value in (
        ("--segmentation-rate", "rate_hz", args.segmentation_rate),
        ("--classifier", "classifier", args.classifier),
    ):
        if value is not None:
            if "segmentation" not in data:
                raise OrstreamError(f"{option} needs --segmenter PKG")
            data["segmentation"][key] = value
    if args.grpc is not None:
        data["grpc"] = {**data.get("grpc", {}), "address": args.grpc}
    if args.no_grpc:
        data["grpc"] = {**data.get("grpc", {}), "enabled": False}
    for option in ("tokens", "tls_cert", "tls_key", "tls_client_ca", "insecure"):
        value = getattr(args, option)
        if value is not None and value is not False:
            data["grpc"] = {**data.get("grpc", {}), option: value}
    if args.metrics is not None:
        data["metrics"] = {"address": args.metrics}
    if args.web is not None:
        data["web"] = {**data.get("web", {}), "address": args.web}
    if args.insecure and "web" in data:
        data["web"]["insecure"] = True
    if args.audit is not None:
        data["audit"] = {"path": args.audit}
    if args.privacy is not None:
        data["privacy"] = {"mode": args.privacy}
    if args.record is not None:
        data["record"] = {"path": args.record}
    if args.results is not None:
        data["results"] = {**data.get("results", {}), "dir": args.results}
    if args.rtsp_port is not None:
        data["rtsp"] = {**data.get("rtsp", {}), "port": args.rtsp_port}
    if args.display is not None:
        data["display"] = DisplayConfig.from_spec(args.display).model_dump()
    _server_options(args, data)
    return parse_config(data, "command line")


def _server_options(args: argparse.Namespace, data: dict) -> None:
    """``--server`` and its options into the config's ``server:`` section.

    Raises:
        OrstreamError: an option of the server without a server to use it.
    """
    from orstream.errors import OrstreamError

    if args.server is not None:
        data["server"] = {**data.get("server", {}), "address": args.server}
    for option, key, value in (
        ("--server-token-file", "token_file", args.server_token_file),
        ("--server-tls-ca", "tls_ca", args.server_tls_ca),
        ("--server-insecure", "insecure", args.server_insecure or None),
        ("--outbox", "outbox", args.outbox),
    ):
        if value is not None:
            if "server" not in data:
                raise OrstreamError(f"{option} needs --server HOST:PORT (or a server section)")
            data["server"][key] = value


def run(args: argparse.Namespace) -> int:
    """Run the feeds to their end (or Ctrl-C) and print the run's report; a stream whose source
    or a sink failed is one line each at the end and a non-zero exit."""
    from orstream.edge.app.session import describe_status, run_edge, say_stderr
    from orstream.errors import OrstreamError

    config = config_from_args(args)
    report = run_edge(config)
    print(describe_status(report.status))
    if config.results is not None:
        say_stderr(f"PitVis submission CSVs in {config.results.dir}")
    if report.recordings:
        more = len(report.recordings) - 1
        segments = f" ({more + 1} segments)" if more else ""
        say_stderr(f"overlay video in {', '.join(map(str, report.recordings))}{segments}")
    if report.failures:
        raise OrstreamError("; ".join(report.failures))
    if not report.drained:
        raise OrstreamError(
            f"stopped by {report.interrupted_by} before every stream drained: recordings and "
            "results may be incomplete"
        )
    return 0


def sources_from_args(given: list[str], stream_id: str | None) -> list[dict[str, str]]:
    """``--source`` values as config entries: ``ID=URI`` or a bare URI.

    A value is ``ID=URI`` when what comes before its first ``=`` is a valid stream id (so a URI
    whose query holds ``=``, e.g. ``phantom://?seed=3``, stays a bare URI).

    Raises:
        OrstreamError: ``--stream-id`` with several sources, or an empty URI.
    """
    from orstream.edge.app.config import STREAM_ID
    from orstream.errors import OrstreamError

    if stream_id is not None and len(given) > 1:
        raise OrstreamError("--stream-id names a single stream; use ID=URI for several")
    entries = []
    bare = 0
    for value in given:
        name, sep, uri = value.partition("=")
        if sep and STREAM_ID.fullmatch(name):
            if not uri:
                raise OrstreamError(f"--source {value}: no URI after {name}=")
            entries.append({"uri": uri, "stream_id": name})
            continue
        entries.append({"uri": value, "stream_id": stream_id or f"cam{bare}"})
        bare += 1
    return entries
