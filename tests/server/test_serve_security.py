"""Every status code of SPEC section 5 against a real server: 401 (none, unknown, revoked),
403 per role, 404, 409, 413, 415 (a real pickle that would leave a marker file), 422; the
token's text is nowhere in the store's files or the server's output."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from harness import Served, ductwork, token, write_flow

pytestmark = pytest.mark.slow


class Trap:
    """Unpickling this creates the marker file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("secure")
    flow = write_flow(root)
    ductwork(root, "publish", f"{flow}:flow", "--name", "flow")
    tokens = {role: token(root, role, role) for role in ("viewer", "runner", "admin")}
    server = Served(root, "--max-runs", "2")
    yield root, server, tokens
    server.kill()


def _error(answer, code: str) -> str:
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}, answer
    assert answer["error"]["code"] == code, answer
    return answer["error"]["message"]


ROUTES = [
    ("GET", "/pipelines", None, "viewer"),
    ("GET", "/pipelines/flow", None, "viewer"),
    ("GET", "/runs", None, "viewer"),
    ("POST", "/pipelines/flow/runs", {"parameters": {"x": 1}}, "runner"),
    ("PUT", "/pipelines/flow/default", {"version": 1}, "admin"),
    ("POST", "/pipelines/flow/disable", None, "admin"),
    ("POST", "/pipelines/flow/enable", None, "admin"),
]


@pytest.mark.parametrize(("method", "path", "body", "needs"), ROUTES)
def test_401_and_403_on_every_route(served, method, path, body, needs):
    _, server, tokens = served
    for sent in (None, "dw_" + "x" * 43, "not-a-token"):
        status, answer = server.call(method, path, sent, body)
        assert status == 401, (sent, answer)
        _error(answer, "unauthorized")
    order = ["viewer", "runner", "admin"]
    for role in order:
        status, answer = server.call(method, path, tokens[role], body)
        if order.index(role) < order.index(needs):
            assert status == 403, (role, answer)
            assert needs in _error(answer, "forbidden")
        else:
            assert status in (200, 202), (role, answer)


def test_a_revoked_token_stops_at_once(served):
    root, server, _ = served
    text = token(root, "temp", "viewer")
    assert server.call("GET", "/pipelines", text)[0] == 200
    assert "temp" in ductwork(root, "token", "list").stdout
    ductwork(root, "token", "revoke", "temp")
    status, answer = server.call("GET", "/pipelines", text)
    assert status == 401
    _error(answer, "unauthorized")
    assert "temp" not in ductwork(root, "token", "list").stdout


def test_404_409_422(served):
    _, server, tokens = served
    admin = tokens["admin"]
    for method, path, body in [("GET", "/pipelines/nope", None),
                               ("POST", "/pipelines/nope/runs", {}),
                               ("PUT", "/pipelines/flow/default", {"version": 9}),
                               ("POST", "/pipelines/flow/runs", {"version": 9}),
                               ("GET", "/runs/20260101-000000-" + "0" * 32, None),
                               ("POST", "/runs/20260101-000000-" + "0" * 32 + "/cancel", None),
                               ("GET", "/runs/nope/steps/double/logs", None)]:
        status, answer = server.call(method, path, admin, body)
        assert status == 404, (path, answer)
        _error(answer, "not_found")
    done = server.call("POST", "/pipelines/flow/runs", admin, {"parameters": {"x": 2}})[1]
    assert server.wait(admin, done["run_id"])["status"] == "succeeded"
    status, answer = server.call("GET", f"/runs/{done['run_id']}/steps/nope/logs", admin)
    assert status == 404 and "double" in _error(answer, "not_found")
    status, answer = server.call("POST", f"/runs/{done['run_id']}/cancel", admin)
    assert status == 409 and "succeeded" in _error(answer, "conflict")

    for params, named in [({"x": "five"}, "x"), ({"nope": 1}, "nope"), ({"tag": 3}, "tag")]:
        status, answer = server.call("POST", "/pipelines/flow/runs", admin,
                                     {"parameters": params})
        assert status == 422, answer
        assert f"'{named}'" in _error(answer, "invalid_parameters")
    for body in ({"version": "one"}, {"parameters": [1]}, {"surprise": 1}, [1, 2]):
        status, answer = server.call("POST", "/pipelines/flow/runs", admin, body)
        assert status == 422, (body, answer)
        _error(answer, "invalid")
    status, answer = server.call("GET", "/runs?limit=0", admin)
    assert status == 422 and "limit" in _error(answer, "invalid")


def test_413_by_length_and_by_bytes_read(served):
    _, server, tokens = served
    big = b'{"parameters": {"tag": "' + b"a" * (1 << 20) + b'"}}'
    for chunked in (False, True):
        status, answer = server.call("POST", "/pipelines/flow/runs", tokens["runner"],
                                     raw=big, chunked=chunked,
                                     headers={"Content-Type": "application/json"})
        assert status == 413, (chunked, answer)
        _error(answer, "payload_too_large")
    under = b'{"parameters": {"tag": "' + b"a" * 1000 + b'"}}'
    assert server.call("POST", "/pipelines/flow/runs", tokens["runner"], raw=under,
                       headers={"Content-Type": "application/json"})[0] == 202


def test_415_never_unpickles(served, tmp_path):
    _, server, tokens = served
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(Trap(marker))
    pickle.loads(payload)  # the trap works: unpickling does leave the file
    assert marker.exists()
    marker.unlink()
    for kind in ("application/octet-stream", "application/python-pickle", "application/json",
                 "text/plain", None):
        headers = {"Content-Type": kind} if kind else {}
        for path in ("/pipelines/flow/runs", "/pipelines/flow/default"):
            status, answer = server.call("POST" if path.endswith("runs") else "PUT", path,
                                         tokens["admin"], raw=payload, headers=headers)
            assert status == 415, (kind, answer)
            _error(answer, "unsupported_media_type")
    assert not marker.exists()
    status, answer = server.call("POST", "/pipelines/flow/runs", tokens["admin"],
                                 raw=b'{"parameters": {}}', headers={"Content-Type": "text/plain"})
    assert status == 415


def test_the_token_text_is_nowhere(served):
    root, server, tokens = served
    # Every call above and here has sent the tokens; none may be kept or printed.
    assert server.call("GET", "/runs", tokens["viewer"])[0] == 200
    server.call("GET", "/pipelines/nope", tokens["admin"])
    texts = list(tokens.values())
    for path in (root / "store").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for text in texts:
                assert text.encode() not in data, path
    output = server.output()
    assert output and not any(text in output for text in texts)
    assert server.call("GET", "/openapi.json")[0] == 200
