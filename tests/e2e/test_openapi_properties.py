"""A property test over the OpenAPI document (schemathesis): every operation, its request bodies
(the operations' discriminated union) included, against a real server process with auth on; no
5xx, and every answer conforms to the document (status codes, bodies, content types)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from tests.apps.embedded import jobs as embedded_jobs

from auth_helpers import ADMIN
from narration._process import ServiceProcess
from narration.server import create_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[ServiceProcess]:
    env = {
        "PYTHONPATH": str(REPO),
        "NARRATION_API_KEYS": ADMIN.spec,
        "NARRATION_SUBMIT_RATE": "off",
        "NARRATION_SHUTDOWN_GRACE_S": "0.5",
    }
    service = ServiceProcess(
        "openapi", ["serve", "--jobs", "tests.apps.embedded:jobs", "--quiet"], env=env
    ).start()
    try:
        service.wait_healthy(30.0)
        yield service
    finally:
        service.stop()
        service.remove_log()


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
    case.call_and_validate(base_url=server.url, headers=ADMIN.headers, timeout=10)
