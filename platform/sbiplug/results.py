"""StudyResult: what a study hands back, as an xarray DataTree that ArviZ and netCDF read.

The tree follows ArviZ's group scheme (layout and version in :mod:`sbiplug.result_layout`), so
ArviZ's functions take it unchanged: as it is on ArviZ 1.x, as an ``InferenceData`` from
:meth:`StudyResult.to_arviz` on 0.x (:mod:`sbiplug.inference_data` keeps the difference).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sbiplug import plotting
from sbiplug.diagnostic import DiagnosticResult
from sbiplug.inference_data import (
    ConvergenceWarning,
    convergence_problems,
    select_observation,
    summarize,
    to_arviz,
)
from sbiplug.result_files import (
    ResultFileError,
    check_layout,
    rebuild_simulator,
    unsaved_warning,
)
from sbiplug.result_layout import (
    LayoutVersionError,
    build_groups,
    read_groups,
    root_attrs,
    upgrade,
)
from sbiplug.toolkit.atomic import atomic_folder
from sbiplug.toolkit.names import default_parameter_names

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

    from sbiplug.simulator import Simulator

__all__ = ["RESULT_FILE", "ResultFileError", "StudyResult", "provenance_versions"]

RESULT_FILE = "result.nc"
ESTIMATOR_FOLDER = "estimator"


def provenance_versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": sys.version.split()[0]}
    for package in ("sbiplug", "sbi", "torch", "numpy", "xarray", "arviz"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return versions


@dataclass
class StudyResult:
    """The outcome of :meth:`sbiplug.Study.run`.

    Arguments:
        simulator: The study's simulator (``None`` after loading a custom one).
        estimator: The trained sbi trainer (``None`` after loading a custom one).
        samples: Posterior draws, shape ``(num_observations, num_chains, num_draws,
            num_parameters)``.
        observations: Shape ``(num_observations, *observation_shape)``.
        true_parameters: Shape ``(num_observations, num_parameters)``, when known.
        diagnostics: Diagnostic name -> result.
        prior_samples: Prior draws, shape ``(num_prior_draws, num_parameters)``.
        log_prob: ``log q(theta | x_o)`` of each draw, shape ``samples.shape[:-1]``.
        posterior_predictive: Data simulated from posterior draws, shape
            ``(num_observations, num_chains, num_predictive_draws, *observation_shape)``.
        provenance: Seeds, options, counts, timings and versions.
        parameter_names: One name per parameter.
        log_prior: ``log p(theta)`` of each draw, shape ``samples.shape[:-1]``.
        log_likelihood: Log likelihood of each observation at each draw, shape
            ``samples.shape[:-1]`` or, pointwise, ``samples.shape[:-1] + point_shape``.
        log_likelihood_source: ``"simulator"`` or ``"estimator"`` (a likelihood estimator).
    """

    simulator: Simulator | None
    estimator: Any
    samples: Tensor
    observations: Tensor
    true_parameters: Tensor | None = None
    diagnostics: dict[str, DiagnosticResult] = field(default_factory=dict)
    prior_samples: Tensor | None = None
    log_prob: Tensor | None = None
    posterior_predictive: Tensor | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    parameter_names: list[str] = field(default_factory=list)
    posterior: Any = None
    log_prior: Tensor | None = None
    log_likelihood: Tensor | None = None
    log_likelihood_source: str = "simulator"

    def __post_init__(self) -> None:
        if not self.parameter_names:
            if self.simulator is not None and self.simulator.parameter_names:
                self.parameter_names = list(self.simulator.parameter_names)
            else:
                self.parameter_names = default_parameter_names(self.samples.shape[-1])
        if self.posterior is None and self.estimator is not None:
            self.posterior = self.estimator.build_posterior(
                **self.provenance.get("posterior_options", {})
            )

    @property
    def num_invalid_simulations(self) -> int:
        return int(self.provenance.get("num_invalid_simulations", 0))

    # -- xarray / ArviZ -----------------------------------------------------------------------

    def to_datatree(self) -> xr.DataTree:
        """The result as a DataTree (layout in :mod:`sbiplug.result_layout`)."""
        import xarray as xr

        def array(value: Tensor | None) -> np.ndarray | None:
            return None if value is None else value.detach().cpu().numpy()

        parts = {
            key: array(getattr(self, key))
            for key in (
                "samples",
                "observations",
                "true_parameters",
                "prior_samples",
                "log_prob",
                "posterior_predictive",
                "log_prior",
                "log_likelihood",
            )
        }
        parts["log_likelihood_source"] = self.log_likelihood_source
        parts["sampling"] = self.provenance.get("sampling")
        parts["sbc_pit"] = self.sbc_pit()
        if parts["sbc_pit"] is not None:
            sbc = self.diagnostics["sbc"]
            parts["sbc_num_posterior_samples"] = sbc.data.attrs.get(
                "num_posterior_samples"
            ) or sbc.summary.get("num_posterior_samples")
        groups = build_groups(parts, self.parameter_names)
        for name, result in self.diagnostics.items():
            groups[f"diagnostics/{name}"] = result.to_dataset()
        tree = xr.DataTree.from_dict(groups)
        created_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        tree.attrs = root_attrs(self.provenance, self.parameter_names, created_at)
        return tree

    def to_arviz(self, observation: int | None = None) -> Any:
        """ArviZ data: ``InferenceData`` on ArviZ 0.x, the DataTree itself on 1.x.

        ``observation`` selects one observation's posterior in every group, as ``psense``,
        ``loo`` and ``compare`` need (they treat every non-sample dim as a data point).
        """
        tree = self.to_datatree()
        if observation is not None:
            tree = select_observation(tree, self._check_observation(observation))
        return to_arviz(tree)

    def sbc_pit(self) -> np.ndarray | None:
        """SBC probability integral transforms, shape ``(num_sbc_draws, num_parameters)``."""
        result = self.diagnostics.get("sbc")
        if result is None or result.data is None:
            return None
        data = result.data
        if "pit" in data:
            pit = data["pit"]
            if {"sbc_run", "parameter"} <= set(pit.dims):
                pit = pit.transpose("sbc_run", "parameter")
            return np.asarray(pit.values, dtype=float).reshape(-1, len(self.parameter_names))
        if "ranks" in data:
            num_samples = data.attrs.get("num_posterior_samples") or result.summary.get(
                "num_posterior_samples"
            )
            if num_samples:
                ranks = np.asarray(data["ranks"].values, dtype=float)
                return ranks.reshape(-1, len(self.parameter_names)) / float(num_samples)
        return None

    def summary(self, observation: int = 0, *, warn: bool = True, **kwargs: Any) -> pd.DataFrame:
        """ArviZ summary of the posterior of one observation: mean, sd, HDI, and R-hat and ESS
        when there are several chains. ``kwargs`` go to ``az.summary``.

        With several chains, a :class:`~sbiplug.inference_data.ConvergenceWarning` says when
        they disagree (R-hat > 1.01) or carry too few effective draws (bulk or tail ESS < 400),
        the thresholds of Vehtari et al. (2021); ``warn=False`` keeps quiet.
        """
        posterior = self.posterior_of(observation)
        problems = convergence_problems(posterior) if warn else []
        if problems:
            warnings.warn(
                f"posterior of observation {observation}: {'; '.join(problems)}; the MCMC draws "
                "are not to be trusted yet (run longer chains or more warmup)",
                ConvergenceWarning,
                stacklevel=2,
            )
        return summarize(posterior, **kwargs)

    def posterior_of(self, observation: int = 0) -> xr.Dataset:
        """The posterior draws of one observation: one variable per parameter, ``(chain,
        draw)``."""
        observation = self._check_observation(observation)
        posterior = self.to_datatree()["posterior"].to_dataset().isel(observation=observation)
        return posterior.drop_vars("observation")

    def _check_observation(self, observation: int) -> int:
        num_observations = self.samples.shape[0]
        if not -num_observations <= observation < num_observations:
            raise IndexError(
                f"observation {observation} out of range: this result has {num_observations}"
            )
        return observation % num_observations

    # -- plots --------------------------------------------------------------------------------

    def plot_pair(self, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
        """Posterior pair plot of one observation, true parameters marked when known."""
        return plotting.plot_pair(self.to_datatree(), observation=observation, ax=ax, **kwargs)

    def plot_sbc(self, ax: Any = None) -> Figure:
        """SBC PIT ECDF with simultaneous confidence bands (ArviZ's own plot)."""
        return plotting.plot_sbc_ecdf(self.to_datatree(), ax=ax)

    def plot_posterior(self, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
        """Marginal posteriors of one observation (ArviZ), true values marked when known."""
        return plotting.plot_posterior(self.to_datatree(), observation, ax, **kwargs)

    def plot_forest(self, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
        """ArviZ's forest plot of one observation's posterior."""
        return plotting.plot_forest(self.to_datatree(), observation, ax, **kwargs)

    def plot_ppc(self, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
        """ArviZ's posterior predictive check of one observation."""
        return plotting.plot_ppc(self.to_datatree(), observation, ax, **kwargs)

    def plot_trace(self, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
        """ArviZ's trace (or ``kind="rank"``) plot of one observation's chains."""
        return plotting.plot_trace(self.to_datatree(), observation, ax, **kwargs)

    def plot_diagnostic(self, name: str, ax: Any = None) -> Figure:
        """The figure of diagnostic ``name``."""
        if name not in self.diagnostics:
            raise KeyError(
                f"no diagnostic {name!r} in this result; it has "
                f"{', '.join(self.diagnostics) or 'none'}"
            )
        return self.diagnostics[name].plot(ax=ax)

    def save_figures(self, folder: str | os.PathLike[str], dpi: int = 100) -> list[Path]:
        """Write every figure as PNG into ``folder``; returns the paths."""
        return plotting.save_figures(
            self.to_datatree(), folder, diagnostics=self.diagnostics, dpi=dpi
        )

    # -- persistence --------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``result.nc`` and the trained estimator into ``folder``, atomically.

        Everything is written into a temporary sibling folder that is renamed into place at
        the end, so a crash never leaves a half-written result that loads. An existing result
        in ``folder`` is replaced.

        An embedding net from :func:`sbiplug.make_embedding_net` is saved by its name and
        options. Any other module is not: a warning says so here, and :meth:`load` needs it
        again (``estimator_options={"embedding_net": ...}``) to rebuild the estimator.
        """
        folder = Path(folder)
        with atomic_folder(folder) as temporary:
            self.to_datatree().to_netcdf(temporary / RESULT_FILE)
            estimator_name = self.provenance.get("estimator", "custom")
            if self.estimator is not None and estimator_name != "custom":
                from sbiplug.embedding_nets import UNSAVED_MODULE
                from sbiplug.persistence import save_trainer

                options = self.provenance.get("estimator_options", {})
                unsaved = {
                    key: value[UNSAVED_MODULE]
                    for key, value in options.items()
                    if isinstance(value, dict) and UNSAVED_MODULE in value
                }
                if unsaved:
                    warnings.warn(unsaved_warning(estimator_name, unsaved), stacklevel=2)
                save_trainer(
                    self.estimator,
                    temporary / ESTIMATOR_FOLDER,
                    estimator=estimator_name,
                    options=options,
                    skip_options=tuple(unsaved),
                )
        return folder

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        *,
        load_estimator: bool = True,
        estimator_options: dict[str, Any] | None = None,
    ) -> StudyResult:
        """Read a result written by :meth:`save`.

        The simulator is rebuilt by name and the estimator with ``torch.load(weights_only=True)``;
        both are ``None`` when the study used custom objects. ``estimator_options`` are options
        that could not be saved (a custom ``embedding_net`` module, built as for training).
        """
        import xarray as xr

        folder = Path(folder)
        path = folder / RESULT_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{str(folder)!r} holds no saved study result ({RESULT_FILE})")
        try:
            with xr.open_datatree(path) as opened:
                tree = opened.load()
        except Exception as error:  # netCDF/HDF5 raise OSError, ValueError, ... on bad bytes
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:200]
            raise ResultFileError(
                f"not a sbiplug result: {str(path)!r} cannot be read as netCDF "
                f"(truncated or corrupt? {reason})"
            ) from None
        check_layout(tree, path)
        try:
            upgrade(tree)
        except LayoutVersionError as error:
            raise ResultFileError(f"not readable here: {str(path)!r}: {error}") from None
        try:
            return cls.from_datatree(
                tree,
                folder=folder if load_estimator else None,
                estimator_options=estimator_options,
            )
        except (KeyError, ValueError, IndexError) as error:  # a group or variable is damaged
            raise ResultFileError(
                f"not a sbiplug result: {str(path)!r} is damaged ({type(error).__name__}: {error})"
            ) from None

    @classmethod
    def from_datatree(
        cls,
        tree: xr.DataTree,
        folder: Path | None = None,
        estimator_options: dict[str, Any] | None = None,
    ) -> StudyResult:
        """Rebuild a result from :meth:`to_datatree`; the estimator comes from ``folder``
        (``estimator_options``: those it could not store, see :meth:`load`)."""
        provenance = json.loads(tree.attrs["provenance"])
        names = json.loads(tree.attrs["parameter_names"])
        parts = read_groups(upgrade(tree), names)
        tensors = {
            key: torch.from_numpy(np.ascontiguousarray(value))
            for key, value in parts.items()
            if isinstance(value, np.ndarray)
        }
        children = tree.children
        diagnostics = {}
        if "diagnostics" in children:
            for name, node in children["diagnostics"].children.items():
                diagnostics[name] = DiagnosticResult.from_dataset(node.to_dataset())
        simulator = rebuild_simulator(provenance)
        estimator = None
        if folder is not None and simulator is not None and (folder / ESTIMATOR_FOLDER).exists():
            from sbiplug.persistence import load_trainer

            try:
                estimator = load_trainer(
                    folder / ESTIMATOR_FOLDER, simulator.prior, **(estimator_options or {})
                )
            except Exception as error:  # the data must load even where the estimator cannot
                warnings.warn(f"could not load the estimator: {error}", stacklevel=2)
        if parts.get("sampling") and "sampling" not in provenance:
            provenance["sampling"] = parts["sampling"]
        return cls(
            simulator=simulator,
            estimator=estimator,
            diagnostics=diagnostics,
            provenance=provenance,
            parameter_names=names,
            log_likelihood_source=str(parts.get("log_likelihood_source") or "simulator"),
            **tensors,
        )

    def __repr__(self) -> str:
        num_observations, num_chains, num_draws, _ = self.samples.shape
        return (
            f"StudyResult(simulator={self.provenance.get('simulator', 'custom')!r}, "
            f"estimator={self.provenance.get('estimator', 'custom')!r}, "
            f"observations={num_observations}, chains={num_chains}, draws={num_draws}, "
            f"diagnostics={list(self.diagnostics)})"
        )
