"""The simulated null: reference points, null statistics and the exact min-p block combination.

Given the reference set, the observed statistics and the B null statistics (each from N fresh
simulated data sets) are exchangeable under H0. With several blocks, each block's p-value is
ranked among the B + 1 values (observed included) and the smallest is the combined statistic,
so the combined test stays exact at any B with (1 + B) · alpha >= 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sbiplug import Simulator
from sbiplug.toolkit import ensure_seed, monte_carlo_p_value
from sbiplug_misspec.data_features import default_data_features
from sbiplug_misspec.explain import explain_block, message
from sbiplug_misspec.regularizer import KERNEL_SCALES, KernelName
from sbiplug_misspec.residuals import PredictiveResiduals
from sbiplug_misspec.result import MisspecificationTest
from sbiplug_misspec.summaries import (
    resolve_estimator,
    resolve_summary,
    root_mmd,
    self_kernel,
    summarise,
)

__all__ = ["SimulatedNull", "resolve_data_features", "smallest_null", "too_small_message"]


def smallest_null(alpha: float) -> int:
    return math.ceil(1.0 / alpha - 1.0 - 1e-9)


def too_small_message(num_null: Any, alpha: float) -> str:
    return (
        f"num_null={num_null!r} is too small for alpha={alpha}: the p-value "
        "(1 + #{null >= T}) / (1 + num_null) can reach alpha only when "
        f"(1 + num_null) * alpha >= 1, i.e. num_null >= {smallest_null(alpha)} (use hundreds)"
    )


class SimulatedNull:
    """Reference points and a simulated null for testing N observed data sets at a time.

    Build once (:meth:`build`), then test many groups of N observations against the same model
    with :meth:`test` (valid conditionally on the reference set and null).
    :func:`misspecification_test` builds a fresh one per call. Each *block* (the learned
    summaries; the data features unless ``data_features=None``) has its own reference points,
    root-MMD statistic and null; the blocks are combined by their smallest p-value, whose null
    comes from the same simulated replicates, so the combination is exact too.
    """

    def __init__(
        self,
        featurisers: list[Callable[[Tensor], Tensor]],
        block_names: list[str],
        feature_names: list[list[str]],
        feature_kinds: list[list[str]],
        references: list[Tensor],
        null_statistics: Tensor,
        num_observed: int,
        kernel: KernelName,
    ) -> None:
        self.featurisers = featurisers
        self.block_names = block_names
        self.feature_names = feature_names
        self.feature_kinds = feature_kinds
        self.references = references
        self.block_null = null_statistics  # (B, K)
        self.num_observed = num_observed
        self.kernel: KernelName = kernel
        self.reference_terms = [self_kernel(r[None], kernel, KERNEL_SCALES)[0] for r in references]
        # Per block, how many null values reach each null value (itself included): (B, K).
        self._null_ranks = (null_statistics[None, :, :] >= null_statistics[:, None, :]).sum(1)

    @property
    def summary(self) -> Callable[[Tensor], Tensor]:
        return self.featurisers[0]

    @property
    def reference(self) -> Tensor:
        """The summary block's reference points, ``(M, S)``."""
        return self.references[0]

    @property
    def null_statistics(self) -> Tensor:
        """The summary block's null root MMDs, ``(B,)``."""
        return self.block_null[:, 0]

    @classmethod
    def build(
        cls,
        summary: Any,
        simulator: Simulator,
        num_observed: int,
        num_reference: int = 1000,
        num_null: int = 500,
        kernel: KernelName = "imq",
        seed: int | None = None,
        x_extra: Tensor | None = None,
        data_features: Any = "auto",
    ) -> tuple[SimulatedNull, list[Tensor] | None]:
        """Simulate, featurise and compute the null; returns it and ``x_extra``'s features."""
        summary_fn = resolve_summary(summary)
        blocks = resolve_data_features(data_features, simulator, summary)
        sequence = np.random.SeedSequence(ensure_seed(seed))
        prior_seed, simulation_seed, feature_seed = (
            int(s.generate_state(1)[0]) for s in sequence.spawn(3)
        )
        # Reference and null data sets in one simulation batch: M + B·N draws from the model.
        total = num_reference + num_null * num_observed
        theta = simulator.sample_prior(total, seed=prior_seed)
        x_model = simulator.simulate(theta, seed=simulation_seed)
        if x_extra is not None:
            x_model = torch.cat([x_model, x_extra.to(x_model.dtype)])
        featurisers: list[Callable[[Tensor], Tensor]] = [summary_fn]
        names, kinds = [None], [None]
        raw = [summarise(summary_fn, x_model)]
        # Features that draw random numbers (the residual block) do so from a
        # generator seeded here, so a seeded test is reproducible.
        with torch.random.fork_rng():
            torch.manual_seed(feature_seed)
            for _, data_fn in blocks:
                values = torch.as_tensor(data_fn(x_model)).to(torch.float64)
                standardise = _Standardised(data_fn, values[:num_reference])
                featurisers.append(standardise)
                raw.append(standardise.apply(values))
                names.append(list(getattr(data_fn, "names", [])) or None)
                kinds.append(list(getattr(data_fn, "kinds", [])) or None)
        for features in raw:
            if not torch.isfinite(features).all():
                raise ValueError("summary produced non-finite values; cannot compute the MMD")
        names = [
            n or [f"{'summary' if b == 0 else 'feature'}[{i}]" for i in range(f.shape[1])]
            for b, (n, f) in enumerate(zip(names, raw))
        ]
        kinds = [
            k or [("summary" if b == 0 else "value")] * f.shape[1]
            for b, (k, f) in enumerate(zip(kinds, raw))
        ]
        references = [f[:num_reference] for f in raw]
        null = torch.stack(
            [
                root_mmd(
                    f[num_reference:total].reshape(num_null, num_observed, -1),
                    reference,
                    self_kernel(reference[None], kernel, KERNEL_SCALES)[0],
                    kernel,
                )
                for f, reference in zip(raw, references)
            ],
            dim=-1,
        )
        block_names = ["summary", *(name for name, _ in blocks)]
        null_model = cls(
            featurisers, block_names, names, kinds, references, null, num_observed, kernel
        )
        extra = [f[total:] for f in raw] if x_extra is not None else None
        return null_model, extra

    def features(self, x: Tensor) -> list[Tensor]:
        """Each block's (standardised) features of data sets ``(n, *shape)``: ``[(n, F_k)]``."""
        return [summarise(f, x) for f in self.featurisers]

    def statistics(self, groups: Tensor | list[Tensor]) -> Tensor:
        """Root MMDs of groups to the reference: ``[(G, N, F_k)]`` -> ``(G, K)``.

        A single tensor ``(G, N, S)`` is the summary block alone and gives ``(G,)``.
        """
        if isinstance(groups, Tensor):
            return root_mmd(
                groups.to(torch.float64), self.reference, self.reference_terms[0], self.kernel
            )
        return torch.stack(
            [
                root_mmd(g.to(torch.float64), r, term, self.kernel)
                for g, r, term in zip(groups, self.references, self.reference_terms)
            ],
            dim=-1,
        )

    def combine(self, statistics: Tensor) -> tuple[Tensor, Tensor]:
        """Combined statistics and their null for observed block statistics ``(G, K)``.

        Returns:
            ``(G,)`` observed and ``(G, B)`` null values of −log(smallest block p-value),
            each block's p-value ranked among the B null values and the observed one (so
            observed and null are exchangeable under H0); ties are broken by the sum of
            −log p over blocks.
        """
        null = self.block_null
        total = len(null) + 1
        observed_p = (1 + (null[None] >= statistics[:, None]).sum(1)) / total  # (G, K)
        null_p = (self._null_ranks[None] + (statistics[:, None] >= null[None])) / total
        return _min_p_statistic(observed_p), _min_p_statistic(null_p)

    def p_values(self, statistics: Tensor) -> Tensor:
        """The test's p-values for observed block statistics ``(G, K)``: ``(G,)``."""
        if statistics.shape[-1] == 1:
            null = self.block_null[:, 0]
            return (1 + (null[None] >= statistics)).sum(1).double() / (1 + len(null))
        observed, null = self.combine(statistics)
        return (1 + (null >= observed[:, None]).sum(1)).double() / (1 + null.shape[1])

    def test(self, x_observed: Tensor, alpha: float = 0.05) -> MisspecificationTest:
        """Test N observed data sets, shape ``(N, *observation_shape)``."""
        observed = self.features(x_observed)
        return self.decide(self.statistics([o[None] for o in observed])[0], alpha, observed)

    def decide(
        self, statistic: Tensor | float, alpha: float = 0.05, observed: list[Tensor] | None = None
    ) -> MisspecificationTest:
        """The p-value, critical value, decision and explanation for block statistics ``(K,)``.

        ``observed`` (each block's observed features, ``[(N, F_k)]``) adds the explanation.
        """
        blocks = torch.as_tensor(statistic, dtype=torch.float64).reshape(1, -1)
        num_null = len(self.block_null)
        k = math.floor(alpha * (1 + num_null) + 1e-9) - 1
        if k < 0:
            raise ValueError(too_small_message(num_null, alpha))
        if blocks.shape[1] == 1:
            value, null = float(blocks[0, 0]), self.block_null[:, 0]
        else:
            combined, combined_null = self.combine(blocks)
            value, null = float(combined[0]), combined_null[0]
        p_value = monte_carlo_p_value(value, null.detach().cpu().numpy())
        exceed = int((null >= value).sum())
        # Reject iff #{T_b >= T} <= k; the (k+1)-th largest null value is the critical value.
        critical_value = float(torch.sort(null, descending=True).values[k])
        rejected = exceed <= k
        block_p = (1 + (self.block_null >= blocks).sum(0)).double() / (1 + num_null)
        results = []
        if observed is not None:
            results = [
                explain_block(
                    name,
                    float(blocks[0, i]),
                    float(block_p[i]),
                    observed[i],
                    self.references[i],
                    self.feature_names[i],
                    self.feature_kinds[i],
                    self.kernel,
                )
                for i, name in enumerate(self.block_names)
            ]
        return MisspecificationTest(
            statistic=value,
            p_value=p_value,
            critical_value=critical_value,
            rejected=rejected,
            null_statistics=null.to(torch.float32),
            alpha=alpha,
            num_observed=self.num_observed,
            attrs={
                "num_reference": len(self.reference),
                "num_null": num_null,
                "kernel": self.kernel,
                "scales": KERNEL_SCALES,
                "null": "simulated, N fresh data sets per replicate",
                "blocks": list(self.block_names),
                "block_p_values": [float(p) for p in block_p],
            },
            blocks=results,
            message=message(rejected, p_value, alpha, self.num_observed, results)
            if results
            else "",
        )


def _min_p_statistic(p_values: Tensor) -> Tensor:
    """−log(min_k p_k) plus a 1e-6 tie-break by Σ_k −log p_k, over the last axis."""
    logs = -p_values.double().log()
    return logs.amax(-1) + 1e-6 * logs.sum(-1)


class _Standardised:
    """Features centred by the reference median and scaled by its IQR / 1.349."""

    def __init__(self, features: Callable[[Tensor], Tensor], reference: Tensor) -> None:
        self.features = features
        reference = reference.to(torch.float64)
        self.centre = reference.median(dim=0).values
        quartiles = torch.quantile(reference, torch.tensor([0.25, 0.75], dtype=torch.float64), 0)
        scale = (quartiles[1] - quartiles[0]) / 1.349
        fallback = reference.std(dim=0)
        scale = torch.where(scale > 1e-12, scale, torch.where(fallback > 1e-12, fallback, 1.0))
        self.scale = scale
        self.names = getattr(features, "names", None)

    def apply(self, values: Tensor) -> Tensor:
        """Standardise already computed features ``(n, F)``."""
        return (values.to(torch.float64) - self.centre) / self.scale

    def __call__(self, x: Tensor) -> Tensor:
        return self.apply(torch.as_tensor(self.features(x)))


def resolve_data_features(
    data_features: Any, simulator: Simulator, summary: Any = None
) -> list[tuple[str, Callable[[Tensor], Tensor]]]:
    """The data blocks ``[(name, features)]`` of the test for ``data_features``.

    ``"auto"``: for sets ``(n, d)`` the ``"data"`` block of within-set noise features; for
    vectors and time series ``(d,)`` the ``"data"`` block (x itself) and, when ``summary`` is
    a trained estimator or posterior, the ``"residual"`` block of plug-in residual noise
    features (:mod:`sbiplug_misspec.residuals`); for other shapes none.
    """
    if data_features is None:
        return []
    if isinstance(data_features, str):
        if data_features != "auto":
            raise ValueError(
                f"data_features must be 'auto', None or a callable x -> features, got "
                f"{data_features!r}"
            )
        shape = tuple(simulator.observation_shape)
        try:
            blocks = [("data", default_data_features(shape))]
        except ValueError:  # e.g. images: no generic data block, the summary block alone
            return []
        estimator = resolve_estimator(summary)
        if len(shape) == 1 and estimator is not None:
            blocks.append(("residual", PredictiveResiduals(estimator, simulator)))
        return blocks
    if callable(data_features):
        return [("data", data_features)]
    raise TypeError(
        f"data_features must be 'auto', None or a callable, got {type(data_features).__name__}"
    )
