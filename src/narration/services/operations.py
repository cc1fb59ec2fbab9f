"""The reference services' operations (queen, hive, worker) as validated pydantic v2 models.

They are one registry among others (`REFERENCE_OPERATIONS`): the server, client, harness and
CLI know no operation by name. Build one with a constructor, or parse one from JSON:

    from narration.operations import Operation, OperationError

    op = Operation.infer("gpu-box", "llama-3-8b", "Hello", max_tokens=64)
    op.name        # "infer"
    op.to_dict()   # {"operation": "infer", "hive_id": "gpu-box", ...}

    Operation.parse({"operation": "hive_list"})          # -> HiveList()
    Operation.parse(b'{"operation": "nope"}')            # OperationError, code "unknown_operation"

Every model is frozen and forbids unknown fields. Scalars are strict: `"3"` is not a device
number and `1.0` is not a token count (an int is accepted where a float is expected).
`Operation.parse` and the constructors raise `OperationError` (a `ValueError`) whose `code` is
`unknown_operation` (missing or unknown `"operation"`; the message lists the valid names),
`invalid_fields` (the message lists each bad field and why) or `invalid_json` (bytes/str that
are not JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..jobs.errors import OperationError
from ..jobs.registry import JobRegistry

__all__ = [
    "REFERENCE_OPERATIONS",
    "HiveCheck",
    "HiveGet",
    "HiveList",
    "Infer",
    "Operation",
    "OperationError",
    "OperationModel",
    "Status",
    "WorkerList",
    "WorkerSpawn",
]

# --------------------------------------------------------------------------- field types

_NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f]*$"

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=128, pattern=_NO_CONTROL_CHARS
    ),
]
"""A hive alias or hive id: 1-128 characters after trimming, no control characters."""

ModelRef = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=512, pattern=_NO_CONTROL_CHARS
    ),
]
"""A model reference (name, repo id or path): 1-512 characters, no control characters."""

WorkerKind = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=_NO_CONTROL_CHARS
    ),
]
"""A worker kind such as `cpu`, `cuda` or `metal`: 1-64 characters."""

PROMPT_MAX_CHARS = 500_000
"""Longest prompt accepted (the server caps a request body at 1 MiB anyway)."""

Prompt = Annotated[str, StringConstraints(min_length=1, max_length=PROMPT_MAX_CHARS)]
"""A prompt: kept verbatim (whitespace is meaningful), 1-500,000 characters."""


# --------------------------------------------------------------------------- models


class _OperationBase(BaseModel):
    """What every operation shares: strict, frozen, no unknown fields, `.name`, `.to_dict()`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    operation: str

    @property
    def name(self) -> str:
        """The operation's wire name, e.g. `"hive_list"`."""
        return self.operation

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict of this operation (the body of `POST /v1/jobs`)."""
        return self.model_dump(mode="json")


class Status(_OperationBase):
    """Report the state of the whole system (queen, hives, workers)."""

    operation: Literal["status"] = "status"


class HiveList(_OperationBase):
    """List the known hives."""

    operation: Literal["hive_list"] = "hive_list"


class HiveGet(_OperationBase):
    """Show one hive by its alias."""

    operation: Literal["hive_get"] = "hive_get"
    alias: Name


class HiveCheck(_OperationBase):
    """Check that a hive is reachable and healthy (the local one by default)."""

    operation: Literal["hive_check"] = "hive_check"
    alias: Name = "localhost"


class WorkerSpawn(_OperationBase):
    """Start a worker of kind `worker` serving `model` on `device` of hive `hive_id`."""

    operation: Literal["worker_spawn"] = "worker_spawn"
    hive_id: Name
    model: ModelRef
    worker: WorkerKind
    device: int = Field(default=0, ge=0, le=255)


class WorkerList(_OperationBase):
    """List the workers of hive `hive_id`."""

    operation: Literal["worker_list"] = "worker_list"
    hive_id: Name


class Infer(_OperationBase):
    """Run one inference of `prompt` with `model` on hive `hive_id`."""

    operation: Literal["infer"] = "infer"
    hive_id: Name
    model: ModelRef
    prompt: Prompt
    max_tokens: int = Field(default=256, ge=1, le=32_768)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    top_k: int | None = Field(default=None, ge=1, le=100_000)
    stream: bool = True


OperationModel: TypeAlias = Annotated[
    Status | HiveList | HiveGet | HiveCheck | WorkerSpawn | WorkerList | Infer,
    Field(discriminator="operation"),
]
"""Any one operation; the union is discriminated on `"operation"` (usable in FastAPI bodies)."""

_MODELS: dict[str, type[_OperationBase]] = {
    "status": Status,
    "hive_list": HiveList,
    "hive_get": HiveGet,
    "hive_check": HiveCheck,
    "worker_spawn": WorkerSpawn,
    "worker_list": WorkerList,
    "infer": Infer,
}


REFERENCE_OPERATIONS = JobRegistry()
"""The reference services' operation models, declared without handlers (the queen and the
hive each register the handlers they run)."""
for _model in _MODELS.values():
    REFERENCE_OPERATIONS.declare(_model)

_M = TypeVar("_M", bound=_OperationBase)


def _build(model: type[_M], fields: Mapping[str, Any]) -> _M:
    """Validate `fields` as `model`, raising `OperationError` (not pydantic's error)."""
    name = model.model_fields["operation"].default
    return cast(_M, REFERENCE_OPERATIONS.parse({"operation": name, **fields}))


# --------------------------------------------------------------------------- namespace


class Operation:
    """Constructors and the parser for operations; not instantiable.

    `Operation.hive_list()`, `Operation.infer("hive", "model", "prompt")`, ...;
    `Operation.parse(data)` turns a dict or JSON text into the concrete model;
    `Operation.names()` lists the valid operation names.
    """

    def __new__(cls) -> Operation:
        raise TypeError("Operation is a namespace; use Operation.parse() or a constructor")

    @staticmethod
    def names() -> tuple[str, ...]:
        """The valid operation names, in declaration order."""
        return tuple(_MODELS)

    @staticmethod
    def parse(data: Mapping[str, Any] | bytes | str | _OperationBase) -> OperationModel:
        """The concrete operation model for `data` (a dict, or JSON as bytes or str).

        Raises `OperationError` with code `invalid_json`, `unknown_operation` or
        `invalid_fields`. An operation model passes through unchanged.
        """
        if isinstance(data, _OperationBase):
            return cast(OperationModel, data)
        return cast(OperationModel, REFERENCE_OPERATIONS.parse(data))

    @staticmethod
    def status() -> Status:
        """`{"operation": "status"}`."""
        return _build(Status, {})

    @staticmethod
    def hive_list() -> HiveList:
        """`{"operation": "hive_list"}`."""
        return _build(HiveList, {})

    @staticmethod
    def hive_get(alias: str) -> HiveGet:
        """`{"operation": "hive_get", "alias": alias}`."""
        return _build(HiveGet, {"alias": alias})

    @staticmethod
    def hive_check(alias: str = "localhost") -> HiveCheck:
        """`{"operation": "hive_check", "alias": alias}`."""
        return _build(HiveCheck, {"alias": alias})

    @staticmethod
    def worker_spawn(hive_id: str, model: str, worker: str, device: int = 0) -> WorkerSpawn:
        """`{"operation": "worker_spawn", "hive_id": ..., "model": ..., "worker": ..., ...}`."""
        fields = {"hive_id": hive_id, "model": model, "worker": worker, "device": device}
        return _build(WorkerSpawn, fields)

    @staticmethod
    def worker_list(hive_id: str) -> WorkerList:
        """`{"operation": "worker_list", "hive_id": hive_id}`."""
        return _build(WorkerList, {"hive_id": hive_id})

    @staticmethod
    def infer(
        hive_id: str,
        model: str,
        prompt: str,
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float | None = None,
        top_k: int | None = None,
        stream: bool = True,
    ) -> Infer:
        """`{"operation": "infer", "hive_id": ..., "model": ..., "prompt": ..., ...}`."""
        fields = {
            "hive_id": hive_id,
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "stream": stream,
        }
        return _build(Infer, fields)
