"""Writes phantom datasets in the PitVis layout, with masks, narrations and titles.

The PitVis layout (:mod:`orstream.pitvis.layout`) under the output folder::

    videos/video_NN.mp4                 H.264, yuv420p
    annotations/annotations_NN.csv      int_video,int_time,int_step,int_instrument1,int_instrument2
    map_steps.csv, map_instruments.csv  PitVis code -> name
    masks/video_NN/TTTTT.png            per second: uint8, pixel = instrument code, 0 = none
    masks/README.md                     the mask format
    anatomy/video_NN/TTTTT.png          per second: uint8, pixel = anatomy code (101 = sella)
    anatomy/README.md                   the anatomy mask format
    narrations/narrations_NN.csv        int_video,int_start,int_end,text (10-second clips)
    titles.csv                          int_video,title
    phantom.json                        generator parameters

Every case lasts ``seconds``, or, with ``max_seconds`` set, case lengths are spread evenly from
``seconds`` (the first video) to ``max_seconds`` (the last), so one dataset covers short and
long cases; phantom step durations scale with the case length, so a model must see both.

Labels are taken from the rendered frame at each whole second (frame ``round(t * fps)``), so
they, the masks, the anatomy masks and the video always agree.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.pitvis import layout

PHANTOM_VERSION = "1.1"
"""Version of the phantom's look and plan; bumped whenever the same seed would change output."""

MASKS_README = """# Instrument masks

One PNG per annotated second: `masks/video_NN/TTTTT.png`, where TTTTT is `int_time` (seconds,
zero-padded to 5 digits), taken from frame `round(TTTTT * fps)` of `videos/video_NN.mp4`.

- single-channel 8-bit, same width and height as the video;
- pixel value = PitVis instrument code (1..18) of the instrument covering that pixel, 0 = none
  (tissue, background or outside the circular field of view);
- where two instruments overlap, the one in front wins;
- an instrument is listed in `annotations_NN.csv` for that second when it covers at least the
  visibility threshold (0.05 % of the field of view, and at least 4 pixels).
"""

ANATOMY_README = """# Anatomy masks

One PNG per annotated second: `anatomy/video_NN/TTTTT.png`, the same frame as
`masks/video_NN/TTTTT.png` (frame `round(TTTTT * fps)` of `videos/video_NN.mp4`).

- single-channel 8-bit, same width and height as the video;
- pixel value = anatomy code, 0 = none; codes are above 100 so they never meet an instrument
  code: 101 = sella, the bony sellar floor bulging into the sphenoid sinus and, once opened, its
  window (exposed dura, the defect behind it, the bony rim);
- the sella is in sight from sphenoid sinus clearance (step 4) to dural sealant (step 12);
  where blood, clot, tumour, an incision, a graft, fat or a gasket covers it the pixels are 0,
  while bone dust, sinus mucosa and translucent sealant leave it the sella;
- 0 outside the circular field of view and wherever an instrument is in front (the non-zero
  pixels of the instrument mask of the same second); smoke and motion blur do not change it;
- during the short cross-fade between two steps' views (0.3 s either side of a step change),
  the mask is that of the current step's view, the step `annotations_NN.csv` gives.
"""


@dataclass(frozen=True)
class PhantomSpec:
    """Parameters of a phantom dataset (recorded in ``phantom.json``)."""

    cases: int
    seconds: int
    seed: int
    difficulty: str = "normal"
    width: int = 1280
    height: int = 720
    fps: float = 24.0
    first_video: int = 1
    max_seconds: int | None = None

    def check(self) -> None:
        """OrstreamError with one clear line for a value that cannot make a dataset."""
        if self.cases < 1:
            raise OrstreamError(f"--cases must be at least 1 (got {self.cases})")
        if self.seconds < 1:
            raise OrstreamError(f"--seconds must be at least 1 (got {self.seconds})")
        if self.max_seconds is not None and self.max_seconds < self.seconds:
            raise OrstreamError(
                f"--max-seconds must not be below --seconds (got {self.max_seconds} < "
                f"{self.seconds})"
            )
        if self.seed < 0:
            raise OrstreamError(f"--seed must not be negative (got {self.seed})")
        if not 1.0 <= self.fps <= 120.0:
            raise OrstreamError(f"--fps must be between 1 and 120 (got {self.fps:g})")
        for name, value in (("--width", self.width), ("--height", self.height)):
            if value < 32 or value > 4096 or value % 2:
                raise OrstreamError(f"{name} must be an even number from 32 to 4096 (got {value})")
        if self.first_video < 1:
            raise OrstreamError(f"--first-video must be at least 1 (got {self.first_video})")
        from orstream.streams.phantom.difficulty import get_difficulty

        get_difficulty(self.difficulty)

    @property
    def videos(self) -> list[int]:
        """Video numbers written, in order."""
        return list(range(self.first_video, self.first_video + self.cases))

    def case_seconds(self, video: int) -> int:
        """Length of case ``video`` (seconds)."""
        if self.max_seconds is None or self.cases == 1:
            return self.seconds
        fraction = (video - self.first_video) / (self.cases - 1)
        return round(self.seconds + fraction * (self.max_seconds - self.seconds))


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out``, refusing a non-empty folder unless ``overwrite`` (then clear our files)."""
    if out.exists() and not out.is_dir():
        raise OrstreamError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OrstreamError(f"{out}: folder is not empty (use --overwrite to replace it)")
        for name in layout.ENTRIES:
            entry = out / name
            if entry.is_dir():
                shutil.rmtree(entry)
            elif entry.exists():
                entry.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".orstream-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OrstreamError(f"{out}: cannot write here ({error.strerror or error})") from None


class Progress:
    """A one-line progress report on stderr, refreshed at most twice a second."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.start = time.monotonic()
        self.shown = 0.0

    def note(self, message: str) -> None:
        """Show a phase of work (e.g. painting textures)."""
        print(f"\r{self.label}: {message}\033[K", end="", file=sys.stderr, flush=True)

    def update(self, done: int) -> None:
        """Show frames done out of the total, and the rate."""
        now = time.monotonic()
        if now - self.shown < 0.5 and done < self.total:
            return
        self.shown = now
        rate = done / max(1e-6, now - self.start)
        self.note(f"{done}/{self.total} frames ({100 * done // self.total}%), {rate:.0f} frames/s")
        if done >= self.total:
            print(file=sys.stderr, flush=True)


def write_case(spec: PhantomSpec, video: int, out: Path) -> list[tuple[int, int, str]]:
    """Render, encode and label one case; returns its narrations."""
    import cv2

    from orstream.pitvis.csv_files import Annotations, write_annotations
    from orstream.streams.phantom.difficulty import get_difficulty
    from orstream.streams.phantom.narration import narrate_case
    from orstream.streams.phantom.renderer import CaseRenderer, case_rng
    from orstream.streams.sources.video_file import H264Writer

    seconds = spec.case_seconds(video)
    frames = round(seconds * spec.fps)
    progress = Progress(layout.video_stem(video), frames)
    renderer = CaseRenderer(
        spec.seed,
        video,
        seconds,
        get_difficulty(spec.difficulty),
        spec.width,
        spec.height,
        spec.fps,
        progress.note,
    )
    label_frames = {round(t * spec.fps): t for t in range(seconds)}
    steps = np.empty(seconds, np.int64)
    slots = np.empty((seconds, 2), np.int64)
    layout.masks_folder(out, video).mkdir(parents=True, exist_ok=True)
    layout.anatomy_folder(out, video).mkdir(parents=True, exist_ok=True)
    canvas = np.zeros((spec.height, spec.width, 3), np.uint8)
    mask = np.zeros((spec.height, spec.width), np.uint8)
    anatomy = np.zeros((spec.height, spec.width), np.uint8)
    video_path = layout.video_path(out, video)
    with H264Writer(video_path, spec.width, spec.height, spec.fps) as video_out:
        for index in range(frames):
            second = label_frames.get(index)
            if second is None:
                shown = renderer.render(index, canvas)
            else:
                mask.fill(0)
                anatomy.fill(0)
                shown = renderer.render(index, canvas, mask, anatomy)
            video_out.write(shown.image)
            if second is not None:
                steps[second] = shown.step
                slots[second] = shown.slots
                cv2.imwrite(str(layout.mask_path(out, video, second)), mask)
                cv2.imwrite(str(layout.anatomy_path(out, video, second)), anatomy)
            progress.update(index + 1)
    write_annotations(
        layout.annotations_path(out, video),
        Annotations(video, np.arange(seconds, dtype=np.int64), steps, slots),
    )
    return narrate_case(case_rng(spec.seed, video, 3), steps, slots)


def _write_case_job(args: tuple[PhantomSpec, int, Path]) -> list[tuple[int, int, str]]:
    spec, video, out = args
    return write_case(spec, video, out)


def write_dataset(spec: PhantomSpec, out: Path, overwrite: bool = False, jobs: int = 1) -> None:
    """Write a whole phantom dataset (see the module docstring for the layout)."""
    from orstream.pitvis.csv_files import write_label_maps
    from orstream.streams.phantom.narration import case_title
    from orstream.streams.phantom.renderer import case_rng

    spec.check()
    if jobs < 1:
        raise OrstreamError(f"--jobs must be at least 1 (got {jobs})")
    prepare_output(out, overwrite)
    for folder in (
        layout.VIDEOS_FOLDER,
        layout.ANNOTATIONS_FOLDER,
        layout.MASKS_FOLDER,
        layout.ANATOMY_FOLDER,
        layout.NARRATIONS_FOLDER,
    ):
        (out / folder).mkdir(exist_ok=True)
    (out / layout.MASKS_FOLDER / "README.md").write_text(MASKS_README)
    (out / layout.ANATOMY_FOLDER / "README.md").write_text(ANATOMY_README)
    write_label_maps(out)
    work = [(spec, video, out) for video in spec.videos]
    if jobs == 1:
        results = [_write_case_job(item) for item in work]
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            results = list(pool.map(_write_case_job, work))
    with (out / layout.TITLES_FILE).open("w", newline="") as titles:
        writer = csv.writer(titles)
        writer.writerow(["int_video", "title"])
        for video in spec.videos:
            writer.writerow([video, case_title(case_rng(spec.seed, video, 4), video)])
    for video, narrations in zip(spec.videos, results, strict=True):
        with layout.narrations_path(out, video).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["int_video", "int_start", "int_end", "text"])
            for start, end, text in narrations:
                writer.writerow([video, start, end, text])
    meta = {
        "generator": "orstream phantom",
        "version": PHANTOM_VERSION,
        **asdict(spec),
        "videos": spec.videos,
        "case_seconds": [spec.case_seconds(video) for video in spec.videos],
        "codec": "h264",
        "pixel_format": "yuv420p",
        "label_frame": "round(int_time * fps)",
    }
    (out / layout.PHANTOM_METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
