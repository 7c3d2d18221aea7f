"""What a job carries to a process worker: plain data fast, anything else by cloudpickle."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

from ductwork import step
from ductwork.backends.process import ProcessBackend
from ductwork.runtime.engine.job import Job
from ductwork.runtime.engine.shipping import pickle_job, unpickle_job
from ductwork.runtime.store.artifacts import ArtifactStore


@step(cache=False)
def apply(fn, x: int) -> int:
    return fn(x)



def run_program(source: str, folder, cwd=None, *, as_file: bool = True,
                ) -> subprocess.CompletedProcess[str]:
    """Run ``source`` in a fresh interpreter in ``cwd`` (default ``folder``): as the script
    ``folder/script.py`` (``folder`` first on its path), or with ``python -c`` ('' first on
    its path, as a REPL or a notebook kernel has)."""
    code = textwrap.dedent(source)
    cwd = folder if cwd is None else cwd
    if as_file:
        script = folder / "script.py"
        script.write_text(code)
        argv = [sys.executable, str(script)]
    else:
        argv = [sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)

def test_plain_arguments_go_by_plain_pickle_and_come_back_whole(tmp_path):
    store = ArtifactStore(str(tmp_path))
    ref = store.put([1, 2])
    job = Job("s[3]", apply, (3, "x", [1.5, None], {"k": (b"v", True)}), {"r": ref}, 2, "key",
              whole=True, run_id="run", log_to="/tmp/log")
    payload = pickle_job(job)
    assert b"cloudpickle" not in payload  # nothing but plain data and ductwork's refs
    pickle.loads(payload)  # plain pickle reads it: no cloudpickle needed in the worker
    assert unpickle_job(apply, payload) == job
    many = Job("s", apply, (list(range(5000)), {str(i): [i, None] for i in range(500)}), {})
    assert unpickle_job(apply, pickle_job(many)) == many


def test_a_lambda_argument_goes_by_cloudpickle_and_runs(tmp_path):
    assert b"cloudpickle" in pickle_job(Job("s", apply, (lambda x: x * 7, 6), {}))
    store = ArtifactStore(str(tmp_path))
    backend = ProcessBackend(store, max_workers=1)
    try:
        result = backend.submit(Job("s", apply, (lambda x: x * 7, 6), {})).result(timeout=60)
    finally:
        backend.close()
    assert result.error is None, result.error
    assert store.get(result.refs["output"]) == 42


def test_map_elements_of_a_class_defined_in_the_script_reach_the_workers(tmp_path):
    out = run_program(f'''
        from ductwork import pipeline, step

        class Point:
            def __init__(self, x):
                self.x = x

        @step
        def points(n: int) -> list:
            return [Point(i) for i in range(n)]

        @step(cache=False)
        def norm(p) -> int:
            return p.x * 2

        @pipeline
        def p():
            return norm.map(points(3))

        run = p.run(backend="process", max_workers=2, store={str(tmp_path / "s")!r})
        print("RESULT", run.outputs)
    ''', tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RESULT [0, 2, 4]" in out.stdout


def test_subclasses_of_plain_types_defined_in_the_script_reach_the_workers(tmp_path):
    # A str or tuple subclass of __main__ looks plain but is not: plain pickle would name a
    # class the worker cannot import.
    out = run_program(f'''
        from collections import namedtuple
        from ductwork import pipeline, step

        class Tag(str):
            pass

        Pair = namedtuple("Pair", "a b")

        @step(cache=False)
        def describe(tag, pair, n) -> str:
            return f"{{type(tag).__name__}}:{{tag}} {{type(pair).__name__}}:{{pair.b}} {{n}}"

        @pipeline
        def p():
            return describe(Tag("t"), Pair(1, 2), 3)

        run = p.run(backend="process", max_workers=1, store={str(tmp_path / "s")!r})
        print("RESULT", run.outputs)
    ''', tmp_path)
    assert out.returncode == 0, out.stderr
    assert "RESULT Tag:t Pair:2 3" in out.stdout


def test_workers_import_the_parent_s_ductwork_not_one_in_the_current_directory(tmp_path):
    # ``python -m`` would put the working directory first on a worker's path: a checkout of
    # another ductwork there would answer the parent's jobs.
    other = tmp_path / "elsewhere"
    (other / "ductwork").mkdir(parents=True)
    (other / "ductwork" / "__init__.py").write_text("raise ImportError('the wrong ductwork')\n")
    out = run_program(f'''
        from ductwork import pipeline, step

        @step(cache=False)
        def double(x: int) -> int:
            return 2 * x

        @pipeline
        def p():
            return double(21)

        run = p.run(backend="process", max_workers=1, store={str(tmp_path / "s")!r})
        print("RESULT", run.outputs)
    ''', tmp_path, cwd=other)
    assert out.returncode == 0, out.stderr
    assert "RESULT 42" in out.stdout


def test_a_step_imports_a_module_of_the_working_directory_when_the_parent_can(tmp_path):
    # A REPL, ``python -c`` or a notebook kernel has '' (the working directory) on its path:
    # a step importing a module that sits there must import it in a worker too.
    (tmp_path / "localhelp.py").write_text("def triple(x):\n    return 3 * x\n")
    out = run_program(f'''
        from ductwork import pipeline, step

        @step(cache=False)
        def use(x: int) -> int:
            import localhelp
            return localhelp.triple(x)

        @pipeline
        def p():
            return use(14)

        run = p.run(backend="process", max_workers=1, store={str(tmp_path / "s")!r})
        print("RESULT", run.outputs, run.status)
    ''', tmp_path, as_file=False)
    assert out.returncode == 0, out.stderr
    assert "RESULT 42 succeeded" in out.stdout, out.stdout + out.stderr
