"""The one registry form, and plugins: how packages built on the core add stages, benchmark scorers
and commands to it.

Every extension point (stages, rewards, benchmarks, commands, model families) is a `Registry`:
``register_x(name, "module:attr")``. An entry is a name and the import path of what it stands for;
the module is imported the first time the entry is looked up, so registering costs nothing
(`skywork-rl --help` imports no trainer or scorer). A name registered twice with different targets
is refused (which one won would depend on load order); an unknown name is an error listing the
known ones.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skywork_rl.errors import SkyworkError


class RegistryError(SkyworkError):
    """A registration or lookup that cannot be honoured; the message names the entry and the fix."""


class DuplicateEntryError(RegistryError):
    """A name already registered for another target."""


class UnknownEntryError(RegistryError, KeyError):
    """A name nobody registered."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class TargetImportError(RegistryError, ImportError):
    """A registered import path whose module or attribute cannot be imported."""


def split_target(target: str, *, what: str) -> tuple[str, str]:
    """``"package.module:attr"`` as ``(module, attr)``; anything else is an error naming `what`."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr or ":" in attr:
        raise RegistryError(f"{what}: {target!r} is not an import path; write it as 'package.module:attr'")
    return module, attr


def import_target(target: str, *, what: str) -> Any:
    """The object at ``"package.module:attr"`` (``attr`` may be dotted: ``Class.method``)."""
    module_name, attr = split_target(target, what=what)
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetImportError(f"{what}: cannot import module {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise TargetImportError(f"{what}: module {module_name!r} has no attribute {attr!r}") from None
    return value


class Registry:
    """Names of one kind (``"stage"``, ``"reward"``, ...) mapped to ``module:attr`` import paths.

    ``before_lookup`` runs before any question is answered (the registries pass
    `skywork_rl.plugins.load_plugins`, so plugins' entries are there). With ``import_paths`` a
    lookup may also name ``module:attr`` directly instead of a registered name.
    """

    def __init__(
        self,
        kind: str,
        *,
        plural: str | None = None,
        before_lookup: Callable[[], None] | None = None,
        import_paths: bool = False,
        unknown_error: type[UnknownEntryError] = UnknownEntryError,
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self._before_lookup = before_lookup
        self._import_paths = import_paths
        self._unknown_error = unknown_error
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}

    def register(self, name: str, target: str) -> None:
        """Record `name` -> ``"module:attr"``; the same target again is a no-op, another one an error."""
        split_target(target, what=f"{self.kind} {name!r}")
        existing = self._targets.get(name)
        if existing is not None and existing != target:
            raise DuplicateEntryError(
                f"{self.kind} {name!r} is registered twice: {existing} and {target}; "
                "give one of them another name"
            )
        self._targets[name] = target

    def unregister(self, name: str) -> None:
        """Forget `name` (a test's temporary entry)."""
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def targets(self) -> dict[str, str]:
        """Every registered name and its import path."""
        if self._before_lookup is not None:
            self._before_lookup()
        return dict(self._targets)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self.targets())

    def __contains__(self, name: object) -> bool:
        return name in self.targets()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def target(self, name: str) -> str:
        """The import path registered under `name` (or `name` itself when it is an allowed import path)."""
        targets = self.targets()
        if name in targets:
            return targets[name]
        if self._import_paths and ":" in name:
            return name
        paths = " (or give 'package.module:attr')" if self._import_paths else ""
        known = ", ".join(sorted(targets)) or "none"
        raise self._unknown_error(f"unknown {self.kind} {name!r}; registered {self.plural}: {known}{paths}")

    def get(self, name: str) -> Any:
        """What `name` stands for, imported on first use."""
        target = self.target(name)
        if name not in self._targets:  # an import path given directly: nothing to cache under a name
            return import_target(target, what=f"{self.kind} {name!r}")
        if name not in self._loaded:
            self._loaded[name] = import_target(target, what=f"{self.kind} {name!r}")
        return self._loaded[name]


ENTRY_POINT_GROUP = "skywork_rl.plugins"
DISTRIBUTION = "skywork-rl"

_loaded = False


class PluginError(RegistryError):
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


# commands plugins add to `skywork-rl COMMAND`: name -> module:function taking argv (and its help)
COMMANDS = Registry("command", before_lookup=load_plugins)
_COMMAND_HELP: dict[str, str] = {}


def register_command(name: str, target: str, help_: str) -> None:
    """Add ``skywork-rl NAME``: `target` is ``module:function`` taking the remaining argv."""
    COMMANDS.register(name, target)
    _COMMAND_HELP[name] = help_


def plugin_commands() -> dict[str, tuple[str, str]]:
    """The commands plugins add to `skywork-rl`, by name: ``(module:function, help)``."""
    return {name: (target, _COMMAND_HELP.get(name, "")) for name, target in COMMANDS.targets().items()}
