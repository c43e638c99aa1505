"""Model packages as the edge runs them: pre-processing, the workflow recognizer's per-stream
state, the interactive segmenter and its frame memory."""
