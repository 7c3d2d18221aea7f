"""``ductwork publish`` and ``ductwork pipelines``, run as a user would: real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=120)


def test_publish_list_show_default_disable_enable(tmp_path, flow_file):
    store = str(tmp_path / "store")
    path = flow_file(10)
    out = _cli("publish", f"{path}:flow", "--name", "train", "--description", "nightly",
               "--store", store)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "published train version 1 (default)"
    assert _cli("publish", f"{path}:flow", "--name", "train", "--store", store
                ).stdout.strip() == "published train version 1 (default)"
    path.write_text(path.read_text().replace("FACTOR = 10", "FACTOR = 20"))
    out = _cli("publish", f"{path}:flow", "--name", "train", "--store", store, "--json")
    assert json.loads(out.stdout)["version"] == 2 and json.loads(out.stdout)["default"] is False

    listed = _cli("pipelines", "--store", store, "--json")
    assert json.loads(listed.stdout) == [{"name": "train", "description": "nightly",
                                          "default_version": 1, "versions": [1, 2],
                                          "enabled": True}]
    table = _cli("pipelines", "list", "--store", store).stdout
    assert "train" in table and "1,2" in table and "nightly" in table

    assert _cli("pipelines", "set-default", "train", "2", "--store", store).returncode == 0
    assert _cli("pipelines", "disable", "train", "--store", store).returncode == 0
    shown = json.loads(_cli("pipelines", "show", "train", "--json", "--store", store).stdout)
    assert (shown["default_version"], shown["enabled"]) == (2, False)
    assert [r["version"] for r in shown["records"]] == [1, 2]
    assert shown["records"][0]["parameters"]["properties"]["x"] == {
        "default": 2, "title": "X", "type": "integer"}
    text = _cli("pipelines", "--store", store, "show", "train").stdout
    assert "* version 2" in text and "x " in text and '"type": "integer"' in text

    assert _cli("pipelines", "enable", "train", "--store", store).returncode == 0
    assert json.loads(_cli("pipelines", "--json", "--store", store).stdout)[0]["enabled"]


def test_errors_name_what_exists(tmp_path, flow_file):
    store = str(tmp_path / "store")
    assert _cli("pipelines", "--store", store, "--json").stdout.strip() == "[]"
    _cli("publish", f"{flow_file()}:flow", "--name", "train", "--store", store)
    out = _cli("pipelines", "show", "nightly", "--store", store)
    assert out.returncode == 1 and "published pipelines: train" in out.stderr
    out = _cli("pipelines", "set-default", "train", "4", "--store", store)
    assert out.returncode == 1
    assert "ductwork: Pipeline 'train' has no version 4; its versions: 1." in out.stderr
    out = _cli("publish", f"{flow_file()}:nothere", "--store", store)
    assert out.returncode == 2 and "no pipeline named 'nothere'; it defines: flow" in out.stderr
    out = _cli("publish", f"{flow_file()}:flow", "--name", "a/b", "--store", store)
    assert out.returncode == 1 and "1-128 letters" in out.stderr


def test_the_default_store_is_the_one_runs_use(tmp_path, flow_file, monkeypatch):
    path = flow_file()
    monkeypatch.delenv("DUCTWORK_STORE")  # so ./.ductwork, as for `ductwork run`
    out = subprocess.run([sys.executable, "-m", "ductwork", "publish", f"{path}:flow"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.stdout.strip() == "published flow version 1 (default)", out.stderr
    assert (tmp_path / ".ductwork" / "published" / "flow" / "1.json").is_file()
    listed = subprocess.run([sys.executable, "-m", "ductwork", "pipelines", "--json"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert json.loads(listed.stdout)[0]["name"] == "flow"
