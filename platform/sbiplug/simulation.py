"""Batched, parallel, resumable simulation of a training set.

The budget is cut into chunks of ``chunk_size`` rows. Chunk ``i`` draws its parameters from the
prior and its data from the simulator with seeds spawned from the study seed by NumPy's
:class:`~numpy.random.SeedSequence`, so each chunk is fixed by ``(seed, chunk_size, i)`` alone:
running the chunks in a loop, in joblib processes or on a dask.distributed cluster gives the
same simulations bit for bit. With a folder, each chunk is written atomically (temporary file,
then :func:`os.replace`) as it finishes, with a sha256 sidecar, next to a manifest of what
determines the simulations (see :mod:`sbiplug.ledger`); a later run whose manifest matches loads
the verified chunks and simulates only the missing or corrupt ones, so a killed run loses nothing
and duplicates nothing. Rows whose data hold NaN or inf are dropped with a warning that counts
them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from sbiplug.ledger import (
    MANIFEST_FORMAT,
    ChunkStore,
    CorruptChunkWarning,
    SimulationFolderError,
    load_finished_chunks,
    simulator_identity,
)
from sbiplug.simulator import Simulator, SimulatorOutputError
from sbiplug.study_inputs import valid_rows
from sbiplug.toolkit.names import default_parameter_names
from sbiplug.toolkit.rng import seeded

__all__ = [
    "EXECUTORS",
    "CorruptChunkWarning",
    "FunctionSimulator",
    "InvalidSimulationWarning",
    "SimulationFolderError",
    "SimulationOptions",
    "Simulations",
    "simulate_training_set",
]

EXECUTORS = ("local", "joblib", "dask")


class InvalidSimulationWarning(UserWarning):
    """Some simulations returned NaN or inf and were excluded from training."""


@dataclass
class SimulationOptions:
    """How a study runs its simulations.

    Arguments:
        chunk_size: Rows per chunk: the unit of seeding, parallel work and checkpointing.
        executor: ``"local"`` (a loop in this process), ``"joblib"`` (local processes) or
            ``"dask"`` (a dask.distributed cluster).
        num_workers: Processes for joblib; workers of the temporary ``LocalCluster`` that
            ``executor="dask"`` starts when no ``client`` is given.
        client: A ``distributed.Client`` or a scheduler address such as ``"tcp://host:8786"``.
        folder: Where chunks are written as they finish; ``None`` keeps them in memory.
        show_progress_bars: Whether to show a progress bar over chunks.
    """

    chunk_size: int = 1000
    executor: Literal["local", "joblib", "dask"] = "local"
    num_workers: int = 1
    client: Any = None
    folder: str | os.PathLike[str] | None = None
    show_progress_bars: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int):
            raise TypeError(f"chunk_size must be a positive int, got {self.chunk_size!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {self.chunk_size}")
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"executor must be one of {', '.join(map(repr, EXECUTORS))}, got {self.executor!r}"
            )
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int):
            raise TypeError(f"num_workers must be a positive int, got {self.num_workers!r}")
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be a positive int, got {self.num_workers}")
        if self.client is not None and self.executor != "dask":
            raise ValueError(f"client= needs executor='dask', got executor={self.executor!r}")

    def describe(self) -> dict[str, Any]:
        """JSON-friendly settings for provenance (the client is named, not serialised)."""
        client = self.client
        return {
            "chunk_size": self.chunk_size,
            "executor": self.executor,
            "num_workers": self.num_workers,
            "client": client if isinstance(client, str) or client is None else repr(client),
            "folder": None if self.folder is None else str(self.folder),
            "show_progress_bars": self.show_progress_bars,
        }


@dataclass
class Simulations:
    """A training set.

    Arguments:
        theta: Parameters of the valid rows, shape ``(n_valid, num_parameters)``.
        x: Data of the valid rows, shape ``(n_valid, *observation_shape)``.
        num_invalid: Rows dropped because their data held NaN or inf.
        num_resumed: Rows loaded from finished chunks instead of simulated.
    """

    theta: Tensor
    x: Tensor
    num_invalid: int = 0
    num_resumed: int = 0
    chunk_sizes: list[int] = field(default_factory=list)


class FunctionSimulator(Simulator):
    """Adapts a prior and a plain ``simulator(theta) -> x`` callable to :class:`Simulator`.

    The callable draws from torch's (or NumPy's) global RNG, seeded from the simulation seed
    inside the call and restored afterwards, so results are reproducible for a fixed chunk size
    (the callable need not be batch-invariant).
    """

    def __init__(
        self,
        prior: Distribution,
        function: Callable[[Tensor], Tensor],
        *,
        name: str = "custom",
        parameter_names: Sequence[str] | None = None,
    ) -> None:
        self._prior = prior
        self.function = function
        self.name = name
        num_parameters = int(prior.event_shape[0]) if prior.event_shape else 1
        self.parameter_names = tuple(parameter_names or default_parameter_names(num_parameters))
        probe = function(prior.sample((2,)))
        if not isinstance(probe, Tensor) or probe.ndim < 1 or probe.shape[0] != 2:
            raise SimulatorOutputError(
                f"simulator {name!r}: a 2-row dry run returned "
                f"{getattr(probe, 'shape', type(probe).__name__)}; expected a tensor of shape "
                "(2, *observation_shape)"
            )
        self.observation_shape = tuple(probe.shape[1:])

    @property
    def prior(self) -> Distribution:
        return self._prior

    def _simulate(self, theta: Tensor, rng: np.random.Generator) -> Tensor:
        with seeded(int(rng.integers(2**62))):
            return self.function(theta)


def chunk_plan(num_simulations: int, chunk_size: int) -> list[int]:
    """Row counts of the chunks: full chunks, then the remainder."""
    full, rest = divmod(num_simulations, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def chunk_seeds(seed: int, num_chunks: int) -> list[tuple[int, int]]:
    """``(prior_seed, simulator_seed)`` for each chunk, spawned from ``seed``."""
    seeds = []
    for child in np.random.SeedSequence(seed).spawn(num_chunks):
        prior_seed, simulator_seed = child.generate_state(2, dtype=np.uint64)
        seeds.append((int(prior_seed % 2**63), int(simulator_seed % 2**63)))
    return seeds


def simulate_chunk(simulator: Simulator, theta: np.ndarray, seed: int) -> np.ndarray:
    """Run one chunk; a top-level function so processes and dask workers can import it.

    Thread counts are left alone: dask's nannies and joblib's loky already start workers with
    one BLAS/OpenMP thread per worker.
    """
    x = simulator.simulate(torch.as_tensor(theta), seed=seed)
    return x.detach().cpu().numpy()


def _run_local(simulator, tasks) -> Iterator[tuple[int, np.ndarray]]:
    for index, theta, seed in tasks:
        yield index, simulate_chunk(simulator, theta, seed)


def _indexed_chunk(simulator: Simulator, index: int, theta: np.ndarray, seed: int):
    return index, simulate_chunk(simulator, theta, seed)


def _run_joblib(simulator, tasks, num_workers) -> Iterator[tuple[int, np.ndarray]]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=num_workers, return_as="generator_unordered")
    yield from parallel(
        delayed(_indexed_chunk)(simulator, index, theta, seed) for index, theta, seed in tasks
    )


def _run_dask(simulator, tasks, options: SimulationOptions) -> Iterator[tuple[int, np.ndarray]]:
    from distributed import Client, LocalCluster, as_completed

    own_client = None
    client = options.client
    if client is None:
        cluster = LocalCluster(
            n_workers=options.num_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        own_client = client = Client(cluster)
    elif isinstance(client, str):
        own_client = client = Client(client)
    try:
        # The simulator travels with each task rather than scattered once: scattered data dies
        # with its worker, while a task whose worker dies is simply run again elsewhere.
        futures = [
            client.submit(_indexed_chunk, simulator, index, theta, seed, pure=False)
            for index, theta, seed in tasks
        ]
        # One gather at a time, in this thread: as_completed(with_results=True) gathers many
        # futures concurrently over one connection, which trips tornado under heavy load.
        for future in as_completed(futures):
            yield future.result()
            future.release()
    finally:
        if own_client is not None:
            cluster = own_client.cluster
            own_client.close()
            if options.client is None and cluster is not None:
                cluster.close()


def simulate_training_set(
    simulator: Simulator,
    num_simulations: int,
    *,
    seed: int,
    options: SimulationOptions | None = None,
    identity: Mapping[str, Any] | None = None,
) -> Simulations:
    """Draw ``num_simulations`` parameters from the prior and simulate them, chunk by chunk.

    Arguments:
        simulator: The simulator; it must be picklable for the joblib and dask executors.
        num_simulations: Rows to simulate, NaN/inf rows included.
        seed: The seed every chunk's seeds are spawned from.
        options: Chunking, executor and checkpoint folder.
        identity: The simulator's manifest fields (:func:`sbiplug.ledger.simulator_identity`,
            which a :class:`~sbiplug.Study` fills with the registered name and options);
            computed from ``simulator`` alone when absent. Used only with a folder.

    Returns:
        The valid rows; ``num_invalid`` counts those dropped for NaN or inf.
    """
    options = options or SimulationOptions()
    sizes = chunk_plan(num_simulations, options.chunk_size)
    seeds = chunk_seeds(seed, len(sizes))
    store = None
    if options.folder is not None:
        store = ChunkStore(
            options.folder,
            {
                "format": MANIFEST_FORMAT,
                **(identity if identity is not None else simulator_identity(simulator)),
                "num_parameters": simulator.num_parameters,
                "observation_shape": list(simulator.observation_shape),
                "seed": seed,
                "num_simulations": num_simulations,
                "chunk_size": options.chunk_size,
                "num_chunks": len(sizes),
            },
        )
    thetas = [
        simulator.sample_prior(size, seed=prior_seed).numpy().astype(np.float32)
        for size, (prior_seed, _) in zip(sizes, seeds, strict=True)
    ]
    xs = {} if store is None else load_finished_chunks(store, thetas, simulator.name)
    num_resumed = sum(sizes[i] for i in xs)
    tasks = [(i, thetas[i], seeds[i][1]) for i in range(len(sizes)) if i not in xs]
    if tasks:
        if options.executor == "local":
            results = _run_local(simulator, tasks)
        elif options.executor == "joblib":
            results = _run_joblib(simulator, tasks, options.num_workers)
        else:
            results = _run_dask(simulator, tasks, options)
        from tqdm.auto import tqdm

        with tqdm(
            total=num_simulations,
            initial=num_resumed,
            desc=f"Simulating {simulator.name}",
            unit="sim",
            disable=not options.show_progress_bars,
        ) as bar:
            for index, x in results:
                if store is not None:
                    store.save(index, thetas[index], x)
                xs[index] = x
                bar.update(sizes[index])
    theta = torch.from_numpy(np.concatenate(thetas)) if thetas else torch.zeros(0)
    x = torch.from_numpy(np.concatenate([xs[i] for i in range(len(sizes))]).astype(np.float32))
    valid = valid_rows(simulator, x)  # a set simulator pads with NaN: it says what is valid
    num_invalid = int((~valid).sum())
    if num_invalid:
        warnings.warn(
            f"{num_invalid} of {num_simulations} simulations of {simulator.name!r} returned "
            "NaN or inf and were excluded from training",
            InvalidSimulationWarning,
            stacklevel=2,
        )
        theta, x = theta[valid], x[valid]
    return Simulations(
        theta=theta, x=x, num_invalid=num_invalid, num_resumed=num_resumed, chunk_sizes=sizes
    )
