"""Opening a package folder: its card, and the check that every file is the one it names."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from orstream.errors import OrstreamError, describe_validation_error
from orstream.package.card import (
    CARD_FILE,
    GRAPH_NAMES,
    MODEL_FILE,
    REFERENCE_FILE,
    TOKENIZER,
    Graph,
    ModelCard,
    PromptDecoderSpec,
    TextEncoderSpec,
    TokenizerSpec,
)


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
            OrstreamError: the package has no such graph.
        """
        if graph == "model":
            return self.model_path
        if graph == "decoder" and self.decoder_path is not None:
            return self.decoder_path
        if graph == "text" and self.card.text is not None:
            return self.root / self.card.text.file
        if graph == "detokenizer" and self.card.tokenizer is not None:
            return self.root / self.card.tokenizer.file
        if graph == "slide" and self.card.slide is not None:
            return self.root / self.card.slide.file
        vlm = self.card.vlm
        if graph == "decode" and vlm is not None:
            return self.root / vlm.decode.file
        source = graph.removeprefix("projector_")
        if vlm is not None and graph.startswith("projector_") and source in vlm.projectors:
            return self.root / vlm.projectors[source].file
        raise OrstreamError(f"model package {self.root} has no {GRAPH_NAMES[graph]}")

    def tokenizer_section(self) -> TokenizerSpec:
        """The card's tokenizer section.

        Raises:
            OrstreamError: the package is not a tokenizer package.
        """
        if self.card.tokenizer is None:
            raise OrstreamError(
                f"model package {self.root} is a {self.card.task} package, not {TOKENIZER}"
            )
        return self.card.tokenizer

    def text_section(self) -> TextEncoderSpec:
        """The card's text section.

        Raises:
            OrstreamError: the package is not a video-text package.
        """
        if self.card.text is None:
            raise OrstreamError(
                f"model package {self.root} is a {self.card.task} package, not video_text"
            )
        return self.card.text

    @property
    def vocab_path(self) -> Path:
        """The text encoder's WordPiece vocabulary (a video-text package)."""
        return self.root / self.text_section().vocab_file

    def step_prompts(self) -> np.ndarray:
        """The embeddings of the text section's prompts, float32 [C, E] in label order.

        Raises:
            OrstreamError: the package is not a video-text package.
        """
        return np.load(self.root / self.text_section().prompts_file, allow_pickle=False)

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
    float32 row of the decoder's text width per class; a card with a text section names
    ``text_encoder.onnx``, ``vocab.txt`` and ``step_prompts.npy``, checked alike; a card with a
    tokenizer section names ``detokenizer.onnx``, one with a slide section
    ``slide_encoder.onnx`` and one with a vlm section its decode and projector graphs, weights
    and tokenizer, whose sha256 must match.

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
    if card.text is not None:
        _check_text_section(path, card.text)
    if card.tokenizer is not None:
        _check_file(path / card.tokenizer.file, card.tokenizer.sha256, path)
    if card.slide is not None:
        _check_file(path / card.slide.file, card.slide.sha256, path)
    if card.vlm is not None:
        vlm = card.vlm
        for graph in (vlm.decode, *vlm.projectors.values()):
            _check_file(path / graph.file, graph.sha256, path)
        _check_file(path / vlm.weights_file, vlm.weights_sha256, path)
        _check_file(path / vlm.tokenizer_file, vlm.tokenizer_sha256, path)
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


def _check_text_section(root: Path, text: TextEncoderSpec) -> None:
    _check_file(root / text.file, text.sha256, root)
    _check_file(root / text.vocab_file, text.vocab_sha256, root)
    shape = (len(text.prompts), text.width)
    _check_embeddings(root, text.prompts_file, text.prompts_sha256, shape, "prompt")


def _check_embeddings(
    root: Path, name: str, sha256: str, expected: tuple[int, int], rows: str
) -> None:
    """A float32 [C, E] array file whose sha256 the card records."""
    file = root / name
    _check_file(file, sha256, root)
    try:
        # A memory map reads only the header: the hash above already vouched for the bytes.
        array = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise OrstreamError(f"{file} is not a numpy array file ({error})") from None
    if array.shape != expected or array.dtype != np.float32:
        raise OrstreamError(
            f"{file} holds {array.dtype} {list(array.shape)}, the card expects float32 "
            f"{list(expected)} (one row per {rows})"
        )


def _check_text_prompts(package: ModelPackage, decoder: PromptDecoderSpec, classes: int) -> None:
    _check_embeddings(
        package.root,
        decoder.text_file,
        decoder.text_sha256,
        (classes, decoder.text_dim),
        f"class of labels {decoder.labels!r}",
    )
