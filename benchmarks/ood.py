"""Benchmark of sbiplug_ood: AUROC of likelihood, typicality and gradient norms, by checkpoint.

Gradient norms are scored two ways: "gradient" is the independent Gaussian per layer of Dauncey
et al.; "gradient-full" is the joint Gaussian of the layers' log norms with a Ledoit-Wolf shrunk
correlation (``GradientNormScorer(covariance="full")``).

(a) Images: scikit-learn's bundled 8x8 digits (no download) are in-distribution; blurred digits,
    constant images and uniform-noise images are out-of-distribution. Pixels (0..16) are
    dequantised, scaled to [0, 1] and logit-transformed (alpha = 0.05); out-of-distribution
    images are rounded to integers first, so every set goes through the same pipeline.
    Out-of-distribution sets: "smoothed" (Gaussian filter, sigma 0.5), "blurred" (sigma 1,
    rescaled to full contrast), "faint" (half intensity), "constant" (one grey level per image)
    and "noise" (uniform pixels).
(b) SBI: prior-predictive simulations of ``gaussian_linear`` (10-D) are in-distribution; the
    same parameters with misspecified noise (scaled x0.5, x0 = noise-free, x2, Student-t with
    the same variance, equicorrelated with rho = 0.8) or a shifted output are
    out-of-distribution. For the three variance shifts the benchmark also prints two scores that
    know the exact density: typicality, and the UMPU two-sided test of a normal variance.

Protocol (shared/papers/ood_gradient_norms.md): a zuko flow (on the 64-D digits a RealNVP, whose
affine coupling layers are Glow's, with MLPs for its convolutions; NSF on gaussian_linear) is
trained on a training split; the in-distribution test split is halved into a fit half
(Gaussian fit, typicality's H) and an evaluation half, disjoint; AUROC has ID as the negative
class (the probability that an OOD group scores higher). "conv" is the checkpoint with the best
fit-half likelihood.

Usage: ``python -m benchmarks.ood [--quick] [--seeds N]`` from the repository root: run as a
script, the folder's ``platform.py`` would shadow the standard library's ``platform``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

torch.set_num_threads(1)

from sbiplug_ood import (
    GradientNormScorer,
    LikelihoodScorer,
    TypicalityScorer,
    auroc,
    group_log_prob,
    train_density,
)

ALPHA = 0.05
#: The gradient-norm scores: independent Gaussians per layer (Dauncey et al.) and their joint,
#: Ledoit-Wolf shrunk Gaussian (``covariance="full"``).
GRADIENTS = ["gradient", "gradient-full"]
#: gaussian_linear's prior and noise variances per coordinate (sbibm): x = theta + noise.
PRIOR_VARIANCE, NOISE_VARIANCE = 0.1, 0.1
#: The variance shifts among the (b) sets: the factor on the noise (its variance: the square).
NOISE_SCALES = {"noise x0.5": 0.5, "noise-free": 0.0, "noise x2": 2.0}


def logit_pixels(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dequantise integer pixels 0..16, scale to [0, 1], logit with alpha = 0.05."""
    u = (images.round().clamp(0, 16) + torch.rand(images.shape, generator=generator)) / 17.0
    p = ALPHA + (1 - 2 * ALPHA) * u
    return torch.log(p) - torch.log1p(-p)


def digits_sets(seed: int, n_ood: int) -> dict[str, torch.Tensor]:
    from scipy.ndimage import gaussian_filter
    from sklearn.datasets import load_digits

    generator = torch.Generator().manual_seed(seed)
    images = torch.tensor(load_digits().data, dtype=torch.float32)
    images = images[torch.randperm(len(images), generator=generator)]
    train, fit, evaluation = images[:897], images[897:1347], images[1347:]
    source = images[897:][torch.randperm(900, generator=generator)[:n_ood]]

    def smoothed(sigma: float) -> torch.Tensor:
        images = np.stack([gaussian_filter(im.reshape(8, 8).numpy(), sigma) for im in source])
        return torch.tensor(images).reshape(-1, 64)

    blurred = smoothed(1.0)
    blurred = blurred * (16.0 / blurred.amax(dim=1, keepdim=True).clamp_min(1e-6))
    sets = {
        "train": train,
        "fit": fit,
        "eval": evaluation,
        "smoothed": smoothed(0.5),
        "blurred": blurred,
        "faint": 0.5 * source,
        "constant": torch.rand(n_ood, 1, generator=generator).mul(16).expand(n_ood, 64),
        "noise": torch.rand(n_ood, 64, generator=generator).mul(16),
    }
    return {name: logit_pixels(value, generator) for name, value in sets.items()}


def gaussian_linear_sets(seed: int, n_train: int, n_test: int) -> dict[str, torch.Tensor]:
    import sbiplug

    simulator = sbiplug.make_simulator("gaussian_linear")
    total = n_train + 2 * n_test

    def simulate(n: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        theta = simulator.sample_prior(n, seed=seed * 1000 + offset)
        return theta, simulator.simulate(theta, seed=seed * 1000 + offset + 1)

    _, x = simulate(total, 0)
    theta, x_ood = simulate(n_test, 10)
    noise = x_ood - theta  # gaussian_linear: x = theta + N(0, NOISE_VARIANCE I)
    rng = np.random.default_rng(seed)
    student = torch.tensor(rng.standard_t(3, size=noise.shape), dtype=torch.float32)
    student = student * NOISE_VARIANCE**0.5 / np.sqrt(3.0)  # the Gaussian noise's variance
    # Equicorrelated noise with the same marginals: sqrt(rho) * common + sqrt(1 - rho) * own.
    common = torch.tensor(rng.standard_normal((len(noise), 1)), dtype=torch.float32)
    correlated = (0.8**0.5) * common * NOISE_VARIANCE**0.5 + (0.2**0.5) * noise
    return {
        "train": x[:n_train],
        "fit": x[n_train : n_train + n_test],
        "eval": x[n_train + n_test :],
        **{name: theta + scale * noise for name, scale in NOISE_SCALES.items()},
        "student-t": theta + student,
        "correlated": theta + correlated,
        "shift +0.3": x_ood + 0.3,
    }


def evaluate(
    models: dict[int, torch.nn.Module],
    sets: dict[str, torch.Tensor],
    ood_names: list[str],
    batch_sizes: list[int],
) -> tuple[dict, int]:
    """AUROC per (ood set, B, checkpoint, method), the converged epoch and overlap fractions."""
    fit_nll = {e: -float(group_log_prob(m, sets["fit"]).mean()) for e, m in models.items()}
    converged = min((e for e in models if e > 0), key=lambda e: fit_nll[e])
    half = len(sets["eval"]) // 2
    results: dict = {}
    for epoch, model in models.items():
        for batch_size in batch_sizes:
            scorers = {
                "likelihood": LikelihoodScorer(model, batch_size).fit(sets["fit"]),
                "typicality": TypicalityScorer(model, batch_size).fit(sets["fit"]),
                "gradient": GradientNormScorer(model, batch_size).fit(sets["fit"]),
                "gradient-full": GradientNormScorer(model, batch_size, covariance="full").fit(
                    sets["fit"]
                ),
            }
            eval_scores = {k: s.score(sets["eval"]) for k, s in scorers.items()}
            for name in [*ood_names, "ID vs ID"]:
                for method, scorer in scorers.items():
                    if name == "ID vs ID":
                        value = auroc(
                            eval_scores[method][: half // batch_size],
                            eval_scores[method][half // batch_size :],
                        )
                    else:
                        value = auroc(eval_scores[method], scorer.score(sets[name]))
                    results[(name, batch_size, epoch, method)] = value
        ll_eval = group_log_prob(model, sets["eval"])
        for name in ood_names:
            ll_ood = group_log_prob(model, sets[name])
            overlap = (ll_ood > ll_eval.median()).double().mean()
            results[(name, 1, epoch, "overlap")] = float(overlap)
    return results, converged


def umpu_variance_cutoffs(k: int, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cutoffs (c1, c2) of the UMPU test of a normal variance on T ~ chi²(k), one per alpha.

    The test rejects T < c1 or T > c2; size and unbiasedness fix both cutoffs through
    F_k(c2) - F_k(c1) = F_{k+2}(c2) - F_{k+2}(c1) = 1 - alpha (Lehmann & Romano, *Testing
    Statistical Hypotheses*, ch. 4, two-sided tests in one-parameter exponential families).
    """
    from scipy import optimize, stats

    def upper(c1: float, alpha: float) -> float:
        return stats.chi2.ppf(1 - alpha + stats.chi2.cdf(c1, k), k)

    def unbiasedness(c1: float, alpha: float) -> float:
        c2 = upper(c1, alpha)
        return stats.chi2.cdf(c2, k + 2) - stats.chi2.cdf(c1, k + 2) - (1 - alpha)

    lower = np.array(
        [
            optimize.brentq(unbiasedness, 1e-12, stats.chi2.ppf(a, k) * (1 - 1e-12), args=(a,))
            for a in alphas
        ]
    )
    return lower, np.array([upper(c1, a) for c1, a in zip(lower, alphas, strict=True)])


def umpu_score(
    t: np.ndarray, alphas: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> torch.Tensor:
    """1 - the UMPU test's p-value: the cutoffs widen as alpha falls, so p is the first alpha
    (on the grid) that rejects."""
    rejected = (t[:, None] < lower) | (t[:, None] > upper)
    first = np.where(rejected.any(1), rejected.argmax(1), len(alphas))
    return torch.as_tensor(1 - np.append(alphas, 1.0)[first])


def gaussian_scale_references(batch_sizes: list[int], draws: int = 20_000) -> None:
    """AUROC of two scores that know the exact in-distribution density, for the variance shifts.

    gaussian_linear's prior predictive is N(0, 0.2 I_10); the noise x0.5, noise-free and noise x2
    variants are N(0, v I_10) with v = 0.125, 0.1 and 0.5 (``NOISE_SCALES``), so a
    group of B inputs enters every exact-density score through
    T = sum ||x||² / 0.2 ~ (v / 0.2) chi²(10 B). Two such scores:
    typicality with the exact density, |T - 10 B| (what the learned flow's typicality estimates),
    and the p-value of the uniformly most powerful unbiased (UMPU) test of a normal variance.
    No test that treats a smaller and a larger variance alike (an unbiased one) is more powerful
    at any level. Monte Carlo with ``draws`` groups a side.
    """
    from scipy import stats

    in_variance = PRIOR_VARIANCE + NOISE_VARIANCE
    rng = np.random.default_rng(0)
    alphas = np.linspace(1e-4, 1 - 1e-4, 2000)
    print(
        "\n## (b) reference: exact-density scores for the variance shifts of gaussian_linear "
        f"(Monte Carlo, {draws} groups a side)"
    )
    print(f"{'OOD set':<12} {'B':>2} {'exact typicality':>17} {'UMPU test':>10}")
    for batch_size in batch_sizes:
        k = 10 * batch_size
        cutoffs = umpu_variance_cutoffs(k, alphas)
        in_dist = stats.chi2.rvs(k, size=draws, random_state=rng)
        for name, scale in NOISE_SCALES.items():
            variance = PRIOR_VARIANCE + scale**2 * NOISE_VARIANCE
            shifted = variance / in_variance * stats.chi2.rvs(k, size=draws, random_state=rng)
            typicality = auroc(torch.as_tensor(abs(in_dist - k)), torch.as_tensor(abs(shifted - k)))
            umpu = auroc(
                umpu_score(in_dist, alphas, *cutoffs), umpu_score(shifted, alphas, *cutoffs)
            )
            print(f"{name:<12} {batch_size:>2} {typicality:>17.3f} {umpu:>10.3f}")


def run_experiment(
    label, make_sets, ood_names, checkpoints, epochs, seeds, batch_sizes, flow, flow_options
):
    per_seed = []
    for seed in seeds:
        sets = make_sets(seed)
        start = time.perf_counter()
        models = train_density(
            sets["train"], epochs, checkpoints, flow=flow, seed=seed, **flow_options
        )
        train_time = time.perf_counter() - start
        start = time.perf_counter()
        results, converged = evaluate(models, sets, ood_names, batch_sizes)
        print(
            f"# {label} seed {seed}: training {train_time:.0f} s, scoring "
            f"{time.perf_counter() - start:.0f} s, converged epoch {converged}",
            flush=True,
        )
        per_seed.append((results, converged))
    return per_seed


def report(label, per_seed, ood_names, checkpoints, batch_sizes, immature):
    methods = ["likelihood", "typicality", *GRADIENTS]
    seeds = len(per_seed)
    print(
        f"\n## {label}: AUROC (mean ± sd over {seeds} seed{'s' * (seeds > 1)}; "
        "higher = OOD detected; 0.5 = chance)"
    )
    header = f"{'OOD set':<12} {'B':>2} {'epoch':>6} " + " ".join(f"{m:>13}" for m in methods)
    header += f" {'P(LL_ood>med)':>14}"
    print(header)
    print("-" * len(header))

    def cell(key):
        values = np.array([r[key] for r, _ in per_seed])
        return values.mean(), values.std(), f"{values.mean():.3f}±{values.std():.3f}"

    converged_epochs = [c for _, c in per_seed]
    means: dict = {}
    for name in [*ood_names, "ID vs ID"]:
        for batch_size in batch_sizes:
            for epoch in checkpoints:
                cells = []
                for m in methods:
                    mean, _, text = cell((name, batch_size, epoch, m))
                    means[(name, batch_size, epoch, m)] = mean
                    cells.append(text)
                overlap = ""
                if name != "ID vs ID" and batch_size == 1:
                    overlap = cell((name, 1, epoch, "overlap"))[2]
                print(
                    f"{name:<12} {batch_size:>2} {epoch:>6} "
                    + " ".join(f"{c:>13}" for c in cells)
                    + f" {overlap:>14}"
                )
            # "conv" per seed: the epoch with the best fit-half likelihood.
            for m in methods:
                means[(name, batch_size, "conv", m)] = np.mean(
                    [r[(name, batch_size, c, m)] for r, c in per_seed]
                )
            print(
                f"{name:<12} {batch_size:>2} {'conv':>6} "
                + " ".join(f"{means[(name, batch_size, 'conv', m)]:>13.3f}" for m in methods)
            )
    print(f"(converged epochs per seed: {converged_epochs})")

    for gradient in GRADIENTS:
        print(
            f"\n### {label}: goal 1 ({gradient}) — where likelihood fails (mean AUROC < 0.5), "
            "gradient norms beat likelihood and typicality at the same checkpoint; epoch 0 is "
            "the untrained control (method note, section 8), printed but not a checkpoint"
        )
        met = total = control_met = control_total = 0
        for name in ood_names:
            for batch_size in batch_sizes:
                for epoch in [*checkpoints, "conv"]:
                    ll, ty, gr = (
                        means[(name, batch_size, epoch, m)]
                        for m in ("likelihood", "typicality", gradient)
                    )
                    if ll >= 0.5:
                        continue
                    ok = gr > max(ll, ty)
                    if epoch == 0:
                        control_met, control_total = control_met + ok, control_total + 1
                        verdict = "control: " + ("beats" if ok else "does not beat")
                    else:
                        met, total = met + ok, total + 1
                        verdict = "MET" if ok else "MISSED"
                    print(
                        f"{name:<12} B={batch_size} epoch {epoch!s:>4}: likelihood {ll:.3f}, "
                        f"typicality {ty:.3f}, {gradient} {gr:.3f} -> {verdict}"
                    )
        print(
            f"goal 1 ({gradient}): {met} of {total} cases met at trained checkpoints "
            f"(untrained control: beats both in {control_met} of {control_total})"
        )

    for gradient in GRADIENTS:
        print(
            f"\n### {label}: goal 2 ({gradient}) — immature (epoch {immature}) AUROC within "
            "0.02 of the converged model (best fit-half likelihood) or better"
        )
        met = total = 0
        for name in ood_names:
            for batch_size in batch_sizes:
                imm = means[(name, batch_size, immature, gradient)]
                conv = means[(name, batch_size, "conv", gradient)]
                best_early = max(
                    means[(name, batch_size, e, gradient)] for e in checkpoints if 0 < e <= 5
                )
                ok = imm - conv >= -0.02
                met, total = met + ok, total + 1
                print(
                    f"{name:<12} B={batch_size}: immature {imm:.3f} vs converged {conv:.3f} "
                    f"(diff {imm - conv:+.3f}; best of epochs 1-5 {best_early:.3f}) -> "
                    f"{'MET' if ok else 'MISSED'}"
                )
        print(f"goal 2 ({gradient}): {met} of {total} pairs met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke version")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    batch_sizes = [1, 5]
    if args.quick:
        image_checkpoints, image_epochs = [0, 1, 5], 5
        sbi_checkpoints, sbi_epochs, n_train, n_test = [0, 1, 5], 5, 1000, 300
    else:
        image_checkpoints, image_epochs = [0, 1, 2, 5, 10, 20, 40], 40
        sbi_checkpoints, sbi_epochs, n_train, n_test = [0, 1, 2, 5, 10, 20, 50], 50, 4000, 1000
    # Affine coupling layers, as in Glow (the note's "MLP coupling flow" fallback); 4 steps, as in
    # one level of the note's mini-Glow.
    image_flow = {"hidden_features": (128, 128), "transforms": 4, "batch_size": 64}
    sbi_flow = {"hidden_features": (64, 64), "transforms": 3, "batch_size": 128}

    print(f"# sbiplug_ood benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# machine: 2 cores, no GPU, shared with 3 other jobs (torch {torch.__version__}, "
        "1 thread)"
    )
    print(
        f"# command: OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.ood {' '.join(sys.argv[1:])}"
    )
    print(
        f"# settings: {'QUICK (reduced) ' if args.quick else ''}seeds {seeds}, B {batch_sizes}; "
        f"digits RealNVP {image_flow}, epochs {image_checkpoints}; gaussian_linear NSF {sbi_flow}, "
        f"epochs {sbi_checkpoints}, {n_train} train / {n_test} fit / {n_test} eval / "
        f"{n_test} per OOD set"
    )
    started = time.perf_counter()

    image_ood = ["smoothed", "blurred", "faint", "constant", "noise"]
    per_seed = run_experiment(
        "digits",
        lambda s: digits_sets(s, 450),
        image_ood,
        image_checkpoints,
        image_epochs,
        seeds,
        batch_sizes,
        "realnvp",
        image_flow,
    )
    report(
        "(a) 8x8 digits (ID) vs simpler and noise images",
        per_seed,
        image_ood,
        image_checkpoints,
        batch_sizes,
        immature=1,
    )

    sbi_ood = ["noise x0.5", "noise-free", "noise x2", "student-t", "correlated", "shift +0.3"]
    per_seed = run_experiment(
        "gaussian_linear",
        lambda s: gaussian_linear_sets(s, n_train, n_test),
        sbi_ood,
        sbi_checkpoints,
        sbi_epochs,
        seeds,
        batch_sizes,
        "nsf",
        sbi_flow,
    )
    report(
        "(b) gaussian_linear prior predictive (ID) vs misspecified simulators",
        per_seed,
        sbi_ood,
        sbi_checkpoints,
        batch_sizes,
        immature=1,
    )
    gaussian_scale_references(batch_sizes)
    print(f"\n# total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
