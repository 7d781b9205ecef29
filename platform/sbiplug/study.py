"""Study: simulate -> train -> infer -> diagnose in one call.

A :class:`Study` names (or holds) a simulator, an estimator and diagnostics, validates all of
them before any long work, then runs the amortised workflow of simulation-based inference
(Cranmer, Brehmer & Louppe 2020, "The frontier of simulation-based inference"): simulate a
training set from the prior, train a neural estimator on it, draw posterior samples for each
observation and run the diagnostics. Every stage draws from its own seed spawned from the study
seed, so a study is reproducible bit for bit on one machine, whichever executor simulates.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug.diagnostic import DiagnosticContext, DiagnosticResult
from sbiplug.embedding_nets import (
    UNSAVED_MODULE,
    describe_embedding_net,
    resolve_embedding_nets,
)
from sbiplug.jsonable import jsonable
from sbiplug.ledger import simulator_identity
from sbiplug.option_checks import check_call_options
from sbiplug.plugins import get_plugin_manager
from sbiplug.posterior_draws import (
    draw_posterior_samples,
    is_mcmc,
    log_likelihood_at,
    log_prior_at,
    posterior_log_prob,
)
from sbiplug.registry import build, check_options, make_diagnostic, make_simulator
from sbiplug.registry import diagnostics as diagnostic_specs
from sbiplug.results import StudyResult, provenance_versions
from sbiplug.sbi_internals import allow_missing_trials, training_console
from sbiplug.simulation import FunctionSimulator, SimulationOptions, simulate_training_set
from sbiplug.simulator import Simulator, SimulatorOutputError
from sbiplug.specs import SpecError
from sbiplug.study_inputs import (
    SmallBudgetWarning,
    StudyError,
    check_folder,
    check_observations,
    check_simulated_observations,
    check_training_set,
    check_true_parameters,
    warn_small_budget,
)
from sbiplug.toolkit.rng import seeded
from sbiplug.toolkit.validation import OptionError

__all__ = ["SmallBudgetWarning", "Study", "StudyError"]

STAGES = ("simulation", "observations", "training", "sampling", "predictive", "diagnostics")


def _stage_seeds(seed: int) -> dict[str, int]:
    # below 2**30: diagnostics hand seeds (plus offsets) to scikit-learn, which wants < 2**32
    children = np.random.SeedSequence(seed).spawn(len(STAGES))
    return {
        stage: int(child.generate_state(1)[0] % 2**30)
        for stage, child in zip(STAGES, children, strict=True)
    }


def _accepts(factory: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


class Study:
    """A simulation-based inference study.

    Arguments:
        simulator: A registered name, a :class:`Simulator`, or a ``(prior, callable)`` pair.
        estimator: A registered name or a trainer factory ``factory(prior=..., **options)``.
        num_simulations: Training simulations (NaN/inf rows are dropped from these).
        diagnostics: Names to run, or a mapping name -> options. Diagnostics registered as
            ``automatic`` run too when their requirements are met.
        seed: The seed every stage's seed is spawned from.
        simulator_options: Options for a simulator given by name.
        estimator_options: Options for the estimator factory.
        train_options: Keyword arguments of ``trainer.train``.
        posterior_options: Keyword arguments of ``trainer.build_posterior``.
        simulation: Chunking, executor and checkpoint folder of the simulations.
        folder: The study folder; simulations are checkpointed in ``folder/simulations`` unless
            ``simulation.folder`` says otherwise. A run continues the finished chunks there
            only if the folder's manifest matches this study (:mod:`sbiplug.ledger`), and
            raises :class:`~sbiplug.simulation.SimulationFolderError` naming what differs.
        show_progress_bars: Whether long work shows progress bars.
    """

    def __init__(
        self,
        simulator: str | Simulator | tuple[Distribution, Callable[[Tensor], Tensor]] = "two_moons",
        estimator: str | Callable[..., Any] = "npe",
        *,
        num_simulations: int = 1000,
        diagnostics: Sequence[str] | Mapping[str, Mapping[str, Any]] = (),
        seed: int = 0,
        simulator_options: Mapping[str, Any] | None = None,
        estimator_options: Mapping[str, Any] | None = None,
        train_options: Mapping[str, Any] | None = None,
        posterior_options: Mapping[str, Any] | None = None,
        simulation: SimulationOptions | None = None,
        folder: str | os.PathLike[str] | None = None,
        show_progress_bars: bool = True,
    ) -> None:
        if isinstance(num_simulations, bool) or not isinstance(num_simulations, int):
            raise StudyError(f"num_simulations must be a positive int, got {num_simulations!r}")
        if num_simulations < 2:
            raise StudyError(f"num_simulations must be at least 2, got {num_simulations}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise StudyError(f"seed must be a non-negative int, got {seed!r}")
        warn_small_budget(num_simulations)
        self.num_simulations = num_simulations
        self.seed = seed
        self.simulator_options = dict(simulator_options or {})
        try:  # embedding nets given as {name, options} tables become modules
            self.estimator_options = resolve_embedding_nets(estimator_options or {})
        except (TypeError, ValueError, KeyError) as error:
            raise StudyError(f"estimator_options: {error}") from None
        self.train_options = dict(train_options or {})
        self.posterior_options = dict(posterior_options or {})
        self.show_progress_bars = show_progress_bars
        self.folder = check_folder(folder)
        simulation = simulation or SimulationOptions(show_progress_bars=show_progress_bars)
        if not isinstance(simulation, SimulationOptions):
            raise StudyError(
                f"simulation must be a SimulationOptions, got {type(simulation).__name__}"
            )
        if simulation.folder is None and self.folder is not None:
            simulation = _replace(simulation, folder=self.folder / "simulations")
        if not show_progress_bars:
            simulation = _replace(simulation, show_progress_bars=False)
        self.simulation = simulation
        self.simulator, self.simulator_name = self._resolve_simulator(simulator)
        self.estimator_spec, self.estimator_factory, self.estimator_name = self._resolve_estimator(
            estimator
        )
        self.diagnostic_options = self._resolve_diagnostics(diagnostics)
        self._check_estimator_options()
        self._dry_run()

    # -- validation ---------------------------------------------------------------------------

    def _resolve_simulator(self, simulator: Any) -> tuple[Simulator, str | None]:
        if isinstance(simulator, str):
            try:
                return make_simulator(simulator, **self.simulator_options), simulator
            except SpecError:
                raise  # the plugin's spec is wrong, not the study
            except (OptionError, ValueError) as error:  # the constructor refused an option
                message = str(error)
                if not message.startswith(f"simulator {simulator!r}"):
                    message = f"simulator {simulator!r}: {message}"
                raise StudyError(message) from None
        if self.simulator_options:
            raise StudyError("simulator_options apply only to a simulator given by name")
        if isinstance(simulator, Simulator):
            return simulator, None
        if isinstance(simulator, tuple) and len(simulator) == 2:
            prior, function = simulator
            if isinstance(prior, Distribution) and callable(function):
                return FunctionSimulator(prior, function), None
        raise StudyError(
            "simulator must be a registered name, an sbiplug.Simulator or a (prior, callable) "
            f"pair, got {type(simulator).__name__}"
        )

    def _resolve_estimator(self, estimator: Any) -> tuple[Any, Callable[..., Any], str | None]:
        if isinstance(estimator, str):
            spec = get_plugin_manager().get("estimators", estimator)
            manifold = self.simulator.parameter_manifold
            if manifold not in spec.manifolds:
                raise StudyError(
                    f"estimator {estimator!r} handles parameters on {', '.join(spec.manifolds)}; "
                    f"simulator {self.simulator.name!r} has parameters on {manifold!r}"
                )
            if spec.manifolds != ("euclidean",):
                self.estimator_options.setdefault("manifold", manifold)
            factory = spec.load()
            if _accepts(factory, "show_progress_bars"):
                self.estimator_options.setdefault("show_progress_bars", self.show_progress_bars)
            try:
                check_options(spec, factory, self.estimator_options, prior=self.simulator.prior)
            except TypeError as error:
                raise StudyError(str(error)) from None
            return spec, factory, estimator
        if callable(estimator):
            try:
                check_call_options(
                    estimator,
                    self.estimator_options,
                    owner="estimator factory",
                    fixed={"prior": self.simulator.prior},
                )
            except TypeError as error:
                raise StudyError(str(error)) from None
            return None, estimator, None
        raise StudyError(
            "estimator must be a registered name or a trainer factory, "
            f"got {type(estimator).__name__}"
        )

    def _resolve_diagnostics(self, diagnostics: Any) -> dict[str, dict[str, Any]]:
        if isinstance(diagnostics, str):
            diagnostics = [diagnostics]
        if isinstance(diagnostics, Mapping):
            requested = {name: dict(options or {}) for name, options in diagnostics.items()}
        else:
            requested = {name: {} for name in diagnostics}
        specs = diagnostic_specs()
        for name, options in requested.items():
            spec = get_plugin_manager().get("diagnostics", name)
            try:
                check_options(spec, spec.load(), options)
                make_diagnostic(name, **options)  # constructors check their option values
            except (TypeError, ValueError) as error:
                message = str(error)
                if not message.startswith(f"diagnostic {name!r}"):
                    message = f"diagnostic {name!r}: {message}"
                raise StudyError(message) from None
        for name, spec in specs.items():
            if spec.automatic and name not in requested:
                requested[name] = {"_automatic": True}
        return requested

    def _check_estimator_options(self) -> None:
        """Build a throw-away trainer and bind the train / posterior options to its methods."""
        label = f"estimator {self.estimator_name or 'custom'!r}"
        try:
            trainer = self._build_trainer()
        except (TypeError, ValueError) as error:
            raise StudyError(f"{label}: {error}") from None
        for method, options, key in (
            ("train", self.train_options, "train_options"),
            ("build_posterior", self.posterior_options, "posterior_options"),
        ):
            function = getattr(trainer, method, None)
            if function is None:
                raise StudyError(f"{label}: the trainer has no {method}() method")
            try:
                check_call_options(
                    function, options, owner=f"{label}: {key} do not fit {method}()", partial=True
                )
            except TypeError as error:
                raise StudyError(str(error)) from None

    def _dry_run(self) -> None:
        """Simulate two rows so a wrong output shape fails now, not after hours."""
        theta = self.simulator.sample_prior(2, seed=self.seed)
        try:
            x = self.simulator.simulate(theta, seed=self.seed)
        except SimulatorOutputError as error:
            raise SimulatorOutputError(f"2-row dry run failed: {error}") from None
        if tuple(x.shape[1:]) != tuple(self.simulator.observation_shape):
            raise SimulatorOutputError(
                f"simulator {self.simulator.name!r}: a 2-row dry run returned shape "
                f"{tuple(x.shape)}; expected {(2, *self.simulator.observation_shape)}"
            )

    def _met(self, requirement: str, has_truth: bool) -> bool:
        if requirement == "observations":
            return True  # observations are drawn from the prior when none are given
        if requirement == "true_parameters":
            return has_truth
        if requirement == "reference_posterior":
            return self.simulator.has_reference_posterior
        if requirement == "log_prob":
            return self.estimator_spec is None or self.estimator_spec.has_density
        if requirement == "log_likelihood":
            return self.simulator.has_log_likelihood
        # an embedding net is known only once the network is built: see _drop_without_embedding
        return requirement in ("embedding_net", "set_encoder")

    def _selected_diagnostics(self, has_truth: bool) -> dict[str, dict[str, Any]]:
        selected = {}
        specs = diagnostic_specs()
        for name, options in self.diagnostic_options.items():
            options = dict(options)
            automatic = options.pop("_automatic", False)
            missing = [r for r in specs[name].requires if not self._met(r, has_truth)]
            if missing and automatic:
                continue
            if missing:
                raise StudyError(
                    f"diagnostic {name!r} requires {', '.join(missing)}, which this study lacks "
                    f"(simulator {self.simulator.name!r}, estimator "
                    f"{self.estimator_name or 'custom'!r})"
                )
            selected[name] = options
            if automatic:
                selected[name]["_automatic"] = True
        return selected

    def _drop_without_embedding(
        self, selected: dict[str, dict[str, Any]], network: Any
    ) -> dict[str, dict[str, Any]]:
        """Diagnostics that need an embedding net, checked against the trained network.

        ``network`` is what the trainer's ``train()`` returned (sbi: the trained estimator).
        """
        embedding = getattr(network, "embedding_net", None)
        # sbi wraps the default identity in a z-scoring layer: learned weights make a summary net
        has_embedding = isinstance(embedding, torch.nn.Module) and any(
            parameter.requires_grad for parameter in embedding.parameters()
        )
        # a set encoder marks itself (sbiplug_context): anywhere inside the embedding net
        has_set_encoder = has_embedding and any(
            getattr(module, "sbiplug_set_encoder", False) for module in embedding.modules()
        )
        kept = {}
        specs = diagnostic_specs()
        for name, options in selected.items():
            options = dict(options)
            automatic = options.pop("_automatic", False)
            if "set_encoder" in specs[name].requires and not has_set_encoder:
                if automatic:
                    continue
                raise StudyError(
                    f"diagnostic {name!r} requires a set encoder as embedding net; the trained "
                    f"{self.estimator_name or 'custom'!r} network has none"
                )
            if "embedding_net" in specs[name].requires and not has_embedding:
                if automatic:
                    continue
                raise StudyError(
                    f"diagnostic {name!r} requires an embedding net; the trained "
                    f"{self.estimator_name or 'custom'!r} network has none (pass "
                    "estimator_options={'embedding_net': ...})"
                )
            kept[name] = options
        return kept

    def _observations(
        self, observations: Any, true_parameters: Any, num_observations: int, seed: int
    ) -> tuple[Tensor, Tensor | None]:
        simulator = self.simulator
        if true_parameters is not None:
            true_parameters = check_true_parameters(simulator, true_parameters)
        if observations is not None:
            observations = check_observations(simulator, observations)
            if true_parameters is not None and len(true_parameters) != len(observations):
                raise StudyError(
                    f"{len(true_parameters)} true_parameters for {len(observations)} observations"
                )
            return observations, true_parameters
        if true_parameters is None:
            if isinstance(num_observations, bool) or not isinstance(num_observations, int):
                raise StudyError(
                    f"num_observations must be a positive int, got {num_observations!r}"
                )
            if num_observations < 1:
                raise StudyError(f"num_observations must be positive, got {num_observations}")
            true_parameters = simulator.sample_prior(num_observations, seed=seed)
        simulated = simulator.simulate(true_parameters, seed=seed)
        return check_simulated_observations(simulator, simulated), true_parameters

    # -- the workflow -------------------------------------------------------------------------

    def run(
        self,
        observations: Tensor | None = None,
        true_parameters: Tensor | None = None,
        *,
        num_observations: int = 1,
        num_posterior_samples: int = 1000,
        num_predictive_draws: int = 100,
    ) -> StudyResult:
        """Simulate, train, sample the posterior of each observation and run the diagnostics.

        Arguments:
            observations: Observed data, shape ``(n, *observation_shape)``. When absent, they
                are simulated from ``true_parameters``, or from ``num_observations`` prior draws.
            true_parameters: Parameters behind the observations, shape ``(n, num_parameters)``.
            num_observations: Observations to draw when neither of the above is given.
            num_posterior_samples: Draws per observation (rounded up to a multiple of the number
                of MCMC chains).
            num_predictive_draws: Posterior draws to simulate posterior predictive data from,
                split evenly over the chains and rounded up to a multiple of them (0: none).

        Returns:
            The :class:`StudyResult`.
        """
        if isinstance(num_posterior_samples, bool) or not isinstance(num_posterior_samples, int):
            raise StudyError(
                f"num_posterior_samples must be a positive int, got {num_posterior_samples!r}"
            )
        if num_posterior_samples < 1:
            raise StudyError(f"num_posterior_samples must be positive, got {num_posterior_samples}")
        if (
            isinstance(num_predictive_draws, bool)
            or not isinstance(num_predictive_draws, int)
            or num_predictive_draws < 0
        ):
            raise StudyError(
                f"num_predictive_draws must be a non-negative int, got {num_predictive_draws!r}"
            )
        seeds = _stage_seeds(self.seed)
        has_truth = observations is None or true_parameters is not None
        selected = self._selected_diagnostics(has_truth)
        observations, true_parameters = self._observations(
            observations, true_parameters, num_observations, seeds["observations"]
        )
        timings: dict[str, float] = {}

        start = time.perf_counter()
        identity = None
        if self.simulation.folder is not None:  # what the folder's manifest must match
            identity = {
                **simulator_identity(self.simulator, self.simulator_name, self.simulator_options),
                "study_seed": self.seed,  # the chunks' seed is derived from it: name both
            }
        simulations = simulate_training_set(
            self.simulator,
            self.num_simulations,
            seed=seeds["simulation"],
            options=self.simulation,
            identity=identity,
        )
        timings["simulation"] = time.perf_counter() - start
        check_training_set(self.simulator, len(simulations.theta), self.num_simulations)

        start = time.perf_counter()
        with seeded(seeds["training"]):
            trainer = self._build_trainer()
            append = {}
            if not torch.isfinite(simulations.x).all() and _accepts(
                trainer.append_simulations, "exclude_invalid_x"
            ):  # rows the simulator calls valid may pad with NaN (sets of different sizes)
                append["exclude_invalid_x"] = False
            trainer.append_simulations(simulations.theta, simulations.x, **append)
            with training_console(trainer):
                network = trainer.train(**self.train_options)
            posterior = trainer.build_posterior(**self.posterior_options)
            if append:  # sbi refuses NaN in x_o; the embedding net checks the padding
                posterior = allow_missing_trials(posterior)
        timings["training"] = time.perf_counter() - start

        start = time.perf_counter()
        with seeded(seeds["sampling"]):
            samples = draw_posterior_samples(
                posterior, observations, num_posterior_samples, self.show_progress_bars
            )
            log_prob = posterior_log_prob(posterior, samples, observations)
            # ArviZ's log_prior and log_likelihood groups: psense, loo, compare take them
            log_prior = log_prior_at(self.simulator.prior, samples)
            log_likelihood = log_likelihood_at(self.simulator, posterior, samples, observations)
        timings["sampling"] = time.perf_counter() - start

        predictive = None
        if num_predictive_draws > 0:
            per_chain = -(-num_predictive_draws // samples.shape[1])  # split over the chains
            draws = samples[:, :, :per_chain]
            flat = draws.reshape(-1, draws.shape[-1])
            try:
                predictive = self.simulator.simulate(flat, seed=seeds["predictive"])
            except ValueError as error:  # e.g. draws outside the prior's support
                warnings.warn(f"no posterior predictive data: {error}", stacklevel=2)
            else:
                predictive = predictive.reshape(
                    *draws.shape[:-1], *self.simulator.observation_shape
                )

        automatic = {name for name, options in selected.items() if options.get("_automatic")}
        selected = self._drop_without_embedding(selected, network)
        context = DiagnosticContext(
            simulator=self.simulator,
            estimator=trainer,
            posterior=posterior,
            theta=simulations.theta,
            x=simulations.x,
            observations=observations,
            true_parameters=true_parameters,
            posterior_samples=samples.reshape(len(observations), -1, samples.shape[-1]),
            seed=seeds["diagnostics"],
            show_progress_bars=self.show_progress_bars,
        )
        results: dict[str, DiagnosticResult] = {}
        skipped: dict[str, str] = {}
        for name, options in list(selected.items()):
            start = time.perf_counter()
            try:
                with seeded(seeds["diagnostics"]):
                    results[name] = make_diagnostic(name, **options).run(context)
            except (ValueError, RuntimeError) as error:
                if name not in automatic:
                    raise
                # a diagnostic nobody asked for must not lose the trained study
                warnings.warn(f"automatic diagnostic {name!r} skipped: {error}", stacklevel=2)
                skipped[name] = str(error)
                del selected[name]
                continue
            timings[f"diagnostic_{name}"] = time.perf_counter() - start

        provenance = {
            "seed": self.seed,
            "simulator": self.simulator_name or "custom",
            "simulator_class": type(self.simulator).__qualname__,
            "simulator_options": self.simulator_options,
            "estimator": self.estimator_name or "custom",
            "estimator_options": _jsonable(self.estimator_options),
            "train_options": _jsonable(self.train_options),
            "posterior_options": _jsonable(self.posterior_options),
            "diagnostics": {name: _jsonable(options) for name, options in selected.items()},
            "num_simulations": self.num_simulations,
            "num_invalid_simulations": simulations.num_invalid,
            "num_resumed_simulations": simulations.num_resumed,
            "skipped_diagnostics": skipped,
            "num_posterior_samples": int(samples.shape[1] * samples.shape[2]),
            "sampling": "mcmc" if is_mcmc(posterior) else "independent",
            "epochs_trained": _epochs_trained(trainer),
            "simulation": self.simulation.describe(),
            "timings_s": timings,
            "versions": provenance_versions(),
        }
        return StudyResult(
            simulator=self.simulator,
            estimator=trainer,
            posterior=posterior,
            samples=samples,
            observations=observations,
            true_parameters=true_parameters,
            diagnostics=results,
            prior_samples=simulations.theta[:num_posterior_samples],
            log_prob=log_prob,
            posterior_predictive=predictive,
            provenance=provenance,
            log_prior=log_prior,
            log_likelihood=None if log_likelihood is None else log_likelihood[0],
            log_likelihood_source="simulator" if log_likelihood is None else log_likelihood[1],
        )

    def _build_trainer(self) -> Any:
        prior = self.simulator.prior
        if self.estimator_spec is not None:
            return build(self.estimator_spec, self.estimator_options, prior=prior)
        return self.estimator_factory(prior=prior, **self.estimator_options)


def _epochs_trained(trainer: Any) -> int | None:
    """Epochs of the last training round, from sbi's training summary when there is one."""
    try:
        epochs = trainer.summary["epochs_trained"]
        return int(epochs[-1]) if epochs else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _replace(options: SimulationOptions, **changes: Any) -> SimulationOptions:
    import dataclasses

    return dataclasses.replace(options, **changes)


def _describe_option(value: Any) -> Any:
    if isinstance(value, torch.nn.Module):  # a registered embedding net is saved by its spec
        return describe_embedding_net(value) or {UNSAVED_MODULE: type(value).__qualname__}
    return repr(value)


def _jsonable(value: Any) -> Any:
    """Options as JSON-friendly values: containers kept, other objects named by their repr."""
    return jsonable(value, describe=_describe_option)
