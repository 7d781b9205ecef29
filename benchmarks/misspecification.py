"""Benchmark: summary-space MMD misspecification test on ``gaussian_means``.

Prints, side by side, the false-positive rate at alpha = 0.05 (well-specified data) and the power
at N in {1, 5} observed data sets for each misspecification knob at two strengths, for

  (a) ``misspecification_test`` on the MMD-regularised summary net (``npe_mmd``, weight 1, with
      the OPTION ``embedding_pooling="centred"``: a location block and a batch-normalised shape
      block; not the default, which is plain mean pooling, column (a0)),
  (b) the same test on the same net trained without the regulariser (``mmd_weight=0``),
  (a0) for information, (a) with the default plain mean-pooling DeepSet,
  (c) sbi's ``calc_misspecification_mmd`` in x-space (flattened sets) and in embedding mode
      (the unregularised net, as a plain sbi NPE user would have it),
  (o) for reference, our test on ORACLE summaries that know the model: the whitened set mean
      (sufficient for the parameters) and two standardised shape statistics (log within-set
      spread, log ratio of the coordinates' variances) at sd 0.5, as in (a)'s target. Against a
      shifted or widened prior with N = 1, no test can beat a test of the set mean by much:
      the within-set residuals have the same law under both hypotheses, and for a widened
      prior the test of |x̄|² is the most powerful one. So (o) shows where a row is a tie at
      that bound. (u) prints that most powerful test itself for the ``prior_scale`` rows.

Goals: FPR within [0.02, 0.08]; power of (a) >= (b) and (c) for every knob and N. All columns
test the same observed data sets, so each power row also gets a paired comparison of (a) with
the best of (b), (c): the difference of rejection rates and its paired standard error
sqrt(n10 + n01 - (n10 - n01)^2 / reps) / reps, from the counts of data sets that only one of
the two rejects.

Costs and what is shared (all valid conditionally on what is shared):
  (a), (b): one reference set and simulated null (``SimulatedNull``) per block of ``--block``
       replicates; given them, the observed and null statistics are exchangeable under H0.
  (c): one pool of simulated sets and sbi's null from it (sbi's own ``calculate_baseline_mmd``,
       which shuffles the pool only) per block of ``--block`` replicates; each replicate then
       computes sbi's statistic and p-value exactly as ``calc_misspecification_mmd``.

Usage: ``python -m benchmarks.misspecification [--quick]`` from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import math
import time
from concurrent.futures import ProcessPoolExecutor

import torch
from sbi.diagnostics.misspecification import (
    calculate_baseline_mmd,
    compute_rbf_mmd_median_heuristic,
)
from torch import nn

from sbiplug_misspec import NPEMMD, GaussianMeans
from sbiplug_misspec.hypothesis_test import SimulatedNull, summarise
from sbiplug_misspec.regularizer import mmd_squared

KNOBS = {
    "prior_loc": (2.0, 5.0),
    "prior_scale": (2.0, 4.0),
    "noise_scale": (2.0, 10.0),
    "contamination": (0.1, 0.5),
}
SIZES = (1, 5)


class OracleSummaries(nn.Module):
    """Summaries that know ``gaussian_means`` (n = 100, d = 2): column (o), a reference.

    ``[x̄ / sqrt(1 + 1/n), σ z_spread, σ z_ratio]``, shape ``(batch, 4)``, with z_spread the
    standardised log mean squared distance to the set mean and z_ratio the standardised log
    ratio of the two coordinates' sample variances (their sd from the χ² laws), σ = 0.5.
    """

    def __init__(self, n_obs: int = 100, shape_scale: float = 0.5) -> None:
        super().__init__()
        self.n_obs, self.shape_scale = n_obs, shape_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n_obs
        set_mean = x.mean(dim=-2)
        centred = x - set_mean[..., None, :]
        spread = centred.square().sum(dim=-1).mean(dim=-1).log()
        # Σ_k |x_k - x̄|² ~ χ²(2(n - 1)): log of its mean has mean ≈ log(2(n-1)/n), var ≈ 1/(n-1).
        z_spread = (spread - math.log(2 * (n - 1) / n)) * math.sqrt(n - 1)
        variances = centred.square().sum(dim=-2)
        z_ratio = (variances[..., 0] / variances[..., 1]).log() * math.sqrt((n - 1) / 4)
        shape = self.shape_scale * torch.stack([z_spread, z_ratio], dim=-1)
        return torch.cat([set_mean / math.sqrt(1 + 1 / n), shape], dim=-1)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke version")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--shape-scale", type=float, default=0.5)
    args = parser.parse_args()
    if args.quick:
        args.num_simulations, args.epochs = 1000, 2
        args.num_reference, args.num_null = 200, 99
        args.fpr_reps, args.power_reps, args.sbi_shuffles, args.sbi_pool = 20, 10, 50, 200
    else:
        args.num_simulations, args.epochs = 30_000, 29
        args.num_reference, args.num_null = 1000, 500
        args.fpr_reps, args.power_reps, args.sbi_shuffles, args.sbi_pool = 1000, 1000, 500, 1000
    args.batch_size = 256
    args.alpha = 0.05
    return args


def train(
    mmd_weight: float, args: argparse.Namespace, pooling: str = "centred"
) -> tuple[nn.Module, float, int, torch.Tensor]:
    """Train npe_mmd (or plain NPE at weight 0).

    Returns its summary net, posterior RMSE, epochs and the regulariser's target scale ``(S,)``.
    """
    torch.set_num_threads(1)
    simulator = GaussianMeans()
    theta = simulator.sample_prior(args.num_simulations, seed=args.seed)
    x = simulator.simulate(theta, seed=args.seed + 1)
    torch.manual_seed(args.seed)
    trainer = NPEMMD(
        simulator.prior,
        density_estimator="zuko_maf",
        mmd_weight=mmd_weight,
        embedding_hidden_features=32,
        embedding_pooling=pooling,
        embedding_shape_scale=args.shape_scale,
        show_progress_bars=False,
    )
    # sbi prints its convergence message without a newline; keep it out of the table.
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.append_simulations(theta, x).train(
            max_num_epochs=args.epochs, training_batch_size=args.batch_size, learning_rate=1e-3
        )
    rmse = posterior_rmse(trainer, simulator, seed=5)
    summary_dim = trainer.embedding_net(x[:1]).shape[-1]
    scale = torch.as_tensor(trainer.summary_regularizer.target_scale, dtype=torch.float64)
    return trainer.embedding_net, rmse, trainer.epoch, scale.expand(summary_dim)


def posterior_rmse(trainer: NPEMMD, simulator: GaussianMeans, seed: int) -> float:
    """RMSE of the posterior mean against the analytic one over 50 data sets."""
    x = observed_sets(None, 0.0, 50, seed)
    posterior = trainer.build_posterior()
    errors = []
    for x_o in x:
        draws = posterior.sample((500,), x=x_o, show_progress_bars=False)
        exact = x_o.sum(0) / (1 + simulator.n_obs)
        errors.append((draws.mean(0) - exact).square().sum())
    return float(torch.stack(errors).mean().sqrt())


def observed_sets(knob: str | None, value: float, num: int, seed: int) -> torch.Tensor:
    """``num`` data sets from the (mis)specified process, shape ``(num, 100, 2)``."""
    process = GaussianMeans(**({knob: value} if knob else {}))
    theta = process.sample_prior(num, seed=seed)
    return process.simulate(theta, seed=seed + 1)


def settings() -> list[tuple[str | None, float, int]]:
    rows = [(None, 0.0)] + [(knob, v) for knob, values in KNOBS.items() for v in values]
    return [(knob, value, size) for knob, value in rows for size in SIZES]


def ours_column(summary_net: nn.Module, args: argparse.Namespace) -> list[torch.Tensor]:
    """Decisions of misspecification_test, one bool per replicate and row (one reference set
    and null per block)."""
    torch.set_num_threads(1)
    simulator = GaussianMeans()
    decisions = []
    for index, (knob, value, size) in enumerate(settings()):
        reps = args.fpr_reps if knob is None else args.power_reps
        seed = 10_000 * (index + 1)
        x_all = observed_sets(knob, value, reps * size, seed).reshape(reps, size, 100, 2)
        rejected = []
        for start in range(0, reps, args.block):
            chunk = x_all[start : start + args.block]
            null, observed = SimulatedNull.build(
                summary_net, simulator, size, args.num_reference, args.num_null,
                seed=seed + 1000 + start, x_extra=chunk.reshape(-1, 100, 2),
            )  # fmt: skip
            statistics = null.statistics(observed.reshape(len(chunk), size, -1))
            rejected += [null.decide(float(t), args.alpha).rejected for t in statistics]
        decisions.append(torch.tensor(rejected))
    return decisions


def sbi_column(summary_net: nn.Module | None, args: argparse.Namespace) -> list[torch.Tensor]:
    """Decisions of sbi's calc_misspecification_mmd, split into its null and its statistic.

    ``summary_net=None`` is x-space on the flattened sets. Like ours, each block of ``--block``
    replicates gets its own pool of simulated sets and sbi's null from it: its size and power
    are then averages over pools, not the luck of a single pool.
    """
    torch.set_num_threads(1)

    def embed(x: torch.Tensor) -> torch.Tensor:
        if summary_net is None:
            return x.flatten(1)
        return summarise(summary_net, x).float()

    nulls: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def pool_and_null(block: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        # sbi's null depends only on the pool and N, so rows share them, block by block.
        if (block, size) not in nulls:
            pool_seed = 500_000 + 1_000 * block + 100_000_000 * args.seed
            pool = embed(observed_sets(None, 0.0, args.sbi_pool, pool_seed))
            torch.manual_seed(pool_seed + size)
            null = calculate_baseline_mmd(
                size, pool, n_shuffle=args.sbi_shuffles, max_samples=args.sbi_pool
            )
            nulls[block, size] = pool, null
        return nulls[block, size]

    decisions = []
    for index, (knob, value, size) in enumerate(settings()):
        reps = args.fpr_reps if knob is None else args.power_reps
        z_all = embed(observed_sets(knob, value, reps * size, 10_000 * (index + 1)))
        rejected = []
        for block, start in enumerate(range(0, reps, args.block)):
            pool, null = pool_and_null(block, size)
            for z in z_all.reshape(reps, size, -1)[start : start + args.block]:
                mmd = compute_rbf_mmd_median_heuristic(z, pool)
                p_value = 1 - (null < mmd).sum().item() / len(null)
                rejected.append(p_value <= args.alpha)
        decisions.append(torch.tensor(rejected))
    return decisions


def widened_prior_bound(args: argparse.Namespace) -> list[torch.Tensor | None]:
    """Decisions of the most powerful test against a widened prior, on the same data sets.

    Under the training model the N set means are i.i.d. N(0, (1 + 1/n) I) and the residuals
    x_k - x̄ have the same law under every ``prior_scale``; the likelihood ratio grows with
    T = Σ |x̄|² / (1 + 1/n) ~ χ²(2N), so rejecting T above its exact χ² quantile is the uniformly
    most powerful test against every widened prior (Neyman-Pearson). ``None`` for other rows.
    """
    from scipy.stats import chi2

    decisions: list[torch.Tensor | None] = []
    for index, (knob, value, size) in enumerate(settings()):
        if knob not in (None, "prior_scale"):
            decisions.append(None)
            continue
        reps = args.fpr_reps if knob is None else args.power_reps
        x_all = observed_sets(knob, value, reps * size, 10_000 * (index + 1))
        n_obs = x_all.shape[1]
        means = x_all.double().mean(dim=1).reshape(reps, size, 2)
        statistic = means.square().sum(dim=(1, 2)) / (1 + 1 / n_obs)
        decisions.append(statistic > chi2.ppf(1 - args.alpha, 2 * size))
    return decisions


def print_bound(results: list[list[torch.Tensor]], bound: list[torch.Tensor | None]) -> None:
    """(a) and sbi's x-space test against the most powerful test, where there is one."""
    print(
        "\n# (u) the uniformly most powerful test against a widened prior (exact χ² test of "
        "Σ|x̄|², same data sets): no test has more power on these rows in expectation"
    )
    print(
        f"| {'setting':<22} | N | {COLUMNS[0]:>20} | {COLUMNS[2]:>20} | {'(u) UMP test':>20} "
        "| (a) - (u) ± paired SE |"
    )
    print("|" + "|".join(["-" * 24, "---", *("-" * 22 for _ in range(3)), "-" * 24]) + "|")
    for row, (knob, value, size) in enumerate(settings()):
        if bound[row] is None:
            continue
        name = "well specified (FPR)" if knob is None else f"{knob}={value:g}"
        rates = [float(r.float().mean()) for r in (results[0][row], results[2][row], bound[row])]
        difference, se = paired_difference(results[0][row], bound[row])
        print(
            f"| {name:<22} | {size} | "
            + " | ".join(f"{rate:>20.3f}" for rate in rates)
            + f" | {difference:+.3f} ± {se:.3f}{'':<7} |"
        )


def main() -> None:
    args = parse()
    torch.set_num_threads(1)
    label = " (QUICK smoke run)" if args.quick else ""
    print(f"# misspecification benchmark{label}")
    print(f"# date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print("# machine: 2 cores, no GPU, shared with 3 other jobs; torch threads 1 per process")
    print(
        "# command: OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.misspecification"
        + (" --quick" if args.quick else "")
        + (f" --seed {args.seed}" if args.seed else "")
    )
    print(
        f"# training: gaussian_means (n_obs=100), {args.num_simulations} simulations, zuko_maf "
        "head (sbi defaults), DeepSet summary net with 32 units and the OPTION "
        "embedding_pooling='centred' (NOT the default): S = 4, the set mean through an affine "
        "map whitened on the first training batch (2 summaries) + 2 shape summaries (learned "
        "centred features and the log within-set spread, batch-normalised; MLP + linear skip) "
        f"with target sd {args.shape_scale:g}; batch {args.batch_size}, lr 1e-3, "
        f"max {args.epochs + 1} epochs, seed {args.seed}; "
        "(b) = same with mmd_weight=0; (a0) = (a) with the DEFAULT plain mean-pooling DeepSet "
        "(S = 4)"
    )
    print(
        f"# test (a,b): IMQ 19-scale kernel, num_reference={args.num_reference}, "
        f"num_null={args.num_null} (simulated null), alpha={args.alpha}; FPR over "
        f"{args.fpr_reps} replicates, power over {args.power_reps}; one reference set and "
        f"null per block of {args.block} replicates"
    )
    print(
        f"# (c) sbi calc_misspecification_mmd: RBF median heuristic, biased, "
        f"max_samples={args.sbi_pool} (pool of {args.sbi_pool} simulated sets), "
        f"n_shuffle={args.sbi_shuffles}, one pool and null per block of {args.block} "
        "replicates, p <= alpha; x-space on flattened sets (200-D), embedding mode on the "
        "unregularised net (b)"
    )
    started = time.time()
    with ProcessPoolExecutor(max_workers=4) as pool:
        x_space = pool.submit(sbi_column, None, args)
        jobs = [
            pool.submit(train, 1.0, args),
            pool.submit(train, 0.0, args),
            pool.submit(train, 1.0, args, "mean"),
        ]
        trained = [j.result() for j in jobs]
        (reg_net, reg_rmse, _, reg_scale), (plain_net, plain_rmse, _, _) = trained[:2]
        mean_net, mean_rmse, _, mean_scale = trained[2]
        epochs = ", ".join(str(t[2]) for t in trained)
        print(f"# training took {time.time() - started:.0f} s (epochs (a), (b), (a0): {epochs})")
        reference = observed_sets(None, 0.0, 1000, args.seed + 77)
        log_var = reference.var(dim=1).mean(dim=-1).log().double()
        for label, net, rmse, scale in (
            ("(a) regularised", reg_net, reg_rmse, reg_scale),
            ("(b) unregularised", plain_net, plain_rmse, reg_scale),
            ("(a0) reg., mean pooling (default)", mean_net, mean_rmse, mean_scale),
        ):
            summaries = summarise(net, reference)
            normal = torch.randn(
                summaries.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64
            )
            distance = float(mmd_squared(summaries, normal * scale))
            target = ", ".join(f"{v:g}" for v in scale.tolist())
            print(
                f"# {label}: MMD^2(summaries, N(0, diag({target})^2)) = {distance:.3f}, "
                f"R^2(log sample variance ~ summaries) = {r_squared(summaries, log_var):.3f}, "
                f"posterior-mean RMSE vs analytic = {rmse:.3f}"
            )
        columns = [
            pool.submit(ours_column, reg_net, args),
            pool.submit(ours_column, plain_net, args),
            x_space,
            pool.submit(sbi_column, plain_net, args),
            pool.submit(ours_column, mean_net, args),
            pool.submit(ours_column, OracleSummaries(shape_scale=args.shape_scale), args),
        ]
        results = [c.result() for c in columns]
    print_table(results)
    print_bound(results, widened_prior_bound(args))
    print(f"\n# total time {time.time() - started:.0f} s")


COLUMNS = (
    "(a) ours, reg.",
    "(b) ours, unreg.",
    "(c) sbi x-space",
    "(c) sbi embedding",
    "(a0) mean pool, dflt",
    "(o) oracle summ.",
)
COMPETITORS = slice(1, 4)  # (b) and the two (c) columns


def paired_difference(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """Difference of rejection rates on the same data sets and its paired standard error."""
    only_ours = int((ours & ~theirs).sum())
    only_theirs = int((theirs & ~ours).sum())
    reps = len(ours)
    difference = (only_ours - only_theirs) / reps
    variance = only_ours + only_theirs - (only_ours - only_theirs) ** 2 / reps
    return difference, math.sqrt(max(variance, 0.0)) / reps


def print_table(results: list[list[torch.Tensor]]) -> None:
    """The rates side by side, with the goal's verdict and the paired comparison per row."""
    print()
    print(
        f"| {'setting':<22} | N | "
        + " | ".join(f"{c:>20}" for c in COLUMNS)
        + " | (a) - best of (b), (c) ± paired SE | goal (a) >= (b), (c) |"
    )
    rule = ["-" * 24, "---", *("-" * 22 for _ in COLUMNS), "-" * 36, "-" * 22]
    print("|" + "|".join(rule) + "|")
    met = power_rows = significant = 0
    for row, (knob, value, size) in enumerate(settings()):
        name = "well specified (FPR)" if knob is None else f"{knob}={value:g}"
        rates = [float(column[row].float().mean()) for column in results]
        text = " | ".join(f"{rate:>20.3f}" for rate in rates)
        ours = results[0][row]
        if knob is None:
            se = math.sqrt(rates[0] * (1 - rates[0]) / len(ours))
            comparison = f"FPR SE {se:.3f}"
            verdict = "FPR in [0.02, 0.08]: " + ("met" if 0.02 <= rates[0] <= 0.08 else "MISSED")
        else:
            power_rows += 1
            best = max(range(COMPETITORS.start, COMPETITORS.stop), key=lambda c: rates[c])
            difference, se = paired_difference(ours, results[best][row])
            if se > 0:
                z = difference / se
            else:  # every discordant data set goes one way (or there are none)
                z = math.copysign(math.inf, difference) if difference else 0.0
            comparison = f"{difference:+.3f} ± {se:.3f} vs {COLUMNS[best][:3]} (z {z:+.1f})"
            if difference >= 0:
                verdict, met = "met", met + 1
            elif z > -1.645:
                verdict = f"missed, not signif. ({difference:+.3f})"
            else:
                verdict, significant = f"MISSED ({difference:+.3f})", significant + 1
        print(f"| {name:<22} | {size} | {text} | {comparison:<34} | {verdict:<20} |")
    print(
        f"# goal (a) >= (b), (c): met on {met} of {power_rows} power rows; (a) significantly "
        f"below the best of (b), (c) (paired one-sided z < -1.645) on {significant}"
    )
    print(
        "# paired SE: sqrt(n10 + n01 - (n10 - n01)^2 / reps) / reps, n10 (n01) = data sets that "
        "only (a) (only the other test) rejects; all columns test the same data sets"
    )


def r_squared(features: torch.Tensor, target: torch.Tensor) -> float:
    """R^2 of the least-squares linear fit of ``target`` (n,) on ``features`` (n, S)."""
    design = torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)
    coefficients = torch.linalg.lstsq(design, target[:, None]).solution
    residual = target[:, None] - design @ coefficients
    return float(1 - residual.var() / target.var())


if __name__ == "__main__":
    main()
