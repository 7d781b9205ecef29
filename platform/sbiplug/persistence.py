"""Save and restore trained sbi trainers without pickles.

A trainer is stored as its network's ``state_dict`` plus a few example rows of ``(theta, x)``
(``estimator.pt``, read back with ``torch.load(weights_only=True)``) and a JSON config naming the
estimator and its options (``estimator.json``). Restoring builds the trainer by name, rebuilds the
network with the trainer's own builder on the example rows and loads the weights: it works for
any sbi-style trainer (network access goes through :mod:`sbiplug.sbi_internals`).

An embedding net from :func:`sbiplug.make_embedding_net` is stored as its registered name and
options and rebuilt by name; any other module is an error at save time, unless it is left out
with ``skip_options`` and passed again when loading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.distributions import Distribution

from sbiplug.embedding_nets import (
    describe_embedding_net,
    is_embedding_option,
    resolve_embedding_nets,
)
from sbiplug.sbi_internals import build_network, install_network, trained_network
from sbiplug.toolkit.atomic import atomic_write, atomic_write_text
from sbiplug.toolkit.pretraining import skip_pretraining

__all__ = ["ESTIMATOR_CONFIG", "ESTIMATOR_WEIGHTS", "load_trainer", "save_trainer"]

ESTIMATOR_WEIGHTS = "estimator.pt"
ESTIMATOR_CONFIG = "estimator.json"
_EXAMPLE_ROWS = 64


def _json_options(estimator: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON: embedding nets from the registry by their spec; anything else that is
    not JSON (a custom module, a callable) is an error naming the option."""
    encoded = {}
    for key, value in options.items():
        spec = describe_embedding_net(value)
        if spec is not None:
            encoded[key] = spec
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError(_unsaved_message(estimator, key, value)) from None
        encoded[key] = value
    return encoded


def _unsaved_message(estimator: str, key: str, value: Any) -> str:
    from sbiplug.embedding_nets import embedding_nets

    what = type(value).__name__
    hint = f"pass skip_options=({key!r},) and give it again to load_trainer(..., {key}=...)"
    if is_embedding_option(key):
        names = ", ".join(sorted(embedding_nets())) or "none"
        hint = (
            f"build it with sbiplug.make_embedding_net(name, **options) (registered: {names}), "
            f"or {hint}"
        )
    return (
        f"estimator {estimator!r}: option {key!r} is a {what}, which cannot be rebuilt from a "
        f"file; {hint}"
    )


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
        skip_options: Option names left out of the config (e.g. a custom ``embedding_net``
            module that the caller passes again when loading, which then requires them).

    Raises:
        TypeError: an option is neither JSON nor a registered embedding net, naming it.
    """
    net = trained_network(trainer)
    if net is None:
        raise ValueError(f"estimator {estimator!r}: the trainer has no trained network to save")
    options = {k: v for k, v in (options or {}).items() if k not in skip_options}
    config = {
        "estimator": estimator,
        "options": _json_options(estimator, options),
        "options_to_pass": sorted(skip_options),
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
    missing = [key for key in config.get("options_to_pass", ()) if key not in extra_options]
    if missing:
        given = ", ".join(f"{key}=..." for key in missing)
        raise ValueError(
            f"the saved estimator {config['estimator']!r} was trained with options that cannot "
            f"be stored ({', '.join(missing)}: e.g. a custom embedding net); pass them again, "
            f"built as for training: load_trainer(folder, prior, {given}) or "
            f"StudyResult.load(folder, estimator_options={{...}})"
        )
    payload = torch.load(weights_path, weights_only=True, map_location="cpu")
    options = resolve_embedding_nets(config["options"])
    trainer = make_estimator(config["estimator"], prior, **{**options, **extra_options})
    with skip_pretraining():  # the saved weights replace whatever pretraining would learn
        net = build_network(trainer, payload["theta_example"], payload["x_example"])
    net.load_state_dict(payload["state_dict"])
    net.eval()
    install_network(trainer, net, payload["x_example"].shape[1:])
    return trainer
