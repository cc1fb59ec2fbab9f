"""`operation_body`: the JSON body of `POST /v1/jobs`, from an operation as `submit` takes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["operation_body"]


def operation_body(
    op: str | BaseModel | Mapping[str, Any],
    fields: BaseModel | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of `POST /v1/jobs` for an operation given as `JobClient.submit` takes it."""
    if isinstance(op, str):
        if isinstance(fields, BaseModel):
            values = fields.model_dump(mode="json", exclude={"operation"})
        else:
            values = dict(fields or {})
        return {"operation": op, **values}
    if fields is not None:
        raise TypeError("fields= goes with an operation name: submit('name', {...})")
    if isinstance(op, BaseModel):
        name = getattr(op, "operation", None)
        if not isinstance(name, str):
            raise TypeError(
                f"{type(op).__name__} has no `operation` field: "
                f"submit('operation_name', {type(op).__name__}(...)) names it"
            )
        return {"operation": name, **op.model_dump(mode="json", exclude={"operation"})}
    if isinstance(op, Mapping):
        return dict(op)
    raise TypeError(f"an operation is a name, a dict or a pydantic model, not {type(op).__name__}")
