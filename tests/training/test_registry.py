"""The timm-style model registry: names in, modules out."""

import pytest
from torch import nn

from orstream.errors import OrstreamError
from orstream.training.models import InteractiveSegmenter, WorkflowRecognizer
from orstream.training.registry import create_model, list_models, register_model


def test_shipped_models_are_listed_and_build_by_name() -> None:
    names = list_models()
    assert "pitvis_workflow" in names
    assert names == sorted(names)
    model = create_model("pitvis_workflow", input_size=(64, 64), num_layers=2)
    assert isinstance(model, WorkflowRecognizer)
    assert model.input_size == (64, 64)
    assert "imis_segmenter" in names
    segmenter = create_model("imis_segmenter", input_size=(64, 64))
    assert isinstance(segmenter, InteractiveSegmenter)
    assert segmenter.input_size == (64, 64)


def test_keyword_arguments_reach_the_model() -> None:
    model = create_model(
        "pitvis_workflow",
        input_size=(64, 64),
        channels=8,
        num_stages=3,
        num_layers=2,
        kernel_size=2,
    )
    assert isinstance(model, WorkflowRecognizer)
    assert list(model.state_shapes().values()) == [(8, 1), (8, 2)] * 3


def test_unknown_name_is_a_user_error_naming_the_known_models() -> None:
    with pytest.raises(OrstreamError, match="pitvis_workflow"):
        create_model("no_such_model")


def test_a_second_model_cannot_take_a_registered_name() -> None:
    def pitvis_workflow() -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match="already registered"):
        register_model(pitvis_workflow)
    assert isinstance(
        create_model("pitvis_workflow", input_size=(64, 64), num_layers=1), WorkflowRecognizer
    )


def test_registering_the_same_factory_again_is_harmless() -> None:
    from orstream.training.models import pitvis_workflow

    assert register_model(pitvis_workflow) is pitvis_workflow
    assert list_models().count("pitvis_workflow") == 1
