"""The job kinds a server runs, found by name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from orstream.errors import quoted
from orstream.server.job_errors import JobRefused
from orstream.server.kinds.job_kind import JobKind

if TYPE_CHECKING:
    from orstream.server.kinds.vlm import VlmSettings


class KindRegistry:
    """Job kinds by name.

    Raises:
        ValueError: two kinds share a name.
    """

    def __init__(self, kinds: Iterable[JobKind]) -> None:
        self._kinds: dict[str, JobKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"two job kinds are named {kind.name!r}")
            self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind:
        """The kind called ``name``.

        Raises:
            JobRefused: no kind has that name (INVALID_ARGUMENT).
        """
        kind = self._kinds.get(name)
        if kind is None:
            raise JobRefused(
                f"unknown job kind {quoted(name)}; this server runs: {', '.join(self.names)}"
            )
        return kind

    @property
    def names(self) -> list[str]:
        """Every kind's name, sorted."""
        return sorted(self._kinds)

    def describe(self) -> list[str]:
        """One line per kind: its name and what it does."""
        return [f"{name}: {self._kinds[name].description}" for name in self.names]


def default_kinds(vlm: VlmSettings | None = None) -> KindRegistry:
    """The kinds ``orstream server run`` serves (``vlm``: its vision-language model; without
    one the ``vlm`` kind refuses jobs, saying how to give it one)."""
    from orstream.server.kinds.probe import ProbeKind
    from orstream.server.kinds.vlm import VlmKind
    from orstream.server.kinds.wsi import WsiKind

    return KindRegistry([ProbeKind(), WsiKind(), VlmKind(vlm)])
