"""Run and step-run rows of the run store: columns, and conversion to and from records.

Statuses are written as the plain strings ``Status`` members equal
(``"succeeded"``), so files written before the enum read back unchanged; on
reading, a known string becomes its ``Status`` and an unknown one (written by a
newer ductwork) is kept as it is. A run still ``running`` whose driver (host:pid)
is gone from this machine reads back as ``died``.
"""

from __future__ import annotations

import binascii
import json
import os

from ductwork.runtime import caches
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.status import Status
from ductwork.runtime.store.artifacts import ArtifactRef
from ductwork.runtime.store.refs import (
    GatherRef,
    decode_structure,
    encode_structure,
    ref_from_json,
    ref_to_json,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

RUN_COLUMNS = (
    "id", "pipeline", "status", "backend", "store", "params", "graph", "result", "started",
    "finished", "git_commit", "git_dirty", "ductwork_version", "python_version", "driver",
    "module", "source_file",
)
STEP_COLUMNS = (
    "run_id", "id", "step", "status", "cached", "attempts", "started", "finished", "map_index",
    "cache_key", "components", "outputs", "error", "logs", "metrics", "note", "cached_from",
)

def host_name() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it."""
    if hasattr(os, "uname"):  # the same uname(2) answer, without importing socket (~3 ms)
        return os.uname().nodename
    import socket

    return socket.gethostname()


#: Which process drives a run: a run still "running" whose driver is gone has died.
DRIVER = f"{host_name()}:{os.getpid()}"


def _json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        # json.dumps without options reuses one C encoder; default= builds a new encoder
        # per call, 3x the cost, and a warm map writes three of these per element.
        return json.dumps(value)
    except TypeError:  # a value JSON has no spelling for (a metric's numpy scalar): its repr
        return json.dumps(value, default=repr)


def str_dict_json(value: dict[str, str] | None) -> str | None:
    """``json.dumps`` of a dict of strs (a step's key components), the same text, from
    remembered ``"name": "value"`` pieces: all but a call's inputs recur from row to row
    (a step's code, options, environment), and a map writes thousands of rows."""
    if value is None:
        return None
    memo, pieces = _PIECES, []
    for item in value.items():
        piece = memo.get(item)
        if piece is None:
            name, text = item
            if type(name) is not str or type(text) is not str:
                return _json(value)
            if len(memo) >= 4096:
                memo.clear()  # a bound, not an LRU: a piece is re-made in a microsecond
            piece = memo[item] = f"{_quote(name)}: {_quote(text)}"
        pieces.append(piece)
    return "{" + ", ".join(pieces) + "}"


_PIECES: dict[tuple[str, str], str] = {}
_quote = json.encoder.encode_basestring_ascii  # what json.dumps spells a str with


def outputs_json(refs: dict[str, Any]) -> str:
    """``json.dumps`` of a step's outputs as ``ref_to_json`` gives them, the same text; plain
    refs and gathers of them (a map's) are spelled out without the intermediate dicts."""
    pieces = []
    for name, ref in refs.items():
        text = _ref_text(ref)
        if text is None or type(name) is not str:
            return json.dumps({name: ref_to_json(ref) for name, ref in refs.items()})
        pieces.append(f"{_quote(name)}: {text}")
    return "{" + ", ".join(pieces) + "}"


def _ref_text(ref: Any) -> str | None:
    """``json.dumps(ref_to_json(ref))`` for a ref without classes (or a gather of them);
    None for any other."""
    kind = type(ref)
    if kind is GatherRef:
        parts = [_ref_text(part) for part in ref.parts]
        if None in parts or type(ref.digest) is not str:
            return None
        return f'{{"gather": {_quote(ref.digest)}, "parts": [{", ".join(parts)}]}}'  # type: ignore[arg-type]
    if kind is not ArtifactRef or ref.classes or type(ref.size) is not int:
        return None
    inline = "" if ref.inline is None else (
        f', "inline": "{binascii.b2a_base64(ref.inline, newline=False).decode("ascii")}"')
    return (f'{{"digest": {_quote(ref.digest)}, "serializer": {_quote(ref.serializer)}, '
            f'"size": {ref.size}{inline}}}')


def insert(table: str, columns: tuple[str, ...]) -> str:
    """The INSERT OR REPLACE statement of ``columns`` into ``table``."""
    marks = ", ".join("?" for _ in columns)
    return f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def run_row(run: Run, driver: str, params: str | None = None, graph: str | None = None
            ) -> tuple[Any, ...]:
    """A run as a row of ``runs`` (``params``, ``graph``: their JSON, when already made)."""
    return (
        run.id, run.pipeline, str(run.status), run.backend, run.store,
        _json(run.params) if params is None else params,
        _json(run.graph) if graph is None else graph,
        _json(encode_structure(run.result)), run.started, run.finished,
        run.git_commit, None if run.git_dirty is None else int(run.git_dirty),
        run.ductwork_version, run.python_version, driver, run.module, run.source_file,
    )


def step_row(run_id: str, s: StepRun) -> tuple[Any, ...]:
    """A step run as a row of ``steps``."""
    components, outputs = _texts(s.key, s.components, s.output_refs)
    return (
        run_id, s.id, s.step, str(s.status), int(s.cached), s.attempts, s.started, s.finished,
        s.map_index, s.key, components, outputs, s.error,
        s.logs, "{}" if s.metrics == {} else _json(s.metrics), s.note, s.cached_from,
    )


# cache key -> (components, their JSON, outputs, their JSON) as last written: a rerun in
# a notebook or a server writes the same key's row again, with equal components and
# (nearly always) equal outputs -- compared, C-level and mostly by identity, before the
# text is reused. Copies are kept: a caller's dict may change; refs are immutable.
_TEXTS = caches.memo("records.row_texts", maxsize=4096)


def _texts(key: str | None, components: dict[str, str] | None, refs: dict[str, Any]
           ) -> tuple[str | None, str]:
    """``str_dict_json(components)`` and ``outputs_json(refs)``, reused for a key's rerun."""
    if key is not None:
        known = _TEXTS.get(key)
        if known is not None and known[0] == components and known[2] == refs:
            return known[1], known[3]
    texts = str_dict_json(components), outputs_json(refs)
    if key is not None:
        _TEXTS.put(key, (None if components is None else dict(components), texts[0],
                         dict(refs), texts[1]))
    return texts


def as_status(value: str) -> Status | str:
    """The ``Status`` a stored string names; an unknown one (a newer ductwork's) as it is."""
    try:
        return Status(value)
    except ValueError:
        return value


def driver_alive(driver: str | None) -> bool:
    """Whether the process ``host:pid`` may still be running (another host's: assume so)."""
    if not driver:
        return False
    host, _, pid = driver.rpartition(":")
    if host != host_name() or not pid.isdigit():
        return True  # another machine's run: it cannot be checked from here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def run_status(stored: str, driver: str | None) -> Status | str:
    """The status a stored run has now: ``died`` for a running run whose driver is gone."""
    status = as_status(stored)
    if status != Status.RUNNING or not driver:
        return status
    return status if driver_alive(driver) else Status.DIED


def run_from_row(row: tuple[Any, ...]) -> Run:
    """A ``Run`` (without steps) from a row of ``runs``; raises ValueError on bad JSON."""
    data = dict(zip(RUN_COLUMNS, row, strict=True))
    return Run(
        id=data["id"], pipeline=data["pipeline"], params=json.loads(data["params"] or "{}"),
        backend=data["backend"], status=run_status(data["status"], data["driver"]),
        started=data["started"],
        finished=data["finished"], store=data["store"], git_commit=data["git_commit"],
        git_dirty=None if data["git_dirty"] is None else bool(data["git_dirty"]),
        ductwork_version=data["ductwork_version"], python_version=data["python_version"],
        graph=json.loads(data["graph"]) if data["graph"] else None,
        result=decode_structure(json.loads(data["result"])) if data["result"] else None,
        module=data["module"], source_file=data["source_file"],
    )


def step_from_row(row: tuple[Any, ...]) -> StepRun:
    """A ``StepRun`` from a row of ``steps``; raises ValueError on bad JSON."""
    data = dict(zip(STEP_COLUMNS, row, strict=True))
    return StepRun(
        id=data["id"], step=data["step"], status=as_status(data["status"]),
        cached=bool(data["cached"]), attempts=data["attempts"] or 0, started=data["started"],
        finished=data["finished"],
        output_refs={k: ref_from_json(v) for k, v in json.loads(data["outputs"] or "{}").items()},
        error=data["error"], logs=data["logs"] or "",
        metrics=json.loads(data["metrics"] or "{}"), map_index=data["map_index"],
        key=data["cache_key"],
        components=json.loads(data["components"]) if data["components"] else None,
        run_id=data["run_id"], note=data["note"], cached_from=data["cached_from"],
    )


#: What a damaged row can raise while it is read back.
BAD_ROW = (ValueError, TypeError, KeyError, AttributeError)
