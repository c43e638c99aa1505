"""Export a trained vision-language model (``gmai_vl_small``) to a ``vlm`` package.

The package holds (:class:`~orstream.package.card.VLMSpec`):

- ``model.onnx``, the prefill: ``inputs_embeds`` [B, T, W] and ``attention_mask`` [B, T] ->
  ``logits`` [B, T, V], ``keys`` and ``values`` [B, layers, kv_heads, T, head_dim];
- ``decode.onnx``, one step: the next token's embedding [B, 1, W], the mask over past and token
  [B, P + 1] and the past cache as inputs -> its logits [B, V] and the cache grown to P + 1;
- ``projector_<source>.onnx`` per vision source: features [B, N, F] -> embeddings [B, N, W];
- ``weights.npz``: every weight by its torch name; the ONNX runtime looks token ids up in its
  embedding (a row copy needs no graph) and the torch runtime rebuilds the model from it;
- ``tokenizer.json``, the text tokenizer the checkpoint carries;
- the card's ``vlm`` section: sizes, special ids, and how the features were made (frame package
  path and sha256, frame grid, window, slide package and regions) from the checkpoint's record.

Both graphs run the left-padded forward serving uses
(:class:`~orstream.vlm.model.padded_batch.PaddedDecoder`), batch on axis 0 and the
sequence axes symbolic. Before the package is written ONNX Runtime must reproduce PyTorch within
1e-4: the prefill on prompts of several lengths alone and left-padded together in ``max_batch``
rows, then several decode steps each side carrying its own cache, and each projector on 1 and
``max_batch`` rows of several token counts. The golden reference is written last
(:mod:`orstream.export.onnx.models.vlm_reference`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import Tensor, nn

from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH
from orstream.export.onnx.card_parts import export_info, package_line
from orstream.export.onnx.models.vlm_reference import reference_ids, reference_source, visual_tokens
from orstream.export.onnx.models.workflow_export import (
    EXPORT_BATCH,
    OPSET,
    TOLERANCE,
    Exporter,
    LoadedCheckpoint,
    Progress,
    check_max_batch,
    export_graph,
    finish_package,
    load_model_checkpoint,
    onnx_opset,
    onnx_signature,
    prepare_output,
    progress_to_stderr,
    read_onnx,
    training_record,
)
from orstream.package.card import (
    DECODE_FILE,
    MODEL_FILE,
    VLM,
    VLM_EMBEDS,
    VLM_FEATURES,
    VLM_LENGTH_AXES,
    VLM_MASK,
    VLM_OUTPUTS,
    VLM_PAST,
    VLM_PROJECTED,
    VLM_TOKENIZER_FILE,
    VLM_WEIGHTS_FILE,
    Clip,
    Hashes,
    InputSpec,
    ModelCard,
    OutputSpec,
    ParityResult,
    VisionSource,
    VLMEncoderSettings,
    VLMGraphSpec,
    VLMLanguageSpec,
    VLMSpec,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file
from orstream.package.signatures import check_graph_signature
from orstream.vlm.answering.onnx_language import OnnxLanguage
from orstream.vlm.model import VisionLanguageModel
from orstream.vlm.model.padded_batch import PaddedDecoder
from orstream.vlm.text_tokenizer import TextTokenizer

VLM_MODELS = frozenset({"gmai_vl_small"})
PARITY_LENGTHS = (3, 17)
"""Prompt lengths the prefill's parity runs besides the reference prompt's."""
PARITY_STEPS = 4
"""Decode steps of the parity run, each side carrying its own cache."""


@dataclass(frozen=True)
class VLMExportResult:
    """The written package and the parity checks it passed."""

    package: ModelPackage
    exporter: str
    prefill_parity: tuple[ParityResult, ...]
    decode_parity: tuple[ParityResult, ...]
    projector_parity: tuple[ParityResult, ...]

    def summary(self) -> list[str]:
        """What ``orstream export onnx`` prints: the package, the model and its parity."""
        lines: list[str] = []
        card = self.package.card
        vlm = card.vlm
        assert vlm is not None  # a vlm package always has one
        language = vlm.language
        encoders = vlm.encoders
        lines.append(package_line(self.package, "dynamic batch and length"))
        lines.append(
            f"model     {card.name} {card.version}  {language.layers} layers x {language.width}, "
            f"{language.heads} heads over {language.kv_heads} "
            f"kv heads, vocab {language.vocab_size}  "
            f"opset {card.export.opset} ({self.exporter})"
        )
        instruments = encoders.instrument_package
        lines.append(
            f"vision    {', '.join(vlm.projectors)}: frame package {encoders.frame_package} grid "
            f"{list(encoders.frame_grid)}"
            f"{' + instruments ' + instruments if instruments else ''}"
            f" x {encoders.window_s} frames; slide regions "
            f"{list(encoders.slide_regions)}"
        )
        lines.append("parity    ONNX Runtime vs PyTorch, max abs diff:")
        for graph, results in (
            ("prefill", self.prefill_parity),
            ("decode", self.decode_parity),
            ("projector", self.projector_parity),
        ):
            for parity in results:
                worst = max(parity.max_abs_diff.values())
                lines.append(
                    f"  {graph:<9} {parity.source:<24} batch {parity.batch:<3} {worst:.2e} "
                    f"(tolerance {parity.tolerance:g})"
                )
        return lines


class PrefillGraph(nn.Module):
    """The exported prefill: the padded forward with an empty past."""

    def __init__(self, decoder: PaddedDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, embeds: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        language = self.decoder.language
        shape = (embeds.shape[0], language.layers, language.kv_heads, 0, language.head_dim)
        past = embeds.new_zeros(shape)
        logits, keys, values = self.decoder(embeds, mask, past, past)
        return logits, keys, values


class DecodeGraph(nn.Module):
    """The exported decode step: one token's logits and the grown cache."""

    def __init__(self, decoder: PaddedDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(
        self, embed: Tensor, mask: Tensor, past_keys: Tensor, past_values: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        logits, keys, values = self.decoder(embed, mask, past_keys, past_values)
        return logits[:, -1], keys, values


def vlm_model(checkpoint: LoadedCheckpoint) -> VisionLanguageModel:
    """The checkpoint's model as a vision-language model.

    Raises:
        OrstreamError: it is not one.
    """
    if not isinstance(checkpoint.model, VisionLanguageModel):
        raise OrstreamError(
            f"{checkpoint.path}: model {checkpoint.model_name!r} is not a vision-language model"
        )
    return checkpoint.model


def checkpoint_tokenizer(checkpoint: LoadedCheckpoint) -> TextTokenizer:
    """The tokenizer the checkpoint carries (``tokenizer`` of its record).

    Raises:
        OrstreamError: it carries none, or not a readable one.
    """
    text = checkpoint.record.get("tokenizer")
    if not isinstance(text, str):
        raise OrstreamError(
            f"{checkpoint.path}: carries no tokenizer (orstream train vlm "
            "writes it into every checkpoint)"
        )
    from tokenizers import Tokenizer

    try:
        return TextTokenizer(Tokenizer.from_str(text))
    except Exception as error:  # tokenizers raises plain Exceptions for bad JSON
        raise OrstreamError(f"{checkpoint.path}: its tokenizer is unreadable ({error})") from None


def encoder_settings(checkpoint: LoadedCheckpoint, progress: Progress) -> VLMEncoderSettings:
    """How the training data made the features, from the checkpoint's record, with the
    sha256 of the frame and slide packages' encoders where they can be opened here."""
    data = checkpoint.record.get("data")
    data = data if isinstance(data, Mapping) else {}
    frame_package = data.get("frame_package")
    instrument_package = data.get("instrument_package")
    slide_package = data.get("slide_package")
    try:
        settings = VLMEncoderSettings(
            frame_package=str(frame_package) if frame_package else None,
            frame_grid=tuple(data.get("frame_grid", (2, 2))),
            instrument_package=str(instrument_package) if instrument_package else None,
            slide_package=str(slide_package) if slide_package else None,
            slide_regions=tuple(data.get("slide_regions", (4, 4))),
            window_s=int(data.get("window_s", 8)),
        )
    except (TypeError, ValueError) as error:
        raise OrstreamError(
            f"{checkpoint.path}: its recorded encoder settings are unreadable ({error})"
        ) from None
    frame_sha = _encoder_sha(settings.frame_package, progress)
    instrument_sha = _encoder_sha(settings.instrument_package, progress)
    slide_sha = None
    if "slide" in vlm_model(checkpoint).feature_widths:
        from orstream.slides.slide_models import DEFAULT_PACKAGE

        slide_sha = _encoder_sha(settings.slide_package or str(DEFAULT_PACKAGE), progress)
    return settings.model_copy(
        update={
            "frame_package_sha256": frame_sha,
            "instrument_package_sha256": instrument_sha,
            "slide_package_sha256": slide_sha,
        }
    )


def _encoder_sha(path: str | None, progress: Progress) -> str | None:
    if path is None:
        return None
    try:
        return load_package(Path(path)).card.hashes.model_onnx
    except OrstreamError as error:
        progress(f"encoder package {path} not checked here ({error}); its sha256 is not recorded")
        return None


def _tensor(name: str, shape: tuple[int, ...], dtype: str = "float32") -> InputSpec:
    return InputSpec(name=name, shape=shape, dtype=dtype)  # type: ignore[arg-type]


def _output(
    name: str,
    shape: tuple[int, ...],
    meaning: str,
    activation: Literal["softmax", "sigmoid", "none"] = "none",
) -> OutputSpec:
    return OutputSpec(
        name=name, shape=shape, dtype="float32", meaning=meaning, activation=activation
    )


def build_card(
    checkpoint: LoadedCheckpoint,
    tokenizer: TextTokenizer,
    settings: VLMEncoderSettings,
    hashes: dict[str, str],
    exporter: str,
    opset: int,
    max_batch: int,
) -> ModelCard:
    """The card of the package (``hashes`` by file name), shapes at the golden reference's
    sizes: the reference prompt's length, a request's visual tokens per source."""
    model = vlm_model(checkpoint)
    language = model.language
    cache = (language.layers, language.kv_heads)
    width, vocab, head = language.width, language.vocab_size, language.head_dim
    length = len(reference_ids(tokenizer, settings, reference_source(list(model.feature_widths))))
    cache_meaning = "the KV cache of every token so far, batch-first"
    projectors: dict[VisionSource, VLMGraphSpec] = {
        cast(VisionSource, source): VLMGraphSpec(  # the model refuses any other source
            file=f"projector_{source}.onnx",
            sha256=hashes[f"projector_{source}.onnx"],
            inputs=(_tensor(VLM_FEATURES, (1, visual_tokens(settings, source), features)),),
            outputs=(
                _output(
                    VLM_PROJECTED,
                    (1, visual_tokens(settings, source), width),
                    f"the {source} features as language embeddings",
                ),
            ),
        )
        for source, features in model.feature_widths.items()
    }
    decode = VLMGraphSpec(
        file=DECODE_FILE,
        sha256=hashes[DECODE_FILE],
        inputs=(
            _tensor(VLM_EMBEDS, (1, 1, width)),
            _tensor(VLM_MASK, (1, length + 1), "int64"),
            _tensor(VLM_PAST[0], (1, *cache, length, head)),
            _tensor(VLM_PAST[1], (1, *cache, length, head)),
        ),
        outputs=(
            _output("logits", (1, vocab), "next-token logits of the new token", "softmax"),
            _output("keys", (1, *cache, length + 1, head), cache_meaning),
            _output("values", (1, *cache, length + 1, head), cache_meaning),
        ),
    )
    record = training_record(checkpoint.record)
    return ModelCard(
        name=checkpoint.model_name,
        task=VLM,
        version=checkpoint.sha256[:12],
        inputs=(_tensor(VLM_EMBEDS, (1, length, width)), _tensor(VLM_MASK, (1, length), "int64")),
        outputs=(
            _output("logits", (1, length, vocab), "next-token logits at every position", "softmax"),
            _output("keys", (1, *cache, length, head), cache_meaning),
            _output("values", (1, *cache, length, head), cache_meaning),
        ),
        clip=Clip(length=settings.window_s, stride=1, fps=1.0),
        hashes=Hashes(checkpoint=checkpoint.sha256, model_onnx=hashes[MODEL_FILE]),
        training=record,
        export=export_info(exporter, opset, max_batch),
        vlm=VLMSpec(
            decode=decode,
            projectors=projectors,
            weights_sha256=hashes[VLM_WEIGHTS_FILE],
            tokenizer_sha256=hashes[VLM_TOKENIZER_FILE],
            language=VLMLanguageSpec(
                vocab_size=vocab,
                width=width,
                layers=language.layers,
                heads=width // head,
                kv_heads=language.kv_heads,
                mlp_hidden=language.mlp_hidden,
                rope_base=language.rope_base,
                image_id=model.image_id,
                eos_id=tokenizer.eos_id,
                pad_id=tokenizer.pad_id,
            ),
            encoders=settings,
        ),
    )


def _axes(graph: str, names: list[str], name_of: str) -> dict[str, dict[int, str]]:
    return {n: {VLM_LENGTH_AXES[graph][n]: name_of} for n in names if n in VLM_LENGTH_AXES[graph]}


def export_graphs(
    model: VisionLanguageModel, staging: Path, exporter: Exporter, progress: Progress
) -> str:
    """Write the prefill, decode and projector graphs into ``staging``; the exporter used."""
    decoder = PaddedDecoder(model.language).eval()
    language = model.language
    width = language.width
    cache = (EXPORT_BATCH, language.layers, language.kv_heads, 5, language.head_dim)
    mask = torch.ones(EXPORT_BATCH, 5, dtype=torch.long)
    mask[0, :2] = 0
    used = export_graph(
        PrefillGraph(decoder),
        (torch.randn(EXPORT_BATCH, 5, width), mask),
        staging / MODEL_FILE,
        ([VLM_EMBEDS, VLM_MASK], list(VLM_OUTPUTS)),
        exporter,
        OPSET,
        progress,
        more_axes=_axes("model", [VLM_EMBEDS, VLM_MASK, *VLM_OUTPUTS], "length"),
    )
    same: Exporter = "dynamo" if used == "dynamo" else "torchscript"
    decode_axes = _axes("decode", [VLM_MASK, "keys", "values"], "total")
    decode_axes.update(_axes("decode", list(VLM_PAST), "past"))
    export_graph(
        DecodeGraph(decoder),
        (
            torch.randn(EXPORT_BATCH, 1, width),
            torch.ones(EXPORT_BATCH, 6, dtype=torch.long),
            torch.randn(cache),
            torch.randn(cache),
        ),
        staging / DECODE_FILE,
        ([VLM_EMBEDS, VLM_MASK, *VLM_PAST], list(VLM_OUTPUTS)),
        same,
        OPSET,
        progress,
        more_axes=decode_axes,
    )
    for source, features in model.feature_widths.items():
        export_graph(
            model.projectors[source],
            (torch.randn(EXPORT_BATCH, 4, features),),
            staging / f"projector_{source}.onnx",
            ([VLM_FEATURES], [VLM_PROJECTED]),
            same,
            OPSET,
            progress,
            more_axes=_axes(f"projector_{source}", [VLM_FEATURES, VLM_PROJECTED], "tokens"),
        )
    return used


def _worst(
    actual: dict[str, np.ndarray], expected: dict[str, Tensor], worst: dict[str, float]
) -> None:
    for name, value in expected.items():
        difference = float(np.abs(actual[name] - value.numpy()).max()) if value.numel() else 0.0
        worst[name] = max(worst.get(name, 0.0), difference)


def _checked(result: ParityResult, what: str) -> ParityResult:
    name = max(result.max_abs_diff, key=result.max_abs_diff.__getitem__)
    if result.max_abs_diff[name] > result.tolerance:
        raise OrstreamError(
            f"parity failed on {what} at batch {result.batch}: {name} differs from PyTorch by "
            f"{result.max_abs_diff[name]:.3g} > {result.tolerance:g}"
        )
    return result


def language_parity(
    model: VisionLanguageModel, runtime: OnnxLanguage, lengths: list[int], rows: int, seed: int
) -> tuple[ParityResult, ParityResult]:
    """(prefill, decode) parity on ``rows`` prompts of random ids, row r of length
    ``lengths[r % len(lengths)]``, left-padded together, then :data:`PARITY_STEPS` decode
    steps each side carrying its own cache (the tokens PyTorch chooses fed to both)."""
    decoder = PaddedDecoder(model.language).eval()
    rng = np.random.default_rng(seed)
    sizes = [lengths[r % len(lengths)] for r in range(rows)]
    longest = max(sizes)
    ids = rng.integers(0, model.language.vocab_size, (rows, longest))
    mask = np.zeros((rows, longest), np.int64)
    for row, size in enumerate(sizes):
        mask[row, longest - size :] = 1
    embeds = runtime.embed(ids) * mask[..., None].astype(np.float32)
    prefill_worst: dict[str, float] = {}
    decode_worst: dict[str, float] = {}
    with torch.no_grad():
        empty = decoder.empty_cache(rows)
        logits, keys, values = decoder(torch.from_numpy(embeds), torch.from_numpy(mask), *empty)
        actual, cache = runtime.prefill(embeds, mask)
        _worst(
            {"logits": actual, "keys": cache[0], "values": cache[1]},
            {"logits": logits, "keys": keys, "values": values},
            prefill_worst,
        )
        for _ in range(PARITY_STEPS):
            token = logits[:, -1].argmax(-1).numpy()
            embed = runtime.embed(token[:, None])
            mask = np.concatenate([mask, np.ones((rows, 1), np.int64)], 1)
            logits, keys, values = decoder(
                torch.from_numpy(embed), torch.from_numpy(mask), keys, values
            )
            actual, cache = runtime.decode(embed, mask, cache)
            _worst(
                {"logits": actual, "keys": cache[0], "values": cache[1]},
                {"logits": logits[:, -1], "keys": keys, "values": values},
                decode_worst,
            )
    source = "prompts-" + "-".join(str(s) for s in sorted(set(sizes)))
    prefill = ParityResult(
        source=source, frames=rows, batch=rows, max_abs_diff=prefill_worst, tolerance=TOLERANCE
    )
    decode = ParityResult(
        source=f"{source}+{PARITY_STEPS}-steps",
        frames=rows * PARITY_STEPS,
        batch=rows,
        max_abs_diff=decode_worst,
        tolerance=TOLERANCE,
    )
    return _checked(prefill, f"prompts of {sizes} tokens"), _checked(decode, "decode steps")


def projector_parity(
    model: VisionLanguageModel, runtime: OnnxLanguage, source: str, tokens: int, rows: int
) -> ParityResult:
    """A projector on ``rows`` rows of ``tokens`` seeded random features."""
    width = model.feature_widths[source]
    features = np.random.default_rng(tokens).standard_normal((rows, tokens, width))
    features = features.astype(np.float32)
    with torch.no_grad():
        expected = model.projectors[source](torch.from_numpy(features))
    worst: dict[str, float] = {}
    _worst({VLM_PROJECTED: runtime.project(source, features)}, {VLM_PROJECTED: expected}, worst)
    result = ParityResult(
        source=f"random-{tokens}-tokens",
        frames=rows,
        batch=rows,
        max_abs_diff=worst,
        tolerance=TOLERANCE,
    )
    return _checked(result, f"the {source} projector")


def export_vlm_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 16,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> VLMExportResult:
    """Export the vision-language checkpoint at ``checkpoint_path`` to the package folder
    ``out`` (module docstring), built in a staging folder and moved there only when every
    check passed. ``parity_frames`` is unused here (the parity runs are fixed).

    Raises:
        OrstreamError: a bad checkpoint (no tokenizer, not a vision-language model), existing
            ``out`` without ``overwrite``, ``max_batch`` below 2, an export or checker failure,
            or parity above tolerance.
    """
    del parity_frames
    check_max_batch(max_batch)
    out = Path(out)
    staging = prepare_output(out, overwrite)
    try:
        progress(f"loading {checkpoint_path}")
        checkpoint = load_model_checkpoint(checkpoint_path, progress)
        if checkpoint.model_name not in VLM_MODELS:
            raise OrstreamError(
                f"{checkpoint_path}: model {checkpoint.model_name!r} is not one "
                f"of {sorted(VLM_MODELS)}"
            )
        model = vlm_model(checkpoint)
        tokenizer = checkpoint_tokenizer(checkpoint)
        settings = encoder_settings(checkpoint, progress)
        tokenizer.save(staging / VLM_TOKENIZER_FILE)
        weights: dict[str, Any] = {k: v.numpy() for k, v in model.state_dict().items()}
        np.savez(staging / VLM_WEIGHTS_FILE, **weights)
        used = export_graphs(model, staging, exporter, progress)
        names = [MODEL_FILE, DECODE_FILE, VLM_WEIGHTS_FILE, VLM_TOKENIZER_FILE]
        names += [f"projector_{source}.onnx" for source in model.feature_widths]
        hashes = {name: sha256_file(staging / name) for name in names}
        proto = read_onnx(staging / MODEL_FILE)
        card = build_card(
            checkpoint, tokenizer, settings, hashes, used, onnx_opset(proto), max_batch
        )
        package = ModelPackage(root=staging, card=card)
        for graph in card.graphs:
            path = package.graph_path(graph)
            graph_inputs, graph_outputs = onnx_signature(read_onnx(path))
            check_graph_signature(card, graph_inputs, graph_outputs, path, graph)
        runtime = OnnxLanguage(package, check=False)
        progress(
            f"parity of prefill and decode on prompts of {list(PARITY_LENGTHS)} tokens in "
            f"calls of 1 and {max_batch} rows"
        )
        reference_length = card.inputs[0].shape[1]
        prefill_parity, decode_parity = [], []
        for seed, (lengths, rows) in enumerate(
            [
                ([reference_length], 1),
                ([PARITY_LENGTHS[0]], 1),
                ([reference_length, *PARITY_LENGTHS], max_batch),
            ]
        ):
            prefill, decode = language_parity(model, runtime, lengths, rows, seed)
            prefill_parity.append(prefill)
            decode_parity.append(decode)
        projector_results: dict[str, tuple[ParityResult, ...]] = {
            source: tuple(
                projector_parity(model, runtime, source, tokens, rows)
                for tokens, rows in ((visual_tokens(settings, source), 1), (3, max_batch))
            )
            for source in model.feature_widths
        }
        assert card.vlm is not None  # build_card wrote it
        vlm = card.vlm.model_copy(
            update={
                "decode": card.vlm.decode.model_copy(update={"parity": tuple(decode_parity)}),
                "projectors": {
                    source: graph.model_copy(update={"parity": projector_results[source]})
                    for source, graph in card.vlm.projectors.items()
                },
            }
        )
        export = card.export.model_copy(update={"parity": tuple(prefill_parity)})
        card = card.model_copy(update={"export": export, "vlm": vlm})
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return VLMExportResult(
        package=load_package(out),
        exporter=used,
        prefill_parity=tuple(prefill_parity),
        decode_parity=tuple(decode_parity),
        projector_parity=tuple(r for results in projector_results.values() for r in results),
    )
