"""One service per resource over one shared :class:`~.state.State`.

Imports go down this list, never up (import-linter checks it):

- ``state`` (store, settings, clock, wake-up, HTTP client, sandbox, traffic) and ``common``;
- ``model_sources``, then ``models``; ``clusters``; ``pipelines``;
- ``deployments`` (uses clusters), then ``autoscaler`` (scales deployments);
- ``executions`` (uses pipelines; runs through an injected :class:`~.executions.ExecutionRunner`);
- ``scheduler`` (ticks them all).

:mod:`budai_gateway.wiring` builds them and injects the engine.
"""
