"""The sbiplug.testing kit: fixtures isolate the plugin manager; checks catch broken plugins."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import xarray as xr
from torch.distributions import Independent, Uniform

import sbiplug
from sbiplug import DiagnosticSpec, EstimatorSpec, SimulatorSpec, hookimpl
from sbiplug.diagnostic import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.plugins import get_plugin_manager
from sbiplug.simulator import Simulator
from sbiplug.testing import (
    check_diagnostic,
    check_estimator,
    check_simulator,
    isolated_plugin_manager,
)

# -- throw-away contributions -------------------------------------------------------------------


class BoxNoise(Simulator):
    """x = theta + 0.1 N(0, I) with theta ~ U(-1, 1)^2, noise drawn row by row."""

    name = "box_noise"
    parameter_names = ("a", "b")
    observation_shape = (2,)

    @property
    def prior(self):
        return Independent(Uniform(-torch.ones(2), torch.ones(2)), 1)

    def _simulate(self, theta, rng):
        return theta + 0.1 * torch.as_tensor(rng.standard_normal(theta.shape), dtype=torch.float32)


class IgnoresSeed(BoxNoise):
    def _simulate(self, theta, rng):
        return theta + 0.1 * torch.as_tensor(np.random.default_rng().standard_normal(theta.shape))


class ColumnMajorNoise(BoxNoise):
    """Draws the batch's noise column by column: a batch differs from its rows one by one."""

    def _simulate(self, theta, rng):
        noise = rng.standard_normal((theta.shape[1], theta.shape[0])).T
        return theta + 0.1 * torch.as_tensor(noise, dtype=torch.float32)


class WrongShape(BoxNoise):
    def _simulate(self, theta, rng):
        return theta[:, :1]


class FakePosterior:
    """Draws N(x, 0.1) with torch's global generator; flaws are switched on by flags."""

    def __init__(self, *, wrong_shape=False, nan_log_prob=False, unseeded=False):
        self.wrong_shape, self.nan_log_prob, self.unseeded = wrong_shape, nan_log_prob, unseeded

    def _draws(self, shape, x):
        if self.unseeded:
            noise = torch.as_tensor(np.random.default_rng().standard_normal((*shape, *x.shape)))
        else:
            noise = torch.randn(*shape, *x.shape)
        return (x + 0.1 * noise).float()

    def sample(self, sample_shape, x, show_progress_bars=False):
        draws = self._draws(tuple(sample_shape), x)
        return draws[..., :1] if self.wrong_shape else draws

    def sample_batched(self, sample_shape, x, show_progress_bars=False):
        return self._draws(tuple(sample_shape), x)

    def log_prob(self, theta, x=None):
        values = -((theta - x) ** 2).sum(-1)
        return values * float("nan") if self.nan_log_prob else values


class FakeTrainer:
    def __init__(self, prior, show_progress_bars=False, **flaws):
        self.flaws = flaws

    def append_simulations(self, theta, x):
        return self

    def train(self, **kwargs):
        return self

    def build_posterior(self):
        return FakePosterior(**self.flaws)


class ConstantDiagnostic(Diagnostic):
    """Reports a fixed statistic; flaws are switched on by flags."""

    def __init__(self, statistic=0.5, bad_attrs=False, plot_nothing=False):
        self.statistic, self.bad_attrs, self.plot_nothing = statistic, bad_attrs, plot_nothing

    def run(self, context):
        data = xr.Dataset({"values": ("item", np.arange(3.0))}, coords={"item": [0, 1, 2]})
        if self.bad_attrs:
            data.attrs["options"] = {"nested": True}  # netCDF rejects dict attributes
        return DiagnosticResult(name=self.name, statistic=self.statistic, passed=True, data=data)

    def plot(self, result, ax=None):
        import matplotlib.pyplot as plt

        figure, ax = (ax.figure, ax) if ax is not None else plt.subplots()
        if not self.plot_nothing:
            ax.plot(result.data["values"].values)
        return figure


class ThrowAwayPlugin:
    @staticmethod
    @hookimpl
    def register_simulators():
        yield SimulatorSpec(name="box_noise", factory=BoxNoise)
        yield SimulatorSpec(name="ignores_seed", factory=IgnoresSeed)
        yield SimulatorSpec(name="column_major_noise", factory=ColumnMajorNoise)
        yield SimulatorSpec(name="wrong_shape", factory=WrongShape)

    @staticmethod
    @hookimpl
    def register_estimators():
        yield EstimatorSpec(name="fake_good", factory=FakeTrainer)
        yield EstimatorSpec(
            name="fake_wrong_shape", factory=lambda prior, **o: FakeTrainer(prior, wrong_shape=True)
        )
        yield EstimatorSpec(
            name="fake_nan_log_prob",
            factory=lambda prior, **o: FakeTrainer(prior, nan_log_prob=True),
        )
        yield EstimatorSpec(
            name="fake_no_density",
            factory=lambda prior, **o: FakeTrainer(prior, nan_log_prob=True),
            has_density=False,
        )
        yield EstimatorSpec(
            name="fake_unseeded", factory=lambda prior, **o: FakeTrainer(prior, unseeded=True)
        )

    @staticmethod
    @hookimpl
    def register_diagnostics():
        yield DiagnosticSpec(name="constant", factory=ConstantDiagnostic)
        yield DiagnosticSpec(
            name="infinite", factory=lambda: ConstantDiagnostic(statistic=float("inf"))
        )
        yield DiagnosticSpec(name="bad_attrs", factory=lambda: ConstantDiagnostic(bad_attrs=True))
        yield DiagnosticSpec(
            name="plots_nothing", factory=lambda: ConstantDiagnostic(plot_nothing=True)
        )


@pytest.fixture
def throw_away(register_plugin):
    info = register_plugin(ThrowAwayPlugin, "throw_away")
    assert info.status == "loaded", info.error
    return info


# -- fixtures -----------------------------------------------------------------------------------


def test_plugin_manager_fixture_is_fresh_and_installed(plugin_manager):
    assert get_plugin_manager() is plugin_manager
    names = {info.name for info in plugin_manager.plugins()}
    assert {"sbiplug.simulators", "sbiplug.estimators", "sbiplug.diagnostics"} <= names
    assert all(info.builtin for info in plugin_manager.plugins())  # no entry points


def test_isolation_restores_the_previous_manager():
    before = get_plugin_manager()
    with isolated_plugin_manager() as manager:
        assert get_plugin_manager() is manager is not before
    assert get_plugin_manager() is before


def test_register_plugin_contributes_through_the_public_api(throw_away):
    assert throw_away.contributions["simulators"] == (
        "box_noise",
        "ignores_seed",
        "column_major_noise",
        "wrong_shape",
    )
    assert isinstance(sbiplug.make_simulator("box_noise"), BoxNoise)
    assert sbiplug.diagnostics()["constant"].plugin == "throw_away"


def test_register_plugin_reports_a_broken_plugin(register_plugin):
    class Broken:
        @staticmethod
        @hookimpl
        def register_simulators():
            raise RuntimeError("boom")

    with pytest.warns(sbiplug.SbiplugPluginWarning, match="boom"):
        info = register_plugin(Broken, "broken")
    assert info.status == "failed" and "boom" in info.error


def test_importing_the_pytest_plugin_does_not_import_torch():
    code = "import sys, sbiplug.testing; print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.stdout.strip() == "False", output.stderr


# -- check_simulator ----------------------------------------------------------------------------


def test_check_simulator_passes_a_good_simulator(throw_away):
    report = check_simulator("box_noise")
    assert report["parameter_names"] == ("a", "b")
    assert report["observation_shape"] == (2,)
    assert report["reference_posterior"] is False


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ignores_seed", "not reproducible"),
        ("column_major_noise", "rows one after another"),
        ("wrong_shape", "returned shape"),
    ],
)
def test_check_simulator_names_the_flaw(throw_away, name, problem):
    with pytest.raises(AssertionError, match=f"simulator '{name}'.*{problem}"):
        check_simulator(name)


# -- check_estimator ----------------------------------------------------------------------------


def test_check_estimator_passes_a_good_estimator(throw_away):
    report = check_estimator("fake_good", simulator="box_noise", check_save_load=False)
    assert report["sample_shape"] == (20, 2)
    assert report["sbc_ranks_shape"] == (3, 2)
    assert np.isfinite(report["log_prob_mean"])


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("fake_wrong_shape", r"has shape \(20, 1\); expected \(20, 2\)"),
        ("fake_nan_log_prob", "log_prob is not finite"),
        ("fake_unseeded", "the same seed gave different posterior draws"),
    ],
)
def test_check_estimator_names_the_flaw(throw_away, name, problem):
    with pytest.raises(AssertionError, match=f"estimator '{name}'.*{problem}"):
        check_estimator(name, simulator="box_noise", check_save_load=False)


def test_check_estimator_skips_log_prob_without_a_density(throw_away):
    report = check_estimator("fake_no_density", simulator="box_noise", check_save_load=False)
    assert report["log_prob_mean"] is None


def test_check_estimator_rejects_unknown_names(throw_away):
    with pytest.raises(KeyError, match="did you mean 'fake_good'"):
        check_estimator("fake_god", simulator="box_noise")


# -- check_diagnostic ---------------------------------------------------------------------------


def test_check_diagnostic_passes_and_returns_the_result(throw_away):
    result = check_diagnostic("constant", DiagnosticContext())
    assert result.name == "constant" and result.statistic == 0.5


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("infinite", "statistic must be a finite float"),
        ("bad_attrs", "does not round-trip through netCDF"),
        ("plots_nothing", "drew nothing"),
    ],
)
def test_check_diagnostic_names_the_flaw(throw_away, name, problem):
    with pytest.raises(AssertionError, match=f"diagnostic '{name}'.*{problem}"):
        check_diagnostic(name, DiagnosticContext())
