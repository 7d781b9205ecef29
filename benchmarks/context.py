"""Benchmark of sbiplug_context: variable trial counts (SBI) and context-aware prediction.

(a) SBI, ``gaussian_sets`` (2-D Gaussian means) and ``mixed_effects`` (random-intercept
    regression), both with exact posteriors. Three ways to serve trial counts k in 5..200:
    - "context": ONE NPE (sbiplug defaults, ``set_deepsets`` encoder through
      ``set_estimator_options``) trained on simulations with k in [5, 200] (the simulators'
      default law, uniform);
    - "per-count": one NPE per k (same encoder, k fixed), the same simulation budget each;
    - "sbi-PIE": sbi's ``PermutationInvariantEmbedding`` (the registered
      ``permutation_invariant`` net, sbi's defaults) trained at one fixed k (50), evaluated there.
    C2ST (sbi's ``c2st``) of 1000 posterior draws against 1000 exact draws, averaged over
    ``--observations`` observations per k (10: one C2ST scatters by about ±0.015 and the
    approximation error varies between observations); training times summed per method.
    Goal: context within 0.03 C2ST of per-count at every k, in less total training time.
(b) Domain generalisation, ``EnvironmentSCM`` (linear-Gaussian, environment shifts): for each
    variant ("both" criteria true, "no_input_shift" = C1 false, "no_slope_shift" = C2 false),
    ``ContextRegressor`` with and without context (ERM) on the same training environments,
    MSE on held-out environments, the criteria verdicts (``check_criteria``), and the AUROC of
    the ``EnvironmentScore`` on the context embedding for out-of-range environments (shifts in
    [2, 3] x range) against held-out in-range ones, with the false-alarm rate at α = 0.05.
    Goals: context beats ERM when both criteria hold and does not lose otherwise; AUROC ≥ 0.9;
    false alarm within its 95% range (beta-binomial: calibration and test sets together).

Usage: ``python -m benchmarks.context [--part sbi|dg|all] [--simulators ...] [--counts ...]
[--num-simulations N] [--observations N]`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch

from benchmarks.machine import load_average

RESULTS = Path(__file__).resolve().parent / "results"


def _train_npe(simulator, estimator_options, num_simulations, seed):
    import sbiplug
    from sbiplug.sbi_internals import allow_missing_trials

    theta = simulator.sample_prior(num_simulations, seed=seed)
    x = simulator.simulate(theta, seed=seed + 1)
    torch.manual_seed(seed)
    options = dict(estimator_options)
    spec = options["embedding_net"]
    options["embedding_net"] = sbiplug.make_embedding_net(spec["name"], **spec["options"])
    trainer = sbiplug.make_estimator(
        "npe", prior=simulator.prior, show_progress_bars=False, **options
    )
    start = time.perf_counter()
    padded = bool(torch.isnan(x).any())
    trainer.append_simulations(theta, x, **({"exclude_invalid_x": False} if padded else {}))
    trainer.train(show_train_summary=False)
    posterior = trainer.build_posterior()
    elapsed = time.perf_counter() - start
    return (allow_missing_trials(posterior) if padded else posterior), elapsed


def _c2st_at(posterior, simulator, k, width, num_observations, seed):
    from sbi.utils.metrics import c2st

    from sbiplug_context import simulate_with_trials

    scores = []
    theta = simulator.sample_prior(num_observations, seed=seed)
    x = simulate_with_trials(simulator, theta, k, seed=seed + 1)
    for i in range(num_observations):
        x_o = x[i : i + 1, :width]
        torch.manual_seed(seed + i)  # the draws, so a rerun reproduces every score
        draws = posterior.sample((1000,), x=x_o, show_progress_bars=False)
        exact = simulator.reference_posterior(x[i], 1000, seed=seed + i)
        scores.append(float(c2st(draws, exact, seed=seed + i)))
    return sum(scores) / len(scores)


def run_sbi(name, counts, num_simulations, num_observations, seed=0):
    import sbiplug
    from sbiplug_context import set_estimator_options

    low, high = min(counts), max(counts)
    simulator = sbiplug.make_simulator(name, min_trials=low, max_trials=high)
    rows = {"context": {}, "per-count": {}, "sbi-PIE": {}}
    times = {"context": 0.0, "per-count": 0.0, "sbi-PIE": 0.0}
    posterior, elapsed = _train_npe(
        simulator, set_estimator_options("npe", simulator), num_simulations, seed
    )
    times["context"] = elapsed
    for k in counts:
        rows["context"][k] = _c2st_at(posterior, simulator, k, high, num_observations, 100 + k)
        print(f"  {name} context k={k}: C2ST {rows['context'][k]:.3f}", file=sys.stderr)
    for k in counts:
        fixed = sbiplug.make_simulator(name, min_trials=k, max_trials=k)
        posterior, elapsed = _train_npe(
            fixed, set_estimator_options("npe", fixed), num_simulations, seed + k
        )
        times["per-count"] += elapsed
        rows["per-count"][k] = _c2st_at(posterior, fixed, k, k, num_observations, 100 + k)
        print(f"  {name} per-count k={k}: C2ST {rows['per-count'][k]:.3f}", file=sys.stderr)
    pie_k = 50 if low <= 50 <= high else counts[len(counts) // 2]
    fixed = sbiplug.make_simulator(name, min_trials=pie_k, max_trials=pie_k)
    pie = {
        "embedding_net": {
            "name": "permutation_invariant",
            "options": {
                "trial_net": {"name": "fc", "options": {"input_dim": fixed.element_dim}},
                "trial_net_output_dim": 20,
            },
        }
    }
    posterior, elapsed = _train_npe(fixed, pie, num_simulations, seed + 999)
    times["sbi-PIE"] = elapsed
    rows["sbi-PIE"][pie_k] = _c2st_at(posterior, fixed, pie_k, pie_k, num_observations, 100 + pie_k)
    return {"c2st": rows, "train_s": times}


def _auroc(inside, outside):
    inside, outside = torch.as_tensor(inside), torch.as_tensor(outside)
    greater = (outside[:, None] > inside[None, :]).double().mean()
    ties = (outside[:, None] == inside[None, :]).double().mean()
    return float(greater + 0.5 * ties)


def _false_alarm_range(alpha, num_calibration, num_test, level=0.95):
    """Central ``level`` range of a false-alarm rate measured on ``num_test`` sets.

    The threshold is the k-th of ``num_calibration`` calibration scores, k = ceil((m + 1)(1 - α)),
    so the chance that a new in-distribution set exceeds it is Beta(m + 1 - k, k) and the count
    among ``num_test`` sets is beta-binomial: calibration and test noise together.
    """
    from scipy.stats import betabinom

    k = math.ceil((num_calibration + 1) * (1 - alpha))
    law = betabinom(num_test, num_calibration + 1 - k, k)
    tail = (1 - level) / 2
    return float(law.ppf(tail)) / num_test, float(law.ppf(1 - tail)) / num_test


def run_dg(num_train_env=256, num_test_env=200, points=200, epochs=150, seed=0):
    from sbiplug_context import (
        ContextRegressor,
        EnvironmentSCM,
        EnvironmentScore,
        check_criteria,
        random_sets,
    )
    from sbiplug_context.extrapolation import false_alarm_bounds

    out = {}
    for variant in ("both", "no_input_shift", "no_slope_shift"):
        scm = EnvironmentSCM(variant)
        x, y = scm.sample(scm.environments(num_train_env, seed=seed), points, seed=seed + 1)
        report = check_criteria(x, y)
        models = {}
        for use_context in (True, False):
            torch.manual_seed(seed)
            model = ContextRegressor(2, use_context=use_context)
            start = time.perf_counter()
            models[use_context] = model.fit(x, y, epochs=epochs, seed=seed)
            print(
                f"  {variant} context={use_context}: {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )
        test_env = scm.environments(num_test_env, seed=seed + 2)
        xt, yt = scm.sample(test_env, points, seed=seed + 3)
        sets = random_sets(xt[:, 100:], 10, 100, seed=seed + 4)
        mse = {
            "context": float(
                (models[True].predict(xt[:, :100], sets) - yt[:, :100]).square().mean()
            ),
            "erm": float((models[False].predict(xt[:, :100]) - yt[:, :100]).square().mean()),
        }
        # extrapolation: fit on training environments, calibrate on half the held-out ones
        train_sets = random_sets(x, 10, 100, seed=seed + 5)
        score = EnvironmentScore(0.05).fit(models[True].embed(train_sets))
        half = num_test_env // 2
        score.calibrate(models[True].embed(sets[:half]))
        inside = score.score(models[True].embed(sets[half:]))
        far_env = scm.environments(half, outside=True, seed=seed + 6)
        xf, _ = scm.sample(far_env, points, seed=seed + 7)
        outside = score.score(models[True].embed(random_sets(xf, 10, 100, seed=seed + 8)))
        out[variant] = {
            "c1": report.c1,
            "c2": report.c2,
            "verdict": report.verdict,
            "mse": mse,
            "auroc": _auroc(inside, outside),
            "false_alarm": float((inside > score.threshold).double().mean()),
            "false_alarm_bounds": false_alarm_bounds(0.05, half),
            "false_alarm_range": _false_alarm_range(0.05, half, len(inside)),
            "detected": float((outside > score.threshold).double().mean()),
        }
        print(f"  {variant}: {json.dumps(out[variant])}", file=sys.stderr)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("sbi", "dg", "all"), default="all")
    parser.add_argument("--simulators", nargs="+", default=["gaussian_sets", "mixed_effects"])
    parser.add_argument("--counts", nargs="+", type=int, default=[5, 10, 25, 50, 100, 200])
    parser.add_argument("--num-simulations", type=int, default=5000)
    parser.add_argument("--observations", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=150, help="domain generalisation epochs")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    result = {"started": datetime.now(UTC).isoformat(), "args": vars(args)}
    if args.part in ("sbi", "all"):
        for name in args.simulators:
            result[name] = run_sbi(name, args.counts, args.num_simulations, args.observations)
            _print_sbi(name, result[name])
    if args.part in ("dg", "all"):
        result["dg"] = run_dg(epochs=args.epochs)
        _print_dg(result["dg"])
    result["loadavg"] = load_average()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"context{('_' + args.tag) if args.tag else ''}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"load average: {result['loadavg']}; raw: {path.relative_to(RESULTS.parents[1])}")


def _print_sbi(name, rows):
    counts = sorted(rows["c2st"]["per-count"])
    print(f"\n{name}: C2ST (0.5 is ideal) by trial count; training time")
    print("| method | " + " | ".join(f"k={k}" for k in counts) + " | train s |")
    print("|---" * (len(counts) + 2) + "|")
    for method in ("context", "per-count", "sbi-PIE"):
        cells = [
            f"{rows['c2st'][method][k]:.3f}" if k in rows["c2st"][method] else "–" for k in counts
        ]
        print(f"| {method} | " + " | ".join(cells) + f" | {rows['train_s'][method]:.0f} |")
    gaps = [rows["c2st"]["context"][k] - rows["c2st"]["per-count"][k] for k in counts]
    faster = rows["train_s"]["context"] < rows["train_s"]["per-count"]
    print(f"max gap context - per-count: {max(gaps):+.3f} (goal <= 0.03); less time: {faster}")


def _print_dg(rows):
    print("\nDomain generalisation: held-out-environment MSE, criteria, extrapolation")
    print("| variant | C1 | C2 | MSE context | MSE ERM | AUROC | false alarm | detected |")
    print("|---|---|---|---|---|---|---|---|")
    for variant, row in rows.items():
        low, high = row["false_alarm_range"]
        print(
            f"| {variant} | {row['c1']} | {row['c2']} | {row['mse']['context']:.3f} | "
            f"{row['mse']['erm']:.3f} | {row['auroc']:.3f} | {row['false_alarm']:.3f} "
            f"(95% range {low:.2f}-{high:.2f}) | {row['detected']:.2f} |"
        )


if __name__ == "__main__":
    main()
