"""The refusals of the job service, each with the gRPC status code it is answered with.

The store and the service raise these; the servicer turns ``grpc_code`` (a name of
``grpc.StatusCode``) into the call's status, so neither the store nor the job kinds import grpc.
"""

from __future__ import annotations

from orstream.errors import OrstreamError


class JobRefused(OrstreamError):
    """A request the service cannot do as asked; ``grpc_code`` says why in gRPC's terms."""

    grpc_code = "INVALID_ARGUMENT"


class UnknownJob(JobRefused):
    """No job has this id."""

    grpc_code = "NOT_FOUND"


class QueueFull(JobRefused):
    """As many jobs wait as the server queues."""

    grpc_code = "RESOURCE_EXHAUSTED"


class UploadTooLarge(JobRefused):
    """A submission uploads more bytes than the server accepts."""

    grpc_code = "RESOURCE_EXHAUSTED"


class KeyInUse(JobRefused):
    """The idempotency key names a job of another kind."""

    grpc_code = "ALREADY_EXISTS"


class JobOver(JobRefused):
    """The job already succeeded or failed, so it cannot be cancelled."""

    grpc_code = "FAILED_PRECONDITION"
