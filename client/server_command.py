"""``orstream client server``: submit, watch, read, cancel and list an orstream server's jobs.

    orstream client server submit probe --input case.mp4 --key case-17-probe
    orstream client server submit vlm --slide slide.svs --question "Is tumour present?"
    orstream client server watch JOB
    orstream client server get JOB --json
    orstream client server cancel JOB
    orstream client server list [--state running]

``watch`` exits 0 when the job succeeded and 1 when it failed or was cancelled, so scripts can
wait on a job with it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orstream.client.connection import add_credential_arguments
from orstream.errors import OrstreamError
from orstream.jobs import JOB_STATES, Job, PartialResult

if TYPE_CHECKING:
    from orstream.client.server_client import ServerClient

DEFAULT_ADDRESS = "127.0.0.1:50061"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommands of ``orstream client server``."""
    actions = parser.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    submit = actions.add_parser("submit", help="submit a job; prints its id")
    submit.add_argument("kind", metavar="KIND", help="the job kind, e.g. probe")
    submit.add_argument(
        "--input",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a local file to upload as an input (repeatable)",
    )
    submit.add_argument(
        "--server-path",
        action="append",
        default=[],
        metavar="PATH",
        help="a file on the server's machine, below a folder it allows (repeatable)",
    )
    submit.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a kind's parameter"
    )
    submit.add_argument(
        "--slide",
        type=Path,
        metavar="FILE",
        help="vlm: a slide to upload and ask about (the same as --input FILE --param about=slide)",
    )
    submit.add_argument(
        "--question",
        metavar="TEXT",
        help="vlm: the question (the same as --param question=TEXT)",
    )
    submit.add_argument(
        "--key",
        metavar="KEY",
        help="idempotency key: submitting it again answers the same job (default: a new key)",
    )
    submit.add_argument("--json", action="store_true", help="print the job as JSON")
    watch = actions.add_parser("watch", help="print a job's progress and partial results")
    watch.add_argument("job_id", metavar="JOB")
    get = actions.add_parser("get", help="print a job's state, attempts and result")
    get.add_argument("job_id", metavar="JOB")
    get.add_argument("--json", action="store_true", help="print the job as JSON")
    cancel = actions.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job_id", metavar="JOB")
    listing = actions.add_parser("list", help="list the most recent jobs")
    listing.add_argument("--state", choices=JOB_STATES, default="", help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=0, metavar="N", help="at most N jobs")
    listing.add_argument("--json", action="store_true", help="print the jobs as JSON lines")
    for action in (submit, watch, get, cancel, listing):
        action.add_argument(
            "--address",
            default=DEFAULT_ADDRESS,
            metavar="HOST:PORT",
            help=f"the server's gRPC address (default {DEFAULT_ADDRESS})",
        )
        action.add_argument(
            "--timeout",
            type=float,
            default=5.0,
            metavar="SECONDS",
            help="give up when the server does not answer within this time (default 5)",
        )
        add_credential_arguments(action)


def run(args: argparse.Namespace) -> int:
    """Run one action."""
    from orstream.client.connection import read_token
    from orstream.client.server_client import ServerClient

    if args.server_command == "submit":
        params = _params(args.param)
        if args.slide is not None:
            args.input.append(args.slide)
            params["about"] = "slide"
        if args.question is not None:
            params["question"] = args.question
        for path in args.input:
            if not path.is_file():
                raise OrstreamError(f"{path}: no such file")
        if not args.input and not args.server_path:
            raise OrstreamError("submit needs at least one --input or --server-path")
    token = read_token(args.token_file)
    with ServerClient(args.address, args.timeout, token=token, tls_ca=args.tls_ca) as client:
        if args.server_command == "submit":
            job_id, _ = client.submit(
                args.kind, args.input, key=args.key, server_paths=args.server_path, params=params
            )
            print(json.dumps(job_as_dict(client.get(job_id))) if args.json else job_id)
            return 0
        if args.server_command == "watch":
            return _watch(client, args.job_id)
        if args.server_command == "get":
            job = client.get(args.job_id)
            print(json.dumps(job_as_dict(job)) if args.json else "\n".join(describe_job(job)))
            return 0
        if args.server_command == "cancel":
            job = client.cancel(args.job_id)
            print(f"{job.id} {job.state}")
            return 0
        jobs = client.list(args.state, args.limit)
        for job in jobs:
            print(json.dumps(job_as_dict(job)) if args.json else _job_line(job))
        return 0


def job_as_dict(job: Job) -> dict[str, Any]:
    """A job as the JSON ``--json`` prints."""
    return {
        "id": job.id,
        "kind": job.kind,
        "idempotency_key": job.idempotency_key,
        "state": job.state,
        "attempts": job.attempts,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "result": None if job.result is None else dict(job.result),
        "error": job.error,
        "inputs": [
            {"name": item.name, "size_bytes": item.size_bytes, "uploaded": item.uploaded}
            | ({"path": item.path} if item.path else {})
            for item in job.inputs
        ],
        "params": dict(job.params),
        "created_s": job.created_s,
        "started_s": job.started_s,
        "finished_s": job.finished_s,
    }


def describe_job(job: Job) -> list[str]:
    """The lines ``get`` prints."""
    lines = [
        f"job {job.id} ({job.kind}, key {job.idempotency_key})",
        f"state: {job.state}",
        f"attempts: {job.attempts}",
        f"progress: {job.progress:.0%} {job.progress_message}".rstrip(),
        f"created: {_when(job.created_s)}",
    ]
    if job.started_s:
        lines.append(f"started: {_when(job.started_s)}")
    if job.finished_s:
        lines.append(f"finished: {_when(job.finished_s)}")
    if job.error:
        lines.append(f"error: {job.error}")
    if job.result is not None:
        lines.append(f"result: {json.dumps(job.result)}")
    return lines


def _watch(client: ServerClient, job_id: str) -> int:
    """Print each event of a watch; the exit status says how the job ended."""
    last: Job | None = None
    for event in client.watch(job_id):
        if isinstance(event, PartialResult):
            print(
                f"partial {event.attempt}.{event.sequence}: {json.dumps(event.value)}", flush=True
            )
            continue
        last = event
        line = f"{event.state} {event.progress:.0%} (attempt {event.attempts})"
        if event.progress_message and not event.final:
            line += f" {event.progress_message}"
        print(line, flush=True)
    if last is None or not last.final:
        raise OrstreamError(f"the watch of job {job_id} ended before the job did")
    if last.result is not None:
        print(f"result: {json.dumps(last.result)}")
    if last.error:
        print(f"error: {last.error}")
    return 0 if last.state == "succeeded" else 1


def _job_line(job: Job) -> str:
    return f"{job.id}  {job.kind:<10} {job.state:<10} {job.progress:4.0%}  {_when(job.created_s)}"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _params(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict.

    Raises:
        OrstreamError: one has no ``=``.
    """
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise OrstreamError(f"--param {item!r}: needs NAME=VALUE")
        params[name] = value
    return params
