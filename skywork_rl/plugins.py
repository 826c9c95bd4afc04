"""Plugins: how packages built on the core add stages, benchmark scorers and commands to it.

Dependencies run one way: `data_prep`, `eval` and a user's own package import `skywork_rl`, never
the reverse. Each such package declares one entry point in the group ``skywork_rl.plugins``, a
function that registers what it provides::

    [project.entry-points."skywork_rl.plugins"]
    data_prep = "data_prep.plugin:register"

and the registries (`skywork_rl.stages.registry`, `skywork_rl.scorers`, the commands here) call
`load_plugins()` before they answer. Registration records import paths only
(``register_stage("clean", "data_prep.stages:CleanStage")``), so loading the plugins imports no
trainer, model or scorer: `skywork-rl --help` stays fast.

Entry points are read from the installed packages' metadata. When the core itself is imported from
a source checkout (its folder's ``pyproject.toml`` names this project), that file's declarations
replace the installed skywork-rl's: an editable install writes its metadata at install time, so it
goes stale when pyproject.toml changes, and a second checkout put first on ``PYTHONPATH`` must run
its own plugins, not those of the checkout that was installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from skywork_rl.errors import SkyworkError

ENTRY_POINT_GROUP = "skywork_rl.plugins"
DISTRIBUTION = "skywork-rl"

# name -> (module:function taking argv, one-line help), added by plugins to `skywork-rl COMMAND`
_COMMANDS: dict[str, tuple[str, str]] = {}
_loaded = False


class PluginError(SkyworkError):
    """A declared plugin cannot be loaded or registers something that clashes."""


@dataclass(frozen=True)
class Plugin:
    """One declared plugin: its entry-point name, ``module:function`` and where it was declared."""

    name: str
    target: str
    origin: str


def _source_pyproject() -> Path | None:
    """The pyproject.toml of the checkout this core was imported from, if it is this project's."""
    path = Path(__file__).resolve().parents[1] / "pyproject.toml"
    return path if path.is_file() else None


def _declared_in(pyproject: Path) -> list[Plugin] | None:
    """The plugins `pyproject` declares, or None when it is not this project's (or unreadable here)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: only the installed metadata is read
        return None
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    if project.get("name") != DISTRIBUTION:
        return None
    declared = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return [Plugin(name, target, str(pyproject)) for name, target in declared.items()]


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def declared_plugins() -> list[Plugin]:
    """Every plugin declared by the installed packages (and this source checkout), sorted by name."""
    pyproject = _source_pyproject()
    source = _declared_in(pyproject) if pyproject else None
    plugins: list[Plugin] = list(source or [])
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist.name if entry.dist is not None else "an unknown distribution"
        if source is not None and _normalized(dist) == DISTRIBUTION:
            continue  # the checkout's own pyproject.toml is newer than its installed metadata
        plugins.append(Plugin(entry.name, entry.value, f"the installed package {dist}"))
    return sorted(plugins, key=lambda p: (p.name, p.origin))


def load_plugin(plugin: Plugin) -> None:
    """Import a plugin's register function and call it; failures name the plugin and the fix."""
    module_name, _, function = plugin.target.partition(":")
    where = f"plugin {plugin.name!r} ({plugin.target}, declared in {plugin.origin})"
    try:
        register = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise PluginError(
            f"{where} cannot be loaded ({exc}); reinstall the package that declares it "
            "(`pip install -e .` in a checkout) or uninstall it"
        ) from exc
    try:
        register()
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"{where} failed while registering: {exc}") from exc


def load_plugins() -> None:
    """Run every declared plugin's registration once per process (registries call this first)."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a plugin that asks a registry while registering must not recurse
    try:
        for plugin in declared_plugins():
            load_plugin(plugin)
    except BaseException:
        _loaded = False  # the next call reports the failure again instead of half the registries
        raise


def register_command(name: str, target: str, help_: str) -> None:
    """Add ``skywork-rl NAME``: `target` is ``module:function`` taking the remaining argv."""
    existing = _COMMANDS.get(name)
    if existing is not None and existing[0] != target:
        raise PluginError(f"command {name!r} is registered twice: {existing[0]} and {target}")
    _COMMANDS[name] = (target, help_)


def plugin_commands() -> dict[str, tuple[str, str]]:
    """The commands plugins add to `skywork-rl`, by name."""
    load_plugins()
    return dict(_COMMANDS)
