"""``/health`` and ``/whoami``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from budai_gateway import schemas as S
from budai_gateway.routers.common import AUTH, Svc

router = APIRouter(tags=["health"])


@router.get("/health", response_model=S.Health)
async def health(svc: Svc) -> dict[str, str]:
    return svc.health()


@router.get("/whoami", response_model=S.WhoAmI, dependencies=AUTH)
async def whoami(request: Request) -> dict[str, Any]:
    state = request.state
    return {
        "object": "whoami",
        "project": state.project,
        "scopes": list(state.scopes),
        "key_name": state.key_name,
    }
