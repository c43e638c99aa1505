"""The image input every exporter writes: resized, scaled and normalised per RGB channel."""

import pytest

from orstream.errors import OrstreamError
from orstream.export.onnx.card_parts import image_input


def test_an_image_input_takes_one_mean_and_std_per_channel() -> None:
    spec = image_input("image", 144, 256, [0.5, 0.4, 0.3], (0.2, 0.2, 0.25))
    assert spec.shape == (1, 3, 144, 256)
    assert spec.mean == (0.5, 0.4, 0.3) and spec.std == (0.2, 0.2, 0.25)
    assert spec.resize is not None and (spec.resize.height, spec.resize.width) == (144, 256)


@pytest.mark.parametrize("mean", [(0.5,), (0.5, 0.5, 0.5, 0.5)])
def test_a_mean_without_three_values_is_refused(mean: tuple[float, ...]) -> None:
    with pytest.raises(OrstreamError, match="mean needs 3 values"):
        image_input("image", 16, 16, mean, (1.0, 1.0, 1.0))
