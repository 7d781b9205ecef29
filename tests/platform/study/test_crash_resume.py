"""Crash test: a real ``sbiplug run`` killed with SIGKILL over and over, resumed each time, ends
with the simulations and posterior draws of an uninterrupted run, bit for bit.

The simulator is ``noisy_toy`` (``ledger_toys``), slowed to ~10 ms per chunk and installed for
the subprocesses as a fake distribution. Kill moments come from a fixed-seed generator, of three
kinds: a time drawn over the uninterrupted run's duration; right after a new file shows up in
the simulation folder (a chunk or its checksum being written); and just after the result's
temporary folder appears (the result save). After every kill, each chunk that has a checksum
must match it: atomic writes leave no half chunk behind a checksum.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from sbiplug.ledger import file_sha256, read_checksum

HERE = Path(__file__).parent
KILLS = 20
STUDY = """
seed = 3
num_simulations = 240
num_posterior_samples = 50
num_predictive_draws = 0
show_progress_bars = false

[simulator]
name = "noisy_toy"
options = { seconds_per_row = 0.0005 }

[estimator]
name = "npe"
options = { hidden_features = 8, num_transforms = 1 }
train = { max_num_epochs = 3 }

[observations]
true_parameters = [[0.1, -0.2]]

[simulation]
chunk_size = 20
"""


def _install_toy(site: Path) -> None:
    info = site / "ledger_toy_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ledger-toy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[sbiplug]\nledger_toy = ledger_toys\n")
    shutil.copy(HERE / "ledger_toys.py", site / "ledger_toys.py")


def _start(study: Path, out: Path, env: dict[str, str], *flags: str) -> subprocess.Popen:
    """Start ``sbiplug run``; its stderr goes to ``<out>.stderr`` (a pipe could fill and block)."""
    command = [sys.executable, "-m", "sbiplug", "run", str(study), "--out", str(out), "--quiet"]
    with open(f"{out}.stderr", "w") as stderr:
        return subprocess.Popen(
            [*command, *flags],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _stderr(out: Path) -> str:
    return Path(f"{out}.stderr").read_text()


def _entries(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except FileNotFoundError:
        return set()


def _wait_for(process: subprocess.Popen, event) -> bool:
    """Poll until ``event()`` holds (True) or the process ends (False)."""
    while process.poll() is None:
        if event():
            return True
        time.sleep(0.002)
    return False


def _kill(process: subprocess.Popen, kind: str, delay: float, out: Path) -> bool:
    """Kill ``process`` at the moment ``kind``/``delay`` names; False if it finished first."""
    simulations = out / "simulations"
    before_chunks, before_out = _entries(simulations), _entries(out)

    def new_chunk_file() -> bool:
        return bool(_entries(simulations) - before_chunks)

    def result_saving() -> bool:
        return any(n.startswith(".result.tmp-") for n in _entries(out) - before_out)

    start = time.perf_counter()
    if kind == "time":
        reached = _wait_for(process, lambda: time.perf_counter() - start >= delay)
    elif kind == "chunk":  # once every chunk is done, the next file event is the result save
        reached = _wait_for(process, lambda: new_chunk_file() or result_saving())
    else:
        reached = _wait_for(process, result_saving)
    if reached and kind != "time":
        time.sleep(delay)
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


def _checksummed_chunks_are_whole(simulations: Path) -> None:
    for path in simulations.glob("chunk_*.npz"):
        recorded = read_checksum(path)
        assert recorded is None or recorded == file_sha256(path), f"{path.name} is torn"


def _simulations(out: Path) -> tuple[np.ndarray, np.ndarray]:
    chunks = sorted((out / "simulations").glob("chunk_*.npz"))
    assert len(chunks) == 12
    loaded = [np.load(path) for path in chunks]
    return np.concatenate([c["theta"] for c in loaded]), np.concatenate([c["x"] for c in loaded])


def _posterior(out: Path) -> dict[str, np.ndarray]:
    with xr.open_datatree(out / "result" / "result.nc") as tree:
        posterior = tree["posterior"].to_dataset()
        return {name: posterior[name].values for name in posterior.data_vars}


def test_sigkilled_runs_resume_to_the_uninterrupted_result(tmp_path):
    site = tmp_path / "site"
    _install_toy(site)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "SBIPLUG_LOAD_PLUGINS": "ledger_toy",
    }
    study = tmp_path / "study.toml"
    study.write_text(STUDY)

    reference = tmp_path / "reference"
    start = time.perf_counter()
    process = _start(study, reference, env)
    assert process.wait() == 0, _stderr(reference)
    duration = time.perf_counter() - start

    rng = np.random.default_rng(22)
    kinds = list(rng.permutation(["chunk"] * 10 + ["time"] * 6 + ["save"] * 4))
    out = tmp_path / "out"
    kills: dict[str, int] = {"chunk": 0, "time": 0, "save": 0}
    for attempt in range(2 * KILLS):
        if sum(kills.values()) >= KILLS:
            break
        kind = kinds[attempt % len(kinds)]
        delay = rng.uniform(0, duration) if kind == "time" else rng.uniform(0, 0.004)
        process = _start(study, out, env, "--resume")
        if _kill(process, kind, delay, out):
            kills[kind] += 1
        else:
            assert process.returncode == 0, _stderr(out)
        _checksummed_chunks_are_whole(out / "simulations")
    assert sum(kills.values()) >= KILLS and kills["chunk"] >= 5 and kills["save"] >= 3, kills
    print(f"{kills} SIGKILLs in {attempt} runs of {duration:.1f}s uninterrupted")

    process = _start(study, out, env, "--resume")
    assert process.wait() == 0, _stderr(out)
    theta, x = _simulations(out)
    reference_theta, reference_x = _simulations(reference)
    assert np.array_equal(theta, reference_theta) and np.array_equal(x, reference_x)
    draws, reference_draws = _posterior(out), _posterior(reference)
    assert draws.keys() == reference_draws.keys() == {"mu_1", "mu_2"}
    for name, values in draws.items():
        assert values.tobytes() == reference_draws[name].tobytes(), name
