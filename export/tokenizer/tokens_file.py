"""The tokens file ``orstream tokenize`` writes and ``orstream detokenize`` reads (``.npz``).

It holds the indices of every tokenized frame, in the smallest integer type that holds the
codes (int16 up to 32767 codes, else int32), and what decoding needs besides: the package that
made them (name and version: another package's codebooks give another image for the same
indices), its groups, grid and codes (checked against the package), whether the source was an
image or a video, the source's size (decoded images are brought back to it), the source frame
number of each entry and the rate they were taken at (a decoded video plays at it).

Arrays, all without pickling: ``format`` (1), ``indices`` [N, G, h, w], ``package``,
``version``, ``kind`` ("image" or "video") as strings, ``groups``, ``codes``, ``grid`` [h, w],
``source_size`` [H, W], ``frames`` [N] and ``fps`` (0 for an image).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage

FORMAT = 1
Kind = Literal["image", "video"]
_KEYS = (
    "format",
    "indices",
    "package",
    "version",
    "kind",
    "groups",
    "codes",
    "grid",
    "source_size",
    "frames",
    "fps",
)


@dataclass(frozen=True)
class Tokens:
    """The tokens of an image or of a video's frames, and where they came from.

    Attributes:
        indices: int [N, G, h, w], each in 0..codes-1.
        package: the card name of the package that made them.
        version: that package's version.
        kind: "image" (N is 1) or "video".
        source_size: (height, width) of the source.
        frames: [N] the source frame number of each entry.
        fps: the rate the frames were taken at (0 for an image).
    """

    indices: np.ndarray
    package: str
    version: str
    kind: Kind
    source_size: tuple[int, int]
    frames: np.ndarray
    fps: float


def index_dtype(codes: int) -> type[np.integer]:
    """The smallest signed integer type of the file that holds codes 0..codes-1."""
    return np.int16 if codes <= np.iinfo(np.int16).max + 1 else np.int32


def write_tokens(path: Path, tokens: Tokens, package: ModelPackage) -> None:
    """Write ``tokens`` of ``package`` to ``path`` (which must end in ``.npz``).

    Raises:
        OrstreamError: ``path`` does not end in ``.npz`` or cannot be written.
    """
    if path.suffix != ".npz":
        raise OrstreamError(f"{path}: a tokens file must end in .npz")
    spec = package.tokenizer_section()
    arrays = {
        "format": np.array(FORMAT),
        "indices": tokens.indices.astype(index_dtype(spec.codes)),
        "package": np.array(tokens.package),
        "version": np.array(tokens.version),
        "kind": np.array(tokens.kind),
        "groups": np.array(spec.groups),
        "codes": np.array(spec.codes),
        "grid": np.array(spec.grid),
        "source_size": np.array(tokens.source_size),
        "frames": np.asarray(tokens.frames, dtype=np.int64),
        "fps": np.array(float(tokens.fps)),
    }
    try:
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    except OSError as error:
        raise OrstreamError(f"cannot write {path}: {error.strerror or error}") from None


def read_tokens(path: Path, package: ModelPackage) -> Tokens:
    """Read a tokens file and check that ``package`` can decode it.

    Raises:
        OrstreamError: one line when the file is missing or not a tokens file, was made by
            another package or version, or its indices are not [N, G, h, w] integers within
            the package's codes.
    """
    spec = package.tokenizer_section()
    card = package.card
    arrays = _load(path)
    if int(arrays["format"]) != FORMAT:
        raise OrstreamError(f"{path}: tokens file format {arrays['format']}, expected {FORMAT}")
    made_by = (str(arrays["package"]), str(arrays["version"]))
    if made_by != (card.name, card.version):
        raise OrstreamError(
            f"{path} holds tokens of package {made_by[0]} version {made_by[1]}; "
            f"{package.root} is {card.name} version {card.version}: decode them with the "
            "package that made them"
        )
    indices = arrays["indices"]
    expected = (spec.groups, *spec.grid)
    if (
        indices.ndim != 4
        or len(indices) < 1
        or indices.shape[1:] != expected
        or not np.issubdtype(indices.dtype, np.integer)
    ):
        raise OrstreamError(
            f"{path}: indices are {indices.dtype} {list(indices.shape)}, the package needs "
            f"integers [N, {', '.join(map(str, expected))}]"
        )
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= spec.codes:
        raise OrstreamError(
            f"{path}: indices run from {low} to {high}, the package's codes from 0 to "
            f"{spec.codes - 1}"
        )
    kind = str(arrays["kind"])
    frames = arrays["frames"]
    size = tuple(int(v) for v in arrays["source_size"].ravel())
    if kind not in ("image", "video") or (kind == "image" and len(indices) != 1):
        raise OrstreamError(f"{path}: kind {kind!r} with {len(indices)} entries")
    if frames.shape != (len(indices),) or len(size) != 2 or min(size) < 1:
        raise OrstreamError(
            f"{path}: frames {list(frames.shape)} and source_size {list(size)} do not fit "
            f"{len(indices)} entries"
        )
    return Tokens(
        indices=indices.astype(np.int64),
        package=made_by[0],
        version=made_by[1],
        kind="image" if kind == "image" else "video",
        source_size=(size[0], size[1]),
        frames=frames.astype(np.int64),
        fps=float(arrays["fps"]),
    )


def _load(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise OrstreamError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise OrstreamError(f"{path} is not a tokens file of orstream tokenize ({error})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise OrstreamError(f"{path} is not a tokens file of orstream tokenize (not an .npz)")
    with loaded:
        arrays = {name: loaded[name] for name in loaded.files}
    missing = [key for key in _KEYS if key not in arrays]
    if missing:
        raise OrstreamError(
            f"{path} is not a tokens file of orstream tokenize (it lacks {', '.join(missing)})"
        )
    return arrays
