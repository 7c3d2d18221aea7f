"""The firing loop ``ductwork serve`` runs: schedules in, queued runs out.

One thread looks at the store's schedules every quarter second (``schedules``):

- **cron**: each server keeps a cursor per schedule, the time it last looked; the
  fire times in ``(cursor, now]`` are due and the latest of them fires (a late turn
  fires once, not once per time it slept through). A server starting up sets its
  cursors to now, so times missed while no server ran are not caught up -- unless
  the schedule has ``catch_up``: then the last fire time before start, if after the
  schedule was made, fires once.
- **data** (``on_change``): every ``interval`` seconds the files' content fingerprint
  is taken (``Dataset.files(...).fingerprint()``, as a dataset's cache key takes it).
  A fingerprint fires once it has *settled* -- the same on two polls in a row -- and
  differs from the last one fired (or the one taken when the schedule was made), so a
  burst of writes within one interval starts one run, of the content they left.

Firing: the outcome is decided first -- ``fired``; ``skipped`` with why (the pipeline
is disabled or gone, the parameters no longer fit its default version, the previous
run of the schedule is still going); or ``waiting`` (``overlap="queue"``: it starts
when the previous run ends) -- then claimed in the store (``schedules.claim``). Only
the server whose claim lands acts on it, so two servers on one store fire a time
once. A run is queued after its claim, so a server dying in between loses that
firing rather than running it twice. A waiting firing's run is started by whichever
server first claims its start once the run it waits on has ended.

Whether the previous run is still going is read from this server's queue and the
run history -- shared by every server on one local store; on a remote store, a run
another machine's server started is not seen and does not hold a firing back.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import Any

import attrs

from ductwork.dsl.core import DuctworkError
from ductwork.server import queue, schedules
from ductwork.server.launcher import Launcher
from ductwork.server.state import ServerState
from ductwork.server.views import RunSource, run_summary

__all__ = ["Scheduler"]

_log = logging.getLogger("ductwork.server")
GOING = ("queued", "running")


@attrs.define
class _Poll:
    due: float  # monotonic time of the next poll
    seen: str | None  # the fingerprint the last poll found


class Scheduler:
    """The thread that fires the store's schedules into the run queue."""

    def __init__(self, artifacts: Any, state: ServerState, launcher: Launcher,
                 runs: RunSource, tick: float = 0.25) -> None:
        self.artifacts, self.state, self.launcher, self.runs = artifacts, state, launcher, runs
        self.tick = tick
        self.ident = f"{socket.gethostname()}:{os.getpid()}"
        self._cursors: dict[tuple[str, float], dt.datetime] = {}
        self._polls: dict[tuple[str, float], _Poll] = {}
        self._first = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start firing."""
        self._thread = threading.Thread(target=self._loop, name="ductwork-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop firing (a firing under way completes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.turn()
            except Exception as exc:  # the scheduler must outlive any one bad turn
                _log.error("scheduler: %s: %s", type(exc).__name__, exc)
            self._stop.wait(self.tick)

    def turn(self) -> None:
        """Fire what is due now, once."""
        now = dt.datetime.now(dt.UTC)
        seen = set()
        for schedule in schedules.list_schedules(self.artifacts):
            # A schedule deleted and made again under its name starts afresh.
            ident = (schedule["name"], float(schedule["created"]))
            seen.add(ident)
            if not schedule["enabled"]:
                # Re-enabled, it fires from then on: a pause is not downtime to catch up.
                self._cursors.pop(ident, None)
                self._polls.pop(ident, None)
                continue
            try:
                if schedule["overlap"] == "queue":
                    self._release(schedule)
                if schedule.get("cron"):
                    self._cron(schedule, ident, now)
                else:
                    self._data(schedule, ident)
            except DuctworkError as exc:
                _log.warning("schedule %r: %s", schedule["name"], exc)
        for gone in set(self._cursors) - seen:
            del self._cursors[gone]
        for gone in set(self._polls) - seen:
            del self._polls[gone]
        self._first = False

    # -- when ---------------------------------------------------------------------------

    def _cron(self, schedule: dict[str, Any], ident: tuple[str, float],
              now: dt.datetime) -> None:
        cron, zone = schedule["cron"], schedule["timezone"] or "UTC"
        cursor = self._cursors.get(ident)
        self._cursors[ident] = now
        if cursor is None:
            if self._first and schedule["catch_up"]:
                missed = schedules.last_time(cron, zone, now)
                if missed.timestamp() > schedule["created"]:
                    self._fire(schedule, schedules.time_key(missed), missed.timestamp(),
                               catch_up=True)
            return
        due = schedules.due_times(cron, zone, cursor, now)
        if due:
            self._fire(schedule, schedules.time_key(due[-1]), due[-1].timestamp())

    def _data(self, schedule: dict[str, Any], ident: tuple[str, float]) -> None:
        poll, now = self._polls.get(ident), time.monotonic()
        if poll is not None and now < poll.due:
            return
        interval = float(schedule["interval"] or 60.0)
        try:
            found = schedules.data_fingerprint(self.artifacts, schedule["on_change"])
        except (DuctworkError, OSError) as exc:
            self._polls[ident] = _Poll(now + interval, None)
            _log.warning("schedule %r: --on-change %s cannot be read: %s", schedule["name"],
                         schedule["on_change"], exc)
            return
        self._polls[ident] = _Poll(now + interval, found)
        if poll is None or poll.seen != found:
            return  # not settled: fire once the writes stop for an interval
        recent = schedules.firings(self.artifacts, schedule["name"], 1)
        last = recent[-1]["fingerprint"] if recent else schedule["baseline"]
        if found == last:
            return
        number = int(recent[-1]["key"][1:]) + 1 if recent else 1
        self._fire(schedule, f"c{number:08d}", time.time(), fingerprint=found)

    # -- what ---------------------------------------------------------------------------

    def _runnable(self, schedule: dict[str, Any]
                  ) -> tuple[int | None, dict[str, Any], str | None]:
        """The version and parameters to run now, or why it cannot run."""
        from ductwork.runtime import publish

        reason = schedules.blocked_reason(self.artifacts, schedule)
        if reason is not None:
            return None, {}, reason
        pipeline = schedule["pipeline"]
        found = publish.get_pipeline(pipeline, self.artifacts)
        version = schedule["version"] or found["default_version"]
        record = next((r for r in found["records"] if r["version"] == version), None)
        if record is None:
            return None, {}, f"Pipeline {pipeline!r} has no version {version} any more."
        try:
            return version, publish.validate_parameters(record, schedule["parameters"]), None
        except publish.ParameterError as exc:
            return None, {}, (f"The schedule's parameters do not fit {pipeline!r} version "
                              f"{version}: {exc} Delete the schedule and make it again.")

    def _status(self, run_id: str | None) -> str | None:
        if not run_id:
            return None
        run, row = self.runs.get(run_id)
        return None if run is None and row is None else run_summary(run, row)["status"]

    def _previous(self, name: str) -> dict[str, Any] | None:
        """The newest firing of ``name`` that has (or will have) a run."""
        for firing in reversed(schedules.firings(self.artifacts, name, 20)):
            if firing.get("run_id"):
                return firing
        return None

    def _fire(self, schedule: dict[str, Any], key: str, when: float, *,
              catch_up: bool = False, fingerprint: str | None = None) -> None:
        name = schedule["name"]
        version, parameters, reason = self._runnable(schedule)
        outcome, after = "fired" if reason is None else "skipped", None
        previous = self._previous(name) if reason is None else None
        if previous is not None and previous.get("outcome") == "waiting":
            outcome, reason = "skipped", (
                f"a firing already waits for run {previous.get('after')} to end")
        elif previous is not None and (status := self._status(previous["run_id"])) in GOING:
            if schedule["overlap"] == "queue":
                outcome, after = "waiting", previous["run_id"]
                reason = f"waits for run {after} of this schedule to end"
            else:
                outcome, reason = "skipped", (
                    f"run {previous['run_id']} of this schedule is still {status} "
                    "(--overlap skip)")
        run_id = queue.new_api_run_id() if outcome in ("fired", "waiting") else None
        record = {"time": when, "claimed": time.time(), "server": self.ident,
                  "outcome": outcome, "reason": reason, "run_id": run_id, "after": after,
                  "version": version, "parameters": parameters, "catch_up": catch_up,
                  "fingerprint": fingerprint}
        if not schedules.claim(self.artifacts, name, key, record):
            return  # another server fired this time
        if outcome == "fired":
            queue.enqueue(self.state, schedule["pipeline"], version, parameters,  # type: ignore[arg-type]
                          "", run_id=run_id, schedule=name)
            self.launcher.wake()
        _log.info("schedule %r %s %s%s", name, outcome, key, f": {reason}" if reason else "")

    def _release(self, schedule: dict[str, Any]) -> None:
        """Start a waiting firing's run once the run it waits on has ended."""
        name = schedule["name"]
        waiting = self._previous(name)
        if waiting is None or waiting.get("outcome") != "waiting":
            return
        if self._status(waiting.get("after")) in GOING:
            return
        if not schedules.claim_start(self.artifacts, name, waiting["key"]):
            return
        version, parameters, reason = self._runnable(schedule)
        done = {**waiting, "claimed": time.time(), "server": self.ident}
        if reason is not None:
            done.update(outcome="skipped", reason=reason, run_id=None)
        else:
            queue.enqueue(self.state, schedule["pipeline"], version, parameters,  # type: ignore[arg-type]
                          "", run_id=waiting["run_id"], schedule=name)
            self.launcher.wake()
            done.update(outcome="fired", version=version, parameters=parameters,
                        reason=f"started after run {waiting.get('after')} ended")
        schedules.record_firing(self.artifacts, name, waiting["key"], done)
