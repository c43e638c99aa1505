"""The slide phantom: pyramidal tiled JPEG TIFFs of H&E-like tissue with region masks, slide
labels, captions and SlideBench-style questions, deterministic per seed."""
