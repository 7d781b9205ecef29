"""Benchmark: CMPE (2 and 10 steps) against sbi NPE (nsf) and sbi FMPE, side by side.

For two_moons, gaussian_mixture and slcp at 1k and 10k simulations it prints C2ST against the
simulator's reference posterior (n/a where the simulator has none), training wall time and the
wall time to draw 10,000 posterior samples for one observation.

    OMP_NUM_THREADS=1 python -m benchmarks.cmpe            # full run (see --help for budgets)
    OMP_NUM_THREADS=1 python -m benchmarks.cmpe --quick    # smoke version, about a minute

C2ST protocol: ``sbi.utils.metrics.c2st`` (random forest, 5-fold cross-validation, z-scored by
the first sample), ``--c2st-samples`` approximate vs as many reference draws per observation,
averaged over ``--observations`` observations simulated from prior draws (0.5 is ideal). This
is sbi's convenient C2ST, not the paper's MLP protocol. Sampling time: minimum over
``--timing-rounds`` round-robin repeats after a warm-up, all methods of a setting timed in
turn (so they see the same load), for one observation, with rejection to the prior support
as sbi does by default.
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

import torch

import sbiplug
from sbiplug.toolkit import NullTracker

METHODS = ("CMPE (2 steps)", "CMPE (10 steps)", "NPE (nsf)", "FMPE (ODE)")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke version")
    parser.add_argument("--tasks", nargs="+", default=["two_moons", "gaussian_mixture", "slcp"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument("--observations", type=int, default=2)
    parser.add_argument("--c2st-samples", type=int, default=1000)
    parser.add_argument("--cmpe-steps", type=int, default=60_000, help="CMPE optimiser steps")
    parser.add_argument("--cmpe-batch", type=int, default=128)
    parser.add_argument("--cmpe-width", type=int, default=64)
    parser.add_argument("--cmpe-max-epochs", type=int, default=5000)
    parser.add_argument("--baseline-max-epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-rounds", type=int, default=3)
    parser.add_argument(
        "--methods", nargs="+", default=["cmpe", "npe", "fmpe"], choices=["cmpe", "npe", "fmpe"]
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.tasks = arguments.tasks[:1]
        arguments.budgets = [500]
        arguments.observations = 1
        arguments.c2st_samples = 500
        arguments.cmpe_steps = 300
        arguments.timing_rounds = 1
        arguments.baseline_max_epochs = 5
    return arguments


def cmpe_epochs(num_simulations: int, arguments: argparse.Namespace) -> int:
    """Epochs giving about ``--cmpe-steps`` optimiser steps (90% of the simulations train)."""
    batches = max(int(0.9 * num_simulations) // arguments.cmpe_batch, 1)
    return max(min(arguments.cmpe_steps // batches, arguments.cmpe_max_epochs), 2)


def train_cmpe(prior, theta, x, arguments):
    from sbiplug_cmpe import CMPE

    trainer = CMPE(prior, hidden_features=arguments.cmpe_width, num_blocks=2)
    trainer.append_simulations(theta, x).train(
        training_batch_size=arguments.cmpe_batch,
        learning_rate=1e-3,
        max_num_epochs=cmpe_epochs(len(theta), arguments),
        stop_after_epochs=10**6,  # fixed schedule: the curriculum length is the budget
    )
    return trainer


def train_npe(prior, theta, x, arguments):
    from sbi.inference import NPE

    trainer = NPE(prior, density_estimator="nsf", tracker=NullTracker(), show_progress_bars=False)
    trainer.append_simulations(theta, x).train(max_num_epochs=arguments.baseline_max_epochs)
    return trainer


def train_fmpe(prior, theta, x, arguments):
    from sbi.inference import FMPE

    trainer = FMPE(prior, tracker=NullTracker(), show_progress_bars=False)
    trainer.append_simulations(theta, x).train(max_num_epochs=arguments.baseline_max_epochs)
    return trainer


def c2st_score(posterior, x_observations, references, num_samples: int) -> float:
    from sbi.utils.metrics import c2st

    if references is None:
        return float("nan")
    scores = []
    for x_o, reference in zip(x_observations, references):
        samples = posterior.sample((num_samples,), x=x_o, show_progress_bars=False)
        scores.append(float(c2st(samples, reference)))
    return sum(scores) / len(scores)


def run_setting(task: str, num_simulations: int, arguments) -> list[dict]:
    simulator = sbiplug.make_simulator(task)
    prior = simulator.prior
    torch.manual_seed(arguments.seed)
    theta = prior.sample((num_simulations,))
    x = simulator.simulate(theta, seed=arguments.seed + 1)
    true_theta = prior.sample((arguments.observations,))
    x_observations = simulator.simulate(true_theta, seed=arguments.seed + 2)
    try:
        references = [
            simulator.reference_posterior(x_o, arguments.c2st_samples, seed=arguments.seed + i)
            for i, x_o in enumerate(x_observations)
        ]
    except NotImplementedError:
        references = None

    rows = []
    trainers = {
        "CMPE": train_cmpe,
        "NPE (nsf)": train_npe,
        "FMPE (ODE)": train_fmpe,
    }
    selected = {"cmpe": "CMPE", "npe": "NPE (nsf)", "fmpe": "FMPE (ODE)"}
    trainers = {
        label: train
        for key, label in selected.items()
        if key in arguments.methods
        for name, train in trainers.items()
        if name == label
    }
    posteriors = []
    for name, train in trainers.items():
        torch.manual_seed(arguments.seed)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # sbi prints convergence messages
            trainer = train(prior, theta, x, arguments)
        train_seconds = time.perf_counter() - start
        variants = (
            [("CMPE (2 steps)", 2), ("CMPE (10 steps)", 10)] if name == "CMPE" else [(name, None)]
        )
        for label, steps in variants:
            posterior = trainer.build_posterior(steps=steps) if steps else trainer.build_posterior()
            torch.manual_seed(arguments.seed + 7)
            score = c2st_score(posterior, x_observations, references, arguments.c2st_samples)
            posteriors.append(posterior)
            rows.append(
                {
                    "task": task,
                    "sims": num_simulations,
                    "method": label,
                    "c2st": score,
                    "train_s": train_seconds,
                    "sample_s": float("inf"),
                    "epochs": len(trainer.summary["training_loss"]),
                }
            )
    # Time the samplers round-robin, so that all methods see the same load on a shared machine.
    for posterior in posteriors:  # warm-up
        posterior.sample((10_000,), x=x_observations[0], show_progress_bars=False)
    for _ in range(arguments.timing_rounds):
        for posterior, row in zip(posteriors, rows):
            start = time.perf_counter()
            posterior.sample((10_000,), x=x_observations[0], show_progress_bars=False)
            row["sample_s"] = min(row["sample_s"], time.perf_counter() - start)
    for row in rows:
        print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'task':<17} {'sims':>6} {'method':<16} {'C2ST':>6} {'train s':>8} {'epochs':>6} "
    f"{'10k draws s':>11}"
)


def format_row(row: dict) -> str:
    c2st = "n/a" if row["c2st"] != row["c2st"] else f"{row['c2st']:.3f}"
    return (
        f"{row['task']:<17} {row['sims']:>6} {row['method']:<16} {c2st:>6} "
        f"{row['train_s']:>8.1f} {row['epochs']:>6} {row['sample_s']:>11.3f}"
    )


def goals(rows: list[dict]) -> list[str]:
    """The issue's goals, checked on the rows of this run."""

    def get(task, sims, method, key):
        for row in rows:
            if (row["task"], row["sims"], row["method"]) == (task, sims, method):
                return row[key]
        return None

    lines = []
    large, small = max(r["sims"] for r in rows), min(r["sims"] for r in rows)
    cmpe, npe = (
        get("two_moons", large, "CMPE (10 steps)", "c2st"),
        get("two_moons", large, "NPE (nsf)", "c2st"),
    )
    if cmpe is not None and npe is not None:
        verdict = "met" if cmpe <= npe + 0.02 else "MISSED"
        lines.append(
            f"two_moons {large}: CMPE(10) C2ST {cmpe:.3f} <= NPE {npe:.3f} + 0.02: {verdict}"
        )
    for task in sorted({r["task"] for r in rows}):
        for sims in sorted({r["sims"] for r in rows}):
            c10 = get(task, sims, "CMPE (10 steps)", "sample_s")
            fm = get(task, sims, "FMPE (ODE)", "sample_s")
            nsf = get(task, sims, "NPE (nsf)", "sample_s")
            if None in (c10, fm, nsf):
                continue
            lines.append(
                f"{task} {sims}: 10k draws CMPE(10) {c10:.3f}s; FMPE/CMPE = {fm / c10:.0f}x "
                f"(goal >= 50x: {'met' if fm / c10 >= 50 else 'MISSED'}); NPE/CMPE = "
                f"{nsf / c10:.2f}x (goal >= 1: {'met' if nsf >= c10 else 'MISSED'})"
            )
    for task in ("gaussian_mixture", "two_moons"):
        cmpe, npe = (
            get(task, small, "CMPE (10 steps)", "c2st"),
            get(task, small, "NPE (nsf)", "c2st"),
        )
        if cmpe is not None and npe is not None and cmpe == cmpe:
            verdict = "met" if cmpe <= npe else "MISSED"
            lines.append(f"{task} {small}: CMPE(10) C2ST {cmpe:.3f} <= NPE {npe:.3f}: {verdict}")
    return lines


def main() -> None:
    arguments = parse_arguments()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {os.cpu_count()} cores, no GPU; torch threads {torch.get_num_threads()}; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"settings: tasks {arguments.tasks}, budgets {arguments.budgets}, "
        f"{arguments.observations} observations x {arguments.c2st_samples} draws for C2ST; "
        f"CMPE ~{arguments.cmpe_steps} optimiser steps (batch {arguments.cmpe_batch}, width "
        f"{arguments.cmpe_width}, 2 residual blocks, lr 1e-3 cosine, T=10, s0/s1=10/50, no "
        f"early stopping); NPE (nsf) and FMPE sbi defaults with early stopping, "
        f"max_num_epochs {arguments.baseline_max_epochs}; methods {arguments.methods}"
        + (" [QUICK SMOKE RUN: numbers mean nothing]" if arguments.quick else "")
    )
    print()
    print(HEADER)
    rows = []
    # Small budgets first, so a run cut short still covers every task at 1k.
    for budget in sorted(arguments.budgets):
        for task in arguments.tasks:
            rows.extend(run_setting(task, budget, arguments))
    print()
    print("goals:")
    for line in goals(rows):
        print("  " + line)


if __name__ == "__main__":
    main()
