"""What happens when in a phantom case: steps, instruments, smoke and camera events.

A :class:`CasePlan` is drawn once per case from a seeded generator and is the single source of
the case's ground truth over time: the step of every second, which instruments are in play,
where they come from, and the camera's moves. Segments start and end on whole seconds, like the
1 Hz PitVis annotations; instruments move continuously.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from orstream.labels import OUT_OF_PATIENT
from orstream.streams.phantom.difficulty import Difficulty

STEP_WEIGHTS: dict[int, float] = {
    1: 0.11,
    2: 0.07,
    3: 0.04,
    4: 0.11,
    5: 0.07,
    6: 0.05,
    7: 0.04,
    8: 0.05,
    9: 0.2,
    10: 0.04,
    11: 0.05,
    12: 0.03,
    13: 0.06,
    14: 0.03,
}
"""Typical share of a case's in-patient time per step (tumour excision is the longest)."""

OPTIONAL_STEPS = frozenset({3, 6, 7, 10, 11, 12, 14})
"""Steps that real cases sometimes leave out."""

STEP_INSTRUMENTS: dict[int, tuple[tuple[int, float], ...]] = {
    1: ((16, 3.0), (5, 2.0), (1, 1.5), (10, 1.0), (2, 0.5)),
    2: ((17, 3.0), (8, 2.0), (16, 2.0), (10, 1.0), (15, 0.5)),
    3: ((2, 3.0), (5, 2.0), (16, 1.5)),
    4: ((8, 2.5), (11, 2.0), (16, 2.0), (17, 1.5), (10, 1.0)),
    5: ((17, 3.0), (8, 2.5), (16, 1.5), (15, 1.0), (9, 0.7)),
    6: ((1, 3.0), (16, 2.5), (6, 2.0), (7, 1.5)),
    7: ((3, 2.0), (14, 2.0), (16, 1.0)),
    8: ((12, 3.0), (4, 2.0), (9, 1.0), (16, 1.0)),
    9: ((13, 3.0), (16, 3.0), (11, 2.0), (3, 1.0), (14, 0.7)),
    10: ((3, 2.5), (14, 1.5), (16, 1.0)),
    11: ((14, 2.5), (5, 1.5), (3, 1.0)),
    12: ((18, 3.0), (16, 1.0)),
    13: ((3, 2.0), (10, 1.5), (16, 1.0)),
    14: ((16, 3.0), (7, 2.0)),
}
"""Instruments used in each step, with relative weights (first: the most typical)."""

MIN_SEGMENT_S = 2
"""Shortest step segment, in seconds."""


@dataclass(frozen=True)
class Segment:
    """A stretch of whole seconds [start, end) with one step code (-1: out of patient)."""

    step: int
    start: int
    end: int
    pause: bool = False


@dataclass(frozen=True)
class Appearance:
    """One instrument entering the view, working, and leaving.

    Positions are in field-of-view radii from the centre of the view; angles in radians,
    measured from +x towards +y (image down).
    """

    code: int
    start: float
    end: float
    enter_s: float
    leave_s: float
    rim_angle: float
    target: tuple[float, float]
    scale: float
    phase: float

    def insertion(self, t: float) -> float:
        """How far in the instrument is at time ``t``: 0 outside the view, 1 at work."""
        if t <= self.start or t >= self.end:
            return 0.0
        rise = min(1.0, (t - self.start) / self.enter_s)
        fall = min(1.0, (self.end - t) / self.leave_s)
        x = min(rise, fall)
        return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class Puff:
    """Smoke from drilling or coagulation: rises, lingers and clears."""

    start: float
    duration: float
    density: float

    def amount(self, t: float) -> float:
        """Haze density at time ``t`` (0 when clear)."""
        x = (t - self.start) / self.duration
        if x <= 0.0 or x >= 1.0:
            return 0.0
        return self.density * min(1.0, 4.0 * x) * (1.0 - x) ** 1.5


@dataclass(frozen=True)
class Move:
    """A quick camera movement: a glance away and back (causes motion blur)."""

    start: float
    rise_s: float
    hold_s: float
    offset: tuple[float, float]

    def shift(self, t: float) -> tuple[float, float]:
        """Camera offset (normalised texture units) contributed at time ``t``."""
        x = t - self.start
        end = 2 * self.rise_s + self.hold_s
        if x <= 0.0 or x >= end:
            return 0.0, 0.0
        w = min(1.0, x / self.rise_s, (end - x) / self.rise_s)
        w = w * w * (3.0 - 2.0 * w)
        return self.offset[0] * w, self.offset[1] * w


@dataclass(frozen=True)
class Waypoint:
    """A camera pose the endoscope glides to from ``time`` on, over ``glide_s`` seconds.

    ``u`` and ``v`` are the texture point at the centre of the view (normalised units),
    ``zoom`` the magnification and ``roll`` the rotation about the lens axis (radians).
    """

    time: float
    glide_s: float
    u: float
    v: float
    zoom: float
    roll: float


@dataclass(frozen=True)
class CasePlan:
    """Everything that happens in one case, fixed by its seed."""

    video: int
    seconds: int
    segments: tuple[Segment, ...]
    waypoints: tuple[tuple[Waypoint, ...], ...]
    appearances: tuple[Appearance, ...]
    puffs: tuple[Puff, ...]
    moves: tuple[Move, ...]
    drift: tuple[float, ...]

    def segment_index(self, t: float) -> int:
        """Index of the segment holding time ``t`` (clamped to the case)."""
        starts = [s.start for s in self.segments]
        return max(0, min(len(self.segments) - 1, bisect.bisect_right(starts, t) - 1))

    def step_at(self, t: float) -> int:
        """PitVis step code at time ``t`` seconds."""
        return self.segments[self.segment_index(t)].step

    def steps_per_second(self) -> np.ndarray:
        """Step code of every whole second, int64 [seconds]."""
        out = np.empty(self.seconds, np.int64)
        for segment in self.segments:
            out[segment.start : segment.end] = segment.step
        return out


def _split_durations(rng: np.random.Generator, steps: list[int], total: int) -> list[int]:
    """Whole-second durations for ``steps`` summing to ``total``, each at least the minimum."""
    weights = np.array([STEP_WEIGHTS[s] for s in steps]) * rng.lognormal(0.0, 0.35, len(steps))
    spare = total - MIN_SEGMENT_S * len(steps)
    raw = weights / weights.sum() * spare
    durations = np.floor(raw).astype(int)
    for i in np.argsort(raw - durations)[::-1][: spare - int(durations.sum())]:
        durations[i] += 1
    return [int(d) + MIN_SEGMENT_S for d in durations]


def _step_sequence(
    rng: np.random.Generator, inside: int, difficulty: Difficulty
) -> list[tuple[int, int, bool]]:
    """(step, seconds, pause) in order for the in-patient part of a case."""
    steps = [
        s for s in STEP_WEIGHTS if s not in OPTIONAL_STEPS or rng.random() >= difficulty.skip_chance
    ]
    fit = max(1, inside // MIN_SEGMENT_S)
    if len(steps) > fit:
        keep = np.sort(rng.choice(len(steps), fit, replace=False))
        steps = [steps[i] for i in keep]
    if inside < MIN_SEGMENT_S:
        return [(steps[0], inside, False)]
    parts = [
        (s, d, False) for s, d in zip(steps, _split_durations(rng, steps, inside), strict=True)
    ]
    out: list[tuple[int, int, bool]] = []
    for index, (step, duration, _) in enumerate(parts):
        can_split = duration >= 3 * MIN_SEGMENT_S and index > 0
        if can_split and rng.random() < difficulty.return_chance:
            back = 6 if step > 6 and rng.random() < 0.6 else parts[index - 1][0]
            short = max(MIN_SEGMENT_S, int(duration * rng.uniform(0.1, 0.25)))
            first = int(rng.integers(MIN_SEGMENT_S, duration - short - MIN_SEGMENT_S + 1))
            out += [
                (step, first, False),
                (back, short, False),
                (step, duration - short - first, False),
            ]
        else:
            out.append((step, duration, False))
    # A pause interrupts a step in progress, never one of the short returns.
    ahead = [max(step for step, _, _ in out[: i + 1]) for i in range(len(out))]
    long_enough = [
        i for i, (step, d, _) in enumerate(out) if d >= 3 * MIN_SEGMENT_S and step == ahead[i]
    ]
    if long_enough and rng.random() < difficulty.pause_chance:
        i = int(rng.choice(long_enough))
        step, duration, _ = out[i]
        pause = max(MIN_SEGMENT_S, int(duration * rng.uniform(0.15, 0.3)))
        first = (duration - pause) // 2
        out[i : i + 1] = [
            (step, first, False),
            (OUT_OF_PATIENT, pause, True),
            (step, duration - pause - first, False),
        ]
    return out


def _segments(rng: np.random.Generator, seconds: int, difficulty: Difficulty) -> list[Segment]:
    """Out of patient at both ends, the steps in between."""
    ends = round(seconds * rng.uniform(0.02, 0.05)) if seconds >= 8 else 0
    head = max(1, ends) if seconds >= 4 else 0
    tail = max(1, round(seconds * rng.uniform(0.02, 0.05))) if seconds >= 8 else 0
    inside = seconds - head - tail
    pieces: list[tuple[int, int, bool]] = []
    if head:
        pieces.append((OUT_OF_PATIENT, head, False))
    pieces += _step_sequence(rng, inside, difficulty)
    if tail:
        pieces.append((OUT_OF_PATIENT, tail, False))
    segments: list[Segment] = []
    t = 0
    for step, duration, pause in pieces:
        if duration <= 0:
            continue
        if segments and segments[-1].step == step and segments[-1].pause == pause:
            last = segments.pop()
            segments.append(Segment(step, last.start, t + duration, pause))
        else:
            segments.append(Segment(step, t, t + duration, pause))
        t += duration
    return segments


def _pick_instrument(rng: np.random.Generator, step: int, exclude: int = 0) -> int:
    codes = [c for c, _ in STEP_INSTRUMENTS[step] if c != exclude]
    weights = np.array([w for c, w in STEP_INSTRUMENTS[step] if c != exclude])
    return int(rng.choice(codes, p=weights / weights.sum()))


def _appearance(
    rng: np.random.Generator, code: int, start: float, end: float, side: float
) -> Appearance:
    """An instrument coming in from the lower left or right (sometimes from above)."""
    if rng.random() < 0.15:
        rim = -np.pi / 2 + rng.normal(0.0, 0.4)
    else:
        rim = np.pi / 2 - side * (0.75 + rng.normal(0.0, 0.3))
    direction = np.array([np.cos(rim), np.sin(rim)])
    across = np.array([-direction[1], direction[0]])
    target = direction * rng.uniform(-0.3, 0.35) + across * rng.normal(0.0, 0.18)
    length = end - start
    return Appearance(
        code=code,
        start=start,
        end=end,
        enter_s=min(length / 3, rng.uniform(0.4, 1.0)),
        leave_s=min(length / 3, rng.uniform(0.4, 1.0)),
        rim_angle=float(rim),
        target=(float(target[0]), float(target[1])),
        scale=float(rng.uniform(0.85, 1.3)),
        phase=float(rng.uniform(0.0, 2.0 * np.pi)),
    )


def _instruments(
    rng: np.random.Generator, segment: Segment, difficulty: Difficulty
) -> list[Appearance]:
    """Instruments over one in-patient segment: never more than two at once."""
    out: list[Appearance] = []
    t = segment.start + rng.uniform(0.0, 1.5)
    while t < segment.end - 1.0:
        if rng.random() < difficulty.busy:
            length = min(rng.uniform(3.0, 14.0), segment.end - 0.2 - t)
            if length < 1.0:
                break
            side = float(rng.choice([-1.0, 1.0]))
            first = _pick_instrument(rng, segment.step)
            out.append(_appearance(rng, first, t, t + length, side))
            if length > 3.0 and rng.random() < difficulty.second_instrument:
                start = t + rng.uniform(0.5, length / 2)
                end = min(t + length, start + rng.uniform(1.5, length))
                second = _pick_instrument(rng, segment.step, exclude=first)
                out.append(_appearance(rng, second, start, end, -side))
            t += length + rng.uniform(0.3, 1.5)
        else:
            t += rng.uniform(1.0, 4.0)
    return out


def _waypoints(
    rng: np.random.Generator, segment: Segment, difficulty: Difficulty
) -> tuple[Waypoint, ...]:
    """Where the endoscope looks during a segment: a new view every few seconds."""
    outside = segment.step == OUT_OF_PATIENT
    spread = (0.14 if outside else 0.08) * min(1.5, difficulty.camera_motion + 0.3)
    out = []
    t = float(segment.start)
    while t < segment.end:
        out.append(
            Waypoint(
                t,
                float(rng.uniform(1.2, 3.5)),
                float(rng.normal(0, spread)),
                float(rng.normal(0, spread)),
                float(rng.uniform(0.95, 1.5)),
                float(rng.normal(0, 0.15)),
            )
        )
        t += float(rng.uniform(2.0, 5.0) if outside else rng.uniform(5.0, 15.0))
    return tuple(out)


def build_plan(
    rng: np.random.Generator, video: int, seconds: int, difficulty: Difficulty
) -> CasePlan:
    """Draw the whole course of one case."""
    segments = _segments(rng, seconds, difficulty)
    waypoints = []
    appearances: list[Appearance] = []
    for segment in segments:
        waypoints.append(_waypoints(rng, segment, difficulty))
        if segment.step != OUT_OF_PATIENT:
            appearances += _instruments(rng, segment, difficulty)
    puffs = []
    for item in appearances:
        if item.code in (1, 17) and rng.random() < difficulty.smoke_chance:
            start = item.start + rng.uniform(0.3, 1.5)
            puffs.append(Puff(start, float(rng.uniform(2.0, 5.0)), float(rng.uniform(0.3, 0.75))))
    moves = []
    count = rng.poisson(difficulty.fast_moves_per_min * seconds / 60.0)
    for start in np.sort(rng.uniform(0.0, seconds, count)):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        size = rng.uniform(0.08, 0.2)
        moves.append(
            Move(
                float(start),
                float(rng.uniform(0.2, 0.5)),
                float(rng.uniform(0.5, 3.0)),
                (float(size * np.cos(angle)), float(size * np.sin(angle))),
            )
        )
    for segment in segments[1:]:
        if segment.step == OUT_OF_PATIENT or segment.pause:
            angle = rng.uniform(0.0, 2.0 * np.pi)
            moves.append(
                Move(
                    segment.start - 0.4,
                    0.35,
                    0.1,
                    (0.25 * float(np.cos(angle)), 0.25 * float(np.sin(angle))),
                )
            )
    drift = tuple(float(x) for x in rng.uniform(0.0, 2.0 * np.pi, 8))
    return CasePlan(
        video=video,
        seconds=seconds,
        segments=tuple(segments),
        waypoints=tuple(waypoints),
        appearances=tuple(sorted(appearances, key=lambda a: a.start)),
        puffs=tuple(puffs),
        moves=tuple(sorted(moves, key=lambda m: m.start)),
        drift=drift,
    )
