"""``orstream client``: command-line gRPC clients of a running edge (proto and core only)."""
