"""Benchmark of the Study workflow (issue 3).

1. Overhead of ``sbiplug.Study`` over the same NPE run written in plain sbi: same simulator,
   same budget, same network, the same number of epochs (early stopping off), the same number
   of posterior draws. Repeats are interleaved (plain, Study, plain, Study, ...) so that load
   from other processes hits both alike; the table reports medians. Goal: at most 5% overhead.
2. Simulation speed-up of a 2-worker dask ``LocalCluster`` over a 1-worker one, for a simulator
   costing ~20 ms per simulation, either sleeping (I/O-bound or external code) or computing
   (CPU-bound, so it needs two free cores). Both clusters start before the clock does.
   Goal: at least 1.6x on a 2-core machine.
3. Cost of the study folder's ledger (issue 22) in a 10k-simulation two_moons study: the prior
   fingerprint and plugin look-up, the manifest check, a checksum per chunk written, and the
   verification of every chunk on resume (reading included), against the study's wall time
   (at defaults, training capped at 20 epochs: a lower bound on the default study, so the share
   is an upper bound). Goal: under 1%.

Usage: ``python -m benchmarks.study [--quick]`` from the repository root.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import statistics
import time
import warnings

import numpy as np
import torch
from torch.distributions import Distribution

import sbiplug
from benchmarks.machine import load_average
from sbiplug.registry import make_simulator
from sbiplug.simulation import SimulationOptions, simulate_training_set
from sbiplug.simulator import Simulator
from sbiplug.toolkit import NullTracker

SECONDS_PER_SIMULATION = 0.02


class SlowTwoMoons(Simulator):
    """Two moons that costs ``SECONDS_PER_SIMULATION`` per simulation (sleeping or computing)."""

    name = "slow_two_moons"
    parameter_names = ("theta_1", "theta_2")
    observation_shape = (2,)

    def __init__(self, busy: bool) -> None:
        self.busy = busy
        # by function, not through the sbiplug package: this class travels to dask workers by
        # value (cloudpickle) and cannot pickle a reference to the sbiplug package object
        self.inner = make_simulator("two_moons")

    @property
    def prior(self) -> Distribution:
        return self.inner.prior

    def _simulate(self, theta, rng):
        for _ in range(len(theta)):
            if self.busy:
                deadline = time.process_time() + SECONDS_PER_SIMULATION
                while time.process_time() < deadline:  # CPU time, so waiting for a core is free
                    np.sin(np.arange(1000.0))
            else:
                time.sleep(SECONDS_PER_SIMULATION)
        return self.inner._simulate(theta, rng)


def plain_sbi_npe(num_simulations: int, epochs: int, num_samples: int, seed: int) -> None:
    """The NPE run written directly against sbi."""
    from sbi.inference import NPE

    simulator = sbiplug.make_simulator("two_moons")
    theta = simulator.sample_prior(num_simulations, seed=seed)
    x = simulator.simulate(theta, seed=seed)
    torch.manual_seed(seed)
    trainer = NPE(
        simulator.prior, density_estimator="maf", tracker=NullTracker(), show_progress_bars=False
    )
    trainer.append_simulations(theta, x).train(max_num_epochs=epochs, stop_after_epochs=10**6)
    posterior = trainer.build_posterior()
    x_o = simulator.simulate(simulator.sample_prior(1, seed=seed + 1), seed=seed + 1)
    posterior.sample((num_samples,), x=x_o, show_progress_bars=False)


def study_npe(num_simulations: int, epochs: int, num_samples: int, seed: int) -> None:
    """The same run through ``sbiplug.Study``."""
    study = sbiplug.Study(
        "two_moons",
        "npe",
        num_simulations=num_simulations,
        estimator_options={"density_estimator": "maf"},
        train_options={"max_num_epochs": epochs, "stop_after_epochs": 10**6},
        seed=seed,
        show_progress_bars=False,
    )
    study.run(num_posterior_samples=num_samples)


def overhead(repeats: int, num_simulations: int, epochs: int, num_samples: int) -> dict:
    """Wall and CPU seconds of each run, interleaved, after one untimed warm-up of each."""
    functions = {"plain": plain_sbi_npe, "study": study_npe}
    for function in functions.values():  # first calls import torch._dynamo, sklearn, ...
        function(num_simulations, 1, num_samples, seed=0)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in functions}
    for repeat in range(repeats):
        order = ["plain", "study"] if repeat % 2 == 0 else ["study", "plain"]
        for name in order:
            wall, cpu = time.perf_counter(), time.process_time()
            functions[name](num_simulations, epochs, num_samples, seed=repeat)
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def _import_simulation_engine() -> None:
    pass


def speedup(repeats: int, num_simulations: int, chunk_size: int, busy: bool) -> dict:
    from distributed import Client, LocalCluster

    simulator = SlowTwoMoons(busy=busy)
    times: dict[int, list[float]] = {1: [], 2: []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clusters = {
            n: LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            for n in (1, 2)
        }
        clients = {n: Client(cluster) for n, cluster in clusters.items()}
        try:
            for n, client in clients.items():  # warm up: workers import torch, sbi, sbiplug
                client.wait_for_workers(n)
                client.run(_import_simulation_engine)
                warm_up = SimulationOptions(
                    chunk_size=1, executor="dask", client=client, show_progress_bars=False
                )
                simulate_training_set(simulator, 2 * n, seed=1, options=warm_up)
            reference = None
            for repeat in range(repeats):
                order = (1, 2) if repeat % 2 == 0 else (2, 1)
                for n in order:
                    options = SimulationOptions(
                        chunk_size=chunk_size,
                        executor="dask",
                        client=clients[n],
                        show_progress_bars=False,
                    )
                    start = time.perf_counter()
                    result = simulate_training_set(
                        simulator, num_simulations, seed=0, options=options
                    )
                    times[n].append(time.perf_counter() - start)
                    if reference is None:
                        reference = result.x
                    assert torch.equal(result.x, reference), "workers changed the simulations"
        finally:
            for client in clients.values():
                client.close()
            for cluster in clusters.values():
                cluster.close()
    return times


def ledger_cost(repeats: int, num_simulations: int, epochs: int, folder: str) -> dict:
    """Seconds of each ledger step (medians over ``repeats``) and of the study they serve."""
    import hashlib
    import io
    import shutil
    import tempfile

    from sbiplug.ledger import ChunkStore, load_finished_chunks, simulator_identity, write_checksum

    root = tempfile.mkdtemp(prefix="ledger-", dir=folder)
    try:
        study = sbiplug.Study(
            "two_moons",
            "npe",
            num_simulations=num_simulations,
            train_options={"max_num_epochs": epochs},
            folder=f"{root}/study",
            show_progress_bars=False,
        )
        start = time.perf_counter()
        study.run()
        study_seconds = time.perf_counter() - start
        simulations = study.simulation.folder
        simulator = study.simulator
        paths = sorted(simulations.glob("chunk_*.npz"))
        contents = [path.read_bytes() for path in paths]
        thetas = []
        for content in contents:
            with np.load(io.BytesIO(content)) as data:
                thetas.append(data["theta"])
        manifest = json.loads((simulations / "manifest.json").read_text())
        steps: dict[str, list[float]] = {"identity": [], "manifest": [], "write": [], "verify": []}
        for _ in range(repeats):
            start = time.perf_counter()
            simulator_identity(simulator, "two_moons", {})
            steps["identity"].append(time.perf_counter() - start)
            start = time.perf_counter()
            ChunkStore(simulations, manifest)
            steps["manifest"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for path, content in zip(paths, contents, strict=True):  # what save() adds
                write_checksum(path, hashlib.sha256(content).hexdigest())
            steps["write"].append(time.perf_counter() - start)
            start = time.perf_counter()
            resumed = load_finished_chunks(ChunkStore(simulations, manifest), thetas, "two_moons")
            steps["verify"].append(time.perf_counter() - start)
            assert len(resumed) == len(paths), "a chunk did not verify"
        return {"study": study_seconds, **{k: statistics.median(v) for k, v in steps.items()}}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller smoke version")
    parser.add_argument("--tmp", default=None, help="folder for the ledger's study (default: /tmp)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.quick:
        npe = {"repeats": 2, "num_simulations": 1000, "epochs": 3, "num_samples": 1000}
        dask = {"repeats": 2, "num_simulations": 60, "chunk_size": 5}
        ledger = {"repeats": 3, "num_simulations": 10_000, "epochs": 2}
    else:
        npe = {"repeats": 5, "num_simulations": 5000, "epochs": 20, "num_samples": 1000}
        dask = {"repeats": 3, "num_simulations": 300, "chunk_size": 10}
        ledger = {"repeats": 5, "num_simulations": 10_000, "epochs": 20}

    print(f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")
    print(f"machine: {os.cpu_count()} cores, no GPU ({os.uname().machine})")
    print(f"load average at start: {load_average()}")
    import sbi

    mode = "quick" if args.quick else "full"
    print(
        f"mode: {mode}; sbiplug {sbiplug.__version__}, sbi {sbi.__version__}, "
        f"torch {torch.__version__}"
    )
    print(f"NPE settings: {npe} (two_moons, maf, early stopping off)")
    print(f"dask settings: {dask}, {SECONDS_PER_SIMULATION * 1000:.0f} ms per simulation")
    print(f"ledger settings: {ledger} (two_moons, npe at defaults, chunk_size 1000)")
    print()

    timed = overhead(**npe)
    print("1. Study overhead over plain sbi (same NPE run), medians of interleaved runs")
    print(f"{'':<28}{'plain sbi':>12}{'sbiplug.Study':>15}{'overhead':>10}{'goal':>9}")
    for clock, label in (("wall", "wall time"), ("cpu", "CPU time (this process)")):
        plain = statistics.median(timed["plain"][clock])
        study = statistics.median(timed["study"][clock])
        ratio = study / plain - 1
        print(f"{label:<28}{plain:>11.2f}s{study:>14.2f}s{ratio:>+10.1%}{'<= 5%':>9}")
    for name in ("plain", "study"):
        for clock in ("wall", "cpu"):
            runs = ", ".join(f"{t:.2f}" for t in timed[name][clock])
            print(f"   {name} {clock}: {runs}")
    print()

    print("2. Simulation on a dask LocalCluster, median wall time")
    print(f"{'simulator cost':<28}{'1 worker':>12}{'2 workers':>15}{'speed-up':>10}{'goal':>9}")
    for busy in (False, True):
        times = speedup(busy=busy, **dask)
        one, two = statistics.median(times[1]), statistics.median(times[2])
        label = "20 ms compute / sim" if busy else "20 ms sleep / sim"
        print(f"{label:<28}{one:>11.2f}s{two:>14.2f}s{one / two:>9.2f}x{'>= 1.6x':>9}")
        print(
            f"   runs 1 worker: {', '.join(f'{t:.2f}' for t in times[1])}; "
            f"2 workers: {', '.join(f'{t:.2f}' for t in times[2])}"
        )
    print()

    costs = ledger_cost(**ledger, folder=args.tmp)
    print(
        f"3. Ledger of a {ledger['num_simulations']}-simulation two_moons study folder, "
        f"medians of {ledger['repeats']}"
    )
    print(f"{'step':<44}{'seconds':>10}{'share':>9}{'goal':>9}")
    study = costs["study"]
    labels = {
        "identity": "prior fingerprint + plugin look-up",
        "manifest": "manifest check",
        "write": "checksums of every chunk written",
        "verify": "verify every chunk on resume (read + hash)",
    }
    for step, label in labels.items():
        print(f"{label:<44}{costs[step]:>9.4f}s{costs[step] / study:>9.3%}")
    fresh = costs["identity"] + costs["manifest"] + costs["write"]
    resume = costs["identity"] + costs["manifest"] + costs["verify"]
    for label, seconds in (("total, fresh run", fresh), ("total, resumed run", resume)):
        print(f"{label:<44}{seconds:>9.4f}s{seconds / study:>9.3%}{'< 1%':>9}")
    print(f"   study wall time (training capped at {ledger['epochs']} epochs): {study:.2f}s")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
