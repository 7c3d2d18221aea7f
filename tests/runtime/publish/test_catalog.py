"""Versions, defaults and state of published pipelines, on real stores."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import ductwork as dw
from ductwork.runtime.publish import (
    PublishedNotFound,
    PublishError,
    disable,
    enable,
    get_pipeline,
    list_pipelines,
    load_pipeline,
    publish,
    set_default,
)


def test_versions_count_up_and_identical_code_keeps_its_version(make_flow, store):
    one, two, three = make_flow(1), make_flow(2), make_flow(3)
    first = one.publish(name="train", description="first", store=store)
    assert isinstance(first, dw.PublishedPipeline)
    assert (first.name, first.version, first.default) == ("train", 1, True)
    assert first.description == "first" and first.created.endswith("+00:00")
    assert [publish(p, "train", store=store).version for p in (two, three)] == [2, 3]
    again = publish(one, "train", description="other words", store=store)
    assert (again.version, again.digest, again.description) == (1, first.digest, "first")
    assert publish(three, "train", store=store).version == 3
    assert get_pipeline("train", store)["versions"] == [1, 2, 3]


def test_the_name_defaults_to_the_pipelines_and_must_be_a_plain_name(make_flow, store):
    assert make_flow().publish(store=store).name == "flow"
    with pytest.raises(PublishError, match="1-128 letters"):
        make_flow().publish(name="../escape", store=store)


def test_the_record_says_where_the_code_came_from(make_flow, store):
    pipe = make_flow()
    pub = pipe.publish(name="train", store=store)
    record = get_pipeline("train", store)["records"][0]
    assert record["digest"] == pub.digest and record["version"] == 1
    assert record["pipeline"] == f"{pipe.fn.__module__}.flow"
    assert record["source_file"] == pipe.fn.__code__.co_filename
    assert record["ductwork_version"] == dw.__version__
    assert record["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert list(record["parameters"]["properties"]) == ["x", "b"]


def test_the_default_moves_and_disable_enable_flip(make_flow, store):
    one, two = make_flow(1), make_flow(2)
    for pipe in (one, two):
        publish(pipe, "train", store=store)
    summary = {"name": "train", "description": "", "default_version": 1, "versions": [1, 2],
               "enabled": True}
    assert list_pipelines(store) == [summary]
    set_default("train", 2, store)
    assert list_pipelines(store)[0]["default_version"] == 2
    assert publish(make_flow(3), "train", store=store).default is False  # v3: not moved
    assert publish(two, "train", store=store).default is True  # v2, the default
    disable("train", store)
    assert get_pipeline("train", store)["enabled"] is False
    enable("train", store)
    assert get_pipeline("train", store) | {"records": None} == {
        **summary, "default_version": 2, "versions": [1, 2, 3], "records": None}


def test_unknown_names_and_versions_say_what_exists(make_flow, store):
    publish(make_flow(), "train", store=store)
    with pytest.raises(PublishedNotFound, match="published pipelines: train") as caught:
        get_pipeline("nightly", store)
    assert (caught.value.name, caught.value.version) == ("nightly", None)
    with pytest.raises(PublishedNotFound, match="has no version 7; its versions: 1"):
        set_default("train", 7, store)
    with pytest.raises(PublishedNotFound, match="its versions: 1"):
        load_pipeline("train", 2, store)
    for change in (disable, enable):
        with pytest.raises(PublishedNotFound):
            change("nightly", store)
    assert list_pipelines(store)[0]["name"] == "train"


def test_an_empty_store_lists_nothing(store):
    assert list_pipelines(store) == []


def test_load_gives_the_default_or_the_asked_version(make_flow, store):
    for factor in (1, 2):
        publish(make_flow(factor), "train", store=store)
    pipe, record = load_pipeline("train", store=store)
    assert record["version"] == 1
    assert pipe.run(store="memory://", progress=False).outputs == {"y": 3}
    set_default("train", 2, store)
    assert load_pipeline("train", store=store)[1]["version"] == 2
    pipe, _ = load_pipeline("train", 1, store=store)
    assert pipe.run(x=5, store="memory://", progress=False).outputs == {"y": 6}


def test_concurrent_threads_never_lose_or_share_a_version(make_flow, store):
    pipes = [make_flow(factor) for factor in range(8)]
    got: list = []
    start = threading.Barrier(len(pipes) + 2)

    def go(pipe):
        start.wait()
        got.append(publish(pipe, "train", store=store))

    threads = [threading.Thread(target=go, args=(p,)) for p in [*pipes, pipes[0], pipes[1]]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    found = get_pipeline("train", store)
    assert found["versions"] == list(range(1, 9))
    digests = [r["digest"] for r in found["records"]]
    assert len(set(digests)) == 8  # each code once: the twins agreed on one version
    by_digest = {r["digest"]: r["version"] for r in found["records"]}
    assert all(by_digest[p.digest] == p.version for p in got) and len(got) == 10


@pytest.mark.slow
def test_concurrent_processes_never_lose_or_share_a_version(tmp_path, flow_file):
    store = str(tmp_path / "store")
    files = [flow_file(factor) for factor in range(6)]
    twice = [*files, files[0], files[0]]
    procs = [subprocess.Popen([sys.executable, "-m", "ductwork", "publish", f"{f}:flow",
                               "--name", "train", "--store", store],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in twice]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    found = get_pipeline("train", store)
    assert found["versions"] == list(range(1, 7))
    assert len({r["digest"] for r in found["records"]}) == 6
    said = [out.split()[3] for out, _ in outs]  # "published train version N ..."
    assert sorted(set(said)) == [str(v) for v in range(1, 7)]
    assert said[0] == said[-1] == said[-2]  # the same file: one version
