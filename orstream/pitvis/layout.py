"""The PitVis data set layout: the names under a data set root, and finding its videos.

A data set root holds::

    videos/video_NN.mp4                 the cases
    annotations/annotations_NN.csv      one row per second (``orstream.pitvis.csv_files``)
    map_steps.csv, map_instruments.csv  PitVis code -> name

and a phantom data set (``orstream phantom make``) also::

    masks/video_NN/TTTTT.png            per annotated second: pixel = instrument code
    anatomy/video_NN/TTTTT.png          per annotated second: pixel = anatomy code
    narrations/narrations_NN.csv        narrated clips of each case
    titles.csv                          a title per case
    phantom.json                        the generator's parameters

NN is the video number, at least two digits; TTTTT is the second (``int_time``), five digits.
Writers and readers build every path here, so the layout is spelled once. The finders read a
video's number from its file name and look for its other files under the canonical names of
that number.
"""

from __future__ import annotations

import re
from pathlib import Path

from orstream.errors import OrstreamError

VIDEOS_FOLDER = "videos"
ANNOTATIONS_FOLDER = "annotations"
MASKS_FOLDER = "masks"
ANATOMY_FOLDER = "anatomy"
NARRATIONS_FOLDER = "narrations"
STEP_MAP_FILE = "map_steps.csv"
INSTRUMENT_MAP_FILE = "map_instruments.csv"
TITLES_FILE = "titles.csv"
PHANTOM_METADATA_FILE = "phantom.json"
ENTRIES = (
    VIDEOS_FOLDER,
    ANNOTATIONS_FOLDER,
    MASKS_FOLDER,
    ANATOMY_FOLDER,
    NARRATIONS_FOLDER,
    STEP_MAP_FILE,
    INSTRUMENT_MAP_FILE,
    TITLES_FILE,
    PHANTOM_METADATA_FILE,
)
"""Everything the layout puts directly under a root."""

VIDEO_NUMBER = re.compile(r"video_(\d+)")
"""The video number a name carries (``video_07`` -> 7), in a file name or a source URI."""
VIDEO_FILE = re.compile(VIDEO_NUMBER.pattern + r"\.mp4")
ANNOTATIONS_FILE = re.compile(r"annotations_(\d+)\.csv")
SECOND_FILE = re.compile(r"([0-9]+)\.png")


def video_stem(video: int) -> str:
    """``video_NN``: the name of video ``video`` without suffix, also its mask folders' name."""
    return f"video_{_number('video number', video):02d}"


def video_path(root: Path, video: int) -> Path:
    return root / VIDEOS_FOLDER / f"{video_stem(video)}.mp4"


def annotations_path(root: Path, video: int) -> Path:
    return root / ANNOTATIONS_FOLDER / f"annotations_{_number('video number', video):02d}.csv"


def narrations_path(root: Path, video: int) -> Path:
    return root / NARRATIONS_FOLDER / f"narrations_{_number('video number', video):02d}.csv"


def masks_folder(root: Path, video: int) -> Path:
    """The folder of a video's instrument masks, one PNG per annotated second."""
    return root / MASKS_FOLDER / video_stem(video)


def anatomy_folder(root: Path, video: int) -> Path:
    """The folder of a video's anatomy masks, one PNG per annotated second."""
    return root / ANATOMY_FOLDER / video_stem(video)


def mask_path(root: Path, video: int, second: int) -> Path:
    """The instrument mask of second ``second`` of a video."""
    return masks_folder(root, video) / _second_name(second)


def anatomy_path(root: Path, video: int, second: int) -> Path:
    """The anatomy mask of second ``second`` of a video."""
    return anatomy_folder(root, video) / _second_name(second)


def has_anatomy(root: Path) -> bool:
    """Whether the data set has anatomy masks (then beside every instrument mask)."""
    return (root / ANATOMY_FOLDER).is_dir()


def mask_seconds(root: Path, video: int) -> list[int]:
    """The seconds of a video that have an instrument mask, in order ([] without any)."""
    folder = masks_folder(root, video)
    if not folder.is_dir():
        return []
    named = (SECOND_FILE.fullmatch(path.name) for path in folder.iterdir())
    return sorted(int(match.group(1)) for match in named if match)


def video_files(root: Path) -> dict[int, Path]:
    """Video number -> path of every ``videos/video_NN.mp4`` of ``root``, in number order.

    Empty when there is no video or no ``videos/`` folder.

    Raises:
        OrstreamError: two files hold the same number (``video_1.mp4`` and ``video_01.mp4``).
    """
    folder = root / VIDEOS_FOLDER
    if not folder.is_dir():
        return {}
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        named = VIDEO_FILE.fullmatch(path.name)
        if not named:
            continue
        video = int(named.group(1))
        if video in found:
            raise OrstreamError(f"{found[video]} and {path} both hold video {video}")
        found[video] = path
    return dict(sorted(found.items()))


def find_videos(root: Path) -> dict[int, Path]:
    """Video number -> path of the videos of a data set root.

    Raises:
        OrstreamError: a missing root or ``videos/`` folder, or no videos.
    """
    return _find(root, (), "expected the PitVis layout")


def find_annotated_videos(root: Path) -> dict[int, tuple[Path, Path]]:
    """Video number -> (video path, annotations path) of a data set root.

    Raises:
        OrstreamError: a missing root or folder, no videos, or a video without annotations.
    """
    videos = _find(root, (ANNOTATIONS_FOLDER,), "expected the PitVis layout")
    found: dict[int, tuple[Path, Path]] = {}
    for video, path in videos.items():
        annotations = annotations_path(root, video)
        if not annotations.is_file():
            raise OrstreamError(f"{annotations}: annotations missing for {path.name}")
        found[video] = (path, annotations)
    return found


def find_masked_videos(root: Path) -> dict[int, Path]:
    """Video number -> path of the videos of a data set root with instrument masks.

    Raises:
        OrstreamError: a missing root or folder, no videos, or a video without a mask folder.
    """
    videos = _find(root, (MASKS_FOLDER,), "expected the PitVis layout with masks")
    for video, path in videos.items():
        masks = masks_folder(root, video)
        if not masks.is_dir():
            raise OrstreamError(f"{masks}: masks missing for {path.name}")
    return videos


def _find(root: Path, folders: tuple[str, ...], expected: str) -> dict[int, Path]:
    """The videos of ``root``, once the root and ``videos/`` and ``folders`` are there."""
    if not root.is_dir():
        raise OrstreamError(f"{root}: dataset root not found")
    for name in (VIDEOS_FOLDER, *folders):
        if not (root / name).is_dir():
            raise OrstreamError(f"{root / name}: folder missing ({expected})")
    videos = video_files(root)
    if not videos:
        raise OrstreamError(f"{root / VIDEOS_FOLDER}: no video_NN.mp4 files")
    return videos


def _second_name(second: int) -> str:
    return f"{_number('second', second):05d}.png"


def _number(name: str, value: int) -> int:
    if value < 0:
        raise OrstreamError(f"a PitVis {name} is 0 or more, not {value}")
    return value


def parse_videos(text: str) -> list[int]:
    """``1-8,10`` -> [1, ..., 8, 10].

    Raises:
        OrstreamError: not a list of numbers and ranges.
    """
    videos: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            videos += range(int(first), int(last or first) + 1)
    except ValueError:
        raise OrstreamError(f"videos {text!r}: give numbers and ranges, e.g. 1-8,10") from None
    return videos
