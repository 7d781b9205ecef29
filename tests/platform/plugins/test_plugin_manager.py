"""The plugin manager: discovery, isolation of broken plugins, clashes, environment switches."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import sbiplug
from sbiplug.errors import PluginConflictError, SbiplugPluginWarning, UnknownNameError
from sbiplug.plugins import PluginManager, get_plugin_manager, reset_plugin_manager
from sbiplug.specs import SimulatorSpec

BUILTIN_SIMULATORS = {
    "two_moons",
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "slcp",
    "sir",
    "lotka_volterra",
}
FAKE_MODEL = "class FakeModel:\n    pass\n"


GOOD_PLUGIN = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(
            name="fake_model", factory="fake_model_impl:FakeModel", description="a fake"
        )
"""

BROKEN_IMPORT = "raise ImportError('missing optional dependency frobnicate')\n"

INVALID_SPEC = """
    import sbiplug

    @sbiplug.hookimpl
    def register_estimators():
        yield "not a spec"
"""

UNKNOWN_HOOK = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulatorz():
        return []
"""

CLASHING = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(name="two_moons", factory="builtins:dict")
"""


def test_builtins_register_first_and_contribute(quiet_manager):
    pm = quiet_manager(load_entry_points=False)
    infos = pm.plugins()
    assert [info.name for info in infos[:3]] == [
        "sbiplug.simulators",
        "sbiplug.estimators",
        "sbiplug.diagnostics",
    ]
    assert all(info.builtin and info.status == "loaded" for info in infos)
    assert set(pm.specs("simulators")) == BUILTIN_SIMULATORS
    assert set(pm.specs("estimators")) >= {"npe", "nle", "nre", "fmpe", "npse"}
    assert set(pm.specs("diagnostics")) >= {"sbc", "tarp", "coverage", "c2st_reference", "ppc"}
    assert all(spec.plugin == "sbiplug.simulators" for spec in pm.specs("simulators").values())


def test_discovers_fake_installed_distribution(install, quiet_manager):
    install(
        "fake-sbiplug-plugin",
        {"fake": "fake_plugin"},
        {"fake_plugin": GOOD_PLUGIN, "fake_model_impl": FAKE_MODEL},
    )
    pm = quiet_manager()
    info = {info.name: info for info in pm.plugins()}["fake"]
    assert info.status == "loaded"
    assert info.version == "1.2.3"
    assert info.distribution == "fake-sbiplug-plugin" and info.entry_point == "fake"
    assert info.hooks == ("register_simulators",)
    assert info.contributions == {"simulators": ("fake_model",)}
    spec = pm.get("simulators", "fake_model")
    assert spec.plugin == "fake" and spec.description == "a fake"


def test_broken_plugins_are_skipped_while_others_load(install):
    install(
        "mixed-plugins",
        {
            "good": "good_plugin",
            "broken": "broken_plugin",
            "invalid": "invalid_plugin",
            "typo": "typo_plugin",
        },
        {
            "good_plugin": GOOD_PLUGIN,
            "fake_model_impl": FAKE_MODEL,
            "broken_plugin": BROKEN_IMPORT,
            "invalid_plugin": INVALID_SPEC,
            "typo_plugin": UNKNOWN_HOOK,
        },
    )
    with pytest.warns(SbiplugPluginWarning) as caught:
        pm = PluginManager(environ={})
    infos = {info.name: info for info in pm.plugins()}
    assert infos["good"].status == "loaded"
    assert infos["broken"].status == "failed"
    assert "frobnicate" in infos["broken"].error
    assert infos["invalid"].status == "failed"
    assert "SimulatorSpec" in infos["invalid"].error or "EstimatorSpec" in infos["invalid"].error
    assert infos["typo"].status == "failed"
    assert "register_simulatorz" in infos["typo"].error
    assert {"broken", "invalid", "typo"} <= {
        name for name in infos if any(name in str(w.message) for w in caught)
    }
    assert "fake_model" in pm.specs("simulators")
    assert set(pm.specs("simulators")) >= BUILTIN_SIMULATORS


def test_a_plugin_raising_in_a_hook_is_isolated(quiet_manager):
    class Exploding:
        @sbiplug.hookimpl
        def register_diagnostics(self):
            raise RuntimeError("kaboom")

    pm = quiet_manager(load_entry_points=False)
    with pytest.warns(SbiplugPluginWarning, match="kaboom"):
        info = pm.register(Exploding(), "exploding")
    assert info.status == "failed" and "kaboom" in info.error
    assert "sbc" in pm.specs("diagnostics")


def test_a_spec_with_a_bad_name_fails_its_plugin_only(quiet_manager):
    class BadName:
        @sbiplug.hookimpl
        def register_targets(self):
            yield sbiplug.TargetSpec(name="Bad-Name", factory="builtins:dict")

    pm = quiet_manager(load_entry_points=False)
    with pytest.warns(SbiplugPluginWarning, match="lower_snake_case"):
        info = pm.register(BadName(), "badname")
    assert info.status == "failed"
    assert pm.specs("targets") == {}


def test_name_clash_disables_that_name_only(install, quiet_manager):
    install("clash-dist", {"clasher": "clash_plugin"}, {"clash_plugin": CLASHING})
    pm = quiet_manager()
    assert set(pm.specs("simulators")) >= BUILTIN_SIMULATORS - {"two_moons"}
    assert "two_moons" not in pm.specs("simulators")
    assert pm.conflicts("simulators") == {"two_moons": ("sbiplug.simulators", "clasher")}
    with pytest.raises(PluginConflictError) as error:
        pm.get("simulators", "two_moons")
    assert "sbiplug.simulators" in str(error.value) and "clasher" in str(error.value)
    assert "SBIPLUG_DISABLE_PLUGINS" in str(error.value)
    assert error.value.plugins == ("sbiplug.simulators", "clasher")
    assert pm.get("simulators", "gaussian_linear").plugin == "sbiplug.simulators"


def test_disable_variable_blocks_plugins(install, quiet_manager):
    install("clash-dist", {"clasher": "clash_plugin"}, {"clash_plugin": CLASHING})
    pm = quiet_manager({"SBIPLUG_DISABLE_PLUGINS": "clasher, sbiplug.diagnostics"})
    infos = {info.name: info for info in pm.plugins()}
    assert infos["clasher"].status == "disabled"
    assert infos["clasher"].disabled_by == "SBIPLUG_DISABLE_PLUGINS"
    assert infos["sbiplug.diagnostics"].status == "disabled"
    assert pm.get("simulators", "two_moons").plugin == "sbiplug.simulators"
    assert not {"sbc", "tarp", "coverage", "c2st_reference", "ppc"} & set(pm.specs("diagnostics"))


def test_load_variable_loads_only_named_entry_points(install, quiet_manager):
    install(
        "two-plugins",
        {"fake": "fake_plugin", "clasher": "clash_plugin"},
        {"fake_plugin": GOOD_PLUGIN, "clash_plugin": CLASHING, "fake_model_impl": FAKE_MODEL},
    )
    pm = quiet_manager({"SBIPLUG_LOAD_PLUGINS": "fake"})
    infos = {info.name: info for info in pm.plugins()}
    assert infos["fake"].status == "loaded"
    assert infos["clasher"].status == "disabled"
    assert infos["clasher"].disabled_by == "SBIPLUG_LOAD_PLUGINS"
    others = {ep.name for ep in entry_points(group="sbiplug")} - {"fake", "clasher"}
    assert all(infos[name].status == "disabled" for name in others)  # cmpe, ... if installed
    assert all(infos[name].status == "loaded" for name in infos if infos[name].builtin)
    assert "fake_model" in pm.specs("simulators")  # no clash: the clasher was not loaded


def test_manager_is_lazy_and_cached():
    previous = reset_plugin_manager()
    try:
        first = get_plugin_manager()
        assert get_plugin_manager() is first
    finally:
        reset_plugin_manager(previous)


def test_unknown_name_lists_available_and_closest():
    with pytest.raises(UnknownNameError) as error:
        sbiplug.make_simulator("two_moon")
    assert isinstance(error.value, KeyError)
    message = str(error.value)
    assert "did you mean 'two_moons'" in message
    assert "gaussian_linear" in message and "slcp" in message
    assert error.value.closest == "two_moons"


def test_unknown_estimator_and_kind():
    with pytest.raises(UnknownNameError, match=r"unknown estimator 'npee'.*'npe'"):
        sbiplug.make_estimator("npee", prior=None)
    with pytest.raises(ValueError, match="unknown kind"):
        get_plugin_manager().specs("widgets")


def test_thin_plugin_modules_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, sbiplug; sbiplug.simulators(); sbiplug.estimators(); "
        "sbiplug.diagnostics(); sbiplug.targets(); "
        "print(sorted(m for m in ('torch', 'sbi') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_spec_factories_resolve_lazily():
    spec = SimulatorSpec(name="lazy_dict", factory="collections:OrderedDict")
    assert spec.load()(a=1) == {"a": 1}


def test_listing_functions_survive_subpackage_imports():
    import importlib

    importlib.import_module("sbiplug.builtin.simulators.plugin")
    importlib.import_module("sbiplug.builtin.estimators.plugin")
    importlib.import_module("sbiplug.builtin.diagnostics.plugin")
    assert callable(sbiplug.simulators) and callable(sbiplug.diagnostics)
    assert "npe" in sbiplug.estimators()


def test_functions_using_the_package_pickle_by_reference():
    # The package is an ordinary module (no module-class trick): cloudpickle, as dask uses it,
    # refers to it by name.
    import cloudpickle

    restored = cloudpickle.loads(cloudpickle.dumps(lambda: sbiplug.make_simulator("two_moons")))
    assert restored().name == "two_moons"
