"""The tokenizer's code restarts under DDP: two gloo CPU processes, each quantizing its share of
a batch, restart the codes that neither used, from the same latents, as one process does."""

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from orstream.training.models.tokenizer import MultiCodebookQuantizer

CODES = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]])


def global_batch() -> torch.Tensor:
    """Four latents of 2x2 positions: the first two near code 0, the last two near code 1."""
    generator = torch.Generator().manual_seed(3)
    near = torch.tensor([[1.0, 0.1], [1.0, 0.1], [0.1, 1.0], [0.1, 1.0]]).view(4, 2, 1, 1)
    return near.expand(4, 2, 2, 2) + 0.01 * torch.randn(4, 2, 2, 2, generator=generator)


def restarted(latents: torch.Tensor, seed: int) -> MultiCodebookQuantizer:
    """A quantizer after two training steps on ``latents`` (restart_after 2), its random draws
    seeded with ``seed`` (a DDP rank's own seed, as RankSeeds gives it)."""
    quantizer = MultiCodebookQuantizer(groups=1, codes=4, code_dim=2, restart_after=2)
    with torch.no_grad():
        quantizer.codebook.copy_(CODES)
    torch.manual_seed(seed)
    quantizer.train()
    for _ in range(2):
        quantizer(latents)
    return quantizer


def rank_main(rank: int, port: int, out: Path) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        share = global_batch()[2 * rank : 2 * rank + 2]
        quantizer = restarted(share, seed=10 + rank)
        torch.save(quantizer.state_dict(), out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ranks_restart_the_codes_no_rank_used_from_the_global_batch(tmp_path: Path) -> None:
    mp.spawn(rank_main, args=(free_port(), tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    alone = restarted(global_batch(), seed=10).state_dict()  # rank 0's draws, every latent
    for state in ranks:
        torch.testing.assert_close(state, alone, rtol=0, atol=1e-7)
    codebook = ranks[0]["codebook"][0]
    # Codes 0 and 1 were used (each by one rank only) and are kept; 2 and 3 are restarted,
    # and rank 0 drew one of them from rank 1's latents.
    assert torch.equal(codebook[:2], CODES[0, :2])
    samples = torch.nn.functional.normalize(global_batch(), dim=1)
    samples = samples.permute(0, 2, 3, 1).reshape(4, 4, 2)
    owners = [
        int((samples - code).abs().sum(-1).min(-1).values.argmin()) // 2 for code in codebook[2:]
    ]
    assert 1 in owners
