"""Lazy exports: a name's module is imported on first access only, then cached."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from sbiplug.toolkit import lazy_exports


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A throw-away package ``lazypkg`` with a submodule ``heavy`` that records its import."""
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "from sbiplug.toolkit import lazy_exports\n"
        "__all__ = ['Heavy', 'VALUE']\n"
        "VALUE = 1\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'Heavy': '.heavy'})\n"
    )
    (root / "heavy.py").write_text("IMPORTS = []\nIMPORTS.append(1)\nclass Heavy:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lazypkg"
    for name in [m for m in sys.modules if m == "lazypkg" or m.startswith("lazypkg.")]:
        del sys.modules[name]


def test_module_is_imported_only_when_the_name_is_accessed(package):
    import importlib

    module = importlib.import_module(package)
    assert f"{package}.heavy" not in sys.modules
    assert "Heavy" in dir(module) and "VALUE" in dir(module)
    heavy = module.Heavy
    assert f"{package}.heavy" in sys.modules and heavy.__name__ == "Heavy"
    assert "Heavy" in vars(module)  # cached: later lookups skip __getattr__
    assert sys.modules[f"{package}.heavy"].IMPORTS == [1]


def test_unknown_names_raise_attribute_error(package):
    import importlib

    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'Missing'"):
        module.Missing  # noqa: B018
    assert not hasattr(module, "Missing")


def test_absolute_module_paths_and_import_errors_propagate():
    module = types.ModuleType("fake_lazy")
    sys.modules["fake_lazy"] = module
    try:
        module.__getattr__, _ = lazy_exports(
            "fake_lazy", {"sqrt": "math", "broken": "fake_lazy_missing_module"}
        )
        assert module.sqrt(4.0) == 2.0
        with pytest.raises(ModuleNotFoundError, match="fake_lazy_missing_module"):
            module.broken  # noqa: B018
    finally:
        del sys.modules["fake_lazy"]


def test_importing_the_toolkit_and_the_host_pulls_no_torch():
    code = (
        "import sys, sbiplug, sbiplug.toolkit as t; "
        "assert not {'torch', 'numpy', 'matplotlib'} & set(sys.modules), sys.modules.keys(); "
        "t.check_int('n', 1); assert 'torch' not in sys.modules; "
        "t.Standardize; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
