"""One router per resource; :func:`budai_gateway.app.create_app` includes them under ``/v1``.

Routes are thin: validate with :mod:`budai_gateway.schemas`, call the resource's service from
:class:`budai_gateway.wiring.Services` (``Svc``), return what it returns.
"""
