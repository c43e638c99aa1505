"""A Dockerfile read into stages of instructions: enough to check what the images promise.

Continuation lines are joined, comments and parser directives dropped; ``ARG`` defaults given
before the first ``FROM`` are substituted into ``FROM`` lines, as docker does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, COPY, USER, ...
    arguments: str
    line: int  # where it starts, 1-based


@dataclass
class Stage:
    image: str  # the FROM reference with global ARG defaults substituted
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def exec_form(self, keyword: str) -> list[str]:
        """The last ``keyword`` (CMD, ENTRYPOINT) of the stage as a list; [] when absent."""
        found = self.all(keyword)
        if not found:
            return []
        words = json.loads(found[-1].arguments)
        assert isinstance(words, list), f"{keyword} on line {found[-1].line} is not exec form"
        return words


def instructions(text: str) -> list[Instruction]:
    """Every instruction of a Dockerfile, continuation lines joined, comments left out."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(pending).partition(" ")
        found.append(Instruction(keyword.upper(), " ".join(arguments.split()), start))
        pending = []
    assert not pending, "the file ends inside a continued instruction"
    return found


def stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, in order; the last one is the image."""
    defaults: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(path.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            image = _substitute(words[0], defaults)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(image, name, instruction.line))
        elif not result:
            if instruction.keyword == "ARG":
                key, _, value = instruction.arguments.partition("=")
                defaults[key] = value.strip("\"'")
        else:
            result[-1].instructions.append(instruction)
    return result


def _substitute(reference: str, defaults: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2)
        assert key in defaults, f"FROM uses ${key}, which has no default before the first FROM"
        return defaults[key]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, reference)
