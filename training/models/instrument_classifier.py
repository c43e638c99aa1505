"""The instrument classifier: a small CNN that names an instrument from its tip crop.

Four stages of two 3x3 convolutions (the first of each with stride 2), batch norm and ReLU take
the 64x64 crop (:mod:`orstream.segmentation.instrument_crop`) to a 4x4 map; global average
pooling and one linear layer give one logit per class of ``orstream.labels.INSTRUMENT_CODES``
(class 0: no instrument). About 0.4 M weights: it runs on every found object of every
segmented frame.
"""

from __future__ import annotations

from torch import Tensor, nn

from orstream.labels import INSTRUMENT_CODES
from orstream.segmentation.instrument_crop import CROP_SIZE
from orstream.training.registry import register_model


def _stage(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


class InstrumentClassifier(nn.Module):
    """Tip crops [B, 3, 64, 64] (normalised to -1..1) -> class logits [B, classes].

    Args:
        classes: number of classes (default: no instrument + the 18 PitVis instruments).
        width: channels of the first stage; each later stage doubles them, up to 4x.
        dropout: before the linear layer, in training.
    """

    crop_size = CROP_SIZE

    def __init__(
        self, classes: int = len(INSTRUMENT_CODES), width: int = 24, dropout: float = 0.2
    ) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 4 * width)
        stages, inputs = [], 3
        for outputs in widths:
            stages.append(_stage(inputs, outputs))
            inputs = outputs
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(inputs, classes)
        )

    def forward(self, crops: Tensor) -> Tensor:
        return self.head(self.features(crops))


@register_model
def instrument_classifier(**kwargs: object) -> InstrumentClassifier:
    """The shipped instrument classifier's architecture."""
    return InstrumentClassifier(**kwargs)  # type: ignore[arg-type]
