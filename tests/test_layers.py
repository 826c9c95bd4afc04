"""Layers: the core (`skywork_rl`) never depends on the packages built on it (`data_prep`, `eval`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ("data_prep", "eval")
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
