"""Conformance kit and pytest plugin for sbiplug plugin authors.

Installed as the ``sbiplug`` pytest plugin (``pytest11`` entry point), it offers two fixtures
(and :func:`isolated_plugin_manager`, the same isolation as a context manager):

- ``plugin_manager``: a fresh :class:`~sbiplug.plugins.PluginManager` (built-ins only) that
  ``sbiplug.make_*`` use for the duration of one test; the previous manager comes back after.
- ``register_plugin``: registers a throw-away plugin (a module, class or object with hook
  implementations) into that manager and returns its :class:`~sbiplug.plugins.PluginInfo`.

and three conformance checks that any plugin's contributions should pass, each in seconds:

- :func:`check_simulator` — shapes, prior, seeds, batching, validation, reference posterior.
- :func:`check_estimator` — trains on a tiny problem through ``make_estimator`` and checks
  sampling, seeds, ``log_prob``, sbi's ``run_sbc`` and save/load.
- :func:`check_diagnostic` — result type, finite scalars, netCDF round trip, plotting.

:class:`sbiplug.testing.pretraining.PretrainRecorder` is a summary net that records what an
estimator handed to its ``pretrain(x)``.

A failed check raises ``AssertionError`` naming the contribution and what went wrong; a passed
one returns what it measured. Importing this module is cheap (no torch): pytest loads it in
every session of a project that has sbiplug installed.
"""

from __future__ import annotations

from sbiplug.testing._support import DEFAULT_TRAIN_OPTIONS
from sbiplug.testing.diagnostics import check_diagnostic
from sbiplug.testing.estimators import check_estimator
from sbiplug.testing.fixtures import isolated_plugin_manager, plugin_manager, register_plugin
from sbiplug.testing.simulators import check_simulator

__all__ = [
    "DEFAULT_TRAIN_OPTIONS",
    "check_diagnostic",
    "check_estimator",
    "check_simulator",
    "isolated_plugin_manager",
    "plugin_manager",
    "register_plugin",
]
