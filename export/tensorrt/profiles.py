"""``--profile name:min,opt,max``: optimisation profiles for a TensorRT build, checked against
a package's card.

Each of min, opt and max is a shape written ``1x3x144x256``. ``name`` is a graph input: one of
the card's inputs or a state input. Every problem is one line naming the option as given.

A package with a dynamic batch needs a profile for every graph input (TensorRT builds no
engine for a network with a dynamic input it has no range for); without ``--profile`` they
are :func:`batch_profiles`, 1 to ``max_batch`` rows on axis 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from orstream.errors import OrstreamError, describe_validation_error
from orstream.package.card import ModelCard
from orstream.package.engine_manifest import Profile, canonical_profiles

PROFILE_FORMAT = "name:min,opt,max with shapes like 1x3x144x256"


def parse_shape(text: str, option: str) -> tuple[int, ...]:
    """``1x3x144x256`` -> ``(1, 3, 144, 256)``; OrstreamError naming ``option`` otherwise."""
    parts = text.strip().split("x")
    if not all(part.isdigit() for part in parts):
        raise OrstreamError(
            f"--profile {option!r}: shape {text!r} is not dimensions joined by x "
            f"(expected {PROFILE_FORMAT})"
        )
    return tuple(int(part) for part in parts)


def parse_profile(text: str) -> Profile:
    """One ``--profile`` value as a :class:`Profile`; OrstreamError with one line otherwise."""
    name, colon, shapes = text.partition(":")
    name = name.strip()
    if not colon or not name:
        raise OrstreamError(f"--profile {text!r}: expected {PROFILE_FORMAT}")
    parts = shapes.split(",")
    if len(parts) != 3:
        raise OrstreamError(
            f"--profile {text!r}: expected three shapes (min,opt,max), got {len(parts)}"
        )
    low, opt, high = (parse_shape(part, text) for part in parts)
    try:
        return Profile(name=name, min=low, opt=opt, max=high)
    except ValidationError as error:
        message = describe_validation_error(error).removeprefix("Value error, ")
        raise OrstreamError(f"--profile {text!r}: {message}") from None


def batch_profiles(card: ModelCard, max_batch: int) -> tuple[Profile, ...]:
    """One profile per graph input: 1 to ``max_batch`` rows at the card's other dimensions,
    tuned for ``max_batch`` rows (the load batching exists for)."""
    return canonical_profiles(
        tuple(
            Profile(
                name=name,
                min=(1, *shape[1:]),
                opt=(max_batch, *shape[1:]),
                max=(max_batch, *shape[1:]),
            )
            for name, (shape, _) in card.graph_inputs().items()
        )
    )


def parse_profiles(texts: Sequence[str], card: ModelCard) -> tuple[Profile, ...]:
    """Parse every ``--profile`` value and check it against the card's graph inputs.

    Raises:
        OrstreamError: a malformed value, an input named twice, a name that is not a graph
            input (the message lists them), a rank that differs from the input's, or profiles
            that leave out inputs of a package with a dynamic batch.
    """
    profiles = tuple(parse_profile(text) for text in texts)
    inputs = card.graph_inputs()
    seen: set[str] = set()
    for profile in profiles:
        if profile.name in seen:
            raise OrstreamError(f"--profile: input {profile.name!r} is given more than once")
        seen.add(profile.name)
        if profile.name not in inputs:
            raise OrstreamError(
                f"--profile {profile.describe()!r}: {card.name} has no input {profile.name!r} "
                f"(its inputs: {', '.join(inputs)})"
            )
        shape = inputs[profile.name][0]
        if len(profile.min) != len(shape):
            raise OrstreamError(
                f"--profile {profile.describe()!r}: input {profile.name!r} has rank "
                f"{len(shape)} ({'x'.join(str(d) for d in shape)}), the profile has rank "
                f"{len(profile.min)}"
            )
    missing = [name for name in inputs if name not in seen]
    if profiles and card.dynamic_batch and missing:
        raise OrstreamError(
            f"--profile: {card.name} takes a dynamic batch, so every graph input needs a "
            f"profile; none for {', '.join(missing)} (or leave --profile out for 1 to "
            "--max-batch rows)"
        )
    return canonical_profiles(profiles)
