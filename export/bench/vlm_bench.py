"""Timing of a vision-language package's answering: first token and tokens per second, with
the KV cache and with recomputation, on ONNX Runtime and torch.

Each configuration drives the decoding loop the answering engine runs
(:class:`~orstream.vlm.answering.batch_decoding.BatchDecoder`) in this thread, so the figures are
the language model's and the loop's, without the hand-off between the engine's threads:

- ``ttft_ms``: from a request's admission (its prompt's prefill, visual tokens projected) to
  its first token, p50 and p99 over the runs; with 4 concurrent requests they are admitted
  together and each gets its first token from that one call;
- ``tokens_per_s``: tokens decoded over the wall time from admission to the last token, of 1
  request, and of 4 concurrent requests together (the batch's total);
- ``kv_speedup``: tokens per second with the cache over those with recomputation (each step
  runs the prefill over every sequence so far), per runtime and concurrency.

Every request runs to ``max_new_tokens`` (``<eos>`` is not honoured here) so that every
configuration decodes the same number of tokens. A request is a question laid out as serving
lays it out with as many visual tokens as the package's encoders give one clip (or one slide,
for a slide-only model), their features drawn from a fixed seed: the frozen vision encoders
run before the language model and are timed separately (``visual_ms``, one clip's frames
through the frame package, when it can be opened here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage
from orstream.vlm.answering.answer_backend import AnswerRequest
from orstream.vlm.answering.answer_engine import question_text
from orstream.vlm.answering.batch_decoding import BatchDecoder, PreparedPrompt, Row
from orstream.vlm.answering.language_runtime import LanguageRuntime
from orstream.vlm.answering.onnx_language import open_vlm_package, vlm_section
from orstream.vlm.answering.torch_language import Runtime, open_language
from orstream.vlm.prompt_layout import prompt_ids
from orstream.vlm.text_tokenizer import TextTokenizer

Progress = Callable[[str], None]
NEVER = -1
"""The eos id the bench decodes with: no token is it, every answer runs its full length."""
DEFAULT_NEW_TOKENS = AnswerRequest.max_new_tokens
"""Tokens per answer: the answering contract's default ``max_new_tokens``, the length a
served answer may reach (recomputation's cost grows with it, the cache's does not)."""
QUESTIONS = (
    "Which surgical step is in progress at the end of this clip?",
    "How many instruments are in view now?",
    "Which instruments are visible at the end of this clip?",
    "Is the endoscope out of the patient at the end of this clip?",
)


@dataclass(frozen=True)
class Timing:
    """One runtime, one mode (cache or recomputation), one concurrency."""

    runtime: str
    mode: str
    concurrent: int
    ttft_ms_p50: float
    ttft_ms_p99: float
    tokens_per_s: float
    tokens: int
    runs: int

    def as_json(self) -> dict[str, Any]:
        return {
            "ttft_ms": {"p50": self.ttft_ms_p50, "p99": self.ttft_ms_p99},
            "tokens_per_s": self.tokens_per_s,
            "tokens": self.tokens,
            "runs": self.runs,
        }


def bench_prompts(
    package: ModelPackage, tokenizer: TextTokenizer, count: int
) -> list[PreparedPrompt]:
    """``count`` prompts of one request's visual tokens (seeded features) and a question."""
    from orstream.export.onnx.models.vlm_reference import reference_source, visual_tokens

    spec = vlm_section(package)
    source = reference_source(list(spec.projectors))
    tokens = visual_tokens(spec.encoders, source)
    rng = np.random.default_rng(0)
    prompts = []
    for index in range(count):
        features = rng.standard_normal((tokens, spec.feature_width(source))).astype(np.float32)
        ids = prompt_ids(tokenizer, tokens, question_text(QUESTIONS[index % len(QUESTIONS)]))
        prompts.append(PreparedPrompt(tuple(ids), source, features, tokenizer.image_id))
    return prompts


def time_decoding(
    runtime: LanguageRuntime,
    prompts: list[PreparedPrompt],
    max_new_tokens: int,
    recompute: bool,
    runs: int,
) -> tuple[list[float], float, int]:
    """(first-token times in ms of every request of every run, tokens per second over all
    runs, tokens decoded) of ``prompts`` admitted together ``runs`` times."""
    decoder = BatchDecoder(runtime, NEVER, recompute)
    ttft: list[float] = []
    tokens = 0
    busy = 0.0
    for _ in range(runs):
        rows = [
            Row(p, max_new_tokens, None, lambda: False, lambda _: None, lambda _: None)
            for p in prompts
        ]
        start = time.perf_counter()
        decoder.admit(rows)
        ttft += [(time.perf_counter() - start) * 1000.0] * len(rows)
        while decoder.rows:
            decoder.step()
        busy += time.perf_counter() - start
        tokens += sum(len(row.tokens) for row in rows)
    return ttft, tokens / busy, tokens


def visual_ms(package: ModelPackage, runs: int = 5) -> float | None:
    """p50 ms of one clip's frames through the package's frame encoder (None: it cannot be
    opened here)."""
    from orstream.export.onnx.parity import phantom_frames
    from orstream.vlm.visual.visual_input import VisualEncoders

    spec = vlm_section(package)
    if "surgical" not in spec.projectors or spec.encoders.frame_package is None:
        return None
    encoders = VisualEncoders(spec.encoders)
    frames = phantom_frames(spec.encoders.window_s)
    try:
        encoders.clip_features(frames)
    except OrstreamError:
        return None
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        encoders.clip_features(frames)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def bench_vlm(
    package_path: Path,
    *,
    runtimes: tuple[Runtime, ...] = ("onnx", "torch"),
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
    runs: int = 5,
    threads: int = 1,
    device: str = "cpu",
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Every runtime x (cache, recomputation) x (1, 4 concurrent requests), as JSON.

    Raises:
        OrstreamError: the package cannot be opened or a runtime refuses it.
    """
    if max_new_tokens < 2 or runs < 1:
        raise OrstreamError(f"need max_new_tokens >= 2 and runs >= 1, not {max_new_tokens}, {runs}")
    package = open_vlm_package(package_path)
    spec = vlm_section(package)
    tokenizer = TextTokenizer.load(package.root / spec.tokenizer_file)
    prompts = bench_prompts(package, tokenizer, 4)
    results: dict[str, Any] = {}
    for name in runtimes:
        runtime = open_language(package, name, device, threads)
        figures: dict[str, Any] = {}
        for concurrent in (1, 4):
            rates = {}
            for mode, recompute in (("kv_cache", False), ("recompute", True)):
                progress(
                    f"{name}: {concurrent} request(s), {mode}, {runs} runs of "
                    f"{max_new_tokens} tokens"
                )
                time_decoding(runtime, prompts[:concurrent], 4, recompute, 1)  # warm-up
                ttft, rate, tokens = time_decoding(
                    runtime, prompts[:concurrent], max_new_tokens, recompute, runs
                )
                timing = Timing(
                    name,
                    mode,
                    concurrent,
                    float(np.percentile(ttft, 50)),
                    float(np.percentile(ttft, 99)),
                    rate,
                    tokens,
                    runs,
                )
                figures[f"{concurrent}_request{'s' * (concurrent > 1)}_{mode}"] = timing.as_json()
                rates[mode] = rate
            figures[f"kv_speedup_{concurrent}"] = rates["kv_cache"] / rates["recompute"]
        results[name] = figures
    prompt_length = len(prompts[0].ids)
    return {
        "package": str(package.root),
        "model": f"{package.card.name} {package.card.version}",
        "language": spec.language.model_dump(),
        "prompt_tokens": prompt_length,
        "max_new_tokens": max_new_tokens,
        "threads": threads,
        "device": device,
        "visual_ms": visual_ms(package),
        "runtimes": results,
    }


def random_package(folder: Path, progress: Progress = lambda _: None) -> Path:
    """A vlm package of ``gmai_vl_small`` at its default size with random weights (and a
    tokenizer learnt from the bench's questions), written under ``folder``: what the bench
    times when no package is given. Its answers mean nothing; its timings are the
    architecture's."""
    import torch

    from orstream.export.onnx.models.vlm_export import export_vlm_package
    from orstream.training.models.vlm import gmai_vl_small

    tokenizer = TextTokenizer.train([question_text(q) for q in QUESTIONS] * 8, vocab_size=512)
    torch.manual_seed(0)
    model = gmai_vl_small()
    checkpoint = {
        "hyper_parameters": {"model_name": "gmai_vl_small", "model_kwargs": {}},
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "orstream": {"data": {}, "tokenizer": tokenizer.to_json()},
    }
    path = folder / "random_gmai_vl_small.ckpt"
    torch.save(checkpoint, path)
    out = folder / "random_vlm"
    export_vlm_package(path, out, progress=progress)
    return out
