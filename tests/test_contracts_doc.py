"""docs/CONTRACTS.md names only code that exists.

The contributor contracts cite files (`skywork_rl/stages/base.py`), dotted names
(`skywork_rl.plugins.load_plugins`), import paths (`data_prep.stages:CleanStage`), classes and calls
(`TrainingStage`, `run_stage(stage, force=False)`), recipe keys (`training.resume_from_checkpoint`) and
decorators. Each backticked one that looks like code is checked against the source, read statically
(nothing is imported, so the check takes seconds, not a torch import): a doc that describes a decorator
or a module that is gone fails here instead of misleading the next contributor. Plain words (a stage
name, a value) and what a run writes (`stage.json`, metric names with a slash) are not checked.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "CONTRACTS.md"
PACKAGES = ("skywork_rl", "data_prep", "eval", "tests", "benchmarks")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_SPAN = re.compile(r"``(.+?)``|`([^`]+)`", re.S)
_PATH = re.compile(r"[\w.\-/]+")
_SOURCE_SUFFIXES = (".py", ".toml", ".yaml", ".yml", ".md", ".cfg")
_RUN_FILE = re.compile(r"[\w.\-]*\.(json|jsonl|log|pt|arrow|parquet|safetensors|png|txt)")  # `stage.json`
_HEAD = re.compile(r"(@?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?::([A-Za-z_]\w*))?(\(?)")


@dataclass
class Definitions:
    """What the project's code defines or imports, by name and by module."""

    defined: set[str] = field(default_factory=set)  # functions, classes, assigned names and attributes
    imported: set[str] = field(default_factory=set)  # names bound by an import somewhere
    decorators: set[str] = field(default_factory=set)  # names used as `@name` / `@name(...)`
    strings: set[str] = field(default_factory=set)  # string constants (environment variable names ...)
    used: set[str] = field(default_factory=set)  # parameters and attributes read (TRL's `log_metric` ...)
    modules: dict[str, set[str]] = field(default_factory=dict)  # module -> its top-level names
    classes: dict[str, set[str]] = field(default_factory=dict)  # "module.Class" -> names in its body


def _decorator_name(node: ast.expr) -> str | None:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else None


def _bound_names(node: ast.AST) -> Iterable[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    yield sub.id
                elif isinstance(sub, ast.Attribute):
                    yield sub.attr
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            yield (alias.asname or alias.name).split(".")[0]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def collect_definitions(root: Path, packages: Iterable[str] = PACKAGES) -> Definitions:
    """Parse every module of `packages` under `root`."""
    found = Definitions()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "fixtures" in path.parts:
                continue
            tree = ast.parse(path.read_text(), str(path))
            module = _module_name(path, root)
            found.modules[module] = {n for node in tree.body for n in _bound_names(node)}
            for node in ast.walk(tree):
                names = set(_bound_names(node))
                bucket = found.imported if isinstance(node, (ast.Import, ast.ImportFrom)) else found.defined
                bucket |= names
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    found.decorators |= {n for d in node.decorator_list if (n := _decorator_name(d))}
                if isinstance(node, ast.arg):
                    found.used.add(node.arg)
                elif isinstance(node, ast.Attribute):
                    found.used.add(node.attr)
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.strings.add(node.value)
                if isinstance(node, ast.ClassDef):
                    body = {n for sub in ast.walk(node) for n in _bound_names(sub)}
                    found.classes[f"{module}.{node.name}"] = body
    return found


def cited_spans(markdown: str) -> list[str]:
    """The inline code spans of `markdown` (fenced blocks left out)."""
    text = _FENCE.sub("", markdown)
    return [" ".join((a or b).split()) for a, b in _SPAN.findall(text)]


def _check_path(span: str, root: Path) -> str | None:
    """A repository path must exist; a `.py` file is cited by its path from the repo root."""
    if not span.endswith(_SOURCE_SUFFIXES) and not (root / span.split("/")[0]).exists():
        return None  # a metric (`rewards/accuracy/failures`) or a run's folder, not a repo path
    if not (root / span.rstrip("/")).exists():
        return f"`{span}`: no such file or folder in the repository (cite it by its path from the repo root)"
    return None


def _resolve_dotted(name: str, found: Definitions) -> str | None:
    """Resolve `pkg.module.attr.attr` statically; None when it resolves, else what is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        is_package_dir = cut == 1 and parts[0] in PACKAGES
        if module in found.modules or is_package_dir:
            rest = parts[cut:]
            break
    else:
        return f"no module {name}"
    if not rest:
        return None
    if is_package_dir and module not in found.modules:
        return None if ".".join(parts[:2]) in found.modules else f"no module {'.'.join(parts[:2])}"
    if rest[0] not in found.modules[module]:
        return f"{module} defines no {rest[0]!r}"
    owner = f"{module}.{rest[0]}"
    for attr in rest[1:]:
        body = found.classes.get(owner)
        if body is None:
            return None  # an imported (re-exported) name or an instance: not followed further
        if attr not in body:
            return f"{owner} has no attribute {attr!r}"
        owner = f"{owner}.{attr}"
    return None


def check_span(span: str, found: Definitions, root: Path) -> str | None:
    """What is wrong with one cited span, or None."""
    if _PATH.fullmatch(span) and ("/" in span or span.endswith(_SOURCE_SUFFIXES)):
        return _check_path(span, root)
    if "/" in span and not (root / span.split("/")[0]).exists():
        return None  # a metric (`final_eval/*`) or a run's folder, not a repo path
    if _RUN_FILE.fullmatch(span):
        return None  # a file a run writes, not one of the repository
    head = _HEAD.match(span)
    if head is None:
        return None
    at, dotted, attr, call = head.groups()
    parts = dotted.split(".")
    if at:
        ok = parts[-1] in found.decorators
        return None if ok else f"`{span}`: nothing in the code is decorated with @{parts[-1]}"
    if parts[0] in PACKAGES and (len(parts) > 1 or attr):
        problem = _resolve_dotted(dotted + (f".{attr}" if attr else ""), found)
        return f"`{span}`: {problem}" if problem else None
    looks_like_code = call or parts[0][:1].isupper() or len(parts) > 1 or "_" in dotted.strip("_")
    if not looks_like_code:
        return None  # a plain word: a stage name, a value
    if parts[0] in found.imported and parts[0].islower() and len(parts) > 1:
        return None  # an attribute of a third-party module the code imports (`torch.save`)
    if span.isupper() and span in found.strings:
        return None  # an environment variable the code reads (`WORLD_SIZE`)
    known = found.defined | found.imported | set(dir(builtins))
    if parts[0][:1].isupper() or call:
        missing = [p for p in parts if p not in known]
    elif len(parts) > 1:  # a recipe key (`training.max_steps`): each level is a config field somewhere
        missing = [p for p in parts if p not in found.defined]
    else:  # a function, a field, or a name the code writes (a column, a metric, a reason)
        missing = [p for p in parts if p not in known | found.strings | found.used]
    return f"`{span}`: the code defines no {missing}" if missing else None


@cache
def _project() -> Definitions:
    return collect_definitions(REPO)


def test_every_name_contracts_md_cites_exists() -> None:
    spans = cited_spans(DOC.read_text())
    assert len(spans) > 100  # the doc really is read
    problems = sorted({p for span in spans if (p := check_span(span, _project(), REPO))})
    assert not problems, "docs/CONTRACTS.md cites code that does not exist:\n" + "\n".join(problems)


def test_the_check_reports_a_missing_file_module_attribute_class_decorator_and_key() -> None:
    doc = (
        "`skywork_rl/stages/nothing.py` `skywork_rl.stages.base.run_stages` `skywork_rl.nothing` "
        "`data_prep.stages:NoStage` `Stage.no_such_key` `NoSuchStage` `@register_stage` "
        "`training.no_such_field` `no_such_function(x)` `no_such_helper`\n```\n`skywork_rl/fenced.py`\n```\n"
        "`skywork_rl/stages/base.py` `skywork_rl.stages.base.Stage.report_keys` `data_prep.stages:CleanStage` "
        "`TrainingStage` `@dataclass` `training.resume_from_checkpoint` `run_stage(stage, force=True)` "
        "`stage.json` `rewards/<name>/failures` `sft`"
    )
    problems = [check_span(span, _project(), REPO) for span in cited_spans(doc)]
    assert [p is not None for p in problems] == [True] * 10 + [False] * 10, problems
