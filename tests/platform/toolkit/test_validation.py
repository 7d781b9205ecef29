"""Validators: one exception type, a one-line message naming the option and the expectation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sbiplug.toolkit import (
    OptionError,
    check_float,
    check_int,
    check_positive,
    check_positive_int,
    check_probability,
)


def test_valid_values_are_returned_as_python_numbers():
    assert check_int("n", np.int64(3)) == 3 and type(check_int("n", np.int64(3))) is int
    assert check_positive_int("steps", 1) == 1
    assert check_int("epochs", 0, minimum=0) == 0
    assert check_float("weight", 2) == 2.0 and type(check_float("weight", 2)) is float
    assert check_positive("scale", np.float32(0.5)) == 0.5
    assert check_probability("alpha", 0.05) == 0.05
    assert check_probability("fraction", 1.0, closed=True) == 1.0


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (check_positive_int, 0, "steps must be a positive int, got 0"),
        (check_positive_int, 2.0, "steps must be a positive int, got 2.0 (float)"),
        (check_positive_int, True, "steps must be a positive int, got True (bool)"),
        (check_positive_int, "3", "steps must be a positive int, got '3' (str)"),
        (lambda n, v: check_int(n, v, minimum=0), -1, "steps must be a non-negative int, got -1"),
        (lambda n, v: check_int(n, v, minimum=2), 1, "steps must be an int >= 2, got 1"),
        (lambda n, v: check_int(n, v, minimum=1, maximum=4), 5, "steps must be an int in [1, 4]"),
        (check_positive, 0.0, "steps must be a finite number > 0, got 0.0"),
        (check_positive, math.inf, "steps must be a finite number > 0, got inf"),
        (check_positive, math.nan, "steps must be a finite number > 0, got nan"),
        (lambda n, v: check_float(n, v, minimum=0), -1.0, "steps must be a finite number >= 0"),
        (check_probability, 1.0, "steps must be a finite number in (0, 1), got 1.0"),
        (lambda n, v: check_probability(n, v, closed=True), 1.5, "in [0, 1], got 1.5"),
    ],
)
def test_invalid_values_raise_one_line_naming_option_and_expectation(check, value, message):
    with pytest.raises(OptionError) as error:
        check("steps", value)
    text = str(error.value)
    assert message in text and "\n" not in text


def test_one_exception_type_for_type_and_range_errors_and_it_is_a_value_error():
    errors = []
    for value in (0, 1.5, None, "x"):
        with pytest.raises(OptionError) as error:
            check_positive_int("batch_size", value)
        errors.append(error.value)
    assert all(type(e) is OptionError and isinstance(e, ValueError) for e in errors)


def test_owner_comes_first_and_long_values_are_shortened():
    with pytest.raises(OptionError, match=r"^TRADE\.fit: steps must be a positive int, got 0$"):
        check_positive_int("steps", 0, owner="TRADE.fit")
    with pytest.raises(OptionError) as error:
        check_positive_int("steps", list(range(100)))
    assert len(str(error.value)) < 120 and "..." in str(error.value)
