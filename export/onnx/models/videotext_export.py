"""Export a trained video-text checkpoint to a ``video_text`` package.

The package holds two graphs, both with a dynamic batch:

- ``model.onnx``, the streaming clip encoder
  (:meth:`~orstream.training.models.videotext.VideoTextModel.streaming_step`): one frame
  ``frame`` [B, 3, H, W] and the state (the window of the last frames' features and their fill
  flags) in, ``clip_embedding`` [B, E] of the clip that frame ends and the next state out. The
  edge feeds it at the card's clip rate: the frames of a narrated training clip, one per call.
- ``text_encoder.onnx``: the frozen MiniLM and the trained projection, ``input_ids`` and
  ``attention_mask`` [B, :data:`TEXT_TOKENS`] in, ``text_embedding`` [B, E] out, so the edge
  embeds new prompts and search texts without torch. Its WordPiece vocabulary ships beside it
  (``vocab.txt``).

``step_prompts.npy`` holds the text embeddings of every step's description (the texts the model
was trained on for coarse segments); the card records the texts and the trained logit scale, so
zero-shot step probabilities are a softmax over scaled cosine similarities.

ONNX Runtime must reproduce PyTorch on both graphs before the package is written: the clip
encoder frame by frame with the state carried through, on phantom and random frames, in calls
of 1 and ``max_batch`` rows (within :data:`CLIP_TOLERANCE`); the text encoder on the step prompts
and phantom narrations, likewise. The golden reference is written last.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH
from orstream.export.onnx.card_parts import export_info, image_input, package_line
from orstream.export.onnx.models.workflow_export import (
    EXPORT_BATCH,
    OPSET,
    Exporter,
    LoadedCheckpoint,
    Progress,
    _labels,
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
from orstream.export.onnx.parity import check_parity, phantom_frames, random_frames
from orstream.labels import STEP_CODES
from orstream.package.card import (
    MODEL_FILE,
    STEP_PROMPTS_FILE,
    TEXT_ENCODER_FILE,
    TEXT_INPUTS,
    TEXT_OUTPUT,
    VIDEO_TEXT,
    VOCAB_FILE,
    Clip,
    Graph,
    Hashes,
    InputSpec,
    ModelCard,
    OutputSpec,
    ParityResult,
    StateSpec,
    StepSmoothing,
    TextEncoderSpec,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file
from orstream.package.signatures import check_graph_signature
from orstream.streams.phantom.narration import CLIP_S
from orstream.training.data.videotext_data import IMAGENET_MEAN, IMAGENET_STD, step_description
from orstream.training.models.text_encoder import TextEncoder, model_dir
from orstream.training.models.videotext import VideoTextModel
from orstream.wordpiece import WordPieceTokenizer

VIDEOTEXT_MODELS = frozenset({"ophclip_small"})
"""Registry names ``orstream export onnx`` exports as video-text packages."""
FRAME_INPUT = "frame"
CLIP_OUTPUT = "clip_embedding"
STATE_INPUT_PREFIX = "state_in."
STATE_OUTPUT_PREFIX = "state_out."
TEXT_TOKENS = 64
"""Ids per text, [CLS] and [SEP] included: room for a narration-length sentence; a longer
prompt is refused at the edge rather than cut."""
TEXT_TOLERANCE = 1e-4
"""Text embeddings: ONNX Runtime and PyTorch measure below 1e-6 apart."""
CLIP_TOLERANCE = 1e-3
"""Clip embeddings (unit vectors) after the state has carried 16 frames: noise frames measure
~8e-5 apart, so 1e-4 would fail a correct export by chance."""
PARITY_TEXTS = (
    "The suction clears blood from the sellar floor.",
    "Instruments in view: the Kerrison rongeur and the suction.",
    "the scope is outside the patient",
    "dural opening with a blade",
)
"""Texts besides the step prompts that the text graph's parity runs on: narration-like,
short and lower-case, as users type them."""
STEP_LABELS = "steps"


@dataclass(frozen=True)
class VideoTextExportResult:
    """The written package and the parity checks each graph passed."""

    package: ModelPackage
    exporter: str
    clip_parity: tuple[ParityResult, ...]
    text_parity: tuple[ParityResult, ...]

    def summary(self) -> list[str]:
        """What ``orstream export onnx`` prints: the package, the model and its parity."""
        lines: list[str] = []
        card = self.package.card
        text = self.package.text_section()
        lines.append(package_line(self.package))
        lines.append(
            f"model     {card.name} {card.version}  clip "
            f"encoder: frame {list(card.inputs[0].shape)} "
            f"at {card.clip.fps:g} fps, window {card.clip.length}, embedding "
            f"{list(card.outputs[0].shape)}  opset {card.export.opset} ({self.exporter})"
        )
        lines.append(
            f"text      {text.tokens} tokens -> {list(text.outputs[0].shape)}; "
            f"{len(text.prompts)} step prompts, logit scale {text.logit_scale:.1f}"
        )
        lines.append("parity    ONNX Runtime vs PyTorch, max abs diff:")
        for graph, results in (("clip", self.clip_parity), ("text", self.text_parity)):
            for parity in results:
                worst = max(parity.max_abs_diff.values())
                lines.append(
                    f"  {graph}  {parity.source:<8} {parity.frames:>3} items  batch "
                    f"{parity.batch:<3} {worst:.2e} (tolerance {parity.tolerance:g})"
                )
        return lines


class StreamingClipEncoder(nn.Module):
    """The clip encoder as :func:`~orstream.export.onnx.parity.check_parity` runs it: the
    model's streaming step, with the image normalisation and frame rate training used."""

    def __init__(self, model: VideoTextModel, fps: float) -> None:
        super().__init__()
        self.model = model
        self.input_size = model.input_size
        self.mean = tuple(float(v) for v in IMAGENET_MEAN)
        self.std = tuple(float(v) for v in IMAGENET_STD)
        self.sample_fps = fps

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.model.state_shapes()

    def initial_state(self, batch: int) -> tuple[Tensor, ...]:
        return self.model.initial_state(batch)

    def streaming_step(self, image: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        return self.model.streaming_step(image, *state)

    def forward(self, image: Tensor, window: Tensor, filled: Tensor) -> tuple[Tensor, ...]:
        return self.model.streaming_step(image, window, filled)


class TextGraph(nn.Module):
    """Token ids to embeddings in the clip space: MiniLM, then the trained projection."""

    def __init__(self, encoder: TextEncoder, model: VideoTextModel) -> None:
        super().__init__()
        self.encoder = encoder
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model.embed_text(self.encoder(input_ids, attention_mask))


@contextmanager
def _plain_attention() -> Iterator[None]:
    """Inference without grad takes torch's fused transformer-layer kernel, which no ONNX
    exporter knows; while this holds, layers run as their separate operators."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def clip_fps(checkpoint: LoadedCheckpoint, model: VideoTextModel) -> float:
    """The rate the clip encoder takes frames at: that of the training windows paired with step
    descriptions (``max_frames`` frames over ``segment_window_s`` seconds), the scale zero-shot
    steps are named at; without them, a narrated clip's (over
    :data:`~orstream.streams.phantom.narration.CLIP_S` seconds)."""
    data = checkpoint.record.get("data")
    window = data.get("segment_window_s") if isinstance(data, dict) else None
    seconds = float(window) if isinstance(window, int | float) and window > 0 else CLIP_S
    return model.max_frames / seconds


def build_card(
    checkpoint: LoadedCheckpoint,
    model: VideoTextModel,
    hashes: dict[str, str],
    prompts: tuple[str, ...],
    exporter: str,
    opset: int,
    max_batch: int,
) -> ModelCard:
    """The card of the video-text package exported from ``checkpoint``; ``hashes`` holds the
    sha256 of every file by its name."""
    height, width = model.input_size
    streaming = StreamingClipEncoder(model, clip_fps(checkpoint, model))
    embedding = int(model.positions.shape[1])
    text = TextEncoderSpec(
        sha256=hashes[TEXT_ENCODER_FILE],
        vocab_sha256=hashes[VOCAB_FILE],
        inputs=tuple(
            InputSpec(name=name, shape=(1, TEXT_TOKENS), dtype="int64") for name in TEXT_INPUTS
        ),
        outputs=(
            OutputSpec(
                name=TEXT_OUTPUT,
                shape=(1, embedding),
                dtype="float32",
                meaning="L2-normalised embedding of a text in the clip space",
                activation="none",
            ),
        ),
        prompts_sha256=hashes[STEP_PROMPTS_FILE],
        prompts=prompts,
        labels=STEP_LABELS,
        logit_scale=float(model.logit_scale.detach().exp().clamp(max=100.0)),
    )
    return ModelCard(
        name=checkpoint.model_name,
        task=VIDEO_TEXT,
        version=checkpoint.sha256[:12],
        inputs=(image_input(FRAME_INPUT, height, width, streaming.mean, streaming.std),),
        outputs=(
            OutputSpec(
                name=CLIP_OUTPUT,
                shape=(1, embedding),
                dtype="float32",
                meaning="L2-normalised embedding of the clip the current frame ends (the last "
                f"{model.max_frames} frames at the clip rate)",
                activation="none",
            ),
        ),
        labels={STEP_LABELS: _labels()[STEP_LABELS]},
        clip=Clip(length=model.max_frames, stride=1, fps=streaming.sample_fps),
        state=tuple(
            StateSpec(
                name=name,
                input=STATE_INPUT_PREFIX + name,
                output=STATE_OUTPUT_PREFIX + name,
                shape=(1, *shape),
                dtype="float32",
            )
            for name, shape in model.state_shapes().items()
        ),
        hashes=Hashes(checkpoint=checkpoint.sha256, model_onnx=hashes[MODEL_FILE]),
        training=training_record(checkpoint.record),
        export=export_info(exporter, opset, max_batch),
        text=text,
        # A clip embedding already pools the last seconds; waiting 3 clips more (the
        # recognizer's dwell) lags every step change by 3 s at 1 fps. On held-out phantom
        # cases 21-24 the zero-shot step score measured 0.378 with a dwell of 3, 0.454 with 1.
        step_smoothing=StepSmoothing(min_dwell=1),
    )


def check_text_parity(
    graph: TextGraph,
    backend: OnnxRuntimeBackend,
    tokenizer: WordPieceTokenizer,
    texts: tuple[str, ...],
    rows: int,
) -> ParityResult:
    """The text graph on ONNX Runtime against PyTorch on ``texts`` in calls of ``rows``.

    Raises:
        OrstreamError: an embedding differs by more than :data:`TEXT_TOLERANCE`.
    """
    worst = 0.0
    for start in range(0, len(texts), rows):
        ids, mask = tokenizer.encode_fixed(texts[start : start + rows], TEXT_TOKENS)
        actual = backend.infer({TEXT_INPUTS[0]: ids, TEXT_INPUTS[1]: mask})[TEXT_OUTPUT]
        with torch.no_grad():
            expected = graph(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        worst = max(worst, float(np.abs(actual - expected).max()))
    if worst > TEXT_TOLERANCE:
        raise OrstreamError(
            f"parity failed on texts at batch {rows}: {TEXT_OUTPUT} differs from PyTorch by "
            f"{worst:.3g} > {TEXT_TOLERANCE:g}"
        )
    return ParityResult(
        source="text",
        frames=len(texts),
        batch=rows,
        max_abs_diff={TEXT_OUTPUT: worst},
        tolerance=TEXT_TOLERANCE,
    )


def export_videotext_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 16,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> VideoTextExportResult:
    """Export ``checkpoint_path`` to the package folder ``out`` (module docstring), built in a
    staging folder and moved there only when every check passed.

    Raises:
        OrstreamError: bad checkpoint, existing ``out`` without ``overwrite``, ``max_batch``
            below 2, an export or checker failure, or parity above tolerance.
    """
    if parity_frames < 1:
        raise OrstreamError(f"--parity-frames must be at least 1, not {parity_frames}")
    check_max_batch(max_batch)
    out = Path(out)
    staging = prepare_output(out, overwrite)
    try:
        progress(f"loading {checkpoint_path}")
        checkpoint = load_model_checkpoint(checkpoint_path, progress)
        model = checkpoint.model
        if not isinstance(model, VideoTextModel):
            raise OrstreamError(
                f"{checkpoint_path}: {checkpoint.model_name!r} is no video-text model"
            )
        streaming = StreamingClipEncoder(model, clip_fps(checkpoint, model)).eval()
        height, width = model.input_size
        example = (torch.zeros(EXPORT_BATCH, 3, height, width), model.initial_state(EXPORT_BATCH))
        names = list(model.state_shapes())
        with _plain_attention():
            used = export_graph(
                streaming,
                example,
                staging / MODEL_FILE,
                (
                    [FRAME_INPUT, *(STATE_INPUT_PREFIX + n for n in names)],
                    [CLIP_OUTPUT, *(STATE_OUTPUT_PREFIX + n for n in names)],
                ),
                exporter,
                OPSET,
                progress,
            )
        progress("exporting the text encoder (MiniLM and the trained projection)")
        text_graph = TextGraph(TextEncoder.load(), model).eval()
        tokens = torch.zeros(EXPORT_BATCH, TEXT_TOKENS, dtype=torch.long)
        export_graph(
            text_graph,
            (tokens, torch.ones_like(tokens)),
            staging / TEXT_ENCODER_FILE,
            (list(TEXT_INPUTS), [TEXT_OUTPUT]),
            cast(Exporter, used),  # the exporter that worked for the clip graph
            OPSET,
            progress,
        )
        shutil.copyfile(model_dir() / VOCAB_FILE, staging / VOCAB_FILE)
        tokenizer = WordPieceTokenizer(staging / VOCAB_FILE)
        prompts = tuple(step_description(code) for code in STEP_CODES)
        ids, mask = tokenizer.encode_fixed(prompts, TEXT_TOKENS)
        with torch.no_grad():
            embedded = text_graph(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        np.save(staging / STEP_PROMPTS_FILE, embedded.astype(np.float32))
        proto = read_onnx(staging / MODEL_FILE)
        text_proto = read_onnx(staging / TEXT_ENCODER_FILE)
        hashes = {
            name: sha256_file(staging / name)
            for name in (MODEL_FILE, TEXT_ENCODER_FILE, VOCAB_FILE, STEP_PROMPTS_FILE)
        }
        card = build_card(checkpoint, model, hashes, prompts, used, onnx_opset(proto), max_batch)
        checks: tuple[tuple[Graph, onnx.ModelProto, str], ...] = (
            ("model", proto, MODEL_FILE),
            ("text", text_proto, TEXT_ENCODER_FILE),
        )
        for graph, graph_proto, file in checks:
            inputs, outputs = onnx_signature(graph_proto)
            check_graph_signature(card, inputs, outputs, staging / file, graph)
        package = ModelPackage(root=staging, card=card)
        clip_backend = OnnxRuntimeBackend()
        clip_backend.load(package)
        clip_parity = []
        for source, frames in (
            ("random", random_frames(parity_frames, height, width)),
            ("phantom", phantom_frames(parity_frames)),
        ):
            for rows in (1, max_batch):
                progress(f"clip encoder parity on {len(frames)} {source} frames, batch {rows}")
                result = check_parity(
                    streaming, clip_backend, card, frames, source, CLIP_TOLERANCE, rows
                )
                worst = max(result.max_abs_diff.values())
                if worst > CLIP_TOLERANCE:
                    raise OrstreamError(
                        f"parity failed on {source} frames at batch {rows}: the clip encoder "
                        f"differs from PyTorch by {worst:.3g} > {CLIP_TOLERANCE:g}"
                    )
                clip_parity.append(result)
        text_backend = OnnxRuntimeBackend(graph="text")
        text_backend.load(package)
        texts = prompts + PARITY_TEXTS
        progress(f"text encoder parity on {len(texts)} texts, batch 1 and {max_batch}")
        text_parity = tuple(
            check_text_parity(text_graph, text_backend, tokenizer, texts, rows)
            for rows in (1, max_batch)
        )
        text = package.text_section().model_copy(update={"parity": text_parity})
        export = card.export.model_copy(update={"parity": tuple(clip_parity)})
        card = card.model_copy(update={"text": text, "export": export})
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return VideoTextExportResult(
        package=load_package(out),
        exporter=used,
        clip_parity=tuple(clip_parity),
        text_parity=text_parity,
    )
