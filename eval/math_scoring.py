"""Answer extraction and each benchmark's own matching for MathVista, MathVerse, OlympiadBench and AIME.

The official MathVista / MathVerse pipelines extract the answer with GPT-4; offline we extract it
by rule (`skywork_rl.rewards.extract.extract_final_answer`: ``\\boxed{}``, after ``</think>``,
"the answer is", last number), shaped like the GPT-4 extractor's output (a bare option letter, a
plain number), and then apply each benchmark's official matching unchanged:
- MathVista (lupantech/MathVista ``evaluation/calculate_score.py``, commit 53d5258):
  ``normalize_extracted_answer`` + ``safe_equal``, ported exactly (`normalize_mathvista`).
- MathVerse: multiple choice by letter, free-form by math equivalence (math-verify).
- OlympiadBench: the official judge (`eval.olympiad_judge`, from OpenBMB/OlympiadBench).
- AIME: an integer 0-999 (leading zeros allowed), compared as an integer.

Every scorer here runs in an `eval.deadline` worker under a per-item deadline.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eval.olympiad_judge import OlympiadJudge, parse_precision
from skywork_rl.rewards.extract import extract_choice_letter, extract_final_answer, strip_think
from skywork_rl.rewards.verify import answers_equal

# A letter only when it is the whole answer ("B", "B.", "B)", "(B)", "option B"): a leading
# "a parallelogram" or "a = 3" is text, not option A.
_WHOLE_LETTER_RE = re.compile(r"^(?:[Oo]ption\s+)?(?:\(([A-Za-z])\)|([A-Z])[.)]?)$")
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC_RE = re.compile(r"^(-?)\\d?frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}$")
# a number, then at most a unit word after a space ("12 cm"); "1/x" or "5x" is not a number
_FIRST_NUMBER_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?:\s+[A-Za-z][A-Za-z .]*)?\s*$")
_AIME_RE = re.compile(r"^\s*(\d{1,3})\s*$")


@dataclass
class Verdict:
    """What the scorer read from a response and whether it is right."""

    parsed_pred: Any
    correct: bool | None  # None: the caller judges (MMMU's parse, before its seeded guess)


def _clean(text: str) -> str:
    text = _TEXT_WRAPPER_RE.sub(r"\1", text)
    for token in ("\\$", "$", "\\%", "%", "\\!", "\\,", "^\\circ", "°", "\\left", "\\right"):
        text = text.replace(token, "")
    return text.strip().rstrip(".").strip()


def to_number(text: str | None) -> float | None:
    """A float from "1,234.5", "$12", "45%", "\\frac{3}{4}", "12 cm"; None when it is not a number.

    Our extraction's number reader (it turns a model's "\\$1,234" into the "1234" GPT-4's extractor
    would give); MathVista's own normalisation never sees it and reads numbers with ``float()``."""
    if text is None:
        return None
    text = _clean(text)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    frac = _FRAC_RE.match(text.replace(" ", ""))
    if frac:
        denominator = float(frac.group(3))
        return None if denominator == 0 else float(frac.group(1) + "1") * float(frac.group(2)) / denominator
    match = _FIRST_NUMBER_RE.match(text)
    return float(match.group(1)) if match else None


def _answer_text(response: str) -> str | None:
    return extract_final_answer(response)


# ------------------------------------------------------------------ MathVista
def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (what MathVista's ``get_most_similar`` uses via python-Levenshtein)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def get_most_similar(prediction: str, choices: Sequence[str]) -> str:
    """Upstream's ``get_most_similar``: the first choice at the least edit distance."""
    distances = [edit_distance(prediction, choice) for choice in choices]
    return choices[distances.index(min(distances))]


def normalize_mathvista(
    extraction: Any,
    choices: Sequence[str] | None,
    question_type: str,
    answer_type: str,
    precision: Any,
    ignore_empty_extractions: bool = False,
) -> str | None:
    """MathVista's ``normalize_extracted_answer``, line for line (``calculate_score.py``).

    Multiple choice: the first parenthesised letter anywhere in the extraction replaces it
    ("(C) 8" -> "C"; so does the ``x`` of "f(x)"); a letter naming an option gives that option's
    text, anything else the nearest option by edit distance. Integers ``str(int(float(x)))``,
    floats ``str(round(float(x), int(precision)))`` — Python's ``float``, so "1,234", "25%" and
    "$10.56" are None and "Infinity" is a number (an int of it fails: None); lists ``str(x)``.
    Upstream leaves other answer types unbound (a crash); here they raise ValueError.
    """
    if question_type == "multi_choice":
        if isinstance(extraction, str):
            extraction = extraction.strip()
        else:
            try:
                extraction = str(extraction)
            except Exception:  # noqa: BLE001 - upstream
                extraction = ""
        if ignore_empty_extractions and not extraction:
            return None
        letter = re.findall(r"\(([a-zA-Z])\)", extraction)
        if len(letter) > 0:
            extraction = letter[0].upper()
        choices = list(choices or [])
        sequential_characters = [chr(ord("A") + i) for i in range(len(choices))]
        if extraction in sequential_characters:
            return choices[sequential_characters.index(extraction)]
        return get_most_similar(extraction, choices)
    if answer_type == "integer":
        try:
            return str(int(float(extraction)))
        except Exception:  # noqa: BLE001 - upstream
            return None
    if answer_type == "float":
        try:
            return str(round(float(extraction), int(precision)))
        except Exception:  # noqa: BLE001 - upstream
            return None
    if answer_type == "list":
        try:
            return str(extraction)
        except Exception:  # noqa: BLE001 - upstream
            return None
    raise ValueError(f"MathVista: unknown answer_type {answer_type!r} for a {question_type} question")


def safe_equal(prediction: Any, answer: Any) -> bool:
    """Upstream's ``safe_equal``: ``prediction == answer``, False if comparing raises."""
    try:
        return bool(prediction == answer)
    except Exception:  # noqa: BLE001 - upstream
        return False


def extract_mathvista(response: str, item: dict[str, Any]) -> str:
    """The answer as MathVista's GPT-4 extractor would give it, by rule (ours).

    Upstream's own quick rules first (``extract_answer.py``: an empty response is ""; a response
    that is an option's text, an ``int`` or a ``float`` is itself); then the final answer
    (`extract_final_answer`), shaped as the extractor's demonstrations show: an option letter alone
    ("B" from "\\boxed{B.}", "(B)", "option B"), a plain number ("1.45" from "\\$1.45", "0.5" from
    "\\frac{1}{2}", "1234" from "1,234"), else the answer's text without LaTeX wrappers.
    """
    if response == "":
        return ""
    question_type, answer_type = item["question_type"], item["answer_type"]
    if question_type == "multi_choice" and response in (item.get("choices") or []):
        return response
    for reader, kind in ((int, "integer"), (float, "float")):
        if answer_type == kind:
            try:
                return str(reader(response))
            except ValueError:
                pass
    answer = extract_final_answer(response)
    if question_type == "multi_choice":
        if answer is None:
            answer = extract_choice_letter(response) or strip_think(response).strip()
        whole = _WHOLE_LETTER_RE.match(answer.strip())
        return (whole.group(1) or whole.group(2)).upper() if whole else _clean(answer)
    if answer is None:
        return ""
    if answer_type in ("integer", "float"):
        number = to_number(answer)
        return _clean(answer) if number is None else repr(number)
    return _clean(answer)


def score_mathvista(response: str, item: dict[str, Any]) -> Verdict:
    """``item``: MathVista fields ``question_type``, ``answer_type``, ``precision``, ``choices``, ``answer``.

    Our rule-based extraction (`extract_mathvista`), then upstream's normalisation and comparison."""
    prediction = normalize_mathvista(
        extract_mathvista(response, item),
        item.get("choices"),
        item["question_type"],
        item["answer_type"],
        item.get("precision"),
    )
    return Verdict(prediction, safe_equal(prediction, item["answer"]))


# ------------------------------------------------------------------ MathVerse
def _mathverse_letter(answer: str) -> str | None:
    """ "(C) 30°" -> C; a whole-extraction letter -> it; "a = 3" -> None (capital letters only in
    parentheses, so "f(a) = 3" is not option A)."""
    parenthesised = re.search(r"\(([A-Z])\)", answer)
    if parenthesised:
        return parenthesised.group(1)
    whole = _WHOLE_LETTER_RE.match(answer)
    return (whole.group(1) or whole.group(2)).upper() if whole else None


def score_mathverse(response: str, item: dict[str, Any]) -> Verdict:
    """``item``: MathVerse fields ``question_type`` ("multi-choice" / "free-form") and ``answer``."""
    answer = _answer_text(response)
    gold = str(item["answer"]).strip()
    if item["question_type"] == "multi-choice":
        pred = _mathverse_letter(answer.strip()) if answer else None
        pred = pred or extract_choice_letter(response)
        return Verdict(pred, pred is not None and pred == gold.strip("() .").upper())
    if answer is None:
        return Verdict(None, False)
    return Verdict(answer, answers_equal(answer, gold))


# ------------------------------------------------------------------ OlympiadBench
_OLYMPIAD_ANCHOR_RE = re.compile(r"So the final answer is (.*)")


def olympiad_answer_text(response: str) -> str | None:
    """What the official judge is given for a response.

    Upstream (``inference/judge.py``'s ``extract_answer``) passes the text after the last "So the
    final answer is", else the whole output, and its judge reads every ``\\boxed{}`` there (joined
    by commas), else the last line's ``$...$``. We do the same on the answer part (after
    ``</think>``: boxes inside a reasoning trace are drafts); an answer part with neither the
    anchor nor a box falls back to our rule-based final answer (`extract_final_answer`).
    """
    answer_part = strip_think(response)
    anchored = _OLYMPIAD_ANCHOR_RE.findall(answer_part)
    if anchored:
        return anchored[-1].strip()
    if "\\boxed{" in answer_part:
        return answer_part
    return extract_final_answer(response)


def score_olympiadbench(response: str, item: dict[str, Any]) -> Verdict:
    """``item``: OlympiadBench fields ``final_answer`` (list), ``error`` (tolerance, "a,b" per answer).

    The official judge, gold first. Upstream's ``judge.py`` reads ``final_answer[0]``; the gold here
    is the list joined by commas, the same text whenever the list has one entry (several answers
    then sit in it comma-separated, which the judge pairs in any order)."""
    answer = olympiad_answer_text(response)
    if answer is None:
        return Verdict(None, False)
    gold = ",".join(str(g) for g in item["final_answer"])
    judge = OlympiadJudge()
    correct = judge.judge(gold, answer, parse_precision(item.get("error")))
    # report what the judge compared (the boxes' contents), not the whole answer part; with
    # unbalanced braces the judge said False and the raw text is reported
    with contextlib.suppress(ValueError):
        answer = judge.preprocess(gold, answer)[1]
    return Verdict(answer, correct)


# ------------------------------------------------------------------ AIME
def score_aime(response: str, item: dict[str, Any]) -> Verdict:
    """``item``: ``answer`` (an integer 0-999, as int or text)."""
    answer = _answer_text(response)
    match = _AIME_RE.match(_clean(answer)) if answer else None
    pred = int(match.group(1)) if match else None
    return Verdict(pred, pred is not None and pred == int(str(item["answer"]).strip()))
