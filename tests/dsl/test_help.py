"""``help()`` documents every option: a new option without docs fails here.

An option is documented by an item ``name : type, default ...`` followed by its
meaning, in the help text a user sees (``pydoc``, what ``help()`` prints).
"""

from __future__ import annotations

import inspect
import pydoc
import re

import ductwork as dw
from ductwork.dsl.options import OPTION_NAMES, StepOptions
from ductwork.dsl.pipeline import RUN_OPTIONS

_ITEM = re.compile(r"^\s*\|?\s*(\w+) : (.+)$", re.MULTILINE)


def documented(obj: object) -> dict[str, str]:
    """Option name -> its item line, from the text ``help(obj)`` prints."""
    text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    return {m.group(1): m.group(2) for m in _ITEM.finditer(text)}


def test_every_step_option_is_an_accepted_option():
    # make_options accepts exactly OPTION_NAMES; each is a keyword of StepOptions.
    assert set(OPTION_NAMES) == set(inspect.signature(StepOptions).parameters)


def test_help_step_documents_every_option_with_its_default():
    items = documented(dw.step)
    assert set(items) == set(OPTION_NAMES), "document each @step option, and only those"
    for name, line in items.items():
        assert "default" in line, f"{name}: say its default"


def test_help_pipeline_documents_its_option_and_run_options():
    assert set(documented(dw.pipeline)) == {"name"}
    assert set(documented(dw.Pipeline.run)) == set(RUN_OPTIONS)
    assert set(documented(dw.Pipeline.plan)) == set()  # plan points to run's list
    assert "Pipeline.run" in pydoc.render_doc(dw.Pipeline.plan, renderer=pydoc.plaintext)


def test_help_environment_documents_every_field():
    assert set(documented(dw.Environment)) >= set(inspect.signature(dw.Environment).parameters)


def test_help_step_explains_calls_named_ids_and_map():
    text = pydoc.render_doc(dw.step, renderer=pydoc.plaintext)
    for phrase in (".named(", ".map(", "fit-2", "plain function", "DefinitionError"):
        assert phrase in text
    named = pydoc.render_doc(dw.Step.named, renderer=pydoc.plaintext)
    assert "TraceError" in named and "cache key" in named
