"""Benchmark: free-form injective flows (FIF) as a manifold density and as SBI summaries.

Every headline row runs the public API at its defaults (the summary dimension d is the user's
choice and is stated). Sections:
- sine toy (the FIF paper's 1-D curve in R^2, x = (t, sin t), t ~ U(-2, 2), data noise 0.05):
  ``fit_injective_flow(x, 1)`` against a plain full-dimensional flow (zuko NSF on R^2) and an
  autoencoder (same encoder/decoder networks, squared error only) + a flow on its latents.
  Reported: NLL on the manifold of clean test points on the curve (arc-length measure; the
  truth is the data's own entropy), the reconstruction error of noisy test points, and the
  median distance of 2,000 samples to the curve (the latent flow is a 1-D free-form flow,
  ``fit_flow``: zuko's autoregressive flows do not train on one feature). The
  full-dimensional flow has no manifold density; its 2-D NLL of noisy test points is given.
- waveform at 10,000 simulations (``sbiplug_fff`` simulator: 3 parameters -> 100 noisy
  points, exact MCMC reference posteriors): sbi NPE (nsf) on d = 3 FIF summaries
  (``make_embedding_net("fif", input_dim=100, output_dim=3)``, pretrained on x, frozen), on
  PCA summaries with the same d, and with sbi's end-to-end ``FCEmbedding`` at its defaults
  (the registered ``fc``); C2ST (sbi's MLP, 5 folds) per observation. Then the AUROC with
  which the FIF summary net's reconstruction error and manifold log-density separate fresh
  simulations from a perturbed simulator (``drift``: a linear trend that leaves the manifold;
  ``amplitude``: parameters beyond the prior, which stay on an extension of it).

    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 python -m benchmarks.fif         # full protocol
    python -m benchmarks.fif --only waveform --methods fif                      # one row
    python -m benchmarks.fif --quick                                            # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time

import torch
import zuko
from sbi.utils.metrics import c2st
from torch import nn

import sbiplug
from benchmarks.machine import load_average, train_quietly
from sbiplug.sbi_internals import trained_network
from sbiplug.toolkit import NullTracker
from sbiplug_fff import fit_flow, fit_injective_flow
from sbiplug_fff.injective import InjectiveResidualNet
from sbiplug_fff.injective_loss import half_log_det_gram
from sbiplug_fff.simulators.waveform import Waveform
from sbiplug_fff.summaries import find_fif_summary

SECTIONS = ("sine", "waveform")
METHODS = ("fif", "pca", "fc")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke version")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="waveform rows"
    )
    return parser.parse_args()


def settings(arguments: argparse.Namespace) -> dict:
    if arguments.quick:
        return dict(simulations=1000, observations=1, c2st_draws=500, steps=300, ood=100)
    return dict(
        simulations=10_000,
        observations=arguments.observations,
        c2st_draws=2000,
        steps=2000,
        ood=500,
    )


# -- sine toy ---------------------------------------------------------------------------------


def sine_data(n: int, seed: int, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    t = torch.rand(n, 1, generator=generator) * 4 - 2
    clean = torch.cat([t, torch.sin(t)], dim=1)
    return clean, clean + noise * torch.randn(clean.shape, generator=generator)


def train_zuko(flow: nn.Module, data: torch.Tensor, steps: int) -> nn.Module:
    """Adam with cosine decay on minibatches of 256 (the FIF fit's own schedule)."""
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        batch = data[torch.randint(len(data), (256,))]
        loss = -flow().log_prob(batch).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
        optimizer.step()
        schedule.step()
    return flow.eval()


def autoencoder_and_flow(data: torch.Tensor, steps: int) -> tuple[nn.Module, nn.Module, tuple]:
    """Encoder/decoder as FIF's, trained on squared error only; a zuko NSF on the latents."""
    shift, scale = data.mean(0), data.std(0)
    encoder, decoder = InjectiveResidualNet(2, 1), InjectiveResidualNet(1, 2)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    empty = torch.zeros(256, 0)
    for _ in range(steps):
        y = (data[torch.randint(len(data), (256,))] - shift) / scale
        loss = (decoder(encoder(y, empty), empty) - y).pow(2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        latents = encoder((data - shift) / scale, torch.zeros(len(data), 0))
    z_shift, z_scale = latents.mean(0), latents.std(0)
    # zuko's autoregressive flows do not train in one dimension: a 1-D free-form flow instead
    latent_flow = fit_flow((latents - z_shift) / z_scale, num_steps=steps, seed=0)
    return encoder, decoder, (shift, scale, latent_flow, z_shift, z_scale)


def run_sine(config: dict) -> list[tuple]:
    steps = config["steps"]
    _, train = sine_data(4000, seed=0)
    clean, noisy = sine_data(2000, seed=1)
    t = clean[:, 0]
    # truth: t ~ U(-2, 2) pushed onto the curve; density per arc length 1 / (4 sqrt(1 + cos^2))
    true_nll = float((math.log(4) + 0.5 * torch.log1p(torch.cos(t) ** 2)).mean())
    rows = [("sine", "truth (data entropy on the curve)", true_nll, 0.0025 * 2, 0.0, 0.0)]

    def distance(draws: torch.Tensor) -> float:
        grid = torch.linspace(-3, 3, 3001)
        curve = torch.stack([grid, torch.sin(grid)], 1)
        return float(torch.cdist(draws, curve).min(1).values.median())

    start = time.perf_counter()
    fif = fit_injective_flow(train, 1, num_steps=steps)
    seconds = time.perf_counter() - start
    rows.append(
        (
            "sine",
            "FIF (fit_injective_flow, d = 1)",
            float(-fif.log_prob(clean).mean()),
            float(fif.reconstruction_error(noisy).mean()),
            distance(fif.sample((2000,))),
            seconds,
        )
    )

    torch.manual_seed(0)
    start = time.perf_counter()
    flow = train_zuko(zuko.flows.NSF(2, transforms=3), train, steps)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        nll_2d = float(-flow().log_prob(noisy).mean())
        draws = flow().sample((2000,))
    rows.append(
        (
            "sine",
            f"full-dim NSF (2-D NLL {nll_2d:.2f})",
            math.nan,
            math.nan,
            distance(draws),
            seconds,
        )
    )

    torch.manual_seed(0)
    start = time.perf_counter()
    encoder, decoder, (shift, scale, latent_flow, z_shift, z_scale) = autoencoder_and_flow(
        train, steps
    )
    seconds = time.perf_counter() - start
    empty = torch.zeros(len(clean), 0)
    with torch.no_grad():
        z = (encoder((clean - shift) / scale, empty) - z_shift) / z_scale
        log_z = latent_flow.log_prob(z).double() - torch.log(z_scale).double().sum()

        def decode_one(row: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return decoder((row * z_scale + z_shift)[None], c[None])[0] * scale + shift

        _, half_log_det = half_log_det_gram(decode_one, z, empty)
        # the decoder acts on the unscaled latent: undo the z-scoring's volume change
        nll = float(-(log_z - half_log_det + torch.log(z_scale).double().sum()).mean())
        reconstruction = decoder(encoder((noisy - shift) / scale, empty), empty) * scale + shift
        error = float((reconstruction - noisy).pow(2).sum(-1).mean())
        sampled = latent_flow.sample((2000,)) * z_scale + z_shift
        draws = decoder(sampled, torch.zeros(2000, 0)) * scale + shift
    rows.append(
        ("sine", "autoencoder + flow (1-D FFF) on latents", nll, error, distance(draws), seconds)
    )
    return rows


# -- waveform ---------------------------------------------------------------------------------


LABELS = {
    "fif": "NPE (nsf) on FIF summaries, d = 3",
    "pca": "NPE (nsf) on PCA summaries, d = 3",
    "fc": "NPE (nsf) + sbi FCEmbedding (end-to-end, defaults)",
}


class PCASummary(nn.Module):
    """Fixed projection onto the first d principal components of the training x."""

    def __init__(self, x: torch.Tensor, d: int):
        super().__init__()
        mean = x.mean(0)
        _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
        self.register_buffer("mean", mean)
        # a frozen parameter, not a buffer: sbi looks up a summary net's device by its parameters
        self.components = nn.Parameter(vh[:d].T.contiguous(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.components


def beyond_prior(simulator: Waveform, n: int) -> torch.Tensor:
    """x for amplitude parameters in [2, 3] (a = 1.8 to 2.2), the others from the prior."""
    generator = torch.Generator().manual_seed(8)
    theta = torch.cat(
        [
            torch.rand(n, 1, generator=generator) + 2.0,
            torch.rand(n, 2, generator=generator) * 2 - 1,
        ],
        1,
    )
    noise = torch.randn(n, simulator.num_points, generator=generator, dtype=torch.float64)
    return (simulator.mean_observation(theta.double()) + simulator.noise_scale * noise).float()


def auroc(inside: torch.Tensor, outside: torch.Tensor) -> float:
    """P(score of an outside point > score of an inside point), ties one half."""
    greater = (outside[:, None] > inside[None, :]).double().mean()
    ties = (outside[:, None] == inside[None, :]).double().mean()
    return float(greater + 0.5 * ties)


def run_waveform(config: dict, chosen: list[str]) -> tuple[list[tuple], list[tuple]]:
    simulator = Waveform()
    prior = simulator.prior
    theta = simulator.sample_prior(config["simulations"], seed=0)
    x = simulator.simulate(theta, seed=1)
    theta_o = simulator.sample_prior(config["observations"], seed=2)
    x_o = simulator.simulate(theta_o, seed=3)
    references = [
        simulator.reference_posterior(x_o[i], config["c2st_draws"], seed=100 + i)
        for i in range(len(x_o))
    ]
    common = dict(show_progress_bars=False, tracker=NullTracker(), density_estimator="nsf")
    methods = {
        "fif": lambda: sbiplug.make_estimator(
            "npe",
            prior,
            embedding_net=sbiplug.make_embedding_net(
                "fif", input_dim=100, output_dim=3, num_steps=config["steps"]
            ),
            **common,
        ),
        "pca": lambda: sbiplug.make_estimator(
            "npe", prior, embedding_net=PCASummary(x, 3), **common
        ),
        "fc": lambda: sbiplug.make_estimator(
            "npe",
            prior,
            embedding_net=sbiplug.make_embedding_net("fc", input_dim=100),
            **common,
        ),
    }
    rows, fif_trainer = [], None
    for key in chosen:
        name, make = LABELS[key], methods[key]
        torch.manual_seed(0)
        trainer = make()
        posterior, seconds = train_quietly(trainer, theta, x)
        scores = []
        for i, reference in enumerate(references):
            torch.manual_seed(20 + i)
            draws = posterior.sample((len(reference),), x=x_o[i], show_progress_bars=False)
            scores.append(float(c2st(draws, reference, seed=0)))
        rows.append(("waveform", name, sum(scores) / len(scores), scores, seconds))
        print(f"  {name}: C2ST {rows[-1][2]:.3f} ({seconds:.0f} s)", flush=True)
        if key == "fif":
            fif_trainer = trainer
    if fif_trainer is None:
        return rows, []

    summary, front = find_fif_summary(trained_network(fif_trainer))
    n = config["ood"]
    fresh = simulator.simulate(simulator.sample_prior(n, seed=4), seed=5)
    perturbed = {
        "drift 0.5 (off the manifold)": Waveform(drift=0.5).simulate(
            simulator.sample_prior(n, seed=6), seed=7
        ),
        # parameters outside the prior box: the simulator refuses them, so simulate by hand
        "amplitude 1.8-2.2 (beyond the prior)": beyond_prior(simulator, n),
    }

    def scores(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            seen = front(data)
        return summary.reconstruction_error(seen), -summary.log_prob(seen)

    inside_error, inside_nll = scores(fresh)
    ood_rows = []
    for name, data in perturbed.items():
        error, nll = scores(data)
        ood_rows.append((name, auroc(inside_error, error), auroc(inside_nll, nll)))
    return rows, ood_rows


def goals(sine_rows, rows, ood_rows) -> list[str]:
    lines = []
    if sine_rows:
        fif, ae = sine_rows[1], sine_rows[3]
        lines.append(
            f"sine: FIF manifold NLL {fif[2]:.3f} vs autoencoder+flow {ae[2]:.3f} (truth "
            f"{sine_rows[0][2]:.3f}); sample distance FIF {fif[4]:.3f} vs full-dim "
            f"{sine_rows[2][4]:.3f}: {'met' if fif[2] <= ae[2] else 'MISSED'} (FIF <= AE+flow)"
        )
    if len(rows) == 3:
        fif, pca, end = (row[2] for row in rows)
        lines.append(
            f"FIF ({fif:.3f}) <= PCA ({pca:.3f}) + 0.01: {'met' if fif <= pca + 0.01 else 'MISSED'}"
        )
        lines.append(
            f"FIF ({fif:.3f}) within 0.03 of end-to-end ({end:.3f}): "
            f"{'met' if fif <= end + 0.03 else 'MISSED'}"
        )
    for name, error, nll in ood_rows[:1]:
        best = max(error, nll)
        lines.append(
            f"AUROC >= 0.9 off the manifold ({name}): {best:.3f} "
            f"{'met' if best >= 0.9 else 'MISSED'}"
        )
    return lines


def main() -> None:
    arguments = parse()
    torch.set_num_threads(1)
    config = settings(arguments)
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}")
    print(
        f"machine: {os.cpu_count()} cores shared with other jobs, no GPU, torch threads 1; "
        f"load average at start {load_average()} (times are wall-clock)"
    )
    print(f"command: python -m benchmarks.fif {' '.join(sys.argv[1:])}".rstrip())
    print(f"settings: {'QUICK (reduced) ' if arguments.quick else ''}{config}", flush=True)
    sine_rows, rows, ood_rows = [], [], []
    if "sine" in arguments.only:
        sine_rows = run_sine(config)
        print()
        print(
            "| sine toy | NLL on the manifold | reconstruction error | sample distance "
            "to curve | train s |"
        )
        print("|---|---|---|---|---|")
        for _, name, nll, error, dist, seconds in sine_rows:
            print(f"| {name} | {nll:.3f} | {error:.4f} | {dist:.4f} | {seconds:.0f} |")
        print(
            "(truth row: reconstruction error = expected squared data noise 2 x 0.05^2)", flush=True
        )
    if "waveform" in arguments.only:
        print()
        rows, ood_rows = run_waveform(config, arguments.methods)
        print()
        print(
            f"| waveform ({config['simulations']} sims) | C2ST (mean) | C2ST per observation "
            "| train s |"
        )
        print("|---|---|---|---|")
        for _, name, mean, scores, seconds in rows:
            per = ", ".join(f"{s:.3f}" for s in scores)
            print(f"| {name} | {mean:.3f} | {per} | {seconds:.0f} |")
        print()
        print("| perturbed simulator | AUROC (reconstruction error) | AUROC (-log density) |")
        print("|---|---|---|")
        for name, error, nll in ood_rows:
            print(f"| {name} | {error:.3f} | {nll:.3f} |")
    print()
    print(f"load average at end {load_average()}")
    print("goals:")
    for line in goals(sine_rows, rows, ood_rows):
        print("  " + line)


if __name__ == "__main__":
    main()
