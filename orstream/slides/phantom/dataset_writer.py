"""Writes a slide phantom dataset.

Under the output folder::

    slides/slide_NNN.tiff   pyramidal tiled JPEG TIFF (OpenSlide's generic-tiff), level 0 at
                            the given µm per pixel, each further level half the one before
    masks/slide_NNN.png     region mask: uint8, pixel = tissue class (classes.csv), one pixel
                            per ``mask_downsample`` x ``mask_downsample`` level-0 pixels
                            (the class at that block's centre)
    classes.csv             value,name of the mask's classes
    labels.csv              slide,subtype,tumor,tumor_fraction,necrosis,width,height,mpp,
                            mask_downsample (tumor_fraction: tumour pixels / tissue pixels of
                            the mask)
    captions.csv            slide,caption
    questions.csv           SlideBench VQA columns: ID,Slide,Tumor,Broad Category,
                            Narrow Category,Question,A,B,C,D,Answer (Answer = the option letter)

Subtypes (none, glandular, solid) take turns in an order shuffled by the seed, so any three
consecutive slides hold each once.
"""

from __future__ import annotations

import csv
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.slides.phantom.pyramid_writer import TILE, RowProgress, write_pyramid
from orstream.slides.phantom.slide_plan import plan_slide
from orstream.slides.phantom.slide_text import QUESTION_COLUMNS, caption, questions, slide_facts
from orstream.slides.phantom.tile_texture import render_tile
from orstream.slides.phantom.tissue_classes import SUBTYPES, TISSUE_CLASS_NAMES

PHANTOM_MPP = 0.5
"""Level-0 microns per pixel, a 20x scan."""
DEFAULT_SIZE = 20_000
MIN_SIZE = 1024
LABEL_COLUMNS = (
    "slide", "subtype", "tumor", "tumor_fraction", "necrosis", "width", "height", "mpp",
    "mask_downsample",
)  # fmt: skip


def write_slide_dataset(out: Path, slides: int, seed: int, size: int = DEFAULT_SIZE) -> float:
    """Write ``slides`` phantom slides of ``size`` x ``size`` pixels under ``out``; returns the
    mean seconds per slide."""
    if slides < 1:
        raise OrstreamError(f"--slides must be at least 1, not {slides}")
    if size < MIN_SIZE:
        raise OrstreamError(f"--size must be at least {MIN_SIZE} pixels, not {size}")
    if out.exists() and any(out.iterdir()):
        raise OrstreamError(f"{out} is not empty: give a new or empty folder")
    import cv2

    for folder in ("slides", "masks"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = [SUBTYPES[i] for i in rng.permutation(len(SUBTYPES))]
    labels: list[list[object]] = []
    captions: list[list[object]] = []
    rows: list[dict[str, str]] = []
    started = time.perf_counter()
    for index in range(slides):
        name = f"slide_{index + 1:03d}"
        plan = plan_slide(name, size, PHANTOM_MPP, order[index % 3], int(rng.integers(2**31)))
        mask = plan.region_mask()
        cv2.imwrite(str(out / "masks" / f"{name}.png"), mask)
        write_pyramid(
            out / "slides" / f"{name}.tiff",
            plan.width,
            plan.height,
            plan.mpp,
            partial(render_tile, plan),
            f"orstream slide phantom {name} seed {seed}",
            _progress(f"{name} ({index + 1}/{slides})"),
        )
        facts = slide_facts(name, plan.subtype, mask)
        labels.append(
            [name, plan.subtype, int(facts.tumour), f"{facts.tumour_fraction:.6f}",
             int(facts.necrosis), plan.width, plan.height, plan.mpp, plan.mask_downsample]
        )  # fmt: skip
        captions.append([name, caption(facts, rng)])
        rows.extend(questions(facts, rng))
    seconds = (time.perf_counter() - started) / slides
    _write_csv(out / "labels.csv", LABEL_COLUMNS, labels)
    _write_csv(out / "captions.csv", ("slide", "caption"), captions)
    _write_csv(
        out / "questions.csv",
        QUESTION_COLUMNS,
        [[i + 1, *(row[c] for c in QUESTION_COLUMNS[1:])] for i, row in enumerate(rows)],
    )
    _write_csv(
        out / "classes.csv",
        ("value", "name"),
        [[int(c), name] for c, name in TISSUE_CLASS_NAMES.items()],
    )
    return seconds


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _progress(label: str) -> RowProgress:
    """Reports rows of tiles on stderr: every row in place on a terminal, else each level."""
    interactive = sys.stderr.isatty()

    def report(level: int, rows: int, height: int) -> None:
        total = -(-height // TILE)
        finished = rows == total
        if interactive:
            end = "\n" if finished else ""
            print(f"\r{label}: level {level} row {rows}/{total}", end=end, file=sys.stderr)
        elif finished:
            print(f"{label}: level {level} done ({total} rows)", file=sys.stderr)

    return report
