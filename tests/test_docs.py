"""README.md is a front door and docs/ holds the reference; every name, link and command they show exists.

The README stays short (at most 250 lines) and links every page of docs/; each link, anchors included,
resolves. Every backticked name in the README and the docs pages is checked against the source as
tests/test_contracts_doc.py checks docs/CONTRACTS.md, read statically (nothing imported), with what a
user's page cites besides: TRL's and transformers' config fields (`training.report_to`), environment
settings (`SKYWORK_RL_DEBUG=1`), files by their bare name, and names the code only mentions (a model's
parameter names in the part patterns). Every command shown (`skywork-rl ...`, `python benchmarks/...`,
`python -m ...`, `accelerate launch ...`) names a real command, stage, script, module, option and
repository file. A page that cites a renamed module, a removed option or a moved recipe fails here.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import pytest
from test_contracts_doc import REPO, Definitions, _project, check_span, cited_spans

README = REPO / "README.md"
DOCS = REPO / "docs"
MAX_README_LINES = 250
FIRST_PARTY = ("skywork_rl", "data_prep", "eval", "benchmarks")
# Pages other sessions of issue 24 write; the README links them already. A link to one resolves once
# the page exists: then this entry must go (the test below says so), so no missing page hides here.
PENDING_PAGES = {}
# Names a page cites that live outside this repository and outside what the checks below can read.
EXTERNAL = {
    "AutoModel": "transformers' class that remote-code checkpoints map",
    "zero.Init": "DeepSpeed's partitioned construction",
    "multi_gpu": "a named accelerate config TRL ships",
    "normalize_extracted_answer": "MathVista's upstream function, ported",
    "auto_scoring_judge.py": "OlympiadBench's upstream judge, ported",
    "acelerate_config:": "the README's example of a misspelt key",
    "N checked, M unchecked": "the shape of preflight's last line",
    "../shared/data": "the shared data folder beside the checkout, used when present",
}
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.M)
_ENV = re.compile(r"([A-Z][A-Z0-9_]+)=\S+")
_COMMAND_START = ("skywork-rl ", "python ", "accelerate launch ")


def user_pages() -> list[Path]:
    """README.md and every docs page but CONTRACTS.md (tests/test_contracts_doc.py checks that one)."""
    return [README, *sorted(p for p in DOCS.glob("*.md") if p.name != "CONTRACTS.md")]


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _without_fences(markdown: str) -> str:
    return _FENCE.sub("", markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def link_problems(page: Path, markdown: str, root: Path = REPO) -> list[str]:
    """Each relative link of `markdown` (written in `page`) that does not resolve, file and anchor."""
    problems = []
    for target in _LINK.findall(_without_fences(markdown)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        name = str(dest.relative_to(root)) if dest.is_relative_to(root) else str(dest)
        if path_part and not dest.exists():
            if name not in PENDING_PAGES:
                problems.append(f"{_rel(page)}: link {target!r}: no such file {name}")
            continue
        if anchor and dest.suffix == ".md":
            text = markdown if dest == page else dest.read_text()
            anchors = {slug(h) for h in _HEADING.findall(_without_fences(text))}
            if anchor not in anchors:
                problems.append(f"{_rel(page)}: link {target!r}: {name} has no heading #{anchor}")
    return problems


@cache
def _tracked_names() -> frozenset[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return frozenset(Path(line).name for line in out.splitlines())


@cache
def _third_party_fields() -> frozenset[str]:
    """Field names of TRL's trainer configs and transformers' TrainingArguments, read from their source."""
    fields: set[str] = set()
    for package, pattern in (("trl", "trainer/*config*.py"), ("transformers", "training_args.py")):
        spec = find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
        for path in Path(next(iter(spec.submodule_search_locations))).glob(pattern):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    fields |= {
                        s.target.id
                        for s in node.body
                        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                    }
    return frozenset(fields)


@cache
def _source_text() -> str:
    """The text of every first-party source file, regex escapes undone (`visual\\.merger` reads as `visual.merger`)."""
    parts = []
    for package in (*FIRST_PARTY, "recipes"):
        for path in sorted((REPO / package).rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml") and "fixtures" not in path.parts:
                parts.append(path.read_text())
    return "\n".join(parts).replace("\\.", ".")


def check_user_span(span: str, found: Definitions, root: Path = REPO) -> str | None:
    """What is wrong with one span a user's page cites, or None (see the module docstring)."""
    if span in EXTERNAL or (root / span).exists():
        return None
    if env := _ENV.fullmatch(span):
        ok = env.group(1) in found.strings
        return None if ok else f"`{span}`: the code reads no environment variable {env.group(1)}"
    if "/" not in span and re.fullmatch(r"[\w.\-]+\.(py|yaml|yml|md|toml|cfg)", span):
        return None if span in _tracked_names() else f"`{span}`: no file of that name in the repository"
    problem = check_span(span, found, root)
    if problem is None or span.split(".")[0].split("/")[0] in FIRST_PARTY:
        return problem
    head = re.match(r"[\w.]+", span)
    parts = head.group().split(".") if head else []
    if len(parts) > 1 and all(p in found.defined or p in _third_party_fields() for p in parts):
        return None  # a recipe key whose last level is TRL's or transformers' (`training.report_to`)
    if re.search(rf"(?<!\w){re.escape(span)}(?![\w])", _source_text()):
        return None  # a name the code mentions: a model's parameter, a TRL key it sets
    return problem


def command_lines(markdown: str) -> list[str]:
    """The commands a page shows: lines of its bash blocks (continuations joined) and inline commands."""
    commands = []
    for lang, body in _FENCE.findall(markdown):
        if lang not in ("bash", "sh", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith(_COMMAND_START):
                commands.append(line)
    commands += [s for s in cited_spans(markdown) if s.startswith(_COMMAND_START)]
    return commands


@cache
def _cli_names() -> tuple[frozenset[str], frozenset[str]]:
    from skywork_rl.cli import COMMANDS
    from skywork_rl.plugins import plugin_commands
    from skywork_rl.stages.registry import registered_stages

    return frozenset(COMMANDS) | frozenset(plugin_commands()), frozenset(registered_stages())


def _module_exists(module: str) -> bool:
    path = REPO.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def command_problems(command: str, found: Definitions, root: Path = REPO) -> list[str]:
    """What is wrong with one shown command: an unknown command, stage, script, module, option or path."""
    try:
        tokens = [t.strip("[]") for t in shlex.split(command)]
    except ValueError:
        return [f"{command!r}: does not parse as a shell command"]
    tokens = [t for t in tokens if t and t != "..."]
    if len(tokens) < 2 or tokens[1] == "-":
        return []  # `python -`: a script read from stdin
    problems: list[str] = []
    commands, stages = _cli_names()
    if tokens[:2] == ["accelerate", "launch"]:
        if "-m" not in tokens:
            return [f"{command!r}: accelerate launch without -m MODULE"]
        module_at = tokens.index("-m")
        problems += _option_problems(command, tokens[2:module_at], found, root, first_party=False)
        tokens = ["python", *tokens[module_at:]]
    if tokens[0] == "python" and tokens[1:3] == ["-m", "skywork_rl.cli"]:
        tokens = ["skywork-rl", *tokens[3:]]
    if tokens[0] == "skywork-rl":
        if tokens[1:] in (["--help"], ["-h"]):
            return problems
        if len(tokens) < 2 or tokens[1] not in commands:
            return [*problems, f"{command!r}: skywork-rl has no command {tokens[1:2]}"]
        name = tokens[2] if tokens[1] == "stage" and len(tokens) > 2 else "--help"
        if name not in stages and name not in ("-h", "--help") and not name.isupper():  # NAME: a placeholder
            problems.append(f"{command!r}: no stage {name!r} is registered")
    elif tokens[0] == "python" and tokens[1] == "-m":
        if tokens[2].split(".")[0] not in FIRST_PARTY:
            return problems  # pytest, venv: not ours
        if not _module_exists(tokens[2]):
            problems.append(f"{command!r}: no module {tokens[2]}")
    elif tokens[0] == "python" and not (root / tokens[1]).is_file():
        problems.append(f"{command!r}: no script {tokens[1]}")
    return problems + _option_problems(command, tokens[1:], found, root, first_party=True)


def _option_problems(
    command: str, tokens: list[str], found: Definitions, root: Path, first_party: bool
) -> list[str]:
    problems = []
    top_level = {p.name for p in root.iterdir()}
    for token in tokens:
        if token.startswith("--") and first_party:
            option = token.split("=")[0]
            if "." in option:  # a recipe key: each level a config field (ours or TRL's)
                missing = [p for p in option[2:].split(".") if p not in found.defined | _third_party_fields()]
                if missing:
                    problems.append(f"{command!r}: option {option}: no config field {missing}")
            elif option not in found.strings and option[2:] not in found.defined:
                problems.append(f"{command!r}: no command reads the option {option}")
        elif (
            "/" in token
            and token.split("/")[0] in top_level
            and not re.search(r"[*<>$]", token)
            and not (root / token).exists()
        ):
            problems.append(f"{command!r}: no such file or folder {token}")
    return problems


@cache
def _found() -> Definitions:
    return _project()


def test_readme_is_a_front_door_of_at_most_250_lines() -> None:
    text = README.read_text()
    lines = text.count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move reference text to a docs/ page"
    for heading in ("## Install", "## Run the tiny pipeline", "## Test", "## Documentation"):
        assert f"\n{heading}" in text, f"README.md lost its section {heading!r}"
    assert "**What runs only on GPUs:**" in text, "README.md must say what runs only on GPUs"


def test_readme_links_every_docs_page() -> None:
    linked = set()
    for target in _LINK.findall(_without_fences(README.read_text())):
        path = (REPO / target.partition("#")[0]).resolve()
        if path.is_relative_to(REPO):
            linked.add(str(path.relative_to(REPO)))
    pages = {_rel(p) for p in DOCS.glob("*.md")}
    assert pages <= linked, f"README.md does not link {sorted(pages - linked)}"


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=_rel)
def test_every_link_resolves(page: Path) -> None:
    problems = link_problems(page, page.read_text())
    assert not problems, "\n".join(problems)


def test_pending_pages_are_still_missing() -> None:
    here = [name for name in PENDING_PAGES if (REPO / name).exists()]
    assert not here, f"{here} exist now: remove them from PENDING_PAGES in {_rel(Path(__file__))}"


@pytest.mark.parametrize("page", user_pages(), ids=_rel)
def test_every_name_a_page_cites_exists(page: Path) -> None:
    spans = cited_spans(page.read_text())
    problems = sorted({p for span in spans if (p := check_user_span(span, _found()))})
    assert not problems, f"{_rel(page)} cites what does not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", user_pages(), ids=_rel)
def test_every_command_a_page_shows_exists(page: Path) -> None:
    problems = [p for command in command_lines(page.read_text()) for p in command_problems(command, _found())]
    assert not problems, f"{_rel(page)} shows commands that cannot run:\n" + "\n".join(problems)


def test_every_external_name_is_still_cited() -> None:
    cited = {span for page in user_pages() for span in cited_spans(page.read_text())}
    stale = sorted(set(EXTERNAL) - cited)
    assert not stale, f"EXTERNAL lists names no page cites any more: {stale}"


def test_readme_test_command_is_what_ci_runs() -> None:
    text = README.read_text()
    section = text.split("\n## Test\n", 1)[1].split("\n## ", 1)[0]
    blocks = [body.strip().splitlines()[0] for _, body in _FENCE.findall(section)]  # the full run comes first
    ci = [
        line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert blocks and blocks[0] == "python -m pytest -q", f"README's Test section shows {blocks}"
    assert ci[-1] == blocks[0], f".ci/run ends with {ci[-1]!r}, not the README's test command"


def test_the_checks_report_a_broken_link_anchor_name_command_stage_option_and_path(tmp_path: Path) -> None:
    page = DOCS / "PAGE.md"
    doc = "# Title\n[a](NOPE.md) [b](RECIPES.md#no-such-heading) [c](#title) [d](RECIPES.md) [e](https://x.org)\n"
    assert len(link_problems(page, doc)) == 2
    spans = [
        "skywork_rl.no_such_module", "NO_SUCH_VARIABLE=1", "no_such_file.py", "training.no_such_field",
        "training.report_to", "SKYWORK_RL_DEBUG=1", "test_family_stages.py", "visual.merger", "Dockerfile",
    ]  # fmt: skip
    assert [check_user_span(s, _found()) is not None for s in spans] == [True] * 4 + [False] * 5
    commands = [
        "skywork-rl no-such-command",
        "skywork-rl stage no-such-stage --config recipes/tiny/sft.yaml",
        "skywork-rl run recipes/tiny/pipeline.yaml --no-such-option",
        "skywork-rl stage sft --config recipes/tiny/no_such.yaml",
        "skywork-rl stage sft --training.no_such_field 1",
        "python benchmarks/no_such.py",
        "python -m skywork_rl.no_such",
        "accelerate launch --config_file recipes/accelerate/no.yaml -m skywork_rl.cli stage sft",
        "skywork-rl stage sft --config recipes/tiny/sft.yaml --training.learning_rate 1e-4",
        "accelerate launch --config_file recipes/accelerate/cpu.yaml -m skywork_rl.cli stage sft --config X",
        "skywork-rl run recipes/tiny/pipeline.yaml --dry-run [--output-root DIR]",
        "python -m skywork_rl.miniature.heldout --model DIR --data DIR",
    ]
    assert [bool(command_problems(c, _found())) for c in commands] == [True] * 8 + [False] * 4
