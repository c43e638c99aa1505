"""Where the project and the real sample data beside it are, for tests at any depth."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
PACKAGES = PROJECT_ROOT / "edge" / "packages"
"""The shipped model packages."""
