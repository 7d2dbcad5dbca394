"""schemathesis against the running app, from the app's own OpenAPI document.

The app is served over real HTTP (a threaded Werkzeug server in the test process) on
the test database, with a token that holds every scope; every operation gets a
modest number of generated calls, and every answer must be no 5xx, a documented
status code, a documented content type and a body that matches the schema.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from werkzeug.serving import make_server

from tests.api.helpers import issue

EXAMPLES_PER_OPERATION = 40
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.ignored_auth,
]


@pytest.fixture
def served(make_app: Any) -> Iterator[tuple[str, str]]:
    """The app on a free loopback port, and a token with every scope (its limit high enough)."""
    app = make_app(API_AUTH_FAILURE_RATE_LIMIT="100000 per minute", API_EVENTS_SETTLE_SECONDS=0)
    token = issue(app, rate_limit="100000 per minute")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", token
    finally:
        server.shutdown()
        server.server_close()


def test_every_operation_answers_as_its_document_says(served: tuple[str, str]) -> None:
    base, token = served
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    headers = {"Authorization": f"Bearer {token}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)

        call()
