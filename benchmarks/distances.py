"""Benchmark of sbiplug_distances: geodesic accuracy, mode counting, wall time, in one run.

(a) Geodesic lengths on 2-D and 10-D Gaussian mixtures (three components; analytic log p, the
    score by autograd of it). Ground truth: ``DensityDistance`` with the true density, a kNN
    graph on 20,000 true draws and relaxation with the true score (64 points, 3000 steps).
    Methods, each at its defaults (dimension-adapted metric, beta = 1, k = 10), fitted on n
    draws: (i) the kNN graph with kNN-density edges (``density="knn"``), (ii) the graph with
    flow densities (``relax=False``), (iii) flow + score relaxation (the default), and an extra
    row, marked as an option, (iv) with a denoising-score-matching score model. Mean relative
    error over 40 fixed pairs of mixture draws.
(b) Mode counting on two_moons (2 modes, masses 1/2 by the symmetry (t1, t2) -> (-t2, -t1)),
    gaussian_mixture (1 mode) and slcp (4 modes, masses 1/4 by the sign flips of t3, t4), for
    sbibm observations 1..N: the diagnostic ``posterior_modes`` at its defaults on an NPE
    posterior (sbi NPE, nsf, defaults) and on sbibm's reference draws (a flow fitted on them);
    baselines k-means (K by the best silhouette over 2..8, K = 1 below silhouette 0.5) and a
    Gaussian mixture with K by BIC (1..8). Agreement: right count and every mass within 0.05.
    Also the share of each source's draws in the gaps between the reference's modes (bands
    around the symmetries' mirror planes holding 0.1 % of the reference): a posterior with
    much mass there has no separate modes to count.
(c) Wall time of ``fit`` and ``pairwise`` for 2,000 points in 10-D.

Usage: ``python -m benchmarks.distances [--sizes ...] [--observations N] [--parts a b c]``.
The sbibm references are read from the sbibm wheel (see benchmarks/cmpe.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from benchmarks.cmpe import DEFAULT_WHEEL, sbibm_reference
from benchmarks.machine import load_average

TRUE_MODES = {"two_moons": 2, "gaussian_mixture": 1, "slcp": 4}

# Coordinates whose zero set is a mirror plane between the reference's modes (the tasks'
# symmetries above); a draw near one lies in the gap between two modes.
MIRRORS = {
    "two_moons": lambda theta: theta[:, :1] + theta[:, 1:2],
    "slcp": lambda theta: theta[:, 2:4],
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 2000, 5000, 10000, 20000])
    parser.add_argument("--dims", nargs="+", type=int, default=[2, 10])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--tasks", nargs="+", default=list(TRUE_MODES))
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument("--simulations", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sbibm-wheel", type=Path, default=Path(os.environ.get("SBIBM_WHEEL", DEFAULT_WHEEL))
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------------ (a) geodesic accuracy


def mixture(dim: int) -> torch.distributions.Distribution:
    from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

    means = torch.zeros(3, dim)
    means[:, :2] = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    scales = torch.tensor([0.5, 0.7, 0.6])[:, None].expand(3, dim)
    return MixtureSameFamily(Categorical(torch.ones(3)), Independent(Normal(means, scales), 1))


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((estimate - truth).abs() / truth).mean())


def geodesic_accuracy(arguments) -> list[str]:
    from sbiplug_distances import DensityDistance, train_score_model

    lines = [
        f"(a) mean relative error of geodesic lengths ({arguments.pairs} pairs), "
        "defaults unless marked"
    ]
    header = (
        f"{'D':>3} {'n':>6} {'(i) kNN graph':>14} {'(ii) flow graph':>16} "
        f"{'(iii) flow+relax':>17} {'(iv) +DSM [option]':>19} {'fit s':>7}"
    )
    lines.append(header)
    for dim in arguments.dims:
        target = mixture(dim)
        torch.manual_seed(arguments.seed)
        a, b = target.sample((arguments.pairs,)), target.sample((arguments.pairs,))
        truth_samples = target.sample((20000,))
        start = time.perf_counter()
        truth = DensityDistance(
            target, num_points=64, max_iterations=3000, show_progress_bars=False
        )
        truth = truth.fit(truth_samples).distance(a, b)
        print(f"D={dim}: ground truth in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        for n in arguments.sizes:
            torch.manual_seed(arguments.seed + n)
            samples = target.sample((n,))
            knn = DensityDistance("knn", show_progress_bars=False).fit(samples).distance(a, b)
            start = time.perf_counter()
            flow = DensityDistance(seed=arguments.seed, show_progress_bars=False).fit(samples)
            fit_seconds = time.perf_counter() - start
            graph = flow.distance(a, b, relax=False)
            relaxed = flow.distance(a, b)
            score = train_score_model(samples, seed=arguments.seed, show_progress_bars=False)
            dsm = DensityDistance(flow.density, score, show_progress_bars=False).fit(samples)
            errors = [relative_error(d, truth) for d in (knn, graph, relaxed, dsm.distance(a, b))]
            row = (
                f"{dim:>3} {n:>6} {errors[0]:>14.3f} {errors[1]:>16.3f} "
                f"{errors[2]:>17.3f} {errors[3]:>19.3f} {fit_seconds:>7.0f}"
            )
            lines.append(row)
            print(row, file=sys.stderr)
    return lines


# ---------------------------------------------------------------------------- (b) mode counting


def kmeans_modes(draws: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    best, labels = -1.0, np.zeros(len(draws), dtype=int)
    for k in range(2, 9):
        fit = KMeans(k, n_init=4, random_state=seed).fit(draws)
        score = silhouette_score(draws, fit.labels_)
        if score > best:
            best, labels = score, fit.labels_
    return np.zeros(len(draws), dtype=int) if best < 0.5 else labels


def gmm_modes(draws: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.mixture import GaussianMixture

    fits = [GaussianMixture(k, n_init=2, random_state=seed).fit(draws) for k in range(1, 9)]
    best = min(fits, key=lambda fit: fit.bic(draws))
    return best.predict(draws)


def masses_of(labels: np.ndarray) -> list[float]:
    counts = np.bincount(labels)
    return sorted((counts[counts > 0] / len(labels)).tolist(), reverse=True)


def agrees(masses: list[float], task: str) -> bool:
    count = TRUE_MODES[task]
    return len(masses) == count and all(abs(m - 1 / count) <= 0.05 for m in masses)


def gap_mass(draws: torch.Tensor, reference: torch.Tensor, task: str) -> float:
    """Share of ``draws`` in the gaps between the reference's modes.

    A gap is the band around a mirror plane that holds 0.1 % of the reference draws' values of
    that mirror coordinate; the reference's own share is thus at most 0.1 % per plane.
    """
    mirror = MIRRORS[task]
    widths = torch.quantile(mirror(reference).abs(), 0.001, dim=0)
    return float((mirror(draws).abs() < widths).any(dim=1).double().mean())


def mode_counting(arguments) -> list[str]:
    from sbi.inference import NPE

    import sbiplug
    from sbiplug import DiagnosticContext
    from sbiplug.toolkit import NullTracker
    from sbiplug_distances import PosteriorModesDiagnostic

    lines = [
        "(b) mode counting: counts (masses) per observation; agreement = count and masses ±0.05"
    ]
    summary = []
    for task in arguments.tasks:
        simulator = sbiplug.make_simulator(task)
        torch.manual_seed(arguments.seed)
        theta = simulator.prior.sample((arguments.simulations,))
        x = simulator.simulate(theta, seed=arguments.seed + 1)
        start = time.perf_counter()
        trainer = NPE(simulator.prior, tracker=NullTracker(), show_progress_bars=False)
        with contextlib.redirect_stdout(io.StringIO()):
            trainer.append_simulations(theta, x).train()
        posterior = trainer.build_posterior()
        print(f"{task}: NPE trained in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        results: dict[str, list[list[float]]] = {}
        gaps: dict[str, list[float]] = {}
        for i in range(arguments.observations):
            x_o, reference = sbibm_reference(arguments.sbibm_wheel, task, i + 1)
            torch.manual_seed(arguments.seed + i)
            npe_draws = posterior.sample((1000,), x=x_o, show_progress_bars=False)
            ref_draws = reference[:1000]
            if task in MIRRORS:
                gaps.setdefault("NPE", []).append(gap_mass(npe_draws, reference, task))
                gaps.setdefault("reference", []).append(gap_mass(ref_draws, reference, task))
            for source, draws, post in [
                ("NPE", npe_draws, posterior),
                ("reference", ref_draws, None),
            ]:
                context = DiagnosticContext(
                    posterior=post,
                    observations=x_o,
                    posterior_samples=draws[None],
                    seed=arguments.seed,
                )
                start = time.perf_counter()
                result = PosteriorModesDiagnostic().run(context)
                seconds = time.perf_counter() - start
                mass = result.data["mass"].values[0]
                results.setdefault(f"density distance, {source}", []).append(
                    sorted(mass[np.isfinite(mass)].tolist(), reverse=True)
                )
                results.setdefault(f"density distance, {source} [s]", []).append([seconds])
                array = draws.double().numpy()
                results.setdefault(f"k-means, {source}", []).append(
                    masses_of(kmeans_modes(array, arguments.seed))
                )
                results.setdefault(f"GMM+BIC, {source}", []).append(
                    masses_of(gmm_modes(array, arguments.seed))
                )
            print(f"{task} #{i + 1} done", file=sys.stderr)
        lines.append(f"{task} (true modes: {TRUE_MODES[task]})")
        for method, values in results.items():
            if method.endswith("[s]"):
                lines.append(
                    f"  {method:<32} median {np.median([v[0] for v in values]):.1f} s / observation"
                )
                continue
            cells = " ".join(f"{len(m)}({'/'.join(f'{w:.2f}' for w in m)})" for m in values)
            agreement = np.mean([agrees(m, task) for m in values])
            counts = np.mean([len(m) == TRUE_MODES[task] for m in values])
            lines.append(f"  {method:<32} count ok {counts:.2f}  agree {agreement:.2f}  {cells}")
            summary.append((task, method, counts, agreement))
        for source, shares in gaps.items():
            cells = " ".join(f"{share:.3f}" for share in shares)
            lines.append(f"  {'mass in the gaps, ' + source:<32} {cells}")
    return lines


# ------------------------------------------------------------------------------- (c) wall time


def wall_time(arguments) -> list[str]:
    from sbiplug_distances import DensityDistance

    target = mixture(10)
    torch.manual_seed(arguments.seed)
    points = target.sample((2000,))
    start = time.perf_counter()
    distance = DensityDistance(show_progress_bars=False).fit(points)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    matrix = distance.pairwise(points)
    pairwise = time.perf_counter() - start
    assert matrix.shape == (2000, 2000)
    return [
        "(c) wall time, 2,000 points in 10-D (1 thread)",
        f"  fit (flow training + graph): {fit:.1f} s; "
        f"pairwise (graph, 2000 x 2000): {pairwise:.2f} s",
    ]


def main(argv: list[str] | None = None) -> None:
    arguments = parse(argv)
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    lines = [
        f"benchmarks/distances.py {' '.join(argv if argv is not None else sys.argv[1:])}",
        f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}",
    ]
    parts = {"a": geodesic_accuracy, "b": mode_counting, "c": wall_time}
    for part in arguments.parts:
        lines += ["", *parts[part](arguments)]
    lines += ["", f"total {time.perf_counter() - started:.0f} s; load average {load_average()}"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
