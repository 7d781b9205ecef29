"""The constructive coupling flow: fitted layer by layer, no backpropagation through the flow.

Draxler, Wahl, Schnörr, Köthe, *On the Universality of Volume-Preserving and Coupling-Based
Normalizing Flows*, ICML 2024 (arXiv 2402.06578). Their universality proof is an algorithm: add
one layer at a time, each a rotation and an affine coupling that standardises the active half
conditionally on the passive half (:mod:`sbiplug_flowanalysis.iterative_layers`); by default
the couplings here map conditional quantiles to the normal ones instead
(:mod:`sbiplug_flowanalysis.iterative_quantiles`). Per layer, ``num_rotations`` random
rotations are tried, each coupling fitted on a random ``fit_fraction`` of the training rows,
and the one that lowers the NLL of the other rows most is kept (a layer that would not lower
it is not added). Layers stop at ``num_layers`` or when the
validation NLL has not improved for ``patience`` layers; the flow keeps the best prefix.
Conditional on x, the coupling sees (z_p, x), so the flow is an sbi posterior estimator
(:mod:`sbiplug_flowanalysis.iterative_npe`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from sbiplug.toolkit import OptionError, check_float, check_positive_int, z_score_moments
from sbiplug_flowanalysis.iterative_layers import (
    BinnedConditioner,
    CouplingLayer,
    LinearGaussianLayer,
    NetworkConditioner,
    fit_binned_conditioner,
    fit_linear_gaussian,
    fit_network_conditioner,
)
from sbiplug_flowanalysis.iterative_quantiles import (
    BinnedQuantileConditioner,
    NetworkQuantileConditioner,
    QuantileCouplingLayer,
    fit_binned_quantiles,
    fit_network_quantiles,
)
from sbiplug_flowanalysis.layered import LayeredFlow, random_rotation

__all__ = ["IterativeCouplingFlow", "fit_iterative_coupling"]

_CONDITIONERS = ("auto", "bins", "network")
_COUPLINGS = ("quantile", "affine")
ROWS_PER_BIN = 1000


class IterativeCouplingFlow(LayeredFlow):
    """A :class:`LayeredFlow` of :class:`CouplingLayer` objects built by the constructive fit.

    Arguments:
        input_dim: D.
        condition_shape: Event shape of x (``(0,)``: unconditional).
        layers: The fitted layers (none: the z-scoring alone, a Gaussian).
        **scaling: ``theta_shift``, ``theta_scale``, ``x_shift``, ``x_scale``.

    Attributes:
        history: Per added layer: ``gain`` (training NLL decrease, nats), ``nll`` (training
            NLL after it), ``validation_nll``, and ``nll[0]`` before any layer.
    """

    def __init__(
        self,
        input_dim: int,
        condition_shape: tuple[int, ...] = (0,),
        layers: Sequence[CouplingLayer] = (),
        **scaling: Tensor | None,
    ):
        super().__init__(list(layers), input_dim, tuple(condition_shape), **scaling)
        self.history: dict[str, list[float]] = {"gain": [], "nll": [], "validation_nll": []}

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False):
        """Rebuild the layers a fit produced from the shapes in ``state_dict``, then load it."""
        indices = sorted(
            {int(m.group(1)) for key in state_dict if (m := re.match(r"net\.(\d+)\.", key))}
        )
        layers = [_empty_layer(state_dict, f"net.{i}.") for i in indices]
        self.net = nn.ModuleList(layers)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def _empty_layer(state: Any, prefix: str) -> nn.Module:
    """A layer with the structure of the one stored under ``prefix`` (values loaded later)."""
    if prefix + "cholesky" in state:
        weight = state[prefix + "weight"]
        return LinearGaussianLayer(
            torch.zeros_like(weight), torch.zeros(len(weight)), torch.eye(len(weight))
        )
    rotation = state[prefix + "rotation"]
    passive = int(state[prefix + "passive_count"])
    active = rotation.shape[0] - passive
    identity = torch.eye(rotation.shape[0])
    if prefix + "conditioner.quantiles" in state:
        quantiles = state[prefix + "conditioner.quantiles"]
        centres = torch.arange(len(quantiles), dtype=torch.float32)
        return QuantileCouplingLayer(
            identity, passive, BinnedQuantileConditioner(centres, quantiles, 0.5)
        )
    if prefix + "conditioner.targets" in state:
        knots = len(state[prefix + "conditioner.targets"])
        in_features, hidden = _network_shape(state, prefix)
        return QuantileCouplingLayer(
            identity,
            passive,
            NetworkQuantileConditioner(in_features, active, knots, hidden, 0.5),
        )
    if prefix + "conditioner.knots" in state:
        k = len(state[prefix + "conditioner.knots"])
        cubic = bool(int(state[prefix + "conditioner.cubic"]))
        conditioner: nn.Module = BinnedConditioner(
            torch.arange(k, dtype=torch.float32),
            torch.arange(max(k - 1, 0), dtype=torch.float32) + 0.5,
            torch.zeros(k, active),
            torch.zeros(k, active),
            "cubic" if cubic else "constant",
        )
    else:
        in_features, hidden = _network_shape(state, prefix)
        conditioner = NetworkConditioner(in_features, active, hidden, 0.5)
    return CouplingLayer(identity, passive, conditioner)


def _network_shape(state: Any, prefix: str) -> tuple[int, list[int]]:
    """Input width and hidden widths of the conditioner network stored under ``prefix``."""
    weights = sorted(
        (int(m.group(1)), state[key].shape)
        for key in state
        if (m := re.match(re.escape(prefix) + r"conditioner\.net\.(\d+)\.weight$", key))
    )
    return weights[0][1][1], [shape[0] for _, shape in weights[:-1]]


def _nll(flow_z: Tensor, log_det: Tensor) -> float:
    return float(
        (
            0.5 * flow_z.pow(2).sum(-1) + 0.5 * flow_z.shape[-1] * math.log(2 * math.pi) - log_det
        ).mean()
    )


def fit_iterative_coupling(
    theta: Tensor,
    x: Tensor | None = None,
    *,
    num_layers: int = 100,
    num_rotations: int | None = None,
    coupling: str = "quantile",
    conditioner: str = "auto",
    bins: int | None = None,
    knots: int = 16,
    damping: float = 0.5,
    interpolation: str = "cubic",
    fit_fraction: float | None = None,
    hidden_features: Sequence[int] = (64, 64),
    network_steps: int = 1000,
    linear_start: bool | None = None,
    validation: tuple[Tensor, Tensor | None] | None = None,
    patience: int = 10,
    max_failures: int | None = None,
    seed: int = 0,
    show_progress_bars: bool = True,
) -> IterativeCouplingFlow:
    """Fit an :class:`IterativeCouplingFlow` to draws ``theta`` (given ``x``) layer by layer.

    Arguments:
        theta: Training draws ``(n, D)``.
        x: Conditions ``(n, *shape)`` for a conditional flow (``None``: unconditional, D >= 2).
        num_layers: Most layer fits to try (100 in the paper's 2-D runs; a try that lowers
            no held-out NLL adds no layer).
        num_rotations: Random rotations tried per layer (default: 10 with bins, as in the
            paper; 1 with the network conditioner, whose fit costs more).
        coupling: ``"quantile"`` (each layer maps ``knots`` conditional quantiles of the
            active half to the normal ones, :mod:`sbiplug_flowanalysis.iterative_quantiles`)
            or ``"affine"`` (the paper's standardisation by the conditional mean and std).
        conditioner: ``"bins"`` (equal-count bins of a single passive coordinate: unconditional
            D = 2 or 3), ``"network"`` (a regression net on (z_p, x)) or ``"auto"`` (bins where
            they apply).
        bins: Equal-count bins per layer (default: 64 for affine couplings, as in the paper;
            for quantile couplings one per ``ROWS_PER_BIN`` fitted rows, 4 to 64, since
            their J quantiles per bin need more rows than a mean and a std).
        interpolation: ``"cubic"`` / ``"constant"`` between the bins of affine couplings
            (quantile knots are interpolated linearly, which keeps them increasing).
        knots: Quantiles J per active coordinate of a quantile coupling.
        damping: eta in (0, 1] (0.5 in the paper).
        fit_fraction: Share of the training rows each coupling is fitted on (default 1/4 for
            affine couplings with bins, as in the paper; 1/2 otherwise).
        hidden_features, network_steps: The network conditioner's widths and Adam steps.
        linear_start: Make the first layer the least-squares conditional Gaussian of theta
            given x, whitened (:class:`LinearGaussianLayer`; default: for conditional flows).
        validation: ``(theta, x)`` held out for the stopping rule (``None``: stop only at
            ``num_layers`` or when no rotation lowers the training NLL).
        patience: Layers without validation improvement before stopping.
        max_failures: Failed tries in a row (no rotation lowers the held-out NLL) before
            stopping (default: ``patience``).
        seed: Seed of the rotations, the fit subsets and the networks' batches (their initial
            weights come from torch's global generator, as in sbi: ``torch.manual_seed``).
        show_progress_bars: A tqdm bar on stderr.

    Returns:
        The flow, with its per-layer record in ``flow.history``.
    """
    theta = _check_rows("theta", theta)
    dim = theta.shape[-1]
    conditional = x is not None
    if conditional:
        x = _check_rows("x", x).reshape(len(x), *x.shape[1:])
        if len(x) != len(theta):
            raise OptionError(f"theta and x must have as many rows, got {len(theta)} and {len(x)}")
    elif dim < 2:
        raise OptionError("an unconditional coupling flow needs theta of dimension >= 2")
    if coupling not in _COUPLINGS:
        raise OptionError(f"coupling must be one of {_COUPLINGS}, got {coupling!r}")
    if conditioner not in _CONDITIONERS:
        raise OptionError(f"conditioner must be one of {_CONDITIONERS}, got {conditioner!r}")
    if interpolation not in ("cubic", "constant"):
        raise OptionError(f"interpolation must be 'cubic' or 'constant', got {interpolation!r}")
    passive = dim // 2
    binnable = not conditional and passive == 1
    if conditioner == "bins" and not binnable:
        raise OptionError(
            "conditioner='bins' needs an unconditional flow with one passive coordinate "
            f"(D = 2 or 3), got D = {dim}{' and a condition x' if conditional else ''}"
        )
    use_bins = binnable if conditioner == "auto" else conditioner == "bins"
    num_layers = check_positive_int("num_layers", num_layers, owner="iterative_coupling")
    rotations = num_rotations if num_rotations is not None else (10 if use_bins else 1)
    rotations = check_positive_int("num_rotations", rotations, owner="iterative_coupling")
    damping = check_float("damping", damping, minimum=0.0, maximum=1.0, owner="iterative_coupling")
    if damping == 0:
        raise OptionError("iterative_coupling: damping must be in (0, 1], got 0")
    paper_bins = use_bins and coupling == "affine"
    fraction = fit_fraction if fit_fraction is not None else (0.25 if paper_bins else 0.5)
    fraction = check_float("fit_fraction", fraction, minimum=0.0, maximum=1.0)
    cut = max(8, int(fraction * len(theta)))
    if bins is None:
        bins = 64 if coupling == "affine" else min(max(cut // ROWS_PER_BIN, 4), 64)
    bins = check_positive_int("bins", bins, owner="iterative_coupling")
    knots = check_positive_int("knots", knots, owner="iterative_coupling")
    if knots < 2:
        raise OptionError(f"iterative_coupling: knots must be >= 2, got {knots}")

    theta_shift, theta_scale = z_score_moments(theta)
    scaling: dict[str, Tensor | None] = {"theta_shift": theta_shift, "theta_scale": theta_scale}
    condition_shape: tuple[int, ...] = (0,)
    if conditional:
        scaling["x_shift"], scaling["x_scale"] = z_score_moments(x)
        condition_shape = tuple(x.shape[1:])
    flow = IterativeCouplingFlow(dim, condition_shape, **scaling)

    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        c = flow.embed(x, len(theta))
        z, log_det = flow.forward_flat(theta, c)
        if validation is not None:
            theta_val = _check_rows("validation theta", validation[0])
            c_val = flow.embed(validation[1], len(theta_val))
            z_val, log_det_val = flow.forward_flat(theta_val, c_val)
    nll = _nll(z, log_det)
    flow.history["nll"].append(nll)  # before any layer
    best_val = _nll(z_val, log_det_val) if validation is not None else math.nan
    flow.history["validation_nll"].append(best_val)
    best_layers, stale, failures = 0, 0, 0
    layers: list[nn.Module] = []

    def add(layer: nn.Module, gain: float) -> bool:
        """Append ``layer``; whether the stopping rule says to go on."""
        nonlocal z, log_det, z_val, log_det_val, nll, best_val, best_layers, stale
        with torch.no_grad():
            z, ladj = layer(z, c)
            log_det = log_det + ladj
            if validation is not None:
                z_val, ladj_val = layer(z_val, c_val)
                log_det_val = log_det_val + ladj_val
        layers.append(layer)
        nll = _nll(z, log_det)
        val = _nll(z_val, log_det_val) if validation is not None else math.nan
        flow.history["gain"].append(gain)
        flow.history["nll"].append(nll)
        flow.history["validation_nll"].append(val)
        if validation is None:
            best_layers = len(layers)
            return True
        if val < best_val:
            best_val, best_layers, stale = val, len(layers), 0
        else:
            stale += 1
        return stale < patience

    if validation is None:
        z_val = log_det_val = c_val = None
    if linear_start if linear_start is not None else conditional:
        before = nll
        with torch.no_grad():
            linear = fit_linear_gaussian(z, c)
            gain = before - _nll(*_shifted(linear, z, c, log_det))
        add(linear, gain)

    layer_type = QuantileCouplingLayer if coupling == "quantile" else CouplingLayer
    network = {
        "hidden_features": hidden_features,
        "damping": damping,
        "num_steps": network_steps,
        "generator": generator,
    }

    def fit_conditioner(u: Tensor, active: Tensor) -> nn.Module:
        """The conditioner of one coupling, fitted on u ``(m, P + C)`` and ``active``."""
        if coupling == "quantile" and use_bins:
            return fit_binned_quantiles(u, active, bins=bins, knots=knots, damping=damping)
        if coupling == "quantile":
            return fit_network_quantiles(u, active, knots=knots, **network)
        if use_bins:
            return fit_binned_conditioner(
                u, active, bins=bins, damping=damping, interpolation=interpolation
            )[0]
        return fit_network_conditioner(u, active, **network)

    bar = tqdm(range(num_layers), disable=not show_progress_bars, desc="iterative coupling")
    for _ in bar:
        best: tuple[float, nn.Module] | None = None
        for _ in range(rotations):
            rotation = random_rotation(dim, generator)
            order = torch.randperm(len(z), generator=generator)
            rows, scored = order[:cut], order[cut:] if cut < len(z) else order
            y = z[rows] @ rotation.T
            u = torch.cat([y[:, :passive], c[rows]], dim=-1)
            layer = layer_type(rotation, passive, fit_conditioner(u, y[:, passive:]))
            # Scored on rows the coupling was not fitted on: an over-fitted layer scores low.
            with torch.no_grad():
                z_new, ladj = layer(z[scored], c[scored])
            old = 0.5 * z[scored].pow(2).sum(-1)
            gain = float((old - 0.5 * z_new.pow(2).sum(-1) + ladj).mean())
            if best is None or gain > best[0]:
                best = (gain, layer)
        assert best is not None
        gain, layer = best
        if not gain > 0:
            # No rotation lowered the held-out NLL: try again, up to `max_failures` times.
            failures += 1
            if failures >= (patience if max_failures is None else max_failures):
                break
            continue
        failures = 0
        if not add(layer, gain):
            break
        bar.set_postfix(nll=f"{nll:.4f}", refresh=False)
    bar.close()
    flow.net = nn.ModuleList(layers[:best_layers])
    for key in flow.history:
        flow.history[key] = flow.history[key][: best_layers + (key != "gain")]
    return flow


def _shifted(layer: nn.Module, z: Tensor, c: Tensor, log_det: Tensor) -> tuple[Tensor, Tensor]:
    z_new, ladj = layer(z, c)
    return z_new, log_det + ladj


def _check_rows(name: str, value: Any) -> Tensor:
    if not isinstance(value, Tensor) or value.ndim < 2 or len(value) < 16:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise OptionError(
            f"iterative_coupling: {name} must be a tensor (n >= 16, ...), got {shape}"
        )
    value = value.float()
    if not bool(torch.isfinite(value.reshape(len(value), -1)).all()):
        raise OptionError(f"iterative_coupling: {name} has non-finite values")
    return value
