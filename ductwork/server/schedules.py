"""Schedules: when a published pipeline runs by itself -- by cron, or when data changes.

Schedules live in the artifact store, beside the published pipelines they run, not in
one server's SQLite file: every server on a store (on this machine or another) sees
the same schedules, they survive any restart, and the claims that stop two servers
firing one time twice need a medium both servers share -- the store is the only one.
Layout under the store's root::

    schedules/<name>/schedule.json     the definition, created exclusively
    schedules/<name>/state.json        {"enabled": bool}, replaced whole
    schedules/<name>/fired/<key>.json  one firing: created exclusively, so one server
                                       claims it; what happened (fired, skipped, waiting)
                                       and why
    schedules/<name>/fired/<key>.start the claim to start a waiting firing's run

A firing's key is its UTC fire time (``20260101T020000Z``) for a cron schedule and a
change number (``c00000001``) for a data trigger; both sort oldest first. Claims use
``store.versions.create_file``: a local file linked into place, a conditional PUT
remotely. The newest firings are kept; older ones are pruned.

Cron expressions are parsed by croniter (five fields, or six with seconds last) and
evaluated in the schedule's IANA time zone (``zoneinfo``), so ``0 2 * * *`` in
Europe/Lisbon is 02:00 there in summer and in winter.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import re
import time
from typing import Any

from ductwork.dsl.core import DuctworkError
from ductwork.runtime.store.artifacts import open_store
from ductwork.runtime.store.versions import (
    create_file,
    folder,
    read_state,
    update_state,
    write_state,
)

__all__ = [
    "ScheduleError", "ScheduleExists", "ScheduleNotFound", "blocked_reason", "check_cron",
    "claim",
    "claim_start", "create_schedule", "data_fingerprint", "delete_schedule", "describe",
    "due_times",
    "firings", "get_schedule", "last_time", "list_schedules", "next_time", "record_firing",
    "set_enabled",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_OVERLAP = ("skip", "queue")
_KEEP = 200  # firings kept per schedule
_DEFINITION = "schedule.json"


class ScheduleError(DuctworkError):
    """A schedule that cannot be made or used as asked; the message says how to fix it."""


class ScheduleExists(ScheduleError):
    """A schedule of that name exists already."""


class ScheduleNotFound(ScheduleError):
    """No schedule of that name."""


# -- time ------------------------------------------------------------------------------


def _zone(timezone: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"Unknown time zone {timezone!r}: give an IANA name such as Europe/Lisbon or UTC."
        ) from None


def check_cron(cron: str, timezone: str = "UTC") -> None:
    """Refuse a cron expression croniter cannot read, or an unknown time zone."""
    from croniter import croniter

    _zone(timezone)
    fields = cron.split() if isinstance(cron, str) else []
    if len(fields) not in (5, 6) or not croniter.is_valid(cron):
        raise ScheduleError(
            f"Cron expression {cron!r} is not valid: give 5 fields (minute hour day month "
            "weekday, e.g. '0 2 * * *') or 6 with seconds last (e.g. '* * * * * */10')."
        )


def _iter(cron: str, timezone: str, start: dt.datetime) -> Any:
    from croniter import croniter

    return croniter(cron, start.astimezone(_zone(timezone)))


def next_time(cron: str, timezone: str, after: dt.datetime) -> dt.datetime:
    """The first fire time strictly after ``after`` (aware), in UTC."""
    found = _iter(cron, timezone, after).get_next(dt.datetime)
    return found.astimezone(dt.UTC)  # type: ignore[no-any-return]


def last_time(cron: str, timezone: str, at: dt.datetime) -> dt.datetime:
    """The last fire time at or before ``at`` (aware), in UTC."""
    # croniter's previous time is strictly before its start: start just after ``at``.
    found = _iter(cron, timezone, at + dt.timedelta(microseconds=1)).get_prev(dt.datetime)
    return found.astimezone(dt.UTC)  # type: ignore[no-any-return]


def due_times(cron: str, timezone: str, after: dt.datetime, until: dt.datetime,
              limit: int = 1000) -> list[dt.datetime]:
    """Fire times in ``(after, until]``, oldest first, at most the last ``limit``."""
    times: list[dt.datetime] = []
    it = _iter(cron, timezone, after)
    while True:
        found = it.get_next(dt.datetime).astimezone(dt.UTC)
        if found > until:
            return times
        times.append(found)
        del times[:-limit]


def time_key(when: dt.datetime) -> str:
    """A cron firing's key: its UTC time, sortable (``20260101T020000Z``)."""
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


# -- data triggers ----------------------------------------------------------------------


def split_on_change(spec: str) -> tuple[str | None, str]:
    """``DATASTORE:PATH_OR_GLOB`` as (datastore name or None for the store's own, path)."""
    name, sep, path = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not sep or not path or "/" in name:
        raise ScheduleError(
            f"--on-change takes DATASTORE:PATH_OR_GLOB (a configured datastore's name, or "
            f"nothing before the colon for the store's own datastore), got {spec!r}; e.g. "
            "--on-change :incoming/*.csv or --on-change lake:raw/2026/*.parquet."
        )
    return name or None, path


def data_fingerprint(store: Any, on_change: str) -> str:
    """The content fingerprint of the files ``on_change`` names now (``none`` if none),
    the one a ``Dataset.files`` of them has."""
    from ductwork.runtime.data.dataset import Dataset
    from ductwork.runtime.data.datastore import datastore, run_store

    name, path = split_on_change(on_change)
    with run_store(open_store(store)):
        place = datastore(name)
        if not place.find(path):
            return "none"  # no file yet: a first file is a change
        return Dataset.files(path, datastore=place).fingerprint()


# -- definitions ------------------------------------------------------------------------


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ScheduleError(
            f"A schedule's name is 1-128 letters, digits, '.', '_' or '-' (starting with a "
            f"letter or digit), got {name!r}."
        )
    return name


def _join(store: Any, *parts: str) -> str:
    return (os.path.join if store.is_local else posixpath.join)(*parts)


def _where(store: Any, name: str) -> str:
    return folder(store, "schedules", _check_name(name))


def _parameters(artifacts: Any, pipeline: str, version: int | None,
                parameters: dict[str, Any]) -> dict[str, Any]:
    """Check ``parameters`` against the schema of the version that would run."""
    from ductwork.runtime import publish

    found = publish.get_pipeline(pipeline, artifacts)  # PublishedNotFound names the others
    chosen = found["default_version"] if version is None else version
    record = next((r for r in found["records"] if r["version"] == chosen), None)
    if record is None:
        raise publish.PublishedNotFound(pipeline, version, (
            f"Pipeline {pipeline!r} has no version {version!r}; its versions: "
            f"{', '.join(map(str, found['versions']))}."))
    try:
        return publish.validate_parameters(record, parameters)
    except publish.ParameterError as exc:
        raise ScheduleError(f"Schedule parameters for {pipeline!r} version {chosen}: {exc}"
                            ) from None


def create_schedule(store: Any, name: str, *, pipeline: str, version: int | None = None,
                    cron: str | None = None, timezone: str = "UTC",
                    on_change: str | None = None, interval: float = 60.0,
                    parameters: dict[str, Any] | None = None, catch_up: bool = False,
                    overlap: str = "skip") -> dict[str, Any]:
    """Make schedule ``name`` running ``pipeline`` by ``cron`` or ``on_change``; return it."""
    artifacts = open_store(store)
    where = _where(artifacts, name)
    if (cron is None) == (on_change is None):
        raise ScheduleError(f"Schedule {name!r} needs one of --cron or --on-change (a time "
                            "or a data trigger), not both and not neither.")
    if overlap not in _OVERLAP:
        raise ScheduleError(f"--overlap is 'skip' or 'queue', got {overlap!r}.")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ScheduleError(f"--version is a version number, got {version!r}.")
    baseline = None
    if cron is not None:
        check_cron(cron, timezone)
    else:
        if catch_up:
            raise ScheduleError("--catch-up is for --cron schedules: a data trigger fires on "
                                "the change it finds, whenever it looks.")
        if isinstance(interval, bool) or not isinstance(interval, int | float) \
                or not 0.1 <= interval <= 86400:
            raise ScheduleError(f"--interval is seconds between 0.1 and 86400, got "
                                f"{interval!r}.")
        split_on_change(on_change)  # type: ignore[arg-type]
        try:
            baseline = data_fingerprint(artifacts, on_change)  # type: ignore[arg-type]
        except DuctworkError as exc:
            raise ScheduleError(f"Schedule {name!r}: --on-change {on_change!r} cannot be "
                                f"read here: {exc}") from None
    checked = _parameters(artifacts, pipeline, version, dict(parameters or {}))
    definition = {
        "format": 1, "name": name, "pipeline": pipeline, "version": version,
        "parameters": checked, "cron": cron, "timezone": timezone if cron else None,
        "on_change": on_change, "interval": float(interval) if on_change else None,
        "catch_up": bool(catch_up), "overlap": overlap, "created": time.time(),
        "baseline": baseline,
    }
    data = json.dumps(definition).encode()
    if not create_file(artifacts, _join(artifacts, where, _DEFINITION), data):
        raise ScheduleExists(f"A schedule named {name!r} exists already; delete it first "
                             f"(`ductwork schedule delete {name}`) or pick another name.")
    return get_schedule(artifacts, name)


def _read(artifacts: Any, name: str) -> dict[str, Any] | None:
    path = _join(artifacts, _where(artifacts, name), _DEFINITION)
    artifacts.fs.invalidate_cache(path)
    try:
        found = json.loads(artifacts.fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None
    state = read_state(artifacts, _where(artifacts, name))
    return {**found, "enabled": bool(state.get("enabled", True))}


def get_schedule(store: Any, name: str) -> dict[str, Any]:
    """Schedule ``name``'s definition and whether it is enabled."""
    artifacts = open_store(store)
    found = _read(artifacts, name)
    if found is None:
        known = ", ".join(s["name"] for s in list_schedules(artifacts)) or "none"
        raise ScheduleNotFound(f"No schedule named {name!r} in the store {artifacts.url}; "
                               f"schedules: {known}.")
    return found


def list_schedules(store: Any = None) -> list[dict[str, Any]]:
    """Every schedule in the store, by name."""
    artifacts = open_store(store)
    top = folder(artifacts, "schedules")
    artifacts.fs.invalidate_cache(top)
    try:
        listed = artifacts.fs.ls(top, detail=False)
    except FileNotFoundError:
        return []
    names = sorted(str(p).replace("\\", "/").rstrip("/").rpartition("/")[2] for p in listed)
    found = (_read(artifacts, n) for n in names if _NAME.fullmatch(n))
    return [s for s in found if s is not None]


def set_enabled(store: Any, name: str, enabled: bool) -> dict[str, Any]:
    """Enable or disable schedule ``name``; return it."""
    artifacts = open_store(store)
    get_schedule(artifacts, name)
    update_state(artifacts, _where(artifacts, name), lambda s: {**s, "enabled": enabled})
    return get_schedule(artifacts, name)


def delete_schedule(store: Any, name: str) -> None:
    """Delete schedule ``name`` and its firings."""
    artifacts = open_store(store)
    get_schedule(artifacts, name)
    artifacts.fs.rm(_where(artifacts, name), recursive=True)
    artifacts.fs.invalidate_cache(folder(artifacts, "schedules"))


# -- firings ----------------------------------------------------------------------------


def _fired(artifacts: Any, name: str) -> str:
    return _join(artifacts, _where(artifacts, name), "fired")


def claim(store: Any, name: str, key: str, record: dict[str, Any]) -> bool:
    """Record firing ``key`` of ``name`` if no server has; say whether this call did."""
    artifacts = open_store(store)
    where = _fired(artifacts, name)
    made = create_file(artifacts, _join(artifacts, where, f"{key}.json"),
                       json.dumps({**record, "key": key}).encode())
    if made:
        _prune(artifacts, where)
    return made


def claim_start(store: Any, name: str, key: str) -> bool:
    """Claim starting the run of waiting firing ``key``; say whether this call did."""
    artifacts = open_store(store)
    return create_file(artifacts, _join(artifacts, _fired(artifacts, name), f"{key}.start"),
                       b"")


def record_firing(store: Any, name: str, key: str, record: dict[str, Any]) -> None:
    """Replace what firing ``key`` says (only its claimer does)."""
    artifacts = open_store(store)
    write_state(artifacts, _fired(artifacts, name), {**record, "key": key}, f"{key}.json")


def _keys(artifacts: Any, where: str) -> list[str]:
    artifacts.fs.invalidate_cache(where)
    try:
        listed = artifacts.fs.ls(where, detail=False)
    except FileNotFoundError:
        return []
    names = (str(p).replace("\\", "/").rpartition("/")[2] for p in listed)
    return sorted(n[:-5] for n in names if n.endswith(".json") and not n.startswith("."))


def firings(store: Any, name: str, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` firings of ``name``, oldest first."""
    artifacts = open_store(store)
    where = _fired(artifacts, name)
    out = []
    for key in _keys(artifacts, where)[-limit:]:
        try:
            out.append(json.loads(artifacts.fs.cat_file(_join(artifacts, where, f"{key}.json"))))
        except (FileNotFoundError, ValueError):
            continue  # pruned meanwhile
    return out


def _prune(artifacts: Any, where: str) -> None:
    keys = _keys(artifacts, where)
    for key in keys[:-_KEEP] if len(keys) > _KEEP + 20 else []:
        for suffix in (".json", ".start"):
            try:
                artifacts.fs.rm(_join(artifacts, where, key + suffix))
            except (FileNotFoundError, OSError):
                pass


# -- as listings show them ----------------------------------------------------------


def blocked_reason(artifacts: Any, schedule: dict[str, Any]) -> str | None:
    """Why ``schedule`` would not fire now (disabled, its pipeline disabled or gone), or
    None."""
    from ductwork.runtime import publish

    name, pipeline = schedule["name"], schedule["pipeline"]
    if not schedule["enabled"]:
        return f"Schedule {name!r} is disabled; `ductwork schedule enable {name}` resumes it."
    try:
        found = publish.get_pipeline(pipeline, artifacts)
    except (publish.PublishedNotFound, publish.PublishError) as exc:
        return f"Pipeline {pipeline!r} is not published here any more: {exc}"
    if not found["enabled"]:
        return (f"Pipeline {pipeline!r} is disabled, so schedule {name!r} does not fire; "
                f"`ductwork pipelines enable {pipeline}` lets it fire again.")
    return None


def describe(store: Any, schedule: dict[str, Any], limit: int = 5) -> dict[str, Any]:
    """``schedule`` as listings show it: with ``next_fire`` (ISO, UTC; None for a data
    trigger or one that would not fire), ``blocked`` (why it would not) and its newest
    ``limit`` ``firings``, newest first."""
    artifacts = open_store(store)
    blocked = blocked_reason(artifacts, schedule)
    upcoming = None
    if schedule.get("cron") and blocked is None:
        upcoming = next_time(schedule["cron"], schedule["timezone"] or "UTC",
                             dt.datetime.now(dt.UTC)).isoformat()
    shown = [{**f, "time": dt.datetime.fromtimestamp(f["time"], dt.UTC).isoformat()}
             for f in reversed(firings(artifacts, schedule["name"], limit))]
    return {**{k: v for k, v in schedule.items() if k not in ("format", "baseline")},
            "next_fire": upcoming, "blocked": blocked, "firings": shown}
