"""The preflight table: one row per item, a verdict per total, refusals that name the key to change."""

from __future__ import annotations

from dataclasses import dataclass

from skywork_rl.errors import SkyworkError
from skywork_rl.preflight import memory as me

OK, REFUSED, UNCHECKED, WARN = "ok", "REFUSED", "unchecked", "warn"


class PreflightRefused(SkyworkError):
    """A stage cannot start or cannot fit; the message names the stage, the item and the key to change."""


@dataclass
class Row:
    """One line of the table: bytes (int) or a description (str); `key` names the fix of a refusal."""

    stage: str
    item: str
    needed: int | str | None
    available: int | str | None = None
    verdict: str = ""  # ok | REFUSED | warn | unchecked | "" (a component of the next total)
    key: str | None = None
    hint: str = ""
    why_unchecked: str = ""  # e.g. the model's config.json is not available offline
    says: str = ""  # a refusal's comparison in words, where "needs X, has Y" does not fit


def verdict(needed: int, available: int | None) -> str:
    if available is None:
        return UNCHECKED
    return OK if needed <= available else REFUSED


@dataclass
class PreflightReport:
    header: list[str]
    rows: list[Row]
    hardware_known: bool = False  # GPUs given by flags or found on this machine

    @property
    def refused(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REFUSED]

    @property
    def checked(self) -> list[Row]:
        return [r for r in self.rows if r.verdict in (OK, REFUSED, WARN)]

    @property
    def unchecked(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == UNCHECKED]

    @property
    def unjudged(self) -> list[Row]:
        """Rows the given hardware could not be judged on: a model preflight could not size."""
        return [r for r in self.unchecked if r.why_unchecked] if self.hardware_known else []

    def summary(self) -> str:
        counts = f"{len(self.checked)} checked, {len(self.unchecked)} unchecked"
        if self.refused:
            return f"preflight: {counts}; {len(self.refused)} refused"
        if self.unjudged:
            return f"preflight: {counts}; the hardware could not be judged (see 'unchecked' above)"
        return f"preflight: {counts}; nothing refused"

    def render(self) -> str:
        table = [("stage", "item", "needed", "available", "verdict")]
        table += [(r.stage, r.item, _cell(r.needed), _cell(r.available), r.verdict) for r in self.rows]
        widths = [max(len(line[i]) for line in table) for i in range(5)]
        lines = [*self.header, ""]
        for n, line in enumerate(table):
            cells = [
                c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        unchecked = [r for r in self.rows if r.verdict == UNCHECKED]
        if unchecked:
            lines += ["", "unchecked:"]
            lines += [f"  {r.stage}: {r.item}: {r.why_unchecked}" for r in unchecked if r.why_unchecked]
            if any(not r.why_unchecked for r in unchecked):
                lines.append(
                    "  rows without 'available': give the hardware (--gpus/--gpu-memory, --host-memory, --disk)"
                )
        return "\n".join(lines + self._notes())

    def _notes(self) -> list[str]:
        lines = []
        warned = [r for r in self.rows if r.verdict == WARN]
        if warned:
            lines += ["", "warnings:", *(f"  {warning(r)}" for r in warned)]
        if self.refused:
            lines += ["", "refused:", *(f"  {refusal(r)}" for r in self.refused)]
        return [*lines, "", self.summary()]

    def render_brief(self) -> str:
        """Without the table: the header, warnings, refusals and the closing counts."""
        return "\n".join([*self.header, *self._notes()])

    def raise_if_refused(self) -> None:
        if self.refused:
            raise PreflightRefused("preflight refused: " + "; ".join(refusal(r) for r in self.refused))


def _cell(value: int | str | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else me.gb(value)


def warning(r: Row) -> str:
    where = "pipeline" if r.stage == "pipeline" else f"stage {r.stage}"
    fix = f"; to change it: {r.key}" if r.key else ""
    return f"{where}: {r.item}: {_cell(r.needed)}, {_cell(r.available)} ({r.hint}){fix}"


def refusal(r: Row) -> str:
    where = "pipeline" if r.stage == "pipeline" else f"stage {r.stage}"
    says = r.says or f"needs {_cell(r.needed)}, has {_cell(r.available)}"
    return f"{where}: {r.item}: {says}; change {r.key} ({r.hint})"
