"""Named calls in runs: ``run.steps``, ``regenerate``, ``plan``, ``why``, the CLI, the
cache key, published snapshots and Dask all use the id a call was given."""

from __future__ import annotations

import pytest

import ductwork as dw
from ductwork import pipeline, step


@step
def load(n: int) -> list[int]:
    return list(range(n))


@step
def evaluate(rows: list[int], depth: int = 1) -> int:
    print(f"evaluating at depth {depth}")
    return sum(rows) * depth


@step
def best(*scores: int) -> int:
    return max(scores)


@pipeline
def compare(n: int = 4):
    rows = load(n)
    linear = evaluate(rows)
    tree = evaluate.named("evaluate_tree")(rows, depth=3)
    return best(linear, tree)


def test_run_steps_regenerate_plan_and_why_use_the_named_id(tmp_path):
    store = str(tmp_path / "store")
    first = compare.run(store=store, progress=False)
    assert first.outputs == 18
    tree = first.steps["evaluate_tree"]
    assert tree.status == "succeeded" and not tree.cached
    assert "depth 3" in tree.logs

    plan = compare.plan(store=store, regenerate=["evaluate_tree"])
    assert plan["evaluate_tree"][0] == "run" and plan["evaluate"][0] == "cached"

    again = compare.run(store=store, progress=False, regenerate=["evaluate_tree"])
    assert not again.steps["evaluate_tree"].cached and again.steps["evaluate"].cached
    assert not again.steps["best"].cached  # what follows the regenerated step reruns too
    assert "regenerate" in again.steps["evaluate_tree"].why


def test_renaming_a_call_keeps_its_cache_key(tmp_path):
    """The id names a call; it is not part of what the call computes, so not of its key."""
    store = str(tmp_path / "store")

    @pipeline
    def positional(n: int = 4):
        rows = load(n)
        return best(evaluate(rows), evaluate(rows, depth=3))

    before = positional.run(store=store, progress=False)
    after = compare.run(store=store, progress=False)
    assert after.steps["evaluate_tree"].cached
    assert after.steps["evaluate_tree"].key == before.steps["evaluate-2"].key
    assert after.outputs == before.outputs


def test_the_cli_finds_a_named_step_for_logs_and_why(tmp_path, capsys):
    from ductwork.cli import main

    path = tmp_path / "flow.py"
    path.write_text(
        "from ductwork import pipeline, step\n\n"
        "@step\ndef shout(word: str) -> str:\n"
        "    print('saying', word)\n    return word.upper()\n\n"
        "@pipeline\ndef flow():\n"
        "    return shout('a'), shout.named('loud_b')('b')\n"
    )
    store = str(tmp_path / "store")
    assert main(["run", f"{path}:flow", "--store", store]) == 0
    run_id = dw.runs(store=store)[0].id
    capsys.readouterr()
    assert main(["logs", run_id, "loud_b", "--store", store]) == 0
    assert "saying b" in capsys.readouterr().out
    assert main(["why", run_id, "loud_b", "--store", store]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["graph", f"{path}:flow"]) == 0
    assert '"loud_b"' in capsys.readouterr().out



FLOW = """
from ductwork import pipeline, step

@step
def shout(word: str) -> str:
    return word.upper()

LOUD = shout.named("loud_b")  # a named call kept at module level travels with the code

@pipeline
def flow():
    return shout("a"), LOUD("b"), shout.named("loud_c")("c")
"""

LOAD = """
import json, sys
from ductwork.runtime.publish import load_pipeline
pipe, record = load_pipeline("named", store=sys.argv[1])
run = pipe.run(store=sys.argv[1], progress=False)
print(json.dumps({"outputs": run.outputs, "graph": sorted(pipe.graph().nodes),
                  "cached": {s.id: s.cached for s in run.steps.values()}}))
"""


@pytest.mark.slow
def test_a_published_snapshot_keeps_the_named_ids(tmp_path):
    import json
    import subprocess
    import sys

    from ductwork.cli import load_pipeline
    from ductwork.runtime.publish import publish

    path = tmp_path / "named_flow.py"
    path.write_text(FLOW)
    store = str(tmp_path / "store")
    pipe = load_pipeline(f"{path}:flow")
    publish(pipe, "named", store=store)
    first = pipe.run(store=store, progress=False)
    path.unlink()  # the snapshot, not the file, is what runs
    out = subprocess.run([sys.executable, "-c", LOAD, store], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert loaded["outputs"] == ["A", "B", "C"] == list(first.outputs)
    assert loaded["graph"] == ["loud_b", "loud_c", "shout"]
    assert loaded["cached"] == {"shout": True, "loud_b": True, "loud_c": True}


@step
def scheduler_keys(tag: str) -> list[str]:
    """Ask the Dask scheduler, from inside a task, which tasks it holds."""
    import time

    from distributed import get_client

    time.sleep(0.5)  # the driver submits every task at once; let the dependent arrive
    return get_client().run_on_scheduler(
        lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])


@step
def size(items: list[str]) -> int:
    return len(items)


@pytest.mark.dask
def test_dask_task_keys_carry_the_named_id(dask_cluster, tmp_path):
    @pipeline
    def p():
        return size.named("counted")(scheduler_keys.named("probe")("x"))

    run = p.run(backend="dask", address=dask_cluster, shared_filesystem=True,
                store=str(tmp_path / "s"), progress=False)
    assert set(run.steps) == {"probe", "counted"} and run.outputs > 0
    keys = run.steps["probe"].output
    # The dependent was already a task on the scheduler, under its own id.
    assert any(k.startswith(f"ductwork-counted-{run.id}") for k in keys), keys


def test_the_example_in_docs_steps_runs_as_printed(tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "steps.md"
    code = "\n".join(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))
    code += "\nprint(sorted(run.steps), run.outputs)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "['best', 'evaluate', 'evaluate-2', 'evaluate_tree', 'load'] 18" in out.stdout
