"""The edge app: its typed config, the graph it composes from the config, and a run with its
gRPC API."""
