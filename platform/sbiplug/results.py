"""StudyResult: what a study hands back, as an xarray DataTree that ArviZ and netCDF read.

Layout of :meth:`StudyResult.to_datatree` (ArviZ group names; one variable per parameter):

- ``posterior``: ``<parameter>(chain, draw, observation)``
- ``prior``: ``<parameter>(chain, draw)``, prior draws from the training set
- ``observed_data``: ``x(observation, x_dim_0, ...)``
- ``constant_data``: ``<parameter>(observation)``, the true parameters when known
- ``posterior_predictive``: ``x(chain, draw, observation, x_dim_0, ...)``
- ``sample_stats``: ``log_prob(chain, draw, observation)`` where the posterior has a density
- ``prior_sbc``: ``<parameter>(sbc_draw)``, SBC probability integral transforms in [0, 1]
- ``diagnostics/<name>``: each diagnostic's :meth:`DiagnosticResult.to_dataset`

Root attributes hold the provenance (versions, seed, options, invalid-simulation count) as
strings and numbers, nested values JSON-encoded, since netCDF rejects dicts, bools and None.
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
from sbiplug.errors import UserError
from sbiplug.inference_data import (
    ConvergenceWarning,
    convergence_problems,
    summarize,
    to_arviz,
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
REQUIRED_GROUPS = ("posterior", "observed_data")
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
        """The result as a DataTree (layout in the module docstring)."""
        import xarray as xr

        names = self.parameter_names
        samples = self.samples.numpy()  # (observation, chain, draw, parameter)
        num_observations, num_chains, num_draws, _ = samples.shape
        coords = {
            "chain": np.arange(num_chains),
            "draw": np.arange(num_draws),
            "observation": np.arange(num_observations),
        }
        posterior = xr.Dataset(
            {
                name: (("chain", "draw", "observation"), samples[..., i].transpose(1, 2, 0))
                for i, name in enumerate(names)
            },
            coords=coords,
        )
        x_dims = [f"x_dim_{i}" for i in range(self.observations.ndim - 1)]
        groups: dict[str, xr.Dataset] = {
            "posterior": posterior,
            "observed_data": xr.Dataset(
                {"x": (("observation", *x_dims), self.observations.numpy())},
                coords={"observation": coords["observation"]},
            ),
        }
        if self.prior_samples is not None:
            prior = self.prior_samples.numpy()
            groups["prior"] = xr.Dataset(
                {name: (("chain", "draw"), prior[None, :, i]) for i, name in enumerate(names)},
                coords={"chain": [0], "draw": np.arange(len(prior))},
            )
        if self.true_parameters is not None:
            truth = self.true_parameters.numpy()
            groups["constant_data"] = xr.Dataset(
                {name: (("observation",), truth[:, i]) for i, name in enumerate(names)},
                coords={"observation": coords["observation"]},
                attrs={"description": "true parameters behind the observations"},
            )
        if self.posterior_predictive is not None:
            predictive = self.posterior_predictive.numpy()
            predictive = np.moveaxis(predictive, 0, 2)  # (chain, draw, observation, ...)
            groups["posterior_predictive"] = xr.Dataset(
                {"x": (("chain", "draw", "observation", *x_dims), predictive)},
                coords={
                    "chain": coords["chain"],
                    "draw": np.arange(predictive.shape[1]),
                    "observation": coords["observation"],
                },
            )
        if self.log_prob is not None:
            groups["sample_stats"] = xr.Dataset(
                {
                    "log_prob": (
                        ("chain", "draw", "observation"),
                        np.moveaxis(self.log_prob.numpy(), 0, 2),
                    )
                },
                coords=coords,
            )
        pit = self.sbc_pit()
        if pit is not None:
            sbc_data = self.diagnostics["sbc"].data
            attrs = {}
            if "num_posterior_samples" in sbc_data.attrs:
                attrs["num_posterior_samples"] = int(sbc_data.attrs["num_posterior_samples"])
            groups["prior_sbc"] = xr.Dataset(
                {name: (("sbc_draw",), pit[:, i]) for i, name in enumerate(names)},
                coords={"sbc_draw": np.arange(len(pit))},
                attrs=attrs,
            )
        for name, result in self.diagnostics.items():
            groups[f"diagnostics/{name}"] = result.to_dataset()
        tree = xr.DataTree.from_dict(groups)
        tree.attrs = self._root_attrs()
        return tree

    def _root_attrs(self) -> dict[str, Any]:
        provenance = self.provenance
        return {
            "created_by": "sbiplug",
            "created_at": provenance.get(
                "created_at", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            ),
            "seed": int(provenance.get("seed", -1)),
            "simulator": str(provenance.get("simulator", "custom")),
            "estimator": str(provenance.get("estimator", "custom")),
            "num_simulations": int(provenance.get("num_simulations", -1)),
            "num_invalid_simulations": self.num_invalid_simulations,
            "parameter_names": json.dumps(self.parameter_names),
            "provenance": json.dumps(provenance),
        }

    def to_arviz(self) -> Any:
        """ArviZ data: ``InferenceData`` on ArviZ 0.x, the DataTree itself on 1.x."""
        return to_arviz(self.to_datatree())

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
        num_observations = self.samples.shape[0]
        if not -num_observations <= observation < num_observations:
            raise IndexError(
                f"observation {observation} out of range: this result has {num_observations}"
            )
        posterior = self.to_datatree()["posterior"].to_dataset().isel(observation=observation)
        return posterior.drop_vars("observation")

    # -- plots --------------------------------------------------------------------------------

    def plot_pair(self, observation: int = 0, ax: Any = None, **kwargs: Any) -> Figure:
        """Posterior pair plot of one observation, true parameters marked when known."""
        return plotting.plot_pair(self.to_datatree(), observation=observation, ax=ax, **kwargs)

    def plot_sbc(self, ax: Any = None) -> Figure:
        """SBC ECDF-difference plot with simultaneous confidence bands."""
        return plotting.plot_sbc_ecdf(self.to_datatree(), ax=ax)

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
                    warnings.warn(_unsaved_warning(estimator_name, unsaved), stacklevel=2)
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
        _check_layout(tree, path)
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
        posterior = tree["posterior"].to_dataset()
        samples = np.stack(
            [posterior[name].transpose("observation", "chain", "draw").values for name in names],
            axis=-1,
        )
        observed = tree["observed_data"].to_dataset()["x"].values
        children = tree.children

        def stacked(group: str, dims: tuple[str, ...]) -> Tensor | None:
            if group not in children:
                return None
            dataset = children[group].to_dataset()
            return torch.from_numpy(
                np.stack([dataset[n].transpose(*dims).values for n in names], axis=-1)
            )

        prior = stacked("prior", ("chain", "draw"))
        predictive = log_prob = None
        if "posterior_predictive" in children:
            values = children["posterior_predictive"].to_dataset()["x"].values
            predictive = torch.from_numpy(np.moveaxis(values, 2, 0))
        if "sample_stats" in children:
            values = children["sample_stats"].to_dataset()["log_prob"]
            log_prob = torch.from_numpy(values.transpose("observation", "chain", "draw").values)
        diagnostics = {}
        if "diagnostics" in children:
            for name, node in children["diagnostics"].children.items():
                diagnostics[name] = DiagnosticResult.from_dataset(node.to_dataset())
        simulator = _rebuild_simulator(provenance)
        estimator = None
        if folder is not None and simulator is not None and (folder / ESTIMATOR_FOLDER).exists():
            from sbiplug.persistence import load_trainer

            try:
                estimator = load_trainer(
                    folder / ESTIMATOR_FOLDER, simulator.prior, **(estimator_options or {})
                )
            except Exception as error:  # the data must load even where the estimator cannot
                warnings.warn(f"could not load the estimator: {error}", stacklevel=2)
        return cls(
            simulator=simulator,
            estimator=estimator,
            samples=torch.from_numpy(samples),
            observations=torch.from_numpy(observed),
            true_parameters=stacked("constant_data", ("observation",)),
            diagnostics=diagnostics,
            prior_samples=None if prior is None else prior[0],
            log_prob=log_prob,
            posterior_predictive=predictive,
            provenance=provenance,
            parameter_names=names,
        )

    def __repr__(self) -> str:
        num_observations, num_chains, num_draws, _ = self.samples.shape
        return (
            f"StudyResult(simulator={self.provenance.get('simulator', 'custom')!r}, "
            f"estimator={self.provenance.get('estimator', 'custom')!r}, "
            f"observations={num_observations}, chains={num_chains}, draws={num_draws}, "
            f"diagnostics={list(self.diagnostics)})"
        )


class ResultFileError(UserError, ValueError):
    """A result file that is not a readable sbiplug result: corrupt, truncated or foreign."""


def _check_layout(tree: xr.DataTree, path: Path) -> None:
    """Raise :class:`ResultFileError` unless ``tree`` has what :meth:`StudyResult.load` reads."""
    where = f"not a sbiplug result: {str(path)!r}"
    if tree.attrs.get("created_by") != "sbiplug":
        raise ResultFileError(f"{where} was not written by sbiplug (no created_by = 'sbiplug')")
    for attribute in ("provenance", "parameter_names"):
        try:
            json.loads(tree.attrs[attribute])
        except (KeyError, TypeError, ValueError):
            raise ResultFileError(f"{where} lacks a readable {attribute!r} attribute") from None
    groups = set(tree.children)
    for group in REQUIRED_GROUPS:
        if group not in groups:
            raise ResultFileError(
                f"{where} has no {group!r} group (it has: {', '.join(sorted(groups)) or 'none'})"
            )
    names = json.loads(tree.attrs["parameter_names"])
    variables = set(tree["posterior"].to_dataset().data_vars)
    missing = [name for name in names if name not in variables]
    if missing:
        raise ResultFileError(f"{where}: its 'posterior' group lacks parameters {missing}")


def _unsaved_warning(estimator: str, unsaved: dict[str, str]) -> str:
    from sbiplug.embedding_nets import embedding_nets

    listed = ", ".join(f"{key} ({cls})" for key, cls in unsaved.items())
    again = ", ".join(f"{key!r}: ..." for key in unsaved)
    return (
        f"estimator {estimator!r}: {listed} is a module built outside sbiplug's registry and is "
        f"not saved; StudyResult.load needs it again, built as for training: "
        f"StudyResult.load(folder, estimator_options={{{again}}}). To save it by name, build it "
        f"with sbiplug.make_embedding_net (registered: {', '.join(sorted(embedding_nets()))})"
    )


def _rebuild_simulator(provenance: dict[str, Any]) -> Simulator | None:
    name = provenance.get("simulator", "custom")
    if name == "custom":
        return None
    from sbiplug.registry import make_simulator

    try:
        return make_simulator(name, **provenance.get("simulator_options", {}))
    except Exception as error:  # a result must load even where its plugin is gone
        warnings.warn(f"could not rebuild simulator {name!r}: {error}", stacklevel=3)
        return None
