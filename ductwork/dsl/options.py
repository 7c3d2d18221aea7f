"""Step options and environments: frozen, validated when the decorator runs.

A bad option is a mistake in the user's source, so it is reported when the
module is imported (at decoration time), naming the step and the option, not
half-way through a run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from ductwork.dsl.binding import VAR_KEYWORD, parameters
from ductwork.dsl.core import DefinitionError
from ductwork.dsl.hints import NO_HINT, arguments, origin, return_hint
from ductwork.dsl.slotted import Frozen, fill

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

SINGLE_OUTPUT = "output"


def _str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class Environment(Frozen):
    """What a step needs installed: a base image, pip and apt packages, variables.

    Only the docker backend builds it into an image (tagged by its hash, and
    reused); in-process backends use the current interpreter. It is part of a
    step's cache key (``@step(env=Environment(...))``).

    base_image : str, default None (ductwork's image for this Python)
        The image to build on; it must run ``python`` of this client's minor.
    pip : list of str, default ()
        pip requirement specifiers, like ``["scikit-learn==1.5.2"]``.
    apt : list of str, default ()
        Debian packages to install with apt.
    python : str, default None
        The Python version the step needs, like ``"3.12"``; part of the key. No
        image is chosen by it: step code travels by cloudpickle, so the image's
        Python must be this client's minor version, which is checked.
    env : dict of str to str, default {}
        Environment variables set in the container.
    """

    __slots__ = ("base_image", "pip", "apt", "python", "env")
    base_image: str | None
    pip: tuple[str, ...]
    apt: tuple[str, ...]
    python: str | None
    env: tuple[tuple[str, str], ...]

    def __init__(self, base_image: str | None = None, pip: Iterable[str] | str | None = (),
                 apt: Iterable[str] | str | None = (), python: str | None = None,
                 env: Mapping[str, str] | Iterable[tuple[str, str]] | None = ()) -> None:
        fill(self, base_image, _str_tuple(pip), _str_tuple(apt), python,
             tuple(sorted(dict(env or {}).items())))
        for field, values in (("pip", self.pip), ("apt", self.apt)):
            for value in values:
                if not isinstance(value, str) or not value.strip():
                    raise DefinitionError(
                        f"Environment({field}=...) takes package specifiers as strings, "
                        f"got {value!r}."
                    )


class StepOptions(Frozen):
    """The options of one ``@step``.

    ``retries``, ``timeout`` and ``compute`` change how a step is run, not what
    it returns, so they are kept out of the cache key; ``cache_version``,
    ``env``, ``ignore_inputs``, ``hash_paths`` and ``env_vars`` are part of it.
    ``env_vars`` names the environment variables whose values (or their absence)
    go into the key; the others are not in it (docs/caching.md).
    """

    __slots__ = ("name", "outputs", "cache", "cache_version", "retries", "timeout", "compute",
                 "env", "ignore_inputs", "hash_paths", "env_vars")
    name: str
    outputs: tuple[str, ...]
    cache: bool
    cache_version: str | None
    retries: int
    timeout: float | None
    compute: str | None
    env: Environment | None
    ignore_inputs: tuple[str, ...]
    hash_paths: tuple[str, ...]
    env_vars: tuple[str, ...]

    def __init__(self, name: str, outputs: tuple[str, ...], cache: bool = True,
                 cache_version: str | None = None, retries: int = 0,
                 timeout: float | None = None, compute: str | None = None,
                 env: Environment | None = None, ignore_inputs: tuple[str, ...] = (),
                 hash_paths: tuple[str, ...] = (), env_vars: tuple[str, ...] = ()) -> None:
        fill(self, name, outputs, cache, cache_version, retries, timeout, compute, env,
             ignore_inputs, hash_paths, env_vars)

    @property
    def multiple(self) -> bool:
        """Whether the step declares more than one named output."""
        return self.outputs != (SINGLE_OUTPUT,)


OPTION_NAMES = StepOptions.__slots__

_ENV_VAR = r"[A-Za-z_][A-Za-z0-9_]*"  # compiled at first use (re caches it), not at import


def _fail(step: str, message: str) -> NoReturn:
    raise DefinitionError(f"@step '{step}': {message}")


def outputs_from_annotation(fn: Callable[..., Any]) -> tuple[str, ...] | None:
    """Return output names declared by a ``tuple[...]`` or NamedTuple return annotation."""
    ret = return_hint(fn)  # NO_HINT also for unresolvable forward references
    if ret is NO_HINT:
        return None
    if isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
        return tuple(ret._fields)
    if origin(ret) is tuple:
        args = arguments(ret)
        if len(args) >= 2 and args[-1] is not Ellipsis:
            return tuple(f"output_{i}" for i in range(len(args)))
    return None


def make_options(fn: Callable[..., Any], options: dict[str, Any]) -> StepOptions:
    """Validate the keyword options given to ``@step`` and freeze them."""
    name = options.get("name") or fn.__name__
    if not isinstance(name, str) or not name.isidentifier():
        _fail(str(name), "name= must be a Python identifier, like the function name.")
    for key in options:
        if key not in OPTION_NAMES:
            import difflib  # only for this error's suggestion

            close = difflib.get_close_matches(key, OPTION_NAMES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            _fail(name, f"unknown option '{key}'.{hint} Known options: {', '.join(OPTION_NAMES)}.")

    def check(key: str, ok: bool, expected: str) -> None:
        if key in options and not ok:
            _fail(name, f"option {key}= must be {expected}, got {options[key]!r}.")

    cache = options.get("cache", True)
    check("cache", isinstance(cache, bool), "True or False")
    retries = options.get("retries", 0)
    check("retries", type(retries) is int and retries >= 0, "a whole number >= 0")
    timeout = options.get("timeout")
    check(
        "timeout",
        timeout is None or (isinstance(timeout, int | float) and not isinstance(timeout, bool)
                            and timeout > 0),
        "a number of seconds > 0, or None",
    )
    version = options.get("cache_version")
    check("cache_version", version is None or isinstance(version, str | int), "a string")
    compute = options.get("compute")
    check("compute", compute is None or (isinstance(compute, str) and compute), "a name")
    env = options.get("env")
    check("env", env is None or isinstance(env, Environment), "a ductwork.Environment(...)")

    params = parameters(fn)
    ignore = options.get("ignore_inputs", ())
    check("ignore_inputs", _is_str_seq(ignore), "a list of argument names")
    ignore = _str_tuple(ignore)
    named = {p for p, kind, _ in params if kind != VAR_KEYWORD}
    takes_kwargs = any(kind == VAR_KEYWORD for _, kind, _ in params)
    for arg in ignore:
        if arg not in named and not takes_kwargs:
            import inspect  # for the signature this error shows

            _fail(name, f"ignore_inputs names '{arg}', which is not an argument of "
                        f"{fn.__name__}{inspect.signature(fn)}.")
    hash_paths = options.get("hash_paths", ())
    check("hash_paths", _is_str_seq(hash_paths, allow_paths=True), "a list of paths")
    env_vars = options.get("env_vars", ())
    check("env_vars", _is_str_seq(env_vars) and not isinstance(env_vars, str),
          'a list of environment variable names, like ["MODEL_DIR"]')
    env_vars = _str_tuple(env_vars)
    for var in env_vars:
        if not re.fullmatch(_ENV_VAR, var):
            _fail(name, f"env_vars names {var!r}, which is not an environment variable name "
                        "(letters, digits and '_', not starting with a digit).")
    if len(set(env_vars)) != len(env_vars):
        _fail(name, f"env_vars repeats a name: {env_vars!r}.")

    return StepOptions(
        name=name,
        outputs=_resolve_outputs(fn, name, options.get("outputs")),
        cache=cache,
        cache_version=None if version is None else str(version),
        retries=retries,
        timeout=None if timeout is None else float(timeout),
        compute=compute,
        env=env,
        ignore_inputs=ignore,
        hash_paths=tuple(str(p) for p in _str_tuple(hash_paths)),
        env_vars=env_vars,
    )


def _is_str_seq(value: Any, allow_paths: bool = False) -> bool:
    import os

    kinds: tuple[type, ...] = (str, os.PathLike) if allow_paths else (str,)
    if isinstance(value, kinds):
        return True
    return isinstance(value, Sequence | set | frozenset) and all(
        isinstance(v, kinds) for v in value
    )


def _resolve_outputs(fn: Callable[..., Any], name: str, declared: Any) -> tuple[str, ...]:
    from_annotation = outputs_from_annotation(fn)
    if declared is None:
        return from_annotation or (SINGLE_OUTPUT,)
    if isinstance(declared, str) or not isinstance(declared, Sequence) or not declared:
        _fail(name, f"outputs= must be a tuple of output names, like ('train', 'test'), "
                    f"got {declared!r}.")
    names = tuple(declared)
    for out in names:
        if not isinstance(out, str) or not out.isidentifier() or out.startswith("_"):
            _fail(name, f"output name {out!r} must be a Python identifier not starting with '_'.")
    if len(set(names)) != len(names):
        _fail(name, f"outputs= repeats a name: {names!r}.")
    if len(names) == 1:
        _fail(name, "outputs= needs at least two names; a step with one output needs none.")
    if from_annotation is not None and len(from_annotation) != len(names):
        _fail(name, f"outputs= declares {len(names)} outputs but the return annotation "
                    f"has {len(from_annotation)}.")
    return names

