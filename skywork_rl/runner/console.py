"""What a person sees of a stage's output while `skywork-rl run` works; ``stage.log`` keeps it all.

A stage prints library logs, progress bars and metric dicts. Echoed line by line that is hundreds
of lines, every tqdm refresh one of them. The console shows instead, per stage:

- one header line (printed by the runner);
- in a terminal, one live line where progress bars redraw in place (carriage returns passed
  through, the line cleared when the stage ends);
- warnings and errors, each distinct message once per pipeline run (a FutureWarning that every
  stage's process repeats is shown once), without the time stamp and source path that vary, wrapped
  at word boundaries to the terminal's width (a word longer than a line is never cut);
- one closing line (printed by the runner).

`verbose` passes every byte through unchanged; `quiet` shows nothing of the stage's output.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import shutil
import textwrap
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# tqdm's bar (`42%|████▏ | 21/50 [00:03<00:04, 6.1it/s]`) and its no-total form (`21it [00:03, 6.1it/s]`).
_PROGRESS = re.compile(r"(\d+%\|)|(\|\s*\d+/\d+\s*\[)|(\d+(it|/s)? \[\d+:\d+)")
# A warning or error line: Python warnings (`x.py:3: FutureWarning: ...`), logging records at
# WARNING/ERROR/CRITICAL in the common formats, and our CLI's `error: ...` line.
_NOTABLE = re.compile(
    r"(\b\w*(Warning|Error)\b:)|(\b(WARNING|WARN|ERROR|CRITICAL)\b)|(^error: )|(^Traceback )"
)
# What makes two reports of one warning differ: the time stamp, the process and the source line.
_TIMESTAMP = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T][\d:,.]+\]?\s*")
_SOURCE = re.compile(r"^\S+\.py:\d+:\s*")
_RANK = re.compile(r"\[rank\d+\]:?\s*")


def is_progress(text: str) -> bool:
    """Whether a line is a progress bar's state."""
    return bool(_PROGRESS.search(text))


def is_notable(text: str) -> bool:
    """Whether a line is a warning or an error a person should see."""
    return bool(_NOTABLE.search(text)) and not is_progress(text)


def message_key(text: str) -> str:
    """The part of a warning that repeats identically across processes and stages."""
    text = _RANK.sub("", _TIMESTAMP.sub("", text.strip()))
    return _SOURCE.sub("", text)


def wrap_message(text: str, width: int) -> str:
    """`text` wrapped at spaces to `width` columns less the two-space margin, later lines indented;
    a word longer than a line (a path, a URL) stays whole."""
    lines = textwrap.wrap(
        text, width=max(width - 2, 20), subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    )
    return "\n  ".join(lines) if lines else text


# DeepSpeed's accelerator autodetection warns "Setting accelerator to CPU ..." on every import without
# a GPU, and accelerate imports DeepSpeed whenever it is installed (to unwrap a model on save).
_DEEPSPEED_CPU_NOTICE = "Setting accelerator to CPU"


class _UnusedDeepSpeedNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_DEEPSPEED_CPU_NOTICE)


def hide_unused_deepspeed_notice() -> None:
    """Drop DeepSpeed's "Setting accelerator to CPU" warning in a process that does not run DeepSpeed
    (accelerate sets ``ACCELERATE_USE_DEEPSPEED=true`` in those that do, where the warning stays).
    Call before DeepSpeed is imported: its logger keeps the filter."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        logging.getLogger("DeepSpeed").addFilter(_UnusedDeepSpeedNotice())


class StageConsole:
    """Renders one stage's raw output for a terminal (or a log file, when `live` is False)."""

    def __init__(self, out: TextIO, mode: str, live: bool, seen: set[str]) -> None:
        self.out = out
        self.mode = mode  # "quiet", "normal" or "verbose"
        self.live = live  # a terminal: redraw progress bars in place
        self.seen = seen  # warning keys already shown in this pipeline run
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text since the last line break or carriage return
        self._bar = ""  # the progress line on screen, if any
        self._width = shutil.get_terminal_size((100, 20)).columns - 1

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stage's output."""
        if self.mode == "verbose":
            self.out.write(self._decoder.decode(data))
            self.out.flush()
            return
        if self.mode == "quiet":
            return
        text = self._pending + self._decoder.decode(data)
        records = re.split(r"(\r\n|\r|\n)", text)
        self._pending = records.pop()  # after the last break: incomplete
        for record, end in zip(records[::2], records[1::2], strict=True):
            self._record(_ANSI.sub("", record), redraw=end == "\r")
        if is_progress(self._pending):  # tqdm writes `\r<bar>` and the break comes with the next one
            self._show_bar(_ANSI.sub("", self._pending))
        self.out.flush()

    def close(self) -> None:
        """The stage ended: take down the progress line."""
        if self.mode == "normal" and self._pending.strip():
            self._record(_ANSI.sub("", self._pending), redraw=False)
        self._pending = ""
        if self._bar and self.live:
            self.out.write("\r\x1b[K")
        self._bar = ""
        self.out.flush()

    def _record(self, text: str, redraw: bool) -> None:
        if not text.strip():
            return
        if redraw or is_progress(text):
            self._show_bar(text)
            return
        if not is_notable(text):
            return
        key = message_key(text)
        if key in self.seen:
            return
        self.seen.add(key)
        if self._bar and self.live:
            self.out.write("\r\x1b[K")
        self.out.write(f"  {wrap_message(key, self._width) if self.live else key}\n")
        if self._bar and self.live:
            self.out.write(self._bar)

    def _show_bar(self, text: str) -> None:
        if not self.live or not text.strip():
            return
        self._bar = f"\r  {text.strip()[: max(self._width - 2, 20)]}\x1b[K"
        self.out.write(self._bar)
