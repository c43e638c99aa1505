"""The edge's graph API: operators with named ports, the graph that connects and runs them,
and the meters and status every operator reports."""
