"""Where sbiplug's messages go on the command line: the ``sbiplug`` logger, on stderr.

Progress bars (tqdm) and log records share stderr; stdout carries only a command's output, so
``sbiplug run > log`` captures the report and nothing else. Library code logs to the
``sbiplug`` logger and never prints; the CLI shows its warnings, and its info records (sbi's
convergence note, ...) with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["LOGGER_NAME", "cli_logging"]

LOGGER_NAME = "sbiplug"


@contextlib.contextmanager
def cli_logging(verbose: bool = False) -> Iterator[logging.Logger]:
    """Inside, ``sbiplug`` log records print to stderr as ``sbiplug: message``.

    Arguments:
        verbose: Show INFO records too (else WARNING and above).
    """
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sbiplug: %(message)s"))
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    level = logger.level
    logger.addHandler(handler)
    if verbose and logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
