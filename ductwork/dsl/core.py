"""The basic types every layer shares: errors and the ``Output`` placeholder.

This module sits at the bottom of the dependency order (``dsl`` <- ``runtime``
<- ``backends``) and imports nothing from ductwork.

An ``Output`` is what a step call returns while a pipeline body is traced: a
tiny immutable reference ``(node, name)`` to a value that exists only at run
time. Everything that would need the value now -- truth tests, ``len``,
iteration, arithmetic, formatting -- raises ``TraceError`` naming the step that
produces it and the user's line, and says what to write instead.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_INSIDE = _PACKAGE_DIR + os.sep  # a frame whose file starts with this is ductwork's own
_set = object.__setattr__


class DuctworkError(Exception):
    """Base class of every error ductwork raises on purpose."""


class TraceError(DuctworkError):
    """Something in a pipeline body cannot be known or done while it is traced."""


class DefinitionError(DuctworkError, TypeError):
    """A ``@step`` or ``@pipeline`` is declared with options that cannot work."""


class ParameterError(DuctworkError, TypeError):
    """A pipeline was given an unknown parameter, or not given a required one."""


class RunOptionError(DuctworkError, ValueError):
    """A run option (backend, max_workers, regenerate, ...) has a value that cannot work."""


class PipelineFailed(DuctworkError):
    """A run finished with at least one failed step; ``.run`` is the Run."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run


class _TraceAttributeError(TraceError, AttributeError):
    """A TraceError that still lets ``hasattr`` and ``getattr(x, n, d)`` work."""


def user_location(depth: int = 1) -> tuple[str, int]:
    """Return (file, line) of the innermost caller outside the ductwork package.

    The search starts ``depth`` frames up: a caller that knows its own callers are
    ductwork's (a traced step call) skips them.
    """
    frame = sys._getframe(depth)
    while frame is not None and frame.f_code.co_filename.startswith(_INSIDE):
        frame = frame.f_back
    if frame is None:  # pragma: no cover - only ductwork frames on the stack
        return ("<unknown>", 0)
    return (frame.f_code.co_filename, frame.f_lineno)


def format_location(location: tuple[str, int]) -> str:
    """Render a (file, line) pair the way tracebacks do."""
    file, line = location
    return f"{file}:{line}"


_BOOL_HINT = (
    "Decide inside a step (a step receives the real value), or branch on a pipeline "
    "parameter, which is a plain value while tracing."
)
_LEN_HINT = (
    "Its length is known only at run time: pass it whole to a step, or fan out over it "
    "with `some_step.map(output)`."
)
_MATH_HINT = (
    "Do the computation inside a step, e.g. `@step def add(a, b): return a + b`, "
    "and call that step in the pipeline."
)
_TEXT_HINT = "Build the text inside a step, which receives the real value."
_CALL_HINT = "It stands for a value, not a function: pass it to a step instead."
_ITEM_HINT = (
    "Select the part inside a step, or declare several outputs with "
    "`@step(outputs=(...))` and pick one by name."
)


class Output:
    """A placeholder for a step's output while a pipeline body is traced."""

    __slots__ = ("name", "node")
    node: str
    name: str

    def __init__(self, node: str, name: str) -> None:
        _set(self, "node", node)
        _set(self, "name", name)

    @property
    def key(self) -> tuple[str, str]:
        """The ``(node, name)`` pair this placeholder stands for."""
        return (self.node, self.name)

    def __repr__(self) -> str:
        if self.name == "output":
            return f"<Output of step '{self.node}'>"
        return f"<Output '{self.name}' of step '{self.node}'>"

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Output placeholders are immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Output placeholders are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Output, (self.node, self.name))

    def __copy__(self) -> Output:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Output:
        return self

    def _refuse(self, what: str, hint: str, error: type[TraceError] = TraceError) -> NoReturn:
        where = format_location(user_location())
        raise error(
            f"{what} the output of step '{self.node}' at {where}: its value does not "
            f"exist while the pipeline is traced, only when it runs. {hint}"
        )

    def __getattr__(self, attr: str) -> NoReturn:
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._refuse(f"Cannot read attribute '.{attr}' of", _ITEM_HINT, _TraceAttributeError)

    def __bool__(self) -> NoReturn:
        self._refuse("Cannot test the truth of", _BOOL_HINT)

    def __len__(self) -> NoReturn:
        self._refuse("Cannot take len() of", _LEN_HINT)

    def __iter__(self) -> NoReturn:
        self._refuse("Cannot iterate over", _LEN_HINT)

    def __contains__(self, item: object) -> NoReturn:
        self._refuse("Cannot test membership in", _BOOL_HINT)

    def __getitem__(self, item: object) -> NoReturn:
        self._refuse(f"Cannot index [{item!r}]", _ITEM_HINT)

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse("Cannot call", _CALL_HINT)

    def __str__(self) -> NoReturn:
        self._refuse("Cannot convert to text", _TEXT_HINT)

    def __format__(self, spec: str) -> NoReturn:
        self._refuse("Cannot format", _TEXT_HINT)

    def __fspath__(self) -> NoReturn:
        self._refuse("Cannot use as a file path", _TEXT_HINT)

    def __index__(self) -> NoReturn:
        self._refuse("Cannot use as an integer", _MATH_HINT)

    def __int__(self) -> NoReturn:
        self._refuse("Cannot convert to int", _MATH_HINT)

    def __float__(self) -> NoReturn:
        self._refuse("Cannot convert to float", _MATH_HINT)

    def __hash__(self) -> int:
        return hash((Output, self.node, self.name))

    def __eq__(self, other: object) -> NoReturn:  # type: ignore[override]
        self._refuse("Cannot compare", _BOOL_HINT)

    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__  # type: ignore[assignment]


class _ThawedOutput(Output):
    """An ``Output`` open to assignment, for a moment: see ``new_output``."""

    __slots__ = ()
    __init__ = object.__init__  # type: ignore[assignment]
    # Both, or the slot they share stays Python's and a store goes through a call.
    __setattr__ = object.__setattr__  # type: ignore[assignment]
    __delattr__ = object.__delattr__  # type: ignore[assignment]


def new_output(node: str, name: str) -> Output:
    """``Output(node, name)``, made as a trace makes one per step call.

    Filled by plain stores, then made an ``Output`` (the same slots, so CPython allows
    the class change): a third of what ``Output(...)`` costs, whose ``__init__`` has
    to go past the refusing ``__setattr__`` field by field (``slotted.thawed``).
    """
    out = _ThawedOutput()
    out.node = node
    out.name = name
    out.__class__ = Output
    return out


def _refuse_math(symbol: str) -> Any:
    def refuse(self: Output, *args: Any) -> NoReturn:
        self._refuse(f"Cannot apply '{symbol}' to", _MATH_HINT)

    return refuse


for _name, _symbol in {
    "add": "+", "sub": "-", "mul": "*", "matmul": "@", "truediv": "/", "floordiv": "//",
    "mod": "%", "pow": "**", "lshift": "<<", "rshift": ">>", "and": "&", "xor": "^", "or": "|",
}.items():
    for _form in ("__{}__", "__r{}__", "__i{}__"):
        setattr(Output, _form.format(_name), _refuse_math(_symbol))
for _name, _symbol in {"neg": "unary -", "pos": "unary +", "abs": "abs()", "invert": "~",
                       "round": "round()", "divmod": "divmod()", "rdivmod": "divmod()"}.items():
    setattr(Output, f"__{_name}__", _refuse_math(_symbol))
del _name, _symbol, _form


class Outputs(tuple):
    """The several outputs of one step call: unpack it, or pick ``res.name`` / ``res[i]``."""

    __slots__ = ()

    def __new__(cls, outputs: tuple[Output, ...]) -> Outputs:
        return super().__new__(cls, outputs)

    @property
    def names(self) -> tuple[str, ...]:
        """The declared output names, in order."""
        return tuple(o.name for o in self)

    def __getattribute__(self, attr: str) -> Any:
        # An output's name wins over the tuple's own members, as a NamedTuple field does:
        # `res.count`, `res.index` and `res.names` are outputs when the step declares them.
        if not attr.startswith("_"):
            for out in tuple.__iter__(self):
                if out.name == attr:
                    return out
        return tuple.__getattribute__(self, attr)

    def __getattr__(self, attr: str) -> Output:
        if attr.startswith("__"):
            raise AttributeError(attr)
        node = self[0].node if len(self) else "?"
        raise _TraceAttributeError(
            f"Step '{node}' has no output named '{attr}' "
            f"(at {format_location(user_location())}); its outputs are "
            f"{', '.join(repr(o.name) for o in self)}."
        )

    def __repr__(self) -> str:
        node = self[0].node if len(self) else "?"
        return f"<Outputs {', '.join(o.name for o in self)} of step '{node}'>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Outputs, (tuple(self),))

    def __bool__(self) -> NoReturn:
        node = self[0].node if len(self) else "?"
        where = format_location(user_location())
        raise TraceError(
            f"Cannot test the truth of the outputs of step '{node}' at {where}: their "
            f"values do not exist while the pipeline is traced. {_BOOL_HINT}"
        )
