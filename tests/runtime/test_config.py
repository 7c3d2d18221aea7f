"""Compute targets from pyproject.toml or ductwork.toml; steps mixing backends in one run."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.config import ConfigError, compute_target, ductwork_home, find_config


def test_pyproject_tool_table_and_ductwork_toml(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''
        [project]
        name = "x"

        [tool.ductwork.compute.pool]
        backend = "process"
        max_workers = 2
    '''))
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert compute_target("pool") == {"backend": "process", "max_workers": 2}
    (sub / "ductwork.toml").write_text('[compute.gpu]\nbackend = "docker"\ngpus = 1\n')
    path, table = find_config()
    assert path == sub / "ductwork.toml" and "gpu" in table["compute"]
    assert compute_target("gpu") == {"backend": "docker", "gpus": 1}


def test_unknown_target_and_missing_backend_are_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="Compute target 'gpu' is not defined .*no ductwork.toml"):
        compute_target("gpu")
    (tmp_path / "ductwork.toml").write_text("[compute.gpu]\ngpus = 1\n")
    with pytest.raises(ConfigError, match="needs backend ="):
        compute_target("gpu")


@step(compute="pool")
def where(x: int) -> int:
    return os.getpid()


@step
def here(x: int) -> int:
    return os.getpid()


def test_a_run_mixes_backends_step_by_step(tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text('[compute.pool]\nbackend = "process"\n')
    monkeypatch.chdir(tmp_path)

    @pipeline
    def p():
        return here(1), where(2)

    run = p.run(store=str(tmp_path / "s"))
    inline_pid, pool_pid = run.outputs
    assert inline_pid == os.getpid() and pool_pid != os.getpid()


def test_an_undefined_target_fails_before_any_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = []

    @step
    def first() -> int:
        ran.append(1)
        return 1

    @pipeline
    def p():
        return where(first())

    with pytest.raises(dw.DuctworkError, match="Compute target 'pool' is not defined"):
        p.run(store=str(tmp_path / "s"))
    assert ran == []


def test_ductwork_home_is_the_environment_s_or_the_user_s(tmp_path, monkeypatch):
    monkeypatch.setenv("DUCTWORK_HOME", str(tmp_path / "h"))
    assert ductwork_home() == tmp_path / "h"
    monkeypatch.delenv("DUCTWORK_HOME")
    assert ductwork_home() == Path.home() / ".ductwork"
