"""orstream's gRPC API: the .proto files under ``orstream/v1/``, their generated modules
(``orstream.proto.orstream.v1.<name>_pb2``), and conversion between core types and messages.

Regenerate the modules after editing a .proto file with ``python -m orstream.proto.codegen``.
"""
