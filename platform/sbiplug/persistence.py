"""Save and restore trained sbi trainers without pickles.

A trainer is stored as its network's ``state_dict`` plus a few example rows of ``(theta, x)``
(``estimator.pt``, read back with ``torch.load(weights_only=True)``) and a JSON config naming the
estimator and its options (``estimator.json``). Restoring builds the trainer by name, rebuilds the
network with the trainer's own builder on the example rows and loads the weights: it works for
any sbi-style trainer (network access goes through :mod:`sbiplug.sbi_internals`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.distributions import Distribution

from sbiplug.sbi_internals import build_network, install_network, trained_network
from sbiplug.toolkit.atomic import atomic_write, atomic_write_text

__all__ = ["ESTIMATOR_CONFIG", "ESTIMATOR_WEIGHTS", "load_trainer", "save_trainer"]

ESTIMATOR_WEIGHTS = "estimator.pt"
ESTIMATOR_CONFIG = "estimator.json"
_EXAMPLE_ROWS = 64


def _json_options(estimator: str, options: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(options)
    except TypeError as error:
        raise TypeError(
            f"estimator {estimator!r}: options must be JSON-serialisable to be saved ({error}); "
            "pass non-serialisable options (modules, callables) again to load_trainer(...)"
        ) from None
    return dict(options)


def save_trainer(
    trainer: Any,
    folder: str | os.PathLike[str],
    *,
    estimator: str,
    options: dict[str, Any] | None = None,
    skip_options: tuple[str, ...] = (),
) -> None:
    """Write ``trainer``'s network and config into ``folder`` (created if needed).

    Arguments:
        trainer: A trained sbi-style trainer.
        folder: Destination folder.
        estimator: The registered estimator name that built the trainer.
        options: The options it was built with (JSON-serialisable).
        skip_options: Option names left out of the config (e.g. an ``embedding_net`` module that
            the caller passes again when loading).
    """
    net = trained_network(trainer)
    if net is None:
        raise ValueError(f"estimator {estimator!r}: the trainer has no trained network to save")
    options = {k: v for k, v in (options or {}).items() if k not in skip_options}
    config = {
        "estimator": estimator,
        "options": _json_options(estimator, options),
        "trainer_class": f"{type(trainer).__module__}.{type(trainer).__qualname__}",
        "network_class": f"{type(net).__module__}.{type(net).__qualname__}",
    }
    theta, x = _example_rows(trainer)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "theta_example": theta,
        "x_example": x,
    }
    atomic_write(folder / ESTIMATOR_WEIGHTS, lambda path: torch.save(payload, path))
    atomic_write_text(folder / ESTIMATOR_CONFIG, json.dumps(config, indent=2))


def _example_rows(trainer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        theta, x, _ = trainer.get_simulations()
    except Exception as error:
        raise ValueError(
            "cannot save a trainer without its simulations (append_simulations was not called)"
        ) from error
    return theta[:_EXAMPLE_ROWS].detach().cpu(), x[:_EXAMPLE_ROWS].detach().cpu()


def load_trainer(folder: str | os.PathLike[str], prior: Distribution, **extra_options: Any) -> Any:
    """Rebuild a trainer saved by :func:`save_trainer`.

    Arguments:
        folder: The folder ``save_trainer`` wrote.
        prior: The prior to build the trainer with.
        extra_options: Options left out of the saved config (e.g. an ``embedding_net``).

    Returns:
        The trainer with its trained network in place: ``build_posterior()`` works at once.
    """
    from sbiplug.registry import make_estimator

    folder = Path(folder)
    config_path, weights_path = folder / ESTIMATOR_CONFIG, folder / ESTIMATOR_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"no saved estimator in {folder}: {path.name} is missing")
    config = json.loads(config_path.read_text())
    payload = torch.load(weights_path, weights_only=True, map_location="cpu")
    trainer = make_estimator(config["estimator"], prior, **{**config["options"], **extra_options})
    net = build_network(trainer, payload["theta_example"], payload["x_example"])
    net.load_state_dict(payload["state_dict"])
    net.eval()
    install_network(trainer, net, payload["x_example"].shape[1:])
    return trainer
