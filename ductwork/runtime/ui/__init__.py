"""Showing runs: progress while a run goes, and HTML of a run or a pipeline.

- ``progress``: the interface the engine reports to (``NullProgress``) and
  ``make_progress``, which picks a display;
- ``tally``: the O(1) counting every display draws from, and the text helpers;
- ``display``: the base the drawn displays share;
- ``terminal``, ``jupyter``: the rich/plain terminal displays and the notebook
  one, imported only when picked;
- ``html``: a run as HTML, with its graph as SVG in the page;
- ``live``: step states written to a file while a run runs, for the studio
  (``LiveProgress``; ``StoreLive``, which ``ductwork run`` wraps its display in).

Takes statuses from ``runtime.status`` and never imports ``records`` or the
runner. Import from the modules; nothing is re-exported.
"""
