"""Interactive segmentation as the edge, its clients and the server use it: prompts and their
answers, masks as run-length codes and their scores, prompts to the decoder's tensors, and
finding instruments with clicks (the runtimes that run the graphs plug in)."""
