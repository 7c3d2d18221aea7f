"""Cache keys, and why a step was a hit or ran.

A step's key is ``hash_tagged("StepKey", components)`` over named
components: the code fingerprint, ``cache_version``, the output names, one
digest per input argument (an upstream output counts by its artifact digest,
so a large value is never re-read to be hashed), the fingerprint of each class
an input value is made of (``input_class:<arg>:<class>``: a ``predict(model)``
step reruns when ``Model.predict`` changes; for an upstream output the class
names were recorded in its ref when it was written, see ``classes``), the
environment, and the
content of ``hash_paths``, and the value (or absence) of each variable named by
``env_vars``. ``retries``, ``timeout`` and ``compute`` change how
a step runs, not what it returns, so they are not components.

The components of every key are kept with the step run; ``explain`` compares
them with the previous run of the same step and says what changed. The
fingerprint's own parts (``code:fn:mod.helper`` ...) are kept too, so a
change is traced to the helper that changed, not just "the code".
"""

from __future__ import annotations

import os

from ductwork.runtime import caches
from ductwork.runtime.keys.classes import classes_in, recorded, recorded_kind, resolve
from ductwork.runtime.keys.errors import CacheKeyError, UnhashableValue
from ductwork.runtime.keys.fingerprint import diff_components, fingerprint, library_fingerprint
from ductwork.runtime.keys.hashing import hash_str_pairs, hash_tagged, hash_value, new_hasher
from ductwork.runtime.keys.origin import class_home
from ductwork.runtime.keys.shown import PREFIX as SHOWN_PREFIX
from ductwork.runtime.status import Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CacheKeyError", "diff", "explain", "finish_key", "hash_path", "input_components",
    "key_basis", "shown", "step_key",
]  # fmt: skip


def input_components(step: Any, arguments: dict[str, Any]) -> dict[str, str]:
    """Digest each argument (refs stand for upstream outputs) that is not ignored,
    and the code of the classes its value is made of."""
    components = {}
    ignored = step.options.ignore_inputs
    for name, value in arguments.items():
        if name in ignored:
            continue
        try:
            components[f"input:{name}"] = hash_value(value)
            if type(value) in _ATOMS:  # a map's items, mostly: made of no class
                continue
            names = recorded(value)
            if names is not None and not names:  # an upstream output made of no class
                continue
            for cls, digest in _classes(value, names).items():
                components[f"input_class:{name}:{cls}"] = digest
        except UnhashableValue as exc:
            raise CacheKeyError(exc.describe(step.name, name)) from None
    return components


# Values of these exact types are made of no class whose code could change them.
_ATOMS = frozenset({int, float, str, bytes, bool, type(None), complex})


def input_classes(value: Any) -> dict[str, str]:
    """The fingerprint of each class a value (or the value a ref stands for) is made of."""
    return _classes(value, recorded(value))


def _classes(value: Any, names: tuple[str, ...] | None) -> dict[str, str]:
    """``input_classes`` of a value whose recorded class names (``recorded``) are known."""
    if names is None:
        return {f"{class_home(c)}.{c.__qualname__}": fingerprint(c).digest
                for c in classes_in(value)}
    return dict(_recorded_class(name) for name in names)


# "module:qualname" -> (component name, digest), for classes that are not user code
_LIBRARY_CLASSES = caches.cache("keys.recorded_library_classes", maxsize=1024)


def _recorded_class(name: str) -> tuple[str, str]:
    """The component name and fingerprint of a class recorded as ``module:qualname``."""
    found = _LIBRARY_CLASSES.get(name)
    if found is not None:
        return found
    kind = recorded_kind(name)
    if kind != "user":
        # By name, so that a process which never imported the module (the driver serving
        # hits, a fresh worker) keys it as one that fitted the model did.
        digest = library_fingerprint(name.partition(":")[0], kind).digest
        return _LIBRARY_CLASSES.put(name, (name.replace(":", "."), digest))
    cls = resolve(name)
    if cls is None:  # not importable here: counted by name, as recorded
        return name.replace(":", "."), hash_tagged("ClassName", name)
    return f"{class_home(cls)}.{cls.__qualname__}", fingerprint(cls).digest


def step_key(step: Any, inputs: dict[str, str], whole: bool = False,
             environment: str | None = None) -> tuple[str, dict[str, str]]:
    """Return ``(key, components)`` for a step called with inputs of these digests.

    ``whole`` is for a map element, which stores a multi-output return value as one.
    ``environment`` is what the backend runs the step in, when it is more than the
    declared ``Environment`` -- for containers, the image's digest, not its tag.
    """
    return finish_key(key_basis(step, whole, environment), inputs)


def key_basis(step: Any, whole: bool = False,
              environment: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The components of a step's key that do not depend on its inputs, and its code parts.

    They are computed where the step's source is (the driver); a worker that only
    learns the input digests finishes the key with ``finish_key``.
    """
    try:
        code = fingerprint(step.fn)
    except UnhashableValue as exc:  # a class attribute whose __ductwork_hash__ raises, say
        raise CacheKeyError(f"Step {step.name!r}: its code cannot be fingerprinted: {exc}") from exc
    options = step.options
    memo_key = (id(options), whole, environment)
    found = _BASES.get(memo_key)
    if found is not None and found[0] is options and found[1] is code:
        return found[2]
    components = {
        "code": code.digest,
        "cache_version": options.cache_version or "",
        "outputs": "output" if whole else ",".join(options.outputs),
    }
    if environment is not None:
        components["env"] = environment
    elif options.env is not None:
        components["env"] = hash_value(options.env)
    for path in options.hash_paths:
        components[f"path:{path}"] = hash_path(step.name, path)
    for var in options.env_vars:
        # A digest, not the value: the key is stored and shown, the value may be a secret.
        components[f"env_var:{var}"] = hash_tagged("EnvVar", os.environ.get(var))
    parts = {f"code:{name}": digest for name, digest in code.components.items()}
    if not (options.hash_paths or options.env_vars):  # those are read afresh every time
        _BASES.put(memo_key, (options, code, (components, parts)))
    return components, parts


# (id(options), whole, environment) -> (options, code fingerprint, basis): a step's basis
# is made of its options (frozen) and its fingerprint, which ``fingerprint`` returns as the
# same object while the code it reaches is unchanged. Both are checked by identity, so an
# edited helper (a new fingerprint) or new options make a new basis. Read it, do not
# change it: every run of the step shares it.
_BASES = caches.memo("keys.step_bases", maxsize=4096)


def finish_key(basis: tuple[dict[str, str], dict[str, str]],
               inputs: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Combine ``key_basis`` with the input digests into ``(key, components)``."""
    fixed, parts = basis
    components = {**fixed, **inputs}
    key = hash_str_pairs("StepKey", sorted(components.items()))
    components.update(parts)
    return key, components


# (path, size, mtime) -> digest of a hash_paths file
_PATH_MEMO = caches.cache("keys.hash_path_files", maxsize=4096)


def _hash_file(path: str) -> str:
    stat = os.stat(path)
    # A file whose size and mtime are unchanged is not re-read within a process.
    memo = (path, stat.st_size, stat.st_mtime_ns)
    digest = _PATH_MEMO.get(memo)
    if digest is None:
        hasher = new_hasher()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        digest = _PATH_MEMO.put(memo, hasher.hexdigest())
    return digest


def hash_path(step: str, path: str) -> str:
    """Digest the content of a file, or of every file below a directory, by relative name."""
    root = os.fspath(path)
    if os.path.isfile(root):
        return hash_tagged("File", _hash_file(root))
    if not os.path.isdir(root):
        raise CacheKeyError(
            f"Step '{step}': hash_paths names '{path}', which does not exist (relative paths "
            f"are taken from the working directory, {os.getcwd()}). Fix the path or remove it."
        )
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            entries.append((os.path.relpath(full, root).replace(os.sep, "/"), _hash_file(full)))
    return hash_tagged("Dir", entries)


_LABELS = {
    "code": None,  # explained through its code:* parts
    "cache_version": "cache_version",
    "outputs": "the declared outputs",
    "env": "the environment",
}


def _describe_component(name: str) -> str:
    if name.startswith("input:"):
        return f"input '{name[6:]}'"
    if name.startswith("path:"):
        return f"the content of hash path '{name[5:]}'"
    if name.startswith("input_class:"):
        arg, _, cls = name[12:].partition(":")
        return f"class {cls} of input '{arg}'"
    if name.startswith("env_var:"):
        return f"environment variable {name[8:]}"
    return _LABELS.get(name) or name


def shown(components: dict[str, str], name: str) -> str:
    """Component ``name`` as ``why`` shows it: an input's small value when one was
    recorded (``keys/shown``), else the first 12 characters of its digest."""
    if name.startswith("input:"):
        value = components.get(SHOWN_PREFIX + name[6:])
        if value is not None:
            return value
    return components[name][:12]


def diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Sentences naming each key component that differs between two step runs."""
    lines = []
    for name in sorted(set(old) | set(new)):
        if (name.startswith(("code", SHOWN_PREFIX))  # values are shown, never compared
                or old.get(name) == new.get(name)):
            continue
        what = _describe_component(name)
        if name not in old:
            lines.append(f"{what} is new")
        elif name not in new:
            lines.append(f"{what} is gone")
        elif name == "cache_version":
            lines.append(f"cache_version changed from {old[name]!r} to {new[name]!r}")
        else:
            lines.append(f"{what} changed ({shown(old, name)} -> {shown(new, name)})")
    if old.get("code") != new.get("code"):
        code_old = {k[5:]: v for k, v in old.items() if k.startswith("code:")}
        code_new = {k[5:]: v for k, v in new.items() if k.startswith("code:")}
        lines.extend(diff_components(code_old, code_new) or ["the step's code changed"])
    return lines


def explain(record: Any, previous: tuple[str, str | None, dict[str, str] | None] | None) -> str:
    """Say why a step run was a cache hit or ran, against the previous run of that step."""
    if record.status == Status.SKIPPED:
        return "not run: a step it depends on failed"
    if record.key is None:
        if record.status == Status.FAILED and record.error:
            return "ran and failed before its cache key was known:\n" + record.error
        return "ran: caching is off for this step (cache=False)"
    if record.cached:
        producer = getattr(record, "cached_from", None)
        if producer:
            return (f"cache hit: its outputs were made by run {producer} under the same key; "
                    "the step did not run")
        where = f" (last run: {previous[0]})" if previous else ""
        return f"cache hit: the same key was stored before{where}; the step did not run"
    note = f" ({record.note})" if getattr(record, "note", None) else ""
    if previous is None:
        return f"ran: no earlier run of this step to compare with{note}"
    run_id, key, components = previous
    if key == record.key:
        return (f"ran: same key as run {run_id}{note or ' (its stored outputs were missing)'}")
    changes = diff(components or {}, record.components or {})
    body = "\n".join(f"  - {line}" for line in changes) or "  - (no recorded component differs)"
    return f"ran: the key differs from run {run_id}{note}:\n{body}"
