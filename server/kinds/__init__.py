"""Job kinds: what the server can run, each a :class:`~orstream.server.kinds.job_kind.JobKind`."""
