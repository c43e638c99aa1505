"""From a checkpoint to an ONNX model package: export, parity with PyTorch, golden references."""
