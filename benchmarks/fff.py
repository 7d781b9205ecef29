"""Benchmark: manifold free-form flows (M-FFF) against naive Euclidean baselines, and FFF vs NPE.

Prints, in one run, C2ST against the reference posterior and the wall time to draw 10 000
posterior samples for
- M-FFF (conditional von Mises(-Fisher) mixture latent) on vmf_direction (S^2) and
  torus_angles (T^2), whose posterior wraps across +-pi; on torus_angles also the plain M-FFF
  with the uniform latent;
- sbi NPE (nsf) and sbi FMPE on the naive parameterisations: directions as unconstrained R^3
  vectors normalised after sampling, angles as a box [-pi, pi]^2;
- FFF against NPE (nsf) on two_moons.
C2ST is computed in the embedding (unit vectors; (cos, sin) per angle) for every method.

Usage: ``python -m benchmarks.fff [--quick] [--only TASK ...] [--methods METHOD ...]`` from the
repository root (not run by CI); ``--only two_moons torus_angles`` runs those tasks,
``--methods FFF M-FFF`` only those rows (the table then lacks the others' comparison lines);
``--flow-epochs N``, ``--flow-batch-size N``, ``--mfff-beta B``, ``--mfff-hidden N``,
``--mfff-blocks N``, ``--mfff-latent uniform|mixture`` and ``--flow-patience N`` (sbi's
early-stopping patience) override the pinned flow settings (sensitivity runs).
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
import warnings

import torch
from sbi.inference import FMPE, NPE
from sbi.utils import BoxUniform
from sbi.utils.metrics import c2st

import sbiplug
from sbiplug.toolkit import NullTracker
from sbiplug_fff import FreeFormNPE, build_fff, build_mfff
from sbiplug_fff.manifolds import Torus

# The network settings of the recorded run (benchmarks/results/fff.txt), pinned so that the
# results stay reproducible if the package defaults change. Flows train with FreeFormNPE
# (cosine learning-rate decay over flow_epochs, from FLOW_LEARNING_RATE).
# M-FFF: no projection or uniform-sample penalties (both held the torus posterior too broad);
# the latent is the conditional von Mises(-Fisher) mixture (the package default on the sphere
# and the torus). On torus_angles the plain uniform-latent M-FFF is printed as well.
MFFF_NETWORK = dict(
    latent="mixture",
    hidden_features=128,
    num_blocks=2,
    beta=100.0,
    projection_weight=0.0,
    uniform_reconstruction_weight=0.0,
    latent_reconstruction_weight=10.0,
    hutchinson_samples=1,
)
# FFF: beta = 1000, as two_moons' posterior is ~50x narrower than the prior that sets the
# standardisation; with 25 the decoder is no inverse of the encoder at that scale.
FFF_NETWORK = dict(hidden_features=128, num_blocks=2, beta=1000.0, hutchinson_samples=1)
FLOW_LEARNING_RATE = 2e-3
FLOW_BATCH_SIZE = 128
# sbi's early-stopping patience for the flows (None: sbi's default of 20 epochs)
FLOW_PATIENCE: int | None = None


TASKS = ("vmf_direction", "torus_angles", "two_moons")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke version")
    parser.add_argument(
        "--only", nargs="+", choices=TASKS, default=list(TASKS), help="run only these tasks"
    )
    parser.add_argument(
        "--flow-epochs",
        type=int,
        default=None,
        help="override max_num_epochs of the flows (M-FFF, FFF)",
    )
    parser.add_argument(
        "--mfff-beta",
        type=float,
        default=None,
        help="override the M-FFF reconstruction weight beta",
    )
    parser.add_argument(
        "--mfff-hidden",
        type=int,
        default=None,
        help="override the M-FFF hidden width (hidden_features)",
    )
    parser.add_argument(
        "--mfff-blocks",
        type=int,
        default=None,
        help="override the M-FFF number of residual blocks (num_blocks)",
    )
    parser.add_argument(
        "--mfff-latent",
        choices=("uniform", "mixture"),
        default=None,
        help="override the M-FFF latent (uniform, or the conditional von Mises mixture)",
    )
    parser.add_argument(
        "--flow-batch-size",
        type=int,
        default=None,
        help="override the training batch size of the flows (M-FFF, FFF)",
    )
    parser.add_argument(
        "--flow-patience",
        type=int,
        default=None,
        help="sbi stop_after_epochs for the flows (above flow_epochs: the cosine completes)",
    )
    parser.add_argument(
        "--methods", nargs="+", default=None, help="run only these methods (e.g. FFF M-FFF)"
    )
    return parser.parse_args()


def settings(quick: bool) -> dict:
    if quick:
        return dict(
            simulations=1000,
            flow_epochs=3,
            baseline_epochs=3,
            observations=1,
            c2st_draws=500,
            timing_draws=2000,
        )
    return dict(
        simulations=10_000,
        flow_epochs=100,
        baseline_epochs=150,
        observations=10,
        c2st_draws=2000,
        timing_draws=10_000,
    )


def flow_train_options() -> dict:
    """sbi ``train`` options of the flows (M-FFF, FFF)."""
    options = dict(training_batch_size=FLOW_BATCH_SIZE, learning_rate=FLOW_LEARNING_RATE)
    if FLOW_PATIENCE is not None:
        options["stop_after_epochs"] = FLOW_PATIENCE
    return options


def timed_draws(posterior, x_o: torch.Tensor, num: int) -> tuple[torch.Tensor, float]:
    posterior.sample((16,), x=x_o, show_progress_bars=False)  # warm-up
    start = time.perf_counter()
    draws = posterior.sample((num,), x=x_o, show_progress_bars=False)
    return draws, time.perf_counter() - start


def train(trainer, theta, x, epochs: int, **options) -> tuple[object, float]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.append_simulations(theta, x).train(
            max_num_epochs=epochs, show_train_summary=False, **options
        )
    return trainer.build_posterior(), time.perf_counter() - start


def score_posterior(
    posterior, simulator, observations: torch.Tensor, config: dict, embed=lambda theta: theta
) -> tuple[list[float], float]:
    """C2ST against the reference posterior per observation, and the mean time to draw."""
    scores, seconds = [], []
    for i, x_o in enumerate(observations):
        reference = simulator.reference_posterior(x_o, config["c2st_draws"], seed=10 + i)
        torch.manual_seed(20 + i)
        draws, elapsed = timed_draws(posterior, x_o, config["timing_draws"])
        seconds.append(elapsed)
        scores.append(float(c2st(embed(draws[: config["c2st_draws"]]), reference, seed=0)))
    return scores, sum(seconds) / len(seconds)


def run_task(name: str, config: dict, only_methods: list[str] | None = None) -> list[tuple]:
    """Rows (task, method, mean C2ST, per-observation C2ST, train s, seconds per draws)."""
    simulator = sbiplug.make_simulator(name)
    n = config["simulations"]
    theta = simulator.sample_prior(n, seed=0)
    x = simulator.simulate(theta, seed=1)
    observations = simulator.simulate(
        simulator.sample_prior(config["observations"], seed=2), seed=3
    )
    if name == "torus_angles":
        # two observations at the seam +-pi, the wrapping case: the first angle there, then
        # both angles (b's posterior is bimodal, b and b + pi, so it wraps as well)
        seam = Torus.from_angles(torch.tensor([[3.1, 1.2], [-3.05, 3.1]]))
        observations = torch.cat([simulator.simulate(seam, seed=4), observations])[
            : config["observations"]
        ]
    torus = Torus(2)

    if name == "torus_angles":
        naive_theta = torus.to_angles(theta)
        naive_prior = BoxUniform(-math.pi * torch.ones(2), math.pi * torch.ones(2))

        def to_embedding(draws):
            return Torus.from_angles(draws)
    else:
        naive_theta, naive_prior = theta, None  # unconstrained R^3 vectors

        def to_embedding(draws):
            return draws / draws.norm(dim=-1, keepdim=True)

    def mfff(**overrides):
        network = {**MFFF_NETWORK, **overrides}
        return (
            lambda: FreeFormNPE(
                prior=simulator.prior,
                density_estimator=build_mfff(manifold=simulator.parameter_manifold, **network),
                show_progress_bars=False,
                tracker=NullTracker(),
            ),
            theta,
            lambda d: d,
            flow_train_options(),
            config["flow_epochs"],
        )

    methods = {"M-FFF": mfff()}
    if name == "torus_angles" and MFFF_NETWORK["latent"] != "uniform":
        methods["M-FFF, uniform latent"] = mfff(latent="uniform")
    methods |= {
        "NPE (nsf), naive": (
            lambda: NPE(
                naive_prior,
                density_estimator="nsf",
                show_progress_bars=False,
                tracker=NullTracker(),
            ),
            naive_theta,
            to_embedding,
            {},
            config["baseline_epochs"],
        ),
        "FMPE, naive": (
            lambda: FMPE(naive_prior, show_progress_bars=False, tracker=NullTracker()),
            naive_theta,
            to_embedding,
            {},
            config["baseline_epochs"],
        ),
    }
    rows = []
    for method, (make, train_theta, embed, options, epochs) in methods.items():
        if only_methods is not None and method not in only_methods:
            continue
        torch.manual_seed(0)
        posterior, train_seconds = train(make(), train_theta, x, epochs, **options)
        scores, seconds = score_posterior(posterior, simulator, observations, config, embed)
        rows.append((name, method, sum(scores) / len(scores), scores, train_seconds, seconds))
        print(f"  done {name} / {method}: C2ST {rows[-1][2]:.3f}", flush=True)
    return rows


def run_two_moons(config: dict, only_methods: list[str] | None = None) -> list[tuple]:
    simulator = sbiplug.make_simulator("two_moons")
    n = config["simulations"]
    theta = simulator.sample_prior(n, seed=0)
    x = simulator.simulate(theta, seed=1)
    observations = simulator.simulate(
        simulator.sample_prior(config["observations"], seed=2), seed=3
    )
    methods = {
        "FFF": (
            lambda: FreeFormNPE(
                prior=simulator.prior,
                density_estimator=build_fff(**FFF_NETWORK),
                show_progress_bars=False,
                tracker=NullTracker(),
            ),
            flow_train_options(),
            config["flow_epochs"],
        ),
        "NPE (nsf)": (
            lambda: NPE(
                simulator.prior,
                density_estimator="nsf",
                show_progress_bars=False,
                tracker=NullTracker(),
            ),
            {},
            config["baseline_epochs"],
        ),
    }
    rows = []
    for method, (make, options, epochs) in methods.items():
        if only_methods is not None and method not in only_methods:
            continue
        torch.manual_seed(0)
        posterior, train_seconds = train(make(), theta, x, epochs, **options)
        scores, seconds = score_posterior(posterior, simulator, observations, config)
        rows.append(
            ("two_moons", method, sum(scores) / len(scores), scores, train_seconds, seconds)
        )
        print(f"  done two_moons / {method}: C2ST {rows[-1][2]:.3f}", flush=True)
    return rows


def main() -> None:
    args = parse()
    torch.set_num_threads(1)
    config = settings(args.quick)
    if args.flow_epochs is not None:
        config["flow_epochs"] = args.flow_epochs
    if args.mfff_beta is not None:
        MFFF_NETWORK["beta"] = args.mfff_beta
    if args.mfff_hidden is not None:
        MFFF_NETWORK["hidden_features"] = args.mfff_hidden
    if args.mfff_blocks is not None:
        MFFF_NETWORK["num_blocks"] = args.mfff_blocks
    if args.mfff_latent is not None:
        MFFF_NETWORK["latent"] = args.mfff_latent
    global FLOW_BATCH_SIZE, FLOW_PATIENCE
    if args.flow_batch_size is not None:
        FLOW_BATCH_SIZE = args.flow_batch_size
    if args.flow_patience is not None:
        FLOW_PATIENCE = args.flow_patience
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}")
    print("machine: 2 cores, no GPU, shared with 3 other jobs (times are wall-clock)")
    print(f"command: python -m benchmarks.fff {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"settings: {'QUICK (reduced) ' if args.quick else ''}{config}; "
        "max_num_epochs: flow_epochs for M-FFF/FFF, baseline_epochs for NPE/FMPE "
        "(sbi early stopping after 20 epochs without improvement); "
        f"M-FFF: {MFFF_NETWORK}; FFF: {FFF_NETWORK}; both batch {FLOW_BATCH_SIZE}, "
        "FreeFormNPE with "
        f"lr {FLOW_LEARNING_RATE} decayed by a cosine to 1% over flow_epochs; "
        "NPE / FMPE: sbi defaults; C2ST: sbi c2st (MLP, 5 folds) on c2st_draws draws per "
        "observation in the embedding (torus_angles: the first two observations sit at the "
        "seam +-pi, the rest are prior draws); sample time: one call drawing timing_draws after a "
        "warm-up, averaged over observations",
        flush=True,
    )
    rows = []
    for task in args.only:
        if task == "two_moons":
            rows += run_two_moons(config, args.methods)
        else:
            rows += run_task(task, config, args.methods)
    draws = config["timing_draws"]
    print()
    print(f"| task | method | C2ST (mean) | C2ST per observation | train s | s to draw {draws} |")
    print("|---|---|---|---|---|---|")
    for task, method, mean, scores, train_seconds, seconds in rows:
        per = ", ".join(f"{s:.3f}" for s in scores)
        print(f"| {task} | {method} | {mean:.3f} | {per} | {train_seconds:.0f} | {seconds:.3f} |")
    print()
    by = {(task, method): (mean, seconds) for task, method, mean, _, _, seconds in rows}
    for task in ("vmf_direction", "torus_angles"):
        found = [by.get((task, m)) for m in ("M-FFF", "NPE (nsf), naive", "FMPE, naive")]
        if None in found:
            continue  # a partial run: compare by hand with the recorded rows
        mfff, npe, fmpe = found
        print(
            f"{task}: M-FFF more accurate than both naive baselines: "
            f"{mfff[0] < min(npe[0], fmpe[0])}; sampling speed-up over FMPE: "
            f"{fmpe[1] / mfff[1]:.0f}x (goal >= 20x)"
        )
    if ("torus_angles", "M-FFF, uniform latent") in by:
        print(
            "torus_angles, plain M-FFF (uniform latent): C2ST "
            f"{by[('torus_angles', 'M-FFF, uniform latent')][0]:.3f} (mixture latent: "
            f"{by[('torus_angles', 'M-FFF')][0]:.3f})"
        )
    if ("two_moons", "FFF") in by and ("two_moons", "NPE (nsf)") in by:
        fff, nsf = by[("two_moons", "FFF")], by[("two_moons", "NPE (nsf)")]
        print(f"two_moons: FFF - NPE C2ST = {fff[0] - nsf[0]:+.3f} (goal <= 0.03)")


if __name__ == "__main__":
    main()
