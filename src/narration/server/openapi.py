"""The OpenAPI document: the job request body as the discriminated union of the registered
operations (with an example each), the stream route answered outside FastAPI's routing, and the
JSON error body."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ..jobs import JobRegistry
from .stream_route import STREAM_PATH

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
            *FILTER_PARAMETERS,
        ],
        "responses": {
            "200": {
                "description": "the job's events, live, until its terminal event",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "204": {"description": "resumed at or past the terminal event: nothing to send"},
            "400": _error_schema(
                "bad `Last-Event-ID` or `after` (`invalid_cursor`), or a bad "
                "filter (`invalid_filter`)"
            ),
            "404": _error_schema("unknown, expired or malformed job id"),
        },
    }
}


def _submit_body(registry: JobRegistry, components: dict[str, Any]) -> dict[str, Any]:
    """`POST /v1/jobs`'s request body: one schema per operation, `operation` discriminating."""
    schema = registry.request_schema()
    components.update(schema.pop("$defs", {}))
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
    "503": _error_schema("at capacity or shutting down (see Retry-After)"),
}


def document_app(app: FastAPI, registry: JobRegistry) -> None:
    """Complete `app`'s OpenAPI schema (built once, on first request of /openapi.json)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Error"] = _ERROR_SCHEMA
            submit = schema["paths"]["/v1/jobs"]["post"]
            submit["requestBody"] = _submit_body(registry, components)
            submit.setdefault("responses", {}).update(_SUBMIT_ERRORS)
            schema["paths"][STREAM_PATH] = STREAM_OPENAPI
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
