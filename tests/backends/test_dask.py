"""The dask backend beyond the conformance suite: the graph goes to Dask, faults, checks.

Against the real loopback cluster `scripts/services.sh up dask` starts (`dask
scheduler` + `dask worker --nworkers 2`) and against the LocalCluster ductwork
starts itself. Nothing here is mocked.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.engine.backend import BackendError

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(dask_cluster):
    """Run options for the loopback CLI cluster, whose workers share this filesystem."""
    return {"backend": "dask", "address": dask_cluster, "shared_filesystem": True}


@step
def scheduler_keys(tag: str) -> list[str]:
    """Ask the Dask scheduler, from inside a task, which tasks it holds."""
    from distributed import get_client

    time.sleep(0.5)  # the driver submits every task at once; give it the time to
    return get_client().run_on_scheduler(
        lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])


@step
def after(keys: list[str]) -> int:
    return len(keys)


def test_downstream_tasks_wait_in_dask_not_in_ductwork(cli, tmp_path):
    @pipeline
    def p():
        return after(scheduler_keys("x"))

    run = p.run(**cli, store=str(tmp_path / "s"))
    assert run.outputs > 0
    keys = run.steps["scheduler_keys"].output
    # While the first step ran, its dependent was already a task on Dask's scheduler.
    assert any(k.startswith(f"ductwork-after-{run.id}") for k in keys), keys


@step
def slow_pid(x: int, marker: str) -> int:
    Path(marker, f"{x}-{os.getpid()}-{uuid.uuid4().hex[:6]}").touch()
    time.sleep(3)
    return x * 10


def test_a_killed_worker_reruns_its_step_and_the_run_completes(cli, tmp_path):
    marker = tmp_path / "started"
    marker.mkdir()

    @pipeline
    def p():
        return slow_pid(4, str(marker))

    def kill_first_runner() -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            started = list(marker.iterdir())
            if started:
                os.kill(int(started[0].name.split("-")[1]), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_runner)
    killer.start()
    run = p.run(**cli, store=str(tmp_path / "s"))
    killer.join()
    assert run.outputs == 40
    pids = {name.split("-")[1] for name in os.listdir(marker)}
    assert len(os.listdir(marker)) == 2 and len(pids) == 2  # ran again, in another process
    # The result is stored: a rerun is a hit.
    assert p.run(**cli, store=str(tmp_path / "s")).steps["slow_pid"].cached


def test_unreachable_scheduler_fails_before_any_step(tmp_path, monkeypatch):
    marker = tmp_path / "ran"

    @step
    def touch() -> int:
        marker.touch()
        return 1

    @pipeline
    def p():
        return touch()

    (tmp_path / "ductwork.toml").write_text(
        '[compute.gone]\nbackend = "dask"\naddress = "tcp://127.0.0.1:9"\n'
        "shared_filesystem = true\nconnect_timeout = 1\n")
    monkeypatch.chdir(tmp_path)

    @step(compute="gone")
    def remote() -> int:
        return 2

    @pipeline
    def q():
        return touch(), remote()

    with pytest.raises(BackendError, match=r"Cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"):
        q.run(store=str(tmp_path / "s"))
    assert not marker.exists()
    with pytest.raises(BackendError, match="Cannot reach the Dask scheduler"):
        p.run(backend="dask", address="tcp://127.0.0.1:9", shared_filesystem=True,
              store=str(tmp_path / "s"))
    assert not marker.exists()


def test_stores_workers_cannot_reach_are_refused_before_the_run(dask_cluster, tmp_path):
    @pipeline
    def p():
        return after(["a"])

    with pytest.raises(BackendError, match="is a local path.*shared_filesystem=True"):
        p.run(backend="dask", address=dask_cluster, store=str(tmp_path / "s"))
    with pytest.raises(BackendError, match="lives in this process's memory"):
        p.run(backend="dask", address=dask_cluster, store="memory://nope")
    assert dw.runs(store=str(tmp_path / "s")) == []


def test_a_step_over_its_timeout_fails_and_its_worker_is_restarted(tmp_path):
    @step(timeout=1)
    def stuck() -> int:
        time.sleep(60)
        return 1

    @pipeline
    def p():
        return stuck(), after(["ok"])

    from ductwork.backends.dask import _local_cluster

    client = _local_cluster(None, in_process=False)
    before = set(client.run(os.getpid).values())
    t0 = time.time()
    with pytest.raises(dw.PipelineFailed, match="timed out after 1 s") as err:
        p.run(backend="dask", store=str(tmp_path / "s"))
    assert time.time() - t0 < 40
    assert err.value.run.steps["after"].status == "succeeded"
    # The stuck thread went with its worker (restarted in the background): one worker
    # process is new.
    deadline = time.time() + 30
    after_pids = before
    while time.time() < deadline and (len(after_pids) < len(before) or after_pids == before):
        time.sleep(0.2)
        after_pids = set(client.run(os.getpid).values())
    assert len(before - after_pids) == 1 and len(after_pids) == len(before)
    @pipeline
    def again():
        return after.map([["a"], ["b", "c"]])

    assert again.run(backend="dask", store=str(tmp_path / "s2")).outputs == [1, 2]


def test_a_step_sent_to_dask_by_compute_in_an_inline_run(tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text('[compute.cluster]\nbackend = "dask"\n')
    monkeypatch.chdir(tmp_path)

    @step(compute="cluster")
    def where() -> int:
        return os.getpid()

    @step
    def here(pid: int) -> bool:
        return pid != os.getpid()

    @pipeline
    def p():
        return here(where())

    assert p.run(store=str(tmp_path / "s")).outputs is True


@step
def held_by_cluster(b: bytes) -> int:
    """How many bytes the cluster holds for the upstream task's result (it is still held)."""
    from distributed import get_client

    return get_client().run_on_scheduler(lambda dask_scheduler: sum(
        ts.nbytes for key, ts in dask_scheduler.tasks.items()
        if str(key).startswith("ductwork-big-")))


def test_large_values_go_through_the_store_not_the_scheduler(cli, tmp_path):
    @step
    def big() -> bytes:
        return os.urandom(16 << 20)

    @pipeline
    def p():
        return held_by_cluster(big())

    run = p.run(**cli, store=str(tmp_path / "s"))
    assert 0 < run.outputs < 64 << 10  # a record of digests, not 16 MiB
    assert run.steps["big"].output_refs["output"].size == 16 << 20


@step
def produce(n: int) -> list[int]:
    return list(range(n)) * 50


@step
def consume(xs: list[int]) -> int:
    return sum(xs)


def test_a_corrupt_input_is_recomputed_on_the_cluster(cli, tmp_path):
    from ductwork.runtime.store.artifacts import ArtifactStore

    @pipeline
    def p():
        return consume(produce(40))

    store = str(tmp_path / "s")
    first = p.run(**cli, store=store)
    digest = first.steps["produce"].output_refs["output"].digest
    path = Path(ArtifactStore(store).object_path(digest))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.chmod(0o644)
    path.write_bytes(bytes(data))

    with pytest.warns(RuntimeWarning, match=f"{digest[:12]}.*failed verification.*produce"):
        second = p.run(**cli, store=store, regenerate=["consume"])
    assert second.outputs == first.outputs == sum(range(40)) * 50
    assert not second.steps["produce"].cached
    assert "failed verification" in second.steps["produce"].note
    assert second.steps["produce"].output_refs["output"].digest == digest
    assert p.run(**cli, store=store).steps["consume"].cached


@step
def lines_in(files) -> int:
    return sum(len(Path(f).read_text().splitlines()) for f in files)


@step
def seven() -> int:
    return 7


def test_dataset_content_is_in_the_key_on_the_cluster(cli, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("1\n2\n")
    (data / "b.txt").write_text("3\n")

    @pipeline
    def p():
        return lines_in(dw.Dataset.files(str(data / "*.txt"))), seven()

    store = str(tmp_path / "s")
    assert p.run(**cli, store=store).outputs == (3, 7)
    again = p.run(**cli, store=store)
    assert again.steps["lines_in"].cached and again.steps["seven"].cached
    (data / "b.txt").write_text("3\n4\n")
    changed = p.run(**cli, store=store)
    assert changed.outputs == (4, 7)
    assert not changed.steps["lines_in"].cached and changed.steps["seven"].cached


def test_ctrl_c_cancels_the_run_and_stops_its_running_step(tmp_path):
    """On the local cluster (this process's own) a running step's worker is restarted."""
    import _thread

    from ductwork.backends.dask import _local_cluster

    marker = tmp_path / "pid"
    after_marker = tmp_path / "downstream-ran"

    @step(cache=False)
    def sleepy() -> int:
        marker.write_text(str(os.getpid()))
        time.sleep(30)
        return 1

    @step
    def downstream(x: int) -> int:
        after_marker.touch()
        return x

    @pipeline
    def p():
        return downstream(sleepy())

    def interrupt_when_running() -> None:
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.05)
        _thread.interrupt_main()

    client = _local_cluster(None, in_process=False)
    threading.Thread(target=interrupt_when_running, daemon=True).start()
    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        p.run(backend="dask", store=str(tmp_path / "s"))
    assert time.time() - t0 < 25
    [run] = dw.runs(store=str(tmp_path / "s"))
    assert run.status == "cancelled"
    pid = int(marker.read_text())
    deadline = time.time() + 30
    while pid in client.run(os.getpid).values() and time.time() < deadline:
        time.sleep(0.2)
    assert pid not in client.run(os.getpid).values()  # its worker was restarted
    time.sleep(0.5)
    assert not after_marker.exists()


def test_a_step_sent_to_dask_by_compute_keeps_its_timeout(tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text('[compute.cluster]\nbackend = "dask"\n')
    monkeypatch.chdir(tmp_path)

    @step(compute="cluster", timeout=1)
    def stuck_there() -> int:
        time.sleep(30)
        return 1

    @pipeline
    def p():
        return stuck_there()

    t0 = time.time()
    with pytest.raises(dw.PipelineFailed, match="timed out after 1 s"):
        p.run(store=str(tmp_path / "s"))
    assert time.time() - t0 < 20


def test_a_scheduler_lost_mid_run_fails_the_run_saying_so(tmp_path):
    """A scheduler of this test's own (the shared one must live on), killed mid-step."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                  "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                                  "--dashboard-address", "127.0.0.1:0"], **quiet)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                               "--nthreads", "1", "--no-dashboard", "--no-nanny"], **quiet)
    marker = tmp_path / "started"

    @step
    def long_one() -> int:
        marker.touch()
        time.sleep(20)
        return 1

    @pipeline
    def p():
        return long_one()

    def kill_scheduler_when_running() -> None:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.05)
        scheduler.kill()

    try:
        threading.Thread(target=kill_scheduler_when_running, daemon=True).start()
        t0 = time.time()
        with pytest.raises(dw.PipelineFailed, match=f"connection to the Dask scheduler at "
                                                    f"{address} was lost"):
            p.run(backend="dask", address=address, shared_filesystem=True,
                  store=str(tmp_path / "s"))
        assert time.time() - t0 < 18  # not after the step would have ended
    finally:
        scheduler.kill()
        worker.kill()


def test_a_cached_rerun_is_served_by_the_driver_without_a_task(cli, tmp_path):
    from distributed import Client, get_task_stream

    @step
    def upto(n: int) -> list[int]:
        return list(range(n))

    @step
    def double(x: int) -> int:
        return 2 * x

    @pipeline
    def p(n: int = 3):
        return consume(double.map(upto(n))), seven()

    store = str(tmp_path / "s")
    first = p.run(**cli, store=store)
    with Client(cli["address"], set_as_default=False) as client:
        with get_task_stream(client=client) as stream:
            again = p.run(**cli, store=store)
        ran = [t["key"] for t in stream.data if str(t["key"]).startswith("ductwork-")]
        assert ran == []
        assert again.outputs == first.outputs
        assert all(s.cached for s in again.steps.values())
        # A changed parameter reaches the cluster only from the first step it changes.
        with get_task_stream(client=client) as stream:
            changed = p.run(**cli, store=store, n=4)
        ran = {str(t["key"]).split("-")[1] for t in stream.data
               if str(t["key"]).startswith("ductwork-")}
    assert changed.outputs == (12, 7)
    assert changed.steps["double[0]"].cached and not changed.steps["double[3]"].cached
    assert changed.steps["seven"].cached
    # upto changed, so the map and what follows went to the cluster; seven did not.
    assert {"upto", "consume"} <= ran and not any(k.startswith("seven") for k in ran)


def test_a_compute_target_names_a_cluster_and_declares_the_path_shared(dask_cluster, tmp_path,
                                                                       monkeypatch):
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.cluster]\nbackend = "dask"\naddress = "{dask_cluster}"\n'
        "shared_filesystem = true\n")
    monkeypatch.chdir(tmp_path)

    @step(compute="cluster")
    def remote_pid() -> int:
        return os.getpid()

    @step
    def local_pid(other: int) -> tuple[int, int]:
        return other, os.getpid()

    @pipeline
    def p():
        return local_pid(remote_pid())

    remote, local = p.run(store=str(tmp_path / "s")).outputs
    assert remote != local == os.getpid()
    # Without the declaration the same target is refused before anything runs.
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.cluster]\nbackend = "dask"\naddress = "{dask_cluster}"\n')
    with pytest.raises(BackendError, match="shared_filesystem"):
        p.run(store=str(tmp_path / "s2"))


@step
def parity(n: int) -> int:
    return n % 2


@step
def judged(bit: int) -> str:
    print(f"judging {bit}")
    dw.context().log_metric("bit", bit)
    return "odd" if bit else "even"


def test_cached_steps_name_their_producer_whether_the_driver_or_a_task_served_them(cli,
                                                                                   tmp_path):
    @pipeline
    def p(n: int = 1):
        return judged(parity(n))

    store = str(tmp_path / "s")
    first = p.run(**cli, store=store)
    made = first.steps["judged"]
    assert not made.cached and made.metrics == {"bit": 1} and "judging 1" in made.logs
    # Served by the driver before the graph goes to Dask.
    again = p.run(**cli, store=store)
    assert {s.cached_from for s in again.steps.values()} == {first.id}
    assert again.steps["judged"].metrics == {"bit": 1}
    assert again.steps["judged"].logs == made.logs
    # parity(3) runs on the cluster and makes the same bytes as parity(1): judged's key is
    # known only there, so its task finds the hit; the driver names the producer.
    cutoff = p.run(**cli, store=store, n=3)
    assert not cutoff.steps["parity"].cached and cutoff.steps["parity"].cached_from is None
    hit = cutoff.steps["judged"]
    assert hit.cached and hit.cached_from == first.id and hit.metrics == {"bit": 1}
    assert dw.get_run(cutoff.id, store=store).steps["judged"].cached_from == first.id
