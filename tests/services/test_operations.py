"""The operations contract: parsing, defaults, validation errors and constructors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from narration.operations import (
    HiveCheck,
    HiveGet,
    HiveList,
    Infer,
    Operation,
    OperationError,
    OperationModel,
    Status,
    WorkerList,
    WorkerSpawn,
)

pytestmark = pytest.mark.unit

ALL_NAMES = (
    "status",
    "hive_list",
    "hive_get",
    "hive_check",
    "worker_spawn",
    "worker_list",
    "infer",
)
VALID_LISTING = "valid operations: " + ", ".join(ALL_NAMES)


def test_names_lists_every_operation_in_order() -> None:
    assert Operation.names() == ALL_NAMES


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"operation": "status"}, Status()),
        ({"operation": "hive_list"}, HiveList()),
        ({"operation": "hive_get", "alias": "gpu-box"}, HiveGet(alias="gpu-box")),
        ({"operation": "hive_check", "alias": "remote"}, HiveCheck(alias="remote")),
        (
            {"operation": "worker_spawn", "hive_id": "h1", "model": "llama", "worker": "cuda"},
            WorkerSpawn(hive_id="h1", model="llama", worker="cuda", device=0),
        ),
        ({"operation": "worker_list", "hive_id": "h1"}, WorkerList(hive_id="h1")),
        (
            {"operation": "infer", "hive_id": "h1", "model": "llama", "prompt": "Hi"},
            Infer(hive_id="h1", model="llama", prompt="Hi"),
        ),
    ],
)
def test_each_operation_parses_to_its_model(data: dict[str, Any], expected: Any) -> None:
    parsed = Operation.parse(data)
    assert type(parsed) is type(expected)
    assert parsed == expected
    assert parsed.name == data["operation"]


def test_defaults() -> None:
    assert Operation.parse({"operation": "hive_check"}).to_dict() == {
        "operation": "hive_check",
        "alias": "localhost",
    }
    spawn = Operation.parse(
        {"operation": "worker_spawn", "hive_id": "h", "model": "m", "worker": "cpu"}
    )
    assert spawn.to_dict() == {
        "operation": "worker_spawn",
        "hive_id": "h",
        "model": "m",
        "worker": "cpu",
        "device": 0,
    }
    infer = Operation.parse({"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p"})
    assert infer.to_dict() == {
        "operation": "infer",
        "hive_id": "h",
        "model": "m",
        "prompt": "p",
        "max_tokens": 256,
        "temperature": 0.7,
        "top_p": None,
        "top_k": None,
        "stream": True,
    }


def test_parse_accepts_json_bytes_and_str() -> None:
    text = '{"operation": "hive_get", "alias": "box"}'
    assert Operation.parse(text) == HiveGet(alias="box")
    assert Operation.parse(text.encode()) == HiveGet(alias="box")


def test_parse_passes_a_model_through() -> None:
    op = Operation.worker_list("h")
    assert Operation.parse(op) is op


@pytest.mark.parametrize(
    "op",
    [
        Operation.status(),
        Operation.hive_list(),
        Operation.hive_get("gpu-box"),
        Operation.hive_check(),
        Operation.hive_check("remote"),
        Operation.worker_spawn("h1", "llama", "cuda", device=3),
        Operation.worker_list("h1"),
        Operation.infer(
            "h1",
            "llama",
            "  keep my whitespace\n",
            max_tokens=32_768,
            temperature=2,
            top_p=0.9,
            top_k=40,
            stream=False,
        ),
    ],
    ids=lambda op: op.name,
)
def test_constructors_round_trip_through_parse(op: Any) -> None:
    as_dict = op.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert Operation.parse(as_dict) == op
    assert Operation.parse(json.dumps(as_dict)) == op
    assert TypeAdapter(OperationModel).validate_python(as_dict) == op


def test_constructor_values() -> None:
    op = Operation.infer("h1", "llama", "  hi\n", temperature=2, top_p=0.5, top_k=7, stream=False)
    assert (op.hive_id, op.model, op.prompt) == ("h1", "llama", "  hi\n")
    assert (op.max_tokens, op.temperature, op.top_p, op.top_k, op.stream) == (
        256,
        2.0,
        0.5,
        7,
        False,
    )
    assert Operation.hive_check().alias == "localhost"
    assert Operation.worker_spawn("h", "m", "cpu").device == 0
    assert Operation.hive_get("  padded  ").alias == "padded"


def test_models_are_frozen() -> None:
    op = Operation.hive_get("box")
    with pytest.raises(ValueError, match="frozen"):
        op.alias = "other"


@pytest.mark.parametrize(
    ("data", "expected_errors"),
    [
        ({"operation": "hive_get"}, [("alias", "Field required")]),
        (
            {"operation": "hive_get", "alias": "   "},
            [("alias", "String should have at least 1 character")],
        ),
        (
            {"operation": "hive_get", "alias": "x" * 129},
            [("alias", "String should have at most 128 characters")],
        ),
        (
            {
                "operation": "worker_spawn",
                "hive_id": "h",
                "model": "m",
                "worker": "w",
                "device": -1,
            },
            [("device", "Input should be greater than or equal to 0")],
        ),
        (
            {
                "operation": "worker_spawn",
                "hive_id": "h",
                "model": "m",
                "worker": "w",
                "device": "3",
            },
            [("device", "Input should be a valid integer")],
        ),
        (
            {"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p", "max_tokens": 0},
            [("max_tokens", "Input should be greater than or equal to 1")],
        ),
        (
            {
                "operation": "infer",
                "hive_id": "h",
                "model": "m",
                "prompt": "p",
                "max_tokens": 32769,
            },
            [("max_tokens", "Input should be less than or equal to 32768")],
        ),
        (
            {"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p", "temperature": 2.5},
            [("temperature", "Input should be less than or equal to 2")],
        ),
        (
            {"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p", "top_p": 1.5},
            [("top_p", "Input should be less than or equal to 1")],
        ),
        (
            {"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p", "top_k": 0},
            [("top_k", "Input should be greater than or equal to 1")],
        ),
        (
            {"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p", "stream": "yes"},
            [("stream", "Input should be a valid boolean")],
        ),
        (
            {"operation": "infer", "model": "", "prompt": ""},
            [
                ("hive_id", "Field required"),
                ("model", "String should have at least 1 character"),
                ("prompt", "String should have at least 1 character"),
            ],
        ),
    ],
)
def test_bad_fields_raise_invalid_fields_listing_each_field(
    data: dict[str, Any], expected_errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(OperationError) as caught:
        Operation.parse(data)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.code == "invalid_fields"
    assert [(item["loc"], item["msg"]) for item in error.errors] == expected_errors
    listing = "; ".join(f"{loc}: {msg}" for loc, msg in expected_errors)
    assert str(error) == f"invalid fields for operation {data['operation']!r}: {listing}"


def test_nan_temperature_is_rejected() -> None:
    with pytest.raises(OperationError) as caught:
        Operation.infer("h", "m", "p", temperature=float("nan"))
    assert caught.value.code == "invalid_fields"
    assert [(e["loc"], e["msg"]) for e in caught.value.errors] == [
        ("temperature", "Input should be a finite number")
    ]


@pytest.mark.parametrize(
    ("data", "extra"),
    [
        ({"operation": "status", "verbose": True}, "verbose"),
        ({"operation": "hive_list", "alias": "x"}, "alias"),
        ({"operation": "infer", "hive_id": "h", "model": "m", "prompt": "p", "seed": 1}, "seed"),
    ],
)
def test_extra_fields_are_rejected(data: dict[str, Any], extra: str) -> None:
    with pytest.raises(OperationError) as caught:
        Operation.parse(data)
    assert caught.value.code == "invalid_fields"
    assert caught.value.errors == ({"loc": extra, "msg": "Extra inputs are not permitted"},)
    assert str(caught.value) == (
        f"invalid fields for operation {data['operation']!r}: "
        f"{extra}: Extra inputs are not permitted"
    )


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        ({"operation": "hive_delete"}, "unknown operation 'hive_delete'"),
        ({"operation": "HIVE_LIST"}, "unknown operation 'HIVE_LIST'"),
        ({"operation": 7}, "unknown operation 7"),
        ({"alias": "x"}, "missing field 'operation'"),
        ({}, "missing field 'operation'"),
        (b"[1, 2]", "an operation must be a JSON object, got list"),
    ],
)
def test_unknown_or_missing_operation_lists_valid_names(data: Any, prefix: str) -> None:
    with pytest.raises(OperationError) as caught:
        Operation.parse(data)
    assert caught.value.code == "unknown_operation"
    assert str(caught.value) == f"{prefix}; {VALID_LISTING}"
    assert caught.value.errors == ()


@pytest.mark.parametrize("data", [b"{", "not json", b"\xff\xfe"])
def test_malformed_json_is_invalid_json(data: bytes | str) -> None:
    with pytest.raises(OperationError) as caught:
        Operation.parse(data)
    assert caught.value.code == "invalid_json"
    assert str(caught.value).startswith("body is not valid JSON")


def test_constructors_validate_too() -> None:
    with pytest.raises(OperationError) as caught:
        Operation.worker_spawn("h", "m", "cuda", device=256)
    assert caught.value.code == "invalid_fields"
    assert str(caught.value) == (
        "invalid fields for operation 'worker_spawn': "
        "device: Input should be less than or equal to 255"
    )


def test_operation_is_a_namespace() -> None:
    with pytest.raises(TypeError, match="namespace"):
        Operation()
