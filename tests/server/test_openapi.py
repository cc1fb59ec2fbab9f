"""A property test over the OpenAPI document (schemathesis): every operation, its request bodies
(the operations' discriminated union) included, against a real server process with auth on; no
5xx, and every answer conforms to the document (status codes, bodies, content types)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from tests.apps.embedded import jobs as embedded_jobs

from auth_helpers import ADMIN
from narration._process import ServiceProcess
from narration.server import create_app

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[ServiceProcess]:
    env = {
        "PYTHONPATH": str(REPO),
        "NARRATION_API_KEYS": ADMIN.spec,
        "NARRATION_SUBMIT_RATE": "off",
        "NARRATION_SHUTDOWN_GRACE_S": "0.5",
    }
    with ServiceProcess(
        "openapi", ["serve", "--jobs", "tests.apps.embedded:jobs", "--quiet"], env=env
    ).running() as service:
        yield service


# The document of the app the server process runs (the same registry and settings).
schema = schemathesis.openapi.from_dict(create_app(embedded_jobs, api_keys=(ADMIN.spec,)).openapi())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx_and_every_answer_as_documented(
    case: schemathesis.Case, server: ServiceProcess
) -> None:
    # Answers that are right although JSON Schema cannot say so, for strings any string fits:
    # a listing cursor is opaque (never one the API made: 422 `invalid_cursor`), `since` and
    # `until` take ISO 8601 or Unix seconds (else 422 `invalid_time`); and integers must be
    # written without a fraction (`87.0` is an integer to JSON Schema, not to the API's strict
    # fields: 422 `invalid_fields`).
    query = case.query or {}
    unchecked = any(query.get(name) for name in ("cursor", "since", "until"))
    excluded = [positive_data_acceptance] if unchecked or _integral_float(case.body) else []
    case.call_and_validate(
        base_url=server.url, headers=ADMIN.headers, timeout=10, excluded_checks=excluded
    )


def _integral_float(value: object) -> bool:
    """True when `value` holds a float with no fraction (`87.0`) anywhere."""
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_integral_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_integral_float(item) for item in value)
    return False
