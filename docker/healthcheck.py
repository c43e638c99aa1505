"""Container health check: exit 0 when a gRPC server answers SERVING on ``grpc.health.v1``.

The edge runtime and the job server both serve ``grpc.health.v1`` (the edge goes NOT_SERVING
when no stream delivers or a model failed; both go NOT_SERVING before they stop), so one probe
serves both images. It runs inside the container, where the server is on loopback whatever
address it also listens on, and needs only grpcio and grpcio-health-checking, which both
extras install. No ``orstream client`` command asks for health, hence this small script.

Usage: python healthcheck.py [HOST:PORT] [--service NAME] [--tls-ca PEM] [--timeout S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    """Ask once; print the answer; 0 for SERVING, 1 for anything else or no answer."""
    parser = argparse.ArgumentParser(description="exit 0 when a gRPC server is SERVING")
    parser.add_argument("address", nargs="?", default="127.0.0.1:50051", metavar="HOST:PORT")
    parser.add_argument("--service", default="", help="health service name (default: overall)")
    parser.add_argument("--tls-ca", type=Path, metavar="PEM", help="connect over TLS")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="S")
    args = parser.parse_args(argv)

    if args.tls_ca is None:
        channel = grpc.insecure_channel(args.address)
    else:
        credentials = grpc.ssl_channel_credentials(args.tls_ca.read_bytes())
        channel = grpc.secure_channel(args.address, credentials)
    with channel:
        request = health_pb2.HealthCheckRequest(service=args.service)
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
        except grpc.RpcError as error:
            print(f"{args.address}: {error.code().name}", file=sys.stderr)
            return 1
    state = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{args.address} {args.service or '(overall)'}: {state}")
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
