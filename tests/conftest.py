"""Shared fixtures: paths to the project and to the real sample data beside it."""

import os
from pathlib import Path

import pytest
from project_paths import PROJECT_ROOT, SHARED_DATA

# One compute thread per library: the suite's small tensors gain nothing from more, and on a
# busy 2-core machine oversubscribed OpenMP threads make torch tests ten times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"real sample data not found at {SHARED_DATA} (../shared/data beside the project)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def random_workflow_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model package exported from a tiny randomly initialised workflow recognizer."""
    from workflow_checkpoints import save_random_checkpoint

    from orstream.export.onnx.models.workflow_export import export_package

    root = tmp_path_factory.mktemp("random_package")
    checkpoint = save_random_checkpoint(root / "random.ckpt")
    return export_package(checkpoint, root / "package", parity_frames=2).package.root


@pytest.fixture(scope="session")
def batch_1_workflow_package(
    random_workflow_package: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The random workflow recognizer as a package whose graph runs batch 1 only."""
    from workflow_checkpoints import save_batch_1_package

    checkpoint = random_workflow_package.parent / "random.ckpt"
    return save_batch_1_package(checkpoint, tmp_path_factory.mktemp("batch_1") / "package")


@pytest.fixture(scope="session")
def random_videotext_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video-text package exported from a tiny randomly initialised model."""
    from videotext_checkpoints import save_random_videotext_checkpoint

    from orstream.export.onnx.models.videotext_export import export_videotext_package

    root = tmp_path_factory.mktemp("random_videotext")
    checkpoint = save_random_videotext_checkpoint(root / "videotext.ckpt")
    result = export_videotext_package(
        checkpoint, root / "package", parity_frames=6, max_batch=3, progress=lambda _: None
    )
    return result.package.root


@pytest.fixture(scope="session")
def random_tokenizer_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer package exported from a tiny randomly initialised model (its checkpoint
    beside it)."""
    from tokenizer_checkpoints import CHECKPOINT_NAME, save_random_tokenizer_checkpoint

    from orstream.export.onnx.models.tokenizer_export import export_tokenizer_package

    root = tmp_path_factory.mktemp("random_tokenizer")
    checkpoint = save_random_tokenizer_checkpoint(root / CHECKPOINT_NAME)
    result = export_tokenizer_package(
        checkpoint, root / "package", parity_frames=4, max_batch=3, progress=lambda _: None
    )
    return result.package.root
