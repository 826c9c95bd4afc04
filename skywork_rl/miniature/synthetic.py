"""Offline demo data: rendered visual problems whose answers are known, in disjoint splits.

The project cannot download a dataset at run time, so its main job runs on problems it draws
itself with PIL (`skywork_rl.miniature.tasks`). Each task needs the image to be answered, the gold
answer is exact, and every row carries a worked trace in the R1V format (``<think>...</think>``
then ``\\boxed{}``) so the same rows feed SFT (``completion``), GRPO (``solution``) and eval.

Splits. A pipeline that claims RL improved held-out accuracy must never train on a held-out
problem. Every problem has a key (the canonical text of what determines its question and
picture); `split_of` hashes it into ``train`` (SFT traces), ``rl`` (RL prompts) or ``heldout``
(evaluation), so the same problem lands in the same split whichever seed or call drew it, and
`generate_rows(..., split=...)` keeps only its split's problems, each once. A row's ``id`` is its
task and a digest of its key: equal ids mean the same problem.

It belongs to the core beside `skywork_rl.miniature.tiny`: the tiny models' tokenizer is trained on the text
this generator writes (`corpus_for_tokenizer`), so the offline demo's model and data are one kit.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skywork_rl.data.schema import assistant_message, user_prompt
from skywork_rl.miniature.grid import COMPOSITIONAL_TASKS as _COMPOSITIONAL
from skywork_rl.miniature.grid import MINIATURE_TASKS as _MINIATURE
from skywork_rl.miniature.tasks import COLORS, REASONING_TASKS, SHAPES, Problem, Renderer

__all__ = [
    "COLORS",
    "COMPOSITIONAL_TASKS",
    "MINIATURE_TASKS",
    "SHAPES",
    "SPLITS",
    "TASKS",
    "Problem",
    "build_dataset",
    "generate_rows",
    "problem_id",
    "problem_split",
    "split_of",
]

TASKS = tuple(REASONING_TASKS)  # the reasoning demos (the default, as before splits existed)
MINIATURE_TASKS = tuple(_MINIATURE)  # what the tiny models can learn (benchmarks, tiny pipeline)
# Split by attribute combination (held-out combinations no train / RL problem has): the learning
# benchmarks' miniature. Not in the tokenizer's corpus (`corpus_for_tokenizer`), so adding one does not
# change the tiny models every other test and the tiny pipeline build; their words are the corpus's.
COMPOSITIONAL_TASKS = tuple(_COMPOSITIONAL)
_GENERATORS: dict[str, Renderer] = {**REASONING_TASKS, **_MINIATURE, **_COMPOSITIONAL}
SPLITS = ("train", "rl", "heldout")
SYSTEM_PROMPT = (
    "You are a careful visual reasoner. Think step by step inside <think> </think>, "
    "then give the final answer in \\boxed{}."
)
# Draws allowed per requested row before a split is declared exhausted (a third of draws fit a split).
_MAX_DRAWS_PER_ROW = 200


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_of(key: str) -> str:
    """The split a problem belongs to: a third each, fixed by the problem's key alone."""
    return SPLITS[int(_digest(key)[:8], 16) % len(SPLITS)]


def problem_split(problem: Problem) -> str:
    """The split `problem` belongs to. By its key's hash (`split_of`), except for a compositional
    task's problem (`Problem.heldout` set): a held-out attribute combination is ``heldout`` whatever
    the key, a training combination is ``train`` or ``rl`` by the key's hash, never ``heldout``."""
    if problem.heldout is None:
        return split_of(problem.key)
    if problem.heldout:
        return "heldout"
    return SPLITS[int(_digest(problem.key)[:8], 16) % 2]


def problem_id(problem: Problem) -> str:
    """A row id that names the problem: equal ids, same question on the same picture."""
    return f"{problem.task}-{_digest(problem.key)[:12]}"


def reasoning_trace(reasoning: str, answer: str) -> str:
    """The R1V-format completion for a problem: reasoning in <think>, final answer boxed."""
    return f"<think>\n{reasoning}\n</think>\nThe answer is \\boxed{{{answer}}}."


def _check(tasks: tuple[str, ...], split: str | None) -> None:
    unknown = [t for t in tasks if t not in _GENERATORS]
    if unknown:
        raise ValueError(f"synthetic data: unknown task(s) {unknown}; choose from {list(_GENERATORS)}")
    if not tasks:
        raise ValueError("synthetic data: tasks is empty; name at least one task")
    if split is not None and split not in SPLITS:
        raise ValueError(f"synthetic data: unknown split {split!r}; choose from {list(SPLITS)} (or none)")


def generate_problems(
    n: int, seed: int = 0, tasks: tuple[str, ...] = TASKS, image_size: int = 112, split: str | None = None
) -> Iterator[Problem]:
    """`n` distinct problems cycling through `tasks`, deterministic per seed; with `split`, only that
    split's problems (a problem's split depends on its key, not on the seed)."""
    tasks = tuple(tasks)
    _check(tasks, split)
    rng = random.Random(seed)
    seen: set[str] = set()
    for i in range(n):
        task = tasks[i % len(tasks)]
        for _ in range(_MAX_DRAWS_PER_ROW):
            problem = _GENERATORS[task](rng, image_size)
            if problem.key not in seen and (split is None or problem_split(problem) == split):
                break
        else:
            raise ValueError(
                f"synthetic data: task {task!r} has no new problem left for split {split!r} after {len(seen)} "
                "rows; ask for fewer rows or add tasks"
            )
        seen.add(problem.key)
        yield problem


def generate_rows(
    n: int,
    seed: int = 0,
    tasks: tuple[str, ...] = TASKS,
    image_size: int = 112,
    system_prompt: bool = True,
    split: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield `n` canonical rows (with `completion` traces) of distinct problems; see `generate_problems`."""
    for problem in generate_problems(n, seed, tasks, image_size, split):
        yield {
            "prompt": user_prompt(problem.question, 1, SYSTEM_PROMPT if system_prompt else None),
            "images": [problem.image],
            "solution": problem.answer,
            "completion": assistant_message(reasoning_trace(problem.reasoning, problem.answer)),
            "source": f"synthetic/{problem.task}",
            "id": problem_id(problem),
        }


def build_dataset(
    n: int,
    seed: int = 0,
    tasks: tuple[str, ...] = TASKS,
    image_size: int = 112,
    split: str | None = None,
    system_prompt: bool = True,
) -> Any:
    """A `datasets.Dataset` of `n` synthetic rows in the canonical schema."""
    from datasets import Dataset, Features, Image, List, Value

    rows = list(generate_rows(n, seed, tasks, image_size, system_prompt, split))
    message = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    features = Features(
        {
            "prompt": List(message),
            "images": List(Image()),
            "solution": Value("string"),
            "completion": List(message),
            "source": Value("string"),
            "id": Value("string"),
        }
    )
    return Dataset.from_list(rows, features=features)


def corpus_for_tokenizer(n: int = 600, seed: int = 1234) -> Iterator[str]:
    """Text for training the tiny models' tokenizer: the prompts and traces this generator writes."""
    yield SYSTEM_PROMPT
    for tasks in (TASKS, MINIATURE_TASKS):
        for row in generate_rows(n, seed, tasks, image_size=28, system_prompt=False):
            yield row["prompt"][-1]["content"][-1]["text"]
            yield row["completion"][0]["content"][0]["text"]
    yield "Wait, let me check again. Alternatively, however, but hmm, so the answer is"
    yield "Answer: A B C D E 0 1 2 3 4 5 6 7 8 9 10 100 1000 = + - * / ( ) \\frac{}{} \\boxed{}"


def main(argv: list[str] | None = None) -> int:
    """`skywork-rl make-demo-data`: write the synthetic dataset with `save_to_disk`."""
    parser = argparse.ArgumentParser(
        prog="skywork-rl make-demo-data",
        description="Render synthetic visual reasoning problems with known answers (canonical schema).",
    )
    parser.add_argument("--out", required=True, help="output folder (datasets.save_to_disk)")
    parser.add_argument("--num-examples", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tasks",
        default=",".join(TASKS),
        help=f"comma-separated subset of {','.join(_GENERATORS)} (the miniature: {','.join(MINIATURE_TASKS)})",
    )
    parser.add_argument("--split", choices=SPLITS, default=None, help="only this split's problems")
    parser.add_argument("--image-size", type=int, default=112)
    args = parser.parse_args(argv)
    ds = build_dataset(
        args.num_examples, args.seed, tuple(args.tasks.split(",")), args.image_size, args.split
    )
    ds.save_to_disk(str(Path(args.out)))
    print(f"wrote {len(ds)} synthetic rows to {args.out}")
    return 0
