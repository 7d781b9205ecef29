"""Run the tutorials in quick mode and store them as docs pages, with outputs and figures.

``python docs/render_tutorials.py [STEM ...]`` (``make docs-tutorials``) runs each
``tutorials/<stem>.py`` (jupytext percent format) cell by cell with ``SBIPLUG_QUICK=1`` in its
own process and temporary folder, and writes ``docs/tutorials/<stem>.md`` plus
``docs/tutorials/<stem>/figure_<n>.png``. The site build (``make docs``) then only reads these
stored pages, which keeps it fast. Each page records the SHA-256 of its source, and
``tests/platform/test_docs.py`` fails when a tutorial changed after its page was rendered.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
PAGES = ROOT / "docs" / "tutorials"
MAX_OUTPUT_LINES = 40
HASH_PREFIX = "<!-- source sha256: "


def source_hash(path: Path) -> str:
    """The SHA-256 of a tutorial's source, as recorded in its page."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fence(text: str, language: str) -> str:
    body = text.strip("\n").rstrip()
    return f"```{language}\n{body}\n```\n"


def _output(text: str) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) > MAX_OUTPUT_LINES:
        lines = [*lines[:MAX_OUTPUT_LINES], f"... ({len(lines) - MAX_OUTPUT_LINES} more lines)"]
    return "\n".join(lines)


def render(path: Path, pages: Path) -> Path:
    """Execute one tutorial in this process and write its page; returns the page's path."""
    import jupytext
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = path.stem
    figures = pages / stem
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob("figure_*.png"):
        old.unlink()
    notebook = jupytext.read(path)
    saved: list[str] = []
    captured: list[str] = []
    close = plt.close

    def capture() -> None:
        for number in plt.get_fignums():
            figure = plt.figure(number)
            name = f"figure_{len(saved) + 1}.png"
            figure.savefig(figures / name, dpi=70, bbox_inches="tight")
            saved.append(name)
            captured.append(name)
            close(figure)

    def closing(*args, **kwargs):  # a tutorial that closes its figures still shows them here
        capture()
        return close(*args, **kwargs)

    plt.close = closing
    namespace: dict = {"__name__": "__main__", "__file__": str(path)}
    parts = [f"{HASH_PREFIX}{source_hash(path)} -->\n"]
    note = (
        f"*Rendered from `tutorials/{path.name}` in quick mode (`SBIPLUG_QUICK=1`: tiny "
        "budgets, so the numbers are a smoke test, not a result).*\n"
    )
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source + "\n")
            if note:  # under the tutorial's title
                parts.append(note)
                note = ""
            continue
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        parts.append(_fence(cell.source, "python"))
        stdout = io.StringIO()
        captured.clear()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(cell.source, f"{path.name} (cell {index})", "exec"), namespace)
            capture()
        if stdout.getvalue().strip():
            parts.append(_fence(_output(stdout.getvalue()), "text"))
        parts += [f"![{stem}, figure {name[7:-4]}]({stem}/{name})\n" for name in captured]
    plt.close = close
    if not saved:
        figures.rmdir()
    page = pages / f"{stem}.md"
    page.write_text("\n".join(parts))
    return page


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:  # the child process: one tutorial, in a fresh interpreter
        render(Path(argv[1]), Path(argv[2]))
        return 0
    stems = argv or sorted(path.stem for path in TUTORIALS.glob("[0-9]*.py"))
    environment = dict(os.environ, SBIPLUG_QUICK="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    environment.setdefault("PYTHONWARNINGS", "ignore")
    for stem in stems:
        source = TUTORIALS / f"{stem}.py"
        with tempfile.TemporaryDirectory() as folder:  # tutorials write their study folders
            print(f"rendering {source.relative_to(ROOT)}", flush=True)
            subprocess.run(
                [sys.executable, __file__, "--one", str(source), str(PAGES)],
                cwd=folder,
                env=environment,
                check=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
