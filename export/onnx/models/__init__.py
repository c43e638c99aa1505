"""One exporter per model family: a checkpoint to its package's graphs, card, parity report and
golden reference (``orstream export onnx`` picks one by the checkpoint's model name)."""
