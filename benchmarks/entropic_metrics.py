"""Benchmark of sbiplug_flowanalysis's manifold entropic metrics (Galperin & Köthe, AISTATS 2025).

(a) Two moons, the authors' minimal example: scikit-learn's ``make_moons(noise=0)`` (re-implemented
    here: half circles at evenly spaced angles) inflated by N(0, 0.1^2) noise, a flow of 4
    rational-quadratic spline blocks (each of the authors' FrEIA blocks transforms both halves, so
    4 blocks = 8 zuko coupling transforms; 4 bins, two hidden layers of 128 ReLU units, no
    permutations, no ActNorm), maximum likelihood only, Adam (weight decay 1e-5), batches of 1024
    fresh samples: 1000 steps at 1e-3, then 1000 at 1e-4 (the notebook lowers the rate to 1e-4
    after the first 1000; how long it trained further is not recorded). Metrics by Monte Carlo
    over 10,000 prior latents, the prior-entropy constant left out as in the notebook's prints.
    Reference (notebook): I_P = 0.777, H = -1.80, H_1 = -0.147, H_2 = -0.876 (nats). Stated
    tolerances for the mean over seeds: |dH| <= 0.10 (H is a property of the density: the exact
    noisy-moons entropy is printed beside it), |dH_i| <= 0.25 and |dI_P| <= 0.25 (these depend on
    which of the many decoders of the same density the training found).
(b) gaussian_linear (10-D, the Study defaults: NPE with sbi's MAF, 5000 simulations, the
    diagnostic ``entropic_metrics`` at its defaults): the exact posterior N(x / 2, 0.05 I) is
    isotropic, so every decoder of it has H_i = 1/2 (1 + log 2 pi) + 1/2 log 0.05 = -0.0790 and
    H = 10 x that.
(c) A non-identifiable model: x = theta_1 theta_2 + N(0, 0.05^2), theta ~ U(0.5, 2)^2 (only the
    product is identified: the posterior is a ridge along theta_1 theta_2 = x), and an identified
    control that also observes theta_1 - theta_2. Expected: the diagnostic calls the first
    posterior effectively 1-dimensional, with the degenerate direction along the gradient of the
    product, (theta_2, theta_1) / |.|, and the control 2-dimensional.
(d) Cost: the metrics of 10,000 latent draws of the 10-D NPE flow of (b), batched
    (``entropic_metrics``, vmap over ``jacrev``) against a per-sample loop of
    ``torch.autograd.functional.jacobian``, timed on the first 1,000 draws and scaled to 10,000
    (its cost per draw is constant; ``--loop-draws 10000`` times all of them). Goal: >= 10x.

Usage: ``python -m benchmarks.entropic_metrics [--quick] [--seeds N]`` from the repository root.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import UTC, datetime

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from benchmarks.machine import load_average

torch.set_num_threads(1)

import sbiplug
from sbiplug_flowanalysis import (
    decoder_jacobian,
    entropic_metrics,
    jacobian_metrics,
    latent_decoder,
)

REFERENCE = {"I_P": 0.777, "H": -1.80, "H_1": -0.147, "H_2": -0.876}
TOLERANCE = {"I_P": 0.25, "H": 0.10, "H_1": 0.25, "H_2": 0.25}
GAUSSIAN_ENTROPY = 0.5 * (1 + math.log(2 * math.pi))
MOONS_NOISE = 0.1


def moons(n: int, generator: torch.Generator) -> torch.Tensor:
    """make_moons(n, noise=0) (evenly spaced half circles, shuffled) + N(0, 0.1^2) noise."""
    outer, inner = n // 2, n - n // 2
    t_out = torch.linspace(0, math.pi, outer)
    t_in = torch.linspace(0, math.pi, inner)
    points = torch.cat(
        [
            torch.stack([t_out.cos(), t_out.sin()], 1),
            torch.stack([1 - t_in.cos(), 1 - t_in.sin() - 0.5], 1),
        ]
    )
    points = points[torch.randperm(n, generator=generator)]
    return points + MOONS_NOISE * torch.randn(n, 2, generator=generator)


def moons_entropy(num_samples: int = 20000, arc_points: int = 4000) -> float:
    """The exact differential entropy of the noisy moons, -E log p(x), by Monte Carlo."""
    generator = torch.Generator().manual_seed(123)
    x = moons(num_samples, generator).double()
    t = torch.linspace(0, math.pi, arc_points // 2, dtype=torch.float64)
    arcs = torch.cat(
        [torch.stack([t.cos(), t.sin()], 1), torch.stack([1 - t.cos(), 1 - t.sin() - 0.5], 1)]
    )
    squared = torch.cdist(x, arcs).pow(2)
    log_kernel = -squared / (2 * MOONS_NOISE**2) - math.log(2 * math.pi * MOONS_NOISE**2)
    log_p = torch.logsumexp(log_kernel, dim=1) - math.log(len(arcs))
    return float(-log_p.mean())


def two_moons_run(seed: int, steps: tuple[int, int], num_latents: int) -> dict[str, float]:
    import zuko

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    flow = zuko.flows.NSF(2, transforms=8, bins=4, hidden_features=(128, 128), passes=2)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3, weight_decay=1e-5)
    for count, rate in zip(steps, (1e-3, 1e-4), strict=True):
        for group in optimizer.param_groups:
            group["lr"] = rate
        for _ in range(count):
            loss = -flow().log_prob(moons(1024, generator)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    flow.eval()
    latent = flow().base
    metrics = entropic_metrics(
        lambda z: flow().transform.inv(z), latent, num_samples=num_latents, seed=seed
    )
    spectrum = metrics.spectrum - GAUSSIAN_ENTROPY  # the notebook prints leave it out
    high, low = sorted(spectrum.tolist(), reverse=True)
    return {
        "I_P": metrics.total_correlation,
        "H": metrics.entropy - 2 * GAUSSIAN_ENTROPY,
        "H_1": high,
        "H_2": low,
        "nll": float(loss.detach()),
    }


def section_two_moons(seeds: int, quick: bool, first_seed: int = 0) -> list[str]:
    steps = (300, 100) if quick else (1000, 1000)
    latents = 2000 if quick else 10_000
    lines = [
        "(a) two moons, 4 RQ-spline blocks, maximum likelihood "
        f"({steps[0]} steps at 1e-3 + {steps[1]} at 1e-4, {latents} latents)",
        f"    exact entropy of the noisy moons (constant left out): "
        f"{moons_entropy() - 2 * GAUSSIAN_ENTROPY:+.3f}",
        "    seed   I_P      H        H_1      H_2      final NLL   time",
    ]
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        start = time.perf_counter()
        row = two_moons_run(seed, steps, latents)
        rows.append(row)
        lines.append(
            f"    {seed:<6d} {row['I_P']:<8.3f} {row['H']:<+8.3f} {row['H_1']:<+8.3f} "
            f"{row['H_2']:<+8.3f} {row['nll']:<11.3f} {time.perf_counter() - start:.0f} s"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    for label, values in (
        ("mean", {k: np.mean([r[k] for r in rows]) for k in REFERENCE}),
        (
            "sd",
            {k: np.std([r[k] for r in rows], ddof=1) if len(rows) > 1 else 0 for k in REFERENCE},
        ),
    ):
        lines.append(
            f"    {label:<6s} "
            + " ".join(f"{values[k]:<+8.3f}" for k in ("I_P", "H", "H_1", "H_2"))
        )
    means = {k: float(np.mean([r[k] for r in rows])) for k in REFERENCE}
    lines.append(
        "    paper  " + " ".join(f"{REFERENCE[k]:<+8.3f}" for k in ("I_P", "H", "H_1", "H_2"))
    )
    verdicts = [
        f"{k} {'within' if abs(means[k] - REFERENCE[k]) <= TOLERANCE[k] else 'MISSES'} "
        f"±{TOLERANCE[k]}"
        for k in ("I_P", "H", "H_1", "H_2")
    ]
    lines.append("    tolerance (mean vs paper): " + ", ".join(verdicts))
    return lines


def section_gaussian_linear(quick: bool) -> tuple[list[str], object]:
    num_simulations = 1000 if quick else 5000
    study = sbiplug.Study(
        simulator="gaussian_linear",
        estimator="npe",
        num_simulations=num_simulations,
        diagnostics=["entropic_metrics"],
        seed=0,
        train_options={"max_num_epochs": 30} if quick else {},
        show_progress_bars=False,
    )
    simulator = sbiplug.make_simulator("gaussian_linear")
    observations = simulator.simulate(simulator.sample_prior(3, seed=11), seed=12)
    start = time.perf_counter()
    result = study.run(observations=observations)
    diagnostic = result.diagnostics["entropic_metrics"]
    data = diagnostic.data
    exact = GAUSSIAN_ENTROPY + 0.5 * math.log(0.05)
    lines = [
        f"(b) gaussian_linear 10-D, Study defaults (npe, {num_simulations} simulations"
        f"{', 30 epochs' if quick else ''}), diagnostic defaults ({data.attrs['num_samples']} "
        f"latents); exact posterior: H_i = {exact:+.4f}, H = {10 * exact:+.3f}  "
        f"[{time.perf_counter() - start:.0f} s]",
        "    obs  sorted spectrum H_i (nats)                                   max|dH_i|  H       "
        "TC     k",
    ]
    for index in range(data.sizes["observation"]):
        spectrum = np.sort(data["spectrum"].values[index])[::-1]
        lines.append(
            f"    {index:<4d} {' '.join(f'{v:+.3f}' for v in spectrum)}  "
            f"{np.abs(spectrum - exact).max():<9.3f}  {data['entropy'].values[index]:<+7.3f} "
            f"{data['total_correlation'].values[index]:<6.3f} "
            f"{int(data['effective_dimension'].values[index])}"
        )
    lines.append(f"    message: {diagnostic.message}")
    # The metric against closed forms of the *learned* flow: its own -E log q, and the Gaussian
    # spectrum of its draws' covariance (a near-Gaussian flow): the deviations above from the
    # exact posterior are then NPE's estimation error, not the metric's.
    lines.append(
        "    learned flow: H (metric) vs -E log q (20k draws); principal spectrum vs "
        "1/2(1+log 2pi) + 1/2 log eig(Cov of draws): max diff"
    )
    from sbiplug.sbi_internals import trained_network

    network = trained_network(result.estimator)
    for index, x_o in enumerate(observations):
        with torch.no_grad():
            draws = network.sample((20_000,), x_o.unsqueeze(0))[:, 0]
            log_q = network.log_prob(draws.unsqueeze(1), x_o.unsqueeze(0))[:, 0]
        eigenvalues = torch.linalg.eigvalsh(torch.cov(draws.T.double())).flip(0)
        gaussian = GAUSSIAN_ENTROPY + 0.5 * eigenvalues.log().numpy()
        principal = data["principal_spectrum"].values[index]
        lines.append(
            f"    {index:<4d} H {data['entropy'].values[index]:+.3f} vs {float(-log_q.mean()):+.3f}"
            f"; principal spectrum max diff {np.abs(principal - gaussian).max():.3f}; "
            f"flow variance / exact 0.05: {float(eigenvalues.mean()) / 0.05:.3f}"
        )
    return lines, result


def _product_simulator(identified: bool):
    from sbi.utils import BoxUniform

    prior = BoxUniform(0.5 * torch.ones(2), 2.0 * torch.ones(2))

    def simulate(theta: torch.Tensor) -> torch.Tensor:
        product = theta[:, :1] * theta[:, 1:]
        x = product if not identified else torch.cat([product, theta[:, :1] - theta[:, 1:]], 1)
        return x + 0.05 * torch.randn_like(x)

    return prior, simulate


def section_ridge(quick: bool) -> list[str]:
    lines = [
        "(c) non-identifiable product: x = theta_1 theta_2 + N(0, 0.05^2), theta ~ U(0.5, 2)^2 "
        "(npe defaults, diagnostic defaults)"
    ]
    true_theta = torch.tensor([[1.0, 1.2], [0.8, 1.8], [1.5, 1.5]])
    for identified in (False, True):
        torch.manual_seed(0)
        study = sbiplug.Study(
            simulator=_product_simulator(identified),
            estimator="npe",
            num_simulations=1000 if quick else 5000,
            diagnostics=["entropic_metrics"],
            seed=1,
            train_options={"max_num_epochs": 40} if quick else {},
            show_progress_bars=False,
        )
        x_o = _product_simulator(identified)[1](true_theta)
        result = study.run(observations=x_o, true_parameters=true_theta)
        data = result.diagnostics["entropic_metrics"].data
        label = "control (theta_1 - theta_2 observed too)" if identified else "product only"
        lines.append(f"  {label}:")
        for index in range(len(true_theta)):
            spectrum = data["principal_spectrum"].values[index]  # descending
            direction = data["principal_direction"].values[index, -1]
            t1, t2 = true_theta[index].tolist()
            gradient = np.array([t2, t1]) / math.hypot(t1, t2)
            lines.append(
                f"    theta={true_theta[index].tolist()}: principal spectrum "
                f"{' '.join(f'{v:+.2f}' for v in spectrum)}, effective dimension "
                f"{int(data['effective_dimension'].values[index])}, narrowest direction "
                f"({direction[0]:+.2f}, {direction[1]:+.2f}) vs grad(theta_1 theta_2) "
                f"({gradient[0]:+.2f}, {gradient[1]:+.2f}): |cos| = "
                f"{abs(float(direction @ gradient)):.2f}"
            )
        lines.append(f"    message: {result.diagnostics['entropic_metrics'].message[:300]}")
    return lines


def section_cost(result: object, quick: bool, loop_draws: int) -> list[str]:
    model = result.estimator  # the trained NPE trainer of (b)
    simulator = sbiplug.make_simulator("gaussian_linear")
    x_o = simulator.simulate(simulator.sample_prior(1, seed=5), seed=6)[0]
    found = latent_decoder(model, x_o)
    n = 2000 if quick else 10_000
    z = found.latent.sample((n,))
    start = time.perf_counter()
    batched = entropic_metrics(found.decoder, found.latent, z=z)
    batched_time = time.perf_counter() - start

    def one(v: torch.Tensor) -> torch.Tensor:
        return found.decoder(v.unsqueeze(0)).squeeze(0)

    timed = min(n, loop_draws)
    start = time.perf_counter()
    rows = [torch.autograd.functional.jacobian(one, z[k]) for k in range(timed)]
    looped = jacobian_metrics(torch.stack(rows).double(), batched.prior_entropies)
    loop_time = (time.perf_counter() - start) * n / timed
    subset = jacobian_metrics(
        decoder_jacobian(found.decoder, z[:timed]).double(), batched.prior_entropies
    )
    agree = abs(looped.total_correlation - subset.total_correlation)
    return [
        f"(d) cost, 10-D NPE flow (sbi MAF of (b)), {n} latents: batched {batched_time:.2f} s, "
        f"per-sample loop {loop_time:.1f} s (timed on {timed} draws, scaled): "
        f"{loop_time / batched_time:.1f}x faster (goal >= 10x); |dTC| loop vs batched on the "
        f"same {timed} draws = {agree:.1e}"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, for a smoke run")
    parser.add_argument("--seeds", type=int, default=3, help="two-moons seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="first two-moons seed")
    parser.add_argument(
        "--sections", default="abcd", help="which sections to run (default: all, 'abcd')"
    )
    parser.add_argument(
        "--loop-draws", type=int, default=1000, help="draws the per-sample loop of (d) times"
    )
    args = parser.parse_args()
    start = time.perf_counter()

    def emit(lines: list[str]) -> None:
        print("\n".join(lines), flush=True)

    emit(
        [
            f"entropic_metrics benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            f"{' (--quick)' if args.quick else ''}; load average at start {load_average()}"
        ]
    )
    if "a" in args.sections:
        emit(section_two_moons(args.seeds, args.quick, args.first_seed))
    if "b" in args.sections or "d" in args.sections:
        gaussian, result = section_gaussian_linear(args.quick)
        if "b" in args.sections:
            emit(gaussian)
        if "d" in args.sections:
            emit(section_cost(result, args.quick, args.loop_draws))
    if "c" in args.sections:
        emit(section_ridge(args.quick))
    emit([f"total {time.perf_counter() - start:.0f} s; load average at end {load_average()}"])


if __name__ == "__main__":
    main()
