"""Registered conditional density estimators, for plain sbi: ``sbiplug.density_estimator(name)``.

An estimator whose :class:`~sbiplug.specs.EstimatorSpec` has a ``density_estimator`` builder
factory (``fff``, ``mfff``, ``npe``) is usable in an ordinary sbi script::

    from sbi.inference import NPE
    trainer = NPE(prior, density_estimator=sbiplug.density_estimator("fff", beta=25.0))

sbi's own models (``"maf"``, ``"nsf"``, ``"mdn"``, ``"zuko_nsf"``, ...) are names too: they go
through the built-in ``npe`` estimator's builder with ``model=name``. A registered name wins
over an sbi model name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sbiplug.builtin.estimators.npe import sbi_density_models
from sbiplug.errors import UnknownNameError
from sbiplug.plugins import get_plugin_manager
from sbiplug.registry import check_options, estimators
from sbiplug.specs import EstimatorSpec, resolve_reference

__all__ = ["density_estimator", "density_estimators"]

# The registered estimator whose builder takes sbi's model names as ``model=``.
SBI_ESTIMATOR = "npe"


def density_estimators() -> list[str]:
    """Every name :func:`density_estimator` accepts, sorted."""
    registered = estimators()
    names = {name for name, spec in registered.items() if spec.density_estimator is not None}
    if _has_builder(registered.get(SBI_ESTIMATOR)):
        names.update(sbi_density_models())
    return sorted(names)


def density_estimator(name: str, **options: Any) -> Callable[..., Any]:
    """The builder that sbi's ``NPE(prior, density_estimator=...)`` accepts, for ``name``.

    Arguments:
        name: A registered estimator that is a conditional density estimator (``"fff"``,
            ``"mfff"``, ``"npe"``) or one of sbi's models (``"maf"``, ``"nsf"``, ``"mdn"``,
            ``"made"``, ``"maf_rqs"``, ``"zuko_*"``); see :func:`density_estimators`.
        options: Network options of that estimator's builder (e.g. ``hidden_features``); they
            are checked against its signature before anything is built.

    Returns:
        ``builder(batch_theta, batch_x) -> ConditionalDensityEstimator``: sbi calls it with the
        first training batch, ``batch_theta`` of shape ``(batch, num_parameters)`` and
        ``batch_x`` of shape ``(batch, *observation_shape)``.

    Raises:
        UnknownNameError: No estimator and no sbi model has that name.
        ValueError: The estimator exists but is not a conditional density estimator (e.g.
            ``"cmpe"``, ``"nre"``).
    """
    registered = estimators()
    fixed: dict[str, Any] = {}
    if name not in registered and name in sbi_density_models() and SBI_ESTIMATOR in registered:
        spec, fixed = registered[SBI_ESTIMATOR], {"model": name}
    else:
        spec = _estimator_spec(name)
    if not _has_builder(spec):
        raise ValueError(
            f"estimator {name!r} (plugin {spec.plugin!r}) is not a conditional density "
            "estimator: it has no builder for sbi's NPE(density_estimator=...); density "
            f"estimators: {', '.join(density_estimators())}"
        )
    factory = _load(spec)
    check_options(spec, factory, options, **fixed)
    return factory(**fixed, **options)


def _estimator_spec(name: str) -> EstimatorSpec:
    try:
        return get_plugin_manager().get("estimators", name)  # type: ignore[return-value]
    except UnknownNameError as error:
        if type(error) is not UnknownNameError:  # e.g. a disabled name: keep its own message
            raise
        raise UnknownNameError("density estimator", name, density_estimators()) from None


def _has_builder(spec: EstimatorSpec | None) -> bool:
    return spec is not None and spec.density_estimator is not None


def _load(spec: EstimatorSpec) -> Callable[..., Any]:
    builder = spec.density_estimator
    factory = resolve_reference(builder) if isinstance(builder, str) else builder
    if not callable(factory):
        raise TypeError(
            f"estimator {spec.name!r} (plugin {spec.plugin!r}): density_estimator {builder!r} "
            "is not callable"
        )
    return factory
