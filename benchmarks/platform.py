"""Host platform benchmark (issue 2).

Prints, in one run:
- NPE (nsf) C2ST on two_moons and gaussian_mixture at 10k simulations against the simulators'
  exact reference posteriors (sbi's ``c2st`` with its MLP classifier, 5-fold, as sbibm does);
- wall time of ``sbiplug plugins --all`` (goal: under 1.5 s) and of ``python -c "import sbiplug"``,
  in this environment (host and every plugin) and in a host-only one (``make venv-host``).

Usage: ``python -m benchmarks.platform [--quick] [--host-venv .venv-host]`` from the repository
root.
"""

from __future__ import annotations

import os
import sys

# This file is named like the stdlib module `platform`: drop its folder from the import path
# (what `python -P` does) so that `import platform` anywhere finds the standard library.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import contextlib
import io
import platform as host
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

import sbiplug
from sbiplug.toolkit import seed_all


def command_wall_time(command: list[str], repeats: int) -> float:
    """Median wall time of ``command`` over ``repeats`` runs, after one warm-up run."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def environment_timings(python: str, repeats: int) -> dict:
    """Plugin count and wall times of the ``sbiplug`` command and imports of one environment."""
    executable = os.path.join(os.path.dirname(python), "sbiplug")
    count = "from importlib.metadata import entry_points; print(len(entry_points(group='sbiplug')))"
    plugins = subprocess.run([python, "-c", count], check=True, capture_output=True, text=True)
    return {
        "plugins": int(plugins.stdout),
        "plugins_s": command_wall_time([executable, "plugins", "--all"], repeats),
        "import_s": command_wall_time([python, "-c", "import sbiplug"], repeats),
        "bare_s": command_wall_time([python, "-c", "pass"], repeats),
    }


def npe_c2st(task: str, num_simulations: int, num_observations: int, num_samples: int) -> dict:
    from sbi.utils.metrics import c2st

    seed_all(0)
    simulator = sbiplug.make_simulator(task)
    theta = simulator.sample_prior(num_simulations, seed=0)
    x = simulator.simulate(theta, seed=1)
    trainer = sbiplug.make_estimator(
        "npe", simulator.prior, density_estimator="nsf", show_progress_bars=False
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # sbi prints its convergence message
        trainer.append_simulations(theta, x).train()
    train_seconds = time.perf_counter() - start
    posterior = trainer.build_posterior()
    true_theta = simulator.sample_prior(num_observations, seed=2)
    observations = simulator.simulate(true_theta, seed=3)
    scores = []
    for index, x_o in enumerate(observations):
        reference = simulator.reference_posterior(x_o, num_samples, seed=100 + index)
        seed_all(200 + index)
        samples = posterior.sample((num_samples,), x=x_o, show_progress_bars=False)
        scores.append(float(c2st(reference, samples, classifier="mlp", seed=index)))
    return {
        "task": task,
        "c2st_mean": statistics.fmean(scores),
        "c2st_min": min(scores),
        "c2st_max": max(scores),
        "epochs": len(trainer.summary["training_loss"]),
        "train_s": train_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test budgets")
    parser.add_argument(
        "--host-venv",
        type=Path,
        default=Path(".venv-host"),
        help="a virtual environment with the host alone, no method plugin (make venv-host)",
    )
    args = parser.parse_args()
    num_simulations = 1_000 if args.quick else 10_000
    num_observations = 2 if args.quick else 5
    num_samples = 1_000 if args.quick else 5_000
    repeats = 3 if args.quick else 7

    print(f"# sbiplug platform benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: {os.cpu_count()} cores, no GPU, {host.processor() or host.machine()}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"# settings: {num_simulations} simulations, {num_observations} observations drawn "
        f"from the prior, {num_samples} posterior and reference draws each, sbi c2st "
        "(MLP classifier, 5-fold)"
    )
    print()
    print("| task | estimator | simulations | C2ST mean | C2ST range | epochs | train s |")
    print("|---|---|---|---|---|---|---|")
    for task in ("two_moons", "gaussian_mixture"):
        row = npe_c2st(task, num_simulations, num_observations, num_samples)
        print(
            f"| {task} | npe (nsf) | {num_simulations} | {row['c2st_mean']:.3f} | "
            f"{row['c2st_min']:.3f}-{row['c2st_max']:.3f} | {row['epochs']} | "
            f"{row['train_s']:.0f} |",
            flush=True,
        )

    environments = {f"this one ({Path(sys.prefix).name})": sys.executable}
    host_python = args.host_venv / "bin" / "python"
    if host_python.exists():
        environments[f"host only ({args.host_venv.name})"] = str(host_python)
    print()
    print(
        f"median wall time of {repeats} runs after a warm-up; goal: `sbiplug plugins --all` < 1.5 s"
    )
    print()
    print(
        "| environment | entry-point plugins | `sbiplug plugins --all` "
        '| `python -c "import sbiplug"` | bare interpreter |'
    )
    print("|---|---|---|---|---|")
    for label, python in environments.items():
        row = environment_timings(python, repeats)
        print(
            f"| {label} | {row['plugins']} | {row['plugins_s']:.3f} s | {row['import_s']:.3f} s "
            f"| {row['bare_s']:.3f} s |",
            flush=True,
        )
    if not host_python.exists():
        print(f"| host only: no {args.host_venv} (run `make venv-host`) | | | | |")


if __name__ == "__main__":
    main()
