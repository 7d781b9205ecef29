"""Score-guided relaxation of discrete paths under a conformal density-based metric.

A path ``x_0 .. x_P`` (fixed ends) has the length ``L = sum_k |x_{k+1} - x_k| (n_k + n_{k+1})/2``
with ``n = p^(-beta)`` (trapezoid rule). Its gradient with respect to an interior point is
``t_{k-1}(n_{k-1}+n_k)/2 - t_k(n_k+n_{k+1})/2 - beta lbar_k n_k s(x_k)`` with unit segment
directions ``t``, mean adjacent segment length ``lbar`` and score ``s = grad log p``: only the
score is needed (Sorrenson et al., ICML 2025, https://arxiv.org/abs/2407.09297). Points move by
a preconditioned gradient step, the path is re-spaced to equal Euclidean segments, and a step is
kept only when it shortens that path (per-path adaptive step size), coarse to fine.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbiplug_distances.densities import Density
from sbiplug_distances.graph import MAX_EXPONENT

__all__ = ["RelaxationResult", "path_length", "relax", "respace"]


def _factor(log_prob: Tensor, beta: float) -> Tensor:
    exponent = torch.nan_to_num(-beta * log_prob, nan=MAX_EXPONENT)
    return exponent.clamp(-MAX_EXPONENT, MAX_EXPONENT).exp()


def path_length(paths: Tensor, log_prob: Tensor, beta: float) -> Tensor:
    """Metric length of each path: ``(m, P, D)`` points, ``(m, P)`` log-densities -> ``(m,)``."""
    segments = (paths[:, 1:] - paths[:, :-1]).norm(dim=-1)
    factor = _factor(log_prob, beta)
    return (segments * 0.5 * (factor[:, 1:] + factor[:, :-1])).sum(dim=1)


def respace(paths: Tensor, num_points: int) -> Tensor:
    """Resample each polyline at ``num_points`` points equally spaced in Euclidean arc length.

    Arguments:
        paths: Polylines, shape ``(m, P, D)``.
        num_points: Points of the result, ``>= 2`` (ends kept).

    Returns:
        Shape ``(m, num_points, D)``.
    """
    segments = (paths[:, 1:] - paths[:, :-1]).norm(dim=-1)
    arc = torch.cat([segments.new_zeros(len(paths), 1), segments.cumsum(dim=1)], dim=1)
    total = arc[:, -1:].clamp_min(1e-300)
    target = torch.linspace(0.0, 1.0, num_points, dtype=paths.dtype)[None, :] * total
    index = torch.searchsorted(arc.contiguous(), target.contiguous()).clamp(1, paths.shape[1] - 1)
    low, high = arc.gather(1, index - 1), arc.gather(1, index)
    weight = ((target - low) / (high - low).clamp_min(1e-300)).clamp(0.0, 1.0)[..., None]
    expand = (-1, -1, paths.shape[-1])
    start = paths.gather(1, (index - 1)[..., None].expand(*expand))
    end = paths.gather(1, index[..., None].expand(*expand))
    result = start + weight * (end - start)
    result[:, 0], result[:, -1] = paths[:, 0], paths[:, -1]
    return result


class RelaxationResult:
    """Relaxed paths ``(m, P, D)``, their lengths ``(m,)`` and the length history ``(T, m)``.

    ``level_starts[i]`` is the history row where resolution level ``i`` begins (re-sampling to
    more points changes the quadrature, so lengths are comparable within one level).
    """

    def __init__(
        self, paths: Tensor, lengths: Tensor, history: Tensor, level_starts: list[int]
    ) -> None:
        self.paths = paths
        self.lengths = lengths
        self.history = history
        self.level_starts = level_starts


def _gradient(paths: Tensor, log_prob: Tensor, score: Tensor, beta: float) -> Tensor:
    """Length gradient at interior points divided by the local factor, ``(m, P-2, D)``."""
    steps = paths[:, 1:] - paths[:, :-1]
    lengths = steps.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    unit = steps / lengths
    factor = _factor(log_prob, beta)[..., None]
    before = unit[:, :-1] * 0.5 * (factor[:, :-2] + factor[:, 1:-1])
    after = unit[:, 1:] * 0.5 * (factor[:, 1:-1] + factor[:, 2:])
    mean_length = 0.5 * (lengths[:, :-1] + lengths[:, 1:])
    gradient = before - after - beta * mean_length * factor[:, 1:-1] * score[:, 1:-1]
    local = 0.25 * (factor[:, :-2] + 2 * factor[:, 1:-1] + factor[:, 2:])
    return mean_length * gradient / local


def relax(
    paths: Tensor,
    density: Density,
    beta: float,
    *,
    num_points: int = 32,
    max_iterations: int = 400,
    step_size: float = 0.25,
    tolerance: float = 1e-6,
    show_progress_bars: bool = False,
) -> RelaxationResult:
    """Relax paths towards geodesics of ``n(x) = p(x)^(-beta)``, coarse to fine.

    Arguments:
        paths: Initial paths, shape ``(m, P0, D)``; their ends stay fixed.
        density: Gives ``log p`` (to price a step) and the score (to choose it).
        beta: Exponent of the metric factor.
        num_points: Points of the returned paths, ``>= 3``.
        max_iterations: Gradient steps in all, split over the resolution levels.
        step_size: Initial step, in units of the adjacent segment length.
        tolerance: A path stops when an accepted step shortens it by less than this fraction.
        show_progress_bars: Progress bar over the iterations (stderr).

    Returns:
        A :class:`RelaxationResult`; lengths never increase within a resolution level.
    """
    from tqdm.auto import tqdm

    levels = [num_points]
    while levels[-1] > 9:
        levels.append((levels[-1] + 1) // 2)
    levels = levels[::-1]
    per_level = max(1, max_iterations // len(levels))
    current = respace(paths.double(), levels[0])
    history: list[Tensor] = []
    level_starts: list[int] = []
    bar = tqdm(total=per_level * len(levels), desc="relax", disable=not show_progress_bars)
    for level, size in enumerate(levels):
        if level:
            current = respace(current, size)
        flat = current.reshape(-1, current.shape[-1])
        log_prob = density.log_prob(flat).reshape(current.shape[:2])
        length = path_length(current, log_prob, beta)
        level_starts.append(len(history))
        history.append(length.clone())
        step = torch.full((len(current),), float(step_size), dtype=torch.float64)
        active = torch.ones(len(current), dtype=torch.bool)
        for _ in range(per_level):
            bar.update(1)
            if not bool(active.any()):
                continue
            index = torch.nonzero(active).flatten()
            paths_a = current[index]
            score = density.score(paths_a.reshape(-1, paths_a.shape[-1])).reshape(paths_a.shape)
            move = _gradient(paths_a, log_prob[index], score, beta)
            candidate = paths_a.clone()
            candidate[:, 1:-1] -= step[index, None, None] * move
            candidate = respace(candidate, size)
            new_log_prob = density.log_prob(candidate.reshape(-1, candidate.shape[-1]))
            new_log_prob = new_log_prob.reshape(candidate.shape[:2])
            new_length = path_length(candidate, new_log_prob, beta)
            better = new_length < length[index]
            gain = (length[index] - new_length) / length[index].clamp_min(1e-300)
            kept = index[better]
            current[kept] = candidate[better]
            log_prob[kept] = new_log_prob[better]
            length[kept] = new_length[better]
            step[kept] = (step[kept] * 1.5).clamp_max(4.0)
            step[index[~better]] *= 0.5
            finished = (better & (gain < tolerance)) | (step[index] < 1e-6)
            active[index[finished]] = False
            history.append(length.clone())
        bar.set_postfix(points=size)
    bar.close()
    return RelaxationResult(current, length, torch.stack(history), level_starts)
