"""Tabular datasets read by Spark: a Spark step's ``Dataset.tabular`` input is a Spark DataFrame.

Before a Spark step runs, each tabular dataset among its arguments is swapped for a
``SparkTable``: a lazy input like the dataset itself, materialized where the step runs.
It lists (and checks) the dataset's files as the dataset does -- its files as a
``Dataset.files`` would give them: local files in place, a remote datastore's downloaded
into the dataset cache, a snapshot version's objects verified -- and has Spark read those
paths itself (``spark.read.csv``/``parquet``/``json``, by extension or ``format=``), so no
row crosses Python. Spark out of this filesystem's reach (a remote Connect server) gets the
table pandas reads, as a plain step would. Pandas read options that Spark has an equivalent
for are translated; any other is an error naming it.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ductwork.dsl.lazy import materialize
from ductwork.runtime.data.dataset import Dataset
from ductwork.runtime.data.errors import DatasetError
from ductwork.runtime.data.reading import read_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
            ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_COMPRESSED = (".gz", ".bz2")  # Spark's text readers decompress these by extension
# pandas' csv option -> Spark's (values copied as text).
_CSV = {"sep": "sep", "delimiter": "sep", "encoding": "encoding", "quotechar": "quote",
        "escapechar": "escape", "comment": "comment", "na_values": "nullValue"}


class SparkTable:
    """A tabular dataset that a Spark step receives as a Spark DataFrame."""

    def __init__(self, dataset: Dataset, spark: Any, direct: bool) -> None:
        self.dataset, self.spark, self.direct = dataset, spark, direct

    def __ductwork_materialize__(self, context: Any) -> Any:
        files = copy.copy(self.dataset)  # keeps the content its key was made of (checked)
        files.kind, files.mode = "files", "download"
        paths = [Path(p) for p in files.__ductwork_materialize__(context)]
        where = self.dataset.describe()
        if not self.direct:
            return self.spark.createDataFrame(read_table(paths, self.dataset.read_options,
                                                       where))
        return read(self.spark, paths, self.dataset.read_options, where)


def for_spark(args: Any, spark: Any, direct: bool) -> Any:
    """``args`` with each tabular dataset in them swapped for a ``SparkTable``."""
    def swap(value: Any) -> Any:
        if isinstance(value, Dataset) and value.kind == "tabular":
            return SparkTable(value, spark, direct)
        return value

    return materialize(args, swap)


def read(spark: Any, paths: list[Path], read_options: dict[str, Any], where: str) -> Any:
    """Spark's DataFrame of the files at ``paths`` (one format), read as pandas would."""
    options = dict(read_options)
    forced = options.pop("format", None)
    formats = {f".{forced}" if forced else _suffix(p) for p in paths}
    unknown = sorted(f for f in formats if f not in _FORMATS)
    if unknown:
        raise DatasetError(
            f"Dataset.tabular {where}: Spark cannot tell the format of files ending in "
            f"{', '.join(unknown)}; pass format= one of {', '.join(sorted({*_FORMATS.values()}))}.")
    kinds = {_FORMATS[f] for f in formats}
    if len(kinds) > 1:
        raise DatasetError(
            f"Dataset.tabular {where} mixes formats ({', '.join(sorted(kinds))}), which one "
            "Spark read cannot: give each format its own dataset.")
    kind = kinds.pop()
    columns = options.pop("columns", None) or options.pop("usecols", None)
    files = [str(p) for p in paths]
    if kind in ("csv", "tsv"):
        frame = spark.read.csv(files, **_csv_options(kind, options, where))
    elif kind == "parquet":
        _no_more(options, where, kind)
        frame = spark.read.parquet(*files)
    else:
        lines = options.pop("lines", kind == "jsonl")
        _no_more(options, where, kind)
        frame = spark.read.json(files, multiLine=not lines)
    return frame.select(*columns) if columns else frame


def _csv_options(kind: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    spark = {"header": True, "inferSchema": True}  # pandas' defaults: a header, typed columns
    if kind == "tsv":
        spark["sep"] = "\t"
    if "header" in options:
        header = options.pop("header")
        if header not in (None, 0, "infer"):
            raise DatasetError(f"Dataset.tabular {where}: header={header!r} has no Spark "
                               "equivalent here; Spark reads header=0 (the default) or None.")
        spark["header"] = header is not None  # 0 (or "infer"): the first row; None: none
    for name in [n for n in options if n in _CSV]:
        value = options.pop(name)
        spark[_CSV[name]] = value if isinstance(value, str) else ",".join(map(str, value))
    _no_more(options, where, kind)
    return spark


def _no_more(options: dict[str, Any], where: str, kind: str) -> None:
    if options:
        raise DatasetError(
            f"Dataset.tabular {where}: read option {', '.join(map(repr, sorted(options)))} "
            f"has no Spark equivalent for {kind} here (a Spark step gets the table as Spark "
            "reads it). Drop it and transform the DataFrame in the step, or pass "
            "Dataset.files(...) and read the paths with dw.context().spark.read.")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in _COMPRESSED:
        name = name.removesuffix(ext)
    return Path(name).suffix
