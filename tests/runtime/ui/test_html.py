"""The HTML view of a run: header, coloured graph, steps table, big maps capped, all escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import ductwork as dw
from ductwork import pipeline, step
from ductwork.runtime.records.run import Run, StepRun
from ductwork.runtime.status import Status
from ductwork.runtime.ui.html import pipeline_html, run_html, step_state


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
def mixed(n: int = 4, tag: str = "<script>alert(1)</script>"):
    xs = numbers(n)
    return total(square.map(xs)), explode(xs)


def _well_formed(html: str) -> ET.Element:
    return ET.fromstring(html)


def test_run_html_shows_each_step_with_its_state():
    with pytest.raises(dw.PipelineFailed) as info:
        mixed.run()
    run = info.value.run
    html = run_html(run)
    _well_formed(html)
    assert run.id in html and "mixed" in html
    assert "<svg" in html
    for record in run.steps.values():
        assert f"<code>{record.id}</code>" in html or f"<code>{record.id} (map)</code>" in html
        assert f'data-id="{record.id}" data-state="{step_state(record)}"' in html or (
            record.map_index is not None
        )
    assert "4 elements, 4 succeeded" in html
    assert "ValueError: bad &lt;input&gt; &amp; more" in html
    assert "&lt;script&gt;" in html and "<script>" not in html

    with pytest.raises(dw.PipelineFailed) as info:
        mixed.run()
    again = info.value.run
    html = run_html(again)
    assert 'data-id="square" data-state="cached"' in html
    assert "4 elements, 4 cached" in html


def _big_run(n: int, failed: set[int]) -> Run:
    run = Run("r-big", "big", {"n": n}, "inline", status=Status.FAILED, started=1.0e9,
              finished=1.0e9 + 3)
    run.graph = {"name": "big", "nodes": [{"id": "m", "step": "m", "kind": "map"}], "edges": []}
    run.steps["m"] = StepRun("m", "m", status=Status.FAILED, started=1.0e9, finished=1.0e9 + 3)
    for i in range(n):
        status = Status.FAILED if i in failed else Status.SUCCEEDED
        run.steps[f"m[{i}]"] = StepRun(
            f"m[{i}]", "m", status=status, cached=i % 2 == 0 and i not in failed, map_index=i,
            error="Traceback (most recent call last):\nKeyError: 'x'\n" if i in failed else None,
        )
    return run


def test_a_big_map_is_summarised_and_capped():
    run = _big_run(10_000, failed={9_999})
    html = run_html(run, max_elements=50)
    _well_formed(html)
    assert "10000 elements, 4999 succeeded, 5000 cached, 1 failed" in html
    assert len(re.findall(r"<code>m\[\d+\]</code>", html)) == 50
    assert "<code>m[9999]</code>" in html  # a failed element is always listed
    assert "… 9950 more elements not shown" in html
    assert "KeyError: &#x27;x&#x27;" in html
    assert len(html) < 100_000


def test_a_run_without_a_graph_still_renders():
    run = _big_run(3, failed=set())
    run.graph = None
    html = run_html(run)
    _well_formed(html)
    assert "<svg" not in html and "recorded no graph" in html
    assert "3 elements" in html


def test_run_html_escapes_odd_ids_and_values():
    odd = 'a<b>&"c"'
    run = Run("r<1>", "p&q", {"x": "<b>"}, "inline", status=Status.SUCCEEDED)
    run.graph = {"name": "p&q", "nodes": [{"id": odd, "kind": "step"}], "edges": []}
    run.steps[odd] = StepRun(odd, "s", status=Status.SUCCEEDED)
    html = run_html(run)
    _well_formed(html)
    assert "<b>" not in html.replace("<b>p&amp;q</b>", "")
    assert "r&lt;1&gt;" in html and "a&lt;b&gt;&amp;&quot;c&quot;" in html


def test_pipeline_html_is_available_here_too():
    assert "<svg" in pipeline_html(mixed)
