"""SegmenterModel on a package exported from a tiny random segmenter: masks at the frame's size
from every kind of prompt, held against the PyTorch model, and every bad prompt refused."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from segmenter_checkpoints import CLASSES, MODEL_KWARGS, random_segmenter_package

from orstream.edge.models.segmenter_model import ImageEmbedding, MaskPrediction, SegmenterModel
from orstream.errors import OrstreamError
from orstream.export.onnx.models.segmenter_export import (
    LIVE_RATE_HZ,
    POINT_SLOTS,
    LoadedSegmenter,
    load_segmenter_checkpoint,
)
from orstream.labels import SEGMENTATION_CLASSES
from orstream.package.loading import load_package
from orstream.segmentation.prompt_tensors import PromptError
from orstream.segmentation.prompts import Prompt
from orstream.training.models.text_encoder import TextEncoder, prompt_text

FRAME = (180, 320)  # (height, width)
MASK_SIZE = (MODEL_KWARGS["input_size"][0] // 4, MODEL_KWARGS["input_size"][1] // 4)


@pytest.fixture(scope="module")
def package_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_segmenter_package(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def model(package_root: Path) -> SegmenterModel:
    return SegmenterModel.load(load_package(package_root))


@pytest.fixture(scope="module")
def reference(package_root: Path) -> LoadedSegmenter:
    return load_segmenter_checkpoint(package_root.parent / "segmenter.ckpt", lambda _: None)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (*FRAME, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def embedding(model: SegmenterModel, frame: np.ndarray) -> ImageEmbedding:
    return model.embed(frame)


def test_the_model_describes_its_package(model: SegmenterModel) -> None:
    names = {name: code for code, name in SEGMENTATION_CLASSES.items()}
    assert model.classes == {name: names[name] for name in CLASSES}
    assert model.classes["sella"] == 101
    assert model.label.startswith("imis_segmenter@")
    assert model.rate_hz == LIVE_RATE_HZ
    assert model.point_slots == POINT_SLOTS
    assert model.input_size == tuple(MODEL_KWARGS["input_size"])


def test_embedding_keeps_the_frame_size(embedding: ImageEmbedding) -> None:
    height, width = MODEL_KWARGS["input_size"]
    assert embedding.array.shape == (1, 32, height // 16, width // 16)
    assert embedding.array.dtype == np.float32
    assert (embedding.height, embedding.width) == FRAME


def _torch_mask(
    reference: LoadedSegmenter,
    frame: np.ndarray,
    model: SegmenterModel,
    points: Sequence[tuple[float, float]] = (),
    labels: Sequence[int] = (),
    box: tuple[float, float, float, float] | None = None,
    text: str | None = None,
) -> tuple[np.ndarray, float]:
    """What the package should answer, computed independently with the PyTorch model: clicks
    mapped pixel centre to pixel centre, box edges to the first and last input pixel, best of 3
    by IoU, bilinear to input size then frame size, cut at the box."""
    net = reference.model
    height, width = net.input_size
    scale = torch.tensor([width / frame.shape[1], height / frame.shape[0]])
    image = model.preprocess(frame)
    slots = torch.zeros(1, POINT_SLOTS, 2)
    slot_labels = torch.full((1, POINT_SLOTS), -1.0)
    for index, (point, label) in enumerate(zip(points, labels, strict=True)):
        slots[0, index] = (torch.tensor(point) + 0.5) * scale - 0.5
        slot_labels[0, index] = label
    kwargs = {}
    if box is not None:
        edges = torch.tensor(box) * scale.repeat(2)
        kwargs["boxes"] = (edges - torch.tensor([0.0, 0.0, 1.0, 1.0]))[None]
    if text is not None:
        kwargs["text_embedding"] = TextEncoder.load().encode([prompt_text(text)])
    with torch.no_grad():
        masks, iou = net.decode(
            net.encode_image(torch.from_numpy(image)), slots, slot_labels, **kwargs
        )
        best = int(iou[0].argmax())
        logits = F.interpolate(masks[:, best : best + 1], size=(height, width), mode="bilinear")
        logits = F.interpolate(logits, size=frame.shape[:2], mode="bilinear")
    mask = logits[0, 0].numpy() > 0
    if box is not None:
        x0, y0, x1, y1 = box
        inside = np.zeros_like(mask)
        inside[int(np.floor(y0)) : int(np.ceil(y1)), int(np.floor(x0)) : int(np.ceil(x1))] = True
        mask &= inside
    return mask, float(iou[0, best])


def _agree(prediction: MaskPrediction, expected: tuple[np.ndarray, float]) -> None:
    mask, score = expected
    assert prediction.mask.shape == mask.shape
    # Pixels whose logit is within rounding of 0 may fall either way.
    assert np.mean(prediction.mask == mask) > 0.999
    assert prediction.score == pytest.approx(score, abs=1e-4)


def test_a_box_gives_a_mask_of_the_frame_size(
    model: SegmenterModel,
    embedding: ImageEmbedding,
    reference: LoadedSegmenter,
    frame: np.ndarray,
) -> None:
    box = (40.0, 30.0, 200.0, 150.0)
    prediction = model.segment(embedding, Prompt(box=box))
    assert prediction.mask.shape == FRAME and prediction.mask.dtype == bool
    # The object is inside its box: nothing of the mask is outside it.
    outside = prediction.mask.copy()
    outside[30:150, 40:200] = False
    assert not outside.any()
    assert prediction.low_res_logits.shape == (1, 1, *MASK_SIZE)
    assert prediction.low_res_logits.dtype == np.float32
    _agree(prediction, _torch_mask(reference, frame, model, box=box))


def test_clicks_and_class_names_match_the_pytorch_model(
    model: SegmenterModel,
    embedding: ImageEmbedding,
    reference: LoadedSegmenter,
    frame: np.ndarray,
) -> None:
    points, labels = [(100.0, 90.0), (250.0, 20.0), (10.5, 170.25)], [1, 0, 1]
    clicked = model.segment(embedding, Prompt(points=tuple(points), point_labels=tuple(labels)))
    _agree(clicked, _torch_mask(reference, frame, model, points=points, labels=labels))
    by_name = model.segment(embedding, Prompt(text="sella"))
    _agree(by_name, _torch_mask(reference, frame, model, text="sella"))
    other = model.segment(embedding, Prompt(text="suction"))
    assert not np.array_equal(other.low_res_logits, by_name.low_res_logits)


def test_previous_logits_refine_the_mask(model: SegmenterModel, embedding: ImageEmbedding) -> None:
    click = Prompt(points=((160.0, 90.0),), point_labels=(1,))
    first = model.segment(embedding, click)
    refined = model.segment(
        embedding,
        Prompt(
            points=((160.0, 90.0), (60.0, 40.0)),
            point_labels=(1, 0),
            mask_logits=first.low_res_logits,
        ),
    )
    again = model.segment(
        embedding, Prompt(points=((160.0, 90.0), (60.0, 40.0)), point_labels=(1, 0))
    )
    assert refined.mask.shape == FRAME
    assert not np.array_equal(refined.low_res_logits, again.low_res_logits)
    everything = Prompt(
        points=((160.0, 90.0),),
        point_labels=(1,),
        box=(0.0, 0.0, 320.0, 180.0),
        text="bipolar_forceps",
        mask_logits=first.low_res_logits,
    )
    assert model.segment(embedding, everything).mask.shape == FRAME


def test_a_720p_frame_gets_a_720p_mask(model: SegmenterModel) -> None:
    frame = np.random.default_rng(2).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    prediction = model.segment(model.embed(frame), Prompt(box=(100, 100, 900, 600)))
    assert prediction.mask.shape == (720, 1280)


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (Prompt(), "empty prompt: give points, a box, a class name or mask logits"),
        (
            Prompt(points=((320.0, 10.0),), point_labels=(1,)),
            "point (320, 10) is outside the 320x180 frame",
        ),
        (
            Prompt(points=((5.0, -1.0),), point_labels=(0,)),
            "point (5, -1) is outside the 320x180 frame",
        ),
        (
            Prompt(points=((5.0, 5.0),), point_labels=(2,)),
            "point labels must be 1 (positive) or 0 (negative), got [2]",
        ),
        (
            Prompt(points=((5.0, 5.0), (6.0, 6.0)), point_labels=(1,)),
            "give one label per point: 2 point(s), 1 label(s)",
        ),
        (
            Prompt(points=((5.0, 5.0),) * 9, point_labels=(1,) * 9),
            "9 points given; this model takes at most 8",
        ),
        (Prompt(box=(50, 50, 10, 80)), "box (50, 50, 10, 80) is empty or inverted"),
        (Prompt(box=(50, 50, 50, 80)), "box (50, 50, 50, 80) is empty or inverted"),
        (Prompt(box=(10, 10, 330, 80)), "box (10, 10, 330, 80) reaches outside the 320x180"),
        (Prompt(box=(-1, 10, 30, 80)), "reaches outside the 320x180 frame"),
        (
            Prompt(text="scalpel"),
            "unknown class 'scalpel'; this model knows: bipolar_forceps, suction, "
            "surgical_drill, sella",
        ),
        (
            Prompt(box=(0, 0, 10, 10), mask_logits=np.zeros((1, 1, 8, 8), np.float32)),
            f"mask logits must be [1, 1, {MASK_SIZE[0]}, {MASK_SIZE[1]}]",
        ),
    ],
)
def test_a_bad_prompt_is_one_clear_line(
    model: SegmenterModel, embedding: ImageEmbedding, prompt: Prompt, message: str
) -> None:
    with pytest.raises(PromptError) as info:
        model.segment(embedding, prompt)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_an_embedding_of_another_model_is_refused(model: SegmenterModel) -> None:
    alien = ImageEmbedding(np.zeros((1, 16, 4, 4), np.float32), *FRAME)
    with pytest.raises(OrstreamError, match="not from this model's encoder"):
        model.segment(alien, Prompt(box=(0, 0, 10, 10)))


def test_a_workflow_package_is_not_a_segmenter(random_workflow_package: Path) -> None:
    with pytest.raises(OrstreamError, match="has no prompt decoder"):
        SegmenterModel.load(load_package(random_workflow_package))


def test_prompts_decoded_in_batches_give_what_each_gives_alone(
    model: SegmenterModel, embedding: ImageEmbedding
) -> None:
    prompts = [
        Prompt(points=((float(x), float(y)),), point_labels=(1,))
        for x, y in [
            (10, 10),
            (50, 40),
            (90, 20),
            (30, 60),
            (70, 70),
            (5, 90),
            (200, 100),
            (300, 170),
        ]
    ] + [Prompt(text="sella"), Prompt(box=(5.0, 5.0, 60.0, 50.0))]
    assert len(prompts) > model.decoder.max_batch  # more than one decoder call
    logits, scores = model.decode(embedding, prompts)
    assert logits.shape == (len(prompts), *model.mask_size) and scores.shape == (len(prompts),)
    for row, prompt in enumerate(prompts):
        alone = model.segment(embedding, prompt)
        np.testing.assert_allclose(logits[row], alone.low_res_logits[0, 0], atol=1e-4)
        assert scores[row] == pytest.approx(alone.score, abs=1e-5)
        if prompt.box is None:  # a box's mask is cut at the box; others are the logits > 0
            assert np.array_equal(model.frame_mask(logits[row], embedding), alone.mask)
