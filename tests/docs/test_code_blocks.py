"""Every code block of the docs and the README runs, as a reader would run it.

pytest-examples finds the Python blocks and runs each as a module (with the
traceback pointing at the page's line). A page's blocks run in order in one
fresh working directory, each seeing the names the blocks before it defined, as
in one Python session; the store is the test's own (``DUCTWORK_STORE`` under
the tmp dir, set by tests/conftest.py).

What a fence's info string says (``python title="NAME"``, or ``python {test="..."}``:
an attribute list, which the site's highlighter accepts and drops):

- ``title="NAME"``: a file the page shows; it is written to NAME in the working
  directory before the page's blocks run (and a Python one is run too).
- ``{test="docker"}`` / ``{test="dask"}`` / ``{test="server"}``: needs that service; the
  page runs a second time, with those blocks, in a test marked for it.
- ``{test="cloud"}``: needs a cloud account; not run. Few, and the page says so
  next to each (``test_cloud_blocks_are_few_and_said``).
- ``bash {test="run"}``: a quick, safe shell block run by bash in the working
  directory with this interpreter's ``bin`` first on PATH. Other ``bash``,
  ``console`` and ``text`` blocks are commands and output to read, never run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SERVICES = ("docker", "dask", "server")
FENCE = re.compile(r"^( *)```([^\n`]*)\n(.*?)^\1```", flags=re.M | re.S)
SETTING = re.compile(r"""([\w-]+)=(["'])(.*?)\2""")
MAX_CLOUD_BLOCKS = 8


@dataclass
class Fence:
    """A fenced block of a page: its language, settings, text and first line."""

    lang: str
    settings: dict[str, str]
    text: str
    line: int


@dataclass
class Page:
    path: Path
    fences: list[Fence] = field(default_factory=list)
    examples: list[CodeExample] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    def services(self) -> set[str]:
        return {f.settings.get("test") for f in self.fences} & set(SERVICES)

    def runnable(self) -> bool:
        return any(f.settings.get("test") != "cloud" and (f.lang in ("python", "py") or
                   f.settings.get("test") == "run") for f in self.fences)


def read_page(path: Path) -> Page:
    text = path.read_text()
    fences = [Fence(lang=(m.group(2).split() or [""])[0].lower(),
                    settings=dict((k, v) for k, _, v in SETTING.findall(m.group(2))),
                    text=m.group(3), line=text[:m.start()].count("\n") + 1)
              for m in FENCE.finditer(text)]
    return Page(path, fences, list(find_examples(path)))


def cases() -> list[object]:
    params = []
    for path in PAGES:
        page = read_page(path)
        if not page.runnable():
            continue
        params.append(pytest.param(page, None, id=page.name))
        for service in sorted(page.services()):
            marks = [pytest.mark.slow] + ([pytest.mark.docker] if service == "docker" else [])
            params.append(pytest.param(page, service, id=f"{page.name}-{service}", marks=marks))
    return params


def test_pages_are_found():
    names = [read_page(p).name for p in PAGES]
    assert "README.md" in names and "docs/caching.md" in names


@pytest.mark.parametrize(("page", "service"), cases())
def test_page_runs(page: Page, service: str | None, tmp_path, monkeypatch, request):
    """The page's blocks, in order, in a fresh working directory."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))  # `from quickstart import training` finds its file
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(work), str(ROOT),
                                                      os.environ.get("PYTHONPATH", "")]))
    if service == "docker":
        request.getfixturevalue("docker_engine")
    elif service == "server":
        start_server(request, tmp_path, monkeypatch)
    for fence in page.fences:
        if "title" in fence.settings:
            (work / fence.settings["title"]).write_text(fence.text)

    eval_example = EvalExample(tmp_path=tmp_path, pytest_request=request)
    by_line = {example.start_line: example for example in page.examples}
    names: dict[str, object] = {}
    main = sys.modules["__main__"]
    try:
        for fence in page.fences:
            wanted = fence.settings.get("test")
            if wanted == "cloud" or (wanted in SERVICES and wanted != service):
                continue
            if fence.lang in ("python", "py"):
                example = by_line.get(fence.line)
                assert example is not None, f"{page.name}:{fence.line}: block not found"
                names = run_block(eval_example, page, example, names)
            elif wanted == "run":
                run_shell(page, fence, work)
    finally:
        sys.modules["__main__"] = main  # pytest-examples runs each block as __main__


def run_block(eval_example: EvalExample, page: Page, example: CodeExample,
              names: dict[str, object]) -> dict[str, object]:
    """Run one Python block with the names the page's blocks before it defined."""
    try:
        return {**names, **eval_example.run(example, module_globals=names)}
    except Exception as exc:
        # pytest-examples points the traceback at the page; Python 3.11 cannot always
        # render that synthetic frame, so the page, line and error are said here too.
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(f"  {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}")
            tb = tb.tb_next
        raise AssertionError(
            f"{page.name}:{example.start_line}: the block failed: {type(exc).__name__}: {exc}\n"
            + "\n".join(frames[-8:])) from None


def run_shell(page: Page, fence: Fence, work: Path) -> None:
    """Run a ``bash {test="run"}`` block; its failure names the page line and its output."""
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", fence.text], cwd=work,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (
        f"{page.name}:{fence.line}: the shell block failed ({out.returncode}):\n"
        f"{fence.text}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}")


def start_server(request, tmp_path: Path, monkeypatch) -> None:
    """A ``ductwork serve`` on the test's store and a free port, with a runner token.

    Sets what the serving page's shell section exports: ``DW`` (the API's URL) and
    ``TOKEN``.
    """
    import importlib.util

    # tests/server/conftest.py's harness, loaded by path: its module name is taken.
    spec = importlib.util.spec_from_file_location(
        "ductwork_docs_server_harness", ROOT / "tests" / "server" / "conftest.py")
    harness = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = harness  # its dataclasses look their module up
    spec.loader.exec_module(harness)
    LiveServer = harness.LiveServer
    root = tmp_path / "server"
    root.mkdir()
    server = LiveServer(root=root, store=os.environ["DUCTWORK_STORE"],
                        env={**os.environ, "DUCTWORK_TOKEN": ""})
    token = server.create_token("docs", "runner")
    server.start("--max-runs", "2")
    request.addfinalizer(server.stop)
    monkeypatch.setenv("TOKEN", token)
    monkeypatch.setenv("DW", f"{server.url}/api/v1")


def test_cloud_blocks_are_few_and_said():
    """Blocks not run for want of a cloud account are few, and each page says so nearby."""
    cloud = []
    for path in PAGES:
        page = read_page(path)
        text = path.read_text().splitlines()
        for fence in page.fences:
            if fence.settings.get("test") == "cloud":
                cloud.append(f"{page.name}:{fence.line}")
                near = " ".join(text[max(0, fence.line - 8):fence.line + 8])
                assert "not run" in near, (
                    f"{page.name}:{fence.line}: say beside a cloud block that the tests do not "
                    "run it, and what it needs")
    assert len(cloud) <= MAX_CLOUD_BLOCKS, cloud


def test_every_fence_renders_as_code():
    """A fence header the site's highlighter does not understand is printed as text, not
    code: each fence's header must be one it renders (as mkdocs.yml configures it)."""
    import markdown

    md = markdown.Markdown(extensions=["attr_list", "pymdownx.highlight",
                                       "pymdownx.superfences"])
    for path in PAGES:
        for fence in read_page(path).fences:
            header = path.read_text().splitlines()[fence.line - 1].strip()
            html = md.reset().convert(f"{header}\n{fence.text}```\n")
            assert "```" not in html, f"{path.name}:{fence.line}: {header!r} does not render"
