"""Summary (embedding) networks by registered name, so estimators that use them can be saved.

A network built by :func:`make_embedding_net` remembers its spec, ``{"name": ..., "options":
...}`` (JSON only). Saving a trained estimator stores that spec beside the weights, and loading
rebuilds the network by name, then loads the weights: no pickles. The spec itself is accepted
wherever a module is, e.g. in a study file::

    [estimator]
    name = "npe"
    options = { embedding_net = { name = "fc", options = { input_dim = 10, output_dim = 4 } } }

Networks are contributed through the ``register_embedding_nets`` hook (built-ins: ``fc``,
``cnn``, ``permutation_invariant``). A module built any other way still trains, but cannot be
rebuilt from a file: it must be passed again when loading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sbiplug.plugins import get_plugin_manager
from sbiplug.registry import build
from sbiplug.specs import EmbeddingNetSpec

__all__ = [
    "EMBEDDING_OPTIONS",
    "SPEC_ATTRIBUTE",
    "UNSAVED_MODULE",
    "describe_embedding_net",
    "embedding_nets",
    "is_embedding_option",
    "make_embedding_net",
    "resolve_embedding_nets",
]

#: The attribute of a module built by :func:`make_embedding_net` that holds its spec.
SPEC_ATTRIBUTE = "sbiplug_embedding_net"
#: How provenance names a module built outside the registry: ``{UNSAVED_MODULE: class name}``.
UNSAVED_MODULE = "unsaved_module"


def embedding_nets() -> Mapping[str, EmbeddingNetSpec]:
    """Every registered embedding-net spec by name."""
    return get_plugin_manager().specs("embedding_nets")  # type: ignore[return-value]


def make_embedding_net(name: str, **options: Any) -> Any:
    """Build the embedding network registered as ``name``; it remembers ``(name, options)``.

    Arguments:
        name: A registered name (``sbiplug list embedding_nets``).
        options: JSON values (numbers, strings, lists, tables) for its factory.

    Returns:
        A ``torch.nn.Module`` mapping x ``(B, *x_shape)`` to summaries ``(B, output_dim)``.
    """
    import torch

    spec = get_plugin_manager().get("embedding_nets", name)
    try:
        json.dumps(options)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"embedding net {name!r}: options must be JSON values to be saved and rebuilt ({error})"
        ) from None
    module = build(spec, options)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"embedding net {name!r} (plugin {spec.plugin!r}) built a {type(module).__name__}; "
            "expected a torch.nn.Module"
        )
    # a plain attribute: not a parameter or buffer, so state_dict() is unchanged
    object.__setattr__(module, SPEC_ATTRIBUTE, {"name": name, "options": dict(options)})
    return module


def describe_embedding_net(module: Any) -> dict[str, Any] | None:
    """The ``{"name", "options"}`` spec of a module from :func:`make_embedding_net`, else
    ``None``."""
    spec = getattr(module, SPEC_ATTRIBUTE, None)
    return dict(spec) if isinstance(spec, dict) else None


#: Estimator options that hold an embedding net (sbi's names).
EMBEDDING_OPTIONS = ("embedding_net", "embedding_net_x", "embedding_net_theta")


def is_embedding_option(key: str) -> bool:
    """Whether an estimator option named ``key`` holds an embedding net."""
    return key in EMBEDDING_OPTIONS


def resolve_embedding_nets(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with each embedding-net spec (a table with a ``name`` and optional
    ``options``, or a bare name) replaced by the network it describes; modules pass through.
    """
    resolved = dict(options)
    for key, value in options.items():
        if not is_embedding_option(key) or value is None:
            continue
        if isinstance(value, str):
            value = {"name": value}
        if isinstance(value, Mapping):
            unknown = set(value) - {"name", "options"}
            if "name" not in value or unknown or not isinstance(value.get("options", {}), Mapping):
                raise ValueError(
                    f"option {key!r}: an embedding net is a module or a table "
                    f"{{name = ..., options = {{...}}}}, got {dict(value)!r}"
                )
            resolved[key] = make_embedding_net(value["name"], **dict(value.get("options", {})))
    return resolved
