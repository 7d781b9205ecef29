"""The seam to sbi's private internals: only ``sbiplug.sbi_internals`` touches them, and it works.

Part one lists, by AST, every private sbi name the project's code uses and fails when one is used
outside ``platform/sbiplug/sbi_internals.py``. What counts as a private sbi name:

- an attribute, method definition or ``getattr``/``hasattr``/``setattr`` string whose name
  starts with one underscore and that an sbi class has (collected by introspection: class
  attributes along the MRO and the ``self._x`` attributes sbi's own code assigns). Inside a
  class that derives from an sbi class, accesses on ``self``/``cls``/``super()`` and method
  definitions are checked against *that* class's sbi ancestors, so our own ``self._foo`` in a
  plain class, or a ``self._embedding_net`` that sbi's ``ConditionalDensityEstimator`` does not
  have, is not flagged. Accesses on other objects (``trainer._neural_net``) are checked against
  every private name of sbi's trainers, posteriors and estimators;
- an import from a private sbi module (``sbi.x._y``) or of a private sbi name;
- a private attribute of an sbi module (``sbi.utils._foo``).

Part two checks the seam against the installed sbi: every private name it declares exists, the
private methods it overrides keep their parameters, and its hooks and accessors behave as sbi
does (a default-hooked NPE trains to exactly the weights of sbi's NPE).
"""

from __future__ import annotations

import abc
import ast
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import pytest
import torch
from sbi.inference import NPE
from sbi.neural_nets import posterior_nn
from sbi.utils import BoxUniform

from sbiplug.sbi_internals import (
    SBI_PRIVATE_API,
    SBI_PRIVATE_SIGNATURES,
    SingleRoundPosteriorTrainer,
    TrainingHooks,
    broadcast_and_align,
    build_network,
    check_condition_shape,
    check_input_shape,
    install_network,
    is_trainer,
    resolve_estimator,
    resolve_prior,
    set_latest_posterior,
    set_network_builder,
    set_posterior_purpose,
    shows_progress_bars,
    trained_network,
    trainer_device,
    trainer_prior,
)
from sbiplug.toolkit import NullTracker

ROOT = Path(__file__).resolve().parents[2]
SEAM = ROOT / "platform" / "sbiplug" / "sbi_internals.py"
SCANNED = ("platform", "plugins", "tests", "tutorials", "benchmarks")
ATTRIBUTE_CALLS = {"getattr", "hasattr", "setattr", "delattr"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# ------------------------------------------------------------------ sbi's private names


def _assigned_self_attributes(cls: type) -> set[str]:
    """Private ``self._x`` attributes that ``cls``'s own source assigns."""
    try:
        tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))
    except (OSError, TypeError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.ctx, ast.Store)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == "self"
                    and _is_private(inner.attr)
                ):
                    names.add(inner.attr)
    return names


@cache
def _foreign_private_names() -> frozenset[str]:
    """Private names that Python (ABC, Generic, Protocol) or torch give sbi's classes."""

    class Machinery(abc.ABC, Generic[TypeVar("T")]):
        pass

    class Protocolled(Protocol):
        pass

    names = {*vars(Machinery), *vars(Protocolled), *dir(torch.nn.Module)}
    names |= set(dir(torch.distributions.Distribution))
    return frozenset(name for name in names if _is_private(name))


@cache
def sbi_private_names(cls: type) -> frozenset[str]:
    """The private names of ``cls`` that come from sbi (torch's and Python's are left out)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != "sbi":
            continue
        names |= {name for name in vars(klass) if _is_private(name)}
        names |= _assigned_self_attributes(klass)
    return frozenset(names - _foreign_private_names())


@cache
def sbi_classes() -> tuple[type, ...]:
    """sbi's trainers, posteriors, potentials and estimators, with their subclasses."""
    import sbi.inference
    import sbi.inference.posteriors
    import sbi.inference.trainers.nle
    import sbi.inference.trainers.npe
    import sbi.inference.trainers.nre
    import sbi.inference.trainers.vfpe
    import sbi.neural_nets.estimators
    from sbi.inference.posteriors.base_posterior import NeuralPosterior
    from sbi.neural_nets.estimators.base import ConditionalEstimator

    modules = (
        sbi.inference,
        sbi.inference.posteriors,
        sbi.inference.trainers.nle,
        sbi.inference.trainers.npe,
        sbi.inference.trainers.nre,
        sbi.inference.trainers.vfpe,
        sbi.neural_nets.estimators,
    )
    found: set[type] = {sbi.inference.NeuralInference, NeuralPosterior, ConditionalEstimator}
    for module in modules:
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__.split(".")[0] == "sbi":
                found.add(value)
    stack = list(found)
    while stack:
        for subclass in stack.pop().__subclasses__():
            if subclass.__module__.split(".")[0] == "sbi" and subclass not in found:
                found.add(subclass)
                stack.append(subclass)
    return tuple(sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}"))


@cache
def all_sbi_private_names() -> frozenset[str]:
    return frozenset().union(*(sbi_private_names(cls) for cls in sbi_classes()))


def _sbi_object(qualified: str) -> object | None:
    """The sbi module or module attribute named ``qualified`` (``None`` if there is none)."""
    parts = qualified.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            value = getattr(value, part, None)
            if value is None:
                return None
        return value
    return None


# ------------------------------------------------------------------------- our sources


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "platform":
        parts = parts[1:]
    elif parts[0] == "plugins":
        parts = parts[2:]  # plugins/sbiplug-<name>/sbiplug_<name>/...
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_files() -> list[Path]:
    files = []
    for root in SCANNED:
        for path in sorted((ROOT / root).rglob("*.py")):
            if not any(part.startswith(".") for part in path.relative_to(ROOT).parts):
                files.append(path)
    return files


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: dict[str, str]  # local name -> qualified name
    classes: dict[str, ast.ClassDef]


def _imports(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    imports: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imports[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    imports[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{base}.{alias.name}"
    return imports


@cache
def project_modules() -> dict[str, Module]:
    modules = {}
    for path in project_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        name = _module_name(path)
        classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
        imports = _imports(tree, name, path.name == "__init__.py")
        modules[name] = Module(name, path, tree, imports, classes)
    return modules


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    if isinstance(node, ast.Subscript):  # Generic[...] and friends
        return _dotted(node.value)
    return None


def _qualify(dotted: str, module: Module) -> str:
    head, _, rest = dotted.partition(".")
    if head in module.imports:
        return module.imports[head] + (f".{rest}" if rest else "")
    if head in module.classes:
        return f"{module.name}.{dotted}"
    return dotted


def _project_class(qualified: str) -> tuple[Module, ast.ClassDef] | None:
    modules = project_modules()
    module_name, _, class_name = qualified.rpartition(".")
    module = modules.get(module_name)
    if module is not None and class_name in module.classes:
        return module, module.classes[class_name]
    # a re-export (lazy or not): the class of that name defined in the same package
    package = module_name.split(".")[0]
    for candidate in modules.values():
        if candidate.name.split(".")[0] == package and class_name in candidate.classes:
            return candidate, candidate.classes[class_name]
    return None


def sbi_ancestors(module: Module, node: ast.ClassDef, seen: frozenset[str] = frozenset()) -> set:
    """The sbi classes that ``node`` derives from, directly or through our classes."""
    found: set[type] = set()
    for base in node.bases:
        dotted = _dotted(base)
        if dotted is None:
            continue
        qualified = _qualify(dotted, module)
        if qualified.split(".")[0] == "sbi":
            value = _sbi_object(qualified)
            if inspect.isclass(value):
                found.add(value)
        elif qualified not in seen and (hit := _project_class(qualified)) is not None:
            found |= sbi_ancestors(*hit, seen | {qualified})
    return found


# ----------------------------------------------------------------------------- the scan


@dataclass(frozen=True)
class Use:
    path: Path
    line: int
    name: str
    how: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.how} {self.name}"


def _is_own_receiver(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in {"self", "cls"}
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


class _Scanner(ast.NodeVisitor):
    """Private sbi names used in one module; ``strict`` ignores receivers and class context."""

    def __init__(self, module: Module, strict: bool = False) -> None:
        self.module, self.strict = module, strict
        self.uses: list[Use] = []
        self.class_names: list[frozenset[str] | None] = []  # per enclosing class

    def _use(self, node: ast.AST, name: str, how: str) -> None:
        self.uses.append(Use(self.module.path, node.lineno, name, how))

    def _own_names(self) -> frozenset[str] | None:
        """Private sbi names of the innermost enclosing class (``None``: not in a class)."""
        return self.class_names[-1] if self.class_names else None

    def _check(self, node: ast.AST, receiver: ast.expr | None, name: str, how: str) -> None:
        if not _is_private(name):
            return
        everything = all_sbi_private_names()
        if self.strict:
            if name in everything:
                self._use(node, name, how)
            return
        own = self._own_names()
        if receiver is not None and _is_own_receiver(receiver) and own is not None:
            if name in own:
                self._use(node, name, how)
            return
        if receiver is not None and (dotted := _dotted(receiver)) is not None:
            qualified = _qualify(dotted, self.module)
            if qualified.split(".")[0] == "sbi" and inspect.ismodule(_sbi_object(qualified)):
                self._use(node, name, how)  # a private attribute of an sbi module
                return
        if name in everything:
            self._use(node, name, how)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        ancestors = sbi_ancestors(self.module, node)
        names = frozenset().union(*(sbi_private_names(cls) for cls in ancestors))
        for statement in node.body:
            targets: list[str] = []
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                targets = [statement.name]
            elif isinstance(statement, ast.Assign):
                targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                targets = [statement.target.id]
            for target in targets:
                if target in names or (self.strict and target in all_sbi_private_names()):
                    self._use(statement, target, "overrides")
        self.class_names.append(names)
        self.generic_visit(node)
        self.class_names.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check(node, node.value, node.attr, "uses")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_CALLS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            self._check(node, node.args[0], node.args[1].value, f"{node.func.id}()s")
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "sbi" and any(map(_is_private, alias.name.split("."))):
                self._use(node, alias.name, "imports")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module.split(".")[0] != "sbi":
            return
        if any(map(_is_private, module.split("."))):
            self._use(node, module, "imports from")
        for alias in node.names:
            if _is_private(alias.name):
                self._use(node, f"{module}.{alias.name}", "imports")


def scan(module: Module, strict: bool = False) -> list[Use]:
    scanner = _Scanner(module, strict)
    scanner.visit(module.tree)
    return scanner.uses


def uses_outside_the_seam() -> Iterator[Use]:
    for module in project_modules().values():
        if module.path != SEAM:
            yield from scan(module)


# ------------------------------------------------------------------------------- part one


def test_the_introspected_names_are_the_ones_we_mean() -> None:
    names = all_sbi_private_names()
    for name in ("_neural_net", "_build_neural_net", "_run_training_loop", "_train_epoch"):
        assert name in names
    for name in ("_validate_epoch", "_loss", "_resolve_prior", "_x_shape", "_device"):
        assert name in names
    assert "_parameters" not in names and "_abc_impl" not in names  # torch's and abc's


def test_no_private_sbi_name_outside_the_seam() -> None:
    uses = sorted(uses_outside_the_seam(), key=str)
    assert not uses, (
        "private sbi names used outside platform/sbiplug/sbi_internals.py; go through the "
        "seam (add an accessor or hook there if it lacks one):\n"
        + "\n".join(f"  {use}" for use in uses)
    )


def test_the_scan_sees_through_plugin_classes() -> None:
    """The plugin trainers are recognised as sbi classes, so the scan checks them for real."""
    modules = project_modules()
    expected = {
        "sbiplug_cmpe.trainer": ("CMPE", "PosteriorEstimatorTrainer"),
        "sbiplug_fff.estimator": ("ManifoldNPE", "NPE_C"),  # sbi.inference.NPE is NPE_C
        "sbiplug_misspec.estimator": ("NPEMMD", "NPE_C"),
        "sbiplug_cmpe.estimator": ("ConsistencyEstimator", "ConditionalDensityEstimator"),
    }
    for module_name, (class_name, sbi_name) in expected.items():
        module = modules[module_name]
        names = {cls.__name__ for cls in sbi_ancestors(module, module.classes[class_name])}
        assert sbi_name in names, (module_name, class_name, names)


def test_the_scan_flags_what_it_should_and_nothing_else(tmp_path: Path) -> None:
    source = """
from sbi.inference import NPE
from sbi.inference.trainers._contracts import TrainConfig   # flagged
import sbi.utils


class Mine:
    def __init__(self):
        self._prior = None            # our own attribute: not flagged
        self._neural_net = None       # a plain class may name things as it likes

    def go(self, trainer):
        return trainer._neural_net    # an sbi trainer's private slot: flagged


class Trainer(NPE):
    def _train_epoch(self, *args):    # overrides sbi's private method: flagged
        self._schedule = None         # not an sbi name: not flagged
        return super()._train_epoch(*args)   # flagged


def peek(trainer):
    sbi.utils._private_helper         # a private attribute of an sbi module: flagged
    return getattr(trainer, "_build_neural_net")   # flagged
"""
    path = ROOT / "plugins" / "sbiplug-example" / "sbiplug_example" / "probe.py"
    tree = ast.parse(source)
    module = Module(
        "sbiplug_example.probe",
        path,
        tree,
        _imports(tree, "sbiplug_example.probe", False),
        {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)},
    )
    found = sorted((use.line, use.name) for use in scan(module))
    lines = source.splitlines()
    flagged = sorted(
        (number, name)
        for number, name in found
        if "flagged" in lines[number - 1] and "not flagged" not in lines[number - 1]
    )
    assert found == flagged
    assert {name for _, name in found} == {
        "sbi.inference.trainers._contracts",
        "_neural_net",
        "_train_epoch",
        "_private_helper",
        "_build_neural_net",
    }
    assert len(found) == 6


# ------------------------------------------------------------------------------- part two


def test_the_seam_declares_every_private_name_it_uses() -> None:
    seam = next(m for m in project_modules().values() if m.path == SEAM)
    declared = {name for names in SBI_PRIVATE_API.values() for name in names}
    declared |= set(SBI_PRIVATE_API)  # the private modules themselves
    used = {use.name for use in scan(seam, strict=True)}
    assert used, "the scan found nothing in the seam: it is broken"
    assert used <= declared, f"undeclared in SBI_PRIVATE_API: {sorted(used - declared)}"


@pytest.mark.parametrize("owner", sorted(SBI_PRIVATE_API))
def test_every_declared_private_name_exists_in_the_installed_sbi(owner: str) -> None:
    value = _sbi_object(owner)
    assert value is not None, f"sbi has no {owner} any more"
    if inspect.ismodule(value):
        missing = [name for name in SBI_PRIVATE_API[owner] if not hasattr(value, name)]
    else:
        missing = [name for name in SBI_PRIVATE_API[owner] if name not in sbi_private_names(value)]
    assert not missing, f"the installed sbi's {owner} lacks {missing}: update sbiplug.sbi_internals"


@pytest.mark.parametrize("method", sorted(SBI_PRIVATE_SIGNATURES))
def test_overridden_private_methods_keep_their_parameters(method: str) -> None:
    owner, _, name = method.rpartition(".")
    function = getattr(_sbi_object(owner), name, None)
    assert function is not None, f"sbi has no {method} any more"
    parameters = tuple(inspect.signature(function).parameters)
    assert parameters == SBI_PRIVATE_SIGNATURES[method], (
        f"{method} changed its parameters to {parameters}: update sbiplug.sbi_internals"
    )


# ------------------------------------------------------------- the seam against real sbi

PRIOR = BoxUniform(-torch.ones(2), torch.ones(2))
TRAIN = {"max_num_epochs": 2, "stop_after_epochs": 100, "training_batch_size": 20}


def _simulations(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    theta = PRIOR.sample((120,))
    return theta, theta + 0.1 * torch.randn(theta.shape)


def _builder():
    return posterior_nn("mdn", hidden_features=8, num_components=2)


def _options() -> dict:
    return {"prior": PRIOR, "show_progress_bars": False, "tracker": NullTracker()}


class HookedNPE(TrainingHooks, NPE):
    """NPE with the default hooks, recording when each one runs."""

    def __init__(self, **kwargs) -> None:
        self.calls: list = []
        super().__init__(**kwargs)

    def on_network_built(self, network):
        self.calls.append(("built", network is trained_network(self)))

    def on_train_start(self, train_config, train_loader):
        self.calls.append(("start", train_config.max_num_epochs, len(train_loader)))

    def train_epoch(self, train_loader, clip_max_norm, loss_args):
        self.calls.append("train")
        return super().train_epoch(train_loader, clip_max_norm, loss_args)

    def validate_epoch(self, val_loader, loss_args):
        self.calls.append("validate")
        return super().validate_epoch(val_loader, loss_args)

    def training_losses(self, batch, loss_args):
        network = trained_network(self)
        self.calls.append(("train_loss", network.training, torch.is_grad_enabled()))
        return super().training_losses(batch, loss_args)

    def validation_losses(self, batch, loss_args):
        network = trained_network(self)
        self.calls.append(("validation_loss", network.training, torch.is_grad_enabled()))
        return super().validation_losses(batch, loss_args)


def _train(cls, seed: int = 0):
    theta, x = _simulations()
    torch.manual_seed(seed)
    trainer = cls(density_estimator=_builder(), **_options())
    network = trainer.append_simulations(theta, x).train(**TRAIN)
    return trainer, network


def test_default_hooks_train_exactly_as_sbi_does() -> None:
    plain, plain_network = _train(NPE)
    hooked, hooked_network = _train(HookedNPE)
    assert hooked_network is trained_network(hooked)
    assert plain_network is trained_network(plain)
    before, after = plain_network.state_dict(), hooked_network.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert plain.summary["validation_loss"] == hooked.summary["validation_loss"]


def test_hooks_run_in_order_in_the_right_mode() -> None:
    trainer, _ = _train(HookedNPE)
    calls = trainer.calls
    assert calls[0] == ("built", True)
    assert calls[1][:2] == ("start", TRAIN["max_num_epochs"])
    batches, epochs = calls[1][2], TRAIN["max_num_epochs"] + 1  # sbi runs epochs 0..max
    assert [c for c in calls if c in ("train", "validate")] == ["train", "validate"] * epochs
    # training batches: training mode with gradients; validation: eval mode, no gradients
    # (where the default validation_losses asks training_losses for sbi's loss)
    training = [c for c in calls[2:] if c[0] == "train_loss" and c[1]]
    assert training == [("train_loss", True, True)] * (batches * epochs)
    validation = [c for c in calls if c[0] == "validation_loss"]
    assert validation and set(validation) == {("validation_loss", False, False)}
    inner = [c for c in calls if c[0] == "train_loss" and not c[1]]
    assert inner == [("train_loss", False, False)] * len(validation)
    # resuming keeps the network: no second "built"
    trainer.calls.clear()
    trainer.train(**{**TRAIN, "max_num_epochs": 3}, resume_training=True)
    assert not [c for c in trainer.calls if c[0] == "built"]
    trainer.train(**TRAIN, retrain_from_scratch=True, force_first_round_loss=True)
    assert [c for c in trainer.calls if c[0] == "built"] == [("built", True)]


class SampleOnly(SingleRoundPosteriorTrainer):
    """A single-round trainer that skips sbi's log_prob probe of a new network."""

    probe_new_network = False

    def __init__(self, **kwargs) -> None:
        self.built: list = []
        super().__init__(**kwargs)

    def on_network_built(self, network):
        self.built.append(network)


def test_single_round_base_builds_without_the_probe_and_trains() -> None:
    theta, x = _simulations()
    trainer = SampleOnly(density_estimator=_builder(), **_options())
    network = trainer.append_simulations(theta, x).train(**TRAIN)
    assert trainer.built == [network] and network is trained_network(trainer)
    assert tuple(network.input_shape) == (2,)
    samples = trainer.build_posterior().sample((5,), x=x[0], show_progress_bars=False)
    assert samples.shape == (5, 2)


def test_network_accessors_rebuild_and_install_a_trained_network() -> None:
    trainer, network = _train(NPE)
    theta, x = _simulations()
    assert is_trainer(trainer) and not is_trainer(network) and not is_trainer(object())
    assert trained_network(NPE(density_estimator=_builder(), **_options())) is None
    fresh = NPE(density_estimator=_builder(), **_options())
    rebuilt = build_network(fresh, theta[:64], x[:64])
    assert type(rebuilt) is type(network) and rebuilt is not network
    rebuilt.load_state_dict(network.state_dict())
    install_network(fresh, rebuilt.eval(), x.shape[1:])
    assert trained_network(fresh) is rebuilt
    draws = PRIOR.sample((7,))
    # norm_posterior=False: the leakage correction is a Monte-Carlo estimate
    expected = trainer.build_posterior().log_prob(draws, x=x[0], norm_posterior=False)
    found = fresh.build_posterior().log_prob(draws, x=x[0], norm_posterior=False)
    assert torch.equal(found, expected)

    calls = []

    def builder(theta, x):
        calls.append((tuple(theta.shape), tuple(x.shape)))
        return _builder()(theta, x)

    set_network_builder(fresh, builder)
    build_network(fresh, theta[:10], x[:10])
    assert calls == [((10, 2), (10, 2))]


def test_trainer_state_accessors_match_the_options() -> None:
    trainer, network = _train(NPE)
    assert str(trainer_device(trainer)) == "cpu"
    assert trainer_prior(trainer) is PRIOR
    assert shows_progress_bars(trainer) is False
    assert resolve_prior(trainer, None) is PRIOR
    other = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
    assert resolve_prior(trainer, other) is other
    estimator, device = resolve_estimator(trainer, None)
    assert estimator is network and str(device) == "cpu"
    with pytest.raises(TypeError, match="ConditionalEstimator"):
        resolve_estimator(trainer, torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="prior"):
        resolve_prior(NPE(prior=None, show_progress_bars=False, tracker=NullTracker()), None)
    posterior = trainer.build_posterior()
    set_latest_posterior(trainer, posterior)  # no public reader in sbi; it must not raise
    set_posterior_purpose(posterior, "It is a test.")
    assert str(posterior).endswith("It is a test.")


def test_estimator_shape_helpers_are_sbis_checks() -> None:
    _, network = _train(NPE)
    check_condition_shape(network, torch.zeros(4, 2))
    check_input_shape(network, torch.zeros(3, 4, 2))
    with pytest.raises(ValueError, match="condition"):
        check_condition_shape(network, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="input"):
        check_input_shape(network, torch.zeros(4, 5))
    inputs, conditions, batch = broadcast_and_align(network, torch.zeros(4, 2), torch.zeros(4, 2))
    assert inputs.shape == (1, 4, 2) and conditions.shape == (1, 4, 2) and batch == 4
    inputs, conditions, batch = broadcast_and_align(
        network, torch.zeros(3, 1, 2), torch.zeros(5, 2)
    )
    assert inputs.shape == (3, 5, 2) and conditions.shape == (3, 5, 2) and batch == 5
