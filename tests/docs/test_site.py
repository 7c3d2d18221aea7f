"""The documentation site builds with ``mkdocs build --strict``: a broken link, a
missing page, a bad anchor or an API reference that names nothing fails the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site``, offline, as CI runs it."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # Not -q: mkdocs counts warnings for --strict through its log, and -q silences them.
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=config.parent)


def test_site_builds_strict(tmp_path):
    out = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert out.returncode == 0, out.stdout + out.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("Mark a function as a pipeline step", 'id="ductwork.testing.ductwork_store"',
                 'id="ductwork.client.Client"', 'id="ductwork.dsl.pipeline.Pipeline.run"'):
        assert name in api, f"the API reference lacks {name!r}"
    assert (tmp_path / "site" / "cli-reference" / "index.html").exists()


@pytest.mark.slow
def test_broken_link_and_missing_reference_fail_the_build(tmp_path):
    """The strict build is a check, not a formality: both mistakes are reported."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "testing.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md) and "
                    "[a missing name][ductwork.no_such_name].\n")
    out = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    said = out.stdout + out.stderr
    assert out.returncode != 0, said
    assert "no-such-page.md" in said, said
    assert "ductwork.no_such_name" in said, said
