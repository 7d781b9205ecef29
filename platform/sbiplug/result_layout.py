"""The layout of a study result: an :class:`xarray.DataTree` in ArviZ's own group scheme.

Groups (one variable per parameter unless said; ``observation`` indexes the observed data sets,
each with its own posterior):

- ``posterior``: ``<parameter>(chain, draw, observation)``; attr ``sampling`` is
  ``"independent"`` (amortised draws split into chains) or ``"mcmc"``
- ``prior``: ``<parameter>(chain, draw, observation)``, prior draws (the same for each
  observation, so prior and posterior share dims)
- ``observed_data``: ``x(observation, x_dim_0, ...)``
- ``constant_data``: ``<parameter>(observation)``, the true parameters when known
- ``posterior_predictive``: ``x(chain, draw, observation, x_dim_0, ...)``
- ``sample_stats``: ``log_prob(chain, draw, observation)`` where the posterior has a density
- ``log_prior``: ``theta(chain, draw, observation)``, the prior's joint log density at each draw
- ``log_likelihood``: ``x(chain, draw, observation[, x_dim_0, ...])``, pointwise where the
  simulator gives one value per data point; attr ``source`` (``simulator`` or ``estimator``)
- ``prior_sbc``: ``<parameter>(chain, draw)``, SBC PIT values in [0, 1], one chain
- ``diagnostics/<name>``: each diagnostic's :meth:`DiagnosticResult.to_dataset`

Root attributes: ``layout_version`` (:data:`LAYOUT_VERSION`) and the provenance as strings and
numbers, nested values JSON-encoded, since netCDF rejects dicts, bools and None.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "LAYOUT_VERSION",
    "LayoutVersionError",
    "build_groups",
    "read_groups",
    "root_attrs",
    "upgrade",
]

#: 1: sbiplug <= 0.2 (no attribute; ``prior_sbc`` over ``sbc_draw``, ``prior`` without
#: ``observation``, no ``log_prior``); 2: this layout.
LAYOUT_VERSION = 2


class LayoutVersionError(ValueError):
    """A result written by a newer sbiplug, in a layout this one cannot read."""


def _sample_coords(num_chains: int, num_draws: int, num_observations: int) -> dict[str, Any]:
    return {
        "chain": np.arange(num_chains),
        "draw": np.arange(num_draws),
        "observation": np.arange(num_observations),
    }


def _per_draw(values: np.ndarray) -> np.ndarray:
    """``(observation, chain, draw, ...)`` -> ``(chain, draw, observation, ...)``."""
    return np.moveaxis(values, 0, 2)


def build_groups(parts: dict[str, Any], names: list[str]) -> dict[str, xr.Dataset]:
    """The groups of a result from its arrays (NumPy, shapes as in :class:`StudyResult`).

    Arguments:
        parts: ``samples``, ``observations`` and, where present, ``true_parameters``,
            ``prior_samples``, ``log_prob``, ``posterior_predictive``, ``log_prior``,
            ``log_likelihood`` (+ ``log_likelihood_source``), ``sbc_pit`` (+
            ``sbc_num_posterior_samples``), ``sampling``.
        names: Parameter names.
    """
    import xarray as xr

    samples = parts["samples"]  # (observation, chain, draw, parameter)
    num_observations, num_chains, num_draws, _ = samples.shape
    coords = _sample_coords(num_chains, num_draws, num_observations)
    sample_dims = ("chain", "draw", "observation")
    posterior = xr.Dataset(
        {name: (sample_dims, _per_draw(samples[..., i])) for i, name in enumerate(names)},
        coords=coords,
        attrs={"sampling": str(parts.get("sampling") or "unknown")},
    )
    observations = parts["observations"]
    x_dims = tuple(f"x_dim_{i}" for i in range(observations.ndim - 1))
    groups: dict[str, xr.Dataset] = {
        "posterior": posterior,
        "observed_data": xr.Dataset(
            {"x": (("observation", *x_dims), observations)},
            coords={"observation": coords["observation"]},
        ),
    }
    prior = parts.get("prior_samples")
    if prior is not None:
        shape = (1, len(prior), num_observations)
        groups["prior"] = xr.Dataset(
            {
                name: (sample_dims, np.broadcast_to(prior[None, :, None, i], shape))
                for i, name in enumerate(names)
            },
            coords=_sample_coords(1, len(prior), num_observations),
        )
    truth = parts.get("true_parameters")
    if truth is not None:
        groups["constant_data"] = xr.Dataset(
            {name: (("observation",), truth[:, i]) for i, name in enumerate(names)},
            coords={"observation": coords["observation"]},
            attrs={"description": "true parameters behind the observations"},
        )
    predictive = parts.get("posterior_predictive")
    if predictive is not None:
        groups["posterior_predictive"] = xr.Dataset(
            {"x": ((*sample_dims, *x_dims), _per_draw(predictive))},
            coords=_sample_coords(num_chains, predictive.shape[2], num_observations),
        )
    if parts.get("log_prob") is not None:
        groups["sample_stats"] = xr.Dataset(
            {"log_prob": (sample_dims, _per_draw(parts["log_prob"]))}, coords=coords
        )
    if parts.get("log_prior") is not None:
        groups["log_prior"] = xr.Dataset(
            {"theta": (sample_dims, _per_draw(parts["log_prior"]))},
            coords=coords,
            attrs={"description": "log p(theta), the prior's joint log density at each draw"},
        )
    log_likelihood = parts.get("log_likelihood")
    if log_likelihood is not None:
        point_dims = x_dims[: log_likelihood.ndim - 3]
        groups["log_likelihood"] = xr.Dataset(
            {"x": ((*sample_dims, *point_dims), _per_draw(log_likelihood))},
            coords=coords,
            attrs={"source": str(parts.get("log_likelihood_source") or "simulator")},
        )
    pit = parts.get("sbc_pit")
    if pit is not None:
        attrs = {}
        if parts.get("sbc_num_posterior_samples"):
            attrs["num_posterior_samples"] = int(parts["sbc_num_posterior_samples"])
        groups["prior_sbc"] = xr.Dataset(
            {name: (("chain", "draw"), pit[None, :, i]) for i, name in enumerate(names)},
            coords={"chain": [0], "draw": np.arange(len(pit))},
            attrs=attrs,
        )
    return groups


def upgrade(tree: xr.DataTree) -> xr.DataTree:
    """A tree of an older layout in this one (in place where it can); newer ones raise.

    Raises:
        LayoutVersionError: ``layout_version`` is newer than :data:`LAYOUT_VERSION`.
    """
    version = int(tree.attrs.get("layout_version", 1))
    if version > LAYOUT_VERSION:
        raise LayoutVersionError(
            f"layout_version {version} is newer than this sbiplug reads "
            f"({LAYOUT_VERSION}); upgrade sbiplug to load it"
        )
    if version == 1 and "prior_sbc" in tree.children:
        old = tree["prior_sbc"].to_dataset()
        if "sbc_draw" in old.dims:
            new = old.rename({"sbc_draw": "draw"}).expand_dims(chain=[0])
            tree["prior_sbc"] = new.transpose("chain", "draw", ...)
    tree.attrs["layout_version"] = LAYOUT_VERSION
    return tree


def read_groups(tree: xr.DataTree, names: list[str]) -> dict[str, Any]:
    """The arrays of :func:`build_groups` back from a tree of this layout (NumPy)."""
    children = tree.children

    def dataset(group: str) -> xr.Dataset | None:
        return children[group].to_dataset() if group in children else None

    def stacked(data: xr.Dataset, dims: tuple[str, ...]) -> np.ndarray:
        return np.stack([data[n].transpose(*dims).values for n in names], axis=-1)

    posterior = tree["posterior"].to_dataset()
    parts: dict[str, Any] = {
        "samples": stacked(posterior, ("observation", "chain", "draw")),
        "observations": tree["observed_data"].to_dataset()["x"].values,
        "sampling": posterior.attrs.get("sampling"),
    }
    prior = dataset("prior")
    if prior is not None:
        if "observation" in prior.dims:  # the same draws for every observation
            prior = prior.isel(observation=0)
        parts["prior_samples"] = stacked(prior, ("chain", "draw"))[0]
    truth = dataset("constant_data")
    if truth is not None:
        parts["true_parameters"] = stacked(truth, ("observation",))
    predictive = dataset("posterior_predictive")
    if predictive is not None:
        parts["posterior_predictive"] = np.moveaxis(predictive["x"].values, 2, 0)
    order = ("observation", "chain", "draw")
    stats = dataset("sample_stats")
    if stats is not None and "log_prob" in stats:
        parts["log_prob"] = stats["log_prob"].transpose(*order).values
    log_prior = dataset("log_prior")
    if log_prior is not None and "theta" in log_prior:
        parts["log_prior"] = log_prior["theta"].transpose(*order).values
    log_likelihood = dataset("log_likelihood")
    if log_likelihood is not None and "x" in log_likelihood:
        parts["log_likelihood"] = log_likelihood["x"].transpose(*order, ...).values
        parts["log_likelihood_source"] = log_likelihood.attrs.get("source", "simulator")
    return parts


def root_attrs(provenance: dict[str, Any], names: list[str], created_at: str) -> dict[str, Any]:
    """The root attributes: the layout version and the provenance, netCDF-safe."""
    return {
        "created_by": "sbiplug",
        "layout_version": LAYOUT_VERSION,
        "created_at": provenance.get("created_at", created_at),
        "seed": int(provenance.get("seed", -1)),
        "simulator": str(provenance.get("simulator", "custom")),
        "estimator": str(provenance.get("estimator", "custom")),
        "num_simulations": int(provenance.get("num_simulations", -1)),
        "num_invalid_simulations": int(provenance.get("num_invalid_simulations", 0)),
        "parameter_names": json.dumps(names),
        "provenance": json.dumps(provenance),
    }
