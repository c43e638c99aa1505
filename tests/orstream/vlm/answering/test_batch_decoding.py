"""Greedy decoding in a batch: rows joining a running batch, left padding, the KV cache against
recomputation, and each row's limits, on a tiny random package built here."""

import numpy as np
import pytest

from orstream.vlm.answering.answer_backend import AnswerEnd
from orstream.vlm.answering.batch_decoding import BatchDecoder, PreparedPrompt, Row
from orstream.vlm.answering.onnx_language import OnnxLanguage
from tests.vlm_checkpoints import tiny_vlm_package

NEVER = 10_000  # an id outside the vocabulary: no row ends at eos


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> OnnxLanguage:
    return OnnxLanguage(tiny_vlm_package(tmp_path_factory.mktemp("vlm")))


def prompt(seed: int, length: int) -> PreparedPrompt:
    rng = np.random.default_rng(seed)
    ids = [1, 3, 3, *rng.integers(8, 300, length).tolist()]
    return PreparedPrompt(
        tuple(ids), "surgical", rng.standard_normal((2, 128)).astype(np.float32), 3
    )


def row(
    prompt_: PreparedPrompt, tokens: int, ends: list[AnswerEnd], cancelled: bool = False
) -> Row:
    return Row(prompt_, tokens, None, lambda: cancelled, lambda _: None, ends.append)


def alone(runtime: OnnxLanguage, prompt_: PreparedPrompt, tokens: int) -> list[int]:
    decoder = BatchDecoder(runtime, NEVER)
    answer = row(prompt_, tokens, [])
    decoder.admit([answer])
    while decoder.rows:
        decoder.step()
    return answer.tokens


def test_rows_joining_a_running_batch_decode_what_they_decode_alone(runtime: OnnxLanguage) -> None:
    prompts = [prompt(0, 4), prompt(1, 19), prompt(2, 9)]
    expected = [alone(runtime, p, n) for p, n in zip(prompts, (12, 6, 9), strict=True)]
    assert len({tuple(tokens) for tokens in expected}) == 3  # the prompts lead apart
    decoder = BatchDecoder(runtime, NEVER)
    ends: list[AnswerEnd] = []
    rows = [row(p, n, ends) for p, n in zip(prompts, (12, 6, 9), strict=True)]
    decoder.admit(rows[:1])
    decoder.step()
    decoder.step()
    decoder.admit(rows[1:])  # a longer and a shorter prompt join the running row
    while decoder.rows:
        decoder.step()
    assert [r.tokens for r in rows] == expected
    assert sorted(e.tokens for e in ends) == [6, 9, 12]
    assert {e.reason for e in ends} == {"max_new_tokens"}


def test_recomputation_decodes_the_same_tokens_as_the_cache(runtime: OnnxLanguage) -> None:
    prompts = [prompt(3, 5), prompt(4, 11)]
    cached = BatchDecoder(runtime, NEVER)
    recomputed = BatchDecoder(runtime, NEVER, recompute=True)
    results = []
    for decoder in (cached, recomputed):
        rows = [row(p, 8, []) for p in prompts]
        decoder.admit(rows)
        while decoder.rows:
            decoder.step()
        results.append([r.tokens for r in rows])
    assert results[0] == results[1]


def test_a_row_ends_at_eos_without_it(runtime: OnnxLanguage) -> None:
    first = alone(runtime, prompt(5, 6), 4)
    changes = [i for i in range(1, len(first)) if first[i] not in first[:i]]
    stop = changes[0] if changes else 0  # the first token new to the answer is eos
    decoder = BatchDecoder(runtime, eos_id=first[stop])
    ends: list[AnswerEnd] = []
    answer = row(prompt(5, 6), 10, ends)
    decoder.admit([answer])
    while decoder.rows:
        decoder.step()
    assert answer.tokens == first[:stop]
    assert ends == [AnswerEnd("eos", stop)]


def test_a_cancelled_row_ends_before_its_call(runtime: OnnxLanguage) -> None:
    decoder = BatchDecoder(runtime, NEVER)
    ends: list[AnswerEnd] = []
    decoder.admit([row(prompt(6, 3), 5, ends, cancelled=True)])
    assert ends == [AnswerEnd("cancelled", 0)] and not decoder.rows


def test_prompt_features_must_fill_its_image_slots() -> None:
    from orstream.errors import OrstreamError

    with pytest.raises(OrstreamError, match="2 image slots for 3 visual tokens"):
        PreparedPrompt((1, 3, 3, 9), "surgical", np.zeros((3, 128), np.float32), 3)
