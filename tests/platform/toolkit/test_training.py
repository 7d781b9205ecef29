"""Trainer defaults: one device, progress-bar and tracker default for every estimator."""

from __future__ import annotations

import inspect

import pytest

import sbiplug
from sbiplug.toolkit import (
    DEFAULT_DEVICE,
    DEFAULT_SHOW_PROGRESS_BARS,
    NullTracker,
    OptionError,
    default_tracker,
    trainer_options,
)


def test_defaults_record_nothing(tmp_path):
    options = trainer_options()
    assert options["device"] == DEFAULT_DEVICE == "cpu"
    assert options["show_progress_bars"] is DEFAULT_SHOW_PROGRESS_BARS
    assert isinstance(options["tracker"], NullTracker) and options["tracker"].log_dir is None
    tracker = options["tracker"]
    tracker.log_metric("loss", 1.0, 0)
    tracker.log_metrics({"loss": 1.0})
    tracker.log_params({"a": 1})
    tracker.add_figure("f", None)
    tracker.flush()
    assert list(tmp_path.iterdir()) == []  # no ./sbi-logs


def test_log_dir_gives_tensorboard_and_a_given_tracker_is_kept(tmp_path):
    tracker = default_tracker(str(tmp_path / "logs"))
    assert not isinstance(tracker, NullTracker)
    mine = NullTracker()
    assert trainer_options(tracker=mine)["tracker"] is mine
    with pytest.raises(OptionError, match="either tracker= or log_dir="):
        trainer_options(tracker=mine, log_dir="logs")


@pytest.mark.parametrize("name", ["npe", "nle", "nre", "fmpe", "npse"])
def test_built_in_estimators_share_the_defaults(name):
    spec = sbiplug.estimators()[name]
    parameters = inspect.signature(spec.load()).parameters
    assert parameters["device"].default == DEFAULT_DEVICE
    assert parameters["show_progress_bars"].default is DEFAULT_SHOW_PROGRESS_BARS
    assert parameters["tracker"].default is None and parameters["log_dir"].default is None
