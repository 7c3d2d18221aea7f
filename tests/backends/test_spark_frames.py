"""The Parquet a Spark output is stored as: deterministic bytes, loadable without pyspark.

No Spark here: a ``SparkFrame`` is the Arrow table a Spark step's DataFrame is
collected into, so its storage is tested on tables made by pyarrow.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ductwork.runtime.store.artifacts import ArtifactStore

pa = pytest.importorskip("pyarrow")

from ductwork.backends.spark_frames import SparkFrame, register  # noqa: E402
from ductwork.runtime.store.serializers import restore_registrations  # noqa: E402


@pytest.fixture(autouse=True)
def _registered():
    """Registered for each test, and undone after: workers of later tests never see it."""
    with restore_registrations():
        register()
        yield

DIGEST_OF = """
import sys
import pyarrow as pa
from ductwork.backends.spark_frames import SparkFrame, register
from ductwork.runtime.store.artifacts import ArtifactStore
register()
table = pa.table({"x": list(range(1000)), "s": [str(i % 7) for i in range(1000)]})
print(ArtifactStore(sys.argv[1]).put(SparkFrame(table)).digest)
"""


def _table(n: int = 1000):
    return pa.table({"x": list(range(n)), "s": [str(i % 7) for i in range(n)]})


def test_the_same_rows_give_the_same_digest_here_and_in_a_fresh_interpreter(tmp_path):
    store = ArtifactStore(str(tmp_path / "a"))
    ref = store.put(SparkFrame(_table()))
    assert ref.serializer == "spark"
    assert ArtifactStore(str(tmp_path / "b")).put(SparkFrame(_table())).digest == ref.digest
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "PYTHONHASHSEED": "123"}
    fresh = subprocess.run([sys.executable, "-c", DIGEST_OF, str(tmp_path / "c")], env=env,
                           capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() == ref.digest
    assert store.put(SparkFrame(_table(999))).digest != ref.digest


def test_a_plain_step_loads_pandas_and_a_spark_step_arrow(tmp_path):
    import pandas as pd

    store = ArtifactStore(str(tmp_path / "s"))
    ref = store.put(SparkFrame(_table(10)))
    frame = store.get(ref)
    assert isinstance(frame, pd.DataFrame) and list(frame["x"]) == list(range(10))
    table = store.get(ref.replace(serializer="spark.arrow"))
    assert table.equals(_table(10))


def test_importing_the_module_registers_nothing():
    code = ("import ductwork.backends.spark, ductwork.backends.spark_frames\n"
            "from ductwork.runtime.store.serializers import user_registrations\n"
            "assert user_registrations() == [], user_registrations()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


LOAD_FRESH = """
import sys
from ductwork.runtime.store.artifacts import ArtifactRef, ArtifactStore
import ductwork
assert "pyarrow" not in sys.modules and "pyspark" not in sys.modules, "import ductwork is heavy"
ref = ArtifactRef(sys.argv[2], "spark", int(sys.argv[3]))
frame = ArtifactStore(sys.argv[1]).get(ref)
print(type(frame).__module__, list(frame["x"])[:3], len(frame))
assert "pyspark" not in sys.modules, "loading a stored frame imported pyspark"
"""


def test_a_fresh_process_loads_a_stored_frame_without_registering_anything(tmp_path):
    """`dw.get_run(...).outputs` or `ductwork show` in a process that never made a Spark
    backend: the serializer is found by its name, imported on first need."""
    store = ArtifactStore(str(tmp_path / "s"))
    ref = store.put(SparkFrame(_table(10)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-c", LOAD_FRESH, str(tmp_path / "s"), ref.digest,
                           str(ref.size)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0].startswith("pandas") and done.stdout.rstrip().endswith("10")


def _spark_folder(folder, tables, job_id: str):
    """A folder laid out as Spark's writer leaves it: part files named by a random job id,
    its _SUCCESS marker and checksum files."""
    import pyarrow.parquet as pq

    folder.mkdir()
    for i, table in enumerate(tables):
        pq.write_table(table, folder / f"part-{i:05d}-{job_id}-c000.snappy.parquet")
        (folder / f".part-{i:05d}-{job_id}-c000.snappy.parquet.crc").write_bytes(job_id.encode())
    (folder / "_SUCCESS").write_bytes(b"")
    return str(folder)


def test_spark_written_parts_are_stored_as_one_value_named_by_their_rows(tmp_path):
    """Two writes of the same partitions (other job ids, other markers) give one digest; the
    container holds the parts in partition order and loads as their rows, in order."""
    from ductwork.backends.spark_parts import SparkParts

    parts = [_table(10), _table(5)]
    store = ArtifactStore(str(tmp_path / "s"))
    one = store.put(SparkParts(_spark_folder(tmp_path / "a", parts, "1b2c-aaaa")))
    two = store.put(SparkParts(_spark_folder(tmp_path / "b", parts, "9f8e-bbbb")))
    assert one.serializer == "spark" and one.digest == two.digest
    swapped = store.put(SparkParts(_spark_folder(tmp_path / "c", parts[::-1], "1b2c-aaaa")))
    assert swapped.digest != one.digest  # other partitions: other bytes
    frame = store.get(one)
    assert list(frame["x"]) == list(range(10)) + list(range(5))
    table = store.get(one.replace(serializer="spark.arrow"))
    assert table.num_rows == 15
    import tarfile

    with tarfile.open(store.object_path(one.digest)) as tar:
        assert [(m.name, m.mtime, m.uid, m.mode) for m in tar] == [
            ("part-00000.parquet", 0, 0, 0o644), ("part-00001.parquet", 0, 0, 0o644)]
