"""The segmenter's and tokenizer's schedule: linear warm-up, cosine to 1%, none without a budget."""

import itertools
import math

import pytest
import torch

from orstream.training.modules.warmup_cosine import warmup_cosine


def _rates(total: float, warmup: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    config = warmup_cosine(optimizer, total, warmup)
    scheduler = config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(int(total)):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_the_rate_warms_up_linearly_then_falls_to_a_hundredth() -> None:
    rates = _rates(100, 10)
    assert rates[:10] == pytest.approx([2.0 * (step + 1) / 10 for step in range(10)])
    assert max(rates) == pytest.approx(2.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))  # never rises
    assert rates[-1] == pytest.approx(2.0 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 89 / 90))))


def test_a_budget_shorter_than_the_warm_up_still_reaches_the_peak() -> None:
    assert max(_rates(5, 10)) == pytest.approx(2.0)


@pytest.mark.parametrize("total", [math.inf, 0.0])
def test_without_a_step_budget_the_rate_is_constant(total: float) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    assert warmup_cosine(optimizer, total, 10) is optimizer
