"""Isolation per name: clashes, same-named entry points, unresolvable factories, blocked plugins.

Every test installs fake third-party distributions (``*.dist-info`` + modules on ``sys.path``)
and checks that what is broken is named precisely while everything else keeps working.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from importlib.metadata import entry_points

import pytest

import sbiplug
from sbiplug.errors import (
    FactoryImportError,
    PluginConflictError,
    SbiplugPluginWarning,
    UnavailableNameError,
    UnknownNameError,
)
from sbiplug.plugins import PluginManager
from sbiplug.specs import SpecError

CLASHING_SIMULATOR = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(name="two_moons", factory="builtins:dict")
        yield sbiplug.SimulatorSpec(name="own_model", factory="builtins:dict")
"""


def estimator_plugin(*names: str) -> str:
    specs = "\n".join(
        f"        yield sbiplug.EstimatorSpec(name={name!r}, factory='builtins:dict')"
        for name in names
    )
    return f"import sbiplug\n\n@sbiplug.hookimpl\ndef register_estimators():\n{specs}\n"


def by_name(manager: PluginManager) -> dict:
    return {info.name: info for info in manager.plugins()}


# -- a name contributed twice -------------------------------------------------------------------


def test_a_clashing_simulator_leaves_every_other_simulator_usable(install, installed_as_current):
    install("clash-dist", {"clasher": "clash_plugin"}, {"clash_plugin": CLASHING_SIMULATOR})
    with pytest.warns(SbiplugPluginWarning, match="two_moons") as caught:
        manager = installed_as_current(PluginManager(environ={}))
    (warning,) = [w for w in caught if "two_moons" in str(w.message)]
    assert "'sbiplug.simulators'" in str(warning.message) and "'clasher'" in str(warning.message)

    simulator = sbiplug.make_simulator("gaussian_linear", dim=2)
    assert simulator.name == "gaussian_linear"
    assert "two_moons" not in sbiplug.simulators()
    assert {"gaussian_linear", "slcp", "sir", "own_model"} <= set(sbiplug.simulators())
    with pytest.raises(PluginConflictError) as error:
        sbiplug.make_simulator("two_moons")
    assert "'sbiplug.simulators'" in str(error.value) and "'clasher'" in str(error.value)
    assert "SBIPLUG_DISABLE_PLUGINS=clasher" in str(error.value)

    infos = by_name(manager)
    assert infos["clasher"].status == "loaded"
    assert infos["clasher"].conflicts == {"simulators": {"two_moons": ("sbiplug.simulators",)}}
    assert infos["sbiplug.simulators"].conflicts == {"simulators": {"two_moons": ("clasher",)}}


def test_disabling_one_of_the_clashing_plugins_restores_the_name(install, quiet_manager):
    install("clash-dist", {"clasher": "clash_plugin"}, {"clash_plugin": CLASHING_SIMULATOR})
    manager = quiet_manager({"SBIPLUG_DISABLE_PLUGINS": "clasher"})
    assert manager.get("simulators", "two_moons").plugin == "sbiplug.simulators"
    assert manager.conflicts("simulators") == {}


# -- two entry points with one name ---------------------------------------------------------------


def test_entry_points_sharing_a_name_are_both_loaded_and_listed(install, quiet_manager):
    install("acme-tools", {"dup": "acme_dup"}, {"acme_dup": estimator_plugin("shared", "acme")})
    install("other-tools", {"dup": "other_dup"}, {"other_dup": estimator_plugin("shared", "other")})
    manager = quiet_manager()
    infos = by_name(manager)
    assert {"dup@acme-tools", "dup@other-tools"} <= set(infos)
    assert "dup" not in infos
    for dist in ("acme-tools", "other-tools"):
        info = infos[f"dup@{dist}"]
        assert info.status == "loaded" and info.distribution == dist
        assert info.entry_point == "dup" and info.version == "1.2.3"
    assert manager.get("estimators", "acme").plugin == "dup@acme-tools"
    assert manager.get("estimators", "other").plugin == "dup@other-tools"
    with pytest.raises(PluginConflictError, match=r"dup@acme-tools.*dup@other-tools"):
        manager.get("estimators", "shared")
    # either one can be switched off by its qualified name, the other keeps its names
    manager = quiet_manager({"SBIPLUG_DISABLE_PLUGINS": "dup@other-tools"})
    assert manager.get("estimators", "shared").plugin == "dup@acme-tools"
    assert by_name(manager)["dup@other-tools"].disabled_by == "SBIPLUG_DISABLE_PLUGINS"


def test_a_third_party_cmpe_does_not_hide_the_bundled_one(install, quiet_manager):
    bundled = [ep for ep in entry_points(group="sbiplug") if ep.name == "cmpe"]
    if not bundled:  # host-only environment: a stand-in for the bundled distribution
        install(
            "sbiplug-cmpe", {"cmpe": "cmpe_stand_in"}, {"cmpe_stand_in": estimator_plugin("cmpe")}
        )
    install("evil-cmpe", {"cmpe": "evil_cmpe"}, {"evil_cmpe": estimator_plugin("cmpe")})
    manager = quiet_manager()
    infos = by_name(manager)
    ours = "cmpe@sbiplug-cmpe"
    assert infos[ours].status == "loaded" and infos["cmpe@evil-cmpe"].status == "loaded"
    assert infos[ours].contributions == {"estimators": ("cmpe",)}
    with pytest.raises(PluginConflictError) as error:
        manager.get("estimators", "cmpe")
    assert ours in str(error.value) and "cmpe@evil-cmpe" in str(error.value)
    assert "did you mean" not in str(error.value)
    assert manager.get("estimators", "npe").plugin == "sbiplug.estimators"


# -- lazy factories that cannot be resolved -------------------------------------------------------

GHOSTLY = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(name="ghost", factory="no_such_package_xyz.model:Ghost")
        yield sbiplug.SimulatorSpec(name="solid", factory="ghostly_models:Solid")
        yield sbiplug.SimulatorSpec(name="no_attr", factory="ghostly_models:Missing")
        yield sbiplug.SimulatorSpec(name="needs_dep", factory="ghostly_needs_dep:Model")
"""
GHOSTLY_MODELS = "Solid = dict\n"
# Importing this module would fail; finding it must not import it.
NEEDS_DEP = "import frobnicate_xyz\nModel = dict\n"


def test_an_unresolvable_factory_fails_its_spec_with_plugin_and_spec_named(install):
    install(
        "ghostly-dist",
        {"ghostly": "ghostly_plugin"},
        {
            "ghostly_plugin": GHOSTLY,
            "ghostly_models": GHOSTLY_MODELS,
            "ghostly_needs_dep": NEEDS_DEP,
        },
    )
    with pytest.warns(SbiplugPluginWarning, match="ghost") as caught:
        manager = PluginManager(environ={})
    (warning,) = [w for w in caught if "'ghost'" in str(w.message)]
    assert "'ghostly'" in str(warning.message) and "no_such_package_xyz" in str(warning.message)
    assert "ghostly_needs_dep" not in sys.modules and "ghostly_models" not in sys.modules

    info = by_name(manager)["ghostly"]
    assert info.status == "loaded"
    assert info.contributions == {"simulators": ("solid", "no_attr", "needs_dep")}
    assert list(info.failed_specs) == ["simulators"]
    assert "no_such_package_xyz" in info.failed_specs["simulators"]["ghost"]
    assert "ghost" not in manager.specs("simulators")

    with pytest.raises(FactoryImportError) as error:
        manager.get("simulators", "ghost")
    message = str(error.value)
    assert "simulator 'ghost'" in message and "plugin 'ghostly'" in message
    assert "no_such_package_xyz" in message and error.value.name == "no_such_package_xyz"
    assert manager.get("simulators", "solid").load() is dict


def test_a_factory_failing_at_build_time_names_plugin_spec_and_what_is_missing(
    install, installed_as_current, quiet_manager
):
    install(
        "ghostly-dist",
        {"ghostly": "ghostly_plugin"},
        {
            "ghostly_plugin": GHOSTLY,
            "ghostly_models": GHOSTLY_MODELS,
            "ghostly_needs_dep": NEEDS_DEP,
        },
    )
    installed_as_current(quiet_manager())
    with pytest.raises(FactoryImportError) as error:
        sbiplug.make_simulator("needs_dep")
    assert isinstance(error.value, ImportError)  # callers catching ImportError still work
    assert "simulator 'needs_dep'" in str(error.value) and "'ghostly'" in str(error.value)
    assert "frobnicate_xyz" in str(error.value) and error.value.name == "frobnicate_xyz"
    assert isinstance(error.value.__cause__, ModuleNotFoundError)
    with pytest.raises(FactoryImportError, match=r"simulator 'no_attr'.*'ghostly'.*Missing"):
        sbiplug.make_simulator("no_attr")


# -- plugins blocked by the environment -----------------------------------------------------------

EXTRAS = """
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(name="extra_model", factory="builtins:dict")

    raise RuntimeError("a disabled plugin must not be executed")
"""
DYNAMIC = """
    import sbiplug

    @sbiplug.hookimpl
    def register_targets():
        for size in (1, 2):
            yield sbiplug.TargetSpec(name=f"dynamic_{size}", factory="builtins:dict")
"""


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({"SBIPLUG_DISABLE_PLUGINS": "extras"}, "is disabled by SBIPLUG_DISABLE_PLUGINS"),
        ({"SBIPLUG_LOAD_PLUGINS": "none_of_these"}, "is not listed in SBIPLUG_LOAD_PLUGINS"),
    ],
)
def test_a_name_of_a_blocked_plugin_says_so(install, environ, reason):
    install("extras-dist", {"extras": "extras_plugin"}, {"extras_plugin": EXTRAS})
    with warnings.catch_warnings():
        warnings.simplefilter("error", SbiplugPluginWarning)  # the plugin is not even imported
        manager = PluginManager(environ=environ)
    with pytest.raises(UnavailableNameError) as error:
        manager.get("simulators", "extra_model")
    assert (
        str(error.value)
        == f"simulator 'extra_model' is provided by plugin 'extras', which {reason}"
    )
    assert isinstance(error.value, UnknownNameError) and isinstance(error.value, KeyError)
    assert "extras_plugin" not in sys.modules


def test_a_disabled_builtin_names_its_variable(quiet_manager, installed_as_current):
    installed_as_current(quiet_manager({"SBIPLUG_DISABLE_PLUGINS": "sbiplug.diagnostics"}))
    with pytest.raises(UnavailableNameError, match=r"'sbiplug\.diagnostics', which is disabled"):
        sbiplug.make_diagnostic("sbc")


def test_blocked_plugins_with_unreadable_names_are_mentioned_as_candidates(install):
    install("dynamic-dist", {"dynamic": "dynamic_plugin"}, {"dynamic_plugin": DYNAMIC})
    manager = PluginManager(environ={"SBIPLUG_DISABLE_PLUGINS": "dynamic"})
    with pytest.raises(UnknownNameError) as error:
        manager.get("targets", "dynamic_1")
    assert not isinstance(error.value, UnavailableNameError)
    assert "plugin 'dynamic', which is disabled by SBIPLUG_DISABLE_PLUGINS" in str(error.value)
    with pytest.raises(UnknownNameError, match="did you mean 'two_moons'"):
        manager.get("simulators", "two_moon")


NEEDS_FROBNICATE = """
    import frobnicate_xyz
    import sbiplug

    @sbiplug.hookimpl
    def register_simulators():
        yield sbiplug.SimulatorSpec(name="frobbed", factory="builtins:dict")
"""


def test_a_name_of_a_plugin_that_failed_to_import_says_why(install, quiet_manager):
    install("frob-dist", {"frob": "frob_plugin"}, {"frob_plugin": NEEDS_FROBNICATE})
    manager = quiet_manager()
    with pytest.raises(UnavailableNameError) as error:
        manager.get("simulators", "frobbed")
    message = str(error.value)
    assert message.startswith("simulator 'frobbed' is provided by plugin 'frob', which failed")
    assert "frobnicate_xyz" in message and "did you mean" not in message


# -- warnings point at the plugin and are shown once ---------------------------------------------

BROKEN = """
    import sbiplug

    raise ImportError("missing optional dependency frobnicate")
"""


def test_warnings_point_at_the_plugin_file(install, site):
    install(
        "broken-dist",
        {"broken": "broken_plugin", "clasher": "clash_plugin"},
        {"broken_plugin": BROKEN, "clash_plugin": CLASHING_SIMULATOR},
    )
    with pytest.warns(SbiplugPluginWarning) as caught:
        PluginManager(environ={})
    located = {w.filename: w.lineno for w in caught}
    assert located[str(site / "broken_plugin.py")] == 4  # the line that raised
    assert located[str(site / "clash_plugin.py")] == 4  # the hook yielding the clash
    assert not any(w.filename.endswith("plugins.py") for w in caught)


def test_a_class_plugin_raising_in_a_hook_is_blamed_on_its_own_file(quiet_manager):
    class Exploding:
        @sbiplug.hookimpl
        def register_diagnostics(self):
            raise RuntimeError("kaboom, seen once")

    manager = quiet_manager(load_entry_points=False)
    with pytest.warns(SbiplugPluginWarning, match="kaboom") as caught:
        manager.register(Exploding(), "exploding")
    assert caught[0].filename == __file__


def test_each_warning_is_shown_once_per_process(install, site):
    install("broken-dist", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN})
    code = "from sbiplug.plugins import PluginManager\nfor _ in range(3):\n    PluginManager()\n"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SBIPLUG_")}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    assert result.stderr.count("SbiplugPluginWarning") == 1, result.stderr
    assert result.stderr.startswith(f"{site / 'broken_plugin.py'}:4: SbiplugPluginWarning")
    assert "frobnicate" in result.stderr


# -- facts stated by both the spec and the simulator class ---------------------------------------


def test_a_spec_contradicting_its_simulator_class_is_an_error(quiet_manager, installed_as_current):
    from sbiplug.builtin.simulators.slcp import SLCP
    from sbiplug.builtin.simulators.two_moons import TwoMoons

    class Contradicting:
        @sbiplug.hookimpl
        def register_simulators(self):
            yield sbiplug.SimulatorSpec(name="flat_moons", factory=TwoMoons)  # has a reference
            yield sbiplug.SimulatorSpec(
                name="round_slcp", factory=SLCP, parameter_manifold="sphere"
            )
            yield sbiplug.SimulatorSpec(
                name="honest", factory=TwoMoons, has_reference_posterior=True
            )

    manager = installed_as_current(quiet_manager(load_entry_points=False))
    manager.register(Contradicting(), "contradicting")
    with pytest.raises(SpecError) as error:
        sbiplug.make_simulator("flat_moons")
    assert "'contradicting'" in str(error.value) and "has_reference_posterior=False" in str(
        error.value
    )
    with pytest.raises(SpecError, match=r"'round_slcp' of plugin 'contradicting'.*'sphere'"):
        sbiplug.make_simulator("round_slcp")
    assert sbiplug.make_simulator("honest").has_reference_posterior


def test_every_registered_simulator_matches_its_spec():
    for name in sbiplug.simulators():
        sbiplug.make_simulator(name)  # raises SpecError on a mismatch
