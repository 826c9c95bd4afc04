"""Layers: imports go one way, with no circle (docs/ARCHITECTURE.md draws them).

- The core (`skywork_rl`) never depends on the packages built on it (`data_prep`, `eval`).
- No import circle between first-party modules, imports made inside functions included (only
  ``if TYPE_CHECKING:`` imports, which never run, are left out).
- Each package of the core imports only its own layer and the layers below (`LAYERS`).
- A first-party import inside a function defers a heavy dependency and says which (``# defers X``).
- `skywork_rl/` holds at most 15 top-level modules (packages included).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ("data_prep", "eval")
FIRST_PARTY = ("skywork_rl", *CLIENTS)
MAX_TOP_LEVEL = 15
# Bottom to top: a module imports modules of its own layer or of a layer below, never above. A
# module belongs to the layer of its longest matching prefix (`skywork_rl.runner.pipeline`, the
# `run` command, sits above preflight, which reads the plan of `skywork_rl.runner.plan`).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("skywork_rl", "skywork_rl.errors", "skywork_rl.records", "skywork_rl.plugins", "skywork_rl.scorers"),
    ("skywork_rl.data", "skywork_rl.families"),
    ("skywork_rl.generation",),
    ("skywork_rl.rewards",),
    ("skywork_rl.miniature",),
    ("skywork_rl.callbacks", "skywork_rl.trainers"),
    ("skywork_rl.stages",),
    ("skywork_rl.runner",),
    ("skywork_rl.preflight",),
    ("skywork_rl.runner.pipeline", "skywork_rl.cli"),
    ("data_prep",),
    ("eval",),
)
# "module:attr" strings are imports the registries perform later (stage and command tables)
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _imported_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] if node.level == 0 else []  # relative: inside the same package
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0] if node.args else None
        if name in _DYNAMIC_IMPORTS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            return [first.value]
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _IMPORT_PATH.fullmatch(node.value):
        return [node.value.partition(":")[0]]
    return []


def backward_references(source: str, filename: str) -> list[str]:
    """``file:line: module`` for every reference from `source` to a client package, at any depth
    (module level, inside functions and classes, dynamic imports, ``module:attr`` strings)."""
    found = [
        (node.lineno, name)
        for node in ast.walk(ast.parse(source, filename))
        for name in _imported_names(node)
        if name.split(".")[0] in CLIENTS
    ]
    return [f"{filename}:{line}: {name}" for line, name in sorted(found)]


def test_the_core_never_imports_data_prep_or_eval() -> None:
    modules = sorted((REPO_ROOT / "skywork_rl").rglob("*.py"))
    assert len(modules) > 30  # the walk really covers the package
    found = [
        ref
        for path in modules
        for ref in backward_references(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    assert not found, "the core must not depend on its clients (register through skywork_rl.plugins):\n" + (
        "\n".join(found)
    )


def test_the_import_walk_finds_imports_inside_functions_dynamic_imports_and_import_paths() -> None:
    source = (
        "import json\n"
        "from skywork_rl.data.schema import user_prompt\n"
        "def f():\n"
        "    from data_prep.stages import CleanStage\n"
        "class C:\n"
        "    def g(self):\n"
        "        import eval.benchmarks as b\n"
        "importlib.import_module('eval.select')\n"
        "TABLE = {'clean': 'data_prep.stages:CleanStage', 'sft': 'skywork_rl.stages.sft:SFTStage'}\n"
        "TEXT = 'an evaluation: see data_prep'\n"
    )
    assert backward_references(source, "x.py") == [
        "x.py:4: data_prep.stages",
        "x.py:7: eval.benchmarks",
        "x.py:8: eval.select",
        "x.py:9: data_prep.stages",
    ]


@dataclass(frozen=True)
class Import:
    line: int
    target: str  # the first-party module imported (the deepest one the dotted name names)
    in_function: bool
    comment: str  # the comment on the import's last line ("" when none)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _first_party_modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    return {
        _module_name(path, root): path
        for package in FIRST_PARTY
        for path in sorted((root / package).rglob("*.py"))
    }


def _resolve(name: str, modules: dict[str, Path] | set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def module_imports(
    source: str, module: str, modules: dict[str, Path] | set[str], is_package: bool = False
) -> list[Import]:
    """Every first-party module `source` imports when it runs: at module level, in class bodies and
    inside functions (``in_function``); relative imports resolved; ``if TYPE_CHECKING:`` left out."""
    lines = source.splitlines()
    found: list[Import] = []

    def walk(node: ast.AST, in_function: bool) -> Iterator[None]:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                continue
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - (child.level - 1)]
                    base = ".".join([*package, *([child.module] if child.module else [])])
                names = [base] + [f"{base}.{alias.name}" for alias in child.names]
            targets = {_resolve(name, modules) for name in names if name.split(".")[0] in FIRST_PARTY}
            last = lines[child.end_lineno - 1] if names else ""
            comment = last.partition("#")[2].strip() if "#" in last else ""
            # `from pkg import mod` names the submodule; `from pkg.mod import name` the module only
            for target in sorted(t for t in targets if t and t != module):
                if any(t != target and t.startswith(target + ".") for t in targets if t):
                    continue
                found.append(Import(child.lineno, target, inside, comment))
            yield from walk(child, inside)

    for _ in walk(ast.parse(source), False):
        pass
    return found


def import_graph(root: Path = REPO_ROOT) -> dict[str, dict[str, list[str]]]:
    """``{module: {imported module: ["file:line", ...]}}`` over the first-party packages."""
    modules = _first_party_modules(root)
    graph: dict[str, dict[str, list[str]]] = {}
    for name, path in modules.items():
        where = str(path.relative_to(root))
        for imp in module_imports(path.read_text(), name, modules, path.name == "__init__.py"):
            graph.setdefault(name, {}).setdefault(imp.target, []).append(f"{where}:{imp.line}")
    return graph


def circles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, dict[str, list[str]]]) -> list[str]:
    return [
        f"{where}: {module} imports {target} (layer {layer_of(target)} is above layer {layer_of(module)})"
        for module, targets in sorted(graph.items())
        for target, places in sorted(targets.items())
        for where in places
        if layer_of(module) is not None
        and layer_of(target) is not None
        and layer_of(target) > layer_of(module)
    ]


def test_no_import_circle_between_first_party_modules() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the walk really covers skywork_rl, data_prep and eval
    found = circles(graph)
    detail = [
        f"  {module} -> {target} ({', '.join(graph[module][target])})"
        for circle in found
        for module in circle
        for target in graph.get(module, {})
        if target in circle
    ]
    assert not found, "import circles (move the shared part down a layer):\n" + "\n".join(detail)


def test_the_circle_finder_sees_imports_inside_functions_and_ignores_type_checking_ones() -> None:
    modules = {"skywork_rl.a", "skywork_rl.b", "skywork_rl.c", "skywork_rl.pkg", "skywork_rl.pkg.d"}
    sources = {
        "skywork_rl.a": "from skywork_rl.b import x\n",
        "skywork_rl.b": "def f():\n    from skywork_rl import a  # defers nothing\n",
        "skywork_rl.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from skywork_rl.a import y\n",
        "skywork_rl.pkg.d": "from . import d2\nfrom ..c import z\n",
    }
    graph = {
        name: {imp.target: [str(imp.line)] for imp in module_imports(text, name, modules)}
        for name, text in sources.items()
    }
    assert graph["skywork_rl.c"] == {}
    assert graph["skywork_rl.pkg.d"] == {"skywork_rl.pkg": ["1"], "skywork_rl.c": ["2"]}
    assert circles(graph) == [["skywork_rl.a", "skywork_rl.b"]]
    [inner] = module_imports(sources["skywork_rl.b"], "skywork_rl.b", modules)
    assert inner.in_function and inner.comment == "defers nothing"


def test_each_package_imports_only_its_layer_and_those_below() -> None:
    graph = import_graph()
    unplaced = sorted(m for m in graph if layer_of(m) is None)
    assert not unplaced, f"modules in no layer of LAYERS (add their package): {unplaced}"
    found = upward_imports(graph)
    assert not found, "imports against the layers (docs/ARCHITECTURE.md):\n" + "\n".join(found)


def test_the_layer_check_refuses_an_import_from_below() -> None:
    assert (
        layer_of("skywork_rl.runner.pipeline")
        > layer_of("skywork_rl.preflight.command")
        > layer_of("skywork_rl.runner.plan")
    )
    graph = {"skywork_rl.stages.base": {"skywork_rl.runner.plan": ["skywork_rl/stages/base.py:3"]}}
    assert upward_imports(graph) == [
        "skywork_rl/stages/base.py:3: skywork_rl.stages.base imports skywork_rl.runner.plan "
        "(layer 7 is above layer 6)"
    ]


def test_first_party_imports_inside_functions_name_the_heavy_dependency_they_defer() -> None:
    modules = _first_party_modules()
    found = [
        f"{path.relative_to(REPO_ROOT)}:{imp.line}: {imp.target}"
        for name, path in modules.items()
        for imp in module_imports(path.read_text(), name, modules, path.name == "__init__.py")
        if imp.in_function and not imp.comment.startswith("defers ")
    ]
    assert not found, (
        "first-party imports inside functions: import at module level, or, when the import defers a heavy "
        "dependency (torch, transformers, vllm, ...), say so on its line (`# defers torch`):\n"
        + "\n".join(found)
    )


def test_skywork_rl_has_at_most_15_top_level_modules() -> None:
    root = REPO_ROOT / "skywork_rl"
    top = sorted(
        p.name
        for p in root.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())
    )
    assert len(top) <= MAX_TOP_LEVEL, (
        f"skywork_rl/ has {len(top)} top-level modules (at most {MAX_TOP_LEVEL}): {top}"
    )
