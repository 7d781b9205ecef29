"""Run the ```python blocks of Markdown pages, page by page, as the docs tests do.

``python docs/check_code.py OUT.json BUDGET_S PAGE ...`` runs each page's blocks in order in
one namespace (a page reads like one script), each page in a fresh temporary folder, all pages
in this one process so that torch and sbi are imported once; a page that runs past
``BUDGET_S`` seconds is stopped with an error. It writes
``{page: {"error": traceback or null, "seconds": wall time}}`` to ``OUT.json``. Tracebacks name
the page and the line of the block. ``tests/platform/test_docs.py`` and
``tests/plugins/test_plugin_docs.py`` call it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, source)`` of each ```python block of a Markdown text."""
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in FENCE.finditer(text)
    ]


class PageTimeout(Exception):
    """A page's code ran past its time budget."""


def _stop(signum, frame):
    raise PageTimeout("the page's code ran past its time budget")


def run_page(path: Path, budget_s: float | None = None) -> dict:
    """Run one page's blocks in a fresh folder; the error is the traceback or ``None``."""
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    error = None
    namespace: dict = {"__name__": "__main__"}
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        if budget_s:
            signal.signal(signal.SIGALRM, _stop)
            signal.setitimer(signal.ITIMER_REAL, budget_s)
        try:
            for line, source in python_blocks(path.read_text()):
                # blank lines so that tracebacks point at the page's own line numbers
                code = compile("\n" * (line - 1) + source, str(path), "exec")
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(code, namespace)
        except BaseException:
            error = traceback.format_exc()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            os.chdir(here)
            plt.close("all")
    return {"error": error, "seconds": time.perf_counter() - start}


def run_pages_in_subprocess(pages: list[Path], out: Path, budget_s: float) -> dict[str, dict]:
    """Run ``pages`` through this script in one fresh interpreter; ``{page path: outcome}``.

    One torch thread and a headless matplotlib, as in the test suite; the subprocess runs in
    ``out``'s folder and writes its outcomes to ``out``.
    """
    import subprocess

    environment = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    command = [sys.executable, __file__, str(out), str(budget_s), *map(str, pages)]
    subprocess.run(command, cwd=out.parent, env=environment, check=True, timeout=1200)
    return json.loads(out.read_text())


def main(argv: list[str]) -> int:
    import matplotlib

    matplotlib.use("Agg")
    out, budget_s = Path(argv[0]), float(argv[1])
    pages = [Path(page).resolve() for page in argv[2:]]
    results = {str(page): run_page(page, budget_s) for page in pages}
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
