"""A training step's tensors over the whole global batch, gradients included.

Contrastive losses (InfoNCE) compare every sample of a batch with every other: under DDP a rank
that scores only its own share sees fewer negatives than one process holding the global batch,
and its loss is a different number. Gathering the ranks' embeddings (rank r's share r-th, the
order :mod:`orstream.training.distributed.batches` gives the global batch) lets every rank
compute the global batch's loss itself.

The gather is differentiable: its backward sums, on each rank, the gradients that every rank's
(identical) loss sends to that rank's share, i.e. ``world_size`` times the loss's gradient with
respect to it. DDP then averages the parameter gradients over the ranks, which leaves exactly
the global batch's gradient, as one process computes it.

A loss over only some rows of a batch (tumour tiles, a slide's valid tiles), or over the rows of
a last batch that the ranks share unevenly, is a mean over a count that differs between ranks'
shares; :func:`masked_mean_share` scales each rank's part so that DDP's average over ranks is
the global batch's mean over those rows.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.nn.functional import all_gather as all_gather_with_grad
from torch.nn import functional as F


def in_process_group() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_global_batch(tensor: Tensor) -> Tensor:
    """Every rank's ``tensor`` [N_r, ...] concatenated in rank order along the first axis; the
    tensor itself outside a process group.

    Shares may differ in length (a shorter last batch): each is padded to the longest for the
    collective and cut back after. Floating-point tensors keep their gradient; others (ids,
    flags) are gathered as they are.
    """
    if not in_process_group():
        return tensor
    length = torch.tensor([len(tensor)], device=tensor.device)
    lengths = [torch.zeros_like(length) for _ in range(dist.get_world_size())]
    dist.all_gather(lengths, length)
    counts = [int(n) for n in lengths]
    longest = max(counts)
    is_bool = tensor.dtype == torch.bool
    padded = tensor.to(torch.uint8) if is_bool else tensor
    if len(tensor) < longest:
        padding = [0, 0] * (tensor.dim() - 1) + [0, longest - len(tensor)]
        padded = F.pad(padded, padding)
    if padded.is_floating_point():
        parts = list(all_gather_with_grad(padded.contiguous()))
    else:
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
    gathered = torch.cat([part[:count] for part, count in zip(parts, counts, strict=True)])
    return gathered.bool() if is_bool else gathered


def masked_mean_share(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """This rank's part of the mean of ``values`` over the rows ``mask`` selects (None: every
    row) in the whole global batch: its selected sum over the global count, times
    ``world_size``. Averaged over the ranks (DDP's gradients, ``sync_dist``'s logged values) it
    is that mean; it is 0, still in the graph, where no rank selects a row, so every rank's
    parameters get a gradient. Outside a process group, the mean over ``mask`` (0 where it is
    empty).
    """
    weights = torch.ones_like(values) if mask is None else mask.to(values.dtype)
    count = weights.sum().detach()
    scale = 1.0
    if in_process_group():
        dist.all_reduce(count)
        scale = float(dist.get_world_size())
    return (values * weights).sum() * scale / count.clamp(min=1)
