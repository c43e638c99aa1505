"""How hard a phantom case is: one set of knobs per difficulty level."""

from __future__ import annotations

from dataclasses import dataclass

from orstream.errors import OrstreamError


@dataclass(frozen=True)
class Difficulty:
    """Knobs that make cases easier or harder to recognise.

    Attributes:
        name: ``easy``, ``normal`` or ``hard``.
        signature: strength (size and contrast) of each step's characteristic anatomy, 0..1.
        colour_jitter: spread of the per-case colour cast and tissue tone.
        clutter: chance that a scene also shows features of other steps (blood, bone, debris).
        camera_motion: multiplier on camera drift amplitude and speed.
        fast_moves_per_min: quick camera movements (with motion blur) per minute.
        smoke_chance: chance that drilling or coagulation raises smoke.
        return_chance: chance, per step change, of a short return to an earlier step.
        skip_chance: chance that each optional step is left out of a case.
        pause_chance: chance of an out-of-patient pause (lens cleaning) in mid case.
        busy: fraction of in-patient time that shows at least one instrument.
        second_instrument: chance that a second instrument joins the first.
    """

    name: str
    signature: float
    colour_jitter: float
    clutter: float
    camera_motion: float
    fast_moves_per_min: float
    smoke_chance: float
    return_chance: float
    skip_chance: float
    pause_chance: float
    busy: float
    second_instrument: float


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty("easy", 1.0, 0.03, 0.0, 0.6, 1.0, 0.2, 0.0, 0.1, 0.2, 0.75, 0.2),
    "normal": Difficulty("normal", 0.85, 0.04, 0.25, 1.0, 2.5, 0.4, 0.15, 0.2, 0.5, 0.8, 0.35),
    "hard": Difficulty("hard", 0.6, 0.08, 0.6, 1.5, 5.0, 0.6, 0.3, 0.3, 0.8, 0.85, 0.5),
}


def get_difficulty(name: str) -> Difficulty:
    """The :class:`Difficulty` called ``name``; OrstreamError for an unknown name."""
    try:
        return DIFFICULTIES[name]
    except KeyError:
        known = ", ".join(DIFFICULTIES)
        raise OrstreamError(f"unknown difficulty {name!r} (choose one of {known})") from None
