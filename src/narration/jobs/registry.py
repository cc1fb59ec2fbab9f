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

import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar, Union, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .retry import Retry

if TYPE_CHECKING:
    from .runner import Job

from ..errors import NarrationError

__all__ = ["Handler", "JobRegistry", "OperationError", "OperationSpec", "RegistryError"]

Handler = Callable[[Any, "Job"], Any]
"""`async def handler(operation, job)` or a plain `def` (run in a worker thread)."""

H = TypeVar("H", bound=Callable[..., Any])

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON body may have (deeper answers `invalid_json`)."""


class OperationError(NarrationError, ValueError):
    """An operation could not be parsed or built.

    `code` is `unknown_operation`, `invalid_fields` or `invalid_json`; `errors` lists the
    individual problems as `{"loc": "field.path", "msg": "..."}` dicts (empty for unknown
    operations); `str(error)` is the readable message.
    """

    def __init__(self, code: str, message: str, errors: tuple[dict[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors

    def __repr__(self) -> str:
        return f"OperationError(code={self.code!r}, message={self.message!r})"


class RegistryError(NarrationError, TypeError):
    """A registry cannot serve: a handler without a model, a model without a handler, a
    duplicate or badly formed name. Raised when the operation is registered or the server is
    built, never when a job is submitted."""


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
            model = _annotated_model(name, handler)
        if model is None and name in self._specs:
            model = self._specs[name].model
        if model is None:
            raise RegistryError(f"operation {name!r} has no model: pass model=")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise RegistryError(f"the model of {name!r} must be a pydantic BaseModel class")
        if retry is not None and not isinstance(retry, Retry):
            raise RegistryError(f"retry= of {name!r} must be a Retry, got {retry!r}")
        wire = _wire_model(name, model)
        doc = summary or _first_line(handler) or _first_line(model) or name
        spec = OperationSpec(
            name=name,
            model=wire,
            handler=handler,
            summary=doc,
            examples=tuple(dict(example) for example in examples),
            is_async=handler is None or _is_async(handler),
            takes_job=handler is None or _takes_job(handler),
            retry=retry,
        )
        self._specs[name] = spec
        return spec

    def declare(self, model: type[BaseModel], name: str | None = None) -> None:
        """Declare an operation's model without a handler yet (e.g. shared by several services,
        each registering its own handler with `add(name, handler)`); the name defaults to the
        model's `operation` default."""
        name = name or _declared_name(model)
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
            raise _invalid_fields(name, error) from None

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
            given = spec.examples or (_example_from_schema(spec.model.model_json_schema()),)
            for index, example in enumerate(given):
                key = spec.name if index == 0 else f"{spec.name}_{index + 1}"
                body = {
                    "operation": spec.name,
                    **{k: v for k, v in example.items() if k != "operation"},
                }
                result[key] = {"summary": spec.summary, "value": body}
        return result


# --------------------------------------------------------------------------- helpers


def load_json(raw: bytes | str) -> Any:
    """`json.loads(raw)`, with nesting limited to `MAX_JSON_DEPTH`; `OperationError`
    (`invalid_json`) for anything that is not JSON or nests deeper."""
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"body is not valid JSON (not UTF-8): {error}"
        raise OperationError("invalid_json", message) from None
    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise OperationError(
            "invalid_json", f"body nests deeper than {MAX_JSON_DEPTH} levels of arrays/objects"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise OperationError("invalid_json", f"body is not valid JSON: {error}") from None


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _max_depth(text: str) -> int:
    """The deepest bracket nesting in JSON text, ignoring brackets inside strings (a linear
    scan, so a hostile body cannot make the parser recurse before it is refused)."""
    if "[" not in text and "{" not in text:
        return 0
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _loc(loc: tuple[int | str, ...]) -> str:
    """`("fields", 0, "x")` -> `"fields[0].x"`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(body)"


def _invalid_fields(name: str, error: ValidationError) -> OperationError:
    """Turn a pydantic error into one readable `invalid_fields` error listing every field."""
    problems = tuple(
        {"loc": _loc(tuple(detail["loc"])), "msg": str(detail["msg"])}
        for detail in error.errors(include_url=False, include_input=False)
    )
    listing = "; ".join(f"{problem['loc']}: {problem['msg']}" for problem in problems)
    return OperationError(
        "invalid_fields", f"invalid fields for operation {name!r}: {listing}", problems
    )


def _wire_model(name: str, model: type[BaseModel]) -> type[BaseModel]:
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


def _declared_name(model: type[BaseModel]) -> str:
    declared = model.model_fields.get("operation")
    if declared is None or not isinstance(declared.default, str):
        raise RegistryError(f"{model.__name__} has no `operation` default: pass name=")
    return declared.default


def _annotated_model(name: str, handler: Handler) -> type[BaseModel]:
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


def _is_async(handler: Handler) -> bool:
    method = type(handler).__call__  # a callable object's own method
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(method)


def _takes_job(handler: Handler) -> bool:
    """False for `handler(op)`; True for `handler(op, job)` (or *args)."""
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) if obj is not None else None
    if not doc or obj is BaseModel:
        return ""
    return doc.strip().splitlines()[0]


_PLACEHOLDERS = {"string": "string", "integer": 0, "number": 0.0, "boolean": True}


def _example_from_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
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
