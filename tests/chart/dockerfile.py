"""A small Dockerfile reader for the image tests: stages and their instructions.

Enough of the Dockerfile syntax for our own file: comments, line continuations, ``FROM ... AS``,
exec-form (JSON) and shell-form arguments. No image can be built on the test machines, so the
tests read the rules from the file and re-create its install steps in a fresh virtualenv.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``RUN``, ``COPY``... with its raw argument text."""

    name: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON-array form of the arguments (``["a", "b"]``), or None for shell form."""
        text = self.args.strip()
        if text.startswith("["):
            value = json.loads(text)
            assert isinstance(value, list)
            return [str(v) for v in value]
        return None


@dataclass
class Stage:
    """One ``FROM`` block."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Instruction | None:
        found = self.all(name)
        return found[-1] if found else None


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Return the global ``ARG`` defaults and the stages of a Dockerfile."""
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        name, _, rest = line.partition(" ")
        name = name.upper()
        if name == "FROM":
            parts = rest.split()
            base = parts[0]
            for key, value in args.items():
                base = base.replace("${" + key + "}", value).replace("$" + key, value)
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=alias))
        elif not stages:
            if name == "ARG" and "=" in rest:
                key, _, value = rest.partition("=")
                args[key.strip()] = value.strip()
        else:
            stages[-1].instructions.append(Instruction(name, rest.strip()))
    return args, stages
