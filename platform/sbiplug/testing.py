"""Conformance kit and pytest plugin for sbiplug plugin authors.

Installed as the ``sbiplug`` pytest plugin (``pytest11`` entry point), it offers two fixtures
(and :func:`isolated_plugin_manager`, the same isolation as a context manager):

- ``plugin_manager``: a fresh :class:`~sbiplug.plugins.PluginManager` (built-ins only) that
  ``sbiplug.make_*`` use for the duration of one test; the previous manager comes back after.
- ``register_plugin``: registers a throw-away plugin (a module, class or object with hook
  implementations) into that manager and returns its :class:`~sbiplug.plugins.PluginInfo`.

and three conformance checks that any plugin's contributions should pass, each in seconds:

- :func:`check_simulator` — shapes, prior, seeds, batching, validation, reference posterior.
- :func:`check_estimator` — trains on a tiny problem through ``make_estimator`` and checks
  sampling, seeds, ``log_prob``, sbi's ``run_sbc`` and save/load.
- :func:`check_diagnostic` — result type, finite scalars, netCDF round trip, plotting.

A failed check raises ``AssertionError`` naming the contribution and what went wrong; a passed
one returns what it measured. Importing this module is cheap (no torch): pytest loads it in
every session of a project that has sbiplug installed.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from torch import Tensor

    from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
    from sbiplug.plugins import PluginInfo, PluginManager
    from sbiplug.simulator import Simulator

__all__ = [
    "DEFAULT_TRAIN_OPTIONS",
    "check_diagnostic",
    "check_estimator",
    "check_simulator",
    "isolated_plugin_manager",
    "plugin_manager",
    "register_plugin",
]

DEFAULT_TRAIN_OPTIONS: dict[str, Any] = {
    "max_num_epochs": 10,
    "training_batch_size": 50,
    "show_train_summary": False,
}
"""What :func:`check_estimator` trains with unless ``train_options`` say otherwise."""

_SMALL_SIMULATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "gaussian_linear": {"dim": 2},
    "gaussian_linear_uniform": {"dim": 2},
}


# -- fixtures ---------------------------------------------------------------------------------


@contextmanager
def isolated_plugin_manager(*, load_entry_points: bool = False) -> Iterator[PluginManager]:
    """Install a fresh plugin manager as ``sbiplug``'s cached one; restore the old one after.

    Arguments:
        load_entry_points: Also load installed entry-point plugins (built-ins always load).
    """
    from sbiplug.plugins import PluginManager, reset_plugin_manager

    manager = PluginManager(load_entry_points=load_entry_points)
    previous = reset_plugin_manager(manager)
    try:
        yield manager
    finally:
        reset_plugin_manager(previous)


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    """A fresh plugin manager with the built-in plugins only, installed for one test.

    Entry-point plugins are not loaded, so what is installed does not change the test; add
    plugins with the ``register_plugin`` fixture.
    """
    with isolated_plugin_manager() as manager:
        yield manager


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Callable[..., PluginInfo]:
    """``register_plugin(plugin, name=None, version="")`` into the test's plugin manager.

    Returns the plugin's ``PluginInfo``; a plugin that fails to load comes back with
    ``status == "failed"`` and the reason in ``error`` (and a warning), as in real use.
    """
    counter = iter(range(1_000_000))

    def register(plugin: object, name: str | None = None, *, version: str = "") -> PluginInfo:
        if name is None:
            name = getattr(plugin, "__name__", None) or f"test_plugin_{next(counter)}"
        return plugin_manager.register(plugin, name, version=version)

    return register


# -- helpers ----------------------------------------------------------------------------------


def _fail(subject: str, problem: str) -> AssertionError:
    return AssertionError(f"{subject}: {problem}")


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch and NumPy (sbi draws from both) and restore their states afterwards."""
    import numpy as np
    import torch

    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def _resolve_simulator(
    simulator: str | Simulator, options: dict[str, Any] | None
) -> tuple[Simulator, str]:
    from sbiplug.registry import make_simulator
    from sbiplug.simulator import Simulator

    if isinstance(simulator, Simulator):
        if options:
            raise ValueError("simulator_options apply only when the simulator is given by name")
        return simulator, f"simulator {simulator.name!r}"
    if not isinstance(simulator, str):
        raise TypeError(
            f"simulator must be a registered name or an sbiplug.Simulator, got "
            f"{type(simulator).__name__}"
        )
    built = make_simulator(simulator, **(options or {}))
    if not isinstance(built, Simulator):
        raise _fail(f"simulator {simulator!r}", f"built a {type(built).__name__}")
    return built, f"simulator {simulator!r}"


def _call(subject: str, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``; an exception becomes an AssertionError naming ``what``."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        raise _fail(subject, f"{what} raised {type(error).__name__}: {error}") from error


def _all_finite(value: Tensor) -> bool:
    import torch

    return bool(torch.isfinite(value).all())


# -- simulators -------------------------------------------------------------------------------


def check_simulator(
    simulator: str | Simulator, *, num_simulations: int = 20, seed: int = 0
) -> dict[str, Any]:
    """Check a simulator against the :class:`~sbiplug.simulator.Simulator` contract.

    Checks: the prior is a torch distribution sbi accepts with event shape
    ``(num_parameters,)``; ``simulate`` returns finite float tensors of shape
    ``(n, *observation_shape)``; the same seed gives the same data and simulating a batch equals
    simulating its rows one after another from one generator; bad ``theta`` (wrong shape,
    outside a bounded prior support) raises ``ValueError``; ``reference_posterior``, when
    implemented, returns seeded draws of shape ``(n, num_parameters)`` inside the support.

    Arguments:
        simulator: A registered name or a :class:`~sbiplug.simulator.Simulator`.
        num_simulations: Rows simulated.
        seed: Seed of every draw.

    Returns:
        What was measured: names, shapes, seconds per simulation, whether a reference
        posterior was checked.
    """
    import numpy as np
    import torch
    from torch.distributions import Distribution

    from sbiplug.specs import MANIFOLDS

    simulator, subject = _resolve_simulator(simulator, None)
    names = tuple(simulator.parameter_names)
    if not names or len(set(names)) != len(names):
        raise _fail(subject, f"parameter_names must be unique and non-empty, got {names}")
    if simulator.parameter_manifold not in MANIFOLDS:
        raise _fail(subject, f"parameter_manifold {simulator.parameter_manifold!r} unknown")

    prior = simulator.prior
    if not isinstance(prior, Distribution):
        raise _fail(subject, f"prior is a {type(prior).__name__}, not a torch Distribution")
    theta = _call(subject, "sample_prior", simulator.sample_prior, num_simulations, seed=seed)
    if tuple(theta.shape) != (num_simulations, len(names)):
        raise _fail(
            subject,
            f"prior draws have shape {tuple(theta.shape)}; expected "
            f"({num_simulations}, {len(names)}) for parameters {list(names)}",
        )
    if not torch.equal(theta, simulator.sample_prior(num_simulations, seed=seed)):
        raise _fail(subject, "sample_prior(seed=...) is not reproducible")
    if not _all_finite(prior.log_prob(theta)):
        raise _fail(subject, "prior.log_prob is not finite at prior draws")
    try:
        from sbi.utils.user_input_checks import process_prior

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            process_prior(prior)
    except Exception as error:
        raise _fail(subject, f"sbi rejects the prior: {type(error).__name__}: {error}") from error

    start = time.perf_counter()
    x = _call(subject, "simulate", simulator.simulate, theta, seed=seed)
    seconds = (time.perf_counter() - start) / num_simulations
    expected = (num_simulations, *simulator.observation_shape)
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != expected:
        raise _fail(subject, f"simulate returned shape {tuple(x.shape)}; expected {expected}")
    if not x.is_floating_point():
        raise _fail(subject, f"simulate returned dtype {x.dtype}; expected a float tensor")
    if not _all_finite(x):
        raise _fail(subject, f"simulate returned {int((~torch.isfinite(x)).sum())} NaN/inf values")
    if not torch.equal(x, simulator.simulate(theta, seed=seed)):
        raise _fail(subject, "simulate(theta, seed=s) is not reproducible")
    rows = min(num_simulations, 5)
    generator = np.random.default_rng(seed)
    looped = torch.cat(
        [
            _call(subject, "simulate", simulator.simulate, theta[i : i + 1], seed=generator)
            for i in range(rows)
        ]
    )
    batched = simulator.simulate(theta[:rows], seed=seed)
    if not torch.allclose(looped, batched, rtol=1e-5, atol=1e-6):
        raise _fail(
            subject,
            "simulating a batch differs from simulating its rows one after another from the "
            f"same generator (largest difference {float((looped - batched).abs().max()):.3g})",
        )
    single = _call(subject, "simulate(1-D theta)", simulator.simulate, theta[0], seed=seed)
    if tuple(single.shape) != tuple(simulator.observation_shape):
        raise _fail(
            subject,
            f"simulate(1-D theta) returned shape {tuple(single.shape)}; expected "
            f"{tuple(simulator.observation_shape)}",
        )
    _expect_value_error(subject, "theta of the wrong shape", simulator, theta[:, :-1])
    outside = _point_outside_support(prior, theta[:1])
    if outside is not None:
        _expect_value_error(subject, "theta outside the prior support", simulator, outside)

    has_reference = simulator.has_reference_posterior
    if has_reference:
        draws = _call(
            subject, "reference_posterior", simulator.reference_posterior, x[0], 10, seed=seed
        )
        if tuple(draws.shape) != (10, len(names)):
            raise _fail(
                subject,
                f"reference_posterior returned shape {tuple(draws.shape)}; expected "
                f"(10, {len(names)})",
            )
        if not torch.equal(draws, simulator.reference_posterior(x[0], 10, seed=seed)):
            raise _fail(subject, "reference_posterior(seed=...) is not reproducible")
        if not _all_finite(prior.log_prob(draws.float())):
            raise _fail(subject, "reference_posterior draws fall outside the prior support")
    return {
        "name": simulator.name,
        "parameter_names": names,
        "observation_shape": tuple(simulator.observation_shape),
        "seconds_per_simulation": seconds,
        "reference_posterior": has_reference,
    }


def _expect_value_error(subject: str, what: str, simulator: Simulator, theta: Tensor) -> None:
    try:
        simulator.simulate(theta, seed=0)
    except ValueError:
        return
    raise _fail(subject, f"simulate accepted {what} instead of raising ValueError")


def _point_outside_support(prior: Any, theta: Tensor) -> Tensor | None:
    """A parameter outside a bounded prior support, or ``None`` when the support is unbounded."""
    import torch

    for scale in (1e6, -1e6):
        candidate = theta + scale
        inside = prior.support.check(candidate)
        if not bool(torch.as_tensor(inside).all()):
            return candidate
    return None


# -- estimators -------------------------------------------------------------------------------


def check_estimator(
    name: str,
    *,
    simulator: str | Simulator = "gaussian_linear_uniform",
    simulator_options: dict[str, Any] | None = None,
    num_simulations: int = 300,
    estimator_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    posterior_options: dict[str, Any] | None = None,
    sample_options: dict[str, Any] | None = None,
    num_samples: int = 20,
    seed: int = 0,
    check_save_load: bool = True,
) -> dict[str, Any]:
    """Train a registered estimator on a tiny problem and check what sbi expects of it.

    Checks: ``make_estimator(name, prior, **estimator_options)`` builds a trainer that takes
    ``append_simulations(theta, x).train(**train_options)``; ``build_posterior()`` samples
    shape ``(num_samples, D)``; the same seed gives the same draws; ``log_prob`` is finite
    where the spec declares ``has_density``; :func:`sbi.diagnostics.run_sbc` accepts the
    posterior and draws through its ``sample_batched`` (shape ``(num_samples, B, D)``, checked
    by sbi); and, with ``check_save_load``,
    :func:`sbiplug.persistence.save_trainer` / ``load_trainer`` restore a trainer whose
    posterior gives the same draws for the same seed.

    Arguments:
        name: The registered estimator name.
        simulator: A registered name or a Simulator (built-in linear Gaussians are made 2-D
            unless ``simulator_options`` say otherwise).
        simulator_options: Options for ``make_simulator`` when ``simulator`` is a name.
        num_simulations: Training simulations.
        estimator_options: Options for ``make_estimator`` (``show_progress_bars=False`` added).
        train_options: Options for ``train`` on top of :data:`DEFAULT_TRAIN_OPTIONS`.
        posterior_options: Options for ``build_posterior`` (e.g. short MCMC settings).
        sample_options: Options for ``posterior.sample`` (e.g. fewer diffusion steps);
            ``run_sbc`` samples with the posterior's defaults.
        num_samples: Posterior draws per check.
        seed: Seed of simulations, training and sampling.
        check_save_load: Also check the save/load round trip.

    Returns:
        What was measured: seconds for training and sampling, shapes, ``log_prob`` summary,
        SBC ranks' shape, whether save/load was checked.
    """
    import torch

    from sbiplug.registry import estimators, make_estimator

    subject = f"estimator {name!r}"
    spec = estimators().get(name)
    if spec is None:
        from sbiplug.errors import UnknownNameError

        raise UnknownNameError("estimator", name, estimators())
    if simulator_options is None and isinstance(simulator, str):
        simulator_options = _SMALL_SIMULATOR_OPTIONS.get(simulator)
    sim, _ = _resolve_simulator(simulator, simulator_options)
    options = {"show_progress_bars": False, **(estimator_options or {})}
    train_kwargs = {**DEFAULT_TRAIN_OPTIONS, **(train_options or {})}
    posterior_kwargs = dict(posterior_options or {})
    num_parameters = sim.num_parameters

    theta = sim.sample_prior(num_simulations, seed=seed)
    x = sim.simulate(theta, seed=seed)
    x_o = x[0]

    start = time.perf_counter()
    with _seeded(seed):
        trainer = _call(subject, "make_estimator", make_estimator, name, sim.prior, **options)
        for method in ("append_simulations", "train", "build_posterior"):
            if not callable(getattr(trainer, method, None)):
                raise _fail(subject, f"the trainer {type(trainer).__name__} has no {method}()")
        returned = _call(subject, "append_simulations", trainer.append_simulations, theta, x)
        if returned is not trainer:
            raise _fail(subject, "append_simulations must return the trainer itself")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not yet fully converged.*")
            _call(subject, "train", trainer.train, **train_kwargs)
        posterior = _call(subject, "build_posterior", trainer.build_posterior, **posterior_kwargs)
    train_seconds = time.perf_counter() - start

    sample_kwargs = dict(sample_options or {})
    start = time.perf_counter()
    first = _draw(posterior, num_samples, x_o, seed, subject, sample_kwargs)
    sample_seconds = time.perf_counter() - start
    if tuple(first.shape) != (num_samples, num_parameters):
        raise _fail(
            subject,
            f"posterior.sample(({num_samples},), x=x_o) has shape {tuple(first.shape)}; "
            f"expected ({num_samples}, {num_parameters})",
        )
    if not _all_finite(first):
        raise _fail(subject, "posterior draws are not finite")
    log_prob_mean = None
    if spec.has_density:
        log_prob_mean = _check_log_prob(posterior, first, x_o, subject)

    ranks_shape = _check_run_sbc(posterior, theta[:3], x[:3], num_samples, seed, subject)

    # Sampling can be slow (MCMC, diffusion): one more draw with the same seed checks
    # reproducibility, from the reloaded posterior when save/load is checked too; only a
    # mismatch costs a further draw, to tell the two failures apart.
    if check_save_load:
        restored = _save_and_reload(name, trainer, sim, options, posterior_kwargs, seed)
        again = _draw(restored, num_samples, x_o, seed, subject, sample_kwargs)
    else:
        again = _draw(posterior, num_samples, x_o, seed, subject, sample_kwargs)
    if not torch.allclose(again, first, atol=1e-5):
        repeat = _draw(posterior, num_samples, x_o, seed, subject, sample_kwargs)
        if not torch.equal(repeat, first):
            raise _fail(subject, "the same seed gave different posterior draws")
        raise _fail(
            subject,
            "after save_trainer/load_trainer the same seed gives different posterior draws "
            f"(largest difference {float((again - first).abs().max()):.3g})",
        )

    return {
        "name": name,
        "train_seconds": train_seconds,
        "sample_seconds": sample_seconds,
        "sample_shape": tuple(first.shape),
        "log_prob_mean": log_prob_mean,
        "sbc_ranks_shape": ranks_shape,
        "save_load_checked": check_save_load,
    }


def _draw(
    posterior: Any,
    num_samples: int,
    x_o: Tensor,
    seed: int,
    subject: str,
    sample_kwargs: dict[str, Any],
) -> Tensor:
    with _seeded(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _call(
            subject,
            "posterior.sample",
            posterior.sample,
            (num_samples,),
            x=x_o,
            show_progress_bars=False,
            **sample_kwargs,
        )


def _check_log_prob(posterior: Any, theta: Tensor, x_o: Tensor, subject: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values = posterior.log_prob(theta, x=x_o)
        except Exception as error:
            raise _fail(
                subject,
                "the spec declares has_density=True but posterior.log_prob failed: "
                f"{type(error).__name__}: {error} (declare has_density=False if the "
                "posterior has no density)",
            ) from error
    if tuple(values.shape) != (len(theta),):
        raise _fail(subject, f"log_prob of {len(theta)} draws has shape {tuple(values.shape)}")
    if not _all_finite(values):
        raise _fail(subject, "log_prob is not finite at the posterior's own draws")
    return float(values.mean())


def _check_run_sbc(
    posterior: Any, theta: Tensor, x: Tensor, num_samples: int, seed: int, subject: str
) -> tuple[int, ...]:
    """sbi's ``run_sbc`` accepts the posterior and samples it batched (no silent fallback)."""
    from sbi.diagnostics import run_sbc

    with _seeded(seed), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ranks, dap = run_sbc(
                theta, x, posterior, num_posterior_samples=num_samples, show_progress_bar=False
            )
        except Exception as error:
            raise _fail(
                subject,
                f"sbi.diagnostics.run_sbc rejects the posterior: {type(error).__name__}: {error}",
            ) from error
    if any("Batched sampling not implemented" in str(w.message) for w in caught):
        raise _fail(
            subject,
            "posterior.sample_batched is not implemented: sbi's run_sbc and run_tarp fall back "
            "to one sampling run per observation",
        )
    if tuple(ranks.shape) != tuple(theta.shape) or tuple(dap.shape) != tuple(theta.shape):
        raise _fail(
            subject,
            f"run_sbc gave ranks of shape {tuple(ranks.shape)} and data-averaged draws of "
            f"shape {tuple(dap.shape)}; expected {tuple(theta.shape)}",
        )
    if bool((ranks < 0).any() | (ranks > num_samples).any()):
        raise _fail(subject, f"run_sbc gave ranks outside [0, {num_samples}]")
    return tuple(ranks.shape)


def _save_and_reload(
    name: str,
    trainer: Any,
    simulator: Simulator,
    options: dict[str, Any],
    posterior_kwargs: dict[str, Any],
    seed: int,
) -> Any:
    """The posterior of ``trainer`` after a round trip through ``sbiplug.persistence``."""
    from sbiplug.persistence import load_trainer, save_trainer

    subject = f"estimator {name!r}"
    with tempfile.TemporaryDirectory(prefix="sbiplug-check-") as folder:
        try:
            save_trainer(trainer, Path(folder), estimator=name, options=options)
            restored = load_trainer(Path(folder), simulator.prior)
        except Exception as error:
            raise _fail(
                subject, f"save_trainer/load_trainer failed: {type(error).__name__}: {error}"
            ) from error
    with _seeded(seed):
        return _call(
            subject,
            "build_posterior after load_trainer",
            restored.build_posterior,
            **posterior_kwargs,
        )


# -- diagnostics ------------------------------------------------------------------------------


def check_diagnostic(name: str, context: DiagnosticContext, **options: Any) -> DiagnosticResult:
    """Run a registered diagnostic and check its result.

    Checks: ``run`` returns a :class:`~sbiplug.diagnostic.DiagnosticResult` named ``name``
    with finite scalars (``statistic``, ``p_value``, ``threshold``, ``summary``), a boolean
    or ``None`` ``passed`` and an ``xarray.Dataset``; the result survives ``to_dataset`` ->
    netCDF on disk -> ``from_dataset`` unchanged; ``plot(ax=...)`` draws into the given axes
    and returns its figure, and the reloaded result plots on its own.

    Arguments:
        name: The registered diagnostic name.
        context: What the diagnostic runs on.
        options: Options for ``make_diagnostic``.

    Returns:
        The diagnostic's result.
    """
    import matplotlib.pyplot as plt
    import xarray as xr
    from matplotlib.figure import Figure

    from sbiplug.diagnostic import DiagnosticResult
    from sbiplug.registry import make_diagnostic

    subject = f"diagnostic {name!r}"
    diagnostic = make_diagnostic(name, **options)
    result = diagnostic.run(context)
    if not isinstance(result, DiagnosticResult):
        raise _fail(subject, f"run returned a {type(result).__name__}, not a DiagnosticResult")
    if result.name != name:
        raise _fail(subject, f"the result is named {result.name!r}")
    for key in ("statistic", "p_value", "threshold"):
        value = getattr(result, key)
        if value is not None and not (isinstance(value, float | int) and math.isfinite(value)):
            raise _fail(subject, f"{key} must be a finite float or None, got {value!r}")
    for key, value in result.summary.items():
        if not (isinstance(value, float | int) and math.isfinite(value)):
            raise _fail(subject, f"summary[{key!r}] must be a finite float, got {value!r}")
    if result.passed is not None and not isinstance(result.passed, bool):
        raise _fail(subject, f"passed must be a bool or None, got {type(result.passed).__name__}")
    if not isinstance(result.data, xr.Dataset):
        raise _fail(subject, f"data must be an xarray.Dataset, got {type(result.data).__name__}")

    with tempfile.TemporaryDirectory(prefix="sbiplug-check-") as folder:
        path = Path(folder) / f"{name}.nc"
        try:
            result.to_dataset().to_netcdf(path)
            with xr.open_dataset(path) as stored:
                reloaded = DiagnosticResult.from_dataset(stored.load())
        except Exception as error:
            raise _fail(
                subject,
                f"the result does not round-trip through netCDF: {type(error).__name__}: {error}",
            ) from error
    if reloaded.scalars() != result.scalars() or reloaded.message != result.message:
        raise _fail(
            subject,
            f"scalars changed in the netCDF round trip: {result.scalars()} -> {reloaded.scalars()}",
        )
    try:
        xr.testing.assert_allclose(reloaded.data, result.data)
    except AssertionError as error:
        raise _fail(subject, f"data changed in the netCDF round trip: {error}") from None

    figure, ax = plt.subplots()
    try:
        drawn = diagnostic.plot(result, ax=ax)
        if drawn is not figure:
            raise _fail(subject, "plot(result, ax=ax) must draw into ax and return its figure")
        if not (ax.lines or ax.collections or ax.patches or ax.images):
            raise _fail(subject, "plot(result, ax=ax) drew nothing into ax")
        own = reloaded.plot()
        if not isinstance(own, Figure):
            raise _fail(subject, f"plot() returned a {type(own).__name__}, not a Figure")
        plt.close(own)
    finally:
        plt.close(figure)
    return result
