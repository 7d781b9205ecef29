"""The ``entropic_metrics`` diagnostic: what a flow posterior's latent directions carry.

For each observation x_o, the decoder z -> theta | x_o of the trained flow (sbi NPE, FFF,
TRADE; see :mod:`sbiplug_flowanalysis.adapters`) gives, by Monte Carlo over its latent, the
entropy spectrum (per-direction manifold entropies, in nats and parameter units), the pairwise
manifold mutual information and the manifold total correlation (Galperin & Köthe, AISTATS 2025,
arXiv 2410.19426), with the principal spectrum of the Jacobian's singular values beside it. A
principal direction whose stretch exp(E[log s_k]) is below ``degenerate_ratio`` times the widest
one's is near-degenerate: the posterior is then effectively k-dimensional, a sign of a
non-identifiable parameter combination (a ridge).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sbiplug import Diagnostic, DiagnosticContext, DiagnosticResult
from sbiplug.toolkit import (
    DiagnosticInputError,
    check_int,
    check_probability,
    figure_and_axes,
    parameter_names,
    require_observations,
    require_posterior,
    require_variables,
    resolve_progress,
    resolve_seed,
)
from sbiplug_flowanalysis.adapters import NoDecoderError, latent_decoder
from sbiplug_flowanalysis.jacobians import JACOBIAN_MODES
from sbiplug_flowanalysis.metrics import EntropicMetrics, entropic_metrics

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["EntropicMetricsDiagnostic", "prior_entropy_per_dimension"]


def prior_entropy_per_dimension(prior: Any, num_samples: int = 4000, seed: int = 0) -> float:
    """H(p(theta)) / D: the prior's entropy per parameter (closed form, else Monte Carlo)."""
    try:
        entropy = prior.entropy()
        dim = int(prior.event_shape.numel()) if prior.event_shape else 1
        value = float(torch.as_tensor(entropy).sum()) / dim
        if math.isfinite(value):
            return value
    except (NotImplementedError, AttributeError, TypeError, RuntimeError):
        pass
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        theta = prior.sample((num_samples,))
    log_prob = prior.log_prob(theta).double()
    return (
        float(-log_prob[torch.isfinite(log_prob)].mean()) / theta.reshape(num_samples, -1).shape[1]
    )


def _describe(direction: np.ndarray, names: list[str]) -> str:
    order = np.argsort(-np.abs(direction))
    terms = [(direction[i], names[i]) for i in order[:3] if abs(direction[i]) >= 0.2]
    if not terms:
        return "mixed"
    text = f"{terms[0][0]:.2f}·{terms[0][1]}"
    for value, name in terms[1:]:
        text += f" {'+' if value >= 0 else '-'} {abs(value):.2f}·{name}"
    return text


class EntropicMetricsDiagnostic(Diagnostic):
    """Entropy spectrum, MPMI and total correlation of a flow posterior at each observation.

    Arguments:
        num_samples: Latent draws per observation (Monte Carlo).
        degenerate_ratio: A principal direction is near-degenerate when its stretch is below
            this ratio times the widest direction's.
        max_observations: Analyse at most this many observations (the first ones).
        mode: Jacobian mode (``"auto"``, ``"fwd"``, ``"rev"``, ``"autograd"``).
        seed: Seed of the latent draws (default: the context's seed, else 0).
        show_progress_bars: Overrides the context's setting when given.
    """

    name = "entropic_metrics"

    def __init__(
        self,
        *,
        num_samples: int = 2000,
        degenerate_ratio: float = 0.1,
        max_observations: int = 10,
        mode: str = "auto",
        seed: int | None = None,
        show_progress_bars: bool | None = None,
    ) -> None:
        owner = self.name
        self.num_samples = check_int("num_samples", num_samples, minimum=2, owner=owner)
        self.degenerate_ratio = check_probability("degenerate_ratio", degenerate_ratio, owner=owner)
        self.max_observations = check_int(
            "max_observations", max_observations, minimum=1, owner=owner
        )
        if mode not in JACOBIAN_MODES:
            raise DiagnosticInputError(
                f"diagnostic {owner!r}: mode must be one of {JACOBIAN_MODES}, got {mode!r}"
            )
        self.mode = mode
        self.seed = seed
        self.show_progress_bars = show_progress_bars

    # -- run ----------------------------------------------------------------------------------

    def run(self, context: DiagnosticContext) -> DiagnosticResult:
        seed = resolve_seed(self.seed, context)
        progress = resolve_progress(self.show_progress_bars, context)
        model = context.posterior if context.posterior is not None else context.estimator
        if model is None:
            require_posterior(context, self.name)
        observations = require_observations(context, self.name)[: self.max_observations]
        try:  # fail before any Jacobian: is there a decoder at all?
            decoders = [latent_decoder(model, x_o) for x_o in observations]
        except NoDecoderError as error:
            raise DiagnosticInputError(f"diagnostic {self.name!r}: {error}") from None

        results = [
            entropic_metrics(
                found.decoder,
                found.latent,
                num_samples=self.num_samples,
                tangent_basis=found.tangent_basis,
                mode=self.mode,
                seed=seed + index,
                show_progress_bars=progress,
            )
            for index, found in enumerate(decoders)
        ]
        dim_theta = results[0].directions.shape[1]
        names = parameter_names(context, dim_theta)
        prior = getattr(context.simulator, "prior", None)
        reference = prior_entropy_per_dimension(prior, seed=seed) if prior is not None else None
        data = self._dataset(results, names, reference)
        effective = data["effective_dimension"].values
        message = self._message(results, names, effective)
        reduced = [i for i, k in enumerate(effective) if k < len(results[0].spectrum)]
        return DiagnosticResult(
            name=self.name,
            statistic=float(np.mean(data["total_correlation"].values)),
            passed=not reduced,
            threshold=self.degenerate_ratio,
            summary={
                "min_effective_dimension": float(effective.min()),
                "latent_dimension": float(len(results[0].spectrum)),
                "mean_entropy": float(np.mean(data["entropy"].values)),
                "num_observations": float(len(results)),
            },
            data=data,
            message=message,
        )

    def _message(
        self, results: list[EntropicMetrics], names: list[str], effective: np.ndarray
    ) -> str:
        d = len(results[0].spectrum)
        parts = []
        for index, metrics in enumerate(results):
            degenerate = torch.nonzero(metrics.degenerate(self.degenerate_ratio)).flatten()
            if len(degenerate) == 0:
                continue
            listing = "; ".join(
                f"direction {i + 1} (H={float(metrics.principal_spectrum[i]):.2f} nats vs "
                f"{float(metrics.principal_spectrum[0]):.2f}, along "
                f"{_describe(metrics.principal_directions[i].numpy(), names)})"
                for i in degenerate.tolist()
            )
            parts.append(
                f"observation {index}: posterior effectively {int(effective[index])}-dimensional, "
                f"near-degenerate {listing}"
            )
        tc = float(np.mean([m.total_correlation for m in results]))
        if not parts:
            return (
                f"all {len(results)} posteriors use all {d} directions (none below "
                f"{self.degenerate_ratio:g} x the widest); mean total correlation {tc:.3f} nats"
            )
        return " | ".join(parts) + f"; mean total correlation {tc:.3f} nats"

    def _dataset(
        self, results: list[EntropicMetrics], names: list[str], reference: float | None
    ) -> xr.Dataset:
        import xarray as xr

        d = len(results[0].spectrum)
        latents = [f"z{i + 1}" for i in range(d)]
        stack = lambda attribute: np.stack([getattr(m, attribute).numpy() for m in results])  # noqa: E731
        data = xr.Dataset(
            {
                "spectrum": (("observation", "latent"), stack("spectrum")),
                "spectrum_se": (("observation", "latent"), stack("spectrum_se")),
                "mpmi": (("observation", "latent", "other_latent"), stack("mpmi")),
                "direction": (("observation", "latent", "parameter"), stack("directions")),
                "principal_spectrum": (("observation", "component"), stack("principal_spectrum")),
                "principal_spectrum_se": (
                    ("observation", "component"),
                    stack("principal_spectrum_se"),
                ),
                "principal_direction": (
                    ("observation", "component", "parameter"),
                    stack("principal_directions"),
                ),
                "degenerate": (
                    ("observation", "component"),
                    np.stack([m.degenerate(self.degenerate_ratio).numpy() for m in results]).astype(
                        np.int8
                    ),
                ),
                "total_correlation": (
                    "observation",
                    np.array([m.total_correlation for m in results]),
                ),
                "total_correlation_se": (
                    "observation",
                    np.array([m.total_correlation_se for m in results]),
                ),
                "entropy": ("observation", np.array([m.entropy for m in results])),
                "effective_dimension": (
                    "observation",
                    np.array([m.effective_dimension(self.degenerate_ratio) for m in results]),
                ),
            },
            coords={
                "observation": np.arange(len(results)),
                "latent": latents,
                "other_latent": latents,
                "component": np.arange(1, d + 1),
                "parameter": list(names),
            },
        )
        data.attrs.update(
            {
                "num_samples": self.num_samples,
                "degenerate_ratio": self.degenerate_ratio,
                "latent_entropy": float(results[0].prior_entropies.mean()),
                "prior_included": int(results[0].prior_included),
                "prior_entropy_per_dimension": float("nan") if reference is None else reference,
            }
        )
        return data

    # -- plot ---------------------------------------------------------------------------------

    def plot(self, result: DiagnosticResult, ax: Axes | None = None) -> Figure:
        """Sorted entropy spectra (left) and the first observation's MPMI heat map (right)."""
        data = result.data
        require_variables(data, ("spectrum", "principal_spectrum", "mpmi"), self.name)
        created = ax is None
        if created:
            import matplotlib.pyplot as plt

            figure, (ax, heat_ax) = plt.subplots(1, 2, figsize=(9.0, 3.8), layout="constrained")
        else:
            figure, ax = figure_and_axes(ax)
            heat_ax = ax.inset_axes([1.18, 0.0, 0.85, 1.0])  # to the right of the given axes

        spectra = np.sort(np.asarray(data["spectrum"].values, dtype=float), axis=1)[:, ::-1]
        principal = np.asarray(data["principal_spectrum"].values, dtype=float)
        ranks = np.arange(1, spectra.shape[1] + 1)
        for index, spectrum in enumerate(spectra):
            (line,) = ax.plot(
                ranks, spectrum, "o-", lw=1, ms=3, label=f"obs {index}" if index < 5 else None
            )
            ax.plot(ranks, principal[index], "x--", lw=0.8, color=line.get_color())
        reference = float(data.attrs.get("prior_entropy_per_dimension", float("nan")))
        if math.isfinite(reference):
            ax.axhline(reference, color="k", ls="--", lw=1, label="prior entropy / dim")
        ratio = float(data.attrs.get("degenerate_ratio", 0.1))
        widest = principal[:, 0].min()
        ax.axhline(
            widest + math.log(ratio), color="tab:red", ls=":", lw=1, label="degenerate below"
        )
        ax.set_xticks(ranks)
        ax.set_xlabel("direction (sorted; o latent, x principal)")
        ax.set_ylabel("manifold entropy H_i (nats)")
        ax.legend(fontsize=7)

        matrix = np.asarray(data["mpmi"].values[0], dtype=float)
        image = heat_ax.imshow(matrix, cmap="magma_r", vmin=0.0)
        labels = [str(v) for v in data["latent"].values]
        heat_ax.set_xticks(range(len(labels)), labels, fontsize=7)
        heat_ax.set_yticks(range(len(labels)), labels, fontsize=7)
        heat_ax.set_title("MPMI, observation 0 (nats; diagonal blank)", fontsize=9)
        figure.colorbar(image, ax=heat_ax, shrink=0.8)
        ax.set_title("entropy spectrum", fontsize=9)
        if created and result.message:
            text = result.message if len(result.message) < 140 else result.message[:137] + "..."
            figure.suptitle(text, fontsize=8)
        return figure
