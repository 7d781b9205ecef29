"""The option checks: names, types and ranges from a callable's signature and annotations."""

from __future__ import annotations

import inspect
import math
from typing import Annotated, Any, Literal

import numpy as np
import pytest

import sbiplug
from sbiplug.option_checks import (
    InvalidOptionError,
    check_call_options,
    check_value,
    resolved_annotations,
)
from sbiplug.registry import diagnostics, estimators, simulators, targets
from sbiplug.toolkit import OptionError, Positive, Probability, Unconstrained


def _factory(
    *,
    hidden_features: int | None = None,
    num_layers: int = 2,
    learning_rate: float = 1e-3,
    validation_fraction: float = 0.1,
    kind: Literal["fast", "slow"] = "fast",
    hidden_layers: tuple[int, ...] = (8, 8),
    offset: Annotated[int, Unconstrained] = 0,
    level: Annotated[float, Probability] = 0.5,
    limit: float = math.inf,
    seed: int | None = None,
) -> None:
    """A factory whose options cover every rule of the checks."""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hidden_featurs": 3}, "unknown option 'hidden_featurs'; did you mean 'hidden_features'?"),
        ({"hidden_features": "wide"}, "hidden_features must be a positive int or None"),
        ({"hidden_features": -4}, "hidden_features must be a positive int, got -4"),
        ({"hidden_features": 2.5}, "hidden_features must be a positive int or None"),
        ({"hidden_features": True}, "hidden_features must be a positive int or None"),
        ({"num_layers": 0}, "num_layers must be a positive int, got 0"),
        ({"learning_rate": "fast"}, "learning_rate must be a positive finite number"),
        ({"learning_rate": -1e-3}, "learning_rate must be a positive finite number"),
        ({"learning_rate": math.nan}, "learning_rate must be a positive finite number, got nan"),
        ({"validation_fraction": 1.0}, "validation_fraction must be a finite number in (0, 1)"),
        ({"kind": "fastest"}, "kind must be one of 'fast', 'slow'"),
        ({"hidden_layers": [8, -1]}, "hidden_layers must be made of positive ints, got [8, -1]"),
        ({"hidden_layers": "8,8"}, "hidden_layers must be an array of positive ints"),
        ({"level": 1.5}, "level must be a finite number in (0, 1), got 1.5"),
        ({"seed": -1}, "seed must be a non-negative int, got -1"),
    ],
)
def test_options_are_checked_against_names_annotations_and_conventions(options, message):
    with pytest.raises(InvalidOptionError) as error:
        check_call_options(_factory, options, owner="thing 'x'")
    text = str(error.value)
    assert message in text and text.startswith("thing 'x': ") and "\n" not in text
    assert isinstance(error.value, TypeError) and isinstance(error.value, OptionError)


def test_values_that_fit_pass():
    check_call_options(
        _factory,
        {
            "hidden_features": 64,
            "num_layers": np.int64(3),
            "learning_rate": 1,  # an int is a number
            "kind": "slow",
            "hidden_layers": [16, 16, 16],  # TOML has arrays, no tuples
            "offset": -7,  # Unconstrained overrides nothing here but is accepted
            "level": 0.01,
            "limit": math.inf,  # the default is infinite, so infinity is allowed
            "seed": 0,
        },
        owner="thing 'x'",
    )


def test_a_declared_range_overrides_the_name_conventions():
    def factory(
        *, num_layers: Annotated[int, Unconstrained] = 0, gain: Annotated[float, Positive] = 1.0
    ):
        return None

    check_call_options(factory, {"num_layers": -3}, owner="f")
    with pytest.raises(InvalidOptionError, match="gain must be a positive finite number"):
        check_call_options(factory, {"gain": 0.0}, owner="f")


def test_required_options_and_open_signatures():
    def needs(*, width: int, **rest: Any) -> None:
        return None

    with pytest.raises(InvalidOptionError, match="option 'width' is required"):
        check_call_options(needs, {}, owner="f")
    check_call_options(needs, {"width": 2, "anything": "goes"}, owner="f")  # **rest takes it
    check_call_options(needs, {}, owner="f", partial=True)


def test_the_defaults_of_every_registered_factory_pass_their_own_checks():
    """No annotation in the built-ins or installed plugins contradicts its own default."""
    checked = 0
    for registry in (simulators, estimators, diagnostics, targets):
        for spec in registry().values():
            factory = spec.load()
            hints = resolved_annotations(factory)
            for name, parameter in inspect.signature(factory).parameters.items():
                if parameter.default is parameter.empty or name == "prior":
                    continue
                annotation = hints.get(name, Any)
                problem = check_value(name, parameter.default, annotation, default=object())
                assert problem is None, (spec.name, name, problem)
                checked += 1
    assert checked > 50


def test_sbi_train_and_build_posterior_are_checked_from_their_signatures():
    prior = sbiplug.make_simulator("two_moons").prior
    trainer = sbiplug.make_estimator("npe", prior, show_progress_bars=False)
    with pytest.raises(InvalidOptionError, match="max_num_epochs must be a positive int, got -1"):
        check_call_options(trainer.train, {"max_num_epochs": -1}, owner="npe", partial=True)
    with pytest.raises(InvalidOptionError, match="sample_with must be one of 'mcmc'"):
        check_call_options(trainer.build_posterior, {"sample_with": "mcm"}, owner="npe")
