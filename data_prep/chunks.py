"""Resumable chunked work: long generation jobs persist each finished chunk so a killed run loses
at most the chunk in flight and never redoes (or double-counts) one that finished.

Rows are split into fixed chunks by index; a chunk's records land in ``chunk-<n>.jsonl``, written
to a temporary name and renamed, so a chunk file is either complete or absent. ``meta.json`` holds
the job's fingerprint (`job_fingerprint`: the model *and* the checkpoint it holds now, sampling, the
row ids, the gold answers the records were scored against): resuming with a different job is
refused, because mixing rates sampled under two settings would be silently wrong.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from skywork_rl.records.atomic import write_atomic

ProcessChunk = Callable[[list[int], int], list[dict[str, Any]]]


class ChunkStoreMismatch(ValueError):
    """The saved chunks were made by a different job than the one asked for now."""


def ids_digest(ids: Sequence[str]) -> str:
    """A short digest of the row ids in order (part of a job's fingerprint)."""
    return hashlib.sha1("\n".join(map(str, ids)).encode()).hexdigest()[:16]


def column_digest(values: Sequence[Any]) -> str:
    """A short digest of a column's values in order (e.g. the gold ``solution`` rollouts are scored on)."""
    h = hashlib.sha1()
    for value in values:
        h.update(json.dumps(value, sort_keys=True, default=str).encode() + b"\0")
    return h.hexdigest()[:16]


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def checkpoint_identity(name_or_path: str) -> str | None:
    """Which weights a local checkpoint folder holds now, or None for a hub id (its name is its identity).

    A folder's name says nothing once a stage retrains into it, so the identity is a digest of its
    ``config.json``, its weight files' names, sizes and modification times, and the ``ended_at`` of
    the stage that wrote it (``stage.json``). Only file metadata is read, never the weights.
    """
    folder = Path(name_or_path)
    if not folder.is_dir():
        return None
    h = hashlib.sha1()
    for name in ("config.json", "stage.json"):
        path = folder / name
        if path.is_file():
            text = path.read_text()
            if name == "stage.json":  # only when it finished: its config/argv also change between runs
                text = str(json.loads(text).get("ended_at"))
            h.update(name.encode() + b"\0" + text.encode() + b"\0")
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.endswith(_WEIGHT_SUFFIXES):
            st = path.stat()
            h.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def job_fingerprint(
    model: str, dataset: Any, options: dict[str, Any], columns: Sequence[str] = ("solution",)
) -> dict[str, Any]:
    """What a generation job's saved chunks depend on: the model and the checkpoint behind it, the rows
    (ids in order) and the given `columns` (digested), and the sampling `options`."""
    fingerprint: dict[str, Any] = {
        "model": model,
        "checkpoint": checkpoint_identity(model),
        "rows": len(dataset),
        "ids": ids_digest(dataset["id"]),
    }
    for column in columns:
        if column in dataset.column_names:
            fingerprint[f"{column}_digest"] = column_digest(dataset[column])
    fingerprint.update(options)
    return fingerprint


class ChunkStore:
    """Finished chunks of one job in `directory`.

    `restart` discards chunks saved by a different job (otherwise that is refused); `discard` drops
    every saved chunk, even of the same job (a finished output being replaced is regenerated).
    """

    def __init__(
        self,
        directory: str | Path,
        fingerprint: dict[str, Any],
        restart: bool = False,
        discard: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
        if discard and self.directory.exists():
            shutil.rmtree(self.directory)
        meta = self.directory / "meta.json"
        if meta.exists():
            saved = json.loads(meta.read_text())
            if saved != self.fingerprint:
                if not restart:
                    changed = sorted(
                        k
                        for k in set(saved) | set(self.fingerprint)
                        if saved.get(k) != self.fingerprint.get(k)
                    )
                    raise ChunkStoreMismatch(
                        f"{self.directory}: saved chunks come from a different job (changed: {changed}); "
                        "set output.overwrite: true to discard them, or use another output_dir"
                    )
                shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not meta.exists():
            write_atomic(meta, json.dumps(self.fingerprint, indent=2))

    def _path(self, chunk: int) -> Path:
        return self.directory / f"chunk-{chunk:06d}.jsonl"

    def finished(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.directory.glob("chunk-*.jsonl")}

    def write(self, chunk: int, records: list[dict[str, Any]]) -> None:
        write_atomic(self._path(chunk), "".join(json.dumps(r) + "\n" for r in records))

    def records(self) -> dict[int, dict[str, Any]]:
        """Every saved record by its row index."""
        out: dict[int, dict[str, Any]] = {}
        for path in sorted(self.directory.glob("chunk-*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    record = json.loads(line)
                    out[int(record["index"])] = record
        return out


def run_chunked(
    num_rows: int,
    chunk_size: int,
    store: ChunkStore,
    process: ProcessChunk,
    desc: str = "chunks",
    progress: bool = True,
) -> tuple[dict[int, dict[str, Any]], int]:
    """Process every chunk not yet saved; returns (all records by row index, chunks processed now).

    `process(indices, chunk_number)` returns one record per index, each with an ``index`` key.
    """
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunks = [list(range(s, min(s + chunk_size, num_rows))) for s in range(0, num_rows, chunk_size)]
    done = store.finished()
    todo = [n for n in range(len(chunks)) if n not in done]
    bar = tqdm(
        total=num_rows, initial=num_rows - sum(len(chunks[n]) for n in todo), desc=desc, disable=not progress
    )
    for n in todo:
        records = process(chunks[n], n)
        got = sorted(int(r["index"]) for r in records)
        if got != chunks[n]:
            raise RuntimeError(f"{desc}: chunk {n} returned records for rows {got}, expected {chunks[n]}")
        store.write(n, records)
        bar.update(len(chunks[n]))
    bar.close()
    return store.records(), len(todo)
