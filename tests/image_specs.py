"""Image input specs of a card, as the pre-processor tests build them."""

from __future__ import annotations

from orstream.package.card import InputSpec, Resize

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def image_spec(height: int, width: int, interpolation: str) -> InputSpec:
    """An RGB NCHW image input of ``height`` x ``width`` with ImageNet mean and std."""
    return InputSpec(
        name="image",
        shape=(1, 3, height, width),
        dtype="float32",
        layout="NCHW",
        color="RGB",
        resize=Resize(height=height, width=width, interpolation=interpolation),  # type: ignore[arg-type]
        scale=255.0,
        mean=MEAN,
        std=STD,
    )
