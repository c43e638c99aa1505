"""Model packages: a folder holding ``card.json`` (what the edge needs) and ``model.onnx``.

Every package may hold a golden reference, ``reference.npz``: for each of its graphs an input
and the outputs ONNX Runtime on CPU in fp32 gives for it (:meth:`ModelPackage.reference`), which
every edge backend must reproduce before it serves.

An interactive segmentation package also holds a prompt decoder, ``decoder.onnx``, and the text
prompt embeddings of its classes, ``text_prompts.npy``, both described by the card's optional
``decoder`` section (:class:`PromptDecoderSpec`); ``model.onnx`` is then the image encoder.

The card describes the ONNX graph's tensors, how to turn a camera frame into the image input,
what the outputs mean, the labels, the temporal state a streaming model carries between calls,
content hashes, where the weights came from and how the export was checked. The ONNX graph's
inputs are ``card.inputs`` followed by each state's ``input``; its outputs are ``card.outputs``
followed by each state's ``output``. Graphs run with batch 1: the edge feeds one frame of one
stream per call and keeps one state per stream.

This module is core: it reads and validates cards and files with numpy, pydantic and the
standard library only. The check that an ONNX graph's tensors match the card
(:func:`check_graph_signature`) is shared by the exporter and the edge backends, which each read
the graph with their own library.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from orstream.errors import OrstreamError

CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"
DECODER_FILE = "decoder.onnx"
TEXT_PROMPTS_FILE = "text_prompts.npy"
REFERENCE_FILE = "reference.npz"
CARD_FORMAT: Literal[1] = 1
INTERACTIVE_SEGMENTATION = "interactive_segmentation"
"""The task of a package with a prompt decoder (``model.onnx`` is then the image encoder)."""

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

DType = Literal["float32", "float16", "float64", "int64", "int32", "uint8", "bool"]
SHA256_PATTERN = r"^[0-9a-f]{64}$"
FILE_NAME_PATTERN = r"^[^/\\]+$"
"""A plain file name inside the package folder (no folders, so a card never points outside)."""
Graph = Literal["model", "decoder"]
"""Which graph of a package: ``model.onnx``, or the prompt decoder of an interactive
segmentation package."""
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
    """ONNX Runtime against PyTorch over ``frames`` frames, state carried frame to frame."""

    source: str = Field(description="the kind of frames: random, phantom, video")
    frames: int = Field(gt=0)
    max_abs_diff: dict[str, float]
    tolerance: float


class ExportInfo(_Strict):
    """How ``model.onnx`` was made and checked."""

    exporter: str
    opset: int
    batch: int = 1
    torch_version: str
    onnx_version: str
    onnxruntime_version: str
    parity: tuple[ParityResult, ...] = ()


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
            OrstreamError: ``graph`` is the decoder and the card has no decoder section.
        """
        if graph == "model":
            return self.graph_inputs(), self.graph_outputs()
        if self.decoder is None:
            raise OrstreamError(f"card {self.name!r} has no prompt decoder")
        return self.decoder.graph_inputs(), self.decoder.graph_outputs()


@dataclass(frozen=True)
class Reference:
    """A golden reference of one graph: an input and what ONNX Runtime on CPU (fp32) gave for it.

    Attributes:
        inputs: every graph input by name.
        outputs: every graph output by name.
    """

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class ModelPackage:
    """A validated package folder: its card and the path of its ONNX graph."""

    root: Path
    card: ModelCard

    @property
    def card_path(self) -> Path:
        return self.root / CARD_FILE

    @property
    def model_path(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def decoder_path(self) -> Path | None:
        """The prompt decoder graph, for a package with a decoder section."""
        decoder = self.card.decoder
        return None if decoder is None else self.root / decoder.file

    @property
    def text_prompts_path(self) -> Path | None:
        """The class text prompt embeddings, for a package with a decoder section."""
        decoder = self.card.decoder
        return None if decoder is None else self.root / decoder.text_file

    @property
    def reference_path(self) -> Path:
        """The golden reference file (present when the card records its sha256)."""
        return self.root / REFERENCE_FILE

    def graph_path(self, graph: Graph = "model") -> Path:
        """The ONNX file of ``graph``.

        Raises:
            OrstreamError: ``graph`` is the decoder and the package has none.
        """
        path = self.model_path if graph == "model" else self.decoder_path
        if path is None:
            raise OrstreamError(f"model package {self.root} has no prompt decoder")
        return path

    def reference(self, graph: Graph = "model") -> Reference | None:
        """The golden reference of ``graph``: arrays ``<graph>.in.<input>`` and
        ``<graph>.out.<output>`` of ``reference.npz``; None when the card records none.

        Raises:
            OrstreamError: ``graph`` is the decoder and the package has none, or the file does
                not hold exactly the graph's inputs and outputs in the card's shapes and dtypes.
        """
        inputs, outputs = self.card.graph_tensors(graph)
        if self.card.hashes.reference is None:
            return None
        path = self.reference_path
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as error:
            raise OrstreamError(f"{path} is not a numpy .npz archive ({error})") from None
        found = []
        for kind, expected in (("in", inputs), ("out", outputs)):
            prefix = f"{graph}.{kind}."
            given = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            if set(given) != set(expected):
                raise OrstreamError(
                    f"{path} holds {graph} {kind}puts {sorted(given)}, the card's graph has "
                    f"{sorted(expected)}: rewrite it with orstream export reference "
                    f"--package {self.root}"
                )
            for name, (shape, dtype) in expected.items():
                if given[name].shape != shape or given[name].dtype != np.dtype(dtype):
                    raise OrstreamError(
                        f"{path}: {graph}.{kind}.{name} is {given[name].dtype} "
                        f"{list(given[name].shape)}, the card says {dtype} {list(shape)}"
                    )
            found.append({name: given[name] for name in expected})
        return Reference(inputs=found[0], outputs=found[1])

    def text_prompts(self) -> np.ndarray:
        """The decoder's text prompt embeddings, float32 [C, T] in class order.

        Raises:
            OrstreamError: the package has no decoder section.
        """
        path = self.text_prompts_path
        if path is None:
            raise OrstreamError(f"model package {self.root} has no prompt decoder")
        return np.load(path, allow_pickle=False)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    where = f"field {field!r}: " if field else ""
    more = error.error_count() - 1
    extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}{first['msg']}{extra}"


def read_card(path: Path) -> ModelCard:
    """Parse and validate a ``card.json`` file; OrstreamError with one line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OrstreamError(f"{path}: card not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OrstreamError(f"{path}: cannot read card ({error})") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise OrstreamError(
            f"{path}: not valid JSON (line {error.lineno} column {error.colno}: {error.msg})"
        ) from None
    try:
        return ModelCard.model_validate(data)
    except ValidationError as error:
        raise OrstreamError(f"{path}: invalid card, {describe_validation_error(error)}") from None


def write_card(folder: Path, card: ModelCard) -> Path:
    """Write ``card.json`` into ``folder`` (atomically) and return its path."""
    path = folder / CARD_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def load_package(path: Path, check_reference: bool = True) -> ModelPackage:
    """Open a package folder, checking its card and that its files are the ones it describes.

    Besides ``model.onnx``, a card that records a golden reference names ``reference.npz``,
    whose sha256 must match; a card with a decoder section names ``decoder.onnx`` and
    ``text_prompts.npy``, whose sha256 must match too, and the text prompts must hold one
    float32 row of the decoder's text width per class.

    Args:
        path: the package folder.
        check_reference: check ``reference.npz`` too (off only to rewrite a damaged one).

    Raises:
        OrstreamError: one clear line when the folder, card or a file is missing, the card is
            not valid JSON or breaks the schema, or a file is not the one whose sha256 the card
            records (corrupt, truncated or replaced).
    """
    path = Path(path)
    if not path.exists():
        raise OrstreamError(f"model package {path} not found")
    if not path.is_dir():
        raise OrstreamError(f"model package {path} is not a folder ({CARD_FILE} + {MODEL_FILE})")
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise OrstreamError(f"model package {path} has no {CARD_FILE}")
    card = read_card(card_path)
    package = ModelPackage(root=path, card=card)
    _check_file(package.model_path, card.hashes.model_onnx, path)
    if card.hashes.reference is not None and check_reference:
        _check_file(package.reference_path, card.hashes.reference, path)
    decoder = card.decoder
    if decoder is not None:
        _check_file(path / decoder.file, decoder.sha256, path)
        _check_text_prompts(package, decoder, len(card.labels[decoder.labels]))
    return package


def _check_file(file: Path, sha256: str, package: Path) -> None:
    if not file.is_file():
        raise OrstreamError(f"model package {package} has no {file.name}")
    actual = sha256_file(file)
    if actual != sha256:
        raise OrstreamError(
            f"{file} does not match {CARD_FILE} (sha256 {actual[:12]}..., card "
            f"expects {sha256[:12]}...): the file is corrupt, truncated or replaced"
        )


def _check_text_prompts(package: ModelPackage, decoder: PromptDecoderSpec, classes: int) -> None:
    file = package.root / decoder.text_file
    _check_file(file, decoder.text_sha256, package.root)
    try:
        # A memory map reads only the header: the hash above already vouched for the bytes.
        prompts = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise OrstreamError(f"{file} is not a numpy array file ({error})") from None
    expected = (classes, decoder.text_dim)
    if prompts.shape != expected or prompts.dtype != np.float32:
        raise OrstreamError(
            f"{file} holds {prompts.dtype} {list(prompts.shape)}, the card expects float32 "
            f"{list(expected)} (one row per class of labels {decoder.labels!r})"
        )


def _format_shape(shape: GraphShape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_graph_signature(
    card: ModelCard,
    inputs: Mapping[str, tuple[GraphShape, str]],
    outputs: Mapping[str, tuple[GraphShape, str]],
    source: Path,
) -> None:
    """Refuse an ONNX graph whose tensors (names, shapes, dtypes) differ from the card's.

    Args:
        card: the package's card.
        inputs: the graph's inputs as its reader sees them: name -> (shape, numpy dtype name).
        outputs: the graph's outputs, likewise.
        source: the ONNX file, named in the error.

    Raises:
        OrstreamError: naming the first tensor that differs.
    """
    _check_tensors(card.graph_inputs(), card.graph_outputs(), inputs, outputs, source)


def check_decoder_signature(
    card: ModelCard,
    inputs: Mapping[str, tuple[GraphShape, str]],
    outputs: Mapping[str, tuple[GraphShape, str]],
    source: Path,
) -> None:
    """Refuse a prompt decoder graph whose tensors differ from the card's decoder section.

    Arguments as :func:`check_graph_signature`.

    Raises:
        OrstreamError: the card has no decoder, or naming the first tensor that differs.
    """
    if card.decoder is None:
        raise OrstreamError(f"{source}: card {card.name!r} has no decoder section")
    _check_tensors(
        card.decoder.graph_inputs(), card.decoder.graph_outputs(), inputs, outputs, source
    )


def _check_tensors(
    expected_inputs: Mapping[str, tuple[tuple[int, ...], str]],
    expected_outputs: Mapping[str, tuple[tuple[int, ...], str]],
    inputs: Mapping[str, tuple[GraphShape, str]],
    outputs: Mapping[str, tuple[GraphShape, str]],
    source: Path,
) -> None:
    for kind, graph, expected in (
        ("input", inputs, expected_inputs),
        ("output", outputs, expected_outputs),
    ):
        missing = [name for name in expected if name not in graph]
        unexpected = [name for name in graph if name not in expected]
        if missing or unexpected:
            raise OrstreamError(
                f"{source} does not match {CARD_FILE}: graph {kind}s {list(graph)}, "
                f"card {kind}s {list(expected)}"
            )
        for name, (shape, dtype) in expected.items():
            graph_shape, graph_dtype = graph[name]
            if tuple(graph_shape) != shape:
                raise OrstreamError(
                    f"{source} does not match {CARD_FILE}: {kind} {name!r} has shape "
                    f"{_format_shape(graph_shape)} in the graph, {_format_shape(shape)} in the card"
                )
            if graph_dtype != dtype:
                raise OrstreamError(
                    f"{source} does not match {CARD_FILE}: {kind} {name!r} is {graph_dtype} in "
                    f"the graph, {dtype} in the card"
                )
