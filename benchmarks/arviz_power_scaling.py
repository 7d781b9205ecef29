"""Power-scaling sensitivity on gaussian_linear: ArviZ's psense beside TRADE's power_scaling.

The posterior is exact (N(x / 2, 0.05 I), drawn as four chains), so every power posterior
p_alpha(theta | x) ∝ p(theta)^a p(x | theta)^b is Gaussian in closed form. The table lists, per
component and alpha, the posterior mean and sd of theta_1 by the truth, by importance
reweighting of the alpha = 1 draws (what psense uses; its Pareto k-hat beside it) and by TRADE
(sbiplug_trade.power_scaling_sensitivity, at its defaults), and ArviZ's psense value against its
closed form. With ``dim`` parameters the weights of all of them multiply, which is where
reweighting degenerates (k-hat > 0.7) far from alpha = 1.

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python -m benchmarks.arviz_power_scaling [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import load_average
from sbiplug import inference_data as adapter

PRIOR_VARIANCE = NOISE_VARIANCE = 0.1


def power_moments(component: str, alpha: float, x_d: float) -> tuple[float, float]:
    prior = (alpha if component == "prior" else 1) / PRIOR_VARIANCE
    likelihood = (alpha if component == "likelihood" else 1) / NOISE_VARIANCE
    return likelihood * x_d / (prior + likelihood), math.sqrt(1 / (prior + likelihood))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer TRADE steps and draws")
    parser.add_argument("--dim", type=int, default=10, help="parameters (all reweighted jointly)")
    arguments = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "platform" / "arviz"))
    from conftest import exact_result  # the exact-posterior result of the ArviZ tests
    from test_arviz_exact import closed_form_psense

    from sbiplug_trade import power_scaling_sensitivity

    num_draws = 250 if arguments.quick else 1000
    steps = 400 if arguments.quick else 1500  # 1500: power_scaling_sensitivity's default
    result = exact_result(arguments.dim, num_observations=1, num_draws=num_draws, seed=7)
    tree = result.to_datatree()
    x_d = float(result.observations[0, 0])
    draws = result.samples[0].reshape(-1, arguments.dim)
    simulator = result.simulator
    x_o = result.observations[0]
    rows = []
    curves: dict[str, dict] = {}
    for component in ("prior", "likelihood"):
        start = time.perf_counter()
        trade = power_scaling_sensitivity(
            (draws, lambda t: simulator.log_likelihood(t, x_o.expand(len(t), -1)), simulator.prior),
            component=component,
            steps=steps,
            num_samples=2000,
            seed=0,
        ).data
        seconds = time.perf_counter() - start
        psense = float(adapter.psense(tree, component)["theta_1"])
        truth = closed_form_psense(
            component, x_d, float(draws[:, 0].min()), float(draws[:, 0].max())
        )
        log_like = simulator.log_likelihood(draws, x_o.expand(len(draws), -1))
        log_prior = simulator.prior.log_prob(draws)
        power = log_like if component == "likelihood" else log_prior
        curve = curves[component] = {"alpha": [], "is": [], "trade": [], "k_hat": []}
        curve.update(psense=psense, truth=truth)
        for alpha in trade["alpha"].values:
            mean, sd = power_moments(component, float(alpha), x_d)
            row = trade.sel(alpha=alpha, parameter="theta_1")
            log_weights = ((float(alpha) - 1) * power).double().numpy()
            k_hat = _pareto_k(log_weights)[1] if abs(float(alpha) - 1) > 1e-9 else float("nan")
            curve["alpha"].append(float(alpha))
            curve["is"].append(float(row["mean_is"]))
            curve["trade"].append(float(row["mean_trade"]))
            curve["k_hat"].append(k_hat)
            rows.append(
                f"| {component} | {alpha:.3f} | {mean:.4f} | {float(row['mean_is']):.4f} | "
                f"{float(row['mean_trade']):.4f} | {sd:.4f} | {float(row['sd_is']):.4f} | "
                f"{float(row['sd_trade']):.4f} | {k_hat:.2f} |"
            )
        rows.append(
            f"| {component} psense | 1 +- 0.01 | closed form {truth:.4f} | ArviZ {psense:.4f} | "
            f"TRADE fit {seconds:.0f} s | | | | |"
        )
    print(
        f"gaussian_linear dim={arguments.dim}, x_1 = {x_d:.3f}, {len(draws)} exact draws, "
        f"TRADE steps {steps}; ArviZ {adapter.arviz().__version__}; load average {load_average()}"
    )
    print(
        "| component | alpha | mean truth | mean IS | mean TRADE | sd truth | sd IS | sd TRADE "
        "| k-hat |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    suffix = f"_dim{arguments.dim}{'_quick' if arguments.quick else ''}"
    figure = plot_curves(curves, x_d)
    path = Path(__file__).resolve().parent / "results" / f"arviz_power_scaling{suffix}.png"
    figure.savefig(path, dpi=110)
    print(f"figure: benchmarks/results/{path.name}")


def plot_curves(curves: dict[str, dict], x_d: float):
    """Posterior mean of theta_1 against alpha: closed form, TRADE, importance reweighting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6))
    for ax, (component, curve) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        alphas = np.asarray(curve["alpha"])
        dense = np.geomspace(alphas.min(), alphas.max(), 200)
        ax.plot(dense, [power_moments(component, a, x_d)[0] for a in dense], "k-", label="truth")
        ax.plot(alphas, curve["trade"], "o-", color="C0", label="TRADE (amortised)")
        k_hat = np.nan_to_num(np.asarray(curve["k_hat"]), nan=0.0)
        reliable = k_hat <= 0.7
        ax.plot(
            alphas[reliable],
            np.asarray(curve["is"])[reliable],
            "s",
            color="C1",
            label="importance reweighting (psense)",
        )
        if (~reliable).any():
            ax.plot(
                alphas[~reliable],
                np.asarray(curve["is"])[~reliable],
                "s",
                mfc="none",
                color="C1",
                label="reweighting, k-hat > 0.7",
            )
        ax.set_xscale("log")
        ax.set_xlabel(f"alpha ({component} power)")
        ax.set_ylabel("posterior mean of theta_1")
        ax.set_title(
            f"{component}: psense {curve['psense']:.3f} (closed form {curve['truth']:.3f})"
        )
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _pareto_k(log_weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto k-hat of importance weights (Vehtari et al. 2024), via ArviZ 0.x's psislw or a
    generalised-Pareto fit of the largest 20% on 1.x."""
    if adapter.arviz_major_version() < 1:
        smoothed, k_hat = adapter.arviz().psislw(log_weights)
        return smoothed, float(k_hat)
    from scipy.stats import genpareto

    weights = np.exp(log_weights - log_weights.max())
    tail = np.sort(weights)[-max(5, int(0.2 * len(weights))) :]
    k_hat, _, _ = genpareto.fit(tail - tail[0], floc=0)
    return log_weights, float(k_hat)


if __name__ == "__main__":
    main()
