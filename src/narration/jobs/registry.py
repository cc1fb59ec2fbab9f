"""`JobRegistry`: the operations a server runs, each a pydantic model declared next to its handler.

    jobs = JobRegistry()

    class BuildReport(BaseModel):
        report_id: str
        pages: int = 10

    @jobs.operation("build_report")
    async def build_report(op: BuildReport, job: Job) -> None:
        n("render", "Rendering {} pages", op.pages)

The model is taken from the handler's first parameter annotation (or given as `model=`). A
request body names its operation in its `"operation"` key; the other keys are the model's
fields, validated strictly (no unknown fields; `"3"` is not an int). Sync `def` handlers run in
a worker thread inside the job's context. A registry is checked when a server is built from it:
an operation declared without a handler fails there, never at submit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, Union

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from .retry import Retry

if TYPE_CHECKING:
    from .runner import Job

from .bodies import invalid_fields, load_json
from .declaring import (
    annotated_model,
    declared_name,
    example_from_schema,
    first_line,
    is_async,
    takes_job,
    wire_model,
)
from .errors import OperationError, RegistryError

__all__ = ["Handler", "JobRegistry", "OperationError", "OperationSpec", "RegistryError"]

Handler = Callable[[Any, "Job"], Any]
"""`async def handler(operation, job)` or a plain `def` (run in a worker thread)."""

H = TypeVar("H", bound=Callable[..., Any])

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One registered operation: its wire name, its request model and its handler.

    `model` is the model a request is validated as: the user's model with an `operation`
    discriminator field added (a subclass, so handlers get an instance of their own class).
    """

    name: str
    model: type[BaseModel]
    handler: Handler | None
    summary: str = ""
    examples: tuple[Mapping[str, Any], ...] = ()
    is_async: bool = True
    takes_job: bool = True
    retry: Retry | None = None


class JobRegistry:
    """Operation name -> (request model, handler); `@jobs.operation(...)` adds one.

    Registries combine: `JobRegistry(other, more)` or `jobs.include(other)` copies their
    operations (a name registered twice is an error).
    """

    __slots__ = ("_specs",)

    def __init__(self, *include: JobRegistry) -> None:
        self._specs: dict[str, OperationSpec] = {}
        for registry in include:
            self.include(registry)

    # ---------------------------------------------------------------- registering

    def operation(
        self,
        name: str | None = None,
        *,
        model: type[BaseModel] | None = None,
        summary: str | None = None,
        examples: Sequence[Mapping[str, Any]] = (),
        retry: Retry | None = None,
    ) -> Callable[[H], H]:
        """Decorator: register the handler under `name` (default: the function's name).

        The request model is `model`, else the annotation of the handler's first parameter.
        `examples` are request bodies shown in the OpenAPI docs (without `"operation"`).
        `retry` runs a failing handler again (docs/RETRIES.md).
        """

        def register(handler: H) -> H:
            self.add(
                name or handler.__name__,
                handler,
                model=model,
                summary=summary,
                examples=examples,
                retry=retry,
            )
            return handler

        return register

    def add(
        self,
        name: str,
        handler: Handler | None,
        *,
        model: type[BaseModel] | None = None,
        summary: str | None = None,
        examples: Sequence[Mapping[str, Any]] = (),
        retry: Retry | None = None,
    ) -> OperationSpec:
        """Register `handler` for `name` (see `operation`); `handler=None` declares the model
        only (a server built from the registry then refuses to start until one is given)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise RegistryError(
                f"operation name {name!r} must be 1-64 characters of [A-Za-z0-9_.-], "
                "starting with a letter"
            )
        if name in self._specs and self._specs[name].handler is not None:
            raise RegistryError(f"operation {name!r} is registered twice")
        if model is None and handler is not None:
            model = annotated_model(name, handler)
        if model is None and name in self._specs:
            model = self._specs[name].model
        if model is None:
            raise RegistryError(f"operation {name!r} has no model: pass model=")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise RegistryError(f"the model of {name!r} must be a pydantic BaseModel class")
        if retry is not None and not isinstance(retry, Retry):
            raise RegistryError(f"retry= of {name!r} must be a Retry, got {retry!r}")
        wire = wire_model(name, model)
        doc = summary or first_line(handler) or first_line(model) or name
        spec = OperationSpec(
            name=name,
            model=wire,
            handler=handler,
            summary=doc,
            examples=tuple(dict(example) for example in examples),
            is_async=handler is None or is_async(handler),
            takes_job=handler is None or takes_job(handler),
            retry=retry,
        )
        self._specs[name] = spec
        return spec

    def declare(self, model: type[BaseModel], name: str | None = None) -> None:
        """Declare an operation's model without a handler yet (e.g. shared by several services,
        each registering its own handler with `add(name, handler)`); the name defaults to the
        model's `operation` default."""
        name = name or declared_name(model)
        self.add(name, None, model=model)

    def include(self, other: JobRegistry) -> None:
        """Copy every operation of `other` into this registry."""
        for spec in other:
            current = self._specs.get(spec.name)
            if current is not None and current.handler is not None and spec.handler is not None:
                raise RegistryError(f"operation {spec.name!r} is registered twice")
            if current is None or spec.handler is not None:
                self._specs[spec.name] = spec

    # ---------------------------------------------------------------- reading

    def __iter__(self) -> Iterator[OperationSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __getitem__(self, name: str) -> OperationSpec:
        return self._specs[name]

    def get(self, name: str) -> OperationSpec | None:
        """The operation `name`, or None."""
        return self._specs.get(name)

    def names(self) -> tuple[str, ...]:
        """The operation names, in registration order."""
        return tuple(self._specs)

    def check(self) -> None:
        """Raise `RegistryError` if any operation lacks a handler (a server calls this)."""
        missing = [spec.name for spec in self if spec.handler is None]
        if missing:
            raise RegistryError(
                "operations declared without a handler: "
                + ", ".join(missing)
                + " (register one with @jobs.operation(name) or jobs.add(name, handler))"
            )

    # ---------------------------------------------------------------- parsing

    def parse(self, data: Mapping[str, Any] | bytes | str | BaseModel) -> BaseModel:
        """The validated request model for `data` (a dict, JSON text, or a model instance).

        Raises `OperationError` with code `invalid_json`, `unknown_operation` (the message
        lists the valid names) or `invalid_fields` (the message lists every bad field).
        """
        raw: bytes | str | None = None
        if isinstance(data, BaseModel):
            name = getattr(data, "operation", None)
            spec = self._specs.get(name) if isinstance(name, str) else None
            if spec is not None and isinstance(data, spec.model):
                return data
            data = {"operation": name, **data.model_dump(mode="json", exclude={"operation"})}
        if isinstance(data, bytes | bytearray | memoryview | str):
            raw = data if isinstance(data, str) else bytes(data)
            data = load_json(raw)
        if not isinstance(data, Mapping):
            self._unknown(f"an operation must be a JSON object, got {type(data).__name__}")
        if "operation" not in data:
            self._unknown("missing field 'operation'")
        name = data["operation"]
        if not isinstance(name, str) or name not in self._specs:
            text = repr(name)
            self._unknown(f"unknown operation {text if len(text) <= 80 else text[:77] + '...'}")
        model = self._specs[name].model
        try:
            if raw is not None:
                return model.model_validate_json(raw)
            return model.model_validate(dict(data))
        except ValidationError as error:
            raise invalid_fields(name, error) from None

    def build(self, name: str, **fields: Any) -> BaseModel:
        """The operation `name` with `fields` (validated like a request)."""
        return self.parse({"operation": name, **fields})

    def _unknown(self, message: str) -> NoReturn:
        valid = ", ".join(self._specs) or "none"
        raise OperationError("unknown_operation", f"{message}; valid operations: {valid}")

    # ---------------------------------------------------------------- schema

    def request_schema(self, ref_template: str = "#/components/schemas/{model}") -> dict[str, Any]:
        """The JSON schema of a request body: one schema per operation, discriminated on
        `operation`; model schemas are in its `$defs`."""
        models = tuple(spec.model for spec in self)
        if not models:
            return {"type": "object", "properties": {"operation": {"type": "string"}}}
        union: Any = models[0] if len(models) == 1 else Union[models]  # noqa: UP007
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="operation")])
        return adapter.json_schema(ref_template=ref_template)

    def examples(self) -> dict[str, dict[str, Any]]:
        """One OpenAPI example per operation (given ones, else a body built from its schema)."""
        result: dict[str, dict[str, Any]] = {}
        for spec in self:
            given = spec.examples or (example_from_schema(spec.model.model_json_schema()),)
            for index, example in enumerate(given):
                key = spec.name if index == 0 else f"{spec.name}_{index + 1}"
                body = {
                    "operation": spec.name,
                    **{k: v for k, v in example.items() if k != "operation"},
                }
                result[key] = {"summary": spec.summary, "value": body}
        return result


# --------------------------------------------------------------------------- helpers
