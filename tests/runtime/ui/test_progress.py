"""Progress displays: which one is chosen, what they show, and that counting stays cheap."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
import types
from typing import Any

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.status import Status
from ductwork.runtime.ui import progress as P
from ductwork.runtime.ui import tally as T


@step
def numbers(n: int) -> list:
    return list(range(n))


@step
def square(x: int) -> int:
    return x * x


@step
def total(xs) -> int:
    return sum(xs)


@step
def explode(xs) -> int:
    raise ValueError("bad <input> & more")


@pipeline
def squares(n: int = 5):
    return total(square.map(numbers(n)))


@pipeline
def broken(n: int = 3):
    xs = numbers(n)
    return total(xs), explode(xs)


class Interrupt(BaseException):
    """Stands for Ctrl-C, without touching the real KeyboardInterrupt."""


@step
def interrupt(xs) -> int:
    raise Interrupt


@pipeline
def interrupted(n: int = 3):
    return interrupt(numbers(n))


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _rich_display() -> tuple[P.RichProgress, io.StringIO]:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160, color_system=None)
    return P.RichProgress(console=console, refresh_per_second=20), buf


# -- choosing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "env", "kernel", "tty", "expected"),
    [
        (False, None, False, True, "none"),
        (False, "1", True, True, "none"),
        (True, None, False, False, "terminal"),
        (True, "0", False, False, "terminal"),  # the argument beats the environment
        (True, None, True, False, "jupyter"),
        (None, None, False, True, "terminal"),
        (None, None, False, False, "none"),
        (None, None, True, False, "jupyter"),
        (None, "0", True, True, "none"),
        (None, "off", False, True, "none"),
        (None, "1", False, False, "terminal"),
        (None, "yes", True, False, "jupyter"),
        (None, "maybe", False, False, "none"),  # an unknown value is ignored
    ],
)
def test_choose_display(progress, env, kernel, tty, expected):
    assert P.choose_display(progress, env=env, in_kernel=kernel, isatty=tty) == expected


def _fake_ipython(shell):
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell  # type: ignore[attr-defined]
    return module


def test_in_kernel_looks_at_an_imported_ipython_only(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert P.in_kernel() is False
    assert "IPython" not in sys.modules
    monkeypatch.setitem(sys.modules, "IPython", _fake_ipython(None))
    assert P.in_kernel() is False  # imported, but not running
    terminal_shell = types.SimpleNamespace()
    monkeypatch.setitem(sys.modules, "IPython", _fake_ipython(terminal_shell))
    assert P.in_kernel() is False
    kernel_shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", _fake_ipython(kernel_shell))
    assert P.in_kernel() is True


def test_make_progress_picks_a_display(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.delenv(P.ENV, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert type(P.make_progress(None)) is P.NullProgress
    assert type(P.make_progress(False)) is P.NullProgress
    assert type(P.make_progress(True)) is P.PlainProgress  # not a terminal: plain lines
    monkeypatch.setattr(sys, "stderr", TTY())
    assert type(P.make_progress(None)) is P.RichProgress
    assert type(P.make_progress(False)) is P.NullProgress
    monkeypatch.setenv(P.ENV, "0")
    assert type(P.make_progress(None)) is P.NullProgress
    assert type(P.make_progress(True)) is P.RichProgress
    monkeypatch.delenv(P.ENV)
    monkeypatch.setattr(P, "_have_rich", lambda: False)
    assert type(P.make_progress(None)) is P.PlainProgress
    kernel = _fake_ipython(types.SimpleNamespace(kernel=object()))
    monkeypatch.setitem(sys.modules, "IPython", kernel)
    assert type(P.make_progress(None)) is P.JupyterProgress


def test_make_progress_takes_a_display_object_and_refuses_other_values():
    display = P.NullProgress()
    assert P.make_progress(display) is display
    with pytest.raises(dw.DuctworkError, match="progress= takes True, False or None"):
        P.make_progress("yes")


def test_progress_loads_neither_rich_nor_ipython_until_a_display_needs_them():
    code = (
        "import sys\n"
        "from ductwork.runtime.ui.progress import make_progress\n"
        "make_progress(None); make_progress(False)\n"
        "print(','.join(m for m in ('rich', 'IPython') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATH": "", "DUCTWORK_PROGRESS": ""})
    assert out.stdout.strip() == ""


# -- the terminal display, through real runs --------------------------------------------------


def test_rich_display_shows_the_final_counts():
    display, buf = _rich_display()
    run = squares.run(n=4, progress=display)
    assert run.status == "succeeded"
    text = buf.getvalue()
    assert f"pipeline squares run {run.id}" in text
    assert "3/3 done, 0 running, 0 cached, 0 failed, 0 skipped — succeeded in" in text
    assert display._live is not None and not display._live.is_started

    display, buf = _rich_display()
    squares.run(n=4, progress=display)
    assert "3/3 done, 0 running, 3 cached, 0 failed, 0 skipped" in buf.getvalue()


def test_rich_display_lists_failures_and_stops():
    display, buf = _rich_display()
    with pytest.raises(dw.PipelineFailed):
        broken.run(progress=display)
    text = buf.getvalue()
    assert "3/3 done, 0 running, 0 cached, 1 failed, 0 skipped — failed in" in text
    assert "✗ explode: ValueError: bad <input> & more" in text
    assert not display._live.is_started


def test_rich_display_stops_when_the_run_is_interrupted():
    display, buf = _rich_display()
    with pytest.raises(Interrupt):
        interrupted.run(progress=display)
    assert not display._live.is_started
    assert "pipeline interrupted run" in buf.getvalue()
    # The console is free again: a second live view can start.
    again, _ = _rich_display()
    squares.run(n=2, progress=again)


def test_a_display_that_cannot_start_does_not_fail_the_run():
    display, _ = _rich_display()
    display._open = lambda: (_ for _ in ()).throw(RuntimeError("no terminal"))  # type: ignore
    assert squares.run(n=2, progress=display).status == "succeeded"


def test_rich_view_shows_a_running_map_as_elements_done_of_total():
    display, _ = _rich_display()
    run = Run("r1", "scoring", {}, "inline")
    run.steps["score"] = StepRun("score", "score")
    display.tally.start(run)
    display.changed(_set(run.steps["score"], Status.RUNNING))
    for i in range(100):
        element = StepRun(f"score[{i}]", "score", map_index=i)
        display.changed(_set(element, Status.RUNNING))
        if i < 37:
            display.changed(_set(element, Status.SUCCEEDED, cached=i < 3))
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(display.renderable())
    text = buf.getvalue()
    assert "0/1 done, 1 running" in text
    assert "score 37/100 · 3 cached" in text


# -- counting --------------------------------------------------------------------------------


def _set(record: StepRun, status: str, cached: bool = False) -> StepRun:
    record.status, record.cached = status, cached
    return record


def test_tally_counts_nodes_and_map_elements():
    run = Run("r1", "p", {}, "inline")
    for nid in ("a", "m", "b"):
        run.steps[nid] = StepRun(nid, nid)
    tally = T.Tally()
    tally.start(run)
    assert tally.snapshot().counts == {"pending": 3}
    tally.change(_set(run.steps["a"], Status.RUNNING))
    tally.change(_set(run.steps["a"], Status.SUCCEEDED, cached=True))
    tally.change(_set(run.steps["m"], Status.RUNNING))
    elements = [StepRun(f"m[{i}]", "m", map_index=i) for i in range(10)]
    for e in elements:
        tally.change(_set(e, Status.RUNNING))
    for e in elements[:4]:
        tally.change(_set(e, Status.SUCCEEDED))
    tally.change(_set(elements[4], Status.FAILED))
    snap = tally.snapshot()
    assert snap.counts == {"cached": 1, "running": 1, "pending": 1}
    assert snap.done == 1 and snap.total == 3
    assert snap.active == (("m", "5/10 · 1 failed"),)
    run.steps["m"].error = (
        "element 4 failed:\nTraceback (most recent call last):\n  x\nKeyError: 4\n"
    )
    tally.change(_set(run.steps["m"], Status.FAILED))
    tally.change(_set(run.steps["b"], Status.SKIPPED))
    run.status = Status.FAILED
    tally.finish(run)
    snap = tally.snapshot()
    assert snap.counts == {"cached": 1, "failed": 1, "skipped": 1, "pending": 0}
    assert snap.done == 3 and snap.status == "failed" and snap.active == ()
    assert snap.failures == (("m", "element 4 failed: KeyError: 4"),)
    assert T.summary_line(snap).startswith(
        "pipeline p run r1: 3/3 done, 0 running, 1 cached, 1 failed, 1 skipped — failed in "
    )


def test_a_recomputed_step_moves_back_out_of_its_bucket():
    run = Run("r1", "p", {}, "inline")
    run.steps["a"] = record = StepRun("a", "a")
    tally = T.Tally()
    tally.start(run)
    tally.change(_set(record, Status.SUCCEEDED, cached=True))
    tally.change(_set(record, Status.RUNNING))  # a stored output failed verification
    assert tally.snapshot().counts == {"running": 1, "pending": 0}


def _changed_calls(n: int, count_calls: Any) -> tuple[int, str, Any, Run]:
    """Calls made by 2n ``changed()`` of n map elements, what was drawn meanwhile, the
    display and the run."""
    run = Run("r1", "p", {}, "inline")
    run.steps["m"] = StepRun("m", "m")
    display, buf = _rich_display()
    display.tally.start(run)  # counting only: nothing is drawn
    elements = [StepRun(f"m[{i}]", "m", map_index=i) for i in range(n)]
    drawn_before = buf.getvalue()

    def changes() -> None:
        for status in (Status.RUNNING, Status.SUCCEEDED):
            for e in elements:
                e.status = status
                display.changed(e)

    calls = count_calls(changes)
    return calls, buf.getvalue()[len(drawn_before):], display, run


def test_changed_for_ten_thousand_map_elements_is_cheap(count_calls):
    """``changed()`` only moves counters: the work per call does not grow with the map
    (counted in calls, not timed: a shared machine's clock says nothing), and nothing is
    drawn per event."""
    small, drawn_small, _, _ = _changed_calls(1_000, count_calls)
    large, drawn_large, display, run = _changed_calls(10_000, count_calls)
    assert drawn_small == drawn_large == ""
    assert large <= 10.5 * small, f"{large} calls for 10,000 elements, {small} for 1,000"
    display.changed(_set(run.steps["m"], Status.RUNNING))
    assert display.tally.snapshot().active == (("m", "10000/10000"),)


def test_error_line_takes_the_gist():
    assert T.error_line(None) == ""
    assert T.error_line("plain message\nmore") == "plain message"
    tb = "Traceback (most recent call last):\n  File x, line 1\nValueError: nope\n"
    assert T.error_line(tb) == "ValueError: nope"
    assert len(T.error_line("x" * 500)) == 160


def test_format_seconds():
    assert T.format_seconds(None) == "-"
    assert T.format_seconds(0.4237) == "0.42s"
    assert T.format_seconds(12.34) == "12.3s"
    assert T.format_seconds(123) == "2m 03s"
    assert T.format_seconds(3720) == "1h 02m"


# -- the plain fallback -------------------------------------------------------------------------


def test_plain_display_writes_a_final_line_when_not_a_terminal():
    out = io.StringIO()
    run = squares.run(n=3, progress=P.PlainProgress(stream=out))
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith(f"pipeline squares run {run.id}: 3/3 done, 0 running")
    assert "succeeded in" in lines[-1]
    assert "\r" not in out.getvalue()


def test_plain_display_rewrites_one_line_on_a_terminal():
    out = TTY()
    display = P.PlainProgress(stream=out, interval=0.01, width=200)
    squares.run(n=3, progress=display)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    assert text.startswith("\r") and "3/3 done" in text.rsplit("\r", 1)[1]


def test_plain_display_keeps_the_counts_when_the_terminal_is_narrow():
    out = TTY()
    display = P.PlainProgress(stream=out, interval=10, width=80)
    squares.run(n=3, progress=display)
    last = out.getvalue().rsplit("\r", 1)[1].rstrip("\n")
    assert len(last) < 80 and last.startswith("3/3 done") and "succeeded in" in last


# -- the Jupyter display ------------------------------------------------------------------------


class FakeOutput:
    def __init__(self) -> None:
        self.shown: list[str] = []
        self.updates: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def show(self, html: str) -> None:
        self.shown.append(html)

    def update(self, html: str) -> None:
        with self.lock:
            self.updates.append((time.monotonic(), html))


@step
def nap(x: int) -> int:
    time.sleep(0.05)
    return x


@pipeline
def naps(n: int = 12):
    return total(nap.map(numbers(n)))


def test_jupyter_display_updates_in_place_throttled_and_at_the_end():
    output = FakeOutput()
    begin = time.monotonic()
    run = naps.run(progress=P.JupyterProgress(output=output))
    spent = time.monotonic() - begin
    assert len(output.shown) == 1 and "pipeline" in output.shown[0]
    final = output.updates[-1][1]
    assert "3/3 done" in final and "succeeded" in final and run.id in final
    assert len(output.updates) <= spent / 0.25 + 2
    gaps = [b[0] - a[0] for a, b in zip(output.updates, output.updates[1:-1], strict=False)]
    assert all(gap >= 0.2 for gap in gaps)


def test_no_display_thread_outlives_its_run():
    squares.run(n=2, progress=P.JupyterProgress(output=FakeOutput()))
    squares.run(n=2, progress=P.PlainProgress(stream=TTY(), interval=0.01))
    display, _ = _rich_display()
    squares.run(n=2, progress=display)
    alive = [t.name for t in threading.enumerate()]
    assert "ductwork-progress" not in alive
    assert not any("Live" in type(t).__name__ or "Refresh" in type(t).__name__
                   for t in threading.enumerate())


def test_a_display_can_be_reused_for_another_run():
    display, buf = _rich_display()
    squares.run(n=2, progress=display)
    squares.run(n=2, progress=display)
    assert "3/3 done, 0 running, 3 cached" in buf.getvalue()


def test_jupyter_display_escapes_and_lists_failures():
    output = FakeOutput()
    with pytest.raises(dw.PipelineFailed):
        broken.run(progress=P.JupyterProgress(output=output))
    final = output.updates[-1][1]
    assert "1 failed" in final and "explode" in final
    assert "bad &lt;input&gt; &amp; more" in final and "<input>" not in final
