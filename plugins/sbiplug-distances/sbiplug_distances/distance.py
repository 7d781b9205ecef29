"""``DensityDistance``: learned density-based (Fermat) distances, geodesics and distance matrices.

The metric ``g(x) = n(x)^2 I`` with ``n = p^(-beta)`` makes paths through low density long, so
geodesics follow the data (Sorrenson, Behrend-Uriarte, Schnörr, Köthe, *Learning Distances from
Data with Normalizing Flows and Score Matching*, ICML 2025, https://arxiv.org/abs/2407.09297).
A kNN graph on samples, edges priced by the density, gives initial paths (Dijkstra); a
score-guided relaxation refines them. The density is a flow fitted on the samples, any given
density (a flow, an sbi posterior, analytic functions) or the kNN estimate (graph only). The
dimension-adapted distance divides the exponent by the dimension: ``n = p^(-beta/D)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from sbiplug.toolkit import OptionError, check_float, check_int, check_positive_int, seeded
from sbiplug_distances.densities import Density, _check_samples, as_density, fit_flow
from sbiplug_distances.graph import (
    connect_components,
    edge_costs,
    knn_edges,
    knn_log_density,
    metric_factor,
    shortest_paths,
    trace_path,
)
from sbiplug_distances.relaxation import relax, respace

__all__ = ["DensityDistance"]

OWNER = "DensityDistance"


class DensityDistance:
    """Density-based distance fitted on samples.

    Arguments:
        density: ``None`` (default: fit a zuko spline flow on the samples), ``"knn"`` (the kNN
            density estimate: graph distances only), or a density source for
            :func:`~sbiplug_distances.densities.as_density` (a trained flow, an sbi posterior,
            a torch ``Distribution``, a callable ``log_prob``).
        score: Score model or function ``(n, D) -> (n, D)``; default: autograd of ``log p``.
        beta: Exponent of the metric factor; ``beta = 0`` is the Euclidean distance.
        adapted: Use the dimension-adapted factor ``p^(-beta/D)`` (default) instead of
            ``p^(-beta)``; the per-dimension log-density keeps factors finite in high ``D``.
        num_neighbors: ``k`` of the kNN graph (and of the kNN density estimate).
        num_points: Points of each relaxed geodesic.
        max_iterations: Relaxation steps per batch of paths.
        x: Observation for a conditional density (an sbi posterior or a conditional flow).
        flow_options: Options of :func:`~sbiplug_distances.densities.fit_flow`.
        seed: Seed of the flow's training.
        show_progress_bars: Progress bars (stderr) on training, Dijkstra and relaxation.
    """

    def __init__(
        self,
        density: Any = None,
        score: Any = None,
        *,
        beta: float = 1.0,
        adapted: bool = True,
        num_neighbors: int = 10,
        num_points: int = 32,
        max_iterations: int = 400,
        x: Tensor | None = None,
        flow_options: dict[str, Any] | None = None,
        seed: int = 0,
        show_progress_bars: bool = True,
    ) -> None:
        self.beta = check_float("beta", beta, minimum=0.0, owner=OWNER)
        self.adapted = bool(adapted)
        self.num_neighbors = check_int("num_neighbors", num_neighbors, minimum=1, owner=OWNER)
        self.num_points = check_int("num_points", num_points, minimum=3, owner=OWNER)
        self.max_iterations = check_int("max_iterations", max_iterations, minimum=0, owner=OWNER)
        self.flow_options = dict(flow_options or {})
        self.seed = int(seed)
        self.show_progress_bars = bool(show_progress_bars)
        self._knn = isinstance(density, str)
        if self._knn and density != "knn":
            raise OptionError(f"{OWNER}: density must be None, 'knn' or a density, got {density!r}")
        if self._knn and score is not None:
            raise OptionError(f"{OWNER}: density='knn' has no score; drop score or the 'knn'")
        self._source, self._score, self._x = density, score, x
        self.density: Density | None = None
        if density is not None and not self._knn:
            self.density = as_density(density, score, x=x)
        self.samples: Tensor | None = None

    # -- fitting ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        self._require_fit()
        return int(self.samples.shape[1])

    @property
    def beta_effective(self) -> float:
        """The exponent actually used: ``beta / D`` when adapted, else ``beta``."""
        return self.beta / self.dim if self.adapted else self.beta

    def fit(self, samples: Tensor) -> DensityDistance:
        """Build the kNN graph on ``samples`` ``(n, D)`` (and fit the flow when none is given)."""
        samples = _check_samples(samples, OWNER, minimum=self.num_neighbors + 1)
        self.samples = samples
        if self.density is None and not self._knn:
            options = {"seed": self.seed, "show_progress_bars": self.show_progress_bars}
            options.update(self.flow_options)
            self.density = as_density(fit_flow(samples, **options), self._score)
        nodes = samples.double().numpy()
        self._tree = None
        edges = connect_components(nodes, knn_edges(nodes, self.num_neighbors))
        self._edges = edges
        self._node_log_prob = self._log_prob_nodes(nodes, nodes)
        midpoint = None
        if not self._knn:
            middle = 0.5 * (nodes[edges[:, 0]] + nodes[edges[:, 1]])
            midpoint = metric_factor(self._density_np(middle), self.beta_effective)
        self._node_factor = metric_factor(self._node_log_prob, self.beta_effective)
        self._costs = edge_costs(nodes, edges, self._node_factor, midpoint)
        return self

    # -- public queries ----------------------------------------------------------------------

    def distance(self, a: Tensor, b: Tensor, *, relax: bool | None = None) -> Tensor:
        """Distances between rows of ``a`` and ``b`` (each ``(m, D)`` or ``(D,)``): ``(m,)``.

        ``relax`` defaults to ``True`` unless the density is the kNN estimate.
        """
        return self._solve(a, b, self.num_points, relax)[1]

    def geodesic(
        self, a: Tensor, b: Tensor, num_points: int | None = None, *, relax: bool | None = None
    ) -> Tensor:
        """Geodesics from rows of ``a`` to rows of ``b``: shape ``(m, num_points, D)``."""
        count = self.num_points if num_points is None else num_points
        check_int("num_points", count, minimum=3, owner=f"{OWNER}.geodesic")
        return self._solve(a, b, count, relax)[0]

    def pairwise(self, points: Tensor, *, relax: bool = False, batch_size: int = 4096) -> Tensor:
        """The distance matrix of ``points`` ``(n, D)``: ``(n, n)``, symmetric, zero diagonal.

        By default graph distances (Dijkstra over the samples and the points), which are exact
        shortest paths of the graph metric and so symmetric and triangle-consistent;
        ``relax=True`` relaxes every pair (``n (n - 1) / 2`` paths, in batches).
        """
        points = self._check_points(points, "points")
        if not relax:
            return self._graph_distances(points)
        n = len(points)
        rows, cols = torch.triu_indices(n, n, offset=1)
        result = torch.zeros(n, n, dtype=torch.float64)
        for start in range(0, len(rows), check_positive_int("batch_size", batch_size)):
            i, j = rows[start : start + batch_size], cols[start : start + batch_size]
            values = self.distance(points[i], points[j], relax=True)
            result[i, j] = values
            result[j, i] = values
        return result

    # -- internals -----------------------------------------------------------------------------

    def _solve(
        self, a: Tensor, b: Tensor, num_points: int, relax_paths: bool | None
    ) -> tuple[Tensor, Tensor]:
        a, b = self._check_points(a, "a"), self._check_points(b, "b")
        if a.shape != b.shape:
            raise OptionError(
                f"{OWNER}: a and b must have the same shape, got {tuple(a.shape)} and "
                f"{tuple(b.shape)}"
            )
        relax_paths = (not self._knn) if relax_paths is None else bool(relax_paths)
        if relax_paths and self._knn:
            raise OptionError(f"{OWNER}: relax=True needs a density; density='knn' has none")
        paths, lengths = self._graph_paths(a, b, num_points)
        if not relax_paths or self.max_iterations == 0:
            return paths.float(), lengths
        with seeded(self.seed):
            result = relax(
                paths,
                self.density,
                self.beta_effective,
                num_points=num_points,
                max_iterations=self.max_iterations,
                show_progress_bars=self.show_progress_bars,
            )
        # The relaxation keeps only improving steps; its start is the resampled graph path.
        return result.paths.float(), result.lengths

    def _graph_paths(self, a: Tensor, b: Tensor, num_points: int) -> tuple[Tensor, Tensor]:
        """Dijkstra paths resampled to ``num_points``, and the graph lengths ``(m,)``."""
        queries = torch.cat([a, b])
        num_nodes, edges, costs = self._augmented_graph(queries)
        m, n = len(a), len(self.samples)
        sources = np.arange(n, n + m)
        distances, predecessors = shortest_paths(num_nodes, edges, costs, sources)
        nodes = np.concatenate([self.samples.double().numpy(), queries.double().numpy()])
        polylines = []
        for row in range(m):
            path = trace_path(predecessors[row], n + m + row)
            polyline = torch.as_tensor(nodes[path])
            polylines.append(respace(polyline[None], num_points)[0])
        lengths = torch.as_tensor(distances[np.arange(m), n + m + np.arange(m)])
        same = (a == b).all(dim=1)
        lengths[same] = 0.0
        return torch.stack(polylines), lengths

    def _graph_distances(self, points: Tensor) -> Tensor:
        from tqdm.auto import tqdm

        n, m = len(self.samples), len(points)
        if points.shape == self.samples.shape and torch.equal(points.float(), self.samples):
            # The points are the graph's own nodes: no need to link copies of them.
            num_nodes, edges, costs, n = n, self._edges, self._costs, 0
        else:
            num_nodes, edges, costs = self._augmented_graph(points)
        result = np.zeros((m, m))
        chunks = range(0, m, 256)
        bar = tqdm(chunks, desc="dijkstra", disable=not self.show_progress_bars, leave=False)
        for start in bar:
            sources = np.arange(n + start, n + min(m, start + 256))
            distances, _ = shortest_paths(num_nodes, edges, costs, sources)
            result[start : start + len(sources)] = distances[:, n:]
        result = np.minimum(result, result.T)
        np.fill_diagonal(result, 0.0)
        return torch.as_tensor(result)

    def _augmented_graph(self, queries: Tensor) -> tuple[int, np.ndarray, np.ndarray]:
        """The sample graph plus each query linked to its ``k`` nearest samples."""
        from scipy.spatial import cKDTree

        nodes = self.samples.double().numpy()
        query = queries.double().numpy()
        if self._tree is None:
            self._tree = cKDTree(nodes)
        k = min(self.num_neighbors, len(nodes))
        _, nearest = self._tree.query(query, k=k)
        nearest = np.asarray(nearest).reshape(len(query), k)
        n = len(nodes)
        edges = np.stack([np.repeat(np.arange(len(query)), k) + n, nearest.reshape(-1)], axis=1)
        all_nodes = np.concatenate([nodes, query])
        query_factor = metric_factor(self._log_prob_nodes(nodes, query), self.beta_effective)
        factor = np.concatenate([self._node_factor, query_factor])
        midpoint = None
        if not self._knn:
            middle = 0.5 * (all_nodes[edges[:, 0]] + all_nodes[edges[:, 1]])
            midpoint = metric_factor(self._density_np(middle), self.beta_effective)
        costs = edge_costs(all_nodes, edges, factor, midpoint)
        return (
            n + len(query),
            np.concatenate([self._edges, edges]),
            np.concatenate([self._costs, costs]),
        )

    def _log_prob_nodes(self, nodes: np.ndarray, query: np.ndarray) -> np.ndarray:
        if self._knn:
            if self._tree is None:
                from scipy.spatial import cKDTree

                self._tree = cKDTree(nodes)
            return knn_log_density(nodes, query, self.num_neighbors, tree=self._tree)
        return self._density_np(query)

    def _density_np(self, points: np.ndarray) -> np.ndarray:
        return self.density.log_prob(torch.as_tensor(points, dtype=torch.float32)).numpy()

    def _check_points(self, points: Any, name: str) -> Tensor:
        self._require_fit()
        points = torch.as_tensor(points) if not isinstance(points, Tensor) else points
        if points.ndim == 1:
            points = points[None]
        if points.ndim != 2 or points.shape[1] != self.dim:
            raise OptionError(
                f"{OWNER}: {name} must have shape (m, {self.dim}) or ({self.dim},), "
                f"got {tuple(points.shape)}"
            )
        if not bool(torch.isfinite(points).all()):
            raise OptionError(f"{OWNER}: {name} contains NaN or infinite values")
        return points.double()

    def _require_fit(self) -> None:
        if self.samples is None:
            raise RuntimeError(f"{OWNER} is not fitted: call .fit(samples) first")
