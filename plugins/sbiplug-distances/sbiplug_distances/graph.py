"""kNN graphs whose edges cost the density-based length of the segment; shortest paths on them.

The sample Fermat distance (Groisman, Jonckheere & Sapienza, 2022) takes shortest paths over
sample points. Here each edge of a symmetric k-nearest-neighbour graph costs its Euclidean
length times the metric factor ``n(x) = p(x)^(-beta)`` averaged along it: Simpson's rule on the
endpoints and the midpoint where a density can be evaluated anywhere (a flow), the trapezoid
rule on the endpoints where it cannot (a kNN density estimate). Learned Fermat distances
(Sorrenson et al., ICML 2025, https://arxiv.org/abs/2407.09297) initialise relaxation here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

__all__ = [
    "MAX_EXPONENT",
    "connect_components",
    "edge_costs",
    "knn_edges",
    "knn_log_density",
    "metric_factor",
    "shortest_paths",
    "trace_path",
]

MAX_EXPONENT = 100.0
"""``|beta * log p|`` is clipped here so that zero densities cost a large, finite length."""


def metric_factor(log_prob: np.ndarray, beta: float) -> np.ndarray:
    """``n(x) = exp(-beta * log p(x))``, the conformal factor of the metric, shape kept."""
    exponent = np.nan_to_num(-beta * np.asarray(log_prob, dtype=float), nan=MAX_EXPONENT)
    return np.exp(np.clip(exponent, -MAX_EXPONENT, MAX_EXPONENT))


def knn_edges(points: np.ndarray, k: int) -> np.ndarray:
    """Undirected edges of the symmetric kNN graph, shape ``(E, 2)`` with ``i < j``."""
    k = min(k, len(points) - 1)
    _, neighbours = cKDTree(points).query(points, k=k + 1)
    rows = np.repeat(np.arange(len(points)), k)
    cols = neighbours[:, 1:].reshape(-1)
    pairs = np.stack([np.minimum(rows, cols), np.maximum(rows, cols)], axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0)


def connect_components(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Add, for each extra connected component, its shortest Euclidean link to the rest.

    A kNN graph on separated modes falls apart; the link that joins them crosses the
    low-density gap and so gets a large, finite cost instead of an infinite distance.
    """
    n = len(points)
    while True:
        graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), (n, n))
        count, labels = csgraph.connected_components(graph, directed=False)
        if count <= 1:
            return edges
        smallest = np.argmin(np.bincount(labels))
        inside = np.flatnonzero(labels == smallest)
        outside = np.flatnonzero(labels != smallest)
        distance, nearest = cKDTree(points[outside]).query(points[inside], k=1)
        best = int(np.argmin(distance))
        i, j = int(inside[best]), int(outside[nearest[best]])
        edges = np.concatenate([edges, [[min(i, j), max(i, j)]]])


def knn_log_density(
    samples: np.ndarray, query: np.ndarray, k: int, *, tree: cKDTree | None = None
) -> np.ndarray:
    """The kNN density estimate ``k / (n V_D r_k^D)`` in log space, at ``query`` ``(m, D)``.

    Query points that are samples themselves are not counted as their own neighbour.
    """
    n, dim = samples.shape
    tree = cKDTree(samples) if tree is None else tree
    distances, _ = tree.query(query, k=min(k + 1, n))
    distances = np.atleast_2d(distances)
    own = distances[:, 0] <= 1e-12
    radius = np.where(own, distances[:, min(k, distances.shape[1] - 1)], distances[:, k - 1])
    log_volume = 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1.0)
    return math.log(k) - math.log(n) - log_volume - dim * np.log(np.maximum(radius, 1e-300))


def edge_costs(
    points: np.ndarray,
    edges: np.ndarray,
    node_factor: np.ndarray,
    midpoint_factor: np.ndarray | None = None,
) -> np.ndarray:
    """Length of each edge under the metric: ``|x_i - x_j|`` times the mean factor along it.

    Arguments:
        points: Node positions, shape ``(N, D)``.
        edges: Node pairs, shape ``(E, 2)``.
        node_factor: ``n(x)`` at the nodes, shape ``(N,)``.
        midpoint_factor: ``n(x)`` at the edge midpoints, shape ``(E,)``; Simpson's rule when
            given, else the trapezoid rule.

    Returns:
        Costs, shape ``(E,)``.
    """
    length = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    ends = node_factor[edges[:, 0]] + node_factor[edges[:, 1]]
    mean = 0.5 * ends if midpoint_factor is None else (ends + 4.0 * midpoint_factor) / 6.0
    # A zero cost would make scipy drop the edge; duplicates are joined at a negligible cost.
    return np.maximum(length * mean, 1e-300)


def shortest_paths(
    num_nodes: int, edges: np.ndarray, costs: np.ndarray, sources: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dijkstra from ``sources``: distances and predecessors, each ``(len(sources), N)``."""
    graph = sparse.csr_matrix((costs, (edges[:, 0], edges[:, 1])), shape=(num_nodes, num_nodes))
    distances, predecessors = csgraph.dijkstra(
        graph, directed=False, indices=sources, return_predecessors=True
    )
    return distances, predecessors


def trace_path(predecessors: np.ndarray, target: int) -> list[int]:
    """Node indices of the shortest path ending at ``target`` (row of one source)."""
    path = [int(target)]
    while predecessors[path[-1]] >= 0:
        path.append(int(predecessors[path[-1]]))
    return path[::-1]
