"""Smoke checks for the services `scripts/services.sh up` starts: the Docker engine and
ductwork's base image (`ductwork/python:3.11`, built offline from the host's Python).

They talk to the real engine through the Docker SDK and skip, with the reason, when
no engine answers (under CI=true the suite's conftest turns that skip into a failure).
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import uuid

import pytest

docker = pytest.importorskip("docker", reason="the Docker SDK is not installed: pip install docker")

pytestmark = pytest.mark.docker

BASE_IMAGE = "ductwork/python:3.11"
START_HINT = "start it with `bash scripts/services.sh up docker`"


@pytest.fixture(scope="module")
def client():
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine reachable ({exc.__class__.__name__}: {exc}); {START_HINT}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(client):
    try:
        return client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the engine is up but {BASE_IMAGE} is absent; build it: {START_HINT}")


def run(client, *args, **kwargs) -> str:
    """Run a throw-away container and return its output."""
    out = client.containers.run(*args, remove=True, stdout=True, stderr=True, **kwargs)
    return out.decode()


def test_base_image_is_tagged(client, image):
    assert BASE_IMAGE in image.tags
    assert image.id.startswith("sha256:")


def test_base_image_has_python_311_and_the_hosts_cloudpickle(client, image):
    out = run(
        client,
        BASE_IMAGE,
        [
            "python",
            "-c",
            "import sys, cloudpickle, blake3; print(sys.version_info[:2], cloudpickle.__version__)",
        ],
        network_mode="none",
    )
    assert out.strip() == f"(3, 11) {importlib.metadata.version('cloudpickle')}"


def _write_as(client, directory, uid: int, gid: int) -> os.stat_result:
    """Write a file into directory from a container running as uid:gid; stat it."""
    run(
        client,
        BASE_IMAGE,
        ["python", "-c", "open('/out/result.txt', 'w').write('ok')"],
        user=f"{uid}:{gid}",
        volumes={str(directory): {"bind": "/out", "mode": "rw"}},
        network_mode="none",
    )
    path = directory / "result.txt"
    assert path.read_text() == "ok"
    return path.stat()


def test_container_as_our_user_writes_a_bind_mount_we_own(client, image, tmp_path):
    uid, gid = os.getuid(), os.getgid()
    st = _write_as(client, tmp_path, uid, gid)
    assert (st.st_uid, st.st_gid) == (uid, gid)


@pytest.mark.skipif(os.getuid() != 0, reason="only root can hand a directory to another uid")
def test_container_user_is_not_silently_root(client, image, tmp_path):
    # Run as root, the test above cannot tell --user from the default; this one can.
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, 4321, 4321)
    st = _write_as(client, out, 4321, 4321)
    assert (st.st_uid, st.st_gid) == (4321, 4321)


@pytest.mark.slow
def test_build_from_base_image_can_pip_install_through_the_proxy(client, image):
    tag = f"ductwork-test/pip-smoke:{uuid.uuid4().hex[:12]}"
    dockerfile = f'FROM {BASE_IMAGE}\nRUN pip install six && python -c "import six"\n'
    try:
        client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()),
            tag=tag,
            rm=True,
            forcerm=True,
            nocache=True,  # really run pip, whatever ran before
            network_mode="host",
        )
        version = run(client, tag, ["python", "-c", "import six; print(six.__version__)"])
        assert version.strip()
    finally:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
