"""What keeps a DDP run the same as one process given the same global batch: samplers that hand
every rank its share of the run's global batches, a differentiable gather for losses over the
whole batch, validation metrics that count each held-out sample once, and per-rank augmentation
seeds. Data modules, Lightning modules and the train command share them, so they live apart
from any one task."""
