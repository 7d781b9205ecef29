"""Benchmark: misspecification detection at its defaults, on three models, side by side.

Per model (``gaussian_means`` (sets of 100 2-D draws), sbibm ``two_moons`` (2-D vectors),
``sir`` (10-point time series)), each observed data set comes from
``Misspecified(model, kind, strength)`` (the generic wrapper, two strengths per kind) or from
the model itself (FPR). Columns, all testing the same data sets at alpha = 0.05:

  (a)  ``misspecification_test`` at its defaults (summary block + data block, min-p combined)
       on ``npe_mmd`` trained at its defaults;
  (b)  the same test on the same network trained without the regulariser (``mmd_weight=0``);
  (a1) for information: the paper's test alone (``data_features=None``) on (a)'s network,
       i.e. the previous default;
  (cx) sbi's ``calc_misspecification_mmd`` in x-space, (ce) in embedding mode on (b)'s net
       (RBF median heuristic; sbi's shuffling null on a pool of simulated data sets);
  (o)  an oracle that knows the alternative: per row, a classifier trained on
       ``--oracle-train`` data sets of the true misspecified process against as many from the
       model (input: x (sets: the set mean) and the default test's data/residual features,
       computed with (a)'s network), approximating the likelihood ratio; statistic: the sum
       of its logits over the N sets, against a simulated null of model data sets. It shows
       how much any test of these features could see; not a competitor in the goals.
  (i)  gaussian_means only: the default test with the ideal summary block (the whitened set
       mean, sufficient for μ) in place of the learned one.

Nulls: per column and N, ``--nulls`` reference sets + simulated nulls (``SimulatedNull``; sbi:
pools + baseline MMDs), replicate r of every row using null r mod ``--nulls``; each rate is
then an average over those nulls. The N = 1 rows test the first data set of each N = 5 group.
Paired comparison of (a) with the best of (b), (cx), (ce): the difference of rejection rates
and its paired SE sqrt(n10 + n01 - (n10 - n01)^2 / reps) / reps.

Usage: ``python -m benchmarks.misspecification [--models gaussian_means,two_moons,sir]
[--reps 200] [--fpr-reps 500] [--quick]`` from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import math
import sys
import time

import torch
from sbi.diagnostics.misspecification import (
    calculate_baseline_mmd,
    compute_rbf_mmd_median_heuristic,
)

import sbiplug
from benchmarks.machine import load_average
from sbiplug_misspec import NPEMMD, GaussianMeans, Misspecified
from sbiplug_misspec.hypothesis_test import SimulatedNull, summarise
from sbiplug_misspec.null import resolve_data_features

KINDS: dict[str, tuple[float, float]] = {
    "heavy_tails": (0.2, 0.5),  # Student-t with 5 and 2 degrees of freedom, same scale
    "skew": (0.2, 0.5),  # same mean and variance
    "bimodal": (0.6, 0.9),  # same mean and variance
    "outliers": (0.02, 0.1),  # fraction of gross errors of 5 noise sds
    "scale": (0.25, 1.0),  # noise sd x 1.25, x 2
    "drift": (1.0, 3.0),  # noise sds over the first event axis
    "correlated": (0.3, 0.6),  # AR(1) lag-1 correlation
    "censor": (0.05, 0.2),  # upper tail clipped
    "prior_shift": (1.0, 2.0),  # prior sds, unconstrained space
    "prior_scale": (0.5, 1.0),  # prior sd x 1.5, x 2
}
SIZES = (1, 5)
COLUMNS = (
    "(a) default", "(b) unreg.", "(a1) paper", "(cx) sbi x", "(ce) sbi emb.", "(o) oracle",
    "(i) ideal",
)  # fmt: skip
ALPHA = 0.05


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gaussian_means,two_moons,sir")
    parser.add_argument("--reps", type=int, default=200, help="power replicates per row")
    parser.add_argument("--fpr-reps", type=int, default=500, help="FPR replicates per N")
    parser.add_argument("--other-reps", type=int, default=None, help="--reps for other models")
    parser.add_argument("--other-fpr-reps", type=int, default=None, help="same for FPR")
    parser.add_argument("--nulls", type=int, default=4, help="reference sets/nulls per column")
    parser.add_argument("--num-simulations", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=40, help="max training epochs")
    parser.add_argument("--oracle-train", type=int, default=1000, help="oracle data sets")
    parser.add_argument("--no-ideal", action="store_true", help="skip column (i)")
    parser.add_argument("--strong-only", action="store_true", help="only the stronger level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke version")
    args = parser.parse_args()
    args.num_reference, args.num_null, args.sbi_shuffles, args.sbi_pool = 1000, 500, 500, 1000
    if args.quick:
        args.reps, args.fpr_reps, args.nulls, args.num_simulations, args.epochs = 20, 20, 1, 1000, 2
        args.other_reps = args.other_fpr_reps = None
        args.oracle_train = 100
        args.num_reference, args.num_null, args.sbi_shuffles, args.sbi_pool = 200, 99, 50, 200
    args.other_reps = args.other_reps or args.reps
    args.other_fpr_reps = args.other_fpr_reps or args.fpr_reps
    return args


def make_model(name: str) -> sbiplug.Simulator:
    return GaussianMeans() if name == "gaussian_means" else sbiplug.make_simulator(name)


def train(model: sbiplug.Simulator, mmd_weight: float, args: argparse.Namespace) -> NPEMMD:
    """npe_mmd at its defaults (``mmd_weight=0``: the same network, unregularised)."""
    theta = model.sample_prior(args.num_simulations, seed=args.seed)
    x = model.simulate(theta, seed=args.seed + 1)
    torch.manual_seed(args.seed)
    trainer = NPEMMD(model.prior, mmd_weight=mmd_weight, show_progress_bars=False)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.append_simulations(theta, x).train(
            max_num_epochs=args.epochs, training_batch_size=256
        )
    return trainer


def posterior_rmse(trainer: NPEMMD, model: sbiplug.Simulator, seed: int) -> tuple[float, float]:
    """RMSE of the posterior mean to the true θ, and to the exact posterior mean (or nan)."""
    theta = model.sample_prior(100, seed=seed)
    x = model.simulate(theta, seed=seed + 1)
    posterior = trainer.build_posterior()
    truth, exact = [], []
    for i, x_o in enumerate(x):
        mean = posterior.sample((300,), x=x_o, show_progress_bars=False).mean(0)
        truth.append((mean - theta[i]).square().sum())
        if model.has_reference_posterior:
            reference = model.reference_posterior(x_o, 300, seed=seed + i).mean(0)
            exact.append((mean - reference).square().sum())
    to_exact = float(torch.stack(exact).mean().sqrt()) if exact else math.nan
    return float(torch.stack(truth).mean().sqrt()), to_exact


class IdealSetMean(torch.nn.Module):
    """The whitened set mean of ``gaussian_means``: sufficient for μ (column (o))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-2) / math.sqrt(1 + 1 / x.shape[-2])


def rows(strong_only: bool = False) -> list[tuple[str | None, float]]:
    """FPR row, then each kind at its two strengths (``strong_only``: the stronger alone)."""
    pairs = [(kind, s) for kind, pair in KINDS.items() for s in pair]
    return [(None, 0.0)] + [(k, s) for k, s in pairs if not strong_only or s == KINDS[k][1]]


def observed(model: sbiplug.Simulator, kind: str | None, strength: float, reps: int, seed: int):
    """``reps`` groups of 5 observed data sets, shape ``(reps, 5, *observation_shape)``."""
    process = Misspecified(model, kind, strength) if kind else model
    theta = process.sample_prior(reps * 5, seed=seed)
    x = process.simulate(theta, seed=seed + 1)
    return x.reshape(reps, 5, *model.observation_shape)


def ours(summary, model, data, args, data_features="auto", paper_too=False):
    """Decisions (reps,) per (row, N) of the default test; and of the summary block alone."""
    out, paper = {}, {}
    for size in SIZES:
        nulls = [
            SimulatedNull.build(
                summary, model, size, args.num_reference, args.num_null,
                seed=args.seed + 7919 * (j + 1) + size, data_features=data_features,
            )[0]
            for j in range(args.nulls)
        ]  # fmt: skip
        for key, x in data.items():
            groups = x[:, :size]
            decisions, alone = [], []
            for j, null in enumerate(nulls):
                chunk = groups[j :: args.nulls]
                flat = chunk.reshape(-1, *model.observation_shape)
                features = [f.reshape(len(chunk), size, -1) for f in null.features(flat)]
                statistics = null.statistics(features)
                decisions.append(null.p_values(statistics) <= ALPHA)
                block0 = null.block_null[:, 0]
                alone.append(
                    (1 + (block0[None] >= statistics[:, :1]).sum(1)) / (1 + len(block0)) <= ALPHA
                )
            out[key, size] = _unshuffle(decisions, args.nulls)
            paper[key, size] = _unshuffle(alone, args.nulls)
    return (out, paper) if paper_too else out


def _unshuffle(parts: list[torch.Tensor], step: int) -> torch.Tensor:
    total = sum(len(p) for p in parts)
    result = torch.zeros(total, dtype=torch.bool)
    for j, part in enumerate(parts):
        result[j::step] = part
    return result


def sbi_column(embed, model, data, args):
    """sbi's calc_misspecification_mmd decisions, its null shared per pool (``--nulls``)."""
    out = {}
    for size in SIZES:
        pools = []
        for j in range(args.nulls):
            seed = 500_000 + 1000 * j + size
            theta = model.sample_prior(args.sbi_pool, seed=seed)
            pool = embed(model.simulate(theta, seed=seed + 1))
            torch.manual_seed(seed)
            pools.append(
                (pool, calculate_baseline_mmd(size, pool, args.sbi_shuffles, args.sbi_pool))
            )
        for key, x in data.items():
            z_all = embed(x[:, :size].reshape(-1, *model.observation_shape))
            z_all = z_all.reshape(len(x), size, -1)
            rejected = []
            for r, z in enumerate(z_all):
                pool, null = pools[r % args.nulls]
                mmd = compute_rbf_mmd_median_heuristic(z, pool)
                rejected.append(1 - (null < mmd).sum().item() / len(null) <= ALPHA)
            out[key, size] = torch.tensor(rejected)
    return out


def oracle_features(trainer: NPEMMD, model: sbiplug.Simulator):
    """x -> the oracle's inputs: x (sets: its mean) and the default test's data blocks."""
    blocks = resolve_data_features("auto", model, trainer)

    def featurise(x: torch.Tensor) -> torch.Tensor:
        location = x.mean(dim=-2) if x.ndim == 3 else x.flatten(1)
        parts = [location.double()] + [torch.as_tensor(f(x)).double() for _, f in blocks]
        return torch.cat(parts, dim=-1)

    return featurise


def _classifier(positive: torch.Tensor, negative: torch.Tensor, seed: int) -> torch.nn.Module:
    """A small MLP trained to tell ``positive`` (alternative) from ``negative`` (model) rows."""
    inputs = torch.cat([positive, negative]).float()
    centre, scale = inputs.mean(0), inputs.std(0).clamp_min(1e-6)
    labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))])
    torch.manual_seed(seed)
    width = inputs.shape[1]
    net = torch.nn.Sequential(
        torch.nn.Linear(width, 64), torch.nn.ELU(), torch.nn.Linear(64, 64), torch.nn.ELU(),
        torch.nn.Linear(64, 1),
    )  # fmt: skip
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    z = ((inputs - centre) / scale).clamp(-20, 20)
    for _ in range(400):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(z)[:, 0], labels)
        loss.backward()
        optimiser.step()
    net.eval()
    return lambda x: net(((x.float() - centre) / scale).clamp(-20, 20))[:, 0].detach()


def oracle_column(trainer, model, data, args):
    """Decisions of the classifier oracle (column (o)); none on the FPR rows."""
    featurise = oracle_features(trainer, model)
    size_train = args.oracle_train
    with torch.random.fork_rng():
        torch.manual_seed(args.seed + 31)
        negatives = featurise(model.simulate(model.sample_prior(size_train, seed=71), seed=72))
        null_x = model.simulate(model.sample_prior(args.num_null * 5, seed=73), seed=74)
        null_features = featurise(null_x)
        observed = {
            key: featurise(x.reshape(-1, *model.observation_shape)) for key, x in data.items()
        }
    out = {}
    for index, (kind, strength) in enumerate(rows()):
        if kind is None or (kind, strength) not in data:
            continue
        process = Misspecified(model, kind, strength)
        theta = process.sample_prior(size_train, seed=900 + index)
        with torch.random.fork_rng():
            torch.manual_seed(args.seed + 1000 + index)
            positives = featurise(process.simulate(theta, seed=950 + index))
        logit = _classifier(positives, negatives, seed=index)
        null_logits = logit(null_features).reshape(args.num_null, 5)
        logits = logit(observed[kind, strength]).reshape(-1, 5)
        for size in SIZES:
            null = null_logits[:, :size].sum(1)
            statistic = logits[:, :size].sum(1)
            p = (1 + (null[None] >= statistic[:, None]).sum(1)) / (1 + len(null))
            out[(kind, strength), size] = p <= ALPHA
    return out


def paired(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    reps = len(a)
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    return (n10 - n01) / reps, math.sqrt(max(n10 + n01 - (n10 - n01) ** 2 / reps, 0)) / reps


def run_model(name: str, args: argparse.Namespace) -> dict:
    start = time.time()
    model = make_model(name)
    trained = {w: train(model, w, args) for w in (1.0, 0.0)}
    rmse = {w: posterior_rmse(t, model, seed=97) for w, t in trained.items()}
    train_time = time.time() - start
    data = {}
    first = name == "gaussian_means"
    for index, (kind, strength) in enumerate(rows()):
        if args.strong_only and (kind, strength) not in rows(True):
            continue
        if kind is None:
            reps = args.fpr_reps if first else args.other_fpr_reps
        else:
            reps = args.reps if first else args.other_reps
        data[kind, strength] = observed(model, kind, strength, reps, 10_000 * (index + 1))
    sim_time = time.time() - start - train_time
    results: dict[str, dict] = {}
    results[COLUMNS[0]], results[COLUMNS[2]] = ours(trained[1.0], model, data, args, paper_too=True)
    results[COLUMNS[1]] = ours(trained[0.0], model, data, args)
    results[COLUMNS[3]] = sbi_column(lambda x: x.flatten(1).float(), model, data, args)
    net_b = trained[0.0].embedding_net
    results[COLUMNS[4]] = sbi_column(lambda x: summarise(net_b, x).float(), model, data, args)
    results[COLUMNS[5]] = oracle_column(trained[1.0], model, data, args)
    if name == "gaussian_means" and not args.no_ideal:
        results[COLUMNS[6]] = ours(IdealSetMean(), model, data, args)
    epochs = [trained[1.0].epoch, trained[0.0].epoch]
    times = (train_time, sim_time, time.time() - start)
    return {"name": name, "results": results, "rmse": rmse, "epochs": epochs, "times": times}


def print_model(report: dict, args: argparse.Namespace) -> tuple[int, int, int, int, int]:
    name, results, rmse = report["name"], report["results"], report["rmse"]
    columns = [c for c in COLUMNS if c in results]
    ratio = rmse[1.0][0] / rmse[0.0][0]
    print(f"\n## {name}")
    print(
        f"# posterior-mean RMSE to true theta over 100 data sets: (a) {rmse[1.0][0]:.4f}, "
        f"(b) plain NPE, same net {rmse[0.0][0]:.4f}; ratio {ratio:.3f} (goal <= 1.10: "
        f"{'met' if ratio <= 1.10 else 'MISSED'}); to the exact posterior mean: (a) "
        f"{rmse[1.0][1]:.4f}, (b) {rmse[0.0][1]:.4f}"
    )
    train_time, sim_time, total = report["times"]
    print(
        f"# epochs (a), (b): {report['epochs']}; times: training {train_time:.0f} s, observed "
        f"data {sim_time:.0f} s, total {total:.0f} s"
    )
    header = " | ".join(f"{c:>13}" for c in columns)
    print(f"| {'row':<20} | N | {header} | (a) - best of (b),(c) ± SE | goals |")
    print("|" + "|".join(["-" * 22, "---", *("-" * 15 for _ in columns), "-" * 28, "-" * 24]) + "|")
    counts = [0, 0, 0, 0, 0]  # power rows, (a) >= best, signif. below, strong N=5 rows, >= 0.8
    for kind, strength in rows(args.strong_only):
        for size in SIZES:
            key = (kind, strength)
            rates = {
                c: float(results[c][key, size].float().mean()) if (key, size) in results[c]
                else math.nan
                for c in columns
            }  # fmt: skip
            label = "FPR (well specified)" if kind is None else f"{kind}={strength:g}"
            cells = " | ".join(f"{rates[c]:>13.3f}" for c in columns)
            if kind is None:
                ok = all(0.02 <= rates[c] <= 0.08 for c in columns[:2])
                goal = f"FPR in [0.02, 0.08]: {'met' if ok else 'MISSED'}"
                print(f"| {label:<20} | {size} | {cells} | {'':<26} | {goal} |")
                continue
            rivals = [c for c in columns if c in (COLUMNS[1], COLUMNS[3], COLUMNS[4])]
            best = max(rivals, key=lambda c: rates[c])
            diff, se = paired(results[COLUMNS[0]][key, size], results[best][key, size])
            counts[0] += 1
            counts[1] += rates[COLUMNS[0]] >= rates[best]
            below = se > 0 and diff / se < -1.645
            counts[2] += below
            goals = ["below" if below else ("tie/above" if diff >= 0 else "below, n.s.")]
            if size == 5 and strength == KINDS[kind][1]:
                counts[3] += 1
                counts[4] += rates[COLUMNS[0]] >= 0.8
                goals.append("strong>=0.8 " + ("met" if rates[COLUMNS[0]] >= 0.8 else "MISSED"))
            compare = f"{diff:+.3f} ± {se:.3f} vs {best.split()[0]}"
            print(f"| {label:<20} | {size} | {cells} | {compare:<26} | {'; '.join(goals)} |")
    print(
        f"# {name}: (a) >= best of (b), (c) on {counts[1]} of {counts[0]} power rows "
        f"(goal >= 80%: {'met' if counts[1] >= 0.8 * counts[0] else 'MISSED'}); significantly "
        f"below on {counts[2]} (goal 0); strong level N = 5: (a) >= 0.8 on {counts[4]} of "
        f"{counts[3]}"
    )
    return tuple(counts)


def main() -> None:
    args = parse()
    torch.set_num_threads(1)
    label = " (QUICK smoke run)" if args.quick else ""
    print(f"# misspecification benchmark{label}")
    print(f"# date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# machine: 2 cores shared with other jobs, no GPU; loadavg at start {load_average()}")
    print(
        "# command: OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python -m "
        f"benchmarks.misspecification --models {args.models} --reps {args.reps} "
        f"--fpr-reps {args.fpr_reps} --other-reps {args.other_reps} --other-fpr-reps "
        f"{args.other_fpr_reps} --nulls {args.nulls} --num-simulations {args.num_simulations} "
        f"--epochs {args.epochs} --oracle-train {args.oracle_train}"
        + (" --no-ideal" if args.no_ideal else "")
        + (" --strong-only" if args.strong_only else "")
        + (" --quick" if args.quick else "")
    )
    print(
        f"# training: NPEMMD(prior) at its defaults (zuko_maf, default summary net, S = 2 x "
        f"parameters, mmd_weight 1, IMQ; validation on the NPE loss); {args.num_simulations} "
        f"simulations, batch 256, max {args.epochs} epochs, sbi's lr and early stopping, seed "
        f"{args.seed}"
    )
    print(
        f"# tests: misspecification_test defaults (M = {args.num_reference}, B = "
        f"{args.num_null}, IMQ 19 scales, data_features='auto'); sbi: pool {args.sbi_pool}, "
        f"n_shuffle {args.sbi_shuffles}; {args.nulls} nulls per column and N; power over "
        f"{args.reps} replicates per row, FPR over {args.fpr_reps} (gaussian_means); "
        f"{args.other_reps} and {args.other_fpr_reps} for the other models; alpha {ALPHA}"
    )
    start = time.time()
    for name in args.models.split(","):
        print_model(run_model(name, args), args)
        sys.stdout.flush()
    print(f"\n# total time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
