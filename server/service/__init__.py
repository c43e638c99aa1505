"""The server's gRPC face: ``orstream.v1.ServerService`` and ``grpc.health.v1``."""
