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
        values = _dump(fields) if isinstance(fields, BaseModel) else dict(fields or {})
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
        return {"operation": name, **_dump(op)}
    if isinstance(op, Mapping):
        return dict(op)
    raise TypeError(f"an operation is a name, a dict or a pydantic model, not {type(op).__name__}")


def _dump(model: BaseModel) -> dict[str, Any]:
    """A model's fields as JSON values, `SecretStr`/`SecretBytes` ones with their real value
    (pydantic would send `**********`; the server masks them in everything it shows)."""
    from pydantic import SecretBytes, SecretStr
    from pydantic_core import to_jsonable_python

    from ..redact import secret_values

    if not secret_values(model):
        plain: dict[str, Any] = model.model_dump(mode="json", exclude={"operation"})
        return plain

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, SecretBytes):
            return value.get_secret_value().decode("utf-8", "replace")
        if isinstance(value, dict):
            return {key: reveal(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [reveal(item) for item in value]
        return value

    data = reveal(model.model_dump(mode="python", exclude={"operation"}))
    result: dict[str, Any] = to_jsonable_python(data)
    return result
