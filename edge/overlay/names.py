"""Label names as an operating-room display shows them."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=256)
def display_name(name: str) -> str:
    """``"synthetic_graft_placement"`` -> ``"Synthetic graft placement"``."""
    return name.replace("_", " ").strip().capitalize()
