"""Check keyword options against a callable's signature before anything runs.

One mechanism for every option sbiplug passes on: simulator, estimator, diagnostic and target
factories, and a trainer's ``train()`` / ``build_posterior()`` (sbi annotates these). Each key
must be a parameter of the callable (else: the closest name and the accepted ones), required
parameters must be given, and each value must fit the parameter's annotation (``int``, ``float``,
``str``, ``bool``, ``None``, unions, ``Literal``, sequences, mappings, callables, classes).

Ranges come from an :class:`~sbiplug.toolkit.constraints.Interval` in ``Annotated[...]`` when
the factory declares one, else from name conventions (:data:`NAME_CONVENTIONS`): ints that are
counts or sizes (``num_*``, ``*_size``, ``*_features``, ``*_epochs``, ``dim``, ...) must be
positive, ``seed`` non-negative, learning rates and ``*_scale`` positive, ``*_fraction`` in
(0, 1). Floats must be finite unless the parameter's default is not. Elements of a sequence of
numbers (``hidden_features = [64, 64]``) follow their parameter's range. What an annotation
cannot tell (an unresolvable name, a protocol, ``**kwargs``) is left to the callable.
"""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import math
import numbers
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from sbiplug.toolkit.constraints import Interval, NonNegative, Positive, Probability
from sbiplug.toolkit.validation import OptionError

__all__ = [
    "NAME_CONVENTIONS",
    "InvalidOptionError",
    "check_call_options",
    "check_value",
    "resolved_annotations",
]

_COUNT_SUFFIXES = (
    "size|features|epochs|layers|blocks|transforms|bins|components|runs|samples|atoms|steps"
    "|dim|draws|chains|workers|simulations|observations|units|heads"
)
NAME_CONVENTIONS: tuple[tuple[re.Pattern[str], type, Interval], ...] = (
    (
        re.compile(rf"^(num|max_num|min_num|n)_|_({_COUNT_SUFFIXES})$|^({_COUNT_SUFFIXES})$"),
        int,
        Positive,
    ),
    (re.compile(r"^seed$"), int, NonNegative),
    (re.compile(r"^(learning_rate|lr)$|_scale$"), float, Positive),
    (re.compile(r"_fraction$"), float, Probability),
)
"""(name pattern, number type, range): the range of an option whose annotation declares none."""


class InvalidOptionError(OptionError, TypeError):
    """An option that is unknown, missing, of the wrong type or out of range.

    Both a :class:`TypeError` (as a bad keyword argument is) and a
    :class:`~sbiplug.toolkit.OptionError` (a :class:`ValueError`).
    """


def check_call_options(
    function: Callable[..., Any],
    options: Mapping[str, Any],
    *,
    owner: str,
    fixed: Mapping[str, Any] | None = None,
    partial: bool = False,
) -> None:
    """Raise :class:`InvalidOptionError` when ``function(**fixed, **options)`` would not fit.

    Arguments:
        function: The callable the options go to (a class checks its ``__init__``).
        options: What the user gave, by name.
        owner: What the options belong to, first in the message (``"estimator 'npe'"``).
        fixed: Arguments sbiplug passes itself (``prior=``); not checked, not suggested.
        partial: Whether missing required parameters are fine (they are given later).
    """
    fixed = dict(fixed or {})
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    parameters = signature.parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    accepted = [
        name
        for name, p in parameters.items()
        if name not in fixed and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    for key in options:
        if not isinstance(key, str) or (key not in accepted and not open_ended) or key in fixed:
            close = difflib.get_close_matches(str(key), accepted, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ";"
            raise InvalidOptionError(
                f"{owner}: unknown option {key!r}{hint} accepted options: "
                f"{', '.join(accepted) or 'none'}"
            )
    if not partial:
        missing = [
            name
            for name, p in parameters.items()
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and name not in fixed
            and name not in options
        ]
        if missing:
            raise InvalidOptionError(
                f"{owner}: option {missing[0]!r} is required (accepted options: "
                f"{', '.join(accepted)})"
            )
    hints = resolved_annotations(function, signature)
    for key, value in options.items():
        parameter = parameters.get(key)
        if parameter is None:
            continue
        problem = check_value(key, value, hints.get(key, Any), default=parameter.default)
        if problem:
            raise InvalidOptionError(f"{owner}: {key} must be {problem}")


def check_value(
    name: str, value: Any, annotation: Any, *, default: Any = inspect.Parameter.empty
) -> str | None:
    """What is wrong with ``value`` for a parameter ``name: annotation = default``, or None.

    Returns:
        ``"<expected>, got <value> (<type>)"`` when the value does not fit, else ``None``.
    """
    if value is default and default is not inspect.Parameter.empty:
        return None  # the default, passed explicitly, whatever its annotation says
    if _matches(annotation, value):
        problem = _range_problem(name, value, annotation, default)
        if problem is None:
            return None
        return f"{problem}, got {_shown(value)}"
    message = f"{_describe(annotation, name)}, got {_shown(value)} ({_kind(value)})"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, _literal_strings(annotation), n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
    return message


# -- annotations ------------------------------------------------------------------------------


def resolved_annotations(
    function: Callable[..., Any], signature: inspect.Signature | None = None
) -> dict[str, Any]:
    """``function``'s annotations by parameter, resolved; what cannot be resolved is ``Any``."""
    signature = signature or inspect.signature(function)
    target = function.__init__ if inspect.isclass(function) else function  # type: ignore[misc]
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # a TYPE_CHECKING-only name: resolve what can be
        pass
    namespace = getattr(inspect.unwrap(target), "__globals__", {})
    resolved: dict[str, Any] = {}
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, dict(namespace), {})  # the callable's own source
            except Exception:
                annotation = Any
        resolved[name] = Any if annotation is parameter.empty else annotation
    return resolved


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.Collection,
    collections.abc.Iterable,
    collections.abc.MutableSequence,
)
_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def _matches(annotation: Any, value: Any) -> bool:
    annotation = _strip(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    if _is_union(annotation):
        return any(_matches(arm, value) for arm in typing.get_args(annotation))
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, (str, os.PathLike))
    if origin in _SEQUENCES:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_matches, args, value))
        return not args or all(_matches(args[0], item) for item in value)
    if origin in _MAPPINGS:
        if not isinstance(value, Mapping):
            return False
        if len(args) != 2:
            return True
        return all(_matches(args[0], k) and _matches(args[1], v) for k, v in value.items())
    if origin is collections.abc.Callable or annotation is collections.abc.Callable:
        return callable(value)
    if origin is type:
        return isinstance(value, type)
    if isinstance(annotation, type):
        try:
            return isinstance(value, annotation)
        except TypeError:  # a protocol that cannot be checked at runtime
            return True
    return True  # a TypeVar, a string left unresolved, a construct this check does not know


def _literal_strings(annotation: Any) -> list[str]:
    """The string values of every ``Literal`` in ``annotation``."""
    annotation = _strip(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return [arg for arg in typing.get_args(annotation) if isinstance(arg, str)]
    if _is_union(annotation):
        return [text for arm in typing.get_args(annotation) for text in _literal_strings(arm)]
    return []


def _constraint(annotation: Any) -> Interval | None:
    """The first :class:`Interval` declared in ``Annotated[...]`` anywhere in ``annotation``."""
    if typing.get_origin(annotation) is typing.Annotated:
        for item in annotation.__metadata__:
            if isinstance(item, Interval):
                return item
        annotation = typing.get_args(annotation)[0]
    for arm in typing.get_args(annotation):
        found = _constraint(arm)
        if found is not None:
            return found
    return None


def _convention(name: str, integer: bool) -> Interval | None:
    for pattern, number_type, interval in NAME_CONVENTIONS:
        if (number_type is int) == integer and pattern.search(name):
            return interval
    return None


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, numbers.Real)]
    return [value] if isinstance(value, numbers.Real) else []


def _range_problem(name: str, value: Any, annotation: Any, default: Any) -> str | None:
    declared = _constraint(annotation)
    may_be_infinite = isinstance(default, float) and not math.isfinite(default)
    for number in _numbers(value):
        if isinstance(number, bool):
            continue
        integer = isinstance(number, numbers.Integral)
        if not integer and not math.isfinite(float(number)) and not may_be_infinite:
            return (declared or _convention(name, integer=False) or Interval()).describe(False)
        interval, as_int = declared, integer
        if interval is None and integer:
            interval = _convention(name, integer=True)
        if interval is None:  # an int where a float is expected counts as a float
            interval, as_int = _convention(name, integer=False), False
        if interval is not None and not interval.contains(float(number)):
            described = interval.describe(as_int)
            return (
                f"made of {_plural(described)}" if isinstance(value, (list, tuple)) else described
            )
    return None


# -- messages ---------------------------------------------------------------------------------


def _describe(annotation: Any, name: str, declared: Interval | None = None) -> str:
    declared = declared or _constraint(annotation)
    annotation = _strip(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if _is_union(annotation):
        arms = [arm for arm in typing.get_args(annotation) if arm is not type(None)]
        described = " or ".join(_describe(arm, name, declared) for arm in arms)
        return described + (" or None" if len(arms) < len(typing.get_args(annotation)) else "")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if annotation is bool:
        return "true or false"
    if annotation in (int, float):
        interval = declared or _convention(name, annotation is int) or Interval()
        return interval.describe(integer=annotation is int)
    if annotation is str:
        return "a string"
    if origin in _SEQUENCES:
        if args and args[-1] is not Ellipsis and origin is tuple:
            items = ", ".join(_describe(arg, name, declared) for arg in args)
            return f"an array of {len(args)} ({items})"
        item = f" of {_plural(_describe(args[0], name, declared))}" if args else ""
        return f"an array{item}"
    if origin in _MAPPINGS:
        return "a table"
    if origin is collections.abc.Callable or annotation is collections.abc.Callable:
        return "a callable"
    if isinstance(annotation, type):
        module = annotation.__module__.split(".")[0]
        prefix = f"{module}." if module not in ("builtins", "sbiplug") else ""
        return f"a {prefix}{annotation.__qualname__}"
    return str(annotation)


def _plural(described: str) -> str:
    """``"a positive int"`` -> ``"positive ints"``, ``"a finite number in (0, 1)"`` -> ..."""
    for article in ("a ", "an "):
        described = described.removeprefix(article)
    return re.sub(r"\b(int|number|string|callable|table)\b", r"\1s", described, count=1)


def _kind(value: Any) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."
