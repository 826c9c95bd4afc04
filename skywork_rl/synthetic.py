"""Offline demo data: rendered visual reasoning problems whose answers are known.

The project cannot download a dataset at run time, so its main job runs on problems it draws
itself with PIL. Each task needs the image to be answered (count the shapes, read the digits and
do the arithmetic, find the tallest bar), the gold answer is exact, and every row carries a
worked reasoning trace in the R1V format (``<think>...</think>`` then ``\\boxed{}``) so the same
rows feed SFT (``completion``), GRPO (``solution``) and eval.

It belongs to the core beside `skywork_rl.tiny`: the tiny models' tokenizer is trained on the text
this generator writes (`corpus_for_tokenizer`), so the offline demo's model and data are one kit.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from skywork_rl.schema import assistant_message, user_prompt

TASKS = ("count_shapes", "digit_arithmetic", "tallest_bar")
COLORS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60), "orange": (240, 150, 30)}
SHAPES = ("circle", "square", "triangle")
SYSTEM_PROMPT = (
    "You are a careful visual reasoner. Think step by step inside <think> </think>, "
    "then give the final answer in \\boxed{}."
)
# 3x5 bitmap digits: rendering needs no font file, so images are identical on every machine.
_DIGITS = {
    "0": ["111", "101", "101", "101", "111"],
    "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"],
    "3": ["111", "001", "111", "001", "111"],
    "4": ["101", "101", "111", "001", "001"],
    "5": ["111", "100", "111", "001", "111"],
    "6": ["111", "100", "111", "101", "111"],
    "7": ["111", "001", "010", "010", "010"],
    "8": ["111", "101", "111", "101", "111"],
    "9": ["111", "101", "111", "001", "111"],
}


@dataclass
class Problem:
    """One rendered problem before it becomes a canonical row."""

    task: str
    question: str
    answer: str
    reasoning: str
    image: Image.Image


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], color: tuple) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=color)


def _draw_number(draw: ImageDraw.ImageDraw, text: str, x: int, y: int, cell: int) -> int:
    for ch in text:
        for r, row in enumerate(_DIGITS[ch]):
            for c, bit in enumerate(row):
                if bit == "1":
                    draw.rectangle(
                        [x + c * cell, y + r * cell, x + (c + 1) * cell - 1, y + (r + 1) * cell - 1], fill=0
                    )
        x += 4 * cell
    return x


def count_shapes(rng: random.Random, size: int) -> Problem:
    """Count the shapes of one colour among distractors."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    target_color = rng.choice(list(COLORS))
    target_shape = rng.choice(SHAPES)
    cells = [(i, j) for i in range(4) for j in range(4)]
    rng.shuffle(cells)
    n_target = rng.randint(1, 5)
    n_other = rng.randint(0, 4)
    step = size // 4
    for k, (i, j) in enumerate(cells[: n_target + n_other]):
        if k < n_target:
            color, shape = COLORS[target_color], target_shape
        else:
            other = rng.choice([c for c in COLORS if c != target_color])
            color, shape = COLORS[other], rng.choice(SHAPES)
        pad = step // 6
        _draw_shape(
            draw, shape, (i * step + pad, j * step + pad, (i + 1) * step - pad, (j + 1) * step - pad), color
        )
    question = f"How many {target_color} {target_shape}s are in the image?"
    reasoning = (
        f"I scan the grid for {target_color} {target_shape}s and ignore the other shapes. "
        f"Counting them one by one gives {n_target}."
    )
    return Problem("count_shapes", question, str(n_target), reasoning, image)


def digit_arithmetic(rng: random.Random, size: int) -> Problem:
    """Read two numbers drawn in the image and combine them."""
    a, b = rng.randint(2, 49), rng.randint(2, 49)
    op = rng.choice(["+", "-", "*"])
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    cell = max(1, size // 28)
    _draw_number(draw, str(a), size // 8, size // 5, cell)
    _draw_number(draw, str(b), size // 8, size // 5 + 7 * cell, cell)
    word = {"+": "sum", "-": "difference (top minus bottom)", "*": "product"}[op]
    question = f"The image shows two numbers, one above the other. What is their {word}?"
    reasoning = f"The top number reads {a} and the bottom number reads {b}. {a} {op} {b} = {result}."
    return Problem("digit_arithmetic", question, str(result), reasoning, image.convert("RGB"))


def tallest_bar(rng: random.Random, size: int) -> Problem:
    """Pick the tallest bar of a bar chart by its letter."""
    n = rng.randint(3, 4)
    letters = "ABCD"[:n]
    heights = rng.sample(range(2, 10), n)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    width = size // (n + 1)
    for k, h in enumerate(heights):
        x0 = k * width + width // 2
        draw.rectangle([x0, size - h * size // 11, x0 + width // 2, size - 1], fill=COLORS["blue"])
    best = letters[heights.index(max(heights))]
    question = (
        f"The bar chart has {n} bars labelled {', '.join(letters)} from left to right. "
        "Which bar is the tallest? Answer with its letter."
    )
    order = ", ".join(f"{letter}={h}" for letter, h in zip(letters, heights, strict=True))
    reasoning = f"Estimating the bar heights from left to right: {order}. The tallest is {best}."
    return Problem("tallest_bar", question, best, reasoning, image)


_GENERATORS = {"count_shapes": count_shapes, "digit_arithmetic": digit_arithmetic, "tallest_bar": tallest_bar}


def reasoning_trace(reasoning: str, answer: str) -> str:
    """The R1V-format completion for a problem: reasoning in <think>, final answer boxed."""
    return f"<think>\n{reasoning}\n</think>\nThe answer is \\boxed{{{answer}}}."


def generate_rows(
    n: int, seed: int = 0, tasks: tuple[str, ...] = TASKS, image_size: int = 112, system_prompt: bool = True
) -> Iterator[dict[str, Any]]:
    """Yield `n` canonical rows (with `completion` traces), cycling through `tasks`, deterministic per seed."""
    unknown = [t for t in tasks if t not in _GENERATORS]
    if unknown:
        raise ValueError(f"synthetic data: unknown task(s) {unknown}; choose from {list(TASKS)}")
    rng = random.Random(seed)
    for i in range(n):
        task = tasks[i % len(tasks)]
        problem = _GENERATORS[task](rng, image_size)
        yield {
            "prompt": user_prompt(problem.question, 1, SYSTEM_PROMPT if system_prompt else None),
            "images": [problem.image],
            "solution": problem.answer,
            "completion": assistant_message(reasoning_trace(problem.reasoning, problem.answer)),
            "source": f"synthetic/{task}",
            "id": f"{task}-{seed}-{i}",
        }


def build_dataset(n: int, seed: int = 0, tasks: tuple[str, ...] = TASKS, image_size: int = 112) -> Any:
    """A `datasets.Dataset` of `n` synthetic rows in the canonical schema."""
    from datasets import Dataset, Features, Image, List, Value

    rows = list(generate_rows(n, seed, tasks, image_size))
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
    for row in generate_rows(n, seed, image_size=28, system_prompt=False):
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
        "--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}"
    )
    parser.add_argument("--image-size", type=int, default=112)
    args = parser.parse_args(argv)
    ds = build_dataset(args.num_examples, args.seed, tuple(args.tasks.split(",")), args.image_size)
    ds.save_to_disk(str(Path(args.out)))
    print(f"wrote {len(ds)} synthetic rows to {args.out}")
    return 0
