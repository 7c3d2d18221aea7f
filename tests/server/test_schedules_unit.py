"""Schedules without a server: next-fire times (explicit datetimes, time zones, a seconds
field) and definitions kept in a store on disk, checked against the published schema."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from ductwork.server import schedules
from ductwork.server.schedules import ScheduleError

UTC = dt.UTC


def test_next_time_follows_the_time_zone_and_a_seconds_field():
    after = dt.datetime(2026, 1, 1, 1, 59, 0, tzinfo=UTC)
    # Lisbon is UTC+0 in winter, UTC+1 in summer: 02:00 there is 01:00 UTC in July.
    assert schedules.next_time("0 2 * * *", "Europe/Lisbon", after) == dt.datetime(
        2026, 1, 1, 2, 0, tzinfo=UTC)
    july = dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert schedules.next_time("0 2 * * *", "Europe/Lisbon", july) == dt.datetime(
        2026, 7, 1, 1, 0, tzinfo=UTC)
    secs = dt.datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    assert schedules.next_time("* * * * * */5", "UTC", secs) == dt.datetime(
        2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def test_due_times_are_those_after_the_cursor_up_to_now_inclusive():
    start = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    due = schedules.due_times("* * * * * */2", "UTC", start, start + dt.timedelta(seconds=6))
    assert [t.second for t in due] == [2, 4, 6]
    last = schedules.last_time("0 2 * * *", "UTC", dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC))
    assert last == dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("cron", "zone", "words"), [
    ("bad", "UTC", "5 fields"),
    ("61 * * * *", "UTC", "61 * * * *"),
    ("0 2 * * *", "Mars/Olympus", "Mars/Olympus"),
])
def test_bad_cron_or_zone_is_refused_naming_it(cron, zone, words):
    with pytest.raises(ScheduleError, match=None) as err:
        schedules.check_cron(cron, zone)
    assert words in str(err.value)


FLOW = textwrap.dedent('''
    import ductwork as dw

    @dw.step
    def double(x: int) -> int:
        return 2 * x

    @dw.pipeline
    def flow(x: int = 3, tag: str = "t"):
        return double(x)
''')


@pytest.fixture
def store(tmp_path):
    import importlib.util

    path = tmp_path / "flowmod.py"
    path.write_text(FLOW)
    spec = importlib.util.spec_from_file_location("flowmod", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    where = str(tmp_path / "store")
    module.flow.publish("flow", store=where)
    return where


def test_a_schedule_is_kept_in_the_store_and_checked_against_the_schema(store):
    made = schedules.create_schedule(store, "nightly", pipeline="flow", cron="0 2 * * *",
                                     parameters={"x": 4}, timezone="Europe/Lisbon")
    assert made["name"] == "nightly" and made["enabled"] is True
    assert [s["name"] for s in schedules.list_schedules(store)] == ["nightly"]
    with pytest.raises(schedules.ScheduleExists, match="nightly"):
        schedules.create_schedule(store, "nightly", pipeline="flow", cron="0 2 * * *")
    with pytest.raises(ScheduleError, match="'x'"):
        schedules.create_schedule(store, "bad", pipeline="flow", cron="0 2 * * *",
                                  parameters={"x": "four"})
    with pytest.raises(ScheduleError, match="--cron or --on-change"):
        schedules.create_schedule(store, "neither", pipeline="flow")
    schedules.set_enabled(store, "nightly", False)
    assert schedules.get_schedule(store, "nightly")["enabled"] is False
    schedules.delete_schedule(store, "nightly")
    assert schedules.list_schedules(store) == []
    with pytest.raises(schedules.ScheduleNotFound, match="nightly"):
        schedules.get_schedule(store, "nightly")


def test_a_fire_time_is_claimed_once(store):
    schedules.create_schedule(store, "s", pipeline="flow", cron="* * * * * *")
    first = schedules.claim(store, "s", "20260101T000000Z", {"outcome": "fired"})
    second = schedules.claim(store, "s", "20260101T000000Z", {"outcome": "fired"})
    assert (first, second) == (True, False)
    assert [f["key"] for f in schedules.firings(store, "s")] == ["20260101T000000Z"]
