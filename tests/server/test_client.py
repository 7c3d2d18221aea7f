"""``dw.Client`` against a real ``ductwork serve`` on loopback: every call, every error."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys

import pytest

import ductwork as dw
from ductwork.client import (
    FINAL_STATUSES,
    ClientError,
    Conflict,
    Forbidden,
    InvalidParameters,
    NotFound,
    PayloadTooLarge,
    RunTimeout,
    ServerError,
    ServerUnreachable,
    Unauthorized,
    UnsupportedMediaType,
    error_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def admin(live_server):
    with dw.Client(live_server.url, token=live_server.tokens["admin"]) as client:
        yield client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _no_token_in(live_server, *texts: str) -> None:
    for token in live_server.tokens.values():
        for text in texts:
            assert token not in text


def test_client_loads_httpx_only_when_made():
    code = ("import sys, ductwork as dw\n"
            "C = dw.Client\n"
            "assert 'httpx' not in sys.modules, 'import'\n"
            "C('http://127.0.0.1:1', token='t').close()\n"
            "assert 'httpx' in sys.modules, 'made'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_trigger_wait_and_read_a_run(live_server, admin):
    listed = {p["name"]: p for p in admin.pipelines()}
    assert listed["flow"]["default_version"] == 1 and listed["flow"]["enabled"] is True
    assert listed["flow"]["versions"] == [1]
    schema = admin.pipeline("flow")
    assert "x" in str(schema)

    run_id = admin.trigger("flow", parameters={"x": 3})
    assert isinstance(run_id, str) and len(run_id) >= 16
    record = admin.wait(run_id, timeout=120)
    assert record["status"] == "succeeded", record
    assert record["version"] == 1 and record["parameters"] == {"x": 3}
    assert admin.run(run_id)["status"] == "succeeded"
    assert "scaling 3" in admin.logs(run_id, "scale")

    again = admin.wait(admin.trigger("flow", {"x": 3}, version=1), timeout=120)
    assert again["status"] == "succeeded"
    [scale] = [s for s in again["steps"] if s["id"] == "scale"]
    assert scale["cached"] is True and scale["status"] == "succeeded"

    recent = [r["run_id"] for r in admin.runs(pipeline="flow", limit=5)]
    assert recent[:2] == [again["run_id"], run_id]


def test_wait_times_out_naming_the_run_then_cancel(live_server, admin):
    run_id = admin.trigger("sleepy", {"seconds": 60})
    with pytest.raises(RunTimeout) as err:
        admin.wait(run_id, timeout=0.3)
    assert isinstance(err.value, TimeoutError) and isinstance(err.value, dw.DuctworkError)
    assert run_id in str(err.value) and err.value.last_status in ("queued", "running")
    assert err.value.last_status in str(err.value)
    assert admin.cancel(run_id)["status"] in ("cancelled", "cancelling")
    record = admin.wait(run_id, timeout=60)
    assert record["status"] == "cancelled"
    assert record["status"] in FINAL_STATUSES
    with pytest.raises(Conflict, match="already ended"):  # nothing left to cancel
        admin.cancel(run_id)


def test_errors_carry_the_server_message_and_code(live_server, admin):
    with pytest.raises(NotFound) as err:
        admin.trigger("no-such-pipeline")
    assert err.value.status == 404 and err.value.code and "no-such-pipeline" in str(err.value)
    with pytest.raises(NotFound):
        admin.trigger("flow", version=99)
    with pytest.raises(NotFound):
        admin.run("0" * 32)
    with pytest.raises(InvalidParameters) as err:
        admin.trigger("flow", {"x": "three"})
    assert err.value.status == 422 and "x" in str(err.value)
    assert isinstance(err.value, ValueError)
    with pytest.raises(InvalidParameters) as err:
        admin.trigger("flow", {"nope": 1})
    assert "nope" in str(err.value)
    with pytest.raises(PayloadTooLarge) as err:
        admin.trigger("flow", {"x": "a" * (2 << 20)})
    assert err.value.status == 413


def test_disabled_pipeline_conflicts_until_enabled(live_server, admin):
    admin.disable("flow")
    try:
        with pytest.raises(Conflict) as err:
            admin.trigger("flow")
        assert err.value.status == 409 and "flow" in str(err.value)
    finally:
        admin.enable("flow")
    assert admin.wait(admin.trigger("flow"), timeout=120)["status"] == "succeeded"


def test_tokens_roles_and_secrecy(live_server):
    texts = []
    with dw.Client(live_server.url, token="not-a-token-" + "x" * 40) as client:
        with pytest.raises(Unauthorized) as err:
            client.pipelines()
        texts += [str(err.value), repr(err.value), repr(client)]
        assert err.value.status == 401 and isinstance(err.value, PermissionError)
    with dw.Client(live_server.url) as client, pytest.raises(Unauthorized):
        client.pipelines()

    viewer = dw.Client(live_server.url, token=live_server.tokens["viewer"])
    assert {p["name"] for p in viewer.pipelines()} >= {"flow", "sleepy"}
    with pytest.raises(Forbidden) as err:
        viewer.trigger("flow")
    texts += [str(err.value), repr(err.value), repr(viewer), str(vars(viewer)),
              repr(pickle.loads(pickle.dumps(err.value)))]
    assert err.value.status == 403
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(viewer)
    viewer.close()

    runner = dw.Client(live_server.url, token=live_server.tokens["runner"])
    run_id = runner.trigger("flow", {"x": 5})
    with pytest.raises(Forbidden):
        runner.set_default("flow", 1)
    with pytest.raises(Forbidden):
        runner.disable("flow")
    assert runner.wait(run_id, timeout=120)["status"] == "succeeded"
    texts.append(repr(runner))
    runner.close()
    _no_token_in(live_server, *texts)


def test_token_from_the_environment(live_server, monkeypatch):
    monkeypatch.setenv("DUCTWORK_TOKEN", live_server.tokens["viewer"])
    with dw.Client(live_server.url + "/api/v1/") as client:
        assert any(p["name"] == "flow" for p in client.pipelines())


def test_a_body_that_is_not_json_maps_to_unsupported_media_type(live_server):
    import httpx

    resp = httpx.post(f"{live_server.url}/api/v1/pipelines/flow/runs", content=b"x=1",
                      headers={"Authorization": f"Bearer {live_server.tokens['admin']}",
                               "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 415
    err = error_for(resp.status_code, resp.json(), resp.text)
    assert isinstance(err, UnsupportedMediaType) and err.code and str(err).startswith("415: ")


def test_nothing_listening_says_start_the_server():
    url = f"http://127.0.0.1:{_free_port()}"
    with dw.Client(url, token="secret-token-value") as client:
        with pytest.raises(ServerUnreachable) as err:
            client.pipelines()
    assert url in str(err.value) and "ductwork serve" in str(err.value)
    assert "secret-token-value" not in str(err.value)
    assert isinstance(err.value, ConnectionError)


@pytest.mark.parametrize(("status", "cls"), [
    (401, Unauthorized), (404, NotFound), (409, Conflict), (415, UnsupportedMediaType),
    (500, ServerError), (503, ServerError), (418, ClientError)])
def test_error_for_each_status(status, cls):
    err = error_for(status, {"error": {"code": "c", "message": "what happened"}})
    assert type(err) is cls and err.status == status and err.code == "c"
    assert str(err) == f"{status}: what happened"
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), back.status, back.code, str(back)) == (cls, status, "c", str(err))
    # a proxy's page, not the server's error body: its text is shown
    assert "Bad Gateway" in str(error_for(502, None, "<html>502 Bad Gateway</html>"))


def test_a_url_without_a_scheme_is_refused():
    with pytest.raises(ValueError, match="scheme"):
        dw.Client("127.0.0.1:8765")
