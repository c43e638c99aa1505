"""Validation results gathered from every rank of a DDP run, each held-out sample once.

Under DDP, Lightning gives each rank a share of the validation data, padding the shorter shares
with repeats of the first samples so that every rank runs as many batches. Metrics that average
over videos or targets must see each sample exactly once: every rank's per-sample rows are
gathered, rows of a repeated key dropped, and all ranks compute the same metrics from the same
rows, which is what one process validating all the data computes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def gather_unique(keys: Tensor, rows: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """Every rank's ``rows`` (one per entry of ``keys``, [N, ...]), each key once, sorted by
    key; on the CPU. Outside a process group, the rows given.

    ``device`` is where the collective runs (the module's: NCCL gathers CUDA tensors only).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        from torchmetrics.utilities.distributed import gather_all_tensors

        keys = torch.cat(gather_all_tensors(keys.to(device))).cpu()
        rows = torch.cat(gather_all_tensors(rows.to(device))).cpu()
    _, first = np.unique(keys.cpu().numpy(), return_index=True)
    index = torch.from_numpy(first)
    return keys.cpu()[index], rows.cpu()[index]
