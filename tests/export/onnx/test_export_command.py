"""``orstream export onnx`` picks the exporter by the checkpoint's model name."""

import importlib

import pytest

from orstream.export.onnx.command import EXPORTERS, exporter_for
from orstream.export.onnx.models import (
    classifier_export,
    segmenter_export,
    slide_export,
    tokenizer_export,
    videotext_export,
    vlm_export,
    workflow_export,
)


@pytest.mark.parametrize(
    ("model_name", "export"),
    [
        ("imis_segmenter", segmenter_export.export_segmenter_package),
        ("instrument_classifier", classifier_export.export_classifier_package),
        ("ophclip_small", videotext_export.export_videotext_package),
        ("meditok_small", tokenizer_export.export_tokenizer_package),
        ("slide_mil_encoder", slide_export.export_slide_package),
        ("gmai_vl_small", vlm_export.export_vlm_package),
        ("pitvis_workflow", workflow_export.export_package),
        (None, workflow_export.export_package),
    ],
)
def test_the_model_name_picks_the_exporter(model_name: str | None, export: object) -> None:
    assert exporter_for(model_name) is export


def test_no_model_name_belongs_to_two_exporters() -> None:
    seen: set[str] = set()
    for module_name, models, _ in EXPORTERS:
        module = importlib.import_module(f"orstream.export.onnx.models.{module_name}")
        names = getattr(module, models)
        assert names and not names & seen
        seen |= names
