"""The edge's gRPC API: the result hub clients subscribe to, the servicer and the server."""
