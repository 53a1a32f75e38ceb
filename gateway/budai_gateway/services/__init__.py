"""One service per resource over one shared :class:`~.state.State`.

Imports go down this list, never up: ``state`` and ``common``; ``model_sources``; ``models``,
``clusters``, ``pipelines``; ``deployments`` (uses clusters); ``executions`` (uses pipelines,
and runs through an injected :class:`~.executions.ExecutionRunner`); ``scheduler`` (ticks them
all). :mod:`budai_gateway.wiring` builds them and injects the engine.
"""
