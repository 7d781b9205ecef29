"""Modes of a sample by density-based distance: count, masses, representatives, geodesics.

Draws are over-clustered by average linkage on their density-based distances (Sorrenson et al.,
ICML 2025, https://arxiv.org/abs/2407.09297: shortest paths follow the density, so a cluster is
a connected high-density region), the lowest-density fifth joining afterwards; clusters holding
less than ``min_mass`` join their nearest neighbour. The clusters then merge by persistence,
as in ToMATo (Chazal, Guibas, Oudot, Skraba, JACM 2013): the saddle of two clusters is the
lowest density on the geodesic between their highest-density draws, and two groups stay apart
when their saddle lies below ``valley`` times the lower of the groups' highest peaks. The dip is
read off two densities, the model's and the draws' own kNN density, and either one suffices:
a flow may join two modes by a filament of high density but almost no mass, which the draws
show as a gap, while an isotropic kNN ball smooths over a gap across a thin direction, which
the model resolves. So a curved ridge stays one mode, separated bumps count apart, and a small
cluster on a bridge between two modes joins one of them instead of gluing them together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sbiplug.toolkit import OptionError, check_int, check_probability
from sbiplug_distances.distance import DensityDistance
from sbiplug_distances.graph import knn_log_density

__all__ = ["TAIL", "VALLEY_NEIGHBORS", "Modes", "find_modes"]

TAIL = 0.2
"""Share of lowest-density draws left out of the over-clustering (then assigned)."""

VALLEY_NEIGHBORS = 20
"""``k`` of the draws' kNN density that measures the dip between two peaks."""


@dataclass
class Modes:
    """Modes of one sample.

    Arguments:
        labels: Mode of each draw, ``(n,)``, in ``0 .. K-1`` by decreasing mass.
        masses: Share of draws in each mode, ``(K,)``.
        representatives: Index of each mode's highest-density draw, ``(K,)``.
        pairs: Mode pairs ``(i, j)`` with ``i < j`` of the geodesics, ``(K (K - 1) / 2, 2)``.
        geodesics: Geodesics between the representatives of each pair, ``(pairs, P, D)``.
        valleys: Lowest density on each geodesic over the lower peak density, ``(pairs,)``.
    """

    labels: Tensor
    masses: Tensor
    representatives: Tensor
    pairs: Tensor
    geodesics: Tensor
    valleys: Tensor

    @property
    def num_modes(self) -> int:
        return len(self.masses)


def find_modes(
    draws: Tensor,
    distance: DensityDistance,
    *,
    max_modes: int = 8,
    min_mass: float = 0.03,
    valley: float = 0.2,
) -> Modes:
    """Find the modes of ``draws`` ``(n, D)`` with a fitted :class:`DensityDistance`.

    Arguments:
        draws: The sample, shape ``(n, D)``.
        distance: A distance fitted on (typically) the same draws, with a density.
        max_modes: Clusters of the over-clustering, an upper bound on the modes.
        min_mass: Clusters with a smaller share of the draws are not modes.
        valley: Two groups of clusters are separate modes when the lowest density on the
            geodesics joining them falls below ``valley`` times the lower of their highest
            peaks' densities, by the model's density or by the draws' kNN density.

    Returns:
        The :class:`Modes`.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    max_modes = check_int("max_modes", max_modes, minimum=1, owner="find_modes")
    min_mass = check_probability("min_mass", min_mass, owner="find_modes")
    valley = check_probability("valley", valley, owner="find_modes")
    if distance.density is None:
        raise OptionError("find_modes: the distance needs a density (not density='knn')")
    draws = draws.double()
    n = len(draws)
    matrix = distance.pairwise(draws).numpy()
    log_prob = distance.density.log_prob(draws.float()).numpy()
    # Tail draws are far from everything under this metric and would each take one of the
    # ``max_modes`` clusters: cluster the core (all but the lowest-density share ``TAIL``),
    # then give each tail draw the cluster of its nearest core draw.
    core = log_prob >= np.quantile(log_prob, TAIL)
    clusters = np.zeros(n, dtype=int)
    if core.sum() >= 3 and max_modes > 1:
        inner = matrix[np.ix_(core, core)]
        tree = linkage(squareform(inner, checks=False), method="average")
        clusters[core] = fcluster(tree, t=max_modes, criterion="maxclust") - 1
        members = np.flatnonzero(core)
        tail = np.flatnonzero(~core)
        if len(tail):
            nearest = members[np.argmin(matrix[np.ix_(tail, members)], axis=1)]
            clusters[tail] = clusters[nearest]
    clusters = _absorb_small(clusters, matrix, min_mass)

    # One batch of geodesics between the clusters' peaks, then merging by persistence.
    names = np.unique(clusters)
    peaks = np.array([_peak(clusters == c, log_prob) for c in names])
    pairs, geodesics, saddles, heights = _saddles(draws, peaks, distance)
    roots = _merge_by_persistence(pairs, saddles, heights, math.log(valley))
    ratios = np.exp(saddles - np.minimum(heights[pairs[:, 0]], heights[pairs[:, 1]])).min(axis=1)
    merged = roots[np.searchsorted(names, clusters)]

    # Relabel by decreasing mass; keep the geodesics between the surviving peaks.
    groups, counts = np.unique(merged, return_counts=True)
    order = groups[np.argsort(-counts, kind="stable")]
    labels = np.empty(n, dtype=np.int64)
    for new, old in enumerate(order):
        labels[merged == old] = new
    best = [max(np.flatnonzero(roots == old), key=lambda c: log_prob[peaks[c]]) for old in order]
    representatives = peaks[best]
    lookup = {(int(i), int(j)): row for row, (i, j) in enumerate(pairs)}
    final_pairs = [(a, b) for a in range(len(order)) for b in range(a + 1, len(order))]
    rows, flip = [], []
    for a, b in final_pairs:
        i, j = best[a], best[b]
        rows.append(lookup[(min(i, j), max(i, j))])
        flip.append(i > j)
    kept = geodesics[rows] if rows else geodesics[:0]
    for index, reverse in enumerate(flip):
        if reverse:
            kept[index] = kept[index].flip(0)
    masses = np.bincount(labels, minlength=len(order)) / n
    return Modes(
        labels=torch.as_tensor(labels),
        masses=torch.as_tensor(masses),
        representatives=torch.as_tensor(representatives),
        pairs=torch.as_tensor(final_pairs, dtype=torch.int64).reshape(-1, 2),
        geodesics=kept,
        valleys=torch.as_tensor(ratios[rows] if rows else np.zeros(0)),
    )


def _peak(members: np.ndarray, log_prob: np.ndarray) -> int:
    return int(np.flatnonzero(members)[np.argmax(log_prob[members])])


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        i = parent[i]
    return i


def _merge_by_persistence(
    pairs: np.ndarray, saddles: np.ndarray, heights: np.ndarray, log_valley: float
) -> np.ndarray:
    """Root cluster of each cluster after merging by persistence, ``(K,)``.

    ``saddles`` ``(P, E)`` and ``heights`` ``(K, E)`` are log densities under ``E`` density
    estimates. Pairs are joined from the highest saddle down (a maximum spanning forest, by the
    saddles' mean over the estimates). Two groups merge when, under every estimate, their saddle
    is above ``valley`` times the lower of the groups' *highest* peaks, so a low cluster on a
    bridge between two modes joins one of them without gluing them together: the saddle between
    the modes through it is still compared with the modes' own peaks.
    """
    parent = list(range(len(heights)))
    top = heights.copy()  # highest peaks of the group each root stands for, (K, E)
    for row in np.argsort(-saddles.mean(axis=1), kind="stable"):
        a, b = _root(parent, int(pairs[row, 0])), _root(parent, int(pairs[row, 1]))
        if a == b or np.any(saddles[row] < log_valley + np.minimum(top[a], top[b])):
            continue
        parent[b] = a
        top[a] = np.maximum(top[a], top[b])
    return np.array([_root(parent, i) for i in range(len(heights))])


def _absorb_small(clusters: np.ndarray, matrix: np.ndarray, min_mass: float) -> np.ndarray:
    """Give the draws of clusters below ``min_mass`` to the nearest large cluster's draw."""
    clusters = clusters.copy()
    names, counts = np.unique(clusters, return_counts=True)
    large = names[counts >= min_mass * len(clusters)]
    if len(large) == 0:
        large = names[[int(np.argmax(counts))]]
    keep = np.isin(clusters, large)
    small = np.flatnonzero(~keep)
    if len(small):
        members = np.flatnonzero(keep)
        nearest = members[np.argmin(matrix[np.ix_(small, members)], axis=1)]
        clusters[small] = clusters[nearest]
    return clusters


def _saddles(
    draws: Tensor, peaks: np.ndarray, distance: DensityDistance
) -> tuple[np.ndarray, Tensor, np.ndarray, np.ndarray]:
    """Geodesics between all pairs of peaks, their saddles and the peaks' heights.

    Returns the pairs ``(P, 2)``, the geodesics ``(P, num_points, D)``, the lowest log density
    on each geodesic (at most its lower end's) ``(P, 2)`` and the log density at each peak
    ``(K, 2)``, by the model's density (column 0) and by the draws' kNN density (column 1).
    """
    k = len(peaks)
    pairs = np.array([(i, j) for i in range(k) for j in range(i + 1, k)], dtype=np.int64)
    sample = draws.numpy()
    neighbors = min(VALLEY_NEIGHBORS, len(sample) - 1)

    def log_densities(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            model = distance.density.log_prob(torch.as_tensor(points, dtype=torch.float32))
        return np.stack([model.double().numpy(), knn_log_density(sample, points, neighbors)], 1)

    heights = log_densities(sample[peaks])
    if len(pairs) == 0:
        empty = torch.zeros(0, distance.num_points, draws.shape[1])
        return pairs.reshape(0, 2), empty, np.zeros((0, 2)), heights
    a, b = draws[peaks[pairs[:, 0]]], draws[peaks[pairs[:, 1]]]
    geodesics = distance.geodesic(a, b)
    points = geodesics.double().reshape(-1, draws.shape[1]).numpy()
    along = log_densities(points).reshape(len(pairs), -1, 2).min(axis=1)
    lower = np.minimum(heights[pairs[:, 0]], heights[pairs[:, 1]])
    saddles = np.minimum(along, lower)
    return pairs, geodesics, saddles, heights
