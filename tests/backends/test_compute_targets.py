"""Compute targets: every backend refuses a setting it does not know, before any step runs.

``[tool.ductwork.compute.NAME]`` tables are checked against the keyword
parameters of the backend class they name; nothing here needs the backend's
service (Docker, a cluster), as the check comes before the backend is made.
"""

from __future__ import annotations

import pytest

from ductwork import pipeline, step
from ductwork.runtime.config import ConfigError


def _target(tmp_path, monkeypatch, body: str) -> None:
    (tmp_path / "ductwork.toml").write_text(f"[compute.target]\n{body}\n")
    monkeypatch.chdir(tmp_path)


def _pipeline(marker):
    @step(compute="target")
    def touch() -> int:
        marker.write_text("ran")
        return 1

    @pipeline
    def p():
        return touch()

    return p


@pytest.mark.parametrize(("backend", "takes"), [
    ("inline", "none"),
    ("process", "max_workers"),
    ("docker", "image"),
    ("dask", "min_workers"),
    ("spark", "master, remote, conf"),
])
def test_an_unknown_setting_is_refused_naming_it_and_the_known_ones(backend, takes, tmp_path,
                                                                     monkeypatch):
    _target(tmp_path, monkeypatch, f'backend = "{backend}"\nmin_worker = 2')
    marker = tmp_path / "ran"
    p = _pipeline(marker)
    with pytest.raises(ConfigError) as info:
        p.run()
    message = str(info.value)
    assert "'min_worker'" in message and "target" in message and backend in message
    assert takes in message, message
    assert not marker.exists()  # refused before any step ran
    with pytest.raises(ConfigError, match="min_worker"):
        p.plan()


def test_the_store_is_not_a_setting(tmp_path, monkeypatch):
    _target(tmp_path, monkeypatch, 'backend = "process"\nstore = "memory://x"')
    with pytest.raises(ConfigError, match="'store'"):
        _pipeline(tmp_path / "ran").run()


def test_known_settings_still_pass(tmp_path, monkeypatch):
    _target(tmp_path, monkeypatch, 'backend = "process"\nmax_workers = 1')
    assert _pipeline(tmp_path / "ran").run().outputs == 1
