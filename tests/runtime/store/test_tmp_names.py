"""Temp-file names of a local store: unique across threads and forked processes."""

from __future__ import annotations

import os
import threading

from ductwork.runtime.store.files import _TMP_NAMES


def test_names_are_unique_across_threads():
    names: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [_TMP_NAMES.next() for _ in range(2000)]
        with lock:
            names.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(names)) == len(names) == 8000


def test_a_forked_child_never_repeats_its_parents_names():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next names, to the parent
        os.close(read)
        os.write(write, "\n".join(_TMP_NAMES.next() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    parent = {_TMP_NAMES.next() for _ in range(3)}
    with os.fdopen(read) as f:
        child = set(f.read().split("\n"))
    os.waitpid(pid, 0)
    assert len(child) == 3 and not parent & child
