"""Benchmarks of the edge: the runtime's costs, stream capacity, and the GPU host check."""
