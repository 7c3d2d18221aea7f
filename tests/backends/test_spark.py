"""Spark steps: ``backend = "spark"`` with ``master = "local[2]"`` or a Spark Connect server.

Against the real Connect server `scripts/services.sh up spark` starts on loopback
(in this process), and a ``local[2]`` master in a child interpreter (pyspark runs
one mode per process). Absent, they skip -- and so fail under CI=true. Nothing
is mocked.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.engine.backend import BackendError

SPARK_PORT = int(os.environ.get("DUCTWORK_SPARK_PORT", "15002"))


def _need_pyspark() -> None:
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed: pip install -e '.[spark]'")


@pytest.fixture(scope="module")
def connect_url():
    """The Connect server `scripts/services.sh up spark` starts on loopback."""
    _need_pyspark()
    try:
        with socket.create_connection(("127.0.0.1", SPARK_PORT), timeout=2):
            pass
    except OSError:
        pytest.skip(f"no Spark Connect server on 127.0.0.1:{SPARK_PORT}: "
                    "bash scripts/services.sh up spark")
    return f"sc://127.0.0.1:{SPARK_PORT}"


LOCAL = 'master = "local[2]"\nconf = { "spark.sql.shuffle.partitions" = "2" }'


@pytest.fixture(params=["connect", "local"])
def target(request, tmp_path, monkeypatch):
    """A compute target named 'spark': the Connect server here, or local[2] in a child."""
    _need_pyspark()
    if request.param == "local":
        if shutil.which("java") is None:
            pytest.skip("no java on PATH: apt-get install -y openjdk-17-jre-headless")
        (tmp_path / "ductwork.toml").write_text(f'[compute.spark]\nbackend = "spark"\n{LOCAL}\n')
    else:
        url = request.getfixturevalue("connect_url")
        (tmp_path / "ductwork.toml").write_text(
            f'[compute.spark]\nbackend = "spark"\nremote = "{url}"\n')
    monkeypatch.chdir(tmp_path)
    return request.param


def _in_child(test: str, tmp_path) -> None:
    """Run ``test`` of this module (its connect variant's body) in a fresh interpreter on
    local[2]: pyspark cannot run a local master where a Connect session was made."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "DUCTWORK_SPARK_LOCAL_CHILD": "1"}
    env.pop("CI", None)  # the child runs one test; its parent reports it
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)  # set here by pyspark's Connect session
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{__file__}::{test}[local]", "--basetemp", str(tmp_path / "child")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def _local_here(target: str) -> bool:
    """Whether the local[2] variant runs in this process (in the child) or in a child."""
    return target == "connect" or os.environ.get("DUCTWORK_SPARK_LOCAL_CHILD") == "1"


@step
def numbers(n: int) -> list[int]:
    return list(range(n))


@step(compute="spark")
def to_frame(xs: list[int], pad: int = 0):
    spark = dw.context().spark
    return spark.createDataFrame([(x, x % 3) for x in xs], "x long, g long").repartition(2, "g")


@step(compute="spark")
def totals(frame):
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    assert isinstance(frame, DataFrame), type(frame)  # a Spark step gets a Spark DataFrame
    return frame.groupBy("g").agg(F.sum("x").alias("total")).orderBy("g").coalesce(1)


@step
def as_dict(frame) -> dict:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame), type(frame)  # a plain step gets pandas
    return {str(int(g)): int(t) for g, t in zip(frame["g"], frame["total"], strict=True)}


@pipeline
def mixed(n: int = 10, pad: int = 0):
    return as_dict(totals(to_frame(numbers(n), pad)))


pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_spark_and_plain_steps_mix_cache_and_cut_off_early(target, tmp_path):
    if not _local_here(target):
        return _in_child("test_spark_and_plain_steps_mix_cache_and_cut_off_early", tmp_path)
    store = str(tmp_path / "store")
    first = mixed.run(store=store)
    assert first.outputs == {"0": 18, "1": 12, "2": 15}
    again = mixed.run(store=store)
    assert all(s.cached for s in again.steps.values())
    # `pad` changes to_frame's key, not its rows: it reruns, writes the same bytes, and
    # what follows stays cached.
    cut = mixed.run(store=store, pad=1)
    assert not cut.steps["to_frame"].cached
    assert cut.steps["to_frame"].output_refs["output"] == \
        first.steps["to_frame"].output_refs["output"]
    assert cut.steps["totals"].cached and cut.steps["as_dict"].cached
    assert first.steps["to_frame"].output_refs["output"].serializer == "spark"
    _written_by_spark(store, first.steps["to_frame"].output_refs["output"], 2)


def _written_by_spark(store: str, ref, parts: int) -> None:
    """The artifact is Spark's own part files in one container, and no scratch is left."""
    import tarfile

    from ductwork.runtime.store.artifacts import ArtifactStore

    with tarfile.open(ArtifactStore(store).object_path(ref.digest)) as tar:
        assert tar.getnames() == [f"part-{i:05d}.parquet" for i in range(parts)]
    assert os.listdir(os.path.join(store, "spark-tmp")) == []


@step(compute="spark")
def bad_column():
    return dw.context().spark.sql("select nope from range(3)")


@step(compute="spark")
def fails_when_collected():
    return dw.context().spark.sql("select assert_true(id < 0, 'ids must be negative') "
                                  "from range(3)")


@pipeline
def failing():
    return bad_column(), fails_when_collected()


def test_a_failing_spark_job_fails_its_step_with_sparks_message(target, tmp_path):
    if not _local_here(target):
        return _in_child("test_a_failing_spark_job_fails_its_step_with_sparks_message", tmp_path)
    with pytest.raises(dw.PipelineFailed) as info:
        failing.run(store=str(tmp_path / "store"))
    steps = info.value.run.steps
    assert "UNRESOLVED_COLUMN" in steps["bad_column"].error
    error = steps["fails_when_collected"].error
    assert "the Spark job computing its output 'output' failed" in error
    assert "ids must be negative" in error


def test_a_target_needs_master_or_remote(tmp_path, monkeypatch):
    _need_pyspark()
    (tmp_path / "ductwork.toml").write_text('[compute.spark]\nbackend = "spark"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BackendError, match='needs master = "local.2." .* or remote = '):
        mixed.run()


def test_remote_takes_secrets_from_the_environment_only(tmp_path, monkeypatch):
    _need_pyspark()
    monkeypatch.delenv("DW_TEST_TOKEN", raising=False)
    (tmp_path / "ductwork.toml").write_text(
        '[compute.spark]\nbackend = "spark"\nremote = "sc://h:443/;token=${DW_TEST_TOKEN}"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BackendError, match=r"\$\{DW_TEST_TOKEN\}, which is not set"):
        mixed.run()


@step
def plain_asks_for_spark() -> int:
    dw.context().spark  # noqa: B018
    return 1


def test_a_plain_step_asking_for_spark_is_told_how(tmp_path):
    @pipeline
    def p():
        return plain_asks_for_spark()

    with pytest.raises(dw.PipelineFailed, match="does not run on Spark: give it compute="):
        p.run(store=str(tmp_path / "s"))


def test_import_ductwork_does_not_import_pyspark():
    code = ("import sys, ductwork, ductwork.backends.spark_frames, ductwork.backends.spark\n"
            "assert 'pyspark' not in sys.modules, 'pyspark imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              p for p in sys.path if p)})
    assert done.returncode == 0, done.stderr


@step(compute="spark", timeout=1)
def endless() -> int:
    spark = dw.context().spark
    # Long enough to overrun, short enough to end by itself: a running Spark task stops
    # at its own pace once interrupted (a tight generated loop may not look until it ends).
    return spark.range(0, 10**9, 1, 2).selectExpr("sum(id % 7) as s").collect()[0]["s"]


def test_a_spark_step_over_its_timeout_is_interrupted_and_fails(connect_url, tmp_path,
                                                                monkeypatch):
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.spark]\nbackend = "spark"\nremote = "{connect_url}"\n')
    monkeypatch.chdir(tmp_path)

    @pipeline
    def p():
        return endless()

    t0 = time.time()
    with pytest.raises(dw.PipelineFailed, match="overran its timeout of 1 s"):
        p.run(store=str(tmp_path / "s"))
    assert time.time() - t0 < 90


@step(compute="spark")
def csv_total(files) -> int:
    frame = dw.context().spark.read.csv(sorted(str(f) for f in files), header=True,
                                        inferSchema=True)
    return int(frame.groupBy().sum("v").collect()[0][0])


def test_a_spark_step_reads_a_dataset(connect_url, tmp_path, monkeypatch):
    """A files dataset reaches a Spark step as local paths, which Spark reads on loopback."""
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.spark]\nbackend = "spark"\nremote = "{connect_url}"\n')
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    for i in range(2):
        (tmp_path / "src" / f"t{i}.csv").write_text(f"k,v\na,{i + 1}\nb,{10 * (i + 1)}\n")
    dw.datastore().upload_dir(tmp_path / "src", target_path="tables")  # the run store's own

    @pipeline
    def p():
        return csv_total(dw.Dataset.files("tables/*.csv"))

    assert p.run().outputs == 33


def test_a_local_master_is_refused_beside_spark_connect(connect_url, tmp_path, monkeypatch):
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.spark]\nbackend = "spark"\nremote = "{connect_url}"\n'
        f'[compute.local]\nbackend = "spark"\n{LOCAL}\n')
    monkeypatch.chdir(tmp_path)
    from ductwork.backends.spark import session

    session(None, connect_url, {})  # this process talks Spark Connect from now on
    on_local = step(compute="local")(numbers.fn)

    @pipeline
    def p():
        return on_local(3)

    with pytest.raises(dw.PipelineFailed, match="cannot run a local master beside it"):
        p.run(store=str(tmp_path / "s"))


@step(compute="spark")
def sums_by_key(table) -> dict:
    from pyspark.sql import DataFrame

    assert isinstance(table, DataFrame), type(table)  # read by Spark, not pandas
    return {r["k"]: int(r["total"]) for r in table.groupBy("k").agg({"v": "sum"})
            .withColumnRenamed("sum(v)", "total").collect()}


@step
def plain_sums(table) -> dict:
    import pandas as pd

    assert isinstance(table, pd.DataFrame), type(table)  # a plain step still gets pandas
    return {k: int(v) for k, v in table.groupby("k")["v"].sum().items()}


def test_a_tabular_dataset_reaches_a_spark_step_as_a_spark_dataframe(target, tmp_path):
    if not _local_here(target):
        return _in_child("test_a_tabular_dataset_reaches_a_spark_step_as_a_spark_dataframe",
                         tmp_path)
    import pandas as pd

    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        (src / f"t{i}.csv").write_text(f"k,v\na,{i + 1}\nb,{10 * (i + 1)}\n")
    (src / "semi.txt").write_text("k;v\na;5\na;6\n")
    dw.datastore().upload_dir(src, target_path="tables")  # the run store's own datastore
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"k": ["x", "y", "x"], "v": [1, 2, 3]}).to_parquet(pq)

    @pipeline
    def p():
        return (sums_by_key(dw.Dataset.tabular("tables/*.csv")),
                sums_by_key(dw.Dataset.tabular(str(pq))),
                sums_by_key(dw.Dataset.tabular("tables/semi.txt", format="csv", sep=";")),
                plain_sums(dw.Dataset.tabular("tables/*.csv")))

    assert p.run().outputs == ({"a": 3, "b": 30}, {"x": 4, "y": 2}, {"a": 11},
                               {"a": 3, "b": 30})

    @pipeline
    def typed():
        return sums_by_key(dw.Dataset.tabular("tables/*.csv", dtype={"v": "int32"}))

    with pytest.raises(dw.PipelineFailed, match="read option 'dtype' has no Spark equivalent"):
        typed.run()


@step
def plain_frame():
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{SPARK_PORT}").getOrCreate()
    return spark.createDataFrame([(1, "a"), (2, "b")], "x long, s string")


@step
def plain_fails():
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(f"sc://127.0.0.1:{SPARK_PORT}").getOrCreate()
    return spark.sql("select assert_true(id < 0, 'ids must be negative') from range(3)")


@step
def count_rows(frame) -> int:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame), type(frame)
    return len(frame)


@pytest.mark.parametrize("backend", ["process", "inline"])
def test_a_spark_dataframe_returned_by_a_plain_step_is_stored_as_a_spark_output(
        connect_url, tmp_path, backend):
    """A plain step holding a DataFrame holds its session: the frame is stored as a Spark
    step's is (never pickled), and a failing job fails the step with Spark's message. In
    worker processes that never made a Spark backend: the serializer is found on its own.
    Inline, the step after it gets the stored rows (pandas) too, not the live frame."""
    @pipeline
    def p():
        return count_rows(plain_frame())

    run = p.run(store=str(tmp_path / "s"), backend=backend)
    assert run.outputs == 2
    assert run.steps["plain_frame"].output_refs["output"].serializer == "spark"
    if backend == "inline":
        return

    @pipeline
    def bad():
        return plain_fails()

    with pytest.raises(dw.PipelineFailed) as info:
        bad.run(store=str(tmp_path / "s"), backend="process")
    error = info.value.run.steps["plain_fails"].error
    assert "the Spark job computing it failed" in error and "ids must be negative" in error


def test_a_fresh_process_reads_a_stored_spark_output(connect_url, tmp_path):
    """`dw.get_run(...).outputs` and `ductwork show` where no Spark backend was ever made
    (nor spark_frames imported): the serializer is found by the name the artifact records."""
    @pipeline
    def p():
        return plain_frame()

    run = p.run(store=str(tmp_path / "s"))
    code = ("import sys, ductwork as dw\n"
            "out = dw.get_run(sys.argv[1], store=sys.argv[2]).outputs\n"
            "print(type(out).__module__, sorted(out['s']))\n"
            "assert 'pyspark' not in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code, run.id, str(tmp_path / "s")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("pandas") and "['a', 'b']" in done.stdout
    shown = subprocess.run([sys.executable, "-m", "ductwork", "show", run.id, "--store",
                            str(tmp_path / "s")], env=env, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0 and "no serializer" not in shown.stdout + shown.stderr, \
        shown.stdout + shown.stderr


def test_a_damaged_spark_output_is_never_read_by_spark(connect_url, tmp_path, monkeypatch):
    """A container whose bytes changed is found out before Spark scans it: the step that
    reads it reports the corruption and its producer recomputes it."""
    (tmp_path / "ductwork.toml").write_text(
        f'[compute.spark]\nbackend = "spark"\nremote = "{connect_url}"\n')
    monkeypatch.chdir(tmp_path)
    from ductwork.runtime.store.artifacts import ArtifactStore

    store = str(tmp_path / "store")
    first = mixed.run(store=store)
    ref = first.steps["to_frame"].output_refs["output"]
    path = ArtifactStore(store).object_path(ref.digest)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 3] ^= 0xFF
    os.chmod(path, 0o644)
    open(path, "wb").write(bytes(data))
    again = mixed.run(store=store, regenerate=["totals"])
    assert again.outputs == first.outputs
    assert not again.steps["to_frame"].cached  # recomputed, not read damaged
    assert open(path, "rb").read() != bytes(data)
    assert os.listdir(os.path.join(store, "spark-tmp")) == []
