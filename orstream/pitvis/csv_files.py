"""PitVis CSV files: annotations, label maps and submissions, read strictly, written exactly.

Every reader checks its file fully and raises :class:`~orstream.errors.OrstreamError` with one
line naming the file and the problem (missing file, wrong or missing columns, a value that is
not an integer, a code outside PitVis, an ``int_time`` that repeats or goes back, a mixed
``int_video``, no rows). Columns may come in any order; writers use the PitVis order.

Layout of a folder of predictions (what :func:`find_prediction_files` accepts): one CSV per
video, named ``NN.csv`` or ``video_NN.csv``. Each file is recognised by its header: a step
submission has ``int_time,int_step``, an instrument submission has
``int_time,int_instrument1,int_instrument2``, and a multitask submission (both in one file, the
challenge's third format) has ``int_time,int_step,int_instrument1,int_instrument2``. Since one
folder cannot hold two files of the same name, a submission of both kinds in separate files puts
them in the subfolders ``steps/`` and ``instruments/``; files directly in the folder are also
taken, of any kind (a multitask file counts as both).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_SLOT_CODES, STEP_CODES, instrument_name, step_name
from orstream.pitvis.layout import (
    ANNOTATIONS_FILE,
    ANNOTATIONS_FOLDER,
    INSTRUMENT_MAP_FILE,
    STEP_MAP_FILE,
)

ANNOTATION_COLUMNS = ("int_video", "int_time", "int_step", "int_instrument1", "int_instrument2")
STEP_SUBMISSION_COLUMNS = ("int_time", "int_step")
INSTRUMENT_SUBMISSION_COLUMNS = ("int_time", "int_instrument1", "int_instrument2")
MULTITASK_SUBMISSION_COLUMNS = ("int_time", "int_step", "int_instrument1", "int_instrument2")
STEP_MAP_COLUMNS = ("int_step", "text_step")
INSTRUMENT_MAP_COLUMNS = ("int_instrument", "text_instrument")

PREDICTION_NAME = re.compile(r"(?:video_)?(\d+)\.csv")

STEPS_FOLDER = "steps"
INSTRUMENTS_FOLDER = "instruments"
MULTITASK = "multitask"


@dataclass(frozen=True)
class Annotations:
    """One PitVis ``annotations_NN.csv``: one row per second of one video.

    Attributes:
        video: The ``int_video`` number shared by every row.
        time: int64 [N], seconds, strictly increasing.
        step: int64 [N], step codes (-1 or 1..14).
        instruments: int64 [N, 2], instrument codes per slot (-2, -1, 0..18).
    """

    video: int
    time: np.ndarray
    step: np.ndarray
    instruments: np.ndarray


@dataclass(frozen=True)
class PredictionFiles:
    """The submission files of a prediction folder, by video number and kind."""

    steps: dict[int, Path]
    instruments: dict[int, Path]


def read_annotations(path: Path) -> Annotations:
    """Read and validate a PitVis ``annotations_NN.csv``.

    When the file is named ``annotations_NN.csv``, its ``int_video`` must be NN.
    """
    table, lines = _read_table(path, ANNOTATION_COLUMNS)
    video, time, step, instruments = (
        np.ascontiguousarray(part)
        for part in (table[:, 0], table[:, 1], table[:, 2], table[:, 3:5])
    )
    where = str(path)
    mixed = np.flatnonzero(video != video[0])
    if mixed.size:
        raise OrstreamError(
            f"{where}: mixed int_video ({video[0]} and {video[mixed[0]]} at line {lines[mixed[0]]})"
        )
    named = ANNOTATIONS_FILE.fullmatch(path.name)
    if named and int(named.group(1)) != video[0]:
        raise OrstreamError(
            f"{where}: int_video is {video[0]} but the file name says video {int(named.group(1))}"
        )
    _check_time(where, time, lines)
    _check_codes(where, "int_step", step, STEP_CODES, lines)
    _check_instrument_codes(where, instruments, lines)
    return Annotations(video=int(video[0]), time=time, step=step, instruments=instruments)


def write_annotations(path: Path, annotations: Annotations) -> None:
    """Write ``annotations`` as a PitVis annotations CSV (parent folders are created)."""
    where = f"cannot write {path}"
    time = _as_rows(where, "time", annotations.time, 1)
    step = _as_rows(where, "step", annotations.step, 1)
    instruments = _as_rows(where, "instruments", annotations.instruments, 2)
    _check_same_length(where, time, step, instruments)
    _check_time(where, time)
    _check_codes(where, "int_step", step, STEP_CODES)
    _check_instrument_codes(where, instruments)
    video = np.full(len(time), annotations.video, dtype=np.int64)
    _write_rows(
        path, ANNOTATION_COLUMNS, np.column_stack([video, time, step, instruments]).tolist()
    )


def write_label_maps(folder: Path) -> None:
    """Write ``map_steps.csv`` and ``map_instruments.csv`` with the PitVis names of every code."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_rows(
        folder / STEP_MAP_FILE,
        STEP_MAP_COLUMNS,
        [(code, step_name(code)) for code in sorted(STEP_CODES)],
    )
    _write_rows(
        folder / INSTRUMENT_MAP_FILE,
        INSTRUMENT_MAP_COLUMNS,
        [(code, instrument_name(code)) for code in sorted(INSTRUMENT_SLOT_CODES)],
    )


def read_step_submission(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a step submission (``int_time,int_step``, or a multitask one) as ``(time [N], step
    [N])`` int64 codes."""
    table, lines = _read_table(
        path, STEP_SUBMISSION_COLUMNS, _unused_columns(path, STEP_SUBMISSION_COLUMNS)
    )
    where = str(path)
    _check_time(where, table[:, 0], lines)
    _check_codes(where, "int_step", table[:, 1], STEP_CODES, lines)
    return np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1])


def read_instrument_submission(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an instrument submission (or a multitask one) as ``(time [N], instruments [N, 2])``
    int64 codes."""
    table, lines = _read_table(
        path, INSTRUMENT_SUBMISSION_COLUMNS, _unused_columns(path, INSTRUMENT_SUBMISSION_COLUMNS)
    )
    where = str(path)
    _check_time(where, table[:, 0], lines)
    _check_instrument_codes(where, table[:, 1:3], lines)
    return np.ascontiguousarray(table[:, 0]), np.ascontiguousarray(table[:, 1:3])


def write_step_submission(path: Path, time: np.ndarray, step: np.ndarray) -> None:
    """Write a step submission CSV (``int_time,int_step``); parent folders are created."""
    where = f"cannot write {path}"
    time = _as_rows(where, "time", time, 1)
    step = _as_rows(where, "step", step, 1)
    _check_same_length(where, time, step)
    _check_time(where, time)
    _check_codes(where, "int_step", step, STEP_CODES)
    _write_rows(path, STEP_SUBMISSION_COLUMNS, np.column_stack([time, step]).tolist())


def write_instrument_submission(path: Path, time: np.ndarray, instruments: np.ndarray) -> None:
    """Write an instrument submission CSV (``int_time,int_instrument1,int_instrument2``)."""
    where = f"cannot write {path}"
    time = _as_rows(where, "time", time, 1)
    instruments = _as_rows(where, "instruments", instruments, 2)
    _check_same_length(where, time, instruments)
    _check_time(where, time)
    _check_instrument_codes(where, instruments)
    _write_rows(path, INSTRUMENT_SUBMISSION_COLUMNS, np.column_stack([time, instruments]).tolist())


def find_annotation_files(folder: Path) -> dict[int, Path]:
    """The ``annotations_NN.csv`` files of ``folder`` or of its ``annotations/`` subfolder.

    ``folder`` may be the annotations folder itself or a PitVis dataset root.
    """
    _check_folder(folder)
    for candidate in (folder, folder / ANNOTATIONS_FOLDER):
        found: dict[int, Path] = {}
        for video, path in _numbered_files(candidate, ANNOTATIONS_FILE):
            if video in found:
                raise OrstreamError(f"{found[video]} and {path} both hold video {video}")
            found[video] = path
        if found:
            return dict(sorted(found.items()))
    raise OrstreamError(
        f"{folder}: no annotations_NN.csv files here or in {folder / ANNOTATIONS_FOLDER}"
    )


def find_prediction_files(folder: Path) -> PredictionFiles:
    """The step and instrument submission files of a prediction folder (see the module doc)."""
    _check_folder(folder)
    steps: dict[int, Path] = {}
    instruments: dict[int, Path] = {}
    for place, required in (
        (folder, None),
        (folder / STEPS_FOLDER, STEPS_FOLDER),
        (folder / INSTRUMENTS_FOLDER, INSTRUMENTS_FOLDER),
    ):
        for video, path in _numbered_files(place, PREDICTION_NAME):
            kind = _submission_kind(path)
            if required is not None and kind != required:
                raise OrstreamError(f"{path}: a {kind} file sitting in {required}/")
            kinds = {STEPS_FOLDER: [steps], INSTRUMENTS_FOLDER: [instruments]}.get(
                kind, [steps, instruments]
            )
            for chosen in kinds:
                if video in chosen:
                    raise OrstreamError(
                        f"{chosen[video]} and {path} both hold {kind} predictions for video {video}"
                    )
                chosen[video] = path
    steps, instruments = dict(sorted(steps.items())), dict(sorted(instruments.items()))
    if not steps and not instruments:
        raise OrstreamError(
            f"{folder}: no prediction files (NN.csv or video_NN.csv, directly or "
            f"in {STEPS_FOLDER}/ and {INSTRUMENTS_FOLDER}/)"
        )
    return PredictionFiles(steps=steps, instruments=instruments)


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise OrstreamError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise OrstreamError(f"{folder}: not a folder")


def _numbered_files(folder: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    """(number in the name, path) of the files of ``folder`` whose names match ``pattern``."""
    if not folder.is_dir():
        return []
    matches = ((pattern.fullmatch(path.name), path) for path in sorted(folder.iterdir()))
    return [(int(match.group(1)), path) for match, path in matches if match and path.is_file()]


def _submission_kind(path: Path) -> str:
    header, _ = _read_header(path)
    if sorted(header) == sorted(STEP_SUBMISSION_COLUMNS):
        return STEPS_FOLDER
    if sorted(header) == sorted(INSTRUMENT_SUBMISSION_COLUMNS):
        return INSTRUMENTS_FOLDER
    if sorted(header) == sorted(MULTITASK_SUBMISSION_COLUMNS):
        return MULTITASK
    raise OrstreamError(
        f"{path}: header {','.join(header)} is neither a step submission "
        f"({','.join(STEP_SUBMISSION_COLUMNS)}), an instrument submission "
        f"({','.join(INSTRUMENT_SUBMISSION_COLUMNS)}) nor a multitask one "
        f"({','.join(MULTITASK_SUBMISSION_COLUMNS)})"
    )


def _unused_columns(path: Path, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The columns of a multitask submission other than ``wanted`` (a reader of one kind leaves
    them unused); none for any other file, whose columns are checked strictly."""
    header, _ = _read_header(path)
    if sorted(header) == sorted(MULTITASK_SUBMISSION_COLUMNS):
        return tuple(name for name in MULTITASK_SUBMISSION_COLUMNS if name not in wanted)
    return ()


def _open(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers."""
    if not path.exists():
        raise OrstreamError(f"{path}: no such file")
    if not path.is_file():
        raise OrstreamError(f"{path}: not a file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise OrstreamError(f"{path}: not a text CSV file (not UTF-8)") from None
    except csv.Error as error:
        raise OrstreamError(f"{path}: not a readable CSV file ({error})") from None
    except OSError as error:
        raise OrstreamError(f"{path}: cannot read ({error.strerror})") from None


def _read_header(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    rows = _open(path)
    if not rows:
        raise OrstreamError(f"{path}: empty file (no header, no rows)")
    return [cell.strip() for cell in rows[0][1]], rows[1:]


def _read_table(
    path: Path, columns: tuple[str, ...], unused: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Integer values of ``columns`` (int64 [N, len(columns)]) and each row's line number;
    the header must hold exactly ``columns`` and ``unused``."""
    header, rows = _read_header(path)
    missing = [name for name in (*columns, *unused) if name not in header]
    unexpected = [name for name in header if name not in (*columns, *unused)]
    if missing or unexpected or len(set(header)) != len(header):
        problems = [
            f"missing {','.join(missing)}" if missing else "",
            f"unexpected {','.join(unexpected)}" if unexpected else "",
            "repeated columns" if len(set(header)) != len(header) else "",
        ]
        raise OrstreamError(
            f"{path}: expected columns {','.join(columns)}, got {','.join(header)} "
            f"({'; '.join(p for p in problems if p)})"
        )
    if not rows:
        raise OrstreamError(f"{path}: header only, no rows")
    order = [header.index(name) for name in columns]
    values = np.empty((len(rows), len(columns)), dtype=np.int64)
    lines = np.empty(len(rows), dtype=np.int64)
    for i, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise OrstreamError(f"{path}, line {line}: {len(row)} values for {len(header)} columns")
        lines[i] = line
        for j, column in enumerate(order):
            cell = row[column].strip()
            try:
                values[i, j] = int(cell)
            except ValueError:
                raise OrstreamError(
                    f"{path}, line {line}: {header[column]} is {cell!r}, not an integer"
                ) from None
    return values, lines


def _location(index: int, lines: np.ndarray | None) -> str:
    return f"line {lines[index]}" if lines is not None else f"row {index + 1}"


def _check_time(where: str, time: np.ndarray, lines: np.ndarray | None = None) -> None:
    if time.size == 0:
        raise OrstreamError(f"{where}: no rows")
    if time[0] < 0:
        raise OrstreamError(f"{where}: int_time {time[0]} is negative ({_location(0, lines)})")
    going_back = np.flatnonzero(np.diff(time) <= 0)
    if going_back.size:
        i = int(going_back[0]) + 1
        problem = "repeats" if time[i] == time[i - 1] else "goes back"
        raise OrstreamError(
            f"{where}: int_time {problem} ({time[i - 1]} then {time[i]} at {_location(i, lines)})"
        )


def _check_codes(
    where: str,
    column: str,
    codes: np.ndarray,
    allowed: tuple[int, ...] | frozenset[int],
    lines: np.ndarray | None = None,
) -> None:
    bad = np.flatnonzero(~np.isin(codes, np.array(sorted(allowed))))
    if bad.size:
        i = int(bad[0])
        raise OrstreamError(
            f"{where}: {column} {codes[i]} is not a PitVis code "
            f"({_location(i, lines)}; allowed {_describe(allowed)})"
        )


def _check_instrument_codes(
    where: str, instruments: np.ndarray, lines: np.ndarray | None = None
) -> None:
    for slot in range(2):
        _check_codes(
            where, f"int_instrument{slot + 1}", instruments[:, slot], INSTRUMENT_SLOT_CODES, lines
        )


def _describe(codes: tuple[int, ...] | frozenset[int]) -> str:
    ordered = sorted(codes)
    negatives = [str(code) for code in ordered if code <= 0]
    positives = [code for code in ordered if code > 0]
    return ", ".join([*negatives, f"{positives[0]}..{positives[-1]}"])


def _as_rows(where: str, name: str, values: np.ndarray, width: int) -> np.ndarray:
    """``values`` as int64 [N] (width 1) or [N, width], refusing other shapes and non-integers."""
    array = np.asarray(values)
    shaped = array.ndim == 1 if width == 1 else array.ndim == 2 and array.shape[1] == width
    if not shaped:
        raise OrstreamError(
            f"{where}: {name} has shape {array.shape}, expected "
            f"{'[N]' if width == 1 else f'[N, {width}]'}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise OrstreamError(f"{where}: {name} holds {array.dtype}, not integer codes")
    return array.astype(np.int64)


def _check_same_length(where: str, *arrays: np.ndarray) -> None:
    lengths = {len(array) for array in arrays}
    if len(lengths) > 1:
        raise OrstreamError(f"{where}: columns of different lengths {sorted(lengths)}")


def _write_rows(
    path: Path, columns: tuple[str, ...], rows: list[list[int]] | list[tuple[int, str]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
