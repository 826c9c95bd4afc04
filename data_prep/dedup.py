"""Deduplication: exact (normalised text + pixel hash) and near-duplicate (MinHash LSH, `datasketch`).

A duplicated prompt counts twice in GRPO's batch statistics and in SFT's loss, and a set merged
from several public sources repeats many problems. Near-duplicate detection here is built for
visual math:
- text similarity is the Jaccard similarity of character 5-grams of the normalised question,
  estimated by MinHash and bucketed by LSH (`datasketch.MinHashLSH`), so rephrasings and small
  edits match without comparing every pair;
- two questions with different numbers are different problems ("2+3" vs "2+4"), so a near match
  also needs the same numbers in the same order;
- the same text over different pictures is a different problem (templated questions such as
  "How many red circles are there?"), so a near match also needs each image to be a near copy of
  the other's (`thumbnail_distance`: resized and re-encoded copies match, a redrawn chart does not);
- a chart whose bar is two pixels taller can be a near copy and still a different problem, so a
  near match also needs the same gold answer. Measured on the tiny pipeline's 96 rendered rows:
  8 merged without this check, 3 with it (bar charts with the same question and the same answer
  whose bars differ by a few pixels: near copies indeed).
The first row of a group is kept; later ones are dropped and counted.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from data_prep.images import decode_image, image_bytes_of, pixel_hash, thumbnail, thumbnail_distance
from skywork_rl.data.schema import prompt_text

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NON_WORD = re.compile(r"[^\w+\-*/=^<>]+")


@dataclass
class DedupOptions:
    """Recipe group `dedup:`."""

    exact: bool = field(default=True, metadata={"help": "Drop exact duplicates (normalised text + pixels)."})
    near: bool = field(default=True, metadata={"help": "Drop near duplicates (MinHash LSH)."})
    threshold: float = field(
        default=0.7, metadata={"help": "Jaccard similarity of character 5-grams above which texts match."}
    )
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations (precision vs speed)."})
    shingle_size: int = field(default=5, metadata={"help": "Character n-gram size for MinHash."})
    max_image_distance: float = field(
        default=0.05,
        metadata={
            "help": "Max thumbnail distance for images to count as the same (copies ~0.02, redraws ~0.1+)."
        },
    )


@dataclass(frozen=True)
class Fingerprint:
    """What deduplication compares about a row."""

    text: str  # normalised question text
    numbers: tuple[str, ...]
    solution: str
    pixel_hashes: tuple[str, ...]
    thumbnails: tuple[bytes | None, ...]  # per image, in prompt order

    @property
    def exact_key(self) -> str:
        return self.text + "\x00" + "|".join(self.pixel_hashes)


def normalize_text(text: str) -> str:
    """Lower-cased, NFKC, punctuation (except math operators) and runs of spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def fingerprint(row: dict[str, Any]) -> Fingerprint:
    """The row's normalised text, its numbers, and exact + perceptual hashes of its images."""
    text = normalize_text(prompt_text(row["prompt"]))
    pixels: list[str] = []
    thumbs: list[bytes | None] = []
    for value in row.get("images") or []:
        data = image_bytes_of(value)
        image = decode_image(data) if data else None
        if image is None:  # cleaning runs first; an undecodable image here still must not match others
            pixels.append(f"undecodable-{uuid.uuid4().hex}")
            thumbs.append(None)
            continue
        pixels.append(pixel_hash(image))
        thumbs.append(thumbnail(image))
    solution = normalize_text(str(row.get("solution") or ""))
    return Fingerprint(text, tuple(_NUMBER.findall(text)), solution, tuple(pixels), tuple(thumbs))


def shingles(text: str, size: int) -> set[bytes]:
    if len(text) <= size:
        return {text.encode()}
    return {text[i : i + size].encode() for i in range(len(text) - size + 1)}


def _images_close(a: Sequence[bytes | None], b: Sequence[bytes | None], max_distance: float) -> bool:
    if len(a) != len(b):
        return False
    return all(
        x is not None and y is not None and thumbnail_distance(x, y) <= max_distance
        for x, y in zip(a, b, strict=True)
    )


@dataclass
class DuplicateReport:
    """Per row: None (kept) or (reason, index of the kept row it duplicates)."""

    verdicts: list[tuple[str, int] | None]

    @property
    def kept(self) -> list[int]:
        return [i for i, v in enumerate(self.verdicts) if v is None]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for verdict in self.verdicts:
            if verdict is not None:
                out[verdict[0]] = out.get(verdict[0], 0) + 1
        return out


def find_duplicates(fingerprints: Iterable[Fingerprint], options: DedupOptions) -> DuplicateReport:
    """Scan rows in order; a row matching an earlier kept row is an ``exact_duplicate`` or ``near_duplicate``."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=options.threshold, num_perm=options.num_perm)
    seen: dict[str, int] = {}
    kept: dict[int, tuple[Fingerprint, Any]] = {}
    verdicts: list[tuple[str, int] | None] = []
    for index, fp in enumerate(fingerprints):
        if options.exact and fp.exact_key in seen:
            verdicts.append(("exact_duplicate", seen[fp.exact_key]))
            continue
        minhash = None
        if options.near:
            minhash = MinHash(num_perm=options.num_perm)
            minhash.update_batch(sorted(shingles(fp.text, options.shingle_size)))
            match = _near_match(fp, minhash, lsh.query(minhash), kept, options)
            if match is not None:
                verdicts.append(("near_duplicate", match))
                continue
            lsh.insert(str(index), minhash)
        seen.setdefault(fp.exact_key, index)
        kept[index] = (fp, minhash)
        verdicts.append(None)
    return DuplicateReport(verdicts)


def _near_match(
    fp: Fingerprint,
    minhash: Any,
    candidates: Iterable[str],
    kept: dict[int, tuple[Fingerprint, Any]],
    options: DedupOptions,
) -> int | None:
    for key in sorted(candidates, key=int):
        other, other_hash = kept[int(key)]
        if other.numbers != fp.numbers or other.solution != fp.solution:
            continue
        if not _images_close(fp.thumbnails, other.thumbnails, options.max_image_distance):
            continue
        if minhash.jaccard(other_hash) >= options.threshold:
            return int(key)
    return None
