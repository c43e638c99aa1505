"""The ``ray`` engine: each job kind is a Ray Serve deployment; the server keeps the store.

For users who outgrow one machine: ``orstream server run --engine ray --ray-address HOST:PORT``
deploys one Serve application per job kind (``orstream-<kind>``, its replicas autoscaled
between :class:`RaySettings`' bounds) and sends each job there as a streaming request
(:mod:`orstream.server.ray_replica`). Scheduling, the queue, per-kind concurrency and every
write to the store stay in the server process, exactly as with the ``local`` engine, so a
result is still recorded once and a restart still queues what was running; the replica only
runs the kind and streams its progress, partial results and outcome back.

Inputs travel to the replica as Ray objects (the file's bytes), so the cluster needs no shared
file system. Cancelling a job, or stopping the server, cancels its request; the kind stops at
its next report. A replica lost mid-job fails that job with the reason.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from orstream.errors import OrstreamError
from orstream.server.job_scheduler import JobScheduler
from orstream.server.kinds.job_kind import JobContext, JobStopped
from orstream.server.kinds.registry import KindRegistry
from orstream.server.store import JobStore
from orstream.server.uploads import UploadArea

log = logging.getLogger(__name__)

REACH_TIMEOUT_S = 5.0
APP_PREFIX = "orstream-"
"""Each kind's Serve application is named ``orstream-<kind>``."""


@dataclass(frozen=True)
class RaySettings:
    """Where the ``ray`` engine runs and how each kind's deployment scales.

    Attributes:
        address: a Ray cluster's ``HOST:PORT`` (None: a Ray instance on this machine, started
            by the server and stopped with it).
        min_replicas: replicas each kind keeps, even idle.
        max_replicas: the most replicas of a kind.
        jobs_per_replica: jobs one replica runs at once; more waiting add replicas.
        replica_cpus: CPUs Ray reserves for each replica.
    """

    address: str | None = None
    min_replicas: int = 1
    max_replicas: int = 4
    jobs_per_replica: int = 1
    replica_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or self.max_replicas < max(self.min_replicas, 1):
            raise OrstreamError(
                f"Ray replicas {self.min_replicas}..{self.max_replicas}: need 0 <= min <= max, "
                "max at least 1"
            )
        if self.jobs_per_replica < 1:
            raise OrstreamError(f"jobs per replica {self.jobs_per_replica}: at least 1")
        if self.replica_cpus <= 0:
            raise OrstreamError(f"replica CPUs {self.replica_cpus}: more than 0")


class RayExecutor(JobScheduler):
    """Runs each job on its kind's Serve deployment; connects and deploys when made.

    Args:
        store, kinds, uploads, workers, concurrency: as :class:`JobScheduler`'s (``workers``
            bounds the jobs sent to Ray at once).
        cluster: the Ray cluster and the deployments' scaling.

    Raises:
        OrstreamError: Ray is not installed, the cluster cannot be reached, or a deployment
            does not come up.
    """

    def __init__(
        self,
        store: JobStore,
        kinds: KindRegistry,
        uploads: UploadArea,
        workers: int,
        concurrency: Mapping[str, int] | None,
        cluster: RaySettings,
    ) -> None:
        super().__init__(store, kinds, uploads, workers, concurrency)
        self._ray = cluster
        self._owns_ray = False
        self._handles = self._deploy()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop as every engine does (running jobs are cancelled on Ray and queued again), then
        remove the deployments from the cluster, or stop Ray if the server started it."""
        super().stop(grace_s)
        import ray
        from ray import serve

        if self._owns_ray:
            serve.shutdown()
            ray.shutdown()
            return
        # Deleted together: each call asks, the second round waits for all.
        for name in self._kinds.names:
            serve.delete(APP_PREFIX + name, _blocking=False)
        for name in self._kinds.names:
            serve.delete(APP_PREFIX + name)

    def _deploy(self) -> dict[str, Any]:
        try:
            import ray
            from ray import serve
        except ImportError:
            raise OrstreamError(
                "the ray engine needs Ray Serve (pip install 'orstream[server]')"
            ) from None
        settings = self._ray
        if not ray.is_initialized():
            if settings.address is not None:
                _check_reachable(settings.address)
            try:
                ray.init(
                    address=settings.address,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = settings.address or "this machine"
                raise OrstreamError(f"cannot start or reach Ray at {where}: {error}") from None
            self._owns_ray = settings.address is None
        try:
            serve.start(proxy_location="Disabled")
            # Deployed together: each kind's replicas start while the others' do.
            handles = dict(zip(self._kinds.names, serve.run_many(self._apps()), strict=True))
        except Exception as error:
            if self._owns_ray:
                ray.shutdown()
            reason = (str(error).splitlines() or [""])[0]
            raise OrstreamError(
                f"cannot deploy the job kinds on Ray Serve: {type(error).__name__}: {reason}"
            ) from None
        log.info("Ray Serve deployments up: %s", ", ".join(APP_PREFIX + n for n in handles))
        return handles

    def _apps(self) -> list[Any]:
        """One Serve application per kind, its replicas scaled as the settings say."""
        from ray import serve

        from orstream.server.ray_replica import KindReplica

        settings = self._ray
        targets = []
        for name in self._kinds.names:
            # cast: mypy picks serve.deployment's decorator-factory overload for a class.
            deployment = cast(
                serve.Deployment,
                serve.deployment(
                    KindReplica,
                    name=name,
                    max_ongoing_requests=settings.jobs_per_replica,
                    autoscaling_config={
                        "min_replicas": settings.min_replicas,
                        "initial_replicas": max(settings.min_replicas, 1),
                        "max_replicas": settings.max_replicas,
                        "target_ongoing_requests": settings.jobs_per_replica,
                    },
                    ray_actor_options={"num_cpus": settings.replica_cpus},
                ),
            )
            app = deployment.bind(self._kinds.get(name))
            targets.append(serve.RunTarget(app, APP_PREFIX + name, route_prefix=None))
        return targets

    def _execute(self, context: JobContext) -> Mapping[str, Any]:
        import ray
        from ray.exceptions import RayError

        job = context.job
        inputs = {name: ray.put(path.read_bytes()) for name, path in context.inputs.items()}
        response = self._handles[job.kind].options(stream=True).run.remote(job, inputs)
        context.when_stopped(response.cancel)
        try:
            for kind, value in response:
                if kind == "progress":
                    context.progress(*value)
                elif kind == "partial":
                    context.partial(value)
                elif kind == "result":
                    return dict(value)
                elif kind == "failed":
                    raise OrstreamError(value)
                elif kind == "stopped":
                    raise JobStopped(value)
                else:
                    raise RuntimeError(f"on its Ray replica: {value}")
        except JobStopped:
            response.cancel()
            raise
        except RayError as error:
            if context.stop_reason:
                raise JobStopped(context.stop_reason) from None
            raise OrstreamError(f"its Ray replica was lost: {type(error).__name__}") from None
        raise RuntimeError("the Ray replica ended the job's stream without an outcome")


def _check_reachable(address: str) -> None:
    """Refuse at once a ``HOST:PORT`` nothing listens on (``ray.init`` would retry it for
    minutes); other address forms (``auto``, ``ray://...``) are left to Ray.

    Raises:
        OrstreamError: the address does not accept a connection within a few seconds.
    """
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdecimal():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as error:
        raise OrstreamError(
            f"cannot reach Ray at {address}: {error.strerror or error} (is a Ray head running "
            "there? ray start --head)"
        ) from None
