"""The ledger of a simulation folder: what determines its simulations, and a checksum per chunk.

A folder's ``manifest.json`` records everything that fixes its simulations: the simulator (its
name, class and options, and the distribution and version of the plugin that provides it), a
fingerprint of its prior, the seed, the chunk layout and the budget. A later run continues the
folder only when every one of them matches (:func:`manifest_differences` names those that do
not). Each finished chunk file has a sidecar ``<chunk>.sha256`` written after it (a chunk
without one is unfinished); a chunk whose file does not hash to its sidecar is corrupt and is
simulated again, with a :class:`CorruptChunkWarning` that counts them. :class:`ChunkStore` is
the folder; both of its writes are atomic.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution
from torch.distributions.utils import lazy_property

from sbiplug.jsonable import jsonable
from sbiplug.simulator import Simulator
from sbiplug.toolkit.atomic import atomic_write, atomic_write_text
from sbiplug.toolkit.rng import seeded

__all__ = [
    "CHECKSUM_SUFFIX",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "ChunkStore",
    "CorruptChunkError",
    "CorruptChunkWarning",
    "SimulationFolderError",
    "checksum_path",
    "file_sha256",
    "load_finished_chunks",
    "manifest_differences",
    "prior_fingerprint",
    "read_checksum",
    "simulator_identity",
    "write_checksum",
]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 2
CHECKSUM_SUFFIX = ".sha256"
FINGERPRINT_SEED = 20_240_601
FINGERPRINT_DRAWS = 64


class SimulationFolderError(ValueError):
    """A simulation folder holds chunks of a study with different settings."""


class CorruptChunkError(ValueError):
    """A chunk file does not match its checksum (raised by :meth:`ChunkStore.load`)."""


class CorruptChunkWarning(UserWarning):
    """Finished chunks whose file did not match its checksum were simulated again."""


def _tensors(obj: Any, prefix: str, depth: int = 0) -> Iterator[tuple[str, Tensor]]:
    """The tensors that parametrise a distribution, its base distributions' included.

    Attributes that torch computes lazily (``scale_tril``, ``covariance_matrix``, ...) are left
    out: whether they are cached depends on what was asked of the prior before.
    """
    if depth > 4:
        return
    for key, value in sorted(vars(obj).items()):
        if isinstance(getattr(type(obj), key, None), lazy_property):
            continue
        name = f"{prefix}.{key}"
        if isinstance(value, Tensor):
            yield name, value
        elif isinstance(value, Distribution):
            yield from _tensors(value, name, depth + 1)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Tensor):
                    yield f"{name}[{index}]", item
                elif isinstance(item, Distribution):
                    yield from _tensors(item, f"{name}[{index}]", depth + 1)


def _update(digest: Any, tensor: Tensor) -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.numpy().tobytes())


def prior_fingerprint(prior: Distribution) -> str:
    """A sha256 over the prior's class, its parameter tensors and a fixed-seed sample.

    The sample and its ``log_prob`` catch priors whose parameters live outside torch's
    attributes (closures, custom classes); the global RNGs are left as they were.

    Returns:
        64 hex digits.
    """
    digest = hashlib.sha256()
    kind = type(prior)
    digest.update(f"{kind.__module__}.{kind.__qualname__}".encode())
    digest.update(repr((tuple(prior.batch_shape), tuple(prior.event_shape))).encode())
    for name, tensor in _tensors(prior, "prior"):
        digest.update(name.encode())
        _update(digest, tensor)
    with seeded(FINGERPRINT_SEED), torch.no_grad():
        draws = prior.sample((FINGERPRINT_DRAWS,))
        _update(digest, draws)
        try:
            _update(digest, prior.log_prob(draws))
        except (NotImplementedError, ValueError, RuntimeError):
            digest.update(b"no log_prob")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _packages() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distribution_of(module: str) -> tuple[str, str]:
    for distribution in _packages().get(module.partition(".")[0], []):
        try:
            return distribution, importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "", ""


def _plugin_of(name: str) -> tuple[str, str]:
    """Distribution and version of the plugin that provides the simulator ``name``."""
    from sbiplug.plugins import get_plugin_manager

    manager = get_plugin_manager()
    plugin = manager.get("simulators", name).plugin
    for info in manager.plugins():
        if info.name == plugin:
            return info.distribution or info.name, info.version
    return plugin, ""


def simulator_identity(
    simulator: Simulator, name: str | None = None, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest fields that identify a simulator.

    Arguments:
        simulator: The simulator.
        name: Its registered name, when it was made by name (``None``: an object of the user's).
        options: The options it was made with.

    Returns:
        ``simulator``, ``simulator_options``, ``plugin_distribution``, ``plugin_version`` and
        ``prior`` (the fingerprint). For an object of the user's, the distribution is the one
        that installs its class's module (empty when none does).
    """
    if name is not None:
        distribution, version = _plugin_of(name)
    else:
        distribution, version = _distribution_of(type(simulator).__module__)
    return {
        "simulator": name or simulator.name,
        "simulator_options": jsonable(dict(options or {}), sort_keys=True),
        "plugin_distribution": distribution,
        "plugin_version": version,
        "prior": prior_fingerprint(simulator.prior),
    }


def _show(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]  # a fingerprint: its head is enough to tell two apart
    return json.dumps(value, sort_keys=True)


def manifest_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"field: old -> new"`` for every field of ``current`` that ``stored`` records otherwise.

    Options are compared key by key (``simulator_options.sigma: 1.0 -> 5.0``); a field or key
    that one side lacks shows as ``(unset)``.
    """
    missing = object()
    differences = []
    for key, new in current.items():
        old = stored.get(key, missing)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for option in sorted(set(old) | set(new)):
                before, after = old.get(option, missing), new.get(option, missing)
                if before != after:
                    differences.append(
                        f"{key}.{option}: "
                        + " -> ".join(
                            "(unset)" if v is missing else _show(v) for v in (before, after)
                        )
                    )
            continue
        differences.append(
            f"{key}: " + " -> ".join("(unset)" if v is missing else _show(v) for v in (old, new))
        )
    return differences


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """Where the checksum of ``path`` is kept: ``<path>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def write_checksum(path: str | os.PathLike[str], digest: str | None = None) -> str:
    """Write the sidecar of ``path`` atomically (hashing the file unless ``digest`` is given)."""
    digest = digest or file_sha256(path)
    atomic_write_text(checksum_path(path), digest + "\n")
    return digest


def read_checksum(path: str | os.PathLike[str]) -> str | None:
    """The recorded sha256 of ``path``, or ``None`` when it has no sidecar."""
    try:
        return checksum_path(path).read_text().strip()
    except FileNotFoundError:
        return None


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The stored manifest; ``None`` when it is absent or unreadable."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return stored if isinstance(stored, dict) else None


class ChunkStore:
    """Finished chunks in a folder: ``chunk_<index>.npz`` files, their ``.sha256`` sidecars
    and ``manifest.json``.

    A folder whose manifest differs from ``manifest`` is refused while it holds chunks; one
    without chunks simply takes the new manifest (nothing can be mixed).
    """

    def __init__(self, folder: str | os.PathLike[str], manifest: dict[str, Any]) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise SimulationFolderError(
                f"simulation folder {str(self.folder)!r} is a file; expected a folder"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / MANIFEST
        stored = _read_manifest(path)
        if stored == manifest:
            return
        if self.finished():  # else nothing can be mixed: the folder takes the new manifest
            where = f"simulation folder {str(self.folder)!r}"
            if stored is None:
                raise SimulationFolderError(
                    f"{where} holds chunks but no readable {MANIFEST}, so nothing tells what "
                    "they were simulated with; use another folder"
                )
            if stored.get("format") != manifest.get("format"):
                raise SimulationFolderError(
                    f"{where} was written by another sbiplug (manifest format "
                    f"{stored.get('format')!r}, this one writes {manifest.get('format')!r}) and "
                    "cannot be verified; use another folder"
                )
            differences = manifest_differences(stored, manifest)
            if differences:
                raise SimulationFolderError(
                    f"{where} holds chunks simulated with other settings "
                    f"({'; '.join(differences)}); resume with the same settings or use another "
                    "folder"
                )
        atomic_write_text(path, json.dumps(manifest, indent=2))

    def path(self, index: int) -> Path:
        return self.folder / f"chunk_{index:06d}.npz"

    def finished(self) -> set[int]:
        """Indices of the chunk files present (verified only by :meth:`load`)."""
        indices = set()
        for path in self.folder.glob("chunk_*.npz"):
            number = path.stem.partition("_")[2]
            if number.isdigit() and path.is_file():
                indices.add(int(number))
        return indices

    def save(self, index: int, theta: np.ndarray, x: np.ndarray) -> None:
        """Write chunk ``index`` atomically, then its checksum: a chunk without one is
        unfinished, whenever the process dies."""
        buffer = io.BytesIO()
        np.savez(buffer, theta=theta, x=x)
        content = buffer.getvalue()
        path = atomic_write(self.path(index), lambda temporary: temporary.write_bytes(content))
        write_checksum(path, hashlib.sha256(content).hexdigest())

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Chunk ``index`` as ``(theta, x)``; ``None`` when it has no checksum (unfinished).

        Raises:
            CorruptChunkError: its file does not match its checksum or cannot be read.
        """
        path = self.path(index)
        recorded = read_checksum(path)
        if recorded is None:
            return None
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(content).hexdigest() != recorded:
            raise CorruptChunkError(f"{path.name} does not match its checksum")
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as data:
                return data["theta"], data["x"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise CorruptChunkError(f"{path.name} cannot be read: {error}") from None


def load_finished_chunks(
    store: ChunkStore, thetas: list[np.ndarray], simulator_name: str
) -> dict[int, np.ndarray]:
    """The verified finished chunks by index; corrupt ones are left out with a warning."""
    xs: dict[int, np.ndarray] = {}
    corrupt = []
    for index in sorted(store.finished() & set(range(len(thetas)))):
        try:
            loaded = store.load(index)
        except CorruptChunkError:
            corrupt.append(index)
            continue
        if loaded is None:
            continue
        stored_theta, stored_x = loaded
        if not np.array_equal(stored_theta, thetas[index]):
            raise SimulationFolderError(
                f"chunk {index} in {str(store.folder)!r} was drawn from a different prior; "
                "use another folder"
            )
        xs[index] = stored_x
    if corrupt:
        warnings.warn(
            f"{len(corrupt)} of {len(thetas)} simulation chunks of {simulator_name!r} in "
            f"{str(store.folder)!r} did not match their checksum and are simulated again "
            f"(chunks {', '.join(map(str, corrupt))})",
            CorruptChunkWarning,
            stacklevel=4,
        )
    return xs
