"""The docker backend against a real engine: environments, failures, timeouts, image digests."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

import ductwork as dw
from ductwork import pipeline, step

pytestmark = pytest.mark.docker


@pytest.fixture
def engine(docker_engine):
    return docker_engine


@step(env=dw.Environment(pip=["termcolor==3.3.0"]))
def colored(text: str) -> str:
    import termcolor

    return termcolor.colored(text, "red") + f"|{termcolor.__name__}"


@step
def uid_and_file(store_hint: str) -> dict:
    return {"uid": os.getuid(), "gid": os.getgid()}


@step(cache=False)
def fails(x: int) -> int:
    raise KeyError(f"no such row {x}")


@step(timeout=2, cache=False)
def sleeps(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@step
def plus(x: int) -> int:
    print(f"adding to {x}")
    return x + 1


def test_a_package_only_the_container_has(engine, tmp_path):
    assert importlib.util.find_spec("termcolor") is None, "the host must not have termcolor"

    @pipeline
    def p():
        return colored("hello")

    run = p.run(backend="docker", store=str(tmp_path / "s"))
    assert run.outputs.endswith("|termcolor") and "hello" in run.outputs
    again = p.run(backend="docker", store=str(tmp_path / "s"))
    assert again.steps["colored"].cached  # the image is reused and keyed by its ID


def test_outputs_belong_to_the_invoking_user_and_logs_stream(engine, tmp_path):
    @pipeline
    def p():
        return plus(1), uid_and_file("x")

    store = tmp_path / "s"
    run = p.run(backend="docker", store=str(store))
    assert run.outputs[0] == 2
    assert run.outputs[1] == {"uid": os.getuid(), "gid": os.getgid()}
    assert "adding to 1" in run.steps["plus"].logs
    for path in store.rglob("*"):  # objects, and entries holding small outputs inline
        assert path.stat().st_uid == os.getuid()


def test_a_failing_step_keeps_its_traceback_and_removes_its_container(engine, tmp_path):
    @pipeline
    def p():
        return fails(3), plus(1)

    before = {c.id for c in engine.containers.list(all=True)}
    with pytest.raises(dw.PipelineFailed) as err:
        p.run(backend="docker", store=str(tmp_path / "s"))
    assert "KeyError: 'no such row 3'" in str(err.value)
    assert err.value.run.steps["plus"].status == "succeeded"
    assert {c.id for c in engine.containers.list(all=True)} <= before


def test_a_timeout_stops_the_container(engine, tmp_path):
    @pipeline
    def p():
        return sleeps(60)

    before = {c.id for c in engine.containers.list(all=True)}
    started = time.time()
    with pytest.raises(dw.PipelineFailed, match=r"timed out after 2 s \(timeout=2\)"):
        p.run(backend="docker", store=str(tmp_path / "s"))
    assert time.time() - started < 40
    assert {c.id for c in engine.containers.list(all=True)} <= before


def _build_base(engine, tag: str, marker: str) -> str:
    return _build(engine, tag, f"LABEL ductwork.test={marker}")


def _build(engine, tag: str, *lines: str) -> str:
    from ductwork.backends.docker_env import default_base

    dockerfile = "\n".join([f"FROM {default_base()}", *lines, ""]).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    image, _ = engine.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    return image.id


def test_a_rebuilt_image_with_the_same_tag_reruns_its_steps(engine, tmp_path):
    tag = "ductwork-test/rebuilt:latest"
    first_id = _build_base(engine, tag, "one")

    @step(env=dw.Environment(base_image=tag))
    def where(x: int) -> int:
        return x * 10

    @pipeline
    def p():
        return where(4)

    store = str(tmp_path / "s")
    assert p.run(backend="docker", store=store).outputs == 40
    assert p.run(backend="docker", store=store).steps["where"].cached
    second_id = _build_base(engine, tag, f"two-{time.time()}")
    assert second_id != first_id
    run = p.run(backend="docker", store=store)
    assert not run.steps["where"].cached
    assert "the environment changed" in run.steps["where"].why
    engine.images.remove(tag, force=True)


def test_a_python_minor_mismatch_fails_before_any_container_runs_the_step(engine, tmp_path):
    tag = "ductwork-test/wrong-python:latest"
    _build(engine, tag, "RUN printf '#!/bin/sh\\necho 3.10\\n' > /opt/venv/bin/python && "
                        "chmod +x /opt/venv/bin/python")
    marker = tmp_path / "ran"

    @step(env=dw.Environment(base_image=tag))
    def never(path: str) -> int:
        open(path, "w").close()
        return 1

    @pipeline
    def p():
        return never(str(marker))

    with pytest.raises(dw.PipelineFailed, match="has Python 3.10, but this client runs Python"):
        p.run(backend="docker", store=str(tmp_path / "s"))
    assert not marker.exists()
    engine.images.remove(tag, force=True)


def test_no_engine_is_a_clear_error_before_the_run(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")

    @pipeline
    def p():
        return plus(1)

    with pytest.raises(dw.DuctworkError, match=r"No Docker engine answers at unix://.*nothing.sock"):
        p.run(backend="docker", store=str(tmp_path / "s"))
    assert dw.runs(store=str(tmp_path / "s")) == []


@step(compute="containers")
def in_container(x: int) -> str:
    return open("/etc/hostname").read().strip() + f":{x}"


def test_a_pipeline_mixing_inline_and_docker_steps(engine, tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text('[compute.containers]\nbackend = "docker"\ncpus = 1\n')
    monkeypatch.chdir(tmp_path)

    @pipeline
    def p():
        return in_container(plus(1)), plus(5)

    run = p.run(store=str(tmp_path / "s"))
    assert run.backend == "inline"
    hostname = open("/etc/hostname").read().strip()
    container_side, inline_side = run.outputs
    assert container_side.endswith(":2") and not container_side.startswith(hostname + ":")
    assert inline_side == 6


# -- the engine failing under a step: only that step fails, and says why --------------------


def _containers(engine) -> set[str]:
    return {c.id for c in engine.containers.list(all=True)}


def test_an_image_the_engine_refuses_to_start_fails_only_its_step(engine, tmp_path):
    # The job directory is bind-mounted at /ductwork/job: a file there makes the start fail.
    tag = "ductwork-test/unmountable:latest"
    _build(engine, tag, "RUN mkdir -p /ductwork && touch /ductwork/job")

    @step(env=dw.Environment(base_image=tag))
    def unmountable(x: int) -> int:
        return x

    @pipeline
    def p():
        return unmountable(1), plus(1)

    before = _containers(engine)
    try:
        with pytest.raises(dw.PipelineFailed) as err:
            p.run(backend="docker", store=str(tmp_path / "s"))
    finally:
        engine.images.remove(tag, force=True)
    steps = err.value.run.steps
    assert steps["plus"].status == "succeeded"
    assert steps["unmountable"].status == "failed"
    error = steps["unmountable"].error
    assert "Step 'unmountable'" in error and "could not start its container" in error
    assert "not a directory" in error  # the engine's own words
    assert "base_image" in error  # what to do
    assert _containers(engine) <= before  # the created container is removed too


def test_an_image_reference_the_engine_rejects_fails_only_its_step(engine, tmp_path):
    @step(env=dw.Environment(base_image="Not A Reference!"))
    def misnamed(x: int) -> int:
        return x

    @step(env=dw.Environment(base_image="Not A Reference!"), cache=False)
    def misnamed_uncached(x: int) -> int:
        return x

    @pipeline
    def p():
        return misnamed(1), misnamed_uncached(1), plus(1)

    with pytest.raises(dw.PipelineFailed) as err:
        p.run(backend="docker", store=str(tmp_path / "s"))
    steps = err.value.run.steps
    assert steps["plus"].status == "succeeded"
    for name in ("misnamed", "misnamed_uncached"):
        assert steps[name].status == "failed"
        assert f"Step '{name}'" in steps[name].error
        assert "'Not A Reference!'" in steps[name].error and "400" in steps[name].error


class _EngineLink:
    """A unix-socket relay to the real engine that can drop one container's ``wait``.

    It stands for a network between client and engine that fails: every byte goes to
    and from the real engine; ``cut(id)`` closes the connections waiting on that container.
    """

    def __init__(self, path: str, target: str = "/var/run/docker.sock") -> None:
        self.target = target
        self.requests: dict[socket.socket, bytes] = {}  # client side -> its last request line
        self.lock = threading.Lock()
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(32)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, client),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, client: socket.socket | None
              ) -> None:
        try:
            while data := src.recv(65536):
                if client is not None and data[:4] in (b"GET ", b"POST", b"DELE", b"PUT "):
                    with self.lock:
                        self.requests[client] = data.split(b"\r\n", 1)[0]
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self, container_id: str) -> bool:
        """Drop the connections waiting on ``container_id``; True if there was one."""
        with self.lock:
            found = [c for c, line in self.requests.items()
                     if f"/containers/{container_id}/wait".encode() in line]
        for client in found:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        return bool(found)

    def close(self) -> None:
        """Stop accepting connections."""
        self.server.close()


#: Marks the container of the step a test interferes with (the engine is shared).
NAPPER = dw.Environment(env={"DUCTWORK_TEST_ROLE": "napper"})


def _when_napping(engine, store, act, after: float = 1.0) -> threading.Thread:
    """On a thread: ``act(container)`` (until it returns True) once the container of a
    ``NAPPER`` step with ``store`` mounted has run ``after`` seconds."""
    sources = {str(store), str(Path(store).resolve())}

    def ours(c) -> bool:
        env = c.attrs.get("Config", {}).get("Env") or []
        mounts = {m.get("Source") for m in c.attrs.get("Mounts", [])}
        return "DUCTWORK_TEST_ROLE=napper" in env and bool(mounts & sources)

    def watch() -> None:
        seen: dict[str, float] = {}
        deadline = time.time() + 60
        while time.time() < deadline:
            for c in engine.containers.list(filters={"label": "ductwork.job"}):
                if ours(c) and time.time() - seen.setdefault(c.id, time.time()) > after \
                        and act(c):
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("timeout", [120, None])
def test_losing_the_engine_connection_mid_wait_is_not_a_timeout(engine, tmp_path, monkeypatch,
                                                                timeout):
    @step(env=NAPPER, timeout=timeout, cache=False)
    def naps(seconds: float) -> str:
        time.sleep(seconds)
        return "woke"

    @pipeline
    def p():
        return naps(30), plus(1)

    # A short path: unix socket paths are limited to ~100 characters.
    where = tempfile.mkdtemp(prefix="dw-link-", dir="/tmp")
    link = _EngineLink(os.path.join(where, "docker.sock"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{where}/docker.sock")
    before = _containers(engine)
    watcher = _when_napping(engine, tmp_path / "s", lambda c: link.cut(c.id))
    started = time.time()
    try:
        with pytest.raises(dw.PipelineFailed) as err:
            p.run(backend="docker", store=str(tmp_path / "s"))
    finally:
        watcher.join(timeout=5)
        link.close()
        shutil.rmtree(where, ignore_errors=True)
    assert time.time() - started < 25  # it did not sit out the nap
    steps = err.value.run.steps
    assert steps["plus"].status == "succeeded"
    assert steps["naps"].status == "failed"
    error = steps["naps"].error
    assert "timed out" not in error
    assert "Step 'naps'" in error and "lost the Docker engine" in error
    # The real cause: the engine sent the wait's headers, then the connection ended.
    assert "ChunkedEncodingError" in error or "ConnectionError" in error
    assert "rerun" in error  # what to do
    assert _containers(engine) <= before  # removed once the engine answered again


def test_a_container_removed_under_its_step_says_so(engine, tmp_path):
    @step(env=NAPPER, timeout=120, cache=False)
    def naps(seconds: float) -> str:
        time.sleep(seconds)
        return "woke"

    @pipeline
    def p():
        return naps(30), plus(1)

    def remove(container) -> bool:
        container.remove(force=True)
        return True

    watcher = _when_napping(engine, tmp_path / "s", remove)
    try:
        with pytest.raises(dw.PipelineFailed) as err:
            p.run(backend="docker", store=str(tmp_path / "s"))
    finally:
        watcher.join(timeout=5)
    steps = err.value.run.steps
    assert steps["plus"].status == "succeeded"
    error = steps["naps"].error
    assert "timed out" not in error
    assert "Step 'naps'" in error and "was removed while the step ran" in error
