"""The model packages that ship with orstream (in ``edge/packages/``), used by default."""

from pathlib import Path

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
SHIPPED_PACKAGE = PACKAGES / "pitvis_workflow"
"""The PitVis step and instrument recognizer trained by orstream on the phantom."""
SHIPPED_SEGMENTER = PACKAGES / "imis_segmenter"
"""The interactive segmenter trained by orstream on the phantom."""
SHIPPED_CLASSIFIER = PACKAGES / "instrument_classifier"
"""The instrument classifier that names the shipped segmenter's live masks."""
