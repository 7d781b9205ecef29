"""Benchmark: CMPE at its defaults against sbi NPE (nsf) and sbi FMPE, on the sbibm protocol.

Tasks two_moons, gaussian_mixture, slcp and gaussian_linear (10-D) at 1k and 10k simulations
(sbiplug's built-in simulators are sbibm's definitions). Observations and reference posteriors
are sbibm's own files, read from the sbibm wheel with zipfile (sbibm itself pins sbi < 0.22, so
it is not installed); nothing is downloaded at run time. Fetch the wheel once with

    pip download --no-deps sbibm==1.1.0 -d ~/.cache/sbiplug

Every method runs the public API at its defaults, with no options: ``CMPE(prior)`` sampled
with 2 and with 10 (its default) steps, ``NPE(prior, density_estimator="nsf")`` and
``FMPE(prior)``. Rows marked "tuned" (``--tuned``) are extra. Columns: C2ST mean and standard
deviation over the observations (sbi's ``c2st`` with its MLP classifier, 5-fold; 10,000 draws
against sbibm's 10,000 reference draws), training wall time, and the median wall time of one
10,000-draw ``posterior.sample`` (the draws the C2ST uses; rejection to the prior support as
sbi does by default).

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python -m benchmarks.cmpe        # full protocol
    python -m benchmarks.cmpe --tasks two_moons --budgets 1000 --observations 3   # a subset
    python -m benchmarks.cmpe --quick                                             # smoke run
    python -m benchmarks.cmpe --bayesflow ...   # adds BayesFlow's ConsistencyModel (own venv)
"""

from __future__ import annotations

import argparse
import bz2
import contextlib
import io
import os
import shutil
import statistics
import sys
import time
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

import sbiplug
from benchmarks.machine import load_average
from sbiplug.toolkit import NullTracker

TASKS = ("two_moons", "gaussian_mixture", "slcp", "gaussian_linear")
DEFAULT_WHEEL = Path.home() / ".cache" / "sbiplug" / "sbibm-1.1.0-py2.py3-none-any.whl"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--budgets", nargs="+", type=int, default=[1000, 10000])
    parser.add_argument("--observations", type=int, default=10, help="sbibm observations 1..N")
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--methods", nargs="+", default=["cmpe", "npe", "fmpe"])
    parser.add_argument("--tuned", action="store_true", help="add tuned CMPE rows (marked)")
    parser.add_argument("--bayesflow", action="store_true", help="add BayesFlow's CMPE")
    parser.add_argument(
        "--sbibm-wheel", type=Path, default=Path(os.environ.get("SBIBM_WHEEL", DEFAULT_WHEEL))
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run; numbers mean nothing")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.tasks, arguments.budgets = arguments.tasks[:1], [300]
        arguments.observations, arguments.draws = 1, 500
    return arguments


# ----------------------------------------------------------------------------- sbibm files


def sbibm_reference(wheel: Path, task: str, observation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sbibm's observation ``(1, *x_shape)`` and reference draws ``(10000, D)`` for one task."""
    if not wheel.is_file():
        raise SystemExit(
            f"sbibm wheel not found at {wheel}: run `pip download --no-deps sbibm==1.1.0 -d "
            f"{wheel.parent}` once (or pass --sbibm-wheel)"
        )
    folder = f"sbibm/tasks/{task}/files/num_observation_{observation}"
    with zipfile.ZipFile(wheel) as archive:
        x_o = _read_csv(archive.read(f"{folder}/observation.csv"))
        reference = _read_csv(
            bz2.decompress(archive.read(f"{folder}/reference_posterior_samples.csv.bz2"))
        )
    return torch.as_tensor(x_o, dtype=torch.float32), torch.as_tensor(
        reference, dtype=torch.float32
    )


def _read_csv(data: bytes) -> np.ndarray:
    return np.loadtxt(io.StringIO(data.decode()), delimiter=",", skiprows=1, ndmin=2)


# --------------------------------------------------------------------------------- methods


def train_cmpe(prior, theta, x, device):
    from sbiplug_cmpe import CMPE

    trainer = CMPE(prior, device=device, show_progress_bars=False)
    trainer.append_simulations(theta, x).train()
    return {
        "CMPE (2 steps)": trainer.build_posterior(steps=2),
        "CMPE (10 steps)": trainer.build_posterior(),
    }


def train_cmpe_tuned(prior, theta, x, device):
    """Extra rows (marked tuned): batch 128 at every budget, the same rows, so 4x the steps."""
    from sbiplug_cmpe import CMPE

    trainer = CMPE(prior, device=device, show_progress_bars=False)
    trainer.append_simulations(theta, x).train(training_batch_size=128)
    return {"CMPE (10 steps), tuned: batch 128": trainer.build_posterior()}


def train_npe(prior, theta, x, device):
    from sbi.inference import NPE

    trainer = NPE(
        prior,
        density_estimator="nsf",
        device=device,
        tracker=NullTracker(),
        show_progress_bars=False,
    )
    trainer.append_simulations(theta, x).train()
    return {"NPE (nsf)": trainer.build_posterior()}


def train_fmpe(prior, theta, x, device):
    from sbi.inference import FMPE

    trainer = FMPE(prior, device=device, tracker=NullTracker(), show_progress_bars=False)
    trainer.append_simulations(theta, x).train()
    return {"FMPE (ODE)": trainer.build_posterior()}


TRAINERS = {"cmpe": train_cmpe, "npe": train_npe, "fmpe": train_fmpe}


# ------------------------------------------------------------------------------- one setting


def run_setting(task: str, num_simulations: int, arguments) -> list[dict]:
    from sbi.utils.metrics import c2st

    simulator = sbiplug.make_simulator(task)
    torch.manual_seed(arguments.seed)
    theta = simulator.prior.sample((num_simulations,))
    x = simulator.simulate(theta, seed=arguments.seed + 1)
    observations = [
        sbibm_reference(arguments.sbibm_wheel, task, i + 1) for i in range(arguments.observations)
    ]
    trainers = {key: TRAINERS[key] for key in arguments.methods}
    if arguments.tuned:
        trainers["cmpe_tuned"] = train_cmpe_tuned
    rows = []
    for train in trainers.values():
        torch.manual_seed(arguments.seed)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # sbi prints convergence messages
            posteriors = train(simulator.prior, theta, x, arguments.device)
        train_seconds = time.perf_counter() - start
        for label, posterior in posteriors.items():
            rows.append(
                evaluate(
                    task,
                    num_simulations,
                    label,
                    posterior,
                    observations,
                    train_seconds,
                    c2st,
                    arguments,
                )
            )
    if arguments.bayesflow:
        for label, samples, train_seconds, draw_seconds in run_bayesflow(
            theta, x, observations, arguments
        ):
            scores = [
                float(c2st(s, ref, classifier="mlp")) for s, (_, ref) in zip(samples, observations)
            ]
            rows.append(_row(task, num_simulations, label, scores, train_seconds, draw_seconds))
            print(format_row(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------- BayesFlow (optional)

BAYESFLOW_VENV = Path.home() / ".cache" / "sbiplug" / "bayesflow-py312"

# Runs inside the Python 3.12 environment: BayesFlow 2.x's ConsistencyModel with keras 3 on
# torch, at BayesFlow's own defaults (max_time, s0/s1, sigma2, its time_mlp subnet, the
# BasicWorkflow's standardisation, its default number of sampling steps); only total_steps,
# which BayesFlow cannot infer, is set to the training length: BAYESFLOW_EPOCHS passes of
# BAYESFLOW_BATCH rows.
BAYESFLOW_WORKER = """
import os, sys, time
os.environ["KERAS_BACKEND"] = "torch"
import numpy as np, torch, bayesflow as bf
torch.set_num_threads(1)
data = np.load(sys.argv[1])
theta, x, x_obs, draws = data["theta"], data["x"], data["x_obs"], int(data["draws"])
epochs, batch = int(data["epochs"]), int(data["batch"])
network = bf.networks.ConsistencyModel(total_steps=epochs * (len(theta) // batch))
workflow = bf.BasicWorkflow(
    inference_network=network, inference_variables=["theta"], inference_conditions=["x"]
)
start = time.perf_counter()
workflow.fit_offline({"theta": theta, "x": x}, epochs=epochs, batch_size=batch, verbose=0)
train_seconds = time.perf_counter() - start
samples, seconds = [], []
for x_o in x_obs:
    start = time.perf_counter()
    out = workflow.sample(num_samples=draws, conditions={"x": x_o[None]})["theta"]
    seconds.append(time.perf_counter() - start)
    samples.append(np.asarray(out).reshape(draws, -1))
np.savez(sys.argv[2], samples=np.stack(samples), train=train_seconds, draws=np.median(seconds))
"""
BAYESFLOW_EPOCHS, BAYESFLOW_BATCH = 100, 64


def run_bayesflow(theta, x, observations, arguments) -> list[tuple]:
    """BayesFlow's ConsistencyModel on the same simulations, from its own 3.12 environment."""
    import subprocess
    import tempfile

    python = BAYESFLOW_VENV / "bin" / "python"
    if not python.exists():
        interpreter = shutil.which("python3.12") or _pyenv_python("3.12")
        subprocess.run([interpreter, "-m", "venv", str(BAYESFLOW_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "bayesflow>=2,<3", "torch==2.13.0"],
            check=True,
        )
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "in.npz", Path(folder) / "out.npz"
        np.savez(
            inputs,
            theta=theta.numpy(),
            x=x.numpy(),
            x_obs=np.stack([x_o[0].numpy() for x_o, _ in observations]),
            draws=arguments.draws,
            epochs=BAYESFLOW_EPOCHS,
            batch=BAYESFLOW_BATCH,
        )
        worker = Path(folder) / "worker.py"
        worker.write_text(BAYESFLOW_WORKER)
        environment = dict(os.environ, OMP_NUM_THREADS="1")
        subprocess.run(
            [str(python), str(worker), str(inputs), str(outputs)], check=True, env=environment
        )
        result = np.load(outputs)
        samples = [torch.as_tensor(s, dtype=torch.float32) for s in result["samples"]]
    return [
        (
            "BayesFlow ConsistencyModel",
            samples,
            float(result["train"]),
            float(result["draws"]),
        )
    ]


def _pyenv_python(version: str) -> str:
    """The newest pyenv interpreter of ``version`` (e.g. ``"3.12"``)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(root.glob(f"{version}.*/bin/python{version}"))
    if not candidates:
        raise SystemExit(f"--bayesflow needs Python {version} (BayesFlow 2.x); none found")
    return str(candidates[-1])


def evaluate(task, sims, label, posterior, observations, train_seconds, c2st, arguments) -> dict:
    scores, draw_seconds = [], []
    for i, (x_o, reference) in enumerate(observations):
        torch.manual_seed(arguments.seed + 100 + i)
        start = time.perf_counter()
        samples = posterior.sample(
            (arguments.draws,), x=x_o[0].to(arguments.device), show_progress_bars=False
        )
        draw_seconds.append(time.perf_counter() - start)
        scores.append(float(c2st(samples.cpu(), reference[: arguments.draws], classifier="mlp")))
    row = _row(task, sims, label, scores, train_seconds, statistics.median(draw_seconds))
    print(format_row(row), flush=True)
    return row


def _row(task, sims, label, scores, train_seconds, draw_seconds) -> dict:
    spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return {
        "task": task,
        "sims": sims,
        "method": label,
        "c2st": statistics.fmean(scores),
        "c2st_sd": spread,
        "c2st_per_observation": scores,
        "train_s": train_seconds,
        "draws_s": draw_seconds,
    }


HEADER = (
    f"{'task':<17} {'sims':>6} {'method':<34} {'C2ST':>6} {'± sd':>6} {'train s':>8} "
    f"{'10k draws s':>11}"
)


def format_row(row: dict) -> str:
    return (
        f"{row['task']:<17} {row['sims']:>6} {row['method']:<34} {row['c2st']:>6.3f} "
        f"{row['c2st_sd']:>6.3f} {row['train_s']:>8.1f} {row['draws_s']:>11.3f}"
    )


# ----------------------------------------------------------------------------------- goals


def goals(rows: list[dict]) -> list[str]:
    """The issue's goals at defaults, checked on the rows of this run."""
    table = {(r["task"], r["sims"], r["method"]): r for r in rows}
    lines = []
    for (task, sims, method), cmpe in sorted(table.items()):
        if method != "CMPE (10 steps)":
            continue
        npe, fmpe = table.get((task, sims, "NPE (nsf)")), table.get((task, sims, "FMPE (ODE)"))
        where = f"{task} {sims}:"
        if npe is not None:
            if sims >= 10_000:
                text = f"{where} C2ST CMPE(10) {cmpe['c2st']:.3f} <= NPE {npe['c2st']:.3f} + 0.02"
                lines.append(_goal(text, cmpe["c2st"] <= npe["c2st"] + 0.02))
            if sims <= 1000 and task in ("two_moons", "gaussian_mixture"):
                for steps in ("2", "10"):
                    row = table[(task, sims, f"CMPE ({steps} steps)")]
                    text = f"{where} C2ST CMPE({steps}) {row['c2st']:.3f} <= NPE {npe['c2st']:.3f}"
                    lines.append(_goal(text, row["c2st"] <= npe["c2st"]))
            text = (
                f"{where} 10k draws CMPE(10) {cmpe['draws_s']:.3f} s <= NPE {npe['draws_s']:.3f} s"
            )
            lines.append(_goal(text, cmpe["draws_s"] <= npe["draws_s"]))
            text = (
                f"{where} training CMPE {cmpe['train_s']:.0f} s <= 2 x NPE {npe['train_s']:.0f} s"
            )
            lines.append(_goal(text, cmpe["train_s"] <= 2 * npe["train_s"]))
        peer = table.get((task, sims, "BayesFlow ConsistencyModel"))
        if peer is not None:
            text = f"{where} C2ST CMPE(10) {cmpe['c2st']:.3f} <= BayesFlow {peer['c2st']:.3f}"
            lines.append(_goal(text, cmpe["c2st"] <= peer["c2st"]))
            text = (
                f"{where} 10k draws CMPE(10) {cmpe['draws_s']:.3f} s <= BayesFlow "
                f"{peer['draws_s']:.3f} s"
            )
            lines.append(_goal(text, cmpe["draws_s"] <= peer["draws_s"]))
        if fmpe is not None:
            ratio = fmpe["draws_s"] / cmpe["draws_s"]
            lines.append(
                _goal(f"{where} 10k draws FMPE / CMPE(10) = {ratio:.0f}x >= 50x", ratio >= 50)
            )
    return lines


def _goal(text: str, met: bool) -> str:
    return f"{text}: {'met' if met else 'MISSED'}"


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    gpu = torch.cuda.get_device_name() if arguments.device.startswith("cuda") else "none used"
    print(
        f"machine: {os.cpu_count()} cores, GPU {gpu}; torch threads {torch.get_num_threads()}; "
        f"load average at start {load_average()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(
        f"protocol: sbibm observations 1..{arguments.observations}, {arguments.draws} draws vs "
        f"sbibm reference draws, sbi c2st (MLP, 5-fold); tasks {arguments.tasks}, budgets "
        f"{arguments.budgets}; every method at its defaults"
        + (" [QUICK SMOKE RUN: numbers mean nothing]" if arguments.quick else "")
    )
    print()
    print(HEADER, flush=True)
    rows = []
    for budget in sorted(arguments.budgets):  # small budgets first: a cut run covers 1k
        for task in arguments.tasks:
            rows.extend(run_setting(task, budget, arguments))
    print()
    print(f"load average at end {load_average()}")
    print("goals:")
    for line in goals(rows):
        print("  " + line)
    print("C2ST per observation:")
    for row in rows:
        scores = " ".join(f"{score:.3f}" for score in row["c2st_per_observation"])
        print(f"  {row['task']} {row['sims']} {row['method']}: {scores}")


if __name__ == "__main__":
    main()
