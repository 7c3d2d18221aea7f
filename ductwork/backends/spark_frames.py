"""Spark DataFrames in the artifact store: Parquet with deterministic bytes, two ways.

- **Written by Spark** (``spark_parts``): where Spark shares the store's filesystem (a
  local master, a Connect server on loopback) and the store is local, a Spark step's
  DataFrame is written by Spark's own Parquet writer, partition by partition where the
  rows are, and the part files are stored as one deterministic tar. Nothing crosses into
  Python but file bytes.
- **Collected as Arrow** (``SparkFrame``): elsewhere (a remote Spark, a remote store) and
  for a DataFrame a *plain* step returns (the store cannot tell where its Spark runs), the
  rows are collected with ``df.toArrow()`` and written by pyarrow as one Parquet file with
  fixed options. The file names the pyarrow version that wrote it.

Either way nothing in the bytes depends on when or where they were written (no times, no
file names, no job ids), so the same rows in the same partitions give the same digest --
caching and early cutoff work as for any other value. (The two ways give different
digests for the same rows: a target moved from one to the other recomputes once.)

Both are the serializer ``spark``; its loader tells them apart by their first bytes (a
Parquet file starts ``PAR1``). Plain steps get pandas, through pyarrow; Spark steps get a
Spark DataFrame (``read_frame``), read by Spark from verified files when it can.

Importing this module imports neither pyspark nor pyarrow. The serializer is found by
its name on first need (``serializers._OPTIONAL``): any process loads these artifacts,
and a Spark DataFrame any step returns is stored with it.
"""

from __future__ import annotations

import io
import shutil

import attrs

from ductwork.backends import spark_parts
from ductwork.backends.spark_parts import Scratch, SparkParts
from ductwork.runtime.store.serializers import register_serializer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

#: Options every write uses: the bytes depend on the table alone (and pyarrow's version).
_PARQUET = {"compression": "snappy", "write_statistics": True, "row_group_size": 1 << 20,
            "version": "2.6"}
_PAR1 = b"PAR1"


@attrs.frozen
class SparkFrame:
    """A Spark DataFrame's rows, collected as a ``pyarrow.Table``, on its way to the store."""

    table: Any


class SparkJobFailed(Exception):
    """The Spark job computing a DataFrame failed while it was collected to be stored."""


class _SparkParquet:
    """Spark frames as Parquet; loads as a pandas DataFrame (for plain steps)."""

    name = "spark"
    #: A Spark DataFrame loads as pandas (or, on Spark, as a new DataFrame): a step after
    #: an inline step that returned one gets the stored rows, not the live query plan.
    round_trips = False

    def accepts(self, value: Any) -> bool:
        """Every Spark DataFrame (asked by the built-in dispatch)."""
        return True

    def dump(self, value: Any, f: BinaryIO) -> None:
        import pyarrow.parquet as pq

        if isinstance(value, SparkParts):
            spark_parts.dump(value, f)
            return
        if not isinstance(value, SparkFrame):  # a Spark DataFrame a plain step returned
            try:
                value = collect(value)
            except Exception as exc:
                raise SparkJobFailed(f"the Spark job computing it failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
        # Dictionaries for text only: trying them on numbers (and falling back) cost 4x the
        # write of a numeric table, for no smaller file.
        pq.write_table(value.table, f, use_dictionary=_text_columns(value.table), **_PARQUET)

    def load(self, f: BinaryIO) -> Any:
        return _read_table(f).to_pandas()


class _ArrowTable:
    """Marker type of ``ARROW``: nothing is dumped with it."""


class _SparkArrow:
    """The same files loaded as a ``pyarrow.Table`` (a Spark step out of the file's reach)."""

    name = "spark.arrow"

    def dump(self, value: Any, f: BinaryIO) -> None:
        raise TypeError("spark.arrow only loads artifacts written by 'spark'")

    def load(self, f: BinaryIO) -> Any:
        return _read_table(f)


def _text_columns(table: Any) -> list[str]:
    import pyarrow as pa

    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
            pa.types.is_large_binary, pa.types.is_dictionary)
    return [field.name for field in table.schema if any(is_(field.type) for is_ in text)]


def _read_table(f: BinaryIO) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Parquet needs random access (the footer comes last): read it whole.
    data = f.read()
    if data[:4] == _PAR1:
        return pq.read_table(io.BytesIO(data))
    tables = [pq.read_table(io.BytesIO(part)) for part in spark_parts.members(data)]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


SPARK, ARROW = _SparkParquet(), _SparkArrow()


def register() -> None:
    """Register the serializers for this module's types (``serializers`` calls it on first
    need, and a Spark backend when made): from then on this process stores them, and its
    workers do too (registrations travel with jobs)."""
    register_serializer(SparkFrame, SPARK)
    register_serializer(SparkParts, SPARK)
    register_serializer(_ArrowTable, ARROW)


def is_spark_frame(value: Any) -> bool:
    """Whether ``value`` is a Spark DataFrame (classic or Connect), without importing pyspark."""
    import sys

    if "pyspark" not in sys.modules:
        return False
    from pyspark.sql import DataFrame

    return isinstance(value, DataFrame)


def collect(frame: Any) -> SparkFrame:
    """Run the Spark job computing ``frame`` and collect its rows as Arrow."""
    return SparkFrame(frame.toArrow())


def read_frame(spark: Any, store: Any, ref: Any, direct: bool, scratch: Scratch) -> Any:
    """The Spark DataFrame stored under ``ref``, verified: read by Spark from files when
    ``direct`` (Spark sees this filesystem) and the store is local, else sent as Arrow.
    A container is extracted into a ``scratch`` folder, kept until the step ends."""
    if not (direct and store.is_local):
        return spark.createDataFrame(store.get(ref.replace(serializer=ARROW.name)))
    from ductwork.runtime.store.hashio import FileHasher

    path = store.object_path(ref.digest)
    with open(path, "rb") as f:
        single = f.read(4) == _PAR1
    hasher = FileHasher(path)
    if single:
        hasher.run()  # here: the file must be whole before Spark reads it
        _verified(store, ref, path, hasher)
        return spark.read.parquet(path)
    folder = scratch.new()
    hasher.start()  # hashes the object on its own handle while it is extracted
    try:
        with open(path, "rb") as f:
            spark_parts.extract(f, folder)
    except Exception:
        hasher.join()
        shutil.rmtree(folder, ignore_errors=True)
        _verified(store, ref, path, hasher)  # damaged bytes are said as such
        raise
    hasher.join()
    try:
        _verified(store, ref, path, hasher)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return spark.read.parquet(folder)


def _verified(store: Any, ref: Any, path: str, hasher: Any) -> None:
    from ductwork.runtime.store.artifacts import CorruptArtifact

    if hasher.error is not None:
        raise hasher.error
    if hasher.digest != ref.digest:
        store.delete_object(ref.digest)
        raise CorruptArtifact(
            f"artifact {ref.digest} at {path} is corrupt (its bytes hash to "
            f"{hasher.digest}). It has been deleted; rerun to recompute it.", ref.digest)
