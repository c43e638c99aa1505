"""``orstream server run``: serve the job service until SIGTERM or Ctrl-C.

SIGTERM (``docker stop``, systemd) and SIGINT stop it the same way: health goes NOT_SERVING,
new calls are refused, open watches end, running jobs are asked to stop and queued again, and
the store is closed. A second signal exits at once; a job it interrupts is queued again at the
next start, as after a crash.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from orstream.errors import OrstreamError

if TYPE_CHECKING:
    from orstream.server.kinds.vlm import VlmSettings

DEFAULT_STORE = Path("orstream-jobs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream server run``."""
    from orstream.server.job_server import ENGINES
    from orstream.server.kinds.registry import default_kinds
    from orstream.server.service.grpc_server import DEFAULT_ADDRESS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "job kinds:\n" + "\n".join(f"  {line}" for line in default_kinds().describe())

    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        metavar="HOST:PORT",
        help=f"address to serve on; port 0 picks one; an address other than loopback needs "
        f"TLS and --tokens, or --insecure (default {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=DEFAULT_STORE,
        metavar="DIR",
        help=f"folder of the job database and inputs (default ./{DEFAULT_STORE})",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="where jobs run: local (worker threads of this process) or ray (one Ray Serve "
        "deployment per job kind) (default local)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="with --engine ray: the Ray cluster to run on (default: start Ray on this machine)",
    )
    parser.add_argument(
        "--ray-replicas",
        default="1:4",
        metavar="MIN:MAX",
        help="with --engine ray: replicas per job kind, autoscaled between MIN and MAX "
        "(default 1:4)",
    )
    parser.add_argument(
        "--ray-jobs-per-replica",
        type=int,
        default=1,
        metavar="N",
        help="with --engine ray: jobs one replica runs at once; more add replicas (default 1)",
    )
    parser.add_argument(
        "--ray-replica-cpus",
        type=float,
        default=1.0,
        metavar="CPUS",
        help="with --engine ray: CPUs Ray reserves per replica (default 1)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, metavar="N", help="jobs run at once (default 2)"
    )
    parser.add_argument(
        "--concurrency",
        action="append",
        default=[],
        metavar="KIND=N",
        help="at most N jobs of KIND at once (repeatable; default: up to --workers)",
    )
    parser.add_argument(
        "--max-queued",
        type=int,
        default=100,
        metavar="N",
        help="jobs that may wait; more are refused with RESOURCE_EXHAUSTED (default 100)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=2048.0,
        metavar="MB",
        help="largest upload of one job, all inputs together (default 2048)",
    )
    parser.add_argument(
        "--allow-path",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="clients may name files below DIR as inputs, read in place (repeatable)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=3,
        metavar="N",
        help="a job the server stopped during N times fails instead of running again (default 3)",
    )
    parser.add_argument(
        "--tokens",
        type=Path,
        metavar="FILE",
        help="tokens file (orstream tokens add): calls then need a bearer token of their role "
        "(viewer: get, watch, list; operator: also submit and cancel)",
    )
    parser.add_argument(
        "--vlm",
        type=Path,
        metavar="MODEL",
        help="the vision-language model the vlm kind answers with: a package of orstream export "
        "onnx, or a local Hugging Face VLM folder with --vlm-runtime transformers",
    )
    parser.add_argument(
        "--vlm-runtime",
        choices=("onnx", "torch", "transformers"),
        default="onnx",
        help="what runs --vlm (default onnx)",
    )
    parser.add_argument(
        "--vlm-device", default="cpu", metavar="DEVICE", help="torch's device (default cpu)"
    )
    parser.add_argument(
        "--vlm-max-batch",
        type=int,
        default=8,
        metavar="N",
        help="answers decoded together in one batch (default 8); --concurrency vlm=N lets "
        "N vlm jobs run at once",
    )
    for role, what in (
        ("frame", "segmenter package that makes its frame tokens"),
        ("instrument", "instrument classifier package that makes its instrument tokens"),
        ("slide", "slide package that makes its slide tokens"),
    ):
        parser.add_argument(
            f"--vlm-{role}-package",
            type=Path,
            metavar="PKG",
            help=f"the --vlm package's {what}, where this server keeps it (default: the path "
            "its card records; the graph must be the recorded one)",
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
        help="serve a non-loopback --address without TLS and tokens (logged as a warning)",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until a stop signal."""
    from orstream.server.job_server import JobServer, ServerSettings
    from orstream.server.kinds.registry import default_kinds
    from orstream.server.ray_executor import RaySettings
    from orstream.stop_signals import StopSignals

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServerSettings(
        store=args.store,
        address=args.address,
        engine=args.engine,
        workers=args.workers,
        concurrency=_concurrency(args.concurrency),
        max_queued=args.max_queued,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        allowed_paths=tuple(args.allow_path),
        max_attempts=args.max_attempts,
        tokens=args.tokens,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        insecure=args.insecure,
        ray=RaySettings(
            args.ray_address,
            *_replicas(args.ray_replicas),
            args.ray_jobs_per_replica,
            args.ray_replica_cpus,
        ),
    )
    if args.ray_address is not None and args.engine != "ray":
        raise OrstreamError("--ray-address needs --engine ray")
    server = JobServer(settings, default_kinds(_vlm_settings(args)))
    stop = threading.Event()
    with StopSignals(lambda name: stop.set()):
        try:
            port = server.start()
            host = settings.address.rsplit(":", 1)[0]
            print(
                f"orstream server: serving on {host}:{port}, store {settings.store}, engine "
                f"{settings.engine}, kinds {', '.join(server.kinds.names)}",
                flush=True,
            )
            while not stop.wait(1.0):
                pass
            print("orstream server: stopping", file=sys.stderr, flush=True)
        finally:
            server.stop()
    return 0


def _vlm_settings(args: argparse.Namespace) -> VlmSettings | None:
    """The ``vlm`` kind's model, or None without ``--vlm``.

    Raises:
        OrstreamError: a --vlm option without --vlm, or a bad one.
    """
    from orstream.server.kinds.vlm import VlmSettings

    encoders = (args.vlm_frame_package, args.vlm_instrument_package, args.vlm_slide_package)
    if args.vlm is None:
        if args.vlm_runtime != "onnx" or args.vlm_device != "cpu" or any(encoders):
            raise OrstreamError("--vlm-runtime, --vlm-device and --vlm-*-package need --vlm")
        return None
    return VlmSettings(
        args.vlm,
        args.vlm_runtime,
        args.vlm_device,
        args.vlm_max_batch,
        frame_package=args.vlm_frame_package,
        instrument_package=args.vlm_instrument_package,
        slide_package=args.vlm_slide_package,
    )


def _concurrency(items: list[str]) -> dict[str, int]:
    """``KIND=N`` options as a dict.

    Raises:
        OrstreamError: one is not ``KIND=N`` with a whole N.
    """
    limits = {}
    for item in items:
        name, _, count = item.partition("=")
        try:
            limits[name] = int(count)
        except ValueError:
            raise OrstreamError(f"--concurrency {item!r}: needs KIND=N") from None
    return limits


def _replicas(text: str) -> tuple[int, int]:
    """``MIN:MAX`` as two whole numbers.

    Raises:
        OrstreamError: it is not ``MIN:MAX``.
    """
    low, _, high = text.partition(":")
    try:
        return int(low), int(high)
    except ValueError:
        raise OrstreamError(f"--ray-replicas {text!r}: needs MIN:MAX, e.g. 1:4") from None
