"""``ductwork datasets``: registered datasets and their versions, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ductwork as dw


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ductwork", *args], capture_output=True,
                          text=True, timeout=120, env=os.environ.copy())


def _register(tmp_path, store: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("1\n2\n")
    (src / "t.csv").write_text("x\n1\n")
    lake = dw.Datastore(tmp_path / "lake")
    lake.upload_dir(src)
    dw.Dataset.files("a.txt", datastore=lake).register("logs", "nightly", store=store)
    (src / "a.txt").write_text("3\n")
    lake.upload_files([src / "a.txt"], overwrite=True)
    dw.Dataset.files("a.txt", datastore=lake).register("logs", store=store, snapshot=True)
    dw.Dataset.tabular("t.csv", datastore=lake).register("table", store=store)


def test_datasets_lists_names_and_versions(tmp_path):
    store = str(tmp_path / "other-store")
    empty = _cli("datasets", "--store", store)
    assert empty.returncode == 0 and empty.stdout == ""
    assert "no registered datasets" in empty.stderr
    _register(tmp_path, store)

    listed = _cli("datasets", "--store", store)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "LATEST", "VERSIONS"]
    assert lines[1].split()[:3] == ["logs", "2", "2,1"] and "snapshot" in lines[1]
    assert lines[2].split()[:3] == ["table", "1", "1"]

    one = _cli("datasets", "logs", "--store", store)
    assert one.returncode == 0, one.stderr
    rows = one.stdout.splitlines()
    assert rows[0].split()[:2] == ["VERSION", "CREATED"]
    assert rows[1].split()[0] == "2" and "snapshot" in rows[1]
    assert rows[2].split()[0] == "1" and "nightly" in rows[2] and "snapshot" not in rows[2]


def test_datasets_json_for_scripts(tmp_path):
    store = str(tmp_path / "s")
    assert json.loads(_cli("datasets", "--json", "--store", store).stdout) == []
    _register(tmp_path, store)
    listed = json.loads(_cli("datasets", "--json", "--store", store).stdout)
    assert [d["name"] for d in listed] == ["logs", "table"]
    assert [(v["version"], v["snapshot"]) for v in listed[0]["versions"]] == [
        (2, True), (1, False)]
    versions = json.loads(_cli("datasets", "logs", "--json", "--store", store).stdout)
    assert versions == listed[0]["versions"]
    assert versions[1]["description"] == "nightly" and versions[1]["files"] == 1


def test_an_unknown_dataset_is_a_clear_error(tmp_path):
    store = str(tmp_path / "s")
    _register(tmp_path, store)
    got = _cli("datasets", "nope", "--store", store)
    assert got.returncode == 1 and got.stdout == ""
    assert "No dataset is registered as 'nope'" in got.stderr
    assert "logs, table" in got.stderr and "Traceback" not in got.stderr
