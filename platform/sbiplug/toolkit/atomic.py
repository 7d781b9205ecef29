"""Atomic writes: a file or folder is either the old one or the complete new one, never half.

The content goes to a temporary sibling (same folder, so the same file system) that
:func:`os.replace` then renames over the target in one step. A writer that raises, or a crash,
leaves the target as it was and removes the temporary.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_folder", "atomic_write", "atomic_write_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write(temporary_path)`` fills a sibling, then it is renamed.

    Arguments:
        path: The file to create or replace (its folder must exist).
        write: Writes the complete content to the path it is given (``np.savez``,
            ``torch.save``, ``Path.write_text``, ...).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda temporary: temporary.write_text(text, encoding=encoding))


@contextmanager
def atomic_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Fill a temporary sibling folder in the block; on success it replaces ``folder``.

    An existing ``folder`` is moved aside, the new one renamed into place, and only then is the
    old one deleted. If the block raises, ``folder`` is left as it was.

    Yields:
        The temporary folder to write into.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        yield temporary
        old = None
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(folder, old)
        os.replace(temporary, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
