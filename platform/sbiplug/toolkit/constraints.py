"""Range constraints on numeric options, declared in a factory's annotations.

sbiplug checks every option of a simulator, estimator, diagnostic or target factory (and of a
trainer's ``train()`` / ``build_posterior()``) against the callable's signature before anything
runs. The type comes from the annotation; the range from an :class:`Interval` in
``typing.Annotated``, which overrides the name conventions of :mod:`sbiplug.option_checks`::

    def make_thing(
        *,
        width: Annotated[int, Positive] = 8,
        rate: Annotated[float, Probability] = 0.5,
        offset: Annotated[int, Unconstrained] = 0,
    ): ...

For ints, ``Positive`` means ``>= 1``. Floats must be finite unless the default is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Interval", "NonNegative", "Positive", "Probability", "Unconstrained"]


@dataclass(frozen=True)
class Interval:
    """The values a numeric option may take: ``[minimum, maximum]``, either end optional/open.

    Arguments:
        minimum, maximum: The bounds; ``None`` for none.
        exclusive_minimum, exclusive_maximum: Whether the bound itself is excluded.
    """

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (NaN never does)."""
        if math.isnan(value):
            return False
        low, high = self.minimum, self.maximum
        if low is not None and (value < low or (self.exclusive_minimum and value == low)):
            return False
        return not (
            high is not None and (value > high or (self.exclusive_maximum and value == high))
        )

    def describe(self, integer: bool) -> str:
        """``"a positive int"``, ``"a finite number in (0, 1)"``, ..."""
        low, high = self.minimum, self.maximum
        if integer:
            if high is None and low == 0:
                return "a positive int" if self.exclusive_minimum else "a non-negative int"
            if high is None and low is None:
                return "an int"
            if high is None:
                return f"an int {'>' if self.exclusive_minimum else '>='} {low:g}"
        number = "an int" if integer else "a finite number"
        if low is not None and high is not None:
            left = "(" if self.exclusive_minimum else "["
            right = ")" if self.exclusive_maximum else "]"
            return f"{number} in {left}{low:g}, {high:g}{right}"
        if low is not None:
            if low == 0 and self.exclusive_minimum and not integer:
                return "a positive finite number"
            return f"{number} {'>' if self.exclusive_minimum else '>='} {low:g}"
        if high is not None:
            return f"{number} {'<' if self.exclusive_maximum else '<='} {high:g}"
        return number


Positive = Interval(0, exclusive_minimum=True)
NonNegative = Interval(0)
Probability = Interval(0, 1, exclusive_minimum=True, exclusive_maximum=True)
Unconstrained = Interval()
