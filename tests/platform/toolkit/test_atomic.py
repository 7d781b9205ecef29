"""Atomic writes: the target is the old or the complete new content, never a partial file."""

from __future__ import annotations

import pytest

from sbiplug.toolkit import atomic_folder, atomic_write, atomic_write_text


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "manifest.json"
    assert atomic_write_text(path, "one") == path
    atomic_write(path, lambda temporary: temporary.write_bytes(b"two"))
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_writer_that_raises_leaves_no_partial_file(tmp_path):
    path = tmp_path / "chunk.npz"

    def half_written(temporary):
        temporary.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_written)
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary
    atomic_write_text(path, "complete")
    with pytest.raises(OSError):
        atomic_write(path, half_written)
    assert path.read_text() == "complete"  # the old content survives
    assert [p.name for p in tmp_path.iterdir()] == ["chunk.npz"]


def test_atomic_folder_replaces_a_folder_only_when_the_block_succeeds(tmp_path):
    folder = tmp_path / "result"
    with atomic_folder(folder) as temporary:
        (temporary / "result.nc").write_text("first")
        assert not folder.exists()
    assert (folder / "result.nc").read_text() == "first"
    with pytest.raises(RuntimeError), atomic_folder(folder) as temporary:
        (temporary / "result.nc").write_text("second, half")
        raise RuntimeError("crash")
    assert (folder / "result.nc").read_text() == "first"
    with atomic_folder(folder) as temporary:
        (temporary / "other.txt").write_text("third")
    assert sorted(p.name for p in folder.iterdir()) == ["other.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["result"]
