"""A small slide phantom dataset, written once for the slide tests."""

from pathlib import Path

import pytest
from slide_phantoms import write_test_slides


@pytest.fixture(scope="session")
def slide_phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The slides of :func:`slide_phantoms.write_test_slides`."""
    return write_test_slides(tmp_path_factory.mktemp("slide_phantom") / "data")
