"""Declaring an operation: its request model (the user's model plus the `operation`
discriminator, strict and closed), the model read off a handler's annotation, how the handler
is called, and the examples shown in the OpenAPI docs."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict

from .errors import RegistryError

if TYPE_CHECKING:
    from .registry import Handler

__all__ = [
    "annotated_model",
    "declared_name",
    "example_from_schema",
    "first_line",
    "is_async",
    "takes_job",
    "wire_model",
]


def wire_model(name: str, model: type[BaseModel]) -> type[BaseModel]:
    """`model` with the `operation` discriminator (`Literal[name]`, defaulting to it), no
    unknown fields and strict scalars (unless the model chose its own strictness)."""
    declared = model.model_fields.get("operation")
    if declared is not None:
        if declared.default != name:
            raise RegistryError(
                f"{model.__name__}.operation defaults to {declared.default!r}, not {name!r}"
            )
        if model.model_config.get("extra") == "forbid":
            return model
    config = ConfigDict(extra="forbid")
    if "strict" not in model.model_config:
        config["strict"] = True
    namespace: dict[str, Any] = {
        "__annotations__": {"operation": Literal[name]},
        "operation": name,
        "model_config": config,
        "__module__": model.__module__,
        "__qualname__": model.__qualname__,
        "__doc__": model.__doc__,
    }
    metaclass: Any = type(model)  # pydantic's ModelMetaclass builds the subclass
    wire: type[BaseModel] = metaclass(model.__name__, (model,), namespace)
    return wire


def declared_name(model: type[BaseModel]) -> str:
    declared = model.model_fields.get("operation")
    if declared is None or not isinstance(declared.default, str):
        raise RegistryError(f"{model.__name__} has no `operation` default: pass name=")
    return declared.default


def annotated_model(name: str, handler: Handler) -> type[BaseModel]:
    """The pydantic model annotating the handler's first parameter."""
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    if not parameters:
        raise RegistryError(
            f"the handler of {name!r} takes no parameters; it is called as handler(op, job)"
        )
    try:
        hints = get_type_hints(handler)
    except Exception:  # unresolvable forward references: fall back to the raw annotation
        hints = {}
    annotation = hints.get(parameters[0].name, parameters[0].annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, str):
        raise RegistryError(
            f"the handler of {name!r} is annotated with {annotation!r}, which cannot be "
            "resolved here: define the model before the handler, or pass model="
        )
    raise RegistryError(
        f"the handler of {name!r} has no model: annotate its first parameter with a pydantic "
        "model (async def handler(op: MyModel, job: Job)) or pass model="
    )


def is_async(handler: Handler) -> bool:
    method = type(handler).__call__  # a callable object's own method
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(method)


def takes_job(handler: Handler) -> bool:
    """False for `handler(op)`; True for `handler(op, job)` (or *args)."""
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) if obj is not None else None
    if not doc or obj is BaseModel:
        return ""
    return doc.strip().splitlines()[0]


_PLACEHOLDERS = {"string": "string", "integer": 0, "number": 0.0, "boolean": True}


def example_from_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A request body for the docs: each field's default, else a placeholder of its type."""
    example: dict[str, Any] = {}
    properties: Mapping[str, Any] = schema.get("properties", {})
    for key, prop in properties.items():
        if key == "operation":
            continue
        if "default" in prop:
            example[key] = prop["default"]
        elif prop.get("examples"):
            example[key] = prop["examples"][0]
        elif prop.get("type") in _PLACEHOLDERS:
            example[key] = _PLACEHOLDERS[prop["type"]]
        elif key in schema.get("required", ()):
            example[key] = None
    return example
