"""The extrapolation score: the calibrated threshold's false-alarm rate, detection, verdicts."""

from __future__ import annotations

import math

import torch

from sbiplug_context import EnvironmentSCM, EnvironmentScore, check_criteria, choose_model
from sbiplug_context.extrapolation import false_alarm_bounds


def test_threshold_false_alarm_within_binomial_tolerance():
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(6, 6, generator=generator)

    def embeddings(n, shift=0.0):  # correlated, non-spherical "set embeddings"
        return (torch.randn(n, 6, generator=generator) + shift) @ mixing

    alpha, m, n = 0.1, 400, 4000
    rates = []
    for _ in range(5):  # independent calibrations: the guarantee is over the calibration draw
        score = EnvironmentScore(false_alarm=alpha).fit(embeddings(3000)).calibrate(embeddings(m))
        rates.append(float(score.flag(embeddings(n)).double().mean()))
    low, high = false_alarm_bounds(alpha, m)
    # mean over 5 x 4000 draws; the rate varies with the calibration draw (Beta, sd ~ 0.015 at
    # m = 400) and the test draw: 4 standard deviations of both around the guaranteed range
    spread = 4 * math.sqrt(alpha * (1 - alpha) * (1 / (m + 2) + 1 / n) / 5)
    assert low - spread < sum(rates) / 5 < high + spread
    # shifted embeddings: detected, with small conformal p-values
    far = embeddings(200, shift=3.0)
    assert float(score.flag(far).double().mean()) > 0.95
    assert float(score.p_values(far).median()) < 0.01
    inside = embeddings(2000)  # a p-value at most alpha is exactly a flag
    assert torch.equal(score.p_values(inside) <= alpha, score.flag(inside))


def test_criteria_verdicts_for_each_variant():
    verdicts = {}
    for variant in ("both", "no_input_shift", "no_slope_shift"):
        scm = EnvironmentSCM(variant)
        x, y = scm.sample(scm.environments(12, seed=1), 160, seed=2)
        verdicts[variant] = check_criteria(x, y, set_size=20)
    assert verdicts["both"].c1 and verdicts["both"].c2
    assert not verdicts["no_input_shift"].c1 and verdicts["no_input_shift"].c2
    assert verdicts["no_slope_shift"].c1 and not verdicts["no_slope_shift"].c2
    assert "C1" in verdicts["no_input_shift"].verdict and "cannot help" in (
        verdicts["no_input_shift"].verdict
    )
    assert choose_model(verdicts["both"])[0] == "context"
    assert choose_model(verdicts["both"], flagged=True)[0] == "robust"
    assert choose_model(verdicts["no_slope_shift"])[0] == "robust"
