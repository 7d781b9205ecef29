"""``sbiplug report DIR --html``: one self-contained page, checked in real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sbiplug
from sbiplug.diagnostic import DiagnosticResult
from sbiplug.html_report import render_html, study_warnings

# Runs in the page after loading: every image, every resource the page fetched, every error.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const images = Array.from(document.images).map(i => ({
    data: i.src.startsWith('data:image/png;base64,'), complete: i.complete,
    width: i.naturalWidth, height: i.naturalHeight}));
  const resources = performance.getEntriesByType('resource').map(r => r.name);
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({images, resources, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory) -> Path:
    """A tiny study, saved as ``sbiplug run`` saves it: gaussian_linear in 2-D, 300 runs."""
    folder = tmp_path_factory.mktemp("html-study")
    study = sbiplug.Study(
        simulator="gaussian_linear",
        simulator_options={"dim": 2},
        estimator="npe",
        estimator_options={"hidden_features": 16, "num_transforms": 1},
        num_simulations=300,
        diagnostics={"sbc": {"num_sbc_runs": 20}, "c2st_reference": {"num_samples": 100}},
        train_options={"max_num_epochs": 3},
        seed=0,
        show_progress_bars=False,
    )
    result = study.run(num_observations=2, num_posterior_samples=100)
    result.save(folder / "result")
    return folder


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    # Every host name resolves to nothing: a page that fetches anything from the network fails.
    command = [
        "chromium",
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_report_html_renders_in_chromium(study_folder, tmp_path):
    assert shutil.which("chromium"), "headless Chromium is needed: apt-get install -y chromium"
    out = tmp_path / "report"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sbiplug",
            "report",
            str(study_folder),
            "--html",
            "--figures",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    page = out / "report.html"
    assert f"html: {page}" in completed.stdout
    text = page.read_text()

    # Self-contained: no scripts, no style sheets or images from elsewhere, no URLs at all.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text, re.IGNORECASE)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    for needle in ("Setup and provenance", "gaussian_linear", "hdi_3%", "sbc", "c2st_reference"):
        assert needle in text, needle
    assert "Versions" in text and sbiplug.__name__ in text and "torch" in text

    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1))
    dom = _chromium(
        "--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), profile=tmp_path / "profile"
    ).stdout
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert match, "the page did not finish loading"
    report = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert report["errors"] == []
    assert report["resources"] == [], report["resources"]  # nothing fetched, not even locally
    # pair plots for 2 observations, the SBC ECDF, one figure per diagnostic
    assert len(report["images"]) == 5
    for image in report["images"]:
        assert image["data"] and image["complete"], image
        assert image["width"] > 100 and image["height"] > 100, image

    screenshot = tmp_path / "report.png"
    _chromium(
        "--window-size=1200,3000",
        f"--screenshot={screenshot}",
        page.as_uri(),
        profile=tmp_path / "profile",
    )
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a blank page compresses to a few kB


def test_warnings_name_what_went_wrong(study_folder):
    result = sbiplug.StudyResult.load(study_folder / "result", load_estimator=False)
    result.diagnostics["misspecification"] = DiagnosticResult(
        name="misspecification", statistic=0.9, p_value=0.001, passed=False, message="rejected"
    )
    result.diagnostics["no_such_check"] = DiagnosticResult(name="no_such_check", passed=True)
    result.diagnostics["sbc"].summary["acceptance_rate"] = 0.02
    result.provenance["num_invalid_simulations"] = 7
    lines = study_warnings(result)
    assert any("misspecification suspected: rejected" in line for line in lines)
    assert any("low acceptance" in line and "0.02" in line for line in lines)
    assert any(line.startswith("7 simulations returned NaN") for line in lines)
    page = render_html(result)
    assert 'class="warnings"' in page and "misspecification suspected" in page
    # a figure that cannot be drawn is reported on the page instead of breaking it
    assert "figure diagnostic no_such_check could not be drawn" in page


def test_rhat_above_the_limit_is_a_warning():
    import torch

    generator = torch.Generator().manual_seed(0)
    chains = torch.randn(1, 4, 50, 2, generator=generator)  # (observation, chain, draw, parameter)
    chains[:, 0] += 3.0  # one chain far from the others: the chains have not mixed
    result = sbiplug.StudyResult(
        simulator=None, estimator=None, samples=chains, observations=torch.zeros(1, 2)
    )
    lines = study_warnings(result)
    assert any("not converged: R-hat > 1.01 for 2 of 2 parameters" in line for line in lines), lines
    chains[:, 0] -= 3.0  # mixed again, and 4 x 50 independent draws: ESS near 200 < 400
    assert not any("R-hat" in line for line in study_warnings(result))
