"""``orstream client ...``: command-line clients of a running edge runtime's gRPC API."""
