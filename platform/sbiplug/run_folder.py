"""The output folder of ``sbiplug run``: finished work is continued or moved aside, never deleted.

A folder holding finished work (simulation chunks or a result) is continued only with
``--resume`` (the simulation ledger then checks that the settings match, see
:mod:`sbiplug.ledger`); ``--overwrite`` renames it to ``<folder>.old-<UTC timestamp>`` first.
Without either flag such a run is refused before any work starts.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from sbiplug.errors import UserError

__all__ = ["check_run_folder", "finished_work", "move_aside"]


def finished_work(out: Path, simulations: str = "simulations", result: str = "result") -> list[str]:
    """What ``out`` holds that a run would replace: ``["3 simulation chunks", "a result"]``."""
    found = []
    chunks = sum(1 for _ in (out / simulations).glob("chunk_*.npz"))
    if chunks:
        found.append(f"{chunks} simulation chunk{'s' if chunks != 1 else ''}")
    if (out / result).exists():
        found.append("a result")
    return found


def check_run_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, a run that would replace finished work in ``out``.

    Raises:
        UserError: both flags are given, ``out`` is a file, or ``out`` holds finished work and
            neither ``--resume`` nor ``--overwrite`` is given.
    """
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other: continue or start afresh")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file; expected a folder")
    if resume or overwrite or not out.exists():
        return
    work = finished_work(out)
    if work:
        raise UserError(
            f"{str(out)!r} holds finished work ({', '.join(work)}); pass --resume to continue "
            "it, or --overwrite to move it aside and start afresh"
        )


def move_aside(out: Path) -> Path | None:
    """Rename a non-empty ``out`` to ``<out>.old-<UTC timestamp>``; return the new path.

    Returns:
        Where the old work now lies, or ``None`` when ``out`` was absent or empty.
    """
    if not out.is_dir() or not any(out.iterdir()):
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = out.with_name(f"{out.name}.old-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = out.with_name(f"{out.name}.old-{stamp}-{number}")
    os.replace(out, target)
    return target
