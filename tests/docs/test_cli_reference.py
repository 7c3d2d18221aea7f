"""docs/cli-reference.md is what scripts/cli_reference.py makes from the parser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_generated_from_the_parser():
    spec = importlib.util.spec_from_file_location("cli_reference",
                                                  ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = ROOT / "docs" / "cli-reference.md"
    assert page.read_text() == module.render(), (
        "docs/cli-reference.md is out of date with the command line: run "
        "`python scripts/cli_reference.py` and commit the page")
