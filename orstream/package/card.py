"""The model card (``card.json``): the schema of what a package holds and how to run it.

A package is a folder holding ``card.json`` and ``model.onnx``; loading and checking its files
is :mod:`orstream.package.loading`. Every package may hold a golden reference,
``reference.npz``: for each of its graphs an input and the outputs ONNX Runtime on CPU in fp32
gives for it, which every edge backend must reproduce before it serves.

An interactive segmentation package also holds a prompt decoder, ``decoder.onnx``, and the text
prompt embeddings of its classes, ``text_prompts.npy``, both described by the card's optional
``decoder`` section (:class:`PromptDecoderSpec`); ``model.onnx`` is then the image encoder.

A video-text package (task ``video_text``) also holds a text encoder, ``text_encoder.onnx``, its
WordPiece vocabulary, ``vocab.txt``, and the embeddings of its step prompts,
``step_prompts.npy``, described by the card's ``text`` section (:class:`TextEncoderSpec`);
``model.onnx`` is then the streaming clip encoder.

A tokenizer package (task ``tokenizer``) also holds a detokenizer, ``detokenizer.onnx``,
described by the card's ``tokenizer`` section (:class:`TokenizerSpec`); ``model.onnx`` is then
the encoder, an image to its grid of discrete tokens.

A vision-language package (task ``vlm``) holds its language model as two graphs sharing one
KV cache layout: ``model.onnx`` is the prefill (a prompt's embeddings to logits and the cache)
and ``decode.onnx`` one step on top of a past; besides them the projectors of the vision sources,
the weights (``weights.npz``: the token embedding the runtime looks ids up in, and everything
the torch runtime rebuilds the model from), ``tokenizer.json`` and the settings of the frozen
vision encoders the features came from, all in the card's ``vlm`` section
(:class:`VLMSpec`).

A slide package (task ``slide``) also holds a slide encoder, ``slide_encoder.onnx``, described
by the card's ``slide`` section (:class:`SlideEncoderSpec`) with the tiling it was trained on;
``model.onnx`` is then the patch encoder, a tile to its features.

The card describes the ONNX graph's tensors, how to turn a camera frame into the image input,
what the outputs mean, the labels, the temporal state a streaming model carries between calls,
content hashes, where the weights came from and how the export was checked. The ONNX graph's
inputs are ``card.inputs`` followed by each state's ``input``; its outputs are ``card.outputs``
followed by each state's ``output``.

Shapes in the card are those of one call on one item: batch 1. A package whose graphs take a
dynamic batch says so in ``export.batch`` (:attr:`ModelCard.dynamic_batch`): then axis 0 of
every input, output and state tensor of every graph in it (``model.onnx`` and the prompt
decoder alike) is a symbolic batch, rows are computed independently of each other, and a
backend takes up to ``export.max_batch`` rows per call by default (:attr:`ModelCard.max_batch`,
the largest batch the package was checked at). Cards without the field are batch 1.

This module is core: numpy, pydantic and the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from orstream.errors import OrstreamError

CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"
DECODER_FILE = "decoder.onnx"
TEXT_PROMPTS_FILE = "text_prompts.npy"
REFERENCE_FILE = "reference.npz"
TEXT_ENCODER_FILE = "text_encoder.onnx"
VOCAB_FILE = "vocab.txt"
STEP_PROMPTS_FILE = "step_prompts.npy"
DETOKENIZER_FILE = "detokenizer.onnx"
SLIDE_ENCODER_FILE = "slide_encoder.onnx"
CARD_FORMAT: Literal[1] = 1
INTERACTIVE_SEGMENTATION = "interactive_segmentation"
"""The task of a package with a prompt decoder (``model.onnx`` is then the image encoder)."""
VIDEO_TEXT = "video_text"
"""The task of a package with a text encoder (``model.onnx`` is then the clip encoder)."""
TOKENIZER = "tokenizer"
"""The task of a package with a detokenizer (``model.onnx`` is then the image encoder)."""
SLIDE = "slide"
"""The task of a package with a slide encoder (``model.onnx`` is then the patch encoder)."""
INSTRUMENT_CLASSIFICATION = "instrument_classification"
"""The task of a package that names an instrument from its tip crop (class 0: no instrument)."""
VLM = "vlm"
"""The task of a vision-language package (``model.onnx`` is then the language model's prefill)."""
DECODE_FILE = "decode.onnx"
VLM_WEIGHTS_FILE = "weights.npz"
VLM_TOKENIZER_FILE = "tokenizer.json"
VLM_EMBEDS = "inputs_embeds"
VLM_MASK = "attention_mask"
VLM_PAST = ("past_keys", "past_values")
VLM_OUTPUTS = ("logits", "keys", "values")
"""The language model's tensors. Prefill: ``inputs_embeds`` float32 [B, T, W] and
``attention_mask`` int64 [B, T] (1 a real token, 0 left padding) -> ``logits`` [B, T, V],
``keys`` and ``values`` [B, layers, kv_heads, T, head_dim]. Decode: ``inputs_embeds`` [B, 1, W],
``attention_mask`` [B, P + 1] over the past and the new token, ``past_keys`` and
``past_values`` [B, layers, kv_heads, P, head_dim] -> ``logits`` [B, V] of the new token and
the cache grown to P + 1."""
VLM_FEATURES = "features"
VLM_PROJECTED = "embeddings"
"""A projector's tensors: vision features float32 [B, N, F] -> embeddings [B, N, W]."""
VLM_LENGTH_AXES: dict[str, dict[str, int]] = {
    "model": {VLM_EMBEDS: 1, VLM_MASK: 1, "logits": 1, "keys": 3, "values": 3},
    "decode": {VLM_MASK: 1, "past_keys": 3, "past_values": 3, "keys": 3, "values": 3},
    "projector_surgical": {VLM_FEATURES: 1, VLM_PROJECTED: 1},
    "projector_slide": {VLM_FEATURES: 1, VLM_PROJECTED: 1},
}
"""The symbolic sequence axis (tokens, past tokens, visual tokens) of each tensor of a
vision-language package's graphs; the card's shapes give them at the golden reference's sizes."""

IMAGE_EMBEDDINGS = "image_embeddings"
DECODER_INPUTS = (
    IMAGE_EMBEDDINGS,
    "points",
    "point_labels",
    "boxes",
    "mask_prompt",
    "text_embedding",
    "has_box",
    "has_mask",
    "has_text",
)
"""The prompt decoder's inputs, in graph order (all float32, batch 1): the image embedding
[1, E, h, w]; points [1, N, 2] (x, y in model input pixels) with point_labels [1, N] (1
positive, 0 negative, -1 an unused slot); boxes [1, 4] (x0, y0, x1, y1 input pixels);
mask_prompt [1, 1, H/4, W/4] logits; text_embedding [1, T]; and 0/1 flags [1] switching the
box, mask and text prompts on."""
DECODER_OUTPUTS = ("masks", "iou")
"""The prompt decoder's outputs: candidate mask logits [1, K, H/4, W/4] and their predicted IoU
[1, K]."""
TEXT_INPUTS = ("input_ids", "attention_mask")
"""The text encoder's inputs, int64 [1, L]: WordPiece ids (``[CLS]`` text ``[SEP]``, then
``[PAD]``) and 1 over the tokens, 0 over the padding."""
TEXT_OUTPUT = "text_embedding"
"""The text encoder's output, float32 [1, E]: the L2-normalised embedding in the clip space."""
TOKEN_INDICES = "indices"
"""The tokens of one image, int64 [1, G, h, w]: the encoder's only output, the detokenizer's only
input; entry [0, g, y, x] is the code of sub-codebook g chosen at grid position (y, x)."""
RECONSTRUCTION = "image"
"""The detokenizer's only output, float32 [1, 3, H, W]: the rebuilt image, RGB in 0..1."""
PATCH_FEATURES = "features"
"""The patch encoder's only output, float32 [1, F], and the slide encoder's only input, float32
[1, N, F]: one row per tile of the slide."""
SLIDE_OUTPUTS = ("subtype_logits", "fraction", "tile_logits", "attention")
"""The slide encoder's outputs, float32: slide class logits [1, S], the tumour share of the
tissue [1] (the mean of the tiles' tumour probabilities), tumour logits per tile [1, N] and
attention per tile [1, N] (summing to 1)."""
TILE_AXIS_NAME = "tiles"
"""The symbolic axis 1 of the slide encoder's per-tile tensors: a slide has any number of tiles."""
TILE_AXIS_TENSORS = (PATCH_FEATURES, "tile_logits", "attention")
"""The slide encoder's tensors whose axis 1 is :data:`TILE_AXIS_NAME`."""

DType = Literal["float32", "float16", "float64", "int64", "int32", "uint8", "bool"]
SHA256_PATTERN = r"^[0-9a-f]{64}$"
FILE_NAME_PATTERN = r"^[^/\\]+$"
"""A plain file name inside the package folder (no folders, so a card never points outside)."""
Graph = Literal[
    "model",
    "decoder",
    "text",
    "detokenizer",
    "slide",
    "decode",
    "projector_surgical",
    "projector_slide",
]
"""Which graph of a package: ``model.onnx``, the prompt decoder of an interactive segmentation
package, the text encoder of a video-text package, the detokenizer of a tokenizer package, or
the slide encoder of a slide package."""
GRAPH_NAMES: dict[Graph, str] = {
    "model": "model.onnx",
    "decoder": "prompt decoder",
    "text": "text encoder",
    "detokenizer": "detokenizer",
    "slide": "slide encoder",
    "decode": "decode graph",
    "projector_surgical": "surgical projector",
    "projector_slide": "slide projector",
}
"""Each graph as error messages name it."""
GraphShape = tuple[int | str | None, ...]
TensorTypes = dict[str, tuple[tuple[int, ...], str]]
"""Tensors as a card lists them: name -> (shape, numpy dtype name)."""
"""A tensor shape as an ONNX graph declares it: fixed dims are ints, symbolic ones names or None."""


class _Strict(BaseModel):
    """Unknown keys are errors, so a typo in a card never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Resize(_Strict):
    """Resize a camera frame to the model's input size before normalising."""

    height: int = Field(gt=0)
    width: int = Field(gt=0)
    interpolation: Literal["area", "linear", "cubic", "nearest"] = "area"


class InputSpec(_Strict):
    """One non-state input of the graph.

    For an image input (``layout`` set): an RGB uint8 frame is resized per ``resize``, scaled by
    ``1 / scale`` (to 0..1 for ``scale=255``), normalised as ``(x - mean) / std`` per channel
    and laid out as ``layout`` with a batch dimension of 1.
    """

    name: str
    shape: tuple[int, ...]
    dtype: DType
    layout: Literal["NCHW"] | None = None
    color: Literal["RGB"] | None = None
    resize: Resize | None = None
    scale: float | None = Field(default=None, gt=0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    @model_validator(mode="after")
    def _image_fields_agree(self) -> InputSpec:
        if self.layout is None:
            return self
        if self.resize is None or self.scale is None or self.mean is None or self.std is None:
            raise ValueError("an image input (layout set) needs resize, scale, mean and std")
        if len(self.shape) != 4 or self.shape[1] != 3:
            raise ValueError(f"an NCHW image needs shape [1, 3, H, W], not {list(self.shape)}")
        if (self.resize.height, self.resize.width) != self.shape[2:]:
            raise ValueError("resize height/width must equal the input's H and W")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self


class OutputSpec(_Strict):
    """One non-state output of the graph and how to read it."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    meaning: str
    activation: Literal["softmax", "sigmoid", "none"] = Field(
        description="what turns these values into probabilities (they are logits otherwise)"
    )
    labels: str | None = Field(default=None, description="key in card.labels naming the classes")


class Label(_Strict):
    """Class ``index`` of an output is PitVis code ``code``."""

    index: int = Field(ge=0)
    code: int
    name: str


class Clip(_Strict):
    """How the edge feeds the graph: ``length`` frames per call, advancing ``stride`` frames,
    sampled from the video at ``fps`` frames per second."""

    length: int = Field(gt=0)
    stride: int = Field(gt=0)
    fps: float = Field(gt=0)


class StateSpec(_Strict):
    """A temporal state tensor: fed back from ``output`` to ``input`` on the next call."""

    name: str
    input: str
    output: str
    shape: tuple[int, ...]
    dtype: DType
    initial: Literal["zeros"] = "zeros"
    reset_on_discontinuity: bool = True


class StepSmoothing(_Strict):
    """Online smoothing of the step output, as validation scored it in training
    (:class:`orstream.step_smoothing.StepSmoother`)."""

    min_dwell: int = Field(default=3, ge=1)


class Hashes(_Strict):
    """sha256 of the files the package came from and holds."""

    checkpoint: str | None = Field(default=None, pattern=SHA256_PATTERN)
    model_onnx: str = Field(pattern=SHA256_PATTERN)
    reference: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        description="sha256 of reference.npz (None: the package has no golden reference)",
    )


class Training(_Strict):
    """Where the weights came from, as the training run recorded it."""

    data: dict[str, JsonValue] = {}
    cases: dict[str, list[int]] = Field(
        default={}, description="video ids per split, e.g. train and val"
    )
    metrics: dict[str, float] = {}


class ParityResult(_Strict):
    """ONNX Runtime against PyTorch over ``frames`` frames, state carried frame to frame, in
    calls of ``batch`` rows (each row its own stream of frames)."""

    source: str = Field(description="the kind of frames: random, phantom, video")
    frames: int = Field(gt=0)
    batch: int = Field(default=1, ge=1)
    max_abs_diff: dict[str, float]
    tolerance: float


BATCH_AXIS_NAME = "batch"
"""The name of the symbolic axis 0 in the graphs of a package with a dynamic batch."""
BatchMode = Literal[1, "dynamic"]
"""1: every graph runs one item per call; "dynamic": axis 0 of every graph tensor is a batch."""


class ExportInfo(_Strict):
    """How ``model.onnx`` was made and checked, and the batch its graphs take."""

    exporter: str
    opset: int
    batch: BatchMode = Field(
        default=1, description='1, or "dynamic": axis 0 of every tensor of every graph is a batch'
    )
    max_batch: int = Field(
        default=1,
        ge=1,
        description="the largest batch the graphs were checked at: what backends take by default",
    )
    torch_version: str
    onnx_version: str
    onnxruntime_version: str
    parity: tuple[ParityResult, ...] = ()

    @model_validator(mode="after")
    def _batch_fits(self) -> ExportInfo:
        if self.batch == 1 and self.max_batch != 1:
            raise ValueError(f'max_batch {self.max_batch} needs batch "dynamic", not 1')
        return self


class PromptDecoderSpec(_Strict):
    """The prompt decoder of an interactive segmentation package (see :data:`DECODER_INPUTS`).

    ``text_file`` holds float32 [C, T]: row i is the sentence embedding of
    ``prompt_template.format(name)`` for class i of ``card.labels[labels]``.
    """

    file: str = Field(default=DECODER_FILE, pattern=FILE_NAME_PATTERN)
    sha256: str = Field(pattern=SHA256_PATTERN)
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    text_file: str = Field(default=TEXT_PROMPTS_FILE, pattern=FILE_NAME_PATTERN)
    text_sha256: str = Field(pattern=SHA256_PATTERN)
    labels: str = Field(
        default="segmentation", description="key in card.labels naming the text rows' classes"
    )
    prompt_template: str = Field(description="the sentence a class name is put into, with {}")
    parity: tuple[ParityResult, ...] = ()

    @model_validator(mode="after")
    def _decoder_signature(self) -> PromptDecoderSpec:
        names = tuple(t.name for t in self.inputs)
        if names != DECODER_INPUTS:
            raise ValueError(f"decoder inputs must be {list(DECODER_INPUTS)}, not {list(names)}")
        if tuple(t.name for t in self.outputs) != DECODER_OUTPUTS:
            raise ValueError(f"decoder outputs must be {list(DECODER_OUTPUTS)}")
        tensors: dict[str, InputSpec | OutputSpec] = {t.name: t for t in self.inputs}
        tensors.update({t.name: t for t in self.outputs})
        if any(t.dtype != "float32" for t in tensors.values()):
            raise ValueError("every decoder input and output must be float32")
        if any(t.layout is not None for t in self.inputs):
            raise ValueError("decoder inputs are not images (no layout)")
        mask = self.mask_size
        slots = self.point_slots
        candidates = tensors["masks"].shape[1] if len(tensors["masks"].shape) == 4 else 0
        expected = {
            "points": (1, slots, 2),
            "point_labels": (1, slots),
            "boxes": (1, 4),
            "mask_prompt": (1, 1, *mask),
            "has_box": (1,),
            "has_mask": (1,),
            "has_text": (1,),
            "masks": (1, candidates, *mask),
            "iou": (1, candidates),
        }
        for name, shape in expected.items():
            if tensors[name].shape != shape or min(shape) < 1:
                raise ValueError(
                    f"decoder tensor {name!r} has shape {list(tensors[name].shape)}, "
                    f"expected {list(shape)}"
                )
        embeddings, text = tensors[IMAGE_EMBEDDINGS].shape, tensors["text_embedding"].shape
        if len(embeddings) != 4 or embeddings[0] != 1:
            raise ValueError(f"decoder {IMAGE_EMBEDDINGS!r} must be [1, E, h, w]")
        if len(text) != 2 or text[0] != 1:
            raise ValueError("decoder 'text_embedding' must be [1, T]")
        if "{}" not in self.prompt_template:
            raise ValueError("prompt_template must hold {} where the class name goes")
        return self

    @property
    def point_slots(self) -> int:
        """How many points one decoder call takes (N of the points input)."""
        shape = self.inputs[DECODER_INPUTS.index("points")].shape
        return shape[1] if len(shape) == 3 else 0

    @property
    def mask_size(self) -> tuple[int, int]:
        """(H/4, W/4): size of the mask prompt and of the output mask logits."""
        shape = self.inputs[DECODER_INPUTS.index("mask_prompt")].shape
        return (shape[2], shape[3]) if len(shape) == 4 else (0, 0)

    @property
    def text_dim(self) -> int:
        """Width T of a text prompt embedding."""
        return self.inputs[DECODER_INPUTS.index("text_embedding")].shape[-1]

    def graph_inputs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """The decoder graph's inputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.inputs}

    def graph_outputs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """The decoder graph's outputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.outputs}


class TextEncoderSpec(_Strict):
    """The text side of a video-text package (see :data:`TEXT_INPUTS`, :data:`TEXT_OUTPUT`).

    Texts are tokenised with ``vocab_file`` (BERT's uncased WordPiece) to exactly ``tokens``
    ids, special tokens included; a longer text is refused, not cut, so a prompt never means
    less than it says. ``prompts_file`` holds float32 [C, E]: row i is the text embedding of
    ``prompts[i]``, the description of class i of ``card.labels[labels]``. Zero-shot
    probabilities are ``softmax(logit_scale * clip_embedding @ prompts.T)``.
    """

    file: str = Field(default=TEXT_ENCODER_FILE, pattern=FILE_NAME_PATTERN)
    sha256: str = Field(pattern=SHA256_PATTERN)
    vocab_file: str = Field(default=VOCAB_FILE, pattern=FILE_NAME_PATTERN)
    vocab_sha256: str = Field(pattern=SHA256_PATTERN)
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    prompts_file: str = Field(default=STEP_PROMPTS_FILE, pattern=FILE_NAME_PATTERN)
    prompts_sha256: str = Field(pattern=SHA256_PATTERN)
    prompts: tuple[str, ...] = Field(min_length=2, description="the text of each prompt row")
    labels: str = Field(default="steps", description="key in card.labels naming the prompts")
    logit_scale: float = Field(gt=0, description="the trained scale of cosine similarities")
    parity: tuple[ParityResult, ...] = ()

    @model_validator(mode="after")
    def _text_signature(self) -> TextEncoderSpec:
        if tuple(t.name for t in self.inputs) != TEXT_INPUTS:
            raise ValueError(f"text inputs must be {list(TEXT_INPUTS)}")
        if tuple(t.name for t in self.outputs) != (TEXT_OUTPUT,):
            raise ValueError(f"text outputs must be [{TEXT_OUTPUT!r}]")
        ids, mask = self.inputs
        if ids.shape != mask.shape or len(ids.shape) != 2 or ids.shape[0] != 1:
            raise ValueError("input_ids and attention_mask must both be [1, L]")
        if ids.shape[1] < 3:
            raise ValueError("the text encoder must take at least 3 tokens ([CLS] x [SEP])")
        if ids.dtype != "int64" or mask.dtype != "int64" or ids.layout or mask.layout:
            raise ValueError("input_ids and attention_mask must be int64 and not images")
        output = self.outputs[0]
        if output.dtype != "float32" or len(output.shape) != 2 or output.shape[0] != 1:
            raise ValueError(f"{TEXT_OUTPUT!r} must be float32 [1, E]")
        return self

    @property
    def tokens(self) -> int:
        """L: the ids of one text, special tokens and padding included."""
        return self.inputs[0].shape[1]

    @property
    def width(self) -> int:
        """E: the width of the shared embedding space."""
        return self.outputs[0].shape[1]

    def graph_inputs(self) -> TensorTypes:
        """The text graph's inputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.inputs}

    def graph_outputs(self) -> TensorTypes:
        """The text graph's outputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.outputs}


class IndexParity(_Strict):
    """The encoder's token indices on ONNX Runtime against PyTorch over ``frames`` frames, in
    calls of ``batch`` rows: the share of indices that are equal.

    Indices come from an argmax over cosine similarities, so two codes almost equally near a
    latent may swap under float rounding differences of ~1e-6; exact equality of every index is
    too strict, a share below ``minimum`` means the graph computes something else.
    """

    source: str = Field(description="the kind of frames: phantom, random")
    frames: int = Field(gt=0)
    batch: int = Field(default=1, ge=1)
    equal: float = Field(ge=0, le=1, description="the share of indices equal to PyTorch's")
    minimum: float = Field(gt=0, le=1, description="the share below which the export failed")


class TokenizerSpec(_Strict):
    """The detokenizer of a tokenizer package (see :data:`TOKEN_INDICES`,
    :data:`RECONSTRUCTION`).

    ``model.onnx`` turns an image into ``groups`` indices per position of a ``grid`` of positions,
    each index one of the ``codes`` codes of its sub-codebook; the detokenizer turns them back
    into an image, RGB in 0..1, at the encoder's input size. A token therefore carries
    ``groups * log2(codes)`` bits.
    """

    file: str = Field(default=DETOKENIZER_FILE, pattern=FILE_NAME_PATTERN)
    sha256: str = Field(pattern=SHA256_PATTERN)
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    groups: int = Field(ge=1, description="sub-codebooks: indices per grid position")
    codes: int = Field(ge=2, description="codes in each sub-codebook")
    grid: tuple[int, int] = Field(description="(h, w): token positions per image")
    index_parity: tuple[IndexParity, ...] = Field(
        default=(), description="the encoder's indices, ONNX Runtime against PyTorch"
    )
    parity: tuple[ParityResult, ...] = Field(
        default=(), description="the detokenizer's image, ONNX Runtime against PyTorch"
    )

    @model_validator(mode="after")
    def _tokenizer_signature(self) -> TokenizerSpec:
        if tuple(t.name for t in self.inputs) != (TOKEN_INDICES,):
            raise ValueError(f"detokenizer inputs must be [{TOKEN_INDICES!r}]")
        if tuple(t.name for t in self.outputs) != (RECONSTRUCTION,):
            raise ValueError(f"detokenizer outputs must be [{RECONSTRUCTION!r}]")
        indices, image = self.inputs[0], self.outputs[0]
        expected = (1, self.groups, *self.grid)
        if indices.dtype != "int64" or indices.layout is not None or indices.shape != expected:
            raise ValueError(
                f"{TOKEN_INDICES!r} must be int64 {list(expected)} (groups and grid), not "
                f"{indices.dtype} {list(indices.shape)}"
            )
        if min(self.grid) < 1:
            raise ValueError(f"grid {list(self.grid)} must be positive")
        if image.dtype != "float32" or len(image.shape) != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"{RECONSTRUCTION!r} must be float32 [1, 3, H, W]")
        return self

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the images the detokenizer makes."""
        shape = self.outputs[0].shape
        return (shape[2], shape[3])

    def graph_inputs(self) -> TensorTypes:
        """The detokenizer graph's inputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.inputs}

    def graph_outputs(self) -> TensorTypes:
        """The detokenizer graph's outputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.outputs}


class SlideEncoderSpec(_Strict):
    """The slide encoder of a slide package (see :data:`PATCH_FEATURES`, :data:`SLIDE_OUTPUTS`)
    and the tiling both encoders were trained on.

    Tiles of ``tile`` pixels at ``mpp`` µm per pixel, kept where the tissue mask covers at least
    ``min_tissue`` of them, go through ``model.onnx`` (the patch encoder); the features of all a
    slide's tiles, [1, N, F], go through the slide encoder at once. N is symbolic in the graph
    (axis 1, :data:`TILE_AXIS_NAME`); the card's shapes give it as ``tiles``, the count of the
    golden reference. Class i of ``subtype_logits`` is ``card.labels[labels][i]``; class 0 is
    no tumour.
    """

    file: str = Field(default=SLIDE_ENCODER_FILE, pattern=FILE_NAME_PATTERN)
    sha256: str = Field(pattern=SHA256_PATTERN)
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    mpp: float = Field(gt=0, description="µm per tile pixel")
    tile: int = Field(gt=0, description="tile side in pixels")
    min_tissue: float = Field(ge=0, le=1, description="least tissue share of a kept tile")
    labels: str = Field(default="subtypes", description="key in card.labels naming the classes")
    parity: tuple[ParityResult, ...] = ()

    @model_validator(mode="after")
    def _slide_signature(self) -> SlideEncoderSpec:
        if tuple(t.name for t in self.inputs) != (PATCH_FEATURES,):
            raise ValueError(f"slide encoder inputs must be [{PATCH_FEATURES!r}]")
        if tuple(t.name for t in self.outputs) != SLIDE_OUTPUTS:
            raise ValueError(f"slide encoder outputs must be {list(SLIDE_OUTPUTS)}")
        features = self.inputs[0]
        if features.dtype != "float32" or len(features.shape) != 3 or features.layout:
            raise ValueError(f"{PATCH_FEATURES!r} must be float32 [1, N, F]")
        tiles = features.shape[1]
        expected = {"fraction": (1,), "tile_logits": (1, tiles), "attention": (1, tiles)}
        for output in self.outputs:
            if output.dtype != "float32":
                raise ValueError(f"slide encoder output {output.name!r} must be float32")
            if output.name in expected and output.shape != expected[output.name]:
                raise ValueError(
                    f"slide encoder output {output.name!r} must be {list(expected[output.name])}"
                )
        return self

    @property
    def tiles(self) -> int:
        """N as the card gives it (the golden reference's tile count)."""
        return self.inputs[0].shape[1]

    def graph_inputs(self) -> TensorTypes:
        """The slide graph's inputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.inputs}

    def graph_outputs(self) -> TensorTypes:
        """The slide graph's outputs in order: name -> (shape, dtype)."""
        return {t.name: (t.shape, t.dtype) for t in self.outputs}


VisionSource = Literal["surgical", "slide"]
"""Where a vision-language model's visual tokens come from: surgical frames or a slide."""


class VLMGraphSpec(_Strict):
    """One graph of a vision-language package besides ``model.onnx``."""

    file: str = Field(pattern=FILE_NAME_PATTERN)
    sha256: str = Field(pattern=SHA256_PATTERN)
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    parity: tuple[ParityResult, ...] = ()

    def graph_inputs(self) -> TensorTypes:
        return {t.name: (t.shape, t.dtype) for t in self.inputs}

    def graph_outputs(self) -> TensorTypes:
        return {t.name: (t.shape, t.dtype) for t in self.outputs}


class VLMLanguageSpec(_Strict):
    """The language model's sizes and special ids (what the runtime lays prompts out with)."""

    vocab_size: int = Field(ge=8)
    width: int = Field(ge=1)
    layers: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    mlp_hidden: int = Field(ge=1)
    rope_base: float = Field(gt=0)
    image_id: int = Field(ge=0)
    eos_id: int = Field(ge=0)
    pad_id: int = Field(ge=0)


class VLMEncoderSettings(_Strict):
    """The frozen vision encoders the model's features came from, as its training set them:
    a request is only answered right with features made the same way.

    ``frame_package`` is the interactive segmentation package whose image encoder made the
    frame tokens (its ``model.onnx`` sha256 recorded), each frame pooled to ``frame_grid``
    cells, a clip sampled to ``window_s`` frames; ``instrument_package`` the instrument
    classifier that made each frame's instrument token (None: frames have none);
    ``slide_package`` the slide package whose patch encoder made the tile features (None: the
    shipped one), averaged over ``slide_regions``."""

    frame_package: str | None = None
    frame_package_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    frame_grid: tuple[int, int] = (2, 2)
    instrument_package: str | None = None
    instrument_package_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    slide_package: str | None = None
    slide_package_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    slide_regions: tuple[int, int] = (4, 4)
    window_s: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _positive(self) -> VLMEncoderSettings:
        if min(self.frame_grid) < 1 or min(self.slide_regions) < 1:
            raise ValueError("frame_grid and slide_regions must be positive")
        return self

    @property
    def tokens_per_frame(self) -> int:
        """The grid's cells, and the instrument token when there is one."""
        return self.frame_grid[0] * self.frame_grid[1] + (self.instrument_package is not None)


class VLMSpec(_Strict):
    """The vision-language package's graphs and files besides ``model.onnx`` (the prefill).

    ``decode`` is one step through the KV cache; ``projectors`` maps each vision source
    (``surgical``, ``slide``) to its projector graph; ``weights_file`` holds every weight of the
    model by its torch name (``language.embedding.weight`` is the token embedding);
    ``tokenizer_file`` the text tokenizer.
    """

    decode: VLMGraphSpec
    projectors: dict[VisionSource, VLMGraphSpec] = Field(min_length=1)
    weights_file: str = Field(default=VLM_WEIGHTS_FILE, pattern=FILE_NAME_PATTERN)
    weights_sha256: str = Field(pattern=SHA256_PATTERN)
    tokenizer_file: str = Field(default=VLM_TOKENIZER_FILE, pattern=FILE_NAME_PATTERN)
    tokenizer_sha256: str = Field(pattern=SHA256_PATTERN)
    language: VLMLanguageSpec
    encoders: VLMEncoderSettings

    @model_validator(mode="after")
    def _vlm_signature(self) -> VLMSpec:
        names = (
            tuple(t.name for t in self.decode.inputs),
            tuple(t.name for t in self.decode.outputs),
        )
        if names != ((VLM_EMBEDS, VLM_MASK, *VLM_PAST), VLM_OUTPUTS):
            raise ValueError(
                f"decode tensors must be {[VLM_EMBEDS, VLM_MASK, *VLM_PAST]} -> {list(VLM_OUTPUTS)}"
            )
        for source, projector in self.projectors.items():
            inputs = tuple(t.name for t in projector.inputs)
            outputs = tuple(t.name for t in projector.outputs)
            if (inputs, outputs) != ((VLM_FEATURES,), (VLM_PROJECTED,)):
                raise ValueError(
                    f"the {source} projector must map {VLM_FEATURES!r} to {VLM_PROJECTED!r}"
                )
            if projector.outputs[0].shape[-1] != self.language.width:
                raise ValueError(
                    f"the {source} projector does not give {self.language.width}-wide embeddings"
                )
        return self

    def feature_width(self, source: str) -> int:
        """F of a source's features."""
        return self.projectors[source].inputs[0].shape[-1]  # type: ignore[index]


class ModelCard(_Strict):
    """Everything the edge needs to run ``model.onnx`` (see the module docstring)."""

    format: Literal[1] = CARD_FORMAT
    name: str
    task: str
    version: str
    inputs: tuple[InputSpec, ...] = Field(min_length=1)
    outputs: tuple[OutputSpec, ...] = Field(min_length=1)
    labels: dict[str, tuple[Label, ...]] = {}
    clip: Clip
    state: tuple[StateSpec, ...] = ()
    thresholds: dict[str, float] = Field(
        default={}, description="decision threshold on the probability of a sigmoid output"
    )
    step_smoothing: StepSmoothing = StepSmoothing()
    hashes: Hashes
    training: Training = Training()
    export: ExportInfo
    decoder: PromptDecoderSpec | None = Field(
        default=None, description="the prompt decoder of an interactive segmentation package"
    )
    text: TextEncoderSpec | None = Field(
        default=None, description="the text encoder and prompts of a video-text package"
    )
    tokenizer: TokenizerSpec | None = Field(
        default=None, description="the detokenizer and codebooks of a tokenizer package"
    )
    slide: SlideEncoderSpec | None = Field(
        default=None, description="the slide encoder and tiling of a slide package"
    )
    vlm: VLMSpec | None = Field(
        default=None, description="the decode graph, projectors and files of a vlm package"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        names = [t.name for t in self.inputs] + [t.name for t in self.outputs]
        names += [s.input for s in self.state] + [s.output for s in self.state]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"tensor names used twice: {duplicates}")
        outputs = {o.name: o for o in self.outputs}
        for output in self.outputs:
            if output.labels is None:
                continue
            if output.labels not in self.labels:
                raise ValueError(f"output {output.name!r} names unknown labels {output.labels!r}")
            count = len(self.labels[output.labels])
            if output.shape[-1] != count:
                raise ValueError(
                    f"output {output.name!r} has {output.shape[-1]} classes but labels "
                    f"{output.labels!r} has {count}"
                )
        for key, entries in self.labels.items():
            if [e.index for e in entries] != list(range(len(entries))):
                raise ValueError(f"labels {key!r} must list indices 0..{len(entries) - 1} in order")
        for name, threshold in self.thresholds.items():
            if name not in outputs or outputs[name].activation != "sigmoid":
                raise ValueError(f"threshold for {name!r}, which is not a sigmoid output")
            if not 0.0 < threshold < 1.0:
                raise ValueError(f"threshold for {name!r} must be in (0, 1), not {threshold}")
        self._decoder_fits()
        self._text_fits()
        self._tokenizer_fits()
        self._slide_fits()
        self._vlm_fits()
        return self

    def _decoder_fits(self) -> None:
        """The decoder takes what model.onnx gives and names classes the card lists."""
        if self.decoder is None:
            if self.task == INTERACTIVE_SEGMENTATION:
                raise ValueError(f"an {INTERACTIVE_SEGMENTATION} card needs a decoder section")
            return
        if self.decoder.labels not in self.labels:
            raise ValueError(f"decoder names unknown labels {self.decoder.labels!r}")
        embeddings = self.decoder.inputs[0]
        produced = {o.name: o for o in self.outputs}.get(embeddings.name)
        if produced is None or produced.shape != embeddings.shape:
            raise ValueError(
                f"decoder input {embeddings.name!r} {list(embeddings.shape)} is not an output "
                "of model.onnx with that shape"
            )

    def _text_fits(self) -> None:
        """The text encoder embeds into the clip encoder's space and names classes listed."""
        if self.text is None:
            if self.task == VIDEO_TEXT:
                raise ValueError(f"a {VIDEO_TEXT} card needs a text section")
            return
        if self.task != VIDEO_TEXT:
            raise ValueError(f"a text section belongs to a {VIDEO_TEXT} card, not {self.task!r}")
        if self.text.labels not in self.labels:
            raise ValueError(f"text names unknown labels {self.text.labels!r}")
        if len(self.text.prompts) != len(self.labels[self.text.labels]):
            raise ValueError(
                f"text has {len(self.text.prompts)} prompts for "
                f"{len(self.labels[self.text.labels])} labels {self.text.labels!r}"
            )
        widths = {o.shape[-1] for o in self.outputs}
        if self.text.width not in widths:
            raise ValueError(
                f"{TEXT_OUTPUT!r} is {self.text.width} wide; no output of model.onnx is"
            )

    def _tokenizer_fits(self) -> None:
        """The detokenizer takes exactly what model.onnx gives and rebuilds its input's size."""
        if self.tokenizer is None:
            if self.task == TOKENIZER:
                raise ValueError(f"a {TOKENIZER} card needs a tokenizer section")
            return
        if self.task != TOKENIZER:
            raise ValueError(
                f"a tokenizer section belongs to a {TOKENIZER} card, not {self.task!r}"
            )
        indices = self.tokenizer.inputs[0]
        if self.graph_outputs() != {indices.name: (indices.shape, indices.dtype)}:
            raise ValueError(
                f"model.onnx must give exactly the detokenizer's input {indices.name!r} "
                f"{indices.dtype} {list(indices.shape)}"
            )
        sizes = {spec.shape[2:] for spec in self.inputs if spec.layout is not None}
        if sizes != {self.tokenizer.image_size}:
            raise ValueError(
                f"the detokenizer makes {list(self.tokenizer.image_size)} images; model.onnx "
                "must take one image input of that size"
            )

    def _slide_fits(self) -> None:
        """The slide encoder reads what model.onnx gives and names classes the card lists."""
        if self.slide is None:
            if self.task == SLIDE:
                raise ValueError(f"a {SLIDE} card needs a slide section")
            return
        if self.task != SLIDE:
            raise ValueError(f"a slide section belongs to a {SLIDE} card, not {self.task!r}")
        width = self.slide.inputs[0].shape[2]
        if self.graph_outputs() != {PATCH_FEATURES: ((1, width), "float32")}:
            raise ValueError(
                f"model.onnx must give exactly the slide encoder's {PATCH_FEATURES!r} "
                f"float32 [1, {width}]"
            )
        if self.slide.labels not in self.labels:
            raise ValueError(f"slide names unknown labels {self.slide.labels!r}")
        classes = len(self.labels[self.slide.labels])
        if self.slide.outputs[0].shape != (1, classes):
            raise ValueError(f"{SLIDE_OUTPUTS[0]!r} must be [1, {classes}], one per label")

    def _vlm_fits(self) -> None:
        """The prefill takes and gives the language model's tensors, as wide as its section."""
        if self.vlm is None:
            if self.task == VLM:
                raise ValueError(f"a {VLM} card needs a vlm section")
            return
        if self.task != VLM:
            raise ValueError(f"a vlm section belongs to a {VLM} card, not {self.task!r}")
        if tuple(self.graph_inputs()) != (VLM_EMBEDS, VLM_MASK):
            raise ValueError(f"a {VLM} model.onnx takes {[VLM_EMBEDS, VLM_MASK]}")
        if tuple(self.graph_outputs()) != VLM_OUTPUTS:
            raise ValueError(f"a {VLM} model.onnx gives {list(VLM_OUTPUTS)}")
        if self.inputs[0].shape[-1] != self.vlm.language.width:
            raise ValueError(f"{VLM_EMBEDS!r} must be {self.vlm.language.width} wide")

    @property
    def graphs(self) -> tuple[Graph, ...]:
        """Every graph the package holds: ``model``, then a decoder, a text encoder, a
        detokenizer or a slide encoder."""
        if self.decoder is not None:
            return ("model", "decoder")
        if self.text is not None:
            return ("model", "text")
        if self.tokenizer is not None:
            return ("model", "detokenizer")
        if self.slide is not None:
            return ("model", "slide")
        if self.vlm is not None:
            projectors: tuple[Graph, ...] = tuple(
                "projector_surgical" if source == "surgical" else "projector_slide"
                for source in self.vlm.projectors
            )
            return ("model", "decode", *projectors)
        return ("model",)

    @property
    def dynamic_batch(self) -> bool:
        """Every graph of the package takes a batch on axis 0 of every tensor (module
        docstring); False: batch 1 only."""
        return self.export.batch == "dynamic"

    @property
    def max_batch(self) -> int:
        """The most rows a backend takes per call by default: 1 unless :attr:`dynamic_batch`."""
        return self.export.max_batch

    def graph_inputs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """The ONNX graph's inputs in order: name -> (shape, dtype)."""
        tensors: dict[str, tuple[tuple[int, ...], str]] = {
            t.name: (t.shape, t.dtype) for t in self.inputs
        }
        tensors.update({s.input: (s.shape, s.dtype) for s in self.state})
        return tensors

    def graph_outputs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """The ONNX graph's outputs in order: name -> (shape, dtype)."""
        tensors: dict[str, tuple[tuple[int, ...], str]] = {
            t.name: (t.shape, t.dtype) for t in self.outputs
        }
        tensors.update({s.output: (s.shape, s.dtype) for s in self.state})
        return tensors

    def initial_state(self) -> dict[str, np.ndarray]:
        """Fresh state tensors keyed by their graph input name (at start and on discontinuity)."""
        return {s.input: np.zeros(s.shape, dtype=s.dtype) for s in self.state}

    def next_state(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The state to feed the next call, taken from one call's outputs."""
        return {s.input: outputs[s.output] for s in self.state}

    def graph_tensors(self, graph: Graph = "model") -> tuple[TensorTypes, TensorTypes]:
        """(inputs, outputs) of one graph of the package, each name -> (shape, dtype) in order.

        Raises:
            OrstreamError: the card has no such graph.
        """
        if graph == "model":
            return self.graph_inputs(), self.graph_outputs()
        vlm = self.vlm.projectors if self.vlm is not None else {}
        section = {
            "decoder": self.decoder,
            "text": self.text,
            "detokenizer": self.tokenizer,
            "slide": self.slide,
            "decode": self.vlm.decode if self.vlm is not None else None,
            "projector_surgical": vlm.get("surgical"),
            "projector_slide": vlm.get("slide"),
        }[graph]
        if section is None:
            raise OrstreamError(f"card {self.name!r} has no {GRAPH_NAMES[graph]}")
        return section.graph_inputs(), section.graph_outputs()
