"""Generated protobuf and gRPC modules of package ``orstream.v1`` (do not edit; see codegen)."""
