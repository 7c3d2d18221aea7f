"""Property-based tests of the REST API with schemathesis, from the OpenAPI document the
server itself serves: for every operation, generated requests (valid and invalid ones,
with random and with real path parameters, under an admin token) never get a 5xx, and
every answer is documented -- its status code listed, its content type and body
conforming to the operation's response schema.

A real ``ductwork serve`` on loopback (``live_server``), with ``flow`` published and one
finished run, so generated requests reach real pipelines, runs and steps as well as
unknown ones. Bounded: a few dozen examples per operation and mode.
"""

from __future__ import annotations

import re
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import ductwork as dw

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 20
BUDGET = 150.0  # seconds for the whole property run; a guard, not a target


@pytest.fixture(scope="module")
def api(live_server):
    """The served OpenAPI document, loaded by schemathesis, and the real names to aim at."""
    headers = {"Authorization": f"Bearer {live_server.tokens['admin']}"}
    with dw.Client(live_server.url, token=live_server.tokens["admin"]) as client:
        run_id = client.trigger("flow", {"x": 4})
        assert client.wait(run_id, timeout=120)["status"] == "succeeded"
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json",
                                           headers=headers, timeout=30)
    real = {"name": "flow", "run_id": run_id, "step_id": "scale"}
    return schema, headers, real


def _operations(schema):
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())
    return ops


def test_the_document_describes_every_route_of_the_spec(api):
    schema, _, _ = api
    routes = {(op.method.upper(), re.sub(r"\{[^}]+\}", "{}", op.path))
              for op in _operations(schema)}
    for method, path in [
        ("GET", "/api/v1/pipelines"), ("GET", "/api/v1/pipelines/{}"),
        ("POST", "/api/v1/pipelines/{}/runs"), ("PUT", "/api/v1/pipelines/{}/default"),
        ("POST", "/api/v1/pipelines/{}/disable"), ("POST", "/api/v1/pipelines/{}/enable"),
        ("GET", "/api/v1/runs"), ("GET", "/api/v1/runs/{}"),
        ("GET", "/api/v1/runs/{}/steps/{}/logs"), ("POST", "/api/v1/runs/{}/cancel"),
    ]:
        assert (method, path) in routes, f"{method} {path} is not in the OpenAPI document"


def test_generated_requests_get_documented_answers_and_no_5xx(api, live_server):
    schema, headers, real = api
    started = time.monotonic()
    failures: list[str] = []
    for op in _operations(schema):
        names = [p.name for p in op.path_parameters]
        fixed_sets = [None]
        if names and all(n in real for n in names):
            fixed_sets.append({n: real[n] for n in names})
        # Invalid requests exist only where there is a body or a query to get wrong (any
        # string is a valid path segment): elsewhere the negative mode has no case to make.
        modes = [GenerationMode.POSITIVE]
        if op.body or len(op.query):
            modes.append(GenerationMode.NEGATIVE)
        for fixed in fixed_sets:
            for mode in modes:
                strategy = op.as_strategy(mode, path_parameters=fixed, headers=headers)

                @settings(max_examples=EXAMPLES, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def check(case):
                    case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

                try:
                    check()
                except Unsatisfiable:
                    pass  # no request of this kind can be made: nothing to check
                # schemathesis raises a BaseExceptionGroup of failures: collect every
                # operation's, then report them all at once
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{op.label} ({mode.value}, "
                                    f"{'real' if fixed else 'random'} path): {exc}")
        assert time.monotonic() - started < BUDGET, "the property run is over its time budget"
    tail = live_server.output()[-3000:]
    assert not failures, "\n\n".join(failures) + f"\n\nserver output:\n{tail}"
