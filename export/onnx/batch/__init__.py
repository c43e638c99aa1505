"""Dynamic batches: rewriting a batch-1 graph so axis 0 is symbolic, the proof that every row is
computed on its own, and ``orstream export batch`` for packages exported at batch 1."""
