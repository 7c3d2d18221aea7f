"""Which of ductwork's own modules a process's first inline run loads (issue 12).

Each import costs a first run its machinery (~0.3M instructions even for an empty
module) and its body; the modules below serve only what a plain one-step run on a
local store, with ``progress=False`` and no log file, never does -- each is imported
where it is used. A module imported at the top of a module on the run's path again
fails this test. The fresh interpreter and the one-step script are
``test_first_run``'s.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.runtime.test_first_run import SCRIPT, fresh_python

# Each with what needs it: a watched run's live log file; a cache hit's producing run;
# gc (what history refers to, forgetting producers of deleted runs); a step that reads
# a module constant or reaches a user class; a display that is picked (progress not
# False); an output too big to inline in its entry (hashio: hashing streams, spools).
# And threading: a run's locks are _thread's (what threading's are); only a thread
# started -- a display's clock, a big value hashed alongside, a step's timeout -- needs it.
# The sqlite3 package and datetime: history is written through _sqlite3 (the package's
# dbapi2 imports datetime), and datetime values are hashed by a lazy registration.
# And math: a float is checked finite by comparing it with infinity.
NOT_LOADED = (
    "ductwork.runtime.engine.livelog",
    "ductwork.runtime.records.producers",
    "ductwork.runtime.records.references",
    "ductwork.runtime.keys.constants",
    "ductwork.runtime.keys.members",
    "ductwork.runtime.ui.progress",
    "ductwork.runtime.store.hashio",
    "threading",
    "sqlite3",
    "datetime",
    "math",
)


def test_a_first_inline_run_loads_none_of_the_modules_it_does_not_use(tmp_path: Path) -> None:
    script = tmp_path / "first_run.py"  # a file, so that the step has source to fingerprint
    script.write_text(SCRIPT.replace("RUNS", "2").replace("DEFERRED", repr(NOT_LOADED)))
    out = fresh_python(script, str(tmp_path / "store"))
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])["deferred"]
    assert loaded == [], f"a first run imported {loaded}"


# Where ductwork's code calls re.compile during a first run (import and two runs): the
# one-step script, with re.compile spied on before ductwork is imported.
SPY = textwrap.dedent("""
    import json, os, re, sys
    compiled, compile_ = [], re.compile

    def spy(pattern, flags=0):
        caller = sys._getframe(1).f_code.co_filename
        if os.sep + "ductwork" + os.sep in caller:
            compiled.append(f"{os.path.basename(caller)}: {pattern!r}")
        return compile_(pattern, flags)

    re.compile = spy
""")
COMPILES = (SPY + SCRIPT.replace("RUNS", "2").replace("DEFERRED", "()")
            + "print(json.dumps(compiled))\n")


def test_a_first_inline_run_compiles_no_regular_expression(tmp_path: Path) -> None:
    """Compiling one costs 0.3M-1.7M instructions; a run checks digests, keys and names
    by their character sets, and the fast entry parse compiles its pattern on first use
    (a warm read)."""
    script = tmp_path / "compiles.py"
    script.write_text(COMPILES)
    out = fresh_python(script, str(tmp_path / "store"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
