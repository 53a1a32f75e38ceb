"""Reading pipeline files for ``budai pipelines create -f``.

Two kinds of file:

* YAML or JSON (``.yaml``, ``.yml``, ``.json``): either a definition (``{steps: [...]}``) or a
  whole pipeline (``{name, description, definition: {steps: [...]}}``).
* Python (``.py``): the file is run and must leave a ``budai.dsl.Pipeline`` at module level. The
  CLI takes the variable named ``pipeline``; without one, the only ``Pipeline`` among the module's
  globals; with several, it asks for ``file.py:variable``.

Either way the definition is checked by the DSL before anything is sent, so every problem is
listed at once.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from budai.dsl import Pipeline
from budai.types import PipelineDefinition

__all__ = ["LoadedPipeline", "load_pipeline_file"]


@dataclass
class LoadedPipeline:
    """A pipeline read from a file: its builder (checked by ``build()``) and its metadata."""

    pipeline: Pipeline
    name: str | None
    description: str | None

    def definition(self) -> PipelineDefinition:
        """The checked definition (raises ``PipelineValidationError``)."""
        return self.pipeline.build()


def load_pipeline_file(spec: str) -> LoadedPipeline:
    """Load ``path`` or ``path.py:variable``; a file that cannot be read is a usage error."""
    path_text, variable = spec, None
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path_text, variable = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise click.BadParameter(f"no such file: {path_text}", param_hint="-f")
    suffix = path.suffix.lower()
    if suffix == ".py":
        return _load_python(path, variable)
    if suffix in (".yaml", ".yml", ".json"):
        return _load_data(path)
    raise click.BadParameter(
        f"{path_text}: expected a .yaml, .yml, .json or .py file", param_hint="-f"
    )


def _load_data(path: Path) -> LoadedPipeline:
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="-f") from exc
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a mapping at the top", param_hint="-f")
    name = data.get("name")
    description = data.get("description")
    definition = data.get("definition", data)
    if not isinstance(definition, dict) or not isinstance(definition.get("steps"), list):
        raise click.BadParameter(
            f"{path}: expected `steps: [...]` or `definition: {{steps: [...]}}`", param_hint="-f"
        )
    for i, step in enumerate(definition["steps"]):
        if not isinstance(step, dict) or "id" not in step or "action" not in step:
            raise click.BadParameter(
                f"{path}: steps[{i}] needs an `id` and an `action`", param_hint="-f"
            )
    pipeline = Pipeline.from_definition(definition, name=str(name or path.stem), description=None)
    return LoadedPipeline(pipeline, str(name) if name else None, description)


def _load_python(path: Path, variable: str | None) -> LoadedPipeline:
    # The file's folder goes first on sys.path so it can import its neighbours, as `python f.py`.
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        namespace = runpy.run_path(str(path), run_name="__budai_pipeline__")
    except Exception as exc:
        raise click.BadParameter(
            f"{path} raised {type(exc).__name__}: {exc}", param_hint="-f"
        ) from exc
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)
    if variable is not None:
        found = namespace.get(variable)
        if not isinstance(found, Pipeline):
            raise click.BadParameter(f"{path}: `{variable}` is not a Pipeline", param_hint="-f")
        return LoadedPipeline(found, found.name, found.description)
    found = namespace.get("pipeline")
    if isinstance(found, Pipeline):
        return LoadedPipeline(found, found.name, found.description)
    candidates = {k: v for k, v in namespace.items() if isinstance(v, Pipeline)}
    if len(candidates) == 1:
        only = next(iter(candidates.values()))
        return LoadedPipeline(only, only.name, only.description)
    if not candidates:
        raise click.BadParameter(
            f"{path} defines no Pipeline at module level (name it `pipeline`)", param_hint="-f"
        )
    names = ", ".join(sorted(candidates))
    raise click.BadParameter(
        f"{path} defines several pipelines ({names}); pick one with {path}:NAME", param_hint="-f"
    )
