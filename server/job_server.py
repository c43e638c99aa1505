"""One job server: the store, the uploads, the engine (``local`` or ``ray``) and the gRPC
service, started and stopped together.

Starting recovers what a crash left behind before anything runs: jobs left ``running`` are
queued again (or failed after ``max_attempts``), half-written uploads are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orstream.access.exposure import exposure_problem, is_loopback
from orstream.access.server_tls import ServerTls
from orstream.access.tokens import Tokens
from orstream.errors import OrstreamError
from orstream.server.job_scheduler import JobScheduler
from orstream.server.job_service import JobService
from orstream.server.kinds.registry import KindRegistry, default_kinds
from orstream.server.local_executor import LocalExecutor
from orstream.server.ray_executor import RayExecutor, RaySettings
from orstream.server.service.grpc_server import DEFAULT_ADDRESS, JobGrpcServer
from orstream.server.store import JobStore
from orstream.server.uploads import UploadArea

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
"""Where jobs run: ``local`` is worker threads in the server process, ``ray`` one Ray Serve
deployment per job kind (:mod:`orstream.server.ray_executor`)."""


@dataclass(frozen=True)
class ServerSettings:
    """How a job server runs (``orstream server run``'s options).

    Access is as on the edge: ``tokens`` (a tokens file) makes every call but health need a
    bearer token of its method's role, ``tls_cert`` and ``tls_key`` serve TLS only,
    ``tls_client_ca`` also asks clients for a certificate of that CA. A non-loopback address
    needs TLS and tokens, or ``insecure``.
    """

    store: Path
    address: str = DEFAULT_ADDRESS
    engine: str = "local"
    workers: int = 2
    concurrency: Mapping[str, int] = field(default_factory=dict)
    max_queued: int = 100
    max_upload_bytes: int = 2 * 1024**3
    allowed_paths: tuple[Path, ...] = ()
    max_attempts: int = 3
    tokens: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    insecure: bool = False
    ray: RaySettings = field(default_factory=RaySettings)
    """Where the ``ray`` engine runs and how it scales (unused by ``local``)."""

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise OrstreamError("give --tls-cert and --tls-key together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise OrstreamError("--tls-client-ca needs --tls-cert and --tls-key")
        problem = exposure_problem(
            self.address,
            tls=self.tls_cert is not None,
            tokens=self.tokens is not None,
            insecure=self.insecure,
        )
        if problem is not None:
            raise OrstreamError(problem)
        if self.engine not in ENGINES:
            raise OrstreamError(f"engine {self.engine!r}: one of {', '.join(ENGINES)}")
        for name, value in (
            ("workers", self.workers),
            ("max_queued", self.max_queued),
            ("max_attempts", self.max_attempts),
        ):
            if value < 1:
                raise OrstreamError(f"{name} {value}: at least 1")
        if self.max_upload_bytes < 0:
            raise OrstreamError(f"max upload {self.max_upload_bytes} bytes: not negative")
        for folder in self.allowed_paths:
            if not folder.is_dir():
                raise OrstreamError(f"{folder}: --allow-path needs an existing folder")

    def server_tls(self) -> ServerTls | None:
        """The TLS files (None: plain gRPC)."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        return ServerTls(self.tls_cert, self.tls_key, self.tls_client_ca)


class JobServer:
    """A job server; ``start`` it, then ``stop`` it (or use it as a context manager).

    Args:
        settings: how it runs.
        kinds: the kinds it runs (default: every kind orstream ships).
    """

    def __init__(self, settings: ServerSettings, kinds: KindRegistry | None = None) -> None:
        self.settings = settings
        self.kinds = kinds or default_kinds()
        self._store: JobStore | None = None
        self._executor: JobScheduler | None = None
        self._grpc: JobGrpcServer | None = None

    def start(self) -> int:
        """Recover the store, start the workers and serve; returns the bound port.

        Raises:
            OrstreamError: the store cannot be opened, a setting is wrong for these kinds, or
                the address cannot be bound.
        """
        settings = self.settings
        tokens = None if settings.tokens is None else Tokens.load(settings.tokens)
        store = JobStore(settings.store)
        executor: JobScheduler | None = None
        try:
            requeued, failed = store.recover(settings.max_attempts)
            if requeued or failed:
                log.warning(
                    "recovered %d jobs left running: %d queued again, %d failed",
                    len(requeued) + len(failed),
                    len(requeued),
                    len(failed),
                )
            uploads = UploadArea(settings.store, settings.max_upload_bytes, settings.allowed_paths)
            uploads.clean(store.unfinished_ids())
            executor = self._engine(store, uploads)
            service = JobService(store, self.kinds, uploads, executor, settings.max_queued)
            grpc_server = JobGrpcServer(
                service, settings.address, tokens=tokens, tls=settings.server_tls()
            )
            port = grpc_server.start()
        except BaseException:
            if executor is not None:
                executor.stop(0)
            store.close()
            raise
        executor.start()
        self._store, self._executor, self._grpc = store, executor, grpc_server
        if settings.insecure and not is_loopback(settings.address):
            log.warning(
                "gRPC on %s without TLS or tokens (--insecure): anyone who reaches it can "
                "submit, read and cancel jobs",
                settings.address,
            )
        return port

    def _engine(self, store: JobStore, uploads: UploadArea) -> JobScheduler:
        settings = self.settings
        if settings.engine == "ray":
            return RayExecutor(
                store, self.kinds, uploads, settings.workers, settings.concurrency, settings.ray
            )
        return LocalExecutor(store, self.kinds, uploads, settings.workers, settings.concurrency)

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop serving, stop the runs (their jobs are queued again) and close the store."""
        if self._grpc is not None:
            self._grpc.stop(grace_s)
        if self._executor is not None:
            self._executor.stop(grace_s)
        if self._store is not None:
            self._store.close()
        self._grpc = self._executor = self._store = None

    def __enter__(self) -> JobServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
