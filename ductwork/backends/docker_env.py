"""Images for environments: one per ``Environment``, tagged by its hash, built once.

``dockerfile(env, base)`` is a pure function: the Dockerfile text for an
environment on a base image. The CA bundle of the host (or
``DUCTWORK_CA_BUNDLE``) is copied in and named by ``SSL_CERT_FILE`` and
``PIP_CERT``, so package installs work behind a TLS-intercepting proxy, as
they must for many corporate users. Packages are installed with uv when the
image has it, pip otherwise.

An image's Python must have the client's minor version: step code travels by
cloudpickle, whose payloads do not load across minor versions. That is checked
once per image, before any container of it runs a step.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
import tarfile

from ductwork.runtime.config import ductwork_home
from ductwork.runtime.engine.backend import BackendError
from ductwork.runtime.keys.hashing import hash_tagged

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BASE = "ductwork/python:{major}.{minor}"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
IMAGE_REPOSITORY = "ductwork-env"


def default_base() -> str:
    """The base image for steps with no ``base_image``: ductwork's Python of this minor."""
    return os.environ.get("DUCTWORK_BASE_IMAGE") or DEFAULT_BASE.format(
        major=sys.version_info.major, minor=sys.version_info.minor)


def ca_bundle() -> str | None:
    """The CA bundle copied into images: ``$DUCTWORK_CA_BUNDLE``, else the host's, if any."""
    path = os.environ.get("DUCTWORK_CA_BUNDLE", HOST_CA_BUNDLE)
    return path if path and os.path.isfile(path) else None


def dockerfile(env: Any, base: str, with_ca: bool) -> str:
    """Return the Dockerfile that builds ``env`` on ``base``."""
    lines = [f"FROM {base}"]
    if with_ca:
        lines += [
            "COPY ca-bundle.crt /etc/ssl/certs/ductwork-ca.crt",
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ductwork-ca.crt "
            "PIP_CERT=/etc/ssl/certs/ductwork-ca.crt "
            "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ductwork-ca.crt",
        ]
    if env is not None and env.apt:
        packages = " ".join(shlex.quote(p) for p in env.apt)
        lines.append(
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            f"--no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*"
        )
    if env is not None and env.pip:
        packages = " ".join(shlex.quote(p) for p in env.pip)
        lines.append(
            "RUN if command -v uv >/dev/null 2>&1; then uv pip install --python \"$(command -v "
            f"python)\" {packages}; else pip install --no-cache-dir {packages}; fi"
        )
    if env is not None and env.env:
        lines.append("ENV " + " ".join(f"{k}={json.dumps(v)}" for k, v in env.env))
    return "\n".join(lines) + "\n"


def image_tag(env: Any, base_id: str, with_ca: bool) -> str:
    """The tag of an environment's image: a hash of its Dockerfile and its base's ID."""
    digest = hash_tagged("Image", base_id, dockerfile(env, "BASE", with_ca))
    return f"{IMAGE_REPOSITORY}:{digest[:20]}"


def _checked_path() -> str:
    return str(ductwork_home() / "images-python.json")


def _checked_images() -> dict[str, str]:
    """Image IDs whose Python minor version was checked before, by any process."""
    try:
        with open(_checked_path()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember_checked(image_id: str, version: str) -> None:
    # A warm run in a new process must start no container, not even this check.
    path = _checked_path()
    data = {**_checked_images(), image_id: version}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def engine_error(exc: BaseException) -> str:
    """The engine's own words for a failure: kind, HTTP status and explanation if any."""
    explanation = getattr(exc, "explanation", None)
    code = getattr(exc, "status_code", None)
    if explanation and code:
        return f"{type(exc).__name__} {code}: {explanation}"
    return f"{type(exc).__name__}: {explanation or exc}"


class Images:
    """Builds and remembers the image (by ID) of each environment, for one engine."""

    def __init__(self, client: Any, default: str | None = None) -> None:
        self.client = client
        self.default = default  # a compute target's image, for steps that name none
        self._ids: dict[Any, str] = {}
        self._checked: set[str] = set()

    def image_for(self, env: Any) -> str:
        """Return the image ID for ``env`` (None: the plain base), building it if needed."""
        if env in self._ids:
            return self._ids[env]
        base = (env.base_image if env is not None and env.base_image else None) or (
            self.default or default_base())
        base_id = self._base_id(base)
        needs_build = env is not None and bool(env.pip or env.apt or env.env)
        image_id = self._build(env, base, base_id) if needs_build else base_id
        self._check_python(image_id, base, env)
        self._ids[env] = image_id
        return image_id

    def _base_id(self, base: str) -> str:
        import docker.errors

        try:
            return self.client.images.get(base).id
        except docker.errors.ImageNotFound:
            raise BackendError(
                f"Base image '{base}' is not in the Docker engine. Build ductwork's with "
                "`bash scripts/services.sh up docker`, or set Environment(base_image=...) to an "
                "image that has Python "
                f"{sys.version_info.major}.{sys.version_info.minor} and ductwork's dependencies."
            ) from None
        except docker.errors.APIError as exc:  # e.g. 400: not a valid image reference
            raise BackendError(
                f"The Docker engine cannot look up base image '{base}': {engine_error(exc)}. Set "
                "Environment(base_image=...) (or the compute target's image) to a valid "
                "reference such as 'name:tag' (lowercase) or an image ID."
            ) from None

    def _build(self, env: Any, base: str, base_id: str) -> str:
        import docker.errors

        bundle = ca_bundle()
        tag = image_tag(env, base_id, bundle is not None)
        try:
            return self.client.images.get(tag).id
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise BackendError(
                f"The Docker engine cannot look up image {tag} for {env!r}: {engine_error(exc)}. "
                "Check the engine with `docker info`."
            ) from None
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            text = dockerfile(env, base_id, bundle is not None).encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
            if bundle is not None:
                tar.add(bundle, arcname="ca-bundle.crt")
        context.seek(0)
        try:
            image, _ = self.client.images.build(
                fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                network_mode="host", labels={"ductwork.environment": tag},
            )
        except docker.errors.BuildError as exc:
            log = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-3000:]
            hint = (" apt packages need a base image with apt-get; ductwork's own minimal base "
                    "has none: set Environment(base_image=...) to a Debian/Ubuntu image with "
                    "this Python." if env.apt else "")
            raise BackendError(
                f"Building the image for {env!r} failed: {exc}.{hint}\nLast build output:\n{log}"
            ) from None
        except docker.errors.APIError as exc:  # refused before any build step ran
            raise BackendError(
                f"The Docker engine refused to build the image for {env!r}: {engine_error(exc)}. "
                f"Check its base image '{base}' and the engine's disk (`docker system df`)."
            ) from None
        return image.id

    def _check_python(self, image_id: str, base: str, env: Any) -> None:
        if image_id in self._checked:
            return
        want = f"{sys.version_info.major}.{sys.version_info.minor}"
        checked = _checked_images()
        if checked.get(image_id) == want:  # an image ID names its content: checked for good
            self._checked.add(image_id)
            return
        try:
            out = self.client.containers.run(
                image_id, ["python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                remove=True, network_mode="none",
            )
        except Exception as exc:
            raise BackendError(
                f"Image {base} (for {env!r}) cannot run `python`: {exc}. Use a base image with "
                f"Python {want} on PATH."
            ) from None
        got = out.decode().strip()
        if got != want:
            raise BackendError(
                f"Image {base} (for {env!r}) has Python {got}, but this client runs Python "
                f"{want}: step code travels by cloudpickle, which needs the same minor version "
                f"on both sides. Use a base image with Python {want}."
            )
        self._checked.add(image_id)
        _remember_checked(image_id, got)
