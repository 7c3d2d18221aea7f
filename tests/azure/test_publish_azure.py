"""Published pipelines in an az:// store (Azurite): versions, state, loading, concurrency."""

from __future__ import annotations

import threading

from ductwork.cli import load_pipeline as load_file
from ductwork.runtime.publish import (
    disable,
    get_pipeline,
    list_pipelines,
    load_pipeline,
    publish,
    set_default,
)

FLOW = '''
from ductwork import pipeline, step

@step
def scale(x: int) -> int:
    return x * {factor}

@pipeline
def flow(x: int = 2):
    return scale(x)
'''


def _flow(tmp_path, factor: int):
    path = tmp_path / f"az_flow_{factor}_{tmp_path.name[-6:].replace('-', '_')}.py"
    path.write_text(FLOW.format(factor=factor))
    return load_file(f"{path}:flow")


def test_versions_state_and_load_on_azure(azurite, tmp_path):
    store = azurite.url
    one, two = _flow(tmp_path, 10), _flow(tmp_path, 20)
    assert publish(one, "train", store=store).version == 1
    assert publish(two, "train", store=store).version == 2
    assert publish(one, "train", store=store).version == 1
    set_default("train", 2, store)
    disable("train", store)
    assert list_pipelines(store) == [{"name": "train", "description": "", "default_version": 2,
                                      "versions": [1, 2], "enabled": False}]
    pipe, record = load_pipeline("train", store=store)
    assert record["version"] == 2
    assert pipe.run(x=3, store="memory://", progress=False).outputs == 60
    names = {b.name for b in azurite.container_client().list_blobs()}
    assert {"published/train/1.json", "published/train/2.json",
            "published/train/state.json"} <= names


def test_concurrent_publishers_on_azure_never_lose_or_share_a_version(azurite, tmp_path):
    store = azurite.url
    pipes = [_flow(tmp_path, f) for f in range(1, 7)]
    start = threading.Barrier(len(pipes))

    def go(pipe):
        start.wait()
        publish(pipe, "train", store=store)

    threads = [threading.Thread(target=go, args=(p,)) for p in pipes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = get_pipeline("train", store)
    assert found["versions"] == [1, 2, 3, 4, 5, 6]
    assert len({r["digest"] for r in found["records"]}) == 6
