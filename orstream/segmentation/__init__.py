"""Interactive segmentation as the edge and the server both use it: prompts to the decoder's
tensors, and finding instruments with clicks (the runtimes that run the graphs plug in)."""
