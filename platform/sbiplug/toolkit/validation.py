"""Validation of numeric options: one exception type, one-line messages.

Every check names the option (and, with ``owner=``, what it belongs to), says what was expected
and shows what was given: ``TRADE.fit: steps must be a positive int, got 0``. A value of the
wrong type and a value out of range both raise :class:`OptionError`, a :class:`ValueError`.
``bool`` is never accepted as a number (``True`` is not a count).
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "OptionError",
    "check_float",
    "check_int",
    "check_positive",
    "check_positive_int",
    "check_probability",
]


class OptionError(ValueError):
    """An option has the wrong type or lies outside its range; raised before any work."""


def check_int(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    owner: str | None = None,
) -> int:
    """``value`` as an ``int`` within ``[minimum, maximum]`` (either bound optional).

    Arguments:
        name: The option's name, as the user spells it.
        value: What was given; Python and NumPy integers pass, ``bool`` and floats do not.
        minimum, maximum: Inclusive bounds.
        owner: What the option belongs to (``"TRADE.fit"``, ``"simulator 'sir'"``), put first.

    Returns:
        ``int(value)``.

    Raises:
        OptionError: naming the option, the expected range and the value.
    """
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    valid = is_int
    if valid and minimum is not None and value < minimum:
        valid = False
    if valid and maximum is not None and value > maximum:
        valid = False
    if not valid:
        raise OptionError(_message(owner, name, _describe_int(minimum, maximum), value, is_int))
    return int(value)  # type: ignore[arg-type]


def check_positive_int(name: str, value: object, *, owner: str | None = None) -> int:
    """``value`` as an ``int >= 1`` (a count, a size, a number of steps)."""
    return check_int(name, value, minimum=1, owner=owner)


def check_float(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    owner: str | None = None,
) -> float:
    """``value`` as a finite ``float`` within the given bounds.

    Arguments:
        name: The option's name.
        value: What was given; ints and floats (Python or NumPy) pass, ``bool`` does not.
        minimum, maximum: Bounds, inclusive unless ``exclusive_minimum`` /
            ``exclusive_maximum``.
        owner: What the option belongs to, put first in the message.

    Returns:
        ``float(value)``.

    Raises:
        OptionError: for a non-number, NaN, an infinity or a value out of range.
    """
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if is_real else math.nan  # type: ignore[arg-type]
    valid = is_real and math.isfinite(number)
    if valid and minimum is not None:
        valid = number > minimum if exclusive_minimum else number >= minimum
    if valid and maximum is not None:
        valid = number < maximum if exclusive_maximum else number <= maximum
    if not valid:
        expected = _describe_float(minimum, maximum, exclusive_minimum, exclusive_maximum)
        raise OptionError(_message(owner, name, expected, value, is_real))
    return number


def check_positive(name: str, value: object, *, owner: str | None = None) -> float:
    """``value`` as a finite ``float > 0`` (a scale, a rate, a concentration)."""
    return check_float(name, value, minimum=0.0, exclusive_minimum=True, owner=owner)


def check_probability(
    name: str, value: object, *, closed: bool = False, owner: str | None = None
) -> float:
    """``value`` as a float in ``(0, 1)`` (a level, a fraction), or ``[0, 1]`` if ``closed``."""
    return check_float(
        name,
        value,
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=not closed,
        exclusive_maximum=not closed,
        owner=owner,
    )


def _describe_int(minimum: int | None, maximum: int | None) -> str:
    if maximum is not None:
        low = "-inf" if minimum is None else str(minimum)
        return f"an int in [{low}, {maximum}]"
    if minimum == 1:
        return "a positive int"
    if minimum == 0:
        return "a non-negative int"
    return "an int" if minimum is None else f"an int >= {minimum}"


def _describe_float(
    minimum: float | None, maximum: float | None, open_low: bool, open_high: bool
) -> str:
    if minimum is not None and maximum is not None:
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        return f"a finite number in {left}{minimum:g}, {maximum:g}{right}"
    if minimum is not None:
        return f"a finite number {'>' if open_low else '>='} {minimum:g}"
    if maximum is not None:
        return f"a finite number {'<' if open_high else '<='} {maximum:g}"
    return "a finite number"


def _message(owner: str | None, name: str, expected: str, value: object, right_type: bool) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = f"{shown[:57]}..."
    if not right_type:
        shown = f"{shown} ({type(value).__name__})"
    prefix = f"{owner}: " if owner else ""
    return f"{prefix}{name} must be {expected}, got {shown}"
