"""Maps the card's top-level folders into the one ``orstream`` import namespace.

Every folder below a part that holds an ``__init__.py`` becomes a package, so a new
subpackage ships without touching this file (tests/project/test_wheel.py checks the wheel).
"""

from pathlib import Path

from setuptools import setup

PARTS = {
    "orstream": "orstream",
    "orstream.streams": "streams",
    "orstream.edge": "edge",
    "orstream.export": "export",
    "orstream.training": "training",
    "orstream.server": "server",
    "orstream.proto": "proto",
    "orstream.client": "client",
}


def _packages() -> list[str]:
    found = []
    for namespace, folder in PARTS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            parts = init.parent.relative_to(folder).parts
            found.append(".".join((namespace, *parts)))
    return found


setup(
    package_dir=PARTS,
    packages=_packages(),
    package_data={
        "": ["*.yaml", "*.json", "*.proto", "*.pyi", "*.onnx", "*.csv", "py.typed"],
        "orstream.edge": [
            "packages/*/*.json",
            "packages/*/*.onnx",
            "packages/*/*.md",
            "packages/*/*.npy",
            "packages/*/*.npz",
        ],
        "orstream.edge.web": ["static/*"],
        "orstream.slides": ["packages/*/*.json", "packages/*/*.onnx", "packages/*/*.npz"],
        "orstream.training": ["configs/*.yaml"],
    },
    include_package_data=True,
)
