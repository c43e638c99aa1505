"""Golden references: what ONNX Runtime on CPU in fp32 gives for a realistic input of each graph.

Every package carries ``reference.npz`` (:meth:`orstream.package.loading.ModelPackage.reference`)
and records its sha256 in the card; every edge backend must reproduce it within its precision's
tolerance before it serves (:mod:`orstream.edge.backends.reference_check`). A backend that is
fast but wrong (an engine built from another ONNX, an fp16 overflow, a broken kernel) is then
refused at load instead of drawing wrong overlays in an operating room.

The input is one phantom frame that shows an instrument (the first of a fixed phantom case with
an instrument of at least :data:`MIN_INSTRUMENT_AREA` pixels), pre-processed as the card says;
state inputs are the card's initial state. A prompt decoder gets the encoder's embedding of
that frame and a box prompt around the frame's largest instrument, fed exactly as the edge feeds
it (:meth:`orstream.edge.models.segmenter_model.SegmenterModel.decoder_inputs`). A text
encoder gets the first of the card's prompts, tokenised as the edge tokenises it. A detokenizer
gets the tokens the encoder gave for the frame. A slide package's patch encoder gets a phantom
slide tile instead of the frame, and its slide encoder the features of a slide of as many
phantom tiles as its card says (:func:`~orstream.export.onnx.phantom_tiles.phantom_tiles`).
A vision-language package's graphs get one question instead
(:mod:`orstream.export.onnx.models.vlm_reference`).

The archive is written with fixed zip timestamps, so the same package always gives the same
bytes and rewriting an unchanged package's reference changes nothing.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.errors import OrstreamError
from orstream.export.onnx.parity import PHANTOM_SIZE
from orstream.export.onnx.phantom_tiles import phantom_tiles
from orstream.package.card import (
    IMAGE_EMBEDDINGS,
    PATCH_FEATURES,
    TEXT_INPUTS,
    TOKEN_INDICES,
    Graph,
    SlideEncoderSpec,
)
from orstream.package.loading import ModelPackage, sha256_file, write_card
from orstream.package.preprocess import ImagePreprocessor
from orstream.segmentation.mask_scores import mask_box
from orstream.segmentation.prompts import Prompt
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer
from orstream.wordpiece import WordPieceTokenizer

PHANTOM_SEED = 0
PHANTOM_VIDEO = 1
PHANTOM_SECONDS = 60
"""The phantom case the reference frame comes from, one frame per second of it."""
MIN_INSTRUMENT_AREA = 600
"""Pixels (at :data:`~orstream.export.onnx.parity.PHANTOM_SIZE`) of the instrument the frame must
show: a sliver at the rim of the view would make a poor box prompt."""
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ReferenceFrame:
    """The phantom frame of the references and the instrument boxed for the decoder.

    Attributes:
        image: RGB uint8 (height, width, 3).
        index: its frame number in the phantom case.
        instrument: PitVis code of the largest instrument in it.
        box: that instrument's tight box (x0, y0, x1, y1) in frame pixels, x1 and y1 exclusive.
    """

    image: np.ndarray
    index: int
    instrument: int
    box: tuple[int, int, int, int]


def reference_frame() -> ReferenceFrame:
    """The first frame of the reference phantom case that shows an instrument large enough."""
    height, width = PHANTOM_SIZE
    renderer = CaseRenderer(
        seed=PHANTOM_SEED,
        video=PHANTOM_VIDEO,
        seconds=PHANTOM_SECONDS,
        difficulty=get_difficulty("normal"),
        width=width,
        height=height,
        fps=1.0,
    )
    for index in range(renderer.frame_count):
        mask = np.zeros((height, width), np.uint8)
        rendered = renderer.render(index, mask=mask)
        areas = {code: int(np.count_nonzero(mask == code)) for code in rendered.instruments}
        if areas and max(areas.values()) >= MIN_INSTRUMENT_AREA:
            code = max(areas, key=areas.__getitem__)
            return ReferenceFrame(rendered.image, index, code, mask_box(mask == code))
    # The case is fixed by its seed: this means the phantom's plans changed.
    raise OrstreamError(
        f"phantom case (seed {PHANTOM_SEED}, video {PHANTOM_VIDEO}) shows no instrument of "
        f"{MIN_INSTRUMENT_AREA} pixels in {PHANTOM_SECONDS} s"
    )


def reference_arrays(package: ModelPackage, frame: ReferenceFrame) -> dict[str, np.ndarray]:
    """``<graph>.in.<input>`` and ``<graph>.out.<output>`` for every graph of ``package``,
    outputs from ONNX Runtime on CPU in fp32.

    Raises:
        OrstreamError: a graph cannot be loaded, or the card has an input that is neither its
            image nor a state (no realistic value is known for it).
    """
    card = package.card
    if card.vlm is not None:
        from orstream.export.onnx.models.vlm_reference import vlm_reference_arrays

        return vlm_reference_arrays(package)
    preprocess = ImagePreprocessor.from_card(card)
    state = card.initial_state()
    others = [s.name for s in card.inputs if s.name != preprocess.spec.name]
    if others:
        raise OrstreamError(
            f"card {card.name!r} has inputs {others} besides its image and state; "
            "no golden reference input is known for them"
        )
    encoder = OnnxRuntimeBackend()
    encoder.load(package)
    image = frame.image if card.slide is None else _slide_tiles(card.slide)[0]
    inputs = {preprocess.spec.name: preprocess(image), **state}
    graphs: dict[Graph, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {
        "model": (inputs, encoder.infer(inputs))
    }
    if card.decoder is not None:
        decoder = OnnxRuntimeBackend(graph="decoder")
        decoder.load(package)
        segmenter = SegmenterModel(package, encoder, decoder)
        height, width = frame.image.shape[:2]
        embedding = ImageEmbedding(graphs["model"][1][IMAGE_EMBEDDINGS], height, width)
        box = tuple(float(v) for v in frame.box)
        prompt = Prompt(box=(box[0], box[1], box[2], box[3]))
        decoder_inputs = segmenter.decoder_inputs(embedding, prompt)
        graphs["decoder"] = (decoder_inputs, decoder.infer(decoder_inputs))
    if card.text is not None:
        text = OnnxRuntimeBackend(graph="text")
        text.load(package)
        tokenizer = WordPieceTokenizer(package.vocab_path)
        ids, mask = tokenizer.encode_fixed(card.text.prompts[:1], card.text.tokens)
        text_inputs = dict(zip(TEXT_INPUTS, (ids, mask), strict=True))
        graphs["text"] = (text_inputs, text.infer(text_inputs))
    if card.tokenizer is not None:
        detokenizer = OnnxRuntimeBackend(graph="detokenizer")
        detokenizer.load(package)
        tokens = {TOKEN_INDICES: graphs["model"][1][TOKEN_INDICES]}
        graphs["detokenizer"] = (tokens, detokenizer.infer(tokens))
    if card.slide is not None:
        slide = OnnxRuntimeBackend(graph="slide")
        slide.load(package)
        tiles = preprocess.batch(list(_slide_tiles(card.slide)))
        features = np.concatenate(
            [encoder.infer({preprocess.spec.name: t[None]})[PATCH_FEATURES] for t in tiles]
        )
        slide_inputs = {PATCH_FEATURES: features[None]}
        graphs["slide"] = (slide_inputs, slide.infer(slide_inputs))
    arrays = {}
    for graph, (graph_inputs, graph_outputs) in graphs.items():
        arrays.update({f"{graph}.in.{k}": np.asarray(v) for k, v in graph_inputs.items()})
        arrays.update({f"{graph}.out.{k}": np.asarray(v) for k, v in graph_outputs.items()})
    return arrays


def _slide_tiles(spec: SlideEncoderSpec) -> np.ndarray:
    """The phantom tiles of a slide package's reference: as many as its card's slide shapes."""
    return phantom_tiles(spec.tiles, spec.mpp, spec.tile)


def write_reference(package: ModelPackage, frame: ReferenceFrame | None = None) -> ModelPackage:
    """Write ``reference.npz`` into the package folder and record its sha256 in ``card.json``.

    Args:
        package: the package (its files in place, the card as it should be written).
        frame: the phantom frame to use; :func:`reference_frame` when not given.

    Returns:
        The package with the card as now written.

    Raises:
        OrstreamError: as :func:`reference_arrays`.
    """
    arrays = reference_arrays(package, frame or reference_frame())
    _write_npz(package.reference_path, arrays)
    card = package.card
    hashes = card.hashes.model_copy(update={"reference": sha256_file(package.reference_path)})
    card = card.model_copy(update={"hashes": hashes})
    write_card(package.root, card)
    return ModelPackage(root=package.root, card=card)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed ``.npz`` ``np.load`` reads, with fixed timestamps (same arrays, same bytes),
    written atomically."""
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    os.replace(partial, path)
