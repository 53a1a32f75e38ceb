"""The base of every response model: lenient Pydantic v2 models.

Response objects keep unknown fields (``extra="allow"``) so that a newer gateway that adds fields
does not break an older SDK, and build their validators lazily (``defer_build``) so that
``import budai.types`` stays cheap.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic import ValidationError as _PydanticValidationError

__all__ = ["BudObject", "parse_object"]

_M = TypeVar("_M", bound="BudObject")


class BudObject(BaseModel):
    """Base class of every object the API returns."""

    model_config = ConfigDict(
        extra="allow",
        defer_build=True,
        populate_by_name=True,
        # `model_id` is a field of Deployment; Pydantic reserves `model_` otherwise.
        protected_namespaces=(),
    )

    _request_id: str | None = PrivateAttr(default=None)
    """The ``x-request-id`` of the response this object came from (not part of dumps)."""

    def to_dict(self) -> dict[str, Any]:
        """The object as JSON-compatible Python data (unset optional fields included)."""
        return self.model_dump(mode="json")

    def to_json(self, *, indent: int | None = 2) -> str:
        """The object as a JSON string."""
        return self.model_dump_json(indent=indent)


def parse_object(cls: type[_M], data: Any) -> _M:
    """Validate ``data`` into ``cls``, leniently: a field whose value this SDK does not expect
    (a status literal added by a newer gateway, say) is kept as sent instead of failing the call,
    and every other field is still validated and converted."""
    if not isinstance(data, dict):
        from ..exceptions import BudAPIError

        raise BudAPIError(
            f"the server sent {type(data).__name__} where a {cls.__name__} object was expected"
        )
    try:
        return cls.model_validate(data)
    except _PydanticValidationError as err:
        bad = {e["loc"][0] for e in err.errors() if e["loc"] and isinstance(e["loc"][0], str)}
        obj = cast(_M, cls.model_construct(**data))
        for key, value in data.items():
            if key in bad or key not in cls.model_fields:
                continue
            # Converts nested objects and timestamps exactly as full validation would.
            cls.__pydantic_validator__.validate_assignment(obj, key, value)
        return obj
