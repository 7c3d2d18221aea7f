"""Spark DataFrames in the artifact store: one Parquet file, with deterministic bytes.

A DataFrame a Spark step returns is collected as Arrow (``df.toArrow()``: the
rows of each partition in partition order, through Spark Connect or py4j) and
written by pyarrow as one Parquet file with fixed options. Nothing in that file
depends on when or where it was written (no timestamps, no file names, no job
ids: pyarrow writes none, unlike Spark's own writer), so the same rows in the
same partitions give the same bytes, hence the same digest -- caching and early
cutoff work as for any other value. The file names the pyarrow version that
wrote it, so a pyarrow upgrade changes digests once.

Importing this module imports neither pyspark nor pyarrow. The serializer is
registered (``register``, when a Spark backend is made) for ``SparkFrame``, the
collected table a Spark step's output becomes before it is stored, so loading
these artifacts needs pyarrow, not pyspark: plain steps get pandas, in this
process and in its workers. Spark steps read them back as Spark
DataFrames (``read_frame``): straight from the store's file when Spark sees this
machine's filesystem, else through Arrow.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

import attrs

from ductwork.runtime.store.serializers import register_serializer

#: Options every write uses: the bytes depend on the table alone (and pyarrow's version).
_PARQUET = {"compression": "snappy", "write_statistics": True, "row_group_size": 1 << 20,
            "version": "2.6"}


@attrs.frozen
class SparkFrame:
    """A Spark DataFrame's rows, collected as a ``pyarrow.Table``, on its way to the store."""

    table: Any


class _SparkParquet:
    """A ``SparkFrame`` as one Parquet file; loads as a pandas DataFrame (for plain steps)."""

    name = "spark"

    def accepts(self, value: Any) -> bool:
        """Every Spark DataFrame (asked by the built-in dispatch)."""
        return True

    def dump(self, value: Any, f: BinaryIO) -> None:
        import pyarrow.parquet as pq

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
    import pyarrow.parquet as pq

    # Parquet needs random access (the footer comes last): read it whole.
    return pq.read_table(io.BytesIO(f.read()))


SPARK, ARROW = _SparkParquet(), _SparkArrow()


def register() -> None:
    """Register the serializers (when a Spark backend is made): from then on this process
    stores ``SparkFrame``s and loads their artifacts, and its workers do too (registrations
    travel with jobs). Not at import: a process that only imports this module ships nothing."""
    register_serializer(SparkFrame, SPARK)
    register_serializer(_ArrowTable, ARROW)


def is_spark_frame(value: Any) -> bool:
    """Whether ``value`` is a Spark DataFrame (classic or Connect), without importing pyspark."""
    import sys

    if "pyspark" not in sys.modules:
        return False
    from pyspark.sql import DataFrame

    return isinstance(value, DataFrame)


class SparkJobFailed(Exception):
    """The Spark job computing a DataFrame failed while it was collected to be stored."""


def collect(frame: Any) -> SparkFrame:
    """Run the Spark job computing ``frame`` and collect its rows as Arrow."""
    return SparkFrame(frame.toArrow())


def read_frame(spark: Any, store: Any, ref: Any, direct: bool) -> Any:
    """The Spark DataFrame stored under ``ref``, verified: read by Spark from the store's file
    when ``direct`` (Spark sees this filesystem), else sent to Spark as Arrow."""
    if direct and store.is_local:
        from ductwork.runtime.store.artifacts import CorruptArtifact
        from ductwork.runtime.store.hashio import FileHasher

        path = store.object_path(ref.digest)
        hasher = FileHasher(path)
        hasher.run()  # here: the file must be whole before Spark reads it
        if hasher.error is not None:
            raise hasher.error
        if hasher.digest != ref.digest:
            store.delete_object(ref.digest)
            raise CorruptArtifact(
                f"artifact {ref.digest} at {path} is corrupt (its bytes hash to "
                f"{hasher.digest}). It has been deleted; rerun to recompute it.", ref.digest)
        return spark.read.parquet(path)
    return spark.createDataFrame(store.get(attrs.evolve(ref, serializer=ARROW.name)))
