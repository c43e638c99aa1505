"""TensorRT engines: profiles, the graph TensorRT parses, building and ``orstream export trt``."""
