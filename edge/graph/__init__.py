"""The edge's graph API: operators with named ports, the graph that connects and runs them,
and the meters every operator reports (the runtime's snapshot of them is
:class:`orstream.status.RuntimeStatus`)."""
