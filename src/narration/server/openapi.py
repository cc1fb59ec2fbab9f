"""The OpenAPI document: the job request body as the discriminated union of the registered
operations (with an example each), the stream route answered outside FastAPI's routing, the
JSON error body for every error an operation can answer, and the security schemes (a bearer
API key; a stream token in the stream URL), so /docs can authorize."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ..jobs import JobRegistry
from .stream_route import STREAM_PATH
from .tokens import TOKEN_PARAM

__all__ = ["document_app"]

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _error_schema(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


FILTER_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "level",
        "in": "query",
        "required": False,
        "description": "only events at this level or above (trace, debug, info, warn, error, "
        "fatal)",
        "schema": {"type": "string"},
    },
    {
        "name": "actor",
        "in": "query",
        "required": False,
        "description": "only events of these actors (repeated, or comma-separated)",
        "schema": {"type": "string"},
    },
    {
        "name": "action",
        "in": "query",
        "required": False,
        "description": "only events with these actions (repeated, or comma-separated)",
        "schema": {"type": "string"},
    },
    {
        "name": "q",
        "in": "query",
        "required": False,
        "description": "only events whose text (human, cute or story) contains this, any case",
        "schema": {"type": "string", "maxLength": 256},
    },
]

STREAM_OPENAPI: dict[str, Any] = {
    "get": {
        "summary": "Stream a job's events (Server-Sent Events)",
        "description": (
            "`event: narration` frames with ids 1, 2, 3, ...; `event: gap` "
            '(`{"missed", "next_id"}`) where retention dropped unread events; `: keepalive` '
            "comments in silences; exactly one terminal `done`, `error` or `cancelled`, sent "
            "after the job's final state is committed. Resume with `Last-Event-ID` or `after`. "
            "Filters (`level`, `actor`, `action`, `q`) skip the events they reject without "
            "changing any id. An archived job is replayed in full, then its terminal."
        ),
        "operationId": "stream_job",
        "parameters": [
            {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "resume after this event id (with Last-Event-ID too, the larger)",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
            {
                "name": TOKEN_PARAM,
                "in": "query",
                "required": False,
                "description": "a stream token (from `sse_url`), for clients that cannot send "
                "headers (EventSource)",
                "schema": {"type": "string"},
            },
            *FILTER_PARAMETERS,
        ],
        "security": [{"bearer": []}, {"streamToken": []}],
        "responses": {
            "200": {
                "description": "the job's events, live, until its terminal event",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "204": {"description": "resumed at or past the terminal event: nothing to send"},
            "400": _error_schema(
                "bad `Last-Event-ID` or `after` (`invalid_cursor`), past the job's last event, "
                "or a bad filter (`invalid_filter`)"
            ),
            "401": _error_schema(
                "no valid credential, or a stream token expired or for another job"
            ),
            "403": _error_schema("the credential lacks the `read` scope"),
            "404": _error_schema("unknown, expired or malformed job id, or another tenant's job"),
            "405": _error_schema("a stream is read with GET"),
        },
    }
}


def _submit_body(registry: JobRegistry, components: dict[str, Any]) -> dict[str, Any]:
    """`POST /v1/jobs`'s request body: one schema per operation, `operation` discriminating."""
    schema = registry.request_schema()
    components.update(schema.pop("$defs", {}))
    for option in schema.get("oneOf", [schema]):  # the server needs `operation` to tell them apart
        name = option.get("$ref", "").rsplit("/", 1)[-1]
        target = components.get(name, option)
        if "operation" in target.get("properties", {}):
            target["required"] = sorted({*target.get("required", ()), "operation"})
    return {
        "required": True,
        "description": "One of the registered operations; `operation` names it.",
        "content": {"application/json": {"schema": schema, "examples": registry.examples()}},
    }


_SUBMIT_ERRORS = {
    "400": _error_schema("the body is not JSON, or nests too deep (`invalid_json`)"),
    "413": _error_schema("the body is over the size limit"),
    "415": _error_schema("the body is not application/json"),
    "422": _error_schema(
        "`unknown_operation` (the message lists the valid ones) or `invalid_fields`"
    ),
    "429": _error_schema("over the submission rate (see Retry-After)"),
    "503": _error_schema("at capacity, shutting down, or the store is unreachable (Retry-After)"),
}
_AUTH_ERRORS = {
    "401": _error_schema("no valid credential (`Authorization: Bearer <API key>`)"),
    "403": _error_schema("the credential lacks the scope this operation needs"),
    "503": _error_schema("the store is unreachable (see Retry-After)"),
}
_JOB_ERRORS = {
    "404": _error_schema("unknown, expired or malformed job id, or another tenant's job"),
}
_STREAM_TOKEN_SCHEME = {
    "type": "apiKey",
    "in": "query",
    "name": TOKEN_PARAM,
    "description": "a short-lived, read-only token for one job's stream (in `sse_url`)",
}


def document_app(app: FastAPI, registry: JobRegistry) -> None:
    """Complete `app`'s OpenAPI schema (built once, on first request of /openapi.json)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Error"] = _ERROR_SCHEMA
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)  # our 422s have the Error body
            schemes = schema["components"].setdefault("securitySchemes", {})
            schemes["streamToken"] = _STREAM_TOKEN_SCHEME
            for path, methods in schema["paths"].items():
                for operation in methods.values():
                    _complete_responses(path, operation)
            submit = schema["paths"]["/v1/jobs"]["post"]
            submit["requestBody"] = _submit_body(registry, components)
            submit["responses"].update(_SUBMIT_ERRORS)
            schema["paths"][STREAM_PATH] = STREAM_OPENAPI
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete_responses(path: str, operation: dict[str, Any]) -> None:
    """Every error `operation` can answer, with the Error body (FastAPI's 422 included)."""
    responses = operation.setdefault("responses", {})
    if "422" in responses:
        responses["422"] = _error_schema("a query parameter is not valid")
    if operation.get("security"):
        responses.update(_AUTH_ERRORS)
    if "{job_id}" in path:
        responses.update(_JOB_ERRORS)
    if operation.get("operationId") == "cancel_job":
        responses["409"] = _error_schema("the job already finished")
