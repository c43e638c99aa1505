"""The operators an edge app composes: sources, model inference, overlay, sinks, result writers."""
