"""The one lazy-registration mechanism: handlers by type, heavy libraries on first sight."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from ductwork.runtime.registry import LazyRegistrations, TypeRegistry


def _class_from(package: str, name: str = "Thing", bases: tuple[type, ...] = ()) -> type:
    return type(name, bases, {"__module__": f"{package}.sub"})


def test_a_lazy_registration_runs_once_on_first_sight_of_its_package() -> None:
    registry: TypeRegistry[str] = TypeRegistry("test")
    Thing = _class_from("fakelib_a")
    calls = []

    def registration() -> None:
        calls.append(1)
        registry.register(Thing, "thing handler")

    registry.register_lazy("fakelib_a", registration)
    assert registry.lookup(int) is None and calls == []
    assert registry.lookup(Thing) == "thing handler"
    assert registry.lookup(Thing) == "thing handler"
    assert calls == [1]


def test_a_user_subclass_of_a_library_type_triggers_the_library_registration() -> None:
    registry: TypeRegistry[str] = TypeRegistry("test")
    Base = _class_from("fakelib_b", "Base")
    Mine = type("Mine", (Base,), {"__module__": "user_code"})
    registry.register_lazy("fakelib_b", lambda: registry.register(Base, "base handler"))
    assert registry.lookup(Mine) == "base handler"  # found along the MRO


def test_a_second_thread_waits_for_the_registration_to_finish() -> None:
    lazy = LazyRegistrations()
    Thing = _class_from("fakelib_c")
    done = threading.Event()
    seen = []

    def slow() -> None:
        time.sleep(0.2)
        done.set()

    lazy.add("fakelib_c", slow)

    def look() -> None:
        lazy.load(Thing)
        seen.append(done.is_set())

    threads = [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 4


def test_a_registration_that_fails_is_tried_again() -> None:
    lazy = LazyRegistrations()
    Thing = _class_from("fakelib_d")
    attempts = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time")

    lazy.add("fakelib_d", flaky)
    try:
        lazy.load(Thing)
    except RuntimeError:
        pass
    lazy.load(Thing)
    lazy.load(Thing)
    assert attempts == [1, 1]


def test_restore_undoes_registrations_but_keeps_lazy_ones_made_since() -> None:
    registry: TypeRegistry[str] = TypeRegistry("test", {int: "int"})
    Thing = _class_from("fakelib_e")
    registry.register_lazy("fakelib_e", lambda: registry.register(Thing, "lazy"))
    saved = registry.snapshot()
    registry.register(str, "str")
    assert registry.lookup(Thing) == "lazy"
    registry.restore(saved)
    assert registry.get(str) is None and registry.get(int) == "int"
    assert registry.lookup(Thing) == "lazy"  # its registration will not run again


def test_importing_the_registries_imports_no_heavy_library() -> None:
    code = (
        "import sys, ductwork.runtime.keys.hashing, ductwork.runtime.store.serializers; "
        "print(sorted({'numpy', 'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
