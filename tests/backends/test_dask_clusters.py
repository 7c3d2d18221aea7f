"""Compute targets that make their own Dask cluster: `cluster = "module:Class"`.

Against real ``dask.distributed.LocalCluster``s these tests make (never the shared
loopback cluster): scaling is observed through the cluster's own state, with
bounded waits. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ductwork import pipeline, step
from ductwork.backends.dask_clusters import clusters, shutdown_clusters
from ductwork.runtime.engine.backend import BackendError

LOCAL = "dask.distributed:LocalCluster"


@pytest.fixture(autouse=True)
def _closed_after():
    yield
    shutdown_clusters()


def _target(tmp_path, monkeypatch, body: str) -> None:
    (tmp_path / "ductwork.toml").write_text(f'[compute.c]\nbackend = "dask"\n{body}\n')
    monkeypatch.chdir(tmp_path)


def _one_step(marker):
    @step(compute="c")
    def touch() -> int:
        marker.write_text("ran")
        return 1

    @pipeline
    def p():
        return touch()

    return p


@pytest.mark.parametrize(("cluster", "says"), [
    ("dask_kubernetes.operator:KubeCluster", "pip install dask-kubernetes"),
    ("dask_cloudprovider.azure:AzureVMCluster", "pip install 'dask-cloudprovider[azure]'"),
    ("no_such_pkg.sub:Cluster", "pip install the package that provides 'no_such_pkg'"),
    ("dask.distributed:LocalCluter", "has no class 'LocalCluter' (it has: "),
    ("LocalCluster", "is not 'module:Class'"),
])
def test_a_cluster_that_cannot_be_made_fails_before_any_step(cluster, says, tmp_path,
                                                              monkeypatch):
    _target(tmp_path, monkeypatch, f'cluster = "{cluster}"\nmax_workers = 2')
    marker = tmp_path / "ran"
    with pytest.raises(BackendError) as info:
        _one_step(marker).run()
    assert says in str(info.value) and cluster in str(info.value)
    assert not marker.exists()


def test_min_workers_needs_max_workers_and_a_cluster(tmp_path, monkeypatch):
    _target(tmp_path, monkeypatch, f'cluster = "{LOCAL}"\nmin_workers = 1')
    with pytest.raises(BackendError, match="needs max_workers >= 1"):
        _one_step(tmp_path / "ran").run()
    _target(tmp_path, monkeypatch, "min_workers = 1\nmax_workers = 2")
    with pytest.raises(BackendError, match='add cluster = "dask.distributed:LocalCluster"'):
        _one_step(tmp_path / "ran").run()


def test_cluster_options_a_class_does_not_take_are_refused(tmp_path, monkeypatch):
    (tmp_path / "my_clusters.py").write_text(
        "class Fixed:\n    def __init__(self, n_workers=1, memory='1G'):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _target(tmp_path, monkeypatch, 'cluster = "my_clusters:Fixed"\n'
            'cluster_options = { n_worker = 2 }')
    with pytest.raises(BackendError, match="n_worker not taken by Fixed; it takes: n_workers, "
                                           "memory"):
        _one_step(tmp_path / "ran").run()


def test_a_remote_cluster_needs_a_store_its_workers_reach(tmp_path, monkeypatch):
    _target(tmp_path, monkeypatch, 'cluster = "distributed:SSHCluster"')
    with pytest.raises(BackendError, match="local path.*distributed:SSHCluster.*"
                                           "shared_filesystem"):
        _one_step(tmp_path / "ran").run()


@pytest.mark.slow
def test_a_fixed_cluster_is_made_on_first_use_and_kept(tmp_path, monkeypatch):
    _target(tmp_path, monkeypatch, f'cluster = "{LOCAL}"\nmax_workers = 2\n'
            "cluster_options = { processes = false, threads_per_worker = 1 }")
    assert clusters() == {}
    p = _one_step(tmp_path / "ran")
    assert p.run(store=f"memory://{tmp_path.name}").outputs == 1
    (made,) = clusters().values()
    assert len(made.scheduler_info["workers"]) == 2
    p.run(store=f"memory://{tmp_path.name}-2")
    assert list(clusters().values()) == [made]  # the next run reuses it


@step
def busy(x: int) -> int:
    time.sleep(1.5)
    return x


def _workers(cluster) -> int:
    return len(cluster.scheduler_info["workers"])


@pytest.mark.slow
def test_an_adaptive_cluster_grows_under_a_wide_map_and_shrinks_when_idle(tmp_path,
                                                                          monkeypatch):
    _target(tmp_path, monkeypatch, f'cluster = "{LOCAL}"\nmin_workers = 0\nmax_workers = 3\n'
            "cluster_options = { processes = false, threads_per_worker = 1 }")
    busy_there = step(compute="c")(busy.fn)

    @pipeline
    def wide():
        return busy_there.map(list(range(12)))

    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for cluster in clusters().values():
                seen.append(_workers(cluster))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = wide.run(store=str(tmp_path / "s"))
    finally:
        stop.set()
        watcher.join(5)
    assert run.outputs == list(range(12))
    (cluster,) = clusters().values()
    assert max(seen) >= 2, seen  # grew beyond one worker while the map ran
    assert max(seen) <= 3
    deadline = time.time() + 60  # idle: Dask retires workers down to the minimum
    while _workers(cluster) > 0 and time.time() < deadline:
        time.sleep(0.5)
    assert _workers(cluster) == 0


SCRIPT = """
import json, os, sys
from ductwork import pipeline, step

@step(compute="c")
def pid() -> int:
    return os.getpid()

@pipeline
def p():
    return pid()

if __name__ == "__main__":
    from ductwork.backends.dask_clusters import clusters
    run = p.run(store=sys.argv[1])
    (cluster,) = clusters().values()
    print(json.dumps({"worker": run.outputs, "scheduler": cluster.scheduler_address}))
"""


@pytest.mark.slow
def test_the_cluster_is_closed_when_the_process_exits(tmp_path):
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.c]\nbackend = "dask"\ncluster = "{LOCAL}"\nmax_workers = 1\n'
        "cluster_options = { threads_per_worker = 1 }\n")
    (tmp_path / "main.py").write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "main.py", str(tmp_path / "s")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout.strip().splitlines()[-1])
    assert made["worker"] != done.args  # a worker process of its own
    deadline = time.time() + 60  # bounded; generous, as these machines are shared
    while os.path.exists(f"/proc/{made['worker']}") and time.time() < deadline:
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{made['worker']}"), done.stderr[-2000:]
