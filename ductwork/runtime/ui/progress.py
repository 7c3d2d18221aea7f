"""Progress of a run as it goes: the interface the engine reports to, and picking a display.

The runner calls ``started(run)``, the engine ``changed(record)`` on every
state change of every step run -- each element of a map too, so thousands of
calls for a big map -- and the runner ``finished(run)`` from a ``finally``, so
also when the run is interrupted. The interface is ``display.NullProgress``
(re-exported here); a display counts in a ``tally.Tally`` and draws its
``Snapshot`` on its own clock, never per event.

The displays live in their own modules, imported only when one is picked; they
share ``display`` and ``tally`` and never import this module:

- ``terminal``: ``RichProgress`` (a rich ``Live`` on stderr) and
  ``PlainProgress`` (one stderr line, when rich is not installed);
- ``terminal``: ``StepLines``, a plain stderr line per finished step, which
  the command line shows where stderr is not a terminal (a CI log, a pipe);
- ``jupyter``: ``JupyterProgress``, an HTML view updated in place.

``make_progress`` picks one; ``choose_display`` is its rule as a pure function.
Their classes are re-exported here on first access, so importing this module
imports neither them nor rich, IPython or the SVG code.
"""

from __future__ import annotations

import os
import sys

from ductwork.dsl.core import RunOptionError
from ductwork.runtime.ui.display import NullProgress, isatty

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ENV", "NullProgress", "choose_display", "in_kernel", "make_progress"]

ENV = "DUCTWORK_PROGRESS"


# -- choosing a display -------------------------------------------------------------------


def choose_display(progress: bool | None, *, env: str | None, in_kernel: bool,
                   isatty: bool, lines: bool = False) -> str:
    """Return ``"none"``, ``"jupyter"``, ``"terminal"`` or ``"lines"`` for these circumstances.

    ``False`` shows nothing; ``True`` always shows something; ``None`` follows
    ``DUCTWORK_PROGRESS`` (``env``: 0/1) if set, else shows progress in a
    notebook kernel or when stderr is a terminal. With ``lines`` (the command
    line), what is not a terminal or a notebook -- a CI log, a file -- gets a
    plain line per finished step instead of nothing.
    """
    if progress is None and env is not None:
        flag = env.strip().lower()
        if flag in ("0", "false", "no", "off"):
            progress = False
        elif flag in ("1", "true", "yes", "on"):
            progress = True
    if progress is False:
        return "none"
    if in_kernel:
        return "jupyter"
    if isatty:
        return "terminal"
    if lines:
        return "lines"
    if progress is True:
        return "terminal"
    return "none"


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel; never imports IPython to find out."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:
        return False
    # A kernel's shell has a ``kernel``; the terminal IPython shell has not.
    return getattr(shell, "kernel", None) is not None


def _have_rich() -> bool:
    if "rich" in sys.modules:
        return True
    import importlib.util

    return importlib.util.find_spec("rich") is not None


def make_progress(progress: bool | None, *, lines: bool = False) -> Any:
    """Return the display for this run: None means 'in a notebook or when stderr is a terminal'.

    A display object (with ``started``, ``changed`` and ``finished``) is returned as it is.
    ``lines``: elsewhere, a plain stderr line per finished step (``terminal.StepLines``).
    """
    if not isinstance(progress, bool | None):
        if all(callable(getattr(progress, m, None)) for m in ("started", "changed", "finished")):
            return progress
        raise RunOptionError(f"progress= takes True, False or None, got {progress!r}.")
    kind = choose_display(progress, env=os.environ.get(ENV), in_kernel=in_kernel(),
                          isatty=isatty(sys.stderr), lines=lines)
    if kind == "jupyter":
        from ductwork.runtime.ui.jupyter import JupyterProgress

        return JupyterProgress()
    if kind == "terminal":
        from ductwork.runtime.ui.terminal import PlainProgress, RichProgress

        if _have_rich() and isatty(sys.stderr):
            return RichProgress()
        return PlainProgress()
    if kind == "lines":
        from ductwork.runtime.ui.terminal import StepLines

        return StepLines()
    return NullProgress()


# -- the displays, re-exported lazily ------------------------------------------------------

_DISPLAYS = {
    "RichProgress": "ductwork.runtime.ui.terminal",
    "PlainProgress": "ductwork.runtime.ui.terminal",
    "StepLines": "ductwork.runtime.ui.terminal",
    "JupyterProgress": "ductwork.runtime.ui.jupyter",
}


def __getattr__(name: str) -> Any:
    """Import a display class from its module the first time it is asked for here."""
    module = _DISPLAYS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
