"""The golden reference of a vision-language package: one question through every graph.

The prefill gets the embeddings of a fixed question about a clip (or, for a slide-only model,
a slide) laid out as serving lays it out, its image slots filled by the projector from vision
features drawn from a fixed seed (the frozen encoders are outside the package, so no real
frame's features can be computed here); the decode graph gets the embedding of the token the
prefill chooses, with the prefill's cache; each projector gets its features. Every output is
what ONNX Runtime on CPU in fp32 gives, so every runtime must reproduce it before it serves
(:func:`orstream.vlm.answering.language_runtime.check_reference`).
"""

from __future__ import annotations

import numpy as np

from orstream.package.card import (
    VLM_EMBEDS,
    VLM_FEATURES,
    VLM_MASK,
    VLM_PAST,
    VLMEncoderSettings,
    VLMSpec,
)
from orstream.package.loading import ModelPackage
from orstream.vlm.answering.answer_engine import question_text
from orstream.vlm.answering.language_runtime import run_graph
from orstream.vlm.answering.onnx_language import OnnxLanguage, vlm_section
from orstream.vlm.prompt_layout import prompt_ids
from orstream.vlm.text_tokenizer import TextTokenizer

REFERENCE_QUESTIONS = {
    "surgical": "Which surgical step is in progress at the end of this clip?",
    "slide": "Is tumour present in this slide?",
}
FEATURE_SEED = 0


def visual_tokens(settings: VLMEncoderSettings, source: str) -> int:
    """Visual tokens of one request of ``source``: a clip's frames times tokens per frame, or
    regions."""
    if source == "surgical":
        return settings.window_s * settings.tokens_per_frame
    return settings.slide_regions[0] * settings.slide_regions[1]


def reference_source(sources: list[str]) -> str:
    """The source the reference question is about: surgical when the model reads clips."""
    return "surgical" if "surgical" in sources else sources[0]


def reference_features(settings: VLMEncoderSettings, source: str, width: int) -> np.ndarray:
    """Seeded features [1, N, width] of one request of ``source``."""
    rng = np.random.default_rng([FEATURE_SEED, len(source)])
    return rng.standard_normal((1, visual_tokens(settings, source), width)).astype(np.float32)


def reference_ids(tokenizer: TextTokenizer, settings: VLMEncoderSettings, source: str) -> list[int]:
    """The reference prompt's ids."""
    text = question_text(REFERENCE_QUESTIONS[source])
    return prompt_ids(tokenizer, visual_tokens(settings, source), text)


def vlm_reference_arrays(package: ModelPackage) -> dict[str, np.ndarray]:
    """``<graph>.in.<input>`` and ``<graph>.out.<output>`` of every graph of ``package``."""
    spec: VLMSpec = vlm_section(package)
    runtime = OnnxLanguage(package, check=False)
    tokenizer = TextTokenizer.load(package.root / spec.tokenizer_file)
    settings = spec.encoders
    graphs: dict[str, dict[str, np.ndarray]] = {}
    for source in spec.projectors:
        features = reference_features(settings, source, spec.feature_width(source))
        graphs[f"projector_{source}"] = {VLM_FEATURES: features}
    asked = reference_source(list(spec.projectors))
    ids = np.array([reference_ids(tokenizer, settings, asked)], np.int64)
    embeds = runtime.embed(ids)
    projected = runtime.project(asked, graphs[f"projector_{asked}"][VLM_FEATURES])
    embeds[ids == spec.language.image_id] = projected[0]
    graphs["model"] = {VLM_EMBEDS: embeds, VLM_MASK: np.ones_like(ids)}
    prefill = run_graph(runtime, "model", graphs["model"])
    token = prefill["logits"][:, -1].argmax(-1)
    graphs["decode"] = {
        VLM_EMBEDS: runtime.embed(token[:, None]),
        VLM_MASK: np.ones((1, ids.shape[1] + 1), np.int64),
        VLM_PAST[0]: prefill["keys"],
        VLM_PAST[1]: prefill["values"],
    }
    arrays: dict[str, np.ndarray] = {}
    for graph, inputs in graphs.items():
        outputs = prefill if graph == "model" else run_graph(runtime, graph, inputs)  # type: ignore[arg-type]
        arrays.update({f"{graph}.in.{k}": np.asarray(v) for k, v in inputs.items()})
        arrays.update({f"{graph}.out.{k}": np.asarray(v) for k, v in outputs.items()})
    return arrays
